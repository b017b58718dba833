//! Output of `demo trace`: one line per event as it happens, then a summary per region and
//! per process; in text or in the JSON Lines schema of `demo alloc`.

use std::io::{self, Write};

use super::{
    Format, JsonLines,
    code::{describe, function},
    escape::escape,
    lines::{
        CodeJson, FaultLine, ProcessLine, RegionEndLine, RegionLine, RegionSummaryLine, SCENARIO,
        SignalLine, SyscallLine, TraceLine, TraceSummaryLine,
    },
};
use crate::{
    kernel::symbols::StackFrame,
    model::signals::{si_code_name, signal_name},
    trace::{
        TraceOutput, TraceStart, TraceSummary, heap_overloaded,
        session::{Session, TraceEvent},
    },
};

pub fn output<'a>(format: Format, out: impl Write + 'a) -> Box<dyn TraceOutput + 'a> {
    match format {
        Format::Text => Box::new(TextTrace { out, start_ns: 0 }),
        Format::Json => Box::new(JsonTrace {
            out: JsonLines::new(out),
            codes: CodeJson::default(),
        }),
        Format::Folded => Box::new(super::folded::FoldedTrace::new(out)),
        Format::ChromeTrace => Box::new(super::chrome::ChromeTrace::new(out)),
    }
}

/// What one heap call costs the traced process with the uprobes on, as `cargo xtask bench`
/// measured it on this kind of machine (its "heap call" rows).
pub const HEAP_CALL_COST: &str = "8 to 10 us per call (cargo xtask bench)";

struct TextTrace<W> {
    out: W,
    start_ns: u64,
}

impl<W: Write> TextTrace<W> {
    /// The columns every event line starts with: milliseconds since the start, pid, tid.
    fn prefix(&self, timestamp_ns: u64, pid: u32, tid: u32) -> String {
        let ms = timestamp_ns.saturating_sub(self.start_ns) as f64 / 1e6;
        format!("{ms:>10.3} {pid:>7} {tid:>7}")
    }
}

