//! A trace under way, in three parts: [`Tracer::start`] puts the target in the target map and
//! tells the output; [`Tracer::follow`] reads records until the trace ends; [`Tracer::finish`]
//! reads the last ones and writes the summary.

use std::{collections::HashSet, future::Future, path::PathBuf, time::Duration};

use anyhow::Context as _;
use demo_common::target_flags;

use super::{
    TargetError, TraceOptions, TraceTarget,
    command::{CommandEvent, TracedCommand},
    durations::{CpuTime, CpuUnknown, FaultDurations},
    functions,
    regions::RegionTracker,
    results::{
        LoaderCost, PAGES_EVERY, ProcessStat, ProcessSummary, RecordCount, Rusage, TraceEnd,
        TraceOutput, TraceStart, TraceSummary,
    },
    session::{Session, TraceEvent, TracedSince},
};
use crate::kernel::{
    cgroup::CgroupScope,
    event_reader::EventReader,
    executable::{self, Unseen},
    probes::Probes,
    process,
    spawn::{self, Reaped, SpawnError},
    system_view::LiveView,
};
use crate::model::{
    call_graph::CallGraph,
    events::{Decoded, Record},
    signals::ProcessEnd,
};

/// How long a thread must have been quiet after a fault before /proc settles it. With the
/// poll of [`crate::kernel::event_reader::POLL_INTERVAL`] on top, an idle thread's last fault
/// is shown within about 70 ms, as a person stepping a program expects.
const QUIET_NS: u64 = 50_000_000;

/// Records decoded before their events are written out; bounds memory when the reader is
/// behind and the buffer holds many.
const BATCH: usize = 4096;

/// The trace's state between its start and its summary.
pub(super) struct Tracer<'a> {
    /// The process the trace ends with: the command, or `--pid`; `None` for a cgroup.
    pid: Option<u32>,
    /// `--cgroup`: the trace ends when it is removed.
    cgroup: Option<CgroupScope>,
    session: Session,
    /// Events made and not yet written out.
    events: Vec<TraceEvent>,
    /// Events were handed to the output since it was last flushed.
    unflushed: bool,
    /// Every fault's duration, listed or not, for the summary; `None` with durations off.
    durations: Option<FaultDurations>,
    /// CLOCK_MONOTONIC ns at the start, which the wall time is counted from.
    start_ns: u64,
    /// The CPU time of what is traced at the start: `Some` for a running process (`--pid`)
    /// whose /proc stat could be read; a command's comes from its rusage.
    cpu_at_start: Option<u64>,
    /// The target is a command demo started.
    command: bool,
    /// How each fault's stack is captured; `None` without stacks.
    call_graph: Option<CallGraph>,
    heap: Option<HeapProbes>,
    /// Under `--cgroup`, the processes whose per-process probes are attached (completion
    /// events, heap uprobes), or that were found outside the scope: each is looked at once.
    attached: HashSet<u32>,
    probes: &'a mut Probes,
    reader: &'a mut EventReader,
    output: &'a mut dyn TraceOutput,
}

/// What is traced: the process, and the command when demo started it; or a cgroup's
/// processes.
struct Target {
    /// The one process traced; `None` for a cgroup.
    pid: Option<u32>,
    /// A cgroup's processes there at the start, put in the target map by demo (those the
    /// kernel side joined first say so in a join record).
    seeded: Vec<u32>,
    command: Option<TracedCommand>,
    /// The command line as the start line shows it.
    shown: Option<String>,
    /// The program's file, to tell what demo will not see in it; `None` for a cgroup, whose
    /// processes run many.
    program: Option<PathBuf>,
}

