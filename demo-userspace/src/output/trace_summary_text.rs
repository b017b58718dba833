//! The text trace's summary: the regions (the live ones and the last few ended, the rest
//! counted), the functions that faulted, what demo's own tracing did, the totals against the
//! kernel's, and what the trace cost demo; at 80 columns unless `--wide`.

use std::io::{self, Write};

use super::{
    code::{base_name, function},
    duration::human,
    escape::escape,
    trace_durations_text::{Listed, write_durations},
    trace_text::{LineWidth, write_lines},
};
use crate::{
    model::call_graph::CallGraph,
    trace::{
        ProcessSummary, TraceEnd, TraceSummary, heap_overloaded, own::DemoOwn,
        regions::TrackedRegion, session::Session, stacks::StackTotals,
    },
};

/// How many live regions the text lists; past them, they are counted.
const LISTED_LIVE_REGIONS: usize = 32;

/// How many ended regions the text lists, the last ones; the others are counted.
const LISTED_ENDED_REGIONS: usize = 4;

/// Writes the summary of a trace.
pub fn write_summary(
    out: &mut impl Write,
    width: LineWidth,
    summary: &TraceSummary,
    session: &Session,
    heap_probes: bool,
    listed: Listed,
) -> io::Result<()> {
    write_regions(out, width, summary, session)?;
    write_functions(out, width, summary)?;
    write_durations(out, width, summary, listed)?;
    let paragraph =
        |out: &mut dyn Write, text: &str| write_lines(out, &width.wrap_under("", "  ", text));
    if let Some(stacks) = summary.stacks {
        writeln!(out)?;
        paragraph(out, &stacks_say(stacks))?;
    }
    let unknown = summary.unknown_mappings;
    if unknown.total() > 0 {
        writeln!(out)?;
        paragraph(
            out,
            &format!(
                "{} in an [unknown] mapping: nothing demo saw or captured held the address, and \
                 the kernel had nothing mapped there when asked ({}), or the process was gone \
                 before it could be asked ({})",
                plural(unknown.total(), "fault"),
                unknown.nothing_mapped,
                unknown.process_gone
            ),
        )?;
    }
    if let Some(own) = demo_own(summary.demo_own, summary.pid, heap_probes) {
        writeln!(out)?;
        paragraph(out, &own)?;
    }
    let dropped: Vec<String> = (summary.records.iter())
        .filter(|(_, count)| count.dropped > 0)
        .map(|(kind, count)| format!("{} {kind}", count.dropped))
        .collect();
    if !dropped.is_empty() {
        writeln!(out)?;
        paragraph(
            out,
            &format!(
                "LOST: the ring buffer was full; dropped {} records",
                dropped.join(", ")
            ),
        )?;
    }
    writeln!(out)?;
    paragraph(
        out,
        &format!(
            "faults: {} ({} minor, {} major, {} error), {} lost; trace ended by {}",
            summary.faults_total,
            summary.minor,
            summary.major,
            summary.error,
            summary.lost,
            summary.ended_by
        ),
    )?;
    if let (Some(child), Some(pid)) = (&summary.child, summary.pid) {
        writeln!(out, "pid {pid} {child}")?;
    }
    if let (TraceEnd::CgroupRemoved, Some(cgroup)) = (summary.ended_by, &summary.cgroup) {
        writeln!(out, "ended: cgroup {} was removed", escape(cgroup))?;
    }
    paragraph(out, &cost(summary))?;
    match &summary.kernel_programs {
        Some(programs) => {
            for program in programs {
                if let Some(ns) = program.ns_per_run() {
                    paragraph(
                        out,
                        &format!(
                            "in the kernel (bpf_stats): {} ran {} times, {ns:.0} ns per run",
                            program.program, program.runs
                        ),
                    )?;
                }
            }
        }
        None => paragraph(
            out,
            "in the kernel: `sysctl kernel.bpf_stats_enabled=1` before the trace shows each \
             program's cost",
        )?,
    }
    if let (Some(rusage), Some((gap, why))) = (summary.rusage, summary.rusage_gap()) {
        let before = match summary.before_trace.unwrap_or(0) {
            0 => String::new(),
            before => format!("; {before} before the trace began"),
        };
        let own = match summary.demo_own.faults_before_exec + summary.demo_own.uprobes_page_faults {
            0 => String::new(),
            own => format!(", {own} of them demo's own"),
        };
        paragraph(
            out,
            &format!(
                "kernel's count (rusage): {} minor + {} major{before}; traced: {} completed \
                 faults{own}",
                rusage.minflt, rusage.majflt, summary.traced_completions
            ),
        )?;
        if gap != 0 {
            paragraph(out, &format!("difference {gap}: {why}"))?;
        }
    }
    write_processes(out, width, summary)?;
    Ok(())
}