impl<W: Write> TraceOutput for TextTrace<W> {
    fn started(&mut self, start: &TraceStart) -> io::Result<()> {
        self.start_ns = start.start_ns;
        let what = start.command.as_ref().map_or_else(
            || format!("pid {}", start.pid),
            |cmd| format!("{} (pid {})", escape(cmd), start.pid),
        );
        writeln!(
            self.out,
            "# tracing {what}{}",
            if start.follow {
                " and its children"
            } else {
                ""
            }
        )?;
        if start.source.is_fallback() {
            writeln!(
                self.out,
                "# this kernel has no exceptions tracepoints: faults come from the PAGE_FAULTS perf event"
            )?;
        } else {
            writeln!(self.out, "# faults from the {} source", start.source.name())?;
        }
        if let Some(libc) = &start.heap_probes {
            writeln!(
                self.out,
                "# heap regions from uprobes on {}, in the traced processes only",
                escape(libc)
            )?;
            writeln!(
                self.out,
                "# each malloc/calloc/realloc/free there now traps to the kernel, about {HEAP_CALL_COST}; --no-heap turns this off"
            )?;
        } else if start.heap_blocks_off {
            writeln!(
                self.out,
                "# heap blocks are not tracked: uprobes would cost every malloc/free of pid {} about {HEAP_CALL_COST}; --heap turns them on",
                start.pid
            )?;
        }
        for unseen in &start.unseen {
            writeln!(self.out, "# {}", unseen.says())?;
        }
        writeln!(
            self.out,
            "{:>10} {:>7} {:>7} {:<6} {:<5} {:<6} {:<18} {:<28} {:<24} CODE",
            "TIME_MS", "PID", "TID", "CLASS", "ACC", "MODE", "ADDRESS", "MAPPING@OFFSET", "REGION"
        )?;
        self.out.flush()
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        match event {
            TraceEvent::Fault(traced) => {
                let raw = &traced.fault.fault;
                // The mapping's name is a path any user chooses, and so may a region's be
                // (`--region`): both are escaped, like the code.
                let region = traced.region.as_ref().map_or_else(
                    || "-".to_owned(),
                    |(_, name, location)| {
                        format!(
                            "{}[{}] page {}",
                            escape(name),
                            location.index,
                            location.page
                        )
                    },
                );
                let mapping = format!("{}@{:#x}", escape(&traced.mapping), traced.mapping_offset);
                writeln!(
                    self.out,
                    "{} {:<6} {:<5} {:<6} {:#018x} {mapping:<28} {region:<24} {}",
                    self.prefix(raw.timestamp_ns, raw.pid, raw.tid),
                    traced.fault.class.as_str(),
                    raw.error_code.access().as_str(),
                    raw.error_code.mode().as_str(),
                    raw.address,
                    describe(&traced.code),
                )?;
                write_stack(&mut self.out, traced.stack.as_deref())
            }
            TraceEvent::Syscall(call) => writeln!(
                self.out,
                "{} syscall {}",
                self.prefix(call.timestamp_ns, call.pid, call.tid),
                call.describe()
            ),
            TraceEvent::Signal(signal) => writeln!(
                self.out,
                "{} signal {} si_code {} to tid {}",
                self.prefix(signal.timestamp_ns, signal.pid, signal.tid),
                signal_name(signal.signal),
                si_code_name(signal.signal, signal.code),
                signal.target_tid
            ),
            TraceEvent::RegionStarted(tracked) => {
                let region = &tracked.region;
                writeln!(
                    self.out,
                    "{:>10} {:>7} {:>7} region {} = {:#x}, {} bytes ({}), {} pages",
                    "",
                    tracked.pid,
                    "",
                    escape(&region.name),
                    region.start,
                    region.len,
                    tracked.origin.as_str(),
                    region.page_count()
                )
            }
            TraceEvent::RegionEnded(tracked) => writeln!(
                self.out,
                "{:>10} {:>7} {:>7} region {} ended",
                "",
                tracked.pid,
                "",
                escape(&tracked.region.name)
            ),
            TraceEvent::ProcessForked { pid, parent } => writeln!(
                self.out,
                "{:>10} {parent:>7} {:>7} forked pid {pid}, now traced",
                "", ""
            ),
            TraceEvent::ProcessExited { pid } => {
                writeln!(self.out, "{:>10} {pid:>7} {:>7} exited", "", "")
            }
        }
    }