impl<'a> Tracer<'a> {
    /// Puts the target in the target map (a command forked held back, and returned still held),
    /// attaches the heap probes, and writes the start and the manual regions.
    pub(super) fn start(
        options: &TraceOptions,
        probes: &'a mut Probes,
        reader: &'a mut EventReader,
        output: &'a mut dyn TraceOutput,
    ) -> anyhow::Result<(Self, Option<TracedCommand>)> {
        let follow_flags = if options.follow {
            target_flags::FOLLOW | target_flags::DESCENDANTS
        } else {
            0
        };
        let start_ns = process::monotonic_ns();
        let Target {
            pid,
            seeded,
            command,
            shown,
            program,
        } = attach_target(options, follow_flags, probes)?;
        let heap = match (options.auto_regions && options.heap_blocks, pid) {
            (false, _) => None,
            (true, Some(pid)) => {
                // A held command still runs demo's own image, so its libc is ours until it
                // execs; the uprobes are scoped by pid and stay on it across the exec.
                let libc = libc_of(if command.is_some() {
                    std::process::id()
                } else {
                    pid
                })?;
                probes.attach_heap_probes(&libc, pid)?;
                Some(HeapProbes { libc: Some(libc) })
            }
            // A cgroup's processes may each map another libc (a container's own): each one's
            // is found when it is added.
            (true, None) => {
                let heap = HeapProbes { libc: None };
                for &pid in &seeded {
                    heap.attach_to(pid, probes);
                }
                Some(heap)
            }
        };
        let mut session = Session::new(
            RegionTracker::new(
                options.auto_regions,
                options.min_block,
                options.elem_size,
                procfs::page_size(),
            ),
            Box::new(LiveView::default()),
        );
        let call_graph = probes.call_graph();
        // A command is traced from its fork (it is in the target map before it runs).
        match pid {
            Some(pid) if command.is_some() => session.add_command(pid),
            Some(pid) => session.add_process(pid, TracedSince::Attach),
            None => {}
        }
        for &pid in &seeded {
            session.add_process(pid, TracedSince::Attach);
        }
        let cgroup = match &options.target {
            TraceTarget::Cgroup(scope) => Some(scope.clone()),
            _ => None,
        };
        output.started(&TraceStart {
            pid,
            cgroup: cgroup.as_ref().map(|scope| scope.shown().to_owned()),
            command: shown,
            source: probes.fault_source(),
            heap_probes: heap.as_ref().map(|heap| match &heap.libc {
                Some(libc) => libc.display().to_string(),
                None => "the libc each process maps".to_owned(),
            }),
            heap_blocks_off: options.auto_regions && !options.heap_blocks,
            follow: options.follow,
            unseen: program
                .iter()
                .flat_map(|program| executable::unseen_in(program))
                .filter(|unseen| heap.is_some() || *unseen != Unseen::StaticHeap)
                .collect(),
            start_ns,
            min_duration: options.min_duration,
            call_graph,
        })?;
        let mut tracer = Self {
            pid,
            cgroup,
            session,
            events: Vec::new(),
            unflushed: false,
            durations: probes.durations().then(FaultDurations::default),
            start_ns,
            cpu_at_start: pid.filter(|_| command.is_none()).and_then(cpu_ns_of),
            command: command.is_some(),
            call_graph,
            heap,
            attached: seeded.iter().copied().collect(),
            probes,
            reader,
            output,
        };
        // The command line refuses manual regions without one process to place them in.
        if let Some(pid) = pid {
            for &(start, len) in &options.manual_regions {
                tracer
                    .session
                    .add_manual_region(pid, start, len, &mut tracer.events);
            }
        }
        tracer.flush()?;
        Ok((tracer, command))
    }

    /// Reads and resolves records until the target exits, `shutdown` comes, or `duration`
    /// passes; answers each of the command's exit stops once its records are read.
    pub(super) async fn follow(
        &mut self,
        mut command: Option<&mut TracedCommand>,
        duration: Option<Duration>,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<TraceEnd> {
        let deadline = duration.map(|d| tokio::time::Instant::now() + d);
        tokio::pin!(shutdown);
        let mut pages_ticks = tokio::time::interval(PAGES_EVERY);
        loop {
            tokio::select! {
                waited = self.reader.wait() => {
                    waited.context("wait for trace events")?;
                    self.drain()?;
                    self.settle_quiet()?;
                    self.output.pages(&self.session)?;
                    self.caught_up()?;
                    if command.is_none()
                        && self.pid.is_some_and(|pid| {
                            self.session.has_exited(pid) || !process::exists(pid)
                        })
                    {
                        return Ok(TraceEnd::Exit);
                    }
                }
                event = async { match command.as_deref_mut() {
                    Some(command) => command.next().await,
                    None => std::future::pending().await,
                } } => match event? {
                    CommandEvent::Ended => return Ok(TraceEnd::Exit),
                    CommandEvent::ExitStop(done) => {
                        // Stopped at its exit, its memory still mapped: every record it made is
                        // in the buffer, and each is resolved before it may go on.
                        self.drain()?;
                        self.flush()?;
                        self.caught_up()?;
                        let _ = done.send(());
                    }
                },
                _ = pages_ticks.tick() => {
                    // An emptied cgroup may fill again; only its removal ends the trace. rmdir
                    // succeeds only once no process is left in it, so every record its
                    // processes made is in the buffer, for finish to read.
                    if self.cgroup.as_ref().is_some_and(CgroupScope::removed) {
                        return Ok(TraceEnd::CgroupRemoved);
                    }
                    self.output.pages(&self.session)?;
                }
                () = &mut shutdown => return Ok(TraceEnd::Interrupt),
                () = async { match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                } } => return Ok(TraceEnd::Duration),
            }
        }
    }

