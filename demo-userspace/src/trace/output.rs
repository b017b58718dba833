//! Output of `demo trace`: one line per event as it happens, then a summary per region and
//! per process; in text or in the JSON Lines schema of `demo alloc`.

use std::io::{self, Write};

use serde::Serialize;

use super::session::{Session, TraceEvent};
use crate::probes::ProgramRuns;
use crate::{
    pages::PageModel,
    report::{
        FaultLine, Format, JsonLines, RegionLine, SignalLine, SyscallLine, hex, si_code_name,
    },
    scenario::signal_name,
};

/// What the trace watches, said once at the start.
#[derive(Clone, Debug, Serialize)]
pub struct TraceStart {
    pub pid: u32,
    pub command: Option<String>,
    /// `tracepoint`, or `perf` (with `fallback` when the tracepoints are missing).
    pub source: &'static str,
    pub fallback: bool,
    /// The libc whose malloc/calloc/realloc/free are probed, if any.
    pub heap_probes: Option<String>,
    /// Heap blocks are not tracked although regions are (`--pid` without `--heap`).
    #[serde(skip)]
    pub heap_blocks_off: bool,
    pub follow: bool,
    /// CLOCK_MONOTONIC ns at the start; event times are shown relative to it.
    #[serde(skip)]
    pub start_ns: u64,
}

/// The end of a trace.
#[derive(Clone, Debug, Serialize)]
pub struct TraceSummary {
    pub pid: u32,
    /// Why the trace ended: `exit`, `interrupt` or `duration`.
    pub ended_by: &'static str,
    /// How the command ended (`demo trace -- CMD`), e.g. `exited with status 0`.
    pub child: Option<String>,
    pub faults_total: u64,
    pub minor: u64,
    pub major: u64,
    pub error: u64,
    pub lost: u64,
    /// Faults the kernel counted for traced threads beyond the traced ones (get_user_pages
    /// faults, which no tracepoint sees, or faults whose records were dropped).
    pub unattributed_faults: u64,
    /// Completed faults (minor + major) seen for the traced pid.
    pub traced_completions: u64,
    /// The kernel's own count for the command: ru_minflt and ru_majflt at exit.
    pub rusage: Option<Rusage>,
    /// What tracing cost demo itself.
    pub loader: LoaderCost,
    /// Per record kind, how many reached demo and how many the kernel dropped (ring full).
    pub records: std::collections::BTreeMap<&'static str, RecordCount>,
    /// Followed children that could not be traced because the target map was full.
    pub untraced_children: u64,
    /// Per program, its runs and their time in the kernel; null unless
    /// `kernel.bpf_stats_enabled` is 1.
    pub kernel_programs: Option<Vec<ProgramRuns>>,
    /// Ended regions the summary does not list: only the last
    /// [`super::session::KEPT_ENDED_REGIONS`] ended ones keep their pages.
    pub regions_not_listed: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct RecordCount {
    pub delivered: u64,
    pub dropped: u64,
}

impl RecordCount {
    /// Delivered and dropped counts per kind, leaving out kinds with neither.
    pub fn by_kind(
        delivered: &[u64],
        dropped: &[u64],
    ) -> std::collections::BTreeMap<&'static str, RecordCount> {
        demo_common::RecordKind::ALL
            .iter()
            .map(|&kind| {
                let slot = kind as usize;
                (
                    kind.name(),
                    RecordCount {
                        delivered: delivered.get(slot).copied().unwrap_or(0),
                        dropped: dropped.get(slot).copied().unwrap_or(0),
                    },
                )
            })
            .filter(|(_, count)| count.delivered + count.dropped > 0)
            .collect()
    }
}

/// demo's own CPU time (getrusage) and peak resident memory (VmHWM in /proc/self/status:
/// getrusage's ru_maxrss was seen here to report 210 MiB while VmRSS, sampled every
/// millisecond, never passed 25 MiB).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct LoaderCost {
    pub cpu_ms: u64,
    /// Of `cpu_ms`, what loading and attaching took, before the first record.
    pub attach_cpu_ms: u64,
    pub peak_rss_kib: u64,
}

