//! Output of `demo trace`: one line per event as it happens, then a summary per region and
//! per process; in text or in the JSON Lines schema of `demo alloc`.

use std::io::{self, Write};

use super::{
    Format, JsonLines,
    code::{describe, function},
    lines::{
        CodeJson, FaultLine, ProcessLine, RegionEndLine, RegionLine, RegionSummaryLine, SCENARIO,
        SignalLine, SyscallLine, TraceLine, TraceSummaryLine,
    },
};
use crate::{
    kernel::symbols::StackFrame,
    model::signals::{si_code_name, signal_name},
    trace::{
        TraceOutput, TraceStart, TraceSummary,
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
            |cmd| format!("{cmd} (pid {})", start.pid),
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
                "# heap regions from uprobes on {libc}, in the traced processes only"
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
                let region = traced.region_place().unwrap_or_else(|| "-".to_owned());
                writeln!(
                    self.out,
                    "{} {:<6} {:<5} {:<6} {:#018x} {:<28} {region:<24} {}",
                    self.prefix(raw.timestamp_ns, raw.pid, raw.tid),
                    traced.fault.class.as_str(),
                    raw.error_code.access().as_str(),
                    raw.error_code.mode().as_str(),
                    raw.address,
                    traced.mapping_place(),
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
                    region.name,
                    region.start,
                    region.len,
                    tracked.origin.as_str(),
                    region.page_count()
                )
            }
            TraceEvent::RegionEnded(tracked) => writeln!(
                self.out,
                "{:>10} {:>7} {:>7} region {} ended",
                "", tracked.pid, "", tracked.region.name
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
                region.name,
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
        if summary.unknown_mappings > 0 {
            let faults = if summary.unknown_mappings == 1 {
                "1 fault"
            } else {
                &format!("{} faults", summary.unknown_mappings)
            };
            writeln!(
                self.out,
                "\n{faults} in an [unknown] mapping: it was unmapped, or its process was gone, before demo read the mappings (ld.so maps /etc/ld.so.cache for a moment)"
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
            writeln!(
                self.out,
                "kernel's count (rusage): {} minor + {} major; traced: {} completed faults",
                rusage.minflt, rusage.majflt, summary.traced_completions
            )?;
            if gap != 0 {
                writeln!(self.out, "difference {gap}: {why}")?;
            }
        }
        self.out.flush()
    }
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
                row.module.as_deref().unwrap_or("-")
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
                row.region.as_deref().unwrap_or("-")
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
        self.out.line(&TraceLine::Trace(start))?;
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