    /// Reads what is left (everything the target did before it ended is in the buffer now),
    /// settles the open faults, takes the target out of the map and writes the summary.
    pub(super) fn finish(
        mut self,
        ended_by: TraceEnd,
        reaped: Option<Reaped>,
        attach_cpu_ms: u64,
    ) -> anyhow::Result<Option<ProcessEnd>> {
        self.drain()?;
        self.session.finish(&mut self.events);
        self.flush()?;
        // A cgroup's processes stay in the target map: the kernel side would join a live one
        // taken out again at its next event. What they record from here on is never read, and
        // the programs detach when the probes drop.
        if let Some(pid) = self.pid {
            self.probes.remove_target(pid)?;
        }
        let summary = self.summary(ended_by, reaped, attach_cpu_ms)?;
        self.output.summary(&summary, &self.session)?;
        Ok(summary.child.filter(|_| ended_by == TraceEnd::Exit))
    }

    fn summary(
        &self,
        ended_by: TraceEnd,
        reaped: Option<Reaped>,
        attach_cpu_ms: u64,
    ) -> anyhow::Result<TraceSummary> {
        let totals = self.session.totals();
        let drops = self.probes.drops_by_slot()?;
        let mut processes =
            ProcessSummary::of_session(&self.session, self.probes.drops_by_process()?);
        // The command's own counts are its rusage; a process demo did not start is read as
        // it runs now, which only a process that has not exited can be.
        for process in &mut processes {
            let command = self.command && self.pid == Some(process.totals.pid);
            if process.totals.kernel.is_none() && !command {
                process.at_end = ProcessStat::read(process.totals.pid);
            }
        }
        let before_trace = before_trace(&processes, self.pid);
        let (by_function, by_pair) = self.session.functions().summary();
        let durations = self.durations.as_ref().map(|durations| {
            let wall_ns = process::monotonic_ns().saturating_sub(self.start_ns);
            durations.summary(self.cpu_time(reaped.as_ref(), processes.len()), wall_ns)
        });
        Ok(TraceSummary {
            pid: self.pid,
            cgroup: self.cgroup.as_ref().map(|scope| scope.shown().to_owned()),
            ended_by,
            child: reaped.map(|r| ProcessEnd::from(r.status)),
            faults_total: totals.minor + totals.major + totals.error,
            minor: totals.minor,
            major: totals.major,
            error: totals.error,
            lost: self.probes.dropped()? + self.reader.malformed(),
            unattributed_faults: self.session.unattributed_faults(),
            completions_without_start: self.session.completions_without_start(),
            class_disagreements: self.session.class_disagreements(),
            durations,
            stacks: self
                .call_graph
                .map(|graph| (graph, self.session.stack_totals())),
            traced_completions: processes.iter().map(|p| p.totals.traced).sum(),
            before_trace,
            rusage: reaped.map(|r| Rusage {
                minflt: r.minflt,
                majflt: r.majflt,
                user_ns: r.user_ns,
                system_ns: r.system_ns,
            }),
            processes,
            loader: LoaderCost::now(attach_cpu_ms),
            records: RecordCount::by_kind(self.reader.delivered(), &drops),
            untraced_children: drops[demo_common::UNTRACED_CHILD_SLOT as usize],
            unjoined_events: self.probes.unjoined()?,
            kernel_programs: self.probes.program_runs(),
            regions_not_listed: self.session.forgotten_regions(),
            unknown_mappings: self.session.unknown_mappings(),
            demo_own: self.session.demo_own(),
            faults_by_function: by_function
                .into_iter()
                .take(functions::LISTED_FUNCTIONS)
                .collect(),
            faults_by_function_and_region: by_pair
                .into_iter()
                .take(functions::LISTED_PAIRS)
                .collect(),
        })
    }