impl LoaderCost {
    /// CPU nanoseconds per record after the attach.
    pub fn ns_per_record(&self, records: u64) -> Option<f64> {
        (records > 0)
            .then(|| self.cpu_ms.saturating_sub(self.attach_cpu_ms) as f64 * 1e6 / records as f64)
    }

    /// The cost so far, of which `attach_cpu_ms` went to loading and attaching.
    pub fn now(attach_cpu_ms: u64) -> Self {
        let peak = procfs::process::Process::myself()
            .and_then(|me| me.status())
            .ok()
            .and_then(|status| status.vmhwm);
        Self {
            cpu_ms: Self::cpu_ms_now(),
            attach_cpu_ms,
            peak_rss_kib: peak.unwrap_or(0),
        }
    }

    /// demo's user and system CPU time so far, in milliseconds.
    pub fn cpu_ms_now() -> u64 {
        // SAFETY: getrusage fills the struct we pass.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
        let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
        ms(usage.ru_utime) + ms(usage.ru_stime)
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Rusage {
    pub minflt: u64,
    pub majflt: u64,
}

impl TraceSummary {
    /// How many more faults the kernel counted than the trace saw, and why, when it did.
    pub fn rusage_gap(&self) -> Option<(i64, &'static str)> {
        let rusage = self.rusage?;
        let gap = (rusage.minflt + rusage.majflt) as i64 - self.traced_completions as i64;
        Some((
            gap,
            if gap > 0 {
                "faults the kernel took on the process's behalf through get_user_pages (execve \
                 copying arguments to the new stack, reads of /proc/PID/mem), which raise no \
                 tracepoint or perf event; rusage also includes reaped children"
            } else {
                "none"
            },
        ))
    }
}

pub trait TraceOutput {
    fn started(&mut self, start: &TraceStart) -> io::Result<()>;
    fn event(&mut self, event: &TraceEvent) -> io::Result<()>;
    fn summary(&mut self, summary: &TraceSummary, session: &Session) -> io::Result<()>;
}

pub fn output<'a>(format: Format, out: impl Write + 'a) -> Box<dyn TraceOutput + 'a> {
    match format {
        Format::Text => Box::new(TextTrace { out, start_ns: 0 }),
        Format::Json => Box::new(JsonTrace {
            out: JsonLines::new(out),
        }),
    }
}

/// How many glyphs a region's page strip has at most; larger regions share glyphs.
const STRIP_WIDTH: usize = 64;

/// The page strip of a trace region: its pages as they are now, without the per-step marks.
fn region_strip(pages: &PageModel) -> String {
    let mut settled = pages.clone();
    settled.begin_step();
    settled.strip_scaled(STRIP_WIDTH)
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
        match (start.source, start.fallback) {
            ("perf", true) => writeln!(
                self.out,
                "# this kernel has no exceptions tracepoints: faults come from the PAGE_FAULTS perf event"
            )?,
            (source, _) => writeln!(self.out, "# faults from the {source} source")?,
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
            "{:>10} {:>7} {:>7} {:<6} {:<5} {:<6} {:<18} {:<28} REGION",
            "TIME_MS", "PID", "TID", "CLASS", "ACC", "MODE", "ADDRESS", "MAPPING@OFFSET"
        )?;
        self.out.flush()
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        match event {
            TraceEvent::Fault(traced) => {
                let raw = &traced.fault.fault;
                let region = traced.region.as_ref().map_or_else(
                    || "-".to_owned(),
                    |(_, name, location)| {
                        format!("{name}[{}] page {}", location.index, location.page)
                    },
                );
                writeln!(
                    self.out,
                    "{} {:<6} {:<5} {:<6} {:#018x} {:<28} {region}",
                    self.prefix(raw.timestamp_ns, raw.pid, raw.tid),
                    traced.fault.class.as_str(),
                    raw.error_code.access().as_str(),
                    raw.error_code.mode().as_str(),
                    raw.address,
                    format!("{}@{:#x}", traced.mapping, traced.mapping_offset),
                )
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
                region_strip(pages),
                if tracked.live { "" } else { " ended" }
            )?;
        }
        if summary.regions_not_listed > 0 {
            writeln!(
                self.out,
                "  ({} older ended regions not listed: only the last {} ended keep their pages)",
                summary.regions_not_listed,
                super::session::KEPT_ENDED_REGIONS
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

struct JsonTrace<W: Write> {
    out: JsonLines<W>,
}

impl<W: Write> JsonTrace<W> {
    fn line(&mut self, value: &impl Serialize) -> io::Result<()> {
        self.out.line(value)
    }
}

const SCENARIO: &str = "trace";

#[derive(Serialize)]
struct StartLine<'a> {
    kind: &'static str,
    #[serde(flatten)]
    start: &'a TraceStart,
}

#[derive(Serialize)]
struct RegionEndLine<'a> {
    kind: &'static str,
    scenario: &'static str,
    pid: u32,
    name: &'a str,
    #[serde(serialize_with = "hex")]
    address: u64,
}

#[derive(Serialize)]
struct ProcessLine {
    kind: &'static str,
    scenario: &'static str,
    pid: u32,
    parent: Option<u32>,
    event: &'static str,
}

#[derive(Serialize)]
struct RegionSummaryLine<'a> {
    kind: &'static str,
    scenario: &'static str,
    pid: u32,
    name: &'a str,
    #[serde(serialize_with = "hex")]
    address: u64,
    size: u64,
    origin: &'static str,
    faults: u64,
    resident_pages: Vec<u64>,
    zero_pages: Vec<u64>,
    pages: String,
    live: bool,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    kind: &'static str,
    scenario: &'static str,
    #[serde(flatten)]
    summary: &'a TraceSummary,
    rusage_difference: Option<i64>,
}

