//! The trace's `summary` line: why it ended, its counts, what it lost, what it cost, and the
//! functions that faulted most.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use super::{durations::DurationsLine, stacks::StacksLine, trace::SCENARIO};
use crate::{
    kernel::probes::ProgramRuns,
    model::signals::ProcessEnd,
    trace::functions::FunctionFaults,
    trace::own::DemoOwn,
    trace::session::UnknownMappings,
    trace::{LoaderCost, ProcessSummary, RecordCount, Rusage, TraceEnd, TraceSummary},
};

/// The trace's `summary` line.
#[derive(Serialize, JsonSchema)]
pub struct TraceSummaryLine<'a> {
    scenario: &'static str,
    /// The one process traced (the command, or `--pid`); null for a cgroup.
    pid: Option<u32>,
    /// `--cgroup`: the cgroup traced, its path as /proc/PID/cgroup shows it; null otherwise.
    cgroup: Option<&'a str>,
    /// Why the trace ended.
    ended_by: TraceEndLine,
    /// How the command ended (`demo trace -- CMD`), e.g. `exited with status 0`.
    child: Option<&'a ProcessEnd>,
    faults_total: u64,
    minor: u64,
    major: u64,
    error: u64,
    lost: u64,
    /// Faults the kernel counted for traced threads beyond the traced ones (get_user_pages
    /// faults, which no tracepoint sees, or faults whose records were dropped).
    unattributed_faults: u64,
    /// Fault completions that ended no fault the trace saw begin: its record was lost, or it
    /// began before the trace did.
    completions_without_start: u64,
    /// Completed faults whose class by their thread's counters differs from the completion
    /// event's: 0 unless the kernel stops counting a fault where it fires its event.
    class_disagreements: u64,
    /// What the faults cost in time, every fault counted (listed or not under
    /// `--min-duration`); null with `--no-durations`.
    // Boxed: the histograms would make every line as large as the summary.
    durations: Option<Box<DurationsLine<'a>>>,
    /// How stacks were captured and what they were like; null without `--stacks`.
    // Boxed, as `durations` is.
    stacks: Option<Box<StacksLine>>,
    /// Completed faults (minor + major) seen for every traced process: the traced pid, and
    /// with `--follow` the processes it started.
    traced_completions: u64,
    /// The kernel's own count for the command, and its CPU time: its rusage at exit (wait4),
    /// its children that it reaped included.
    rusage: Option<CommandRusageLine>,
    /// What tracing cost demo itself.
    loader: LoaderCostLine,
    /// Per record kind, how many reached demo and how many the kernel dropped (ring full).
    records: BTreeMap<&'static str, RecordCountLine>,
    /// Followed children that could not be traced because the target map was full.
    untraced_children: u64,
    /// `--cgroup`: events of the cgroup's processes that could not join the trace because the
    /// target map was full, each counted once; the trace has nothing else of those processes.
    unjoined_events: u64,
    /// Per program, its runs and their time in the kernel; null unless
    /// `kernel.bpf_stats_enabled` is 1.
    kernel_programs: Option<Vec<ProgramRunsLine<'a>>>,
    /// Ended regions the summary does not list: only the last
    /// [`super::session::KEPT_ENDED_REGIONS`] ended ones keep their pages.
    regions_not_listed: u64,
    /// Faults whose mapping demo could not name (`[unknown]`): nothing the trace saw or
    /// captured held the address, and the kernel had nothing there when asked, or the process
    /// was gone before it could be asked.
    unknown_mappings: u64,
    /// `unknown_mappings` by cause.
    unknown_mappings_by_cause: UnknownMappingsLine,
    /// What demo's own tracing made the traced processes do, left out of the fault, signal
    /// and function counts above (the faults are in `traced_completions`: the kernel counts
    /// them).
    demo_own: DemoOwnLine,
    /// The functions that faulted most, most first (at most
    /// [`super::functions::LISTED_FUNCTIONS`]).
    faults_by_function: Vec<FunctionFaultsLine<'a>>,
    /// Which function faulted how often on which region, most first (at most
    /// [`super::functions::LISTED_PAIRS`]).
    faults_by_function_and_region: Vec<FunctionFaultsLine<'a>>,
    /// How many more faults the kernel counted during the trace than the trace saw complete
    /// (rusage, less `before_trace`, less `traced_completions`).
    rusage_difference: Option<i64>,
    /// Faults the traced pid's threads had counted before the trace began (a command's, while
    /// demo held it before its exec); for a cgroup, the sum of its processes'; null when any
    /// of those counts is not known.
    before_trace: Option<u64>,
    /// Each traced process: what the kernel counted for it, what the trace saw, and the records
    /// it lost.
    processes: Vec<TracedProcessLine<'a>>,
}