    fn summary(&mut self, summary: &TraceSummary, session: &Session) -> io::Result<()> {
        writeln!(
            self.out,
            "\nregions (# resident, 0 zero page, . untouched):"
        )?;
        writeln!(
            self.out,
            "  {:<12} {:>7} {:<18} {:>10} {:>7}  PAGES",
            "NAME", "PID", "ADDRESS", "BYTES", "FAULTS"
        )?;
        for (tracked, pages, faults) in session.region_states() {
            let region = &tracked.region;
            writeln!(
                self.out,
                "  {:<12} {:>7} {:#018x} {:>10} {:>7}  [{}]{}",
                escape(&region.name),
                tracked.pid,
                region.start,
                region.len,
                faults,
                pages.settled_strip(super::STRIP_WIDTH),
                if tracked.live { "" } else { " ended" }
            )?;
        }
        if summary.regions_not_listed > 0 {
            writeln!(
                self.out,
                "  ({} older ended regions not listed: only the last {} ended keep their pages)",
                summary.regions_not_listed,
                crate::trace::session::KEPT_ENDED_REGIONS
            )?;
        }
        write_functions(&mut self.out, summary)?;
        let unknown = summary.unknown_mappings;
        if unknown.total() > 0 {
            let faults = if unknown.total() == 1 {
                "1 fault"
            } else {
                &format!("{} faults", unknown.total())
            };
            writeln!(
                self.out,
                "\n{faults} in an [unknown] mapping: nothing demo saw or captured held the address, and the kernel had nothing mapped there when asked ({}), or the process was gone before it could be asked ({})",
                unknown.nothing_mapped, unknown.process_gone
            )?;
        }
        let dropped: Vec<String> = summary
            .records
            .iter()
            .filter(|(_, count)| count.dropped > 0)
            .map(|(kind, count)| format!("{} {kind}", count.dropped))
            .collect();
        if !dropped.is_empty() {
            writeln!(
                self.out,
                "\nLOST: the ring buffer was full; dropped {} records",
                dropped.join(", ")
            )?;
        }
        writeln!(
            self.out,
            "\nfaults: {} ({} minor, {} major, {} error), {} lost; trace ended by {}",
            summary.faults_total,
            summary.minor,
            summary.major,
            summary.error,
            summary.lost,
            summary.ended_by
        )?;
        if let Some(child) = &summary.child {
            writeln!(self.out, "pid {} {child}", summary.pid)?;
        }
        let cost = &summary.loader;
        writeln!(
            self.out,
            "demo's own cost: {} ms of CPU, {} ms of it to attach ({} after), peak RSS {} KiB",
            cost.cpu_ms,
            cost.attach_cpu_ms,
            match cost.ns_per_record(summary.records.values().map(|count| count.delivered).sum()) {
                Some(ns) => format!("{ns:.0} ns per record"),
                None => "no records".to_owned(),
            },
            cost.peak_rss_kib
        )?;
        match &summary.kernel_programs {
            Some(programs) => {
                for program in programs {
                    if let Some(ns) = program.ns_per_run() {
                        writeln!(
                            self.out,
                            "in the kernel (bpf_stats): {} ran {} times, {ns:.0} ns per run",
                            program.program, program.runs
                        )?;
                    }
                }
            }
            None => writeln!(
                self.out,
                "in the kernel: `sysctl kernel.bpf_stats_enabled=1` before the trace shows each program's cost"
            )?,
        }
        if let (Some(rusage), Some((gap, why))) = (summary.rusage, summary.rusage_gap()) {
            let before = match summary.before_trace {
                0 => String::new(),
                before => format!("; {before} before the trace began"),
            };
            writeln!(
                self.out,
                "kernel's count (rusage): {} minor + {} major{before}; traced: {} completed faults",
                rusage.minflt, rusage.majflt, summary.traced_completions
            )?;
            if gap != 0 {
                writeln!(self.out, "difference {gap}: {why}")?;
            }
        }
        write_processes(&mut self.out, summary)?;
        self.out.flush()
    }
}

/// Each traced process whose count differs from the kernel's or that lost records, when the
/// trace followed more than one; and what the heap probes cost, when they filled the ring.
fn write_processes(out: &mut impl Write, summary: &TraceSummary) -> io::Result<()> {
    if summary.processes.len() > 1 {
        let mut alike = 0;
        for process in &summary.processes {
            let totals = &process.totals;
            let lost = process.lost_records();
            if totals.difference().is_none_or(|d| d == 0) && lost == 0 {
                alike += 1;
                continue;
            }
            let command = escape(totals.command.as_deref().unwrap_or("?"));
            let counted = match (totals.kernel, totals.difference()) {
                (Some(kernel), Some(difference)) => format!(
                    "kernel {}, before the trace {}, traced {}, difference {difference}",
                    kernel.total(),
                    totals.before_trace.total(),
                    totals.traced
                ),
                _ => format!("traced {}, still running", totals.traced),
            };
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
            writeln!(out, "pid {} ({command}): {counted}{lost}", totals.pid)?;
        }
        if alike > 0 {
            writeln!(
                out,
                "{alike} of {} traced processes: the kernel counted what the trace saw, or they still run",
                summary.processes.len()
            )?;
        }
    }
    if heap_overloaded(&summary.records) {
        writeln!(
            out,
            "the heap probes' records filled the ring buffer: --no-heap leaves them out, or a larger --ring-buffer-kib makes room"
        )?;
    }
    Ok(())
}

