//! What `demo trace` tells its output: the start, every event, and the summary; and the trait
//! every output of a trace implements.

use std::{collections::BTreeMap, io};

use demo_common::RecordKind;

use super::{
    durations::DurationSummary,
    session::{ProcessTotals, Session, TraceEvent, TracedFault},
    stacks::StackTotals,
};
use crate::{
    kernel::probes::{FaultSourceInUse, ProgramRuns},
    model::call_graph::CallGraph,
};

/// What the trace watches, said once at the start.
#[derive(Clone, Debug)]
pub struct TraceStart {
    /// The one process traced (the command, or `--pid`); `None` for a cgroup.
    pub pid: Option<u32>,
    /// `--cgroup`: the cgroup's path, as /proc/PID/cgroup shows it.
    pub cgroup: Option<String>,
    pub command: Option<String>,
    /// Where faults come from; in JSON, `source` and `fallback`.
    pub source: FaultSourceInUse,
    /// The libc whose malloc/calloc/realloc/free are probed, if any.
    pub heap_probes: Option<String>,
    /// Heap blocks are not tracked although regions are (`--pid` without `--heap`).
    pub heap_blocks_off: bool,
    pub follow: bool,
    /// What demo's probes do not reach in the target's program.
    pub unseen: Vec<crate::kernel::executable::Unseen>,
    /// CLOCK_MONOTONIC ns at the start; event times are shown relative to it.
    pub start_ns: u64,
    /// How each fault's stack is captured (`--stacks`); `None` without stacks.
    pub call_graph: Option<CallGraph>,
    /// `--min-duration`: the text and JSON lines list only faults that took at least this
    /// long (an untimed fault is not listed); the summary counts every fault.
    pub min_duration: Option<std::time::Duration>,
}

impl TraceStart {
    /// True when an output that lists faults lists `fault` (see [`Self::min_duration`]).
    pub fn lists(&self, fault: &TracedFault) -> bool {
        self.min_duration.is_none_or(|min| {
            (fault.fault.timing)
                .is_some_and(|timing| u128::from(timing.duration_ns) >= min.as_nanos())
        })
    }
}

/// Why a trace ended; named `exit`, `interrupt`, `duration` or `cgroup_removed` in both
/// outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceEnd {
    /// The target exited.
    Exit,
    /// Ctrl-C or SIGTERM.
    Interrupt,
    /// `--duration` ran out.
    Duration,
    /// The `--cgroup` directory was removed.
    CgroupRemoved,
}

impl std::fmt::Display for TraceEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Exit => "exit",
            Self::Interrupt => "interrupt",
            Self::Duration => "duration",
            Self::CgroupRemoved => "cgroup_removed",
        })
    }
}

/// The end of a trace.
#[derive(Clone, Debug)]
pub struct TraceSummary {
    /// The one process traced (the command, or `--pid`); `None` for a cgroup.
    pub pid: Option<u32>,
    /// `--cgroup`: the cgroup traced, its path as /proc/PID/cgroup shows it.
    pub cgroup: Option<String>,
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
    /// Fault completions that ended no fault the trace saw begin: its record was lost, or it
    /// began before the trace did.
    pub completions_without_start: u64,
    /// Completed faults whose class by their thread's counters differs from the completion
    /// event's: 0 unless the kernel stops counting a fault where it fires its event.
    pub class_disagreements: u64,
    /// What the faults cost in time; `None` with durations off.
    pub durations: Option<DurationSummary>,
    /// How stacks were captured, and what they were like; `None` without `--stacks`.
    pub stacks: Option<(CallGraph, StackTotals)>,
    /// Completed faults (minor + major) seen for every traced process: the traced pid, and
    /// with `--follow` the processes it started.
    pub traced_completions: u64,
    /// Faults the traced pid's threads had counted before the trace began (a command's, while
    /// demo held it before its exec); for a cgroup, the sum of its processes'. `None` when any
    /// of those counts is not known, since a partial sum would pass for the whole.
    pub before_trace: Option<u64>,
    /// The kernel's own count for the command, and its CPU time: its rusage at exit, its
    /// children that it reaped included.
    pub rusage: Option<Rusage>,
    /// What the kernel and the trace counted for each traced process, with the records it lost.
    pub processes: Vec<ProcessSummary>,
    /// What tracing cost demo itself.
    pub loader: LoaderCost,
    /// Per record kind, how many reached demo and how many the kernel dropped (ring full).
    pub records: std::collections::BTreeMap<&'static str, RecordCount>,
    /// Followed children that could not be traced because the target map was full.
    pub untraced_children: u64,
    /// Under `--cgroup`, events of the cgroup's processes that could not join the trace
    /// because the target map was full: each event counted once. The trace has nothing else
    /// of those processes.
    pub unjoined_events: u64,
    /// Per program, its runs and their time in the kernel; null unless
    /// `kernel.bpf_stats_enabled` is 1.
    pub kernel_programs: Option<Vec<ProgramRuns>>,
    /// Ended regions the summary does not list: only the last
    /// [`super::session::KEPT_ENDED_REGIONS`] ended ones keep their pages.
    pub regions_not_listed: u64,
    /// Faults whose mapping demo could not name (`[unknown]`), by cause: nothing the trace saw
    /// or captured held the address, and the kernel had nothing there when asked, or the
    /// process was gone before it could be asked.
    pub unknown_mappings: super::session::UnknownMappings,
    /// What demo's own tracing made the traced processes do (the command's faults before its
    /// exec, the `[uprobes]` page, ptrace stops), left out of the events and the totals above
    /// but in `traced_completions`, since the kernel counts those faults.
    pub demo_own: super::own::DemoOwn,
    /// The functions that faulted most, most first (at most
    /// [`super::functions::LISTED_FUNCTIONS`]).
    pub faults_by_function: Vec<super::functions::FunctionFaults>,
    /// Which function faulted how often on which region, most first (at most
    /// [`super::functions::LISTED_PAIRS`]).
    pub faults_by_function_and_region: Vec<super::functions::FunctionFaults>,
}