impl<W: Write> TraceOutput for JsonTrace<W> {
    fn started(&mut self, start: &TraceStart) -> io::Result<()> {
        self.line(&StartLine {
            kind: "trace",
            start,
        })?;
        // The start line tells a waiting script that the probes are attached.
        self.out.flush()
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        match event {
            TraceEvent::Fault(traced) => self.out.line_with(|line| {
                FaultLine::new(
                    SCENARIO,
                    None,
                    &traced.fault,
                    traced
                        .region
                        .as_ref()
                        .map(|(_, name, location)| (&**name, *location)),
                    &traced.mapping,
                    Some(traced.mapping_offset),
                )
                .write_json(line)
            }),
            TraceEvent::Syscall(call) => self.line(&SyscallLine::new(SCENARIO, None, call)),
            TraceEvent::Signal(signal) => self.line(&SignalLine::generated(SCENARIO, None, signal)),
            TraceEvent::RegionStarted(tracked) => self.line(&RegionLine::new(
                SCENARIO,
                Some(tracked.pid),
                &tracked.region,
                tracked.origin.as_str(),
            )),
            TraceEvent::RegionEnded(tracked) => self.line(&RegionEndLine {
                kind: "region_end",
                scenario: SCENARIO,
                pid: tracked.pid,
                name: &tracked.region.name,
                address: tracked.region.start,
            }),
            TraceEvent::ProcessForked { pid, parent } => self.line(&ProcessLine {
                kind: "process",
                scenario: SCENARIO,
                pid: *pid,
                parent: Some(*parent),
                event: "fork",
            }),
            TraceEvent::ProcessExited { pid } => self.line(&ProcessLine {
                kind: "process",
                scenario: SCENARIO,
                pid: *pid,
                parent: None,
                event: "exit",
            }),
        }
    }

    fn summary(&mut self, summary: &TraceSummary, session: &Session) -> io::Result<()> {
        for (tracked, pages, faults) in session.region_states() {
            self.line(&RegionSummaryLine {
                kind: "region_summary",
                scenario: SCENARIO,
                pid: tracked.pid,
                name: &tracked.region.name,
                address: tracked.region.start,
                size: tracked.region.len,
                origin: tracked.origin.as_str(),
                faults,
                resident_pages: pages.resident_pages(),
                zero_pages: pages.zero_pages(),
                pages: region_strip(pages),
                live: tracked.live,
            })?;
        }
        self.line(&SummaryLine {
            kind: "summary",
            scenario: SCENARIO,
            summary,
            rusage_difference: summary.rusage_gap().map(|(gap, _)| gap),
        })?;
        self.out.flush()
    }
}