/// The summary's table of regions: every live one up to [`LISTED_LIVE_REGIONS`], the last
/// [`LISTED_ENDED_REGIONS`] ended ones, in the order they were made, and a count of the rest.
fn write_regions(
    out: &mut impl Write,
    width: LineWidth,
    summary: &TraceSummary,
    session: &Session,
) -> io::Result<()> {
    writeln!(out, "\nregions (# resident, 0 zero page, . untouched):")?;
    writeln!(
        out,
        "  {:<12} {:>7} {:<14} {:>10} {:>7}  PAGES",
        "NAME", "PID", "ADDRESS", "BYTES", "FAULTS"
    )?;
    let ended = session
        .region_states()
        .filter(|(tracked, _, _)| !tracked.live)
        .count();
    let (mut live_seen, mut ended_seen) = (0, 0);
    let mut unlisted = Unlisted::default();
    for (tracked, pages, faults) in session.region_states() {
        let listed = if tracked.live {
            live_seen += 1;
            live_seen <= LISTED_LIVE_REGIONS
        } else {
            ended_seen += 1;
            ended - ended_seen < LISTED_ENDED_REGIONS
        };
        if !listed {
            unlisted.add(tracked, faults);
            continue;
        }
        let row = region_row(tracked, faults);
        let strip = format!(
            "[{}]{}",
            pages.settled_strip(super::STRIP_WIDTH),
            if tracked.live { "" } else { " ended" }
        );
        let fits = row.len() + strip.len() <= super::trace_text::COLUMNS;
        if width == LineWidth::Wide || fits {
            writeln!(out, "{row}{strip}")?;
        } else {
            writeln!(out, "{}", row.trim_end())?;
            writeln!(out, "    {strip}")?;
        }
    }
    for line in unlisted.lines() {
        write_lines(out, &width.wrap_under("  ", "    ", &line))?;
    }
    if summary.regions_not_listed > 0 {
        write_lines(
            out,
            &width.wrap_under(
                "  ",
                "    ",
                &format!(
                    "({} older ended regions not listed: only the last {} ended keep their \
                     pages)",
                    summary.regions_not_listed,
                    crate::trace::session::KEPT_ENDED_REGIONS
                ),
            ),
        )?;
    }
    Ok(())
}

/// A region's columns, up to its pages.
fn region_row(tracked: &TrackedRegion, faults: u64) -> String {
    format!(
        "  {:<12} {:>7} {:<14} {:>10} {:>7}  ",
        escape(&tracked.region.name),
        tracked.pid,
        format!("{:#x}", tracked.region.start),
        tracked.region.len,
        faults
    )
}

/// The regions a summary counts without listing them.
#[derive(Debug, Default)]
struct Unlisted {
    live: (u64, u64),
    ended: (u64, u64),
}

impl Unlisted {
    fn add(&mut self, tracked: &TrackedRegion, faults: u64) {
        let count = if tracked.live {
            &mut self.live
        } else {
            &mut self.ended
        };
        count.0 += 1;
        count.1 += faults;
    }

    /// `… 60 more ended regions, 212 faults in them (JSON lists each)`.
    fn lines(&self) -> Vec<String> {
        [("live", self.live), ("ended", self.ended)]
            .into_iter()
            .filter(|(_, (regions, _))| *regions > 0)
            .map(|(state, (regions, faults))| {
                format!(
                    "… {regions} more {state} {}, {} in them (--format json lists each)",
                    if regions == 1 { "region" } else { "regions" },
                    plural(faults, "fault")
                )
            })
            .collect()
    }
}