/// One traced process in the summary.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TracedProcess")]
struct TracedProcessLine<'a> {
    pid: u32,
    /// Its command name, as last read.
    command: Option<&'a str>,
    /// Completed faults the trace saw.
    traced: u64,
    /// Faults its threads had counted before the trace began; null when that is not known (it
    /// joined a cgroup's trace while other threads of it ran).
    before_trace: Option<u64>,
    /// What the kernel counted for it over its life, from its threads' final counters; null
    /// while it runs.
    kernel: Option<RusageLine>,
    /// `kernel` less `before_trace` less `traced`: faults the kernel took through
    /// get_user_pages, or whose records were lost; null while it runs.
    difference: Option<i64>,
    /// Records of it that the ring buffer dropped, by kind.
    lost: BTreeMap<&'static str, u64>,
    /// For a process still running at the end that demo did not start: its own counts and CPU
    /// time as /proc/PID/stat gave them then; null for one that exited (`kernel` has its
    /// counts; its CPU time is unknown unless it is the command, in `rusage`).
    at_end: Option<ProcessStatLine>,
}

/// A process's own faults and CPU time, from /proc/PID/stat.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "ProcessStat")]
struct ProcessStatLine {
    minflt: u64,
    majflt: u64,
    /// User and system time, all its threads (counted by the kernel in clock ticks).
    cpu_ns: u64,
}

impl<'a> From<&'a ProcessSummary> for TracedProcessLine<'a> {
    fn from(process: &'a ProcessSummary) -> Self {
        let totals = &process.totals;
        Self {
            pid: totals.pid,
            command: totals.command.as_deref(),
            traced: totals.traced,
            before_trace: totals.before_trace.map(demo_common::FaultCounters::total),
            kernel: totals.kernel.map(|kernel| RusageLine {
                minflt: kernel.minor,
                majflt: kernel.major,
            }),
            difference: totals.difference(),
            lost: (process.lost.iter())
                .map(|(kind, &lost)| (kind.name(), lost))
                .collect(),
            at_end: process.at_end.map(|stat| ProcessStatLine {
                minflt: stat.minflt,
                majflt: stat.majflt,
                cpu_ns: stat.cpu_ns,
            }),
        }
    }
}

impl<'a> TraceSummaryLine<'a> {
    pub fn new(summary: &'a TraceSummary) -> Self {
        let functions =
            |faults: &'a [FunctionFaults]| faults.iter().map(FunctionFaultsLine::from).collect();
        Self {
            scenario: SCENARIO,
            pid: summary.pid,
            cgroup: summary.cgroup.as_deref(),
            ended_by: summary.ended_by.into(),
            child: summary.child.as_ref(),
            faults_total: summary.faults_total,
            minor: summary.minor,
            major: summary.major,
            error: summary.error,
            lost: summary.lost,
            unattributed_faults: summary.unattributed_faults,
            completions_without_start: summary.completions_without_start,
            class_disagreements: summary.class_disagreements,
            durations: (summary.durations.as_ref())
                .map(|durations| Box::new(DurationsLine::new(durations))),
            stacks: summary
                .stacks
                .map(|stacks| Box::new(StacksLine::from(stacks))),
            traced_completions: summary.traced_completions,
            rusage: summary.rusage.map(CommandRusageLine::from),
            loader: summary.loader.into(),
            records: (summary.records.iter())
                .map(|(&kind, &count)| (kind, count.into()))
                .collect(),
            untraced_children: summary.untraced_children,
            unjoined_events: summary.unjoined_events,
            kernel_programs: (summary.kernel_programs.as_ref())
                .map(|programs| programs.iter().map(ProgramRunsLine::from).collect()),
            regions_not_listed: summary.regions_not_listed,
            unknown_mappings: summary.unknown_mappings.total(),
            unknown_mappings_by_cause: summary.unknown_mappings.into(),
            demo_own: summary.demo_own.into(),
            faults_by_function: functions(&summary.faults_by_function),
            faults_by_function_and_region: functions(&summary.faults_by_function_and_region),
            rusage_difference: summary.rusage_gap().map(|(gap, _)| gap),
            before_trace: summary.before_trace,
            processes: summary
                .processes
                .iter()
                .map(TracedProcessLine::from)
                .collect(),
        }
    }
}

/// Faults named `[unknown]`, by cause.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "UnknownMappings")]
struct UnknownMappingsLine {
    /// The kernel, asked when the fault's record was read, had nothing mapped there.
    nothing_mapped: u64,
    /// The process was gone before the kernel could be asked.
    process_gone: u64,
}

impl From<UnknownMappings> for UnknownMappingsLine {
    fn from(unknown: UnknownMappings) -> Self {
        Self {
            nothing_mapped: unknown.nothing_mapped,
            process_gone: unknown.process_gone,
        }
    }
}

