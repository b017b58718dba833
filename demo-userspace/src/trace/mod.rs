//! `demo trace`: traces any process, started by us (`-- CMD`) or running (`--pid`), finds its
//! arrays by itself, and resolves every fault to mapping, region, index and page.

pub mod functions;
mod heap;
pub mod regions;
mod results;
pub mod session;

use std::{ffi::OsString, path::PathBuf, sync::mpsc::SyncSender, time::Duration};

use anyhow::Context as _;
use demo_common::target_flags;

use self::{
    regions::RegionTracker,
    session::{Session, TraceEvent},
};
pub use crate::kernel::spawn::SpawnError;
use crate::kernel::{
    descendants::{self, CommandGuard},
    event_reader::EventReader,
    executable::{self, Unseen},
    privileges::RunAs,
    probes::Probes,
    process::{self, ProcessError},
    spawn::{self, ChildIo, ChildSpec, Reaped, Spawned},
};
use crate::model::{
    events::{Decoded, Record},
    signals::ProcessEnd,
};
pub use results::{
    LoaderCost, PAGES_EVERY, RecordCount, Rusage, TraceEnd, TraceOutput, TraceStart, TraceSummary,
};

/// What to trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceTarget {
    /// Start this command, held back until it is traced.
    Command(Vec<OsString>),
    /// Attach to this running process.
    Pid(u32),
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
    pub run_as: Option<RunAs>,
    /// The command's stdin, stdout and stderr go to /dev/null (under --tui).
    pub quiet: bool,
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
    let follow_flags = if options.follow {
        target_flags::FOLLOW | target_flags::DESCENDANTS
    } else {
        0
    };
    // Installed before anything is attached, so a signal at any moment ends the trace well.
    let shutdown = crate::kernel::shutdown::requested();
    let start_ns = process::monotonic_ns();
    let (pid, mut held, command, mut guard, program) = match &options.target {
        TraceTarget::Pid(pid) => {
            let pid = *pid;
            process::check_user_process(pid).map_err(TargetError::from)?;
            probes.add_target(pid, target_flags::REPORT | follow_flags)?;
            if !process::exists(pid) {
                probes.remove_target(pid)?;
                return Err(TargetError::ExitedDuringAttach(pid).into());
            }
            (
                pid,
                None,
                None,
                None,
                PathBuf::from(format!("/proc/{pid}/exe")),
            )
        }
        TraceTarget::Command(argv) => {
            let program = spawn::resolve(argv.first().ok_or(SpawnError::Empty)?)
                .map_err(TargetError::from)?;
            if let Err(error) = descendants::adopt_orphans() {
                log::warn!(
                    "demo cannot adopt the command's orphans ({error}): a process it leaves \
                     running when its parent exits may outlive the trace"
                );
            }
            let held = spawn_traced(argv, options.run_as, options.quiet, follow_flags, probes)?;
            let guard = CommandGuard::new(held.pid);
            let shown: Vec<String> = argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            (
                held.pid,
                Some(held),
                Some(shown.join(" ")),
                Some(guard),
                program,
            )
        }
    };

    let heap = if options.auto_regions && options.heap_blocks {
        // A held command still runs demo's own image, so its libc is ours until it execs; the
        // uprobes are scoped by pid and stay on it across the exec.
        let libc = libc_of(if held.is_some() {
            std::process::id()
        } else {
            pid
        })?;
        probes.attach_heap_probes(&libc, pid)?;
        Some(HeapProbes { libc })
    } else {
        None
    };
    let heap_probes = heap.as_ref().map(|heap| heap.libc.display().to_string());
    let mut session = Session::new(RegionTracker::new(
        options.auto_regions,
        options.min_block,
        options.elem_size,
        procfs::page_size(),
    ));
    session.add_process(pid);
    output.started(&TraceStart {
        pid,
        command,
        source: probes.fault_source(),
        heap_probes,
        heap_blocks_off: options.auto_regions && !options.heap_blocks,
        follow: options.follow,
        unseen: executable::unseen_in(&program)
            .into_iter()
            .filter(|unseen| heap.is_some() || *unseen != Unseen::StaticHeap)
            .collect(),
        start_ns,
    })?;
    let mut events = Vec::new();
    for &(start, len) in &options.manual_regions {
        session.add_manual_region(pid, start, len, &mut events);
    }
    flush(&mut events, output)?;

    let attach_cpu_ms = LoaderCost::cpu_ms_now();
    crate::kernel::shutdown::debug_panic_after_attach();
    // The command stops at its exit until its records are read, so that its mappings are
    // named from /proc/PID/maps while they still exist, however short its life.
    let (exit_stops, mut exiting) = tokio::sync::mpsc::unbounded_channel::<SyncSender<()>>();
    let mut waiter = match held.as_mut() {
        Some(held) => {
            let (seized, was_seized) = tokio::sync::oneshot::channel();
            let waiter = tokio::task::spawn_blocking(move || {
                // The kernel takes ptrace requests only from the thread that attached: this one.
                let _ = seized.send(spawn::stop_at_exit(pid));
                spawn::wait_through_stops(pid, || {
                    let (done, wait) = std::sync::mpsc::sync_channel(1);
                    // Without the trace loop to answer, the command goes on at once.
                    if exit_stops.send(done).is_ok() {
                        let _ = wait.recv();
                    }
                })
            });
            if let Err(error) = was_seized.await.context("stop the command at its exit")? {
                log::warn!(
                    "the command is not stopped at its exit ({error}): the mappings of faults \
                     read after it ends are named only from what the trace saw"
                );
            }
            held.release().context("start the traced command")?;
            Some(waiter)
        }
        None => None,
    };
    let deadline = options.duration.map(|d| tokio::time::Instant::now() + d);
    let mut reaped: Option<Reaped> = None;
    tokio::pin!(shutdown);
    let mut pages_ticks = tokio::time::interval(PAGES_EVERY);
    let ended_by = loop {
        tokio::select! {
            waited = reader.wait() => {
                waited.context("wait for trace events")?;
                drain(reader, &mut session, &mut events, output, probes, heap.as_ref())?;
                session.settle_quiet(
                    process::monotonic_ns().saturating_sub(QUIET_NS),
                    &mut events,
                );
                flush(&mut events, output)?;
                output.pages(&session)?;
                if held.is_none() && (session.has_exited(pid) || !process::exists(pid)) {
                    break TraceEnd::Exit;
                }
            }
            result = async { match waiter.as_mut() {
                Some(waiter) => waiter.await,
                None => std::future::pending().await,
            } } => {
                waiter = None;
                reaped = Some(result.context("wait for the traced command")??);
                break TraceEnd::Exit;
            }
            Some(done) = exiting.recv() => {
                // Stopped at its exit, its memory still mapped: every record it made is in the
                // buffer, and each is resolved before it may go on.
                drain(reader, &mut session, &mut events, output, probes, heap.as_ref())?;
                flush(&mut events, output)?;
                let _ = done.send(());
            }
            _ = pages_ticks.tick() => output.pages(&session)?,
            () = &mut shutdown => break TraceEnd::Interrupt,
            () = async { match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            } } => break TraceEnd::Duration,
        }
    };
    // A command still running when the trace ends early is not left behind, nor is anything
    // it started; stopped at its exit, it goes on once nothing will answer.
    drop(exiting);
    if let Some(guard) = guard.as_mut() {
        guard.end();
    }
    if let Some(waiter) = waiter {
        reaped = Some(waiter.await.context("wait for the traced command")??);
    }
    drop(held);
    // Everything the target did before it ended is in the buffer now.
    drain(
        reader,
        &mut session,
        &mut events,
        output,
        probes,
        heap.as_ref(),
    )?;
    session.finish(&mut events);
    flush(&mut events, output)?;
    probes.remove_target(pid)?;

    let totals = session.totals();
    let drops = probes.drops_by_slot()?;
    let (by_function, by_pair) = session.functions().summary();
    let summary = TraceSummary {
        pid,
        ended_by,
        child: reaped.map(|r| crate::model::signals::ProcessEnd::from(r.status)),
        faults_total: totals.minor + totals.major + totals.error,
        minor: totals.minor,
        major: totals.major,
        error: totals.error,
        lost: probes.dropped()? + reader.malformed(),
        unattributed_faults: session.unattributed_faults(),
        traced_completions: session.completions_of(pid),
        rusage: reaped.map(|r| Rusage {
            minflt: r.minflt,
            majflt: r.majflt,
        }),
        loader: LoaderCost::now(attach_cpu_ms),
        records: RecordCount::by_kind(reader.delivered(), &drops),
        untraced_children: drops[demo_common::UNTRACED_CHILD_SLOT as usize],
        kernel_programs: probes.program_runs(),
        regions_not_listed: session.forgotten_regions(),
        unknown_mappings: session.unknown_mappings(),
        faults_by_function: by_function
            .into_iter()
            .take(functions::LISTED_FUNCTIONS)
            .collect(),
        faults_by_function_and_region: by_pair.into_iter().take(functions::LISTED_PAIRS).collect(),
    };
    output.summary(&summary, &session)?;
    Ok(summary.child.filter(|_| ended_by == TraceEnd::Exit))
}