/// A stack's frames, one line each without indentation: `#N   0x…  code`.
pub fn stack_lines(stack: Option<&[StackFrame]>) -> Vec<String> {
    (0..)
        .zip(stack.unwrap_or_default())
        .map(|(depth, frame): (usize, _)| {
            format!(
                "#{depth:<3} {:#018x} {}",
                frame.address,
                describe(&frame.code)
            )
        })
        .collect()
}

/// Writes a fault's stack frames under it, indented.
pub fn write_stack(out: &mut impl Write, stack: Option<&[StackFrame]>) -> io::Result<()> {
    for line in stack_lines(stack) {
        writeln!(out, "{:>12}{line}", "")?;
    }
    Ok(())
}

/// The summary's tables of faults by function, and by function and region.
fn write_functions(out: &mut impl Write, summary: &TraceSummary) -> io::Result<()> {
    if !summary.faults_by_function.is_empty() {
        writeln!(out, "\nfaults by function:")?;
        for row in &summary.faults_by_function {
            writeln!(
                out,
                "  {:>8}  {:<32} {}",
                row.faults,
                function(row.symbol.as_deref(), row.module.as_deref()),
                escape(row.module.as_deref().unwrap_or("-"))
            )?;
        }
    }
    if !summary.faults_by_function_and_region.is_empty() {
        writeln!(out, "\nfaults by function and region:")?;
        for row in &summary.faults_by_function_and_region {
            writeln!(
                out,
                "  {:>8}  {:<32} {}",
                row.faults,
                function(row.symbol.as_deref(), row.module.as_deref()),
                escape(row.region.as_deref().unwrap_or("-"))
            )?;
        }
    }
    Ok(())
}

struct JsonTrace<W: Write> {
    out: JsonLines<W>,
    codes: CodeJson,
}

impl<W: Write> TraceOutput for JsonTrace<W> {
    fn started(&mut self, start: &TraceStart) -> io::Result<()> {
        self.out.line(&TraceLine::Trace(start.into()))?;
        // The start line tells a waiting script that the probes are attached.
        self.out.flush()
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        let line = match event {
            TraceEvent::Fault(traced) => {
                return self.out.line_with(|line| {
                    FaultLine::new(
                        SCENARIO,
                        None,
                        (&traced.fault, &traced.code, traced.stack.as_deref()),
                        traced
                            .region
                            .as_ref()
                            .map(|(_, name, location)| (&**name, *location)),
                        &traced.mapping,
                        Some(traced.mapping_offset),
                    )
                    .write_json(line, &mut self.codes)
                });
            }
            TraceEvent::Syscall(call) => TraceLine::Syscall(SyscallLine::new(SCENARIO, None, call)),
            TraceEvent::Signal(signal) => {
                TraceLine::Signal(SignalLine::generated(SCENARIO, None, signal))
            }
            TraceEvent::RegionStarted(tracked) => TraceLine::Region(RegionLine::new(
                SCENARIO,
                Some(tracked.pid),
                &tracked.region,
                tracked.origin.as_str(),
            )),
            TraceEvent::RegionEnded(tracked) => TraceLine::RegionEnd(RegionEndLine::new(tracked)),
            TraceEvent::ProcessForked { pid, parent } => {
                TraceLine::Process(ProcessLine::forked(*pid, *parent))
            }
            TraceEvent::ProcessExited { pid } => TraceLine::Process(ProcessLine::exited(*pid)),
        };
        self.out.line(&line)
    }