/// One traced process in the summary: its counts, and the records it lost by kind.
#[derive(Clone, Debug)]
pub struct ProcessSummary {
    pub totals: ProcessTotals,
    pub lost: BTreeMap<RecordKind, u64>,
    /// For a process still running at the end: its own counts and CPU time as /proc/PID/stat
    /// gave them then; `None` for one that exited (its counts are its exit records',
    /// `totals.kernel`, and its CPU time is unknown unless demo reaped it) or that could not be
    /// read.
    pub at_end: Option<ProcessStat>,
}

/// A process's own count of its faults, and its CPU time, all its threads, from
/// /proc/PID/stat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessStat {
    pub minflt: u64,
    pub majflt: u64,
    /// User and system time, counted by the kernel in clock ticks.
    pub cpu_ns: u64,
}

impl ProcessStat {
    /// Process `pid`'s now; `None` once it is gone.
    pub fn read(pid: u32) -> Option<Self> {
        let stat = procfs::process::Process::new(pid as i32)
            .and_then(|process| process.stat())
            .ok()?;
        Some(Self {
            minflt: stat.minflt,
            majflt: stat.majflt,
            cpu_ns: (stat.utime + stat.stime) * 1_000_000_000 / procfs::ticks_per_second().max(1),
        })
    }
}

impl ProcessSummary {
    /// One per traced process, with the records each lost (`lost`, by pid).
    pub fn of_session(
        session: &Session,
        mut lost: BTreeMap<u32, BTreeMap<RecordKind, u64>>,
    ) -> Vec<Self> {
        session
            .process_totals()
            .map(|totals| Self {
                lost: lost.remove(&totals.pid).unwrap_or_default(),
                totals,
                at_end: None,
            })
            .collect()
    }

    /// Records it lost, of every kind.
    pub fn lost_records(&self) -> u64 {
        self.lost.values().sum()
    }
}

#[derive(Clone, Copy, Debug, Default)]
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
#[derive(Clone, Copy, Debug)]
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

/// A command's rusage (wait4): its faults and CPU time, and those of the children it waited
/// for.
#[derive(Clone, Copy, Debug)]
pub struct Rusage {
    pub minflt: u64,
    pub majflt: u64,
    pub user_ns: u64,
    pub system_ns: u64,
}

impl TraceSummary {
    /// Fault records the ring buffer dropped (with or without a stack, of either kind): faults
    /// the kernel took and counted that the trace never saw.
    pub fn lost_fault_records(&self) -> u64 {
        [
            demo_common::RecordKind::Fault,
            demo_common::RecordKind::FaultStack,
            demo_common::RecordKind::FaultUserStack,
        ]
        .iter()
        .filter_map(|kind| self.records.get(kind.name()))
        .map(|count| count.dropped)
        .sum()
    }