/// What demo's own tracing made the traced processes do.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "DemoOwn")]
struct DemoOwnLine {
    /// Faults of the command demo forked, in demo's code, before its exec.
    faults_before_exec: u64,
    /// Faults on `[uprobes]`, the page the kernel maps for uprobes (demo's heap probes return
    /// through a trampoline there).
    uprobes_page_faults: u64,
    /// SIGCHLDs (CLD_TRAPPED) the command sent demo at its ptrace stops.
    ptrace_stop_signals: u64,
}

impl From<DemoOwn> for DemoOwnLine {
    fn from(own: DemoOwn) -> Self {
        Self {
            faults_before_exec: own.faults_before_exec,
            uprobes_page_faults: own.uprobes_page_faults,
            ptrace_stop_signals: own.ptrace_stop_signals,
        }
    }
}

/// Why a trace ended; named `exit`, `interrupt`, `duration` or `cgroup_removed` in both
/// outputs.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "TraceEnd")]
enum TraceEndLine {
    /// The target exited.
    Exit,
    /// Ctrl-C or SIGTERM.
    Interrupt,
    /// `--duration` ran out.
    Duration,
    /// The `--cgroup` directory was removed.
    #[serde(rename = "cgroup_removed")]
    CgroupRemoved,
}

impl From<TraceEnd> for TraceEndLine {
    fn from(end: TraceEnd) -> Self {
        match end {
            TraceEnd::Exit => Self::Exit,
            TraceEnd::Interrupt => Self::Interrupt,
            TraceEnd::Duration => Self::Duration,
            TraceEnd::CgroupRemoved => Self::CgroupRemoved,
        }
    }
}

#[derive(Serialize, JsonSchema)]
#[schemars(rename = "RecordCount")]
struct RecordCountLine {
    delivered: u64,
    dropped: u64,
}

impl From<RecordCount> for RecordCountLine {
    fn from(count: RecordCount) -> Self {
        Self {
            delivered: count.delivered,
            dropped: count.dropped,
        }
    }
}

/// demo's own CPU time (getrusage) and peak resident memory (VmHWM in /proc/self/status:
/// getrusage's ru_maxrss was seen here to report 210 MiB while VmRSS, sampled every
/// millisecond, never passed 25 MiB).
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "LoaderCost")]
struct LoaderCostLine {
    cpu_ms: u64,
    /// Of `cpu_ms`, what loading and attaching took, before the first record.
    attach_cpu_ms: u64,
    peak_rss_kib: u64,
}

impl From<LoaderCost> for LoaderCostLine {
    fn from(cost: LoaderCost) -> Self {
        Self {
            cpu_ms: cost.cpu_ms,
            attach_cpu_ms: cost.attach_cpu_ms,
            peak_rss_kib: cost.peak_rss_kib,
        }
    }
}

/// What the kernel counted for a process: its minor and major faults.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Rusage")]
struct RusageLine {
    minflt: u64,
    majflt: u64,
}

/// A command's rusage (wait4): its faults and CPU time, and those of the children it waited
/// for.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "CommandRusage")]
struct CommandRusageLine {
    minflt: u64,
    majflt: u64,
    user_ns: u64,
    system_ns: u64,
}

impl From<Rusage> for CommandRusageLine {
    fn from(rusage: Rusage) -> Self {
        Self {
            minflt: rusage.minflt,
            majflt: rusage.majflt,
            user_ns: rusage.user_ns,
            system_ns: rusage.system_ns,
        }
    }
}

/// One program's runs and the time they took, since it was loaded.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "ProgramRuns")]
struct ProgramRunsLine<'a> {
    program: &'a str,
    runs: u64,
    run_time_ns: u64,
}

impl<'a> From<&'a ProgramRuns> for ProgramRunsLine<'a> {
    fn from(runs: &'a ProgramRuns) -> Self {
        Self {
            program: &runs.program,
            runs: runs.runs,
            run_time_ns: runs.run_time_ns,
        }
    }
}

/// The faults of one function, or of a module's code that no symbol names.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "FunctionFaults")]
struct FunctionFaultsLine<'a> {
    /// Null when no symbol names the code: then all of the module's such faults.
    symbol: Option<&'a str>,
    module: Option<&'a str>,
    /// The region the faults hit; only in `faults_by_function_and_region`.
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<&'a str>,
    faults: u64,
}

impl<'a> From<&'a FunctionFaults> for FunctionFaultsLine<'a> {
    fn from(faults: &'a FunctionFaults) -> Self {
        Self {
            symbol: faults.symbol.as_deref(),
            module: faults.module.as_deref(),
            region: faults.region.as_deref(),
            faults: faults.faults,
        }
    }
}