    /// Reads every record in the buffer, in batches, into events written out batch by batch.
    fn drain(&mut self) -> anyhow::Result<()> {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            let taken = self.reader.drain_some(BATCH, |record| batch.push(record));
            // A followed child's uprobes go on as soon as its fork is read, before any record of
            // the batch is resolved and symbolized (the first symbolization of a module reads
            // its debug information): its first heap calls may come at once.
            if let Some(heap) = &self.heap {
                heap.attach_forked(&batch, self.probes);
            }
            self.attach_joined(&batch);
            for record in batch.drain(..) {
                self.session.handle(record, &mut self.events);
            }
            // Detaching can wait for the batch: nothing of an exited process runs any more.
            if let Some(heap) = &self.heap {
                heap.detach_exited(&self.events, self.probes);
            }
            self.flush()?;
            if taken < BATCH {
                return Ok(());
            }
        }
    }

    /// Under `--cgroup`, attaches to each process that joined in `records`, or whose fault
    /// shows it in the scope without a join record (the ring dropped it), what `--pid`
    /// attaches: the completion events with durations on, and with `--heap` the heap uprobes.
    /// Its faults before this are counted untimed, never unseen.
    fn attach_joined(&mut self, records: &[Decoded]) {
        let Some(scope) = &self.cgroup else {
            return;
        };
        for pid in unattached(&mut self.attached, records, |pid| scope.holds(pid)) {
            time_faults(self.probes, pid);
            if let Some(heap) = &self.heap {
                heap.attach_to(pid, self.probes);
            }
        }
    }

    /// Settles the faults of quiet threads in both steps of
    /// [`Session::settle_quiet`] at once: its first call reads the counters of the threads
    /// quiet for [`QUIET_NS`], the buffer is read again (every record those threads made before
    /// the read is in it by then: a fault's record is committed before the fault completes),
    /// and its second call believes the reads. So a quiet thread's fault waits for no second
    /// poll.
    fn settle_quiet(&mut self) -> anyhow::Result<()> {
        let quiet_since = process::monotonic_ns().saturating_sub(QUIET_NS);
        self.session.settle_quiet(quiet_since, &mut self.events);
        self.flush()?;
        self.drain()?;
        self.session.settle_quiet(quiet_since, &mut self.events);
        self.flush()
    }

    /// The loader has read everything there is for now: what it handed the output goes out
    /// now, not when a buffer fills, so a person sees each event before the program's next
    /// step. A busy trace flushes once per wakeup, an idle one not at all.
    fn caught_up(&mut self) -> anyhow::Result<()> {
        if std::mem::take(&mut self.unflushed) {
            self.output.flush()?;
        }
        Ok(())
    }

    /// The CPU time of what was traced: the command's from its rusage; a `--pid` process's
    /// from /proc, what it used since the start, when it still runs and is all that was
    /// traced.
    fn cpu_time(&self, reaped: Option<&Reaped>, processes: usize) -> CpuTime {
        if let Some(reaped) = reaped {
            return CpuTime::Command {
                user_ns: reaped.user_ns,
                system_ns: reaped.system_ns,
            };
        }
        if self.command {
            return CpuTime::Unknown(CpuUnknown::NotReaped);
        }
        if self.cgroup.is_some() {
            return CpuTime::Unknown(CpuUnknown::Cgroup);
        }
        let Some(pid) = self.pid.filter(|_| processes <= 1) else {
            return CpuTime::Unknown(CpuUnknown::Followed);
        };
        match (self.cpu_at_start, cpu_ns_of(pid)) {
            (Some(start), Some(end)) => CpuTime::Process {
                pid,
                ns: end.saturating_sub(start),
            },
            _ => CpuTime::Unknown(CpuUnknown::ProcessGone),
        }
    }

    /// Hands the events made to the output; every fault's duration goes into the summary's,
    /// whether the output lists the fault or not.
    fn flush(&mut self) -> anyhow::Result<()> {
        self.unflushed |= !self.events.is_empty();
        for event in self.events.drain(..) {
            if let (Some(durations), TraceEvent::Fault(fault)) = (&mut self.durations, &event) {
                durations.record(fault);
            }
            self.output.event(&event)?;
        }
        Ok(())
    }
}

/// Puts the target in the target map: a running process, checked, or the command, forked
/// held back.
fn attach_target(
    options: &TraceOptions,
    follow_flags: u8,
    probes: &mut Probes,
) -> anyhow::Result<Target> {
    match &options.target {
        TraceTarget::Pid(pid) => {
            let pid = *pid;
            process::check_user_process(pid).map_err(TargetError::from)?;
            probes.add_target(pid, target_flags::REPORT | follow_flags)?;
            probes.time_faults_of(pid)?;
            if !process::exists(pid) {
                probes.remove_target(pid)?;
                return Err(TargetError::ExitedDuringAttach(pid).into());
            }
            Ok(Target {
                pid: Some(pid),
                seeded: Vec::new(),
                command: None,
                shown: None,
                program: Some(PathBuf::from(format!("/proc/{pid}/exe"))),
            })
        }
        TraceTarget::Cgroup(scope) => Ok(Target {
            pid: None,
            seeded: seed(scope, probes)?,
            command: None,
            shown: None,
            program: None,
        }),
        TraceTarget::Command(argv) => {
            let program = spawn::resolve(argv.first().ok_or(SpawnError::Empty)?)
                .map_err(TargetError::from)?;
            let command = TracedCommand::spawn(
                argv,
                options.run_as,
                &options.command_io,
                follow_flags,
                probes,
            )?;
            let shown: Vec<String> = argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            Ok(Target {
                pid: Some(command.pid()),
                seeded: Vec::new(),
                command: Some(command),
                shown: Some(shown.join(" ")),
                program: Some(program),
            })
        }
    }
}