    /// How many more faults the kernel counted during the trace than the trace saw complete
    /// (rusage, less what was counted before the trace began), and why, when it did.
    pub fn rusage_gap(&self) -> Option<(i64, String)> {
        let rusage = self.rusage?;
        let gap = (rusage.minflt + rusage.majflt) as i64
            - self.before_trace? as i64
            - self.traced_completions as i64;
        let lost_faults = self.lost_fault_records();
        Some((
            gap,
            explain_gap(gap, lost_faults, self.lost.saturating_sub(lost_faults)),
        ))
    }
}

/// Why rusage counted `gap` more faults than the trace completed, when `lost_faults` fault
/// records and `other_lost` other records (dropped, or undecodable) were lost. Lost faults
/// come first: only what remains of the gap once they are taken out may be put down to
/// get_user_pages, which the kernel counts and no tracepoint sees.
pub fn explain_gap(gap: i64, lost_faults: u64, other_lost: u64) -> String {
    const GET_USER_PAGES: &str = "faults the kernel took on the process's behalf through \
        get_user_pages (execve copying arguments to the new stack, reads of /proc/PID/mem), \
        which raise no tracepoint or perf event; and, unless --follow traced them, the faults of \
        the children it reaped, which rusage includes";
    if gap < 0 {
        return "the trace completed more faults than the kernel counted".to_owned();
    }
    if gap == 0 {
        return "none".to_owned();
    }
    let gap = gap.unsigned_abs();
    let records = |count: u64, what: &str| {
        if count == 1 {
            format!("1 {what}record")
        } else {
            format!("{count} {what}records")
        }
    };
    // Another kind of record lost may have been the one that would have classed a thread's
    // last fault, and an undecodable one may have been a fault itself: neither can be counted,
    // so the sentence says so rather than give their share to get_user_pages.
    let rest = |count: u64| match other_lost {
        0 => format!("the other {count} are {GET_USER_PAGES}"),
        other => format!(
            "of the other {count}, some may be faults left unclassed by the {} lost, the rest \
             are {GET_USER_PAGES}",
            records(other, "other ")
        ),
    };
    match lost_faults {
        0 if other_lost == 0 => GET_USER_PAGES.to_owned(),
        0 => format!(
            "some of it may be faults left unclassed by the {} lost; the rest are \
             {GET_USER_PAGES}",
            records(other_lost, "")
        ),
        lost if lost >= gap => format!(
            "faults whose records were lost: the ring buffer dropped {}, enough for all of it, so \
             none of it is put down to get_user_pages",
            records(lost, "fault ")
        ),
        lost => format!(
            "it includes the faults of the {} lost (the ring buffer was full); {}",
            records(lost, "fault "),
            rest(gap - lost)
        ),
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
    /// The trace has read every record there is for now: an output that holds lines back
    /// writes them out, so that each event shows while the program runs.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// True when the heap probes' records are what filled the ring buffer: records were lost, and
/// heap calls are most of what the kernel side wrote.
pub fn heap_overloaded(records: &BTreeMap<&'static str, RecordCount>) -> bool {
    let written = |count: &RecordCount| count.delivered + count.dropped;
    let all: u64 = records.values().map(written).sum();
    let heap: u64 = [RecordKind::HeapEnter, RecordKind::HeapExit]
        .iter()
        .filter_map(|kind| records.get(kind.name()))
        .map(written)
        .sum();
    let dropped: u64 = records.values().map(|count| count.dropped).sum();
    dropped > 0 && heap * 2 > all
}

/// How often a running trace shows its session to [`TraceOutput::pages`] when no records come.
pub const PAGES_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

#[cfg(test)]
impl TraceSummary {
    /// The summary of a command that ended after `faults` minor faults while its rusage
    /// counted `gap` more, with `records` per kind and `lost` records: the summary tests' one
    /// fixture.
    pub(crate) fn fixture(
        faults: u64,
        records: &[(&'static str, RecordCount)],
        lost: u64,
        gap: u64,
    ) -> Self {
        Self {
            stacks: None,
            pid: Some(100),
            cgroup: None,
            ended_by: TraceEnd::Exit,
            child: None,
            faults_total: faults,
            minor: faults,
            major: 0,
            error: 0,
            lost,
            unattributed_faults: 0,
            completions_without_start: 0,
            class_disagreements: 0,
            durations: None,
            traced_completions: faults,
            before_trace: Some(0),
            rusage: Some(Rusage {
                minflt: faults + gap,
                majflt: 0,
                user_ns: 0,
                system_ns: 0,
            }),
            processes: Vec::new(),
            loader: LoaderCost {
                cpu_ms: 0,
                attach_cpu_ms: 0,
                peak_rss_kib: 0,
            },
            records: records.iter().copied().collect(),
            untraced_children: 0,
            unjoined_events: 0,
            kernel_programs: None,
            regions_not_listed: 0,
            unknown_mappings: super::session::UnknownMappings::default(),
            demo_own: super::own::DemoOwn::default(),
            faults_by_function: Vec::new(),
            faults_by_function_and_region: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The heap probes are named as the cause only when records were lost and heap calls are
    /// most of what was written, not whenever heap records were lost.
    #[test]
    fn the_heap_probes_are_blamed_only_when_they_wrote_most_of_a_full_buffer() {
        let count = |delivered, dropped| RecordCount { delivered, dropped };
        let records = |heap: RecordCount, fault: RecordCount| -> BTreeMap<_, _> {
            [("heap_enter", heap), ("heap_exit", heap), ("fault", fault)]
                .into_iter()
                .collect()
        };
        assert!(heap_overloaded(&records(count(900, 100), count(900, 100))));
        assert!(!heap_overloaded(&records(count(1000, 0), count(900, 0))));
        assert!(!heap_overloaded(&records(count(100, 10), count(900, 100))));
    }

    #[test]
    fn without_losses_the_whole_difference_is_get_user_pages() {
        let why = explain_gap(5, 0, 0);
        assert!(why.starts_with("faults the kernel took"), "{why}");
        assert!(why.contains("get_user_pages"), "{why}");
        assert_eq!(explain_gap(0, 0, 0), "none");
        assert_eq!(explain_gap(0, 7, 3), "none");
    }

    /// The case of a loader stopped for seconds: the ring buffer dropped N fault records and
    /// rusage counted N + 5 more than the trace. Only the 5 may be get_user_pages.
    #[test]
    fn lost_fault_records_are_taken_out_before_get_user_pages() {
        let why = explain_gap(864_803, 864_798, 0);
        assert!(
            why.starts_with("it includes the faults of the 864798 fault records lost"),
            "{why}"
        );
        assert!(
            why.contains("; the other 5 are faults the kernel took on the process's behalf through get_user_pages"),
            "{why}"
        );
        // Every number in the sentence is one of the two that add up to the difference.
        let numbers: Vec<u64> = why
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|word| word.parse().ok())
            .collect();
        assert_eq!(numbers, [864_798, 5], "{why}");
    }

    #[test]
    fn lost_faults_that_cover_the_difference_leave_nothing_to_get_user_pages() {
        for (gap, lost) in [(10, 10), (10, 12)] {
            let why = explain_gap(gap, lost, 4);
            assert!(why.starts_with("faults whose records were lost"), "{why}");
            assert!(
                why.ends_with("none of it is put down to get_user_pages"),
                "{why}"
            );
            assert!(!why.contains("took on the process's behalf"), "{why}");
        }
        assert!(explain_gap(1, 1, 0).contains("dropped 1 fault record,"));
    }

    #[test]
    fn other_records_lost_are_named_beside_get_user_pages() {
        let why = explain_gap(20, 5, 3);
        assert!(why.contains("the 5 fault records lost"), "{why}");
        assert!(
            why.contains(
                "of the other 15, some may be faults left unclassed by the 3 other records lost"
            ),
            "{why}"
        );
        let why = explain_gap(20, 0, 1);
        assert!(
            why.starts_with("some of it may be faults left unclassed by the 1 record lost"),
            "{why}"
        );
    }

    #[test]
    fn the_summary_counts_lost_fault_records_of_both_kinds() {
        let summary = |dropped: &[(&'static str, u64)], lost, gap| {
            let records: Vec<_> = dropped
                .iter()
                .map(|&(kind, dropped)| {
                    (
                        kind,
                        RecordCount {
                            delivered: 1,
                            dropped,
                        },
                    )
                })
                .collect();
            TraceSummary::fixture(100, &records, lost, gap)
        };
        let stopped = summary(
            &[("fault", 30), ("fault_stack", 8), ("syscall_enter", 2)],
            40,
            43,
        );
        assert_eq!(stopped.lost_fault_records(), 38);
        let (gap, why) = stopped.rusage_gap().unwrap();
        assert_eq!(gap, 43);
        assert!(why.contains("the 38 fault records lost"), "{why}");
        assert!(
            why.contains(
                "of the other 5, some may be faults left unclassed by the 2 other records lost"
            ),
            "{why}"
        );
        let clean = summary(&[], 0, 4);
        assert_eq!(clean.rusage_gap().unwrap(), (4, explain_gap(4, 0, 0)));
    }
}