    fn summary(&mut self, summary: &TraceSummary, session: &Session) -> io::Result<()> {
        for (tracked, pages, faults) in session.region_states() {
            self.out
                .line(&TraceLine::RegionSummary(RegionSummaryLine::new(
                    tracked, pages, faults,
                )))?;
        }
        self.out
            .line(&TraceLine::Summary(TraceSummaryLine::new(summary)))?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        kernel::{probes::FaultSourceInUse, symbols::Code},
        output::fixtures::{classified, region},
        trace::{RecordCount, TraceSummary, regions::RegionTracker, session::TracedFault},
    };

    fn summary(records: &[(&'static str, RecordCount)], lost: u64, gap: u64) -> TraceSummary {
        TraceSummary::fixture(10, records, lost, gap)
    }

    fn session() -> Session {
        let system = crate::trace::fake_system::FakeSystem::default();
        Session::new(RegionTracker::new(true, 4096, 4, 4096), system.view())
    }

    /// A process and its files named to retitle the terminal and forge a line, everywhere the
    /// trace's text names them: the command, the mapping, the region and the code.
    #[test]
    fn hostile_names_reach_the_text_escaped_on_their_own_lines() {
        let region = region();
        let location = region.locate(region.start + 6000).unwrap();
        let fault = TracedFault {
            fault: classified(region.start + 6000, 6),
            mapping: Arc::from("/tmp/a\x1b]2;x\x07\nb"),
            mapping_offset: 0x1000,
            region: Some((1, Arc::from("r\x1b[2J\n"), location)),
            code: Arc::new(Code {
                module: Some("/tmp/a\x1b]2;x\x07\nb".to_owned()),
                symbol: Some("f\x1b[31m".to_owned()),
                offset: 0x10,
                ..Code::default()
            }),
            stack: None,
        };
        let mut out = Vec::new();
        {
            let mut trace = output(Format::Text, &mut out);
            trace
                .started(&TraceStart {
                    pid: 100,
                    command: Some("./a\x1b]2;x\x07\nb arg".to_owned()),
                    source: FaultSourceInUse::Tracepoints,
                    heap_probes: None,
                    heap_blocks_off: false,
                    follow: false,
                    unseen: Vec::new(),
                    start_ns: 0,
                })
                .unwrap();
            trace.event(&TraceEvent::Fault(fault)).unwrap();
            trace.summary(&summary(&[], 0, 0), &session()).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains(['\x1b', '\x07']), "{text:?}");
        assert!(
            text.starts_with("# tracing ./a\\e]2;x\\x07\\nb arg (pid 100)\n"),
            "{text}"
        );
        let faults: Vec<&str> = text
            .lines()
            .filter(|line| line.contains(" minor  write "))
            .collect();
        assert_eq!(faults.len(), 1, "{text}");
        let words: Vec<&str> = faults[0].split_whitespace().collect();
        assert_eq!(
            words[7..],
            [
                r"/tmp/a\e]2;x\x07\nb@0x1000",
                r"r\e[2J\n[1500]",
                "page",
                "1",
                r"f\e[31m+0x10"
            ],
            "{text}"
        );
    }

    /// The loader stopped for seconds: N fault records lost, rusage N + 5 more than traced.
    /// The text says the difference holds the lost faults and leaves 5 to get_user_pages.
    #[test]
    fn the_difference_with_rusage_takes_the_lost_faults_out_first() {
        let lost = RecordCount {
            delivered: 10,
            dropped: 864_798,
        };
        let mut out = Vec::new();
        output(Format::Text, &mut out)
            .summary(&summary(&[("fault", lost)], 864_798, 864_803), &session())
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\nLOST: the ring buffer was full; dropped 864798 fault records\n"),
            "{text}"
        );
        let difference = text
            .lines()
            .find(|line| line.starts_with("difference "))
            .unwrap_or_else(|| panic!("no difference line: {text}"));
        assert!(
            difference.starts_with(
                "difference 864803: it includes the faults of the 864798 fault records lost \
                 (the ring buffer was full); the other 5 are faults the kernel took on the \
                 process's behalf through get_user_pages"
            ),
            "{difference}"
        );
    }
}