/// The summary's tables of faults by function, and by function and region. At 80 columns a
/// module is named by its file name.
fn write_functions(
    out: &mut impl Write,
    width: LineWidth,
    summary: &TraceSummary,
) -> io::Result<()> {
    let module = |module: Option<&str>| {
        let module = module.unwrap_or("-");
        escape(match width {
            LineWidth::Columns80 => base_name(module),
            LineWidth::Wide => module,
        })
        .into_owned()
    };
    let table = |out: &mut dyn Write, rows: &[(u64, String, String)]| -> io::Result<()> {
        for (faults, function, place) in rows {
            let head = format!("  {faults:>8}  ");
            write_lines(
                out,
                &width.wrap_under(&head, &" ".repeat(14), &format!("{function:<32} {place}")),
            )?;
        }
        Ok(())
    };
    if !summary.faults_by_function.is_empty() {
        writeln!(out, "\nfaults by function:")?;
        let rows: Vec<_> = (summary.faults_by_function.iter())
            .map(|row| {
                (
                    row.faults,
                    function(row.symbol.as_deref(), row.module.as_deref()),
                    module(row.module.as_deref()),
                )
            })
            .collect();
        table(out, &rows)?;
    }
    if !summary.faults_by_function_and_region.is_empty() {
        writeln!(out, "\nfaults by function and region:")?;
        let rows: Vec<_> = (summary.faults_by_function_and_region.iter())
            .map(|row| {
                (
                    row.faults,
                    function(row.symbol.as_deref(), row.module.as_deref()),
                    escape(row.region.as_deref().unwrap_or("-")).into_owned(),
                )
            })
            .collect();
        table(out, &rows)?;
    }
    Ok(())
}

/// What demo's own tracing made the traced processes do, said once, when it did anything.
fn demo_own(own: DemoOwn, pid: Option<u32>, heap_probes: bool) -> Option<String> {
    // Only a command demo starts is forked by demo and stopped at its exit.
    let pid = pid.map_or_else(|| "the command".to_owned(), |pid| format!("pid {pid}"));
    let mut parts = Vec::new();
    if own.faults_before_exec > 0 {
        parts.push(format!(
            "{} of {pid} between demo's fork and its exec, in demo's own code",
            plural(own.faults_before_exec, "fault")
        ));
    }
    if own.uprobes_page_faults > 0 {
        parts.push(format!(
            "{} on [uprobes], the page the kernel maps for uprobes{}",
            plural(own.uprobes_page_faults, "fault"),
            if heap_probes {
                " (demo's heap probes return through a trampoline there)"
            } else {
                ""
            }
        ));
    }
    if own.ptrace_stop_signals > 0 {
        parts.push(format!(
            "{} (CLD_TRAPPED) to demo, which stops {pid} at its exit to read its records",
            plural(own.ptrace_stop_signals, "SIGCHLD")
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "demo's own, not listed above nor in the totals: {}",
            parts.join("; ")
        )
    })
}

/// What tracing cost demo: its CPU time after the attach, per record on average, one-time work
/// included, and its peak memory.
fn cost(summary: &TraceSummary) -> String {
    let cost = &summary.loader;
    let records: u64 = summary.records.values().map(|count| count.delivered).sum();
    let after = cost.cpu_ms.saturating_sub(cost.attach_cpu_ms);
    let per_record = match cost.ns_per_record(records) {
        Some(ns) => format!(
            "{after} ms for {records} records after, {} a record on average, one-time work \
             such as reading each module's symbols included (cargo xtask bench measures the \
             steady cost of a record)",
            human(ns.round() as u64)
        ),
        None => format!("{after} ms after, with no records"),
    };
    format!(
        "demo's own cost: {} ms of CPU ({} ms to load and attach, {per_record}); peak RSS {} KiB",
        cost.cpu_ms, cost.attach_cpu_ms, cost.peak_rss_kib
    )
}