/// Puts the processes in `scope` now in the target map, as followers with their descendants,
/// and times their faults when durations are on; returns those demo added. A process the
/// kernel side joined first (it made an event since the programs were scoped) is left to its
/// join record; one that left the scope or began to exit meanwhile is taken out again.
fn seed(scope: &CgroupScope, probes: &mut Probes) -> anyhow::Result<Vec<u32>> {
    let flags = target_flags::REPORT | target_flags::FOLLOW | target_flags::DESCENDANTS;
    let mut seeded = Vec::new();
    for pid in scope.procs() {
        if !probes.add_target_if_absent(pid, flags)? {
            continue;
        }
        // Its exit may have come before it was added, and would never take it out; and one
        // moved out of the scope since it was listed must not be traced.
        if !scope.holds_live(pid) {
            probes.remove_target(pid)?;
            continue;
        }
        time_faults(probes, pid);
        seeded.push(pid);
    }
    Ok(seeded)
}

/// Opens the completion events of a cgroup's process `pid`. One that exited meanwhile needs
/// none; for one still there the failure is said, and its faults are counted untimed.
fn time_faults(probes: &mut Probes, pid: u32) {
    if let Err(error) = probes.time_faults_of(pid)
        && process::exists(pid)
    {
        log::warn!("the faults of pid {pid} are not timed: {error}");
    }
}

/// What the traced processes had counted before the trace: process `pid`'s, or for a cgroup
/// (`pid` is `None`) the sum of each one's when it was added; unknown once one of those
/// counts is, since a partial sum would pass for the whole.
fn before_trace(processes: &[ProcessSummary], pid: Option<u32>) -> Option<u64> {
    processes
        .iter()
        .filter(|process| pid.is_none_or(|pid| process.totals.pid == pid))
        .map(|process| {
            process
                .totals
                .before_trace
                .map(demo_common::FaultCounters::total)
        })
        .sum()
}

/// The processes of `records` to attach the per-process probes to, each once (`attached`
/// remembers them): each that joined, and each that faulted while `in_scope` holds it. A child
/// forked by an attached process is not one: it inherits the completion events, and its heap
/// uprobes go on at its fork.
fn unattached(
    attached: &mut HashSet<u32>,
    records: &[Decoded],
    in_scope: impl Fn(u32) -> bool,
) -> Vec<u32> {
    let mut fresh = Vec::new();
    for record in records {
        match record.record {
            Record::Process(event) if !event.exited && attached.contains(&event.parent) => {
                attached.insert(event.pid);
            }
            Record::Joined(join) if attached.insert(join.pid) => fresh.push(join.pid),
            Record::Fault(fault) if attached.insert(fault.pid) && in_scope(fault.pid) => {
                fresh.push(fault.pid);
            }
            _ => {}
        }
    }
    fresh
}

/// The heap uprobes of a trace: on the target, and on each child the trace follows.
struct HeapProbes {
    /// The target's libc, which its children map too; `None` for a cgroup, whose processes'
    /// libcs are each read from /proc.
    libc: Option<PathBuf>,
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
            self.attach_to(event.pid, probes);
        }
    }

    /// Attaches the uprobes to process `pid`'s libc: the target's, or the one it maps.
    fn attach_to(&self, pid: u32, probes: &mut Probes) {
        let attached = match &self.libc {
            Some(libc) => probes
                .attach_heap_probes(libc, pid)
                .map_err(anyhow::Error::from),
            None => libc_of(pid).and_then(|libc| Ok(probes.attach_heap_probes(&libc, pid)?)),
        };
        // The process may be gone already; its heap blocks are then moot.
        if let Err(error) = attached
            && process::exists(pid)
        {
            log::warn!("heap blocks of pid {pid} are not tracked: {error:#}");
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

/// The user and system time process `pid` has used, all its threads, from /proc/PID/stat (in
/// clock ticks); `None` once it is gone.
fn cpu_ns_of(pid: u32) -> Option<u64> {
    ProcessStat::read(pid).map(|stat| stat.cpu_ns)
}

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

#[cfg(test)]
mod tests;