/// Forks the command held back. For the instant of the fork, the loader itself is a
/// follow-only target, so the kernel adds the child to the target map before it runs at all:
/// not one of its faults is missed, and its counts match the kernel's own.
fn spawn_traced(
    argv: &[OsString],
    run_as: Option<RunAs>,
    quiet: bool,
    follow_flags: u8,
    probes: &mut Probes,
) -> anyhow::Result<Spawned> {
    let own = std::process::id();
    let child_flags = if follow_flags == 0 {
        target_flags::FOLLOW
    } else {
        follow_flags
    };
    probes.add_target(own, child_flags)?;
    let held = spawn::spawn(ChildSpec {
        program: argv
            .first()
            .ok_or(SpawnError::Empty)
            .map_err(TargetError::from)?,
        argv,
        run_as,
        io: if quiet {
            ChildIo::Null
        } else {
            ChildIo::Inherit
        },
        held: true,
    });
    probes.remove_target(own)?;
    let held = held.map_err(TargetError::from)?;
    if probes.target_flags(held.pid)?.is_none() {
        // The kernel could not add it (the map was full); add it now, before it runs.
        probes.add_target(held.pid, target_flags::REPORT | follow_flags)?;
    }
    Ok(held)
}

/// Records decoded before their events are written out; bounds memory when the reader is
/// behind and the buffer holds many.
const BATCH: usize = 4096;

