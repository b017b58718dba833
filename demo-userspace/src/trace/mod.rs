//! `demo trace`: traces any process, started by us (`-- CMD`), running (`--pid`), or in a
//! cgroup (`--cgroup`), finds its arrays by itself, and resolves every fault to mapping,
//! region, index and page.

mod command;
pub mod durations;
#[cfg(test)]
pub(crate) mod fake_system;
pub mod functions;
mod heap;
pub mod own;
pub mod regions;
mod results;
mod run;
pub mod session;
pub mod stacks;

use std::{ffi::OsString, time::Duration};

use self::run::Tracer;
pub use crate::kernel::spawn::SpawnError;
use crate::kernel::{
    cgroup::CgroupScope, event_reader::EventReader, privileges::RunAs, probes::Probes,
    process::ProcessError,
};
use crate::model::signals::ProcessEnd;
pub use results::{
    LoaderCost, PAGES_EVERY, ProcessStat, ProcessSummary, RecordCount, Rusage, TraceEnd,
    TraceOutput, TraceStart, TraceSummary, heap_overloaded,
};

/// What to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceTarget {
    /// Start this command, held back until it is traced.
    Command(Vec<OsString>),
    /// Attach to this running process.
    Pid(u32),
    /// Every process in this cgroup v2 and below it: those there at the start, and each that
    /// enters later, which the kernel side joins at its first event.
    Cgroup(CgroupScope),
}

/// The options of `demo trace`, checked.
#[derive(Clone, Debug)]
pub struct TraceOptions {
    pub target: TraceTarget,
    pub follow: bool,
    /// Track anonymous mmaps (and heap blocks, with `heap_blocks`) as regions.
    pub auto_regions: bool,
    /// Uprobe the target's malloc, calloc, realloc and free to find its heap blocks. Each call
    /// then traps into the kernel, so it is on by default only for a command demo starts.
    pub heap_blocks: bool,
    pub manual_regions: Vec<(u64, u64)>,
    pub min_block: u64,
    pub elem_size: u64,
    pub duration: Option<Duration>,
    /// `--min-duration`: the text and JSON lines list only faults that took at least this
    /// long; the summary counts every fault.
    pub min_duration: Option<Duration>,
    pub run_as: Option<RunAs>,
    /// Where the command's stdin, stdout and stderr go.
    pub command_io: CommandIo,
}

/// Where a command demo starts reads and writes.
#[derive(Clone, Debug, Default)]
pub enum CommandIo {
    /// demo's own stdin, stdout and stderr: a text report shares the terminal with it.
    #[default]
    Inherit,
    /// The terminal side of the view's pseudo-terminal (`kernel::pty`), its controlling
    /// terminal too; the view shows what it writes and types the user's keys into it.
    Terminal(std::sync::Arc<std::os::fd::OwnedFd>),
}

/// Failures of the target itself, which are the user's input rather than demo's fault.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error("process {0} exited while demo attached to it")]
    ExitedDuringAttach(u32),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// Runs a trace to its end: the target's exit, Ctrl-C, or the duration. Returns how the command
/// demo started ended, when the trace ended because it did. On every way out, errors and a
/// dropped future included, a command demo started is killed with all its descendants.
pub async fn run(
    options: &TraceOptions,
    probes: &mut Probes,
    reader: &mut EventReader,
    output: &mut dyn TraceOutput,
) -> anyhow::Result<Option<ProcessEnd>> {
    // Installed before anything is attached, so a signal at any moment ends the trace well.
    let shutdown = crate::kernel::shutdown::requested();
    let (mut tracer, mut command) = Tracer::start(options, probes, reader, output)?;
    let attach_cpu_ms = LoaderCost::cpu_ms_now();
    crate::kernel::shutdown::debug_panic_after_attach();
    if let Some(command) = command.as_mut() {
        command.release().await?;
    }
    let ended_by = tracer
        .follow(command.as_mut(), options.duration, shutdown)
        .await?;
    // A command still running when the trace ends early is not left behind, nor is anything
    // it started.
    let reaped = match command {
        Some(command) => command.end().await?,
        None => None,
    };
    tracer.finish(ended_by, reaped, attach_cpu_ms)
}
