//! What `demo trace` tells its output: the start, every event, and the summary; and the trait
//! every output of a trace implements.

use std::io;

use serde::Serialize;

use super::session::{Session, TraceEvent};
use crate::kernel::probes::{FaultSourceInUse, ProgramRuns};

/// What the trace watches, said once at the start.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct TraceStart {
    pub pid: u32,
    pub command: Option<String>,
    /// Where faults come from; in JSON, `source` and `fallback`.
    #[serde(flatten)]
    pub source: FaultSourceInUse,
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

/// Why a trace ended; named `exit`, `interrupt` or `duration` in both outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TraceEnd {
    /// The target exited.
    Exit,
    /// Ctrl-C or SIGTERM.
    Interrupt,
    /// `--duration` ran out.
    Duration,
}

impl std::fmt::Display for TraceEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Exit => "exit",
            Self::Interrupt => "interrupt",
            Self::Duration => "duration",
        })
    }
}

/// The end of a trace.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct TraceSummary {
    pub pid: u32,
    /// Why the trace ended.
    pub ended_by: TraceEnd,
    /// How the command ended (`demo trace -- CMD`), e.g. `exited with status 0`.
    pub child: Option<crate::model::signals::ProcessEnd>,
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
    /// Faults whose mapping demo could not name (`[unknown]`): the process was gone before its
    /// mappings were read, and the trace had not seen the mapping made.
    pub unknown_mappings: u64,
    /// The functions that faulted most, most first (at most
    /// [`super::functions::LISTED_FUNCTIONS`]).
    pub faults_by_function: Vec<super::functions::FunctionFaults>,
    /// Which function faulted how often on which region, most first (at most
    /// [`super::functions::LISTED_PAIRS`]).
    pub faults_by_function_and_region: Vec<super::functions::FunctionFaults>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, schemars::JsonSchema)]
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
#[derive(Clone, Copy, Debug, Serialize, schemars::JsonSchema)]
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

#[derive(Clone, Copy, Debug, Serialize, schemars::JsonSchema)]
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
    /// The session after a batch of events, and at least every [`PAGES_EVERY`] while the trace
    /// runs: an output that draws pages reads the session's own page states here.
    fn pages(&mut self, _session: &Session) -> io::Result<()> {
        Ok(())
    }
    fn summary(&mut self, summary: &TraceSummary, session: &Session) -> io::Result<()>;
}

/// How often a running trace shows its session to [`TraceOutput::pages`] when no records come.
pub const PAGES_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