fn drain(
    reader: &mut EventReader,
    session: &mut Session,
    events: &mut Vec<TraceEvent>,
    output: &mut dyn TraceOutput,
    probes: &mut Probes,
    heap: Option<&HeapProbes>,
) -> anyhow::Result<()> {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let taken = reader.drain_some(BATCH, |record| batch.push(record));
        // A followed child's uprobes go on as soon as its fork is read, before any record of
        // the batch is resolved and symbolized (the first symbolization of a module reads its
        // debug information): its first heap calls may come at once.
        if let Some(heap) = heap {
            heap.attach_forked(&batch, probes);
        }
        for record in batch.drain(..) {
            session.handle(record, events);
        }
        // Detaching can wait for the batch: nothing of an exited process runs any more.
        if let Some(heap) = heap {
            heap.detach_exited(events, probes);
        }
        flush(events, output)?;
        if taken < BATCH {
            return Ok(());
        }
    }
}

fn flush(events: &mut Vec<TraceEvent>, output: &mut dyn TraceOutput) -> anyhow::Result<()> {
    for event in events.drain(..) {
        output.event(&event)?;
    }
    Ok(())
}

/// The heap uprobes of a trace: on the target, and on each child the trace follows.
struct HeapProbes {
    libc: PathBuf,
}

impl HeapProbes {
    /// Attaches the uprobes for each process forked in `records`. A child's heap calls between
    /// its fork and this attach (the fork record wakes the loader at once) are not seen.
    fn attach_forked(&self, records: &[Decoded], probes: &mut Probes) {
        for record in records {
            let Record::Process(event) = &record.record else {
                continue;
            };
            if event.exited {
                continue;
            }
            if let Err(error) = probes.attach_heap_probes(&self.libc, event.pid) {
                // The child may be gone already; its heap blocks are then moot.
                if process::exists(event.pid) {
                    log::warn!("heap blocks of pid {} are not tracked: {error}", event.pid);
                }
            }
        }
    }

    /// Detaches the uprobes of each process that exited in `events`.
    fn detach_exited(&self, events: &[TraceEvent], probes: &mut Probes) {
        for event in events {
            if let TraceEvent::ProcessExited { pid } = *event {
                probes.detach_heap_probes(pid);
            }
        }
    }
}

/// How long a thread must have been quiet after a fault before /proc settles it.
const QUIET_NS: u64 = 100_000_000;

/// The libc that process `pid` maps, as a path that works from our mount namespace.
fn libc_of(pid: u32) -> anyhow::Result<PathBuf> {
    let maps = procfs::process::Process::new(pid as i32)
        .and_then(|p| p.maps())
        .with_context(|| format!("read /proc/{pid}/maps to find its libc"))?;
    maps.into_iter()
        .find_map(|map| match map.pathname {
            procfs::process::MMapPath::Path(path)
                if path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("libc.so")) =>
            {
                Some(PathBuf::from(format!("/proc/{pid}/root{}", path.display())))
            }
            _ => None,
        })
        .with_context(|| {
            format!("process {pid} maps no libc.so; use --region none or --region ADDR:LEN")
        })
}