/// Each traced process whose count differs from the kernel's or that lost records, when the
/// trace followed more than one, or every process a cgroup's trace saw; and what the heap
/// probes cost, when they filled the ring.
fn write_processes(
    out: &mut impl Write,
    width: LineWidth,
    summary: &TraceSummary,
) -> io::Result<()> {
    let mut lines = Vec::new();
    let every = summary.cgroup.is_some();
    if summary.processes.len() > 1 || every {
        let mut alike = 0;
        for process in &summary.processes {
            let totals = &process.totals;
            let lost = process.lost_records();
            if !every && totals.difference().is_none_or(|d| d == 0) && lost == 0 {
                alike += 1;
                continue;
            }
            let command = escape(totals.command.as_deref().unwrap_or("?"));
            let counted = process_counted(summary, process);
            let lost = match lost {
                0 => String::new(),
                _ => format!(
                    "; lost {}",
                    (process.lost.iter())
                        .map(|(kind, count)| format!("{count} {}", kind.name()))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            lines.push(format!("pid {} ({command}): {counted}{lost}", totals.pid));
        }
        if alike > 0 {
            lines.push(format!(
                "{alike} of {} traced processes: the kernel counted what the trace saw, or they \
                 still run",
                summary.processes.len()
            ));
        }
    }
    if summary.unjoined_events > 0 {
        lines.push(format!(
            "{} of the cgroup's processes not traced: the target map was full when they \
             would have joined, and the trace has nothing else of them",
            plural(summary.unjoined_events, "event")
        ));
    }
    if heap_overloaded(&summary.records) {
        lines.push(
            "the heap probes' records filled the ring buffer: --no-heap leaves them out, or a \
             larger --ring-buffer-kib makes room"
                .to_owned(),
        );
    }
    for line in lines {
        write_lines(out, &width.wrap_under("", "  ", &line))?;
    }
    Ok(())
}

/// What the kernel and the trace counted for one traced process: its exit's counts once it
/// exited; its /proc counts when it ran at the end; else that it is gone unseen.
fn process_counted(summary: &TraceSummary, process: &ProcessSummary) -> String {
    let totals = &process.totals;
    let known = totals.before_trace.zip(totals.difference());
    match (totals.kernel, known, process.at_end) {
        (Some(kernel), Some((before, difference)), _) => format!(
            "exited; kernel {}, before the trace {}, traced {}, difference {difference}",
            kernel.total(),
            before.total(),
            totals.traced
        ),
        (Some(kernel), None, _) => format!(
            "exited; kernel {}, before the trace unknown, traced {}",
            kernel.total(),
            totals.traced
        ),
        (None, _, Some(stat)) => format!(
            "traced {}, still running; over its life {} minor and {} major faults, {} of CPU \
             (/proc/{}/stat)",
            totals.traced,
            stat.minflt,
            stat.majflt,
            human(stat.cpu_ns),
            totals.pid
        ),
        // The command demo started is not read from /proc: its counts are its rusage.
        (None, _, None) if summary.pid == Some(totals.pid) => {
            format!("traced {}, its counts not read", totals.traced)
        }
        (None, _, None) => format!(
            "traced {}, gone by the end: its exit was not seen",
            totals.traced
        ),
    }
}

/// The summary's paragraph on the stacks: how many, and how many were cut short or have a
/// caller found without unwind tables.
fn stacks_say((graph, totals): (CallGraph, StackTotals)) -> String {
    let mut said = format!("stacks ({}): {} captured", graph.name(), totals.stacks);
    if let CallGraph::Dwarf { stack_bytes } = graph
        && let Some(percent) = totals.truncated_percent()
    {
        said += &format!(
            "; {} truncated by the {stack_bytes}-byte copy ({percent:.1}%){}; {} ended in stack \
             memory that could not be read; {} with a frame whose module has no unwind tables, \
             whose caller was found by frame pointer",
            totals.truncated,
            if totals.truncated > 0 {
                ": raise --stack-bytes to see their outer callers"
            } else {
                ""
            },
            totals.unreadable,
            plural(totals.without_unwind_info, "stack"),
        );
    }
    said
}

/// `1 fault`, `2 faults`.
fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use demo_common::{FaultCounters, FaultSource};

    use super::*;
    use crate::{
        model::{
            access::ErrorCode,
            events::{Decoded, Fault, Record, ThreadSnapshot},
        },
        trace::{fake_system::FakeSystem, regions::RegionTracker},
    };

    /// Where the first region starts; each next one starts a page higher.
    const BASE: u64 = 0x7f00_0000_0000;

    fn feed(session: &mut Session, tid: u32, record: Record) {
        let snapshot = ThreadSnapshot {
            tid,
            counters: FaultCounters::default(),
        };
        let decoded = Decoded {
            snapshot,
            record,
            stack: None,
        };
        session.handle(decoded, &mut Vec::new());
    }

    /// A user-mode write by `pid` at `address`.
    fn write(pid: u32, address: u64) -> Record {
        Record::Fault(Fault {
            timestamp_ns: 1,
            pid,
            tid: pid,
            address,
            ip: 0x40_0100,
            error_code: ErrorCode(6),
            source: FaultSource::User,
        })
    }

    /// A service with 40 live regions and 10 ended: the table lists the first 32 live and the
    /// last 4 ended, in the order they were made, and counts the others with their faults.
    #[test]
    fn past_32_live_and_4_ended_regions_the_table_counts_the_rest() {
        let system = FakeSystem::default();
        let regions = RegionTracker::new(true, 4096, 4, 4096);
        let mut session = Session::new(regions, system.view());
        let (execed, running) = (101, 100);
        for n in 0..50 {
            let pid = if n < 10 { execed } else { running };
            session.add_manual_region(pid, BASE + n * 0x1000, 4096, &mut Vec::new());
        }
        // A fault in the first region, which the exec then ends, and one in the last.
        feed(&mut session, execed, write(execed, BASE));
        feed(&mut session, execed, Record::Exec(execed));
        feed(&mut session, running, write(running, BASE + 49 * 0x1000));
        session.finish(&mut Vec::new());
        let mut text = Vec::new();
        let summary = TraceSummary::fixture(0, &[], 0, 0);
        write_regions(&mut text, LineWidth::Columns80, &summary, &session).unwrap();
        let text = String::from_utf8(text).unwrap();
        let listed: Vec<&str> = (text.lines())
            .filter_map(|line| line.strip_prefix("  manual#")?.split_whitespace().next())
            .collect();
        let expected: Vec<String> = (7..=42).map(|n| n.to_string()).collect();
        assert_eq!(listed, expected, "{text}");
        let counted: Vec<&str> = text
            .lines()
            .filter(|line| line.contains(" more "))
            .collect();
        assert_eq!(
            counted,
            [
                "  … 8 more live regions, 1 fault in them (--format json lists each)",
                "  … 6 more ended regions, 1 fault in them (--format json lists each)",
            ],
            "{text}"
        );
    }

    #[test]
    fn the_summary_says_how_many_stacks_the_copy_truncated_and_what_to_do() {
        let totals = StackTotals {
            stacks: 16,
            truncated: 4,
            unreadable: 1,
            without_unwind_info: 1,
        };
        assert_eq!(
            stacks_say((CallGraph::Dwarf { stack_bytes: 512 }, totals)),
            "stacks (dwarf): 16 captured; 4 truncated by the 512-byte copy (25.0%): raise \
             --stack-bytes to see their outer callers; 1 ended in stack memory that could not \
             be read; 1 stack with a frame whose module has no unwind tables, whose caller was \
             found by frame pointer"
        );
        assert_eq!(
            stacks_say((CallGraph::FramePointers { depth: 32 }, totals)),
            "stacks (fp): 16 captured"
        );
    }

    /// Each traced process of a cgroup's trace says what is known of it: an exited one its
    /// exit's count, with what it counted before the trace unknown when it joined with other
    /// live threads; a running one its /proc counts; one neither exited nor read that it is gone
    /// unseen. None is said to be running unless /proc was read.
    #[test]
    fn each_process_says_whether_it_exited_ran_at_the_end_or_went_unseen() {
        let process = |pid, before_trace_known: bool, kernel, at_end| ProcessSummary {
            totals: crate::trace::session::ProcessTotals {
                pid,
                command: Some("worker".into()),
                traced: 3,
                before_trace: before_trace_known.then_some(FaultCounters { minor: 2, major: 0 }),
                kernel,
            },
            lost: std::collections::BTreeMap::new(),
            at_end,
        };
        let exit = Some(FaultCounters { minor: 9, major: 1 });
        let stat = crate::trace::ProcessStat {
            minflt: 40,
            majflt: 2,
            cpu_ns: 20_000_000,
        };
        let mut summary = TraceSummary::fixture(0, &[], 0, 0);
        summary.pid = None;
        summary.cgroup = Some("/demo.slice".to_owned());
        summary.processes = vec![
            process(11, true, exit, None),
            process(12, false, exit, None),
            process(13, false, None, Some(stat)),
            process(14, true, None, None),
        ];
        summary.unjoined_events = 2;
        let mut text = Vec::new();
        write_processes(&mut text, LineWidth::Wide, &summary).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "pid 11 (worker): exited; kernel 10, before the trace 2, traced 3, difference 5\n\
             pid 12 (worker): exited; kernel 10, before the trace unknown, traced 3\n\
             pid 13 (worker): traced 3, still running; over its life 40 minor and 2 major \
             faults, 20 ms of CPU (/proc/13/stat)\n\
             pid 14 (worker): traced 3, gone by the end: its exit was not seen\n\
             2 events of the cgroup's processes not traced: the target map was full when they \
             would have joined, and the trace has nothing else of them\n"
        );
    }
}
