//! The trace's state machine: takes decoded records in ring-buffer order and turns them into
//! trace events (classed faults resolved to mapping and region, syscalls, heap regions,
//! signals, processes), keeping the counts for the summary.

use std::{
    collections::{BTreeMap, btree_map::Entry},
    sync::Arc,
};

use demo_common::FaultCounters;
use rustc_hash::FxHashMap;

use super::{
    functions::FunctionCounts,
    heap::HeapPairer,
    own::{self, DemoOwn},
    regions::{Origin, RegionChange, RegionTracker, TrackedRegion},
    stacks::StackTotals,
};
use crate::{
    kernel::mappings::{Mapping, MappingTable, Refreshed, UNKNOWN_MAPPING},
    kernel::symbols::{Code, Stack},
    kernel::system_view::SystemView,
    model::classify::{ClassCounts, ClassifiedFault, Classifier, FaultClass},
    model::events::{Decoded, Fault, RawStack, Record, SignalEvent},
    model::pages::PageModel,
    model::region::{Location, Region},
    model::syscalls::{SyscallCall, SyscallPairer},
};

/// A fault, classed and resolved: the one resolved fault of a trace and of a walk's step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TracedFault {
    pub fault: ClassifiedFault,
    /// The /proc/PID/maps name of the mapping, or [`UNKNOWN_MAPPING`] when no mapping the
    /// process had, or the trace saw, holds the address.
    pub mapping: Arc<str>,
    /// The offset in that mapping (`dso@offset`).
    pub mapping_offset: u64,
    /// The region hit: its id, name, and where in it.
    pub region: Option<(usize, Arc<str>, Location)>,
    /// The code that faulted: the instruction at `ip`.
    pub code: Arc<Code>,
    /// The user stack, innermost first, with `--stacks`.
    pub stack: Option<Stack>,
    /// The command of the faulting process when its record arrived (an exec changes it), so
    /// that a trace of many processes names each fault's; `None` when it was never known.
    pub command: Option<Arc<str>>,
}

impl TracedFault {
    /// Where in its region the fault landed, when it hit one.
    pub fn location(&self) -> Option<Location> {
        self.region.as_ref().map(|(_, _, location)| *location)
    }

    /// Places the fault in `region` (region id `id`) when it falls in its pages, and nowhere
    /// otherwise: a walk knows its one array only once the step that made it has ended.
    pub fn place_in(&mut self, id: usize, region: &Region) {
        self.region = region
            .locate(self.fault.fault.address)
            .map(|location| (id, Arc::clone(&region.name), location));
    }

    /// Where in its region the fault landed, as every output names it: `mmap#4[1500] page 1`.
    pub fn region_place(&self) -> Option<String> {
        self.region
            .as_ref()
            .map(|(_, name, location)| format!("{name}[{}] page {}", location.index, location.page))
    }

    /// The mapping and offset the fault hit, like perf trace's `dso@offset`.
    pub fn mapping_place(&self) -> String {
        format!("{}@{:#x}", self.mapping, self.mapping_offset)
    }
}

/// What the trace shows, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    Fault(TracedFault),
    Syscall(SyscallCall),
    Signal(SignalEvent),
    RegionStarted(TrackedRegion),
    RegionEnded(TrackedRegion),
    ProcessForked { pid: u32, parent: u32 },
    ProcessExited { pid: u32 },
}

/// What is known of one traced process.
#[derive(Debug, Default)]
struct ProcessState {
    /// The mappings, kept by the traced syscalls and asked of the kernel where those changed
    /// them.
    maps: MappingTable,
    /// Completed faults (minor + major), comparable with the kernel's rusage.
    completions: u64,
    exited: bool,
    /// /proc/PID/maps could not be read: the process is gone.
    maps_gone: bool,
    /// The brk heap as the traced brk calls drew it: start (the first break seen) and end.
    heap: Option<(u64, u64)>,
    /// The command name (/proc/PID/comm), read with the mappings: exec changes both.
    command: Option<Arc<str>>,
    /// What its threads had counted when the trace began: nothing for a process forked since;
    /// `None` when not known (it joined with other live threads, or only records named it).
    before_trace: Option<FaultCounters>,
    /// It was added with [`Session::add_process`] or inherited at its fork, rather than made
    /// by the first record that named it.
    added: bool,
    /// The final counters of its threads that exited, as their exit records carried them.
    exited_threads: FaultCounters,
}

/// Since when a process is traced, which says what its threads counted before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TracedSince {
    /// Its fork: a new process counts from zero, so nothing came before.
    Fork,
    /// The moment it was added, while it ran: what its threads counted until then came before.
    Attach,
    /// Its first event under a cgroup scope, when the kernel side joined it: what its threads
    /// counted until then, gone ones included, as the join record says, `None` when the record
    /// could not say (the process had more live threads than the joining one); and what its
    /// gone threads counted, which its exit's count includes as rusage does.
    Joined {
        before: Option<FaultCounters>,
        gone: FaultCounters,
    },
}

/// What the kernel and the trace each counted for one traced process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessTotals {
    pub pid: u32,
    pub command: Option<Arc<str>>,
    /// Completed faults the trace saw.
    pub traced: u64,
    /// What its threads had counted before the trace began; `None` for a process that joined
    /// a cgroup scope with more live threads than the joining one, whose counters the trace
    /// never read, and for one whose join or fork record was lost.
    pub before_trace: Option<FaultCounters>,
    /// What the kernel counted for it over its life, once it exited: the sum of its threads'
    /// final counters, as rusage has them. `None` while it runs.
    pub kernel: Option<FaultCounters>,
}

impl ProcessTotals {
    /// Faults the kernel counted during the trace that the trace did not see complete, once
    /// the process exited: those it took through get_user_pages, and those whose records
    /// were lost. `None` while it runs, and when what it counted before is not known.
    pub fn difference(&self) -> Option<i64> {
        let (kernel, before) = (self.kernel?, self.before_trace?);
        Some(kernel.total() as i64 - before.total() as i64 - self.traced as i64)
    }
}

/// Why no mapping names a fault (`[unknown]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownCause {
    /// The kernel, asked when the fault's record was read, had nothing mapped there, and
    /// nothing the trace saw or captured held the address: it was never mapped (an error
    /// fault), or was unmapped by then and its mapping's records were lost or came before the
    /// trace.
    NothingMapped,
    /// The process was gone before the kernel could be asked, and nothing the trace saw or
    /// captured held the address.
    ProcessGone,
}

/// Faults named `[unknown]`, by [`UnknownCause`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnknownMappings {
    pub nothing_mapped: u64,
    pub process_gone: u64,
}

impl UnknownMappings {
    pub fn total(self) -> u64 {
        self.nothing_mapped + self.process_gone
    }

    fn add(&mut self, cause: UnknownCause) {
        match cause {
            UnknownCause::NothingMapped => self.nothing_mapped += 1,
            UnknownCause::ProcessGone => self.process_gone += 1,
        }
    }
}

/// Where a fault hit, worked out when its record arrived.
#[derive(Debug)]
struct Resolved {
    mapping: Arc<str>,
    mapping_offset: u64,
    /// Why `mapping` is `[unknown]`, when it is.
    unknown: Option<UnknownCause>,
    region: Option<(usize, Arc<str>, Location)>,
    code: Arc<Code>,
    stack: Option<Stack>,
    /// The process's command when the record arrived.
    command: Option<Arc<str>>,
}

pub struct Session {
    /// Each open fault carries where it hit, worked out when its record arrived.
    classifier: Classifier<Resolved>,
    syscalls: SyscallPairer,
    heap: HeapPairer,
    regions: RegionTracker,
    processes: BTreeMap<u32, ProcessState>,
    /// The totals of processes that exited and whose pid a new process took since: the entry
    /// in `processes` is the new one's.
    ended_processes: Vec<ProcessTotals>,
    /// Per region id: its page model and fault count.
    pages: BTreeMap<usize, (PageModel, u64)>,
    totals: ClassCounts,
    fallback: FallbackNames,
    /// Ended regions whose page models are still kept, oldest first.
    ended: std::collections::VecDeque<usize>,
    /// Ended regions whose page models were let go (see [`KEPT_ENDED_REGIONS`]).
    forgotten_regions: u64,
    /// Faults named `[unknown]`, by cause, counted as they are emitted.
    unknown_mappings: UnknownMappings,
    /// The stacks of the faults emitted, counted.
    stacks: StackTotals,
    /// Per thread, its faults in no mapping, and what the thread did after them, held back
    /// until its next record that is not a fault (see [`Session::hold`]).
    held: FxHashMap<u32, HeldEvents>,
    /// Where the mappings, command names, thread counters and symbols come from.
    view: Box<dyn SystemView>,
    functions: FunctionCounts,
    /// The command demo forked and ptraces, once it is added ([`Session::add_command`]).
    command: Option<u32>,
    /// True until the command's exec: it runs demo's own code until then.
    command_before_exec: bool,
    /// What demo's own tracing made the traced processes do, left out of the events.
    own: DemoOwn,
}

/// How many ended regions keep their page model for the summary. A process that maps and
/// unmaps in a loop would otherwise grow the loader by a page model per mapping, for ever.
pub const KEPT_ENDED_REGIONS: usize = 64;

/// Mapping names for a process that is gone, made once and shared by every fault.
struct FallbackNames {
    heap: Arc<str>,
    anon: Arc<str>,
    stack: Arc<str>,
    unknown: Arc<str>,
}

/// The most events one thread holds back; past it they go out as they are. The faults an exec
/// makes before its records are a handful (the new image's bss, its stack), so a thread that
/// holds more was not exec'ing.
const MAX_HELD: usize = 64;

/// A thread's events held back behind a fault in no mapping, in order.
#[derive(Debug, Default)]
struct HeldEvents {
    events: Vec<Held>,
    /// The thread's process exec'd after the first held fault: the held faults in no mapping
    /// are named anew, from the new image.
    exec: bool,
}

#[derive(Debug)]
enum Held {
    Fault(ClassifiedFault, Resolved),
    Event(TraceEvent),
}

impl Session {
    pub fn new(regions: RegionTracker, view: Box<dyn SystemView>) -> Self {
        Self {
            classifier: Classifier::default(),
            syscalls: SyscallPairer::default(),
            heap: HeapPairer::default(),
            regions,
            processes: BTreeMap::new(),
            ended_processes: Vec::new(),
            pages: BTreeMap::new(),
            totals: ClassCounts::default(),
            fallback: FallbackNames {
                heap: "[heap]".into(),
                anon: "[anon]".into(),
                stack: "[stack]".into(),
                unknown: UNKNOWN_MAPPING.into(),
            },
            ended: std::collections::VecDeque::new(),
            forgotten_regions: 0,
            unknown_mappings: UnknownMappings::default(),
            stacks: StackTotals::default(),
            held: FxHashMap::default(),
            view,
            functions: FunctionCounts::default(),
            command: None,
            command_before_exec: false,
            own: DemoOwn::default(),
        }
    }

    /// Starts tracking the command demo forked, held before its exec: traced from its fork, it
    /// runs demo's own code until its exec, and demo ptraces it (see [`own`]).
    pub fn add_command(&mut self, pid: u32) {
        self.add_process(pid, TracedSince::Fork);
        self.command = Some(pid);
        self.command_before_exec = true;
    }

    /// Starts tracking a process (the command, the --pid target, or one in the --cgroup) and
    /// reads its mappings. `traced_since` says whether the trace saw it from its fork (a
    /// command demo started), whether its threads may have faulted before the trace began (a
    /// running process), or what the kernel side said they had when it joined. A process that
    /// records named before it was added keeps what the trace counted of it; one that exited
    /// was another process, whose pid this one took (see [`Session::retire`]). The loader adds
    /// its processes before it handles any record, when none has exited, so no region ends
    /// here; the records' joins and forks of a reused pid report the old regions' ends.
    pub fn add_process(&mut self, pid: u32, traced_since: TracedSince) {
        self.start_process(pid, traced_since, &mut Vec::new());
    }

    /// [`Session::add_process`], with the ends of the regions of an exited process whose pid
    /// the new one took going to `out`.
    fn start_process(&mut self, pid: u32, traced_since: TracedSince, out: &mut Vec<TraceEvent>) {
        self.retire(pid, out);
        let (before_trace, gone) = match traced_since {
            TracedSince::Fork => (Some(FaultCounters::default()), FaultCounters::default()),
            TracedSince::Attach => (
                Some(
                    self.view
                        .live_threads_fault_counters(pid)
                        .unwrap_or_default(),
                ),
                FaultCounters::default(),
            ),
            TracedSince::Joined { before, gone } => (before, gone),
        };
        let maps = self.view.read_mappings(pid).unwrap_or_default();
        let command = self.view.command_name(pid).map(Arc::from);
        let process = self.processes.entry(pid).or_default();
        process.maps = maps;
        process.command = command;
        process.before_trace = before_trace;
        process.exited_threads = process.exited_threads.plus(gone);
        process.added = true;
    }

    /// Starts tracking a forked `child` with what it inherited from `parent`: fork copies the
    /// address space, so the child starts with the parent's mappings and regions, and names
    /// them even if it is gone before /proc/PID/maps could be read.
    fn inherit(&mut self, parent: u32, child: u32, out: &mut Vec<TraceEvent>) {
        self.retire(child, out);
        let inherited = self.processes.get(&parent).map(|parent| ProcessState {
            maps: parent.maps.clone(),
            heap: parent.heap,
            command: parent.command.clone(),
            before_trace: Some(FaultCounters::default()),
            added: true,
            ..ProcessState::default()
        });
        match inherited {
            Some(state) => {
                self.processes.insert(child, state);
            }
            None => self.start_process(child, TracedSince::Fork, out),
        }
        for change in self.regions.inherit(parent, child) {
            self.apply_region_change(change, out);
        }
    }

    /// Moves an exited process `pid` out of the way of a new process that took its pid: its
    /// totals go on to the summary as they were, and its regions, which the new address space
    /// does not have, end. Nothing happens while `pid` runs or was never seen.
    fn retire(&mut self, pid: u32, out: &mut Vec<TraceEvent>) {
        let process = match self.processes.entry(pid) {
            Entry::Occupied(entry) if entry.get().exited => entry.remove(),
            _ => return,
        };
        self.ended_processes.push(totals_of(pid, &process));
        for change in self.regions.end_all(pid) {
            self.apply_region_change(change, out);
        }
    }

    /// Adds a region given by hand, for process `pid`.
    pub fn add_manual_region(&mut self, pid: u32, start: u64, len: u64, out: &mut Vec<TraceEvent>) {
        let change = self.regions.add_manual(pid, start, len);
        self.apply_region_change(change, out);
    }

    pub fn handle(&mut self, decoded: Decoded, out: &mut Vec<TraceEvent>) {
        let snapshot = decoded.snapshot;
        let settled = match &decoded.record {
            Record::FaultEnd(end) => self.classifier.complete(snapshot, end),
            _ => self.classifier.observe(snapshot),
        };
        if let Some((fault, resolved)) = settled {
            self.hold(fault, resolved, out);
        }
        // A thread's held faults wait through its next faults and its exec; anything else it
        // does shows they were not the exec's.
        if !self.held.is_empty()
            && !matches!(
                decoded.record,
                Record::Fault(_) | Record::FaultEnd(_) | Record::Exec(_) | Record::ExecImage(_)
            )
        {
            self.release(snapshot.tid, out);
        }
        match decoded.record {
            Record::Fault(fault) => {
                // The mapping and region are those of now, before any later munmap is handled.
                let resolved = self.resolve(&fault, decoded.stack);
                self.classifier
                    .open(fault, decoded.snapshot.counters, resolved);
            }
            Record::ThreadExit { pid } => {
                let process = self.processes.entry(pid).or_default();
                process.exited_threads = process.exited_threads.plus(snapshot.counters);
            }
            Record::Syscall(event) => {
                let Some(call) = self.syscalls.push(event) else {
                    return;
                };
                let process = self.processes.entry(call.pid).or_default();
                process.maps.apply(&call);
                if call.syscall == demo_common::Syscall::Brk && !call.failed() {
                    let end = call.ret as u64;
                    process.heap = Some(process.heap.map_or((end, end), |(start, _)| (start, end)));
                }
                let inside_heap = self.heap.inside_call(call.tid);
                let changes = self.regions.on_syscall(&call, inside_heap);
                out.push(TraceEvent::Syscall(call));
                for change in changes {
                    self.apply_region_change(change, out);
                }
            }
            Record::Heap(event) => {
                if let Some(call) = self.heap.push(event) {
                    for change in self.regions.on_heap(&call) {
                        self.apply_region_change(change, out);
                    }
                }
            }
            Record::Signal(signal) if own::is_ptrace_stop(&signal, self.command) => {
                self.own.count(own::DemoCause::PtraceStop);
            }
            Record::Signal(signal) => out.push(TraceEvent::Signal(signal)),
            Record::Exec(pid) => {
                // The old image's mappings and arrays are gone; faults from here are the new one's.
                if self.command == Some(pid) {
                    self.command_before_exec = false;
                }
                let process = self.processes.entry(pid).or_default();
                process.maps.invalidate();
                process.heap = None;
                self.view.address_space_ended(pid);
                let changes = self.regions.end_all(pid);
                // Behind faults the thread holds, the regions' ends wait too, in order.
                let mut ended = Vec::new();
                for change in changes {
                    self.apply_region_change(change, &mut ended);
                }
                match self.held.get_mut(&snapshot.tid) {
                    Some(held) => {
                        held.exec = true;
                        held.events.extend(ended.into_iter().map(Held::Event));
                    }
                    None => out.extend(ended),
                }
            }
            Record::ExecImage(image) => {
                // What the kernel mapped for the new image, as facts of the exec: named so even
                // when the process is gone before /proc could be read.
                let mut mappings = self.view.image_mappings(&image);
                if let Some((start, end)) = image.stack {
                    mappings.push(Mapping {
                        start,
                        end,
                        perms: "rw-p".to_owned(),
                        name: Arc::clone(&self.fallback.stack),
                        file_offset: 0,
                        captured: true,
                    });
                }
                let process = self.processes.entry(image.pid).or_default();
                for mapping in mappings {
                    process.maps.capture(mapping);
                }
                if !image.command.is_empty() {
                    process.command = Some(image.command.into());
                }
                // The faults the kernel took writing the new image (its bss, its stack) came
                // before the exec's records, and are named from that image now.
                if !self.held.is_empty() {
                    self.release(snapshot.tid, out);
                }
            }
            Record::MappedFile(mapped) => {
                let process = self.processes.entry(mapped.pid).or_default();
                process.maps.capture_file(&mapped);
            }
            // Its fault was settled above, before anything else of the record was handled.
            Record::FaultEnd(_) => {}
            // A process the loader added already (from the cgroup's list, a moment before the
            // kernel side met it) keeps what it was added with. One that only records named so
            // far (another thread's event can come before the join's record) is added now, and
            // so is one whose pid was an exited process's: a process never joins after its exit.
            Record::Joined(join) => {
                if !self
                    .processes
                    .get(&join.pid)
                    .is_some_and(|p| p.added && !p.exited)
                {
                    self.start_process(
                        join.pid,
                        TracedSince::Joined {
                            before: join.before(),
                            gone: join.gone,
                        },
                        out,
                    );
                }
            }
            Record::Process(event) if event.exited => {
                let process = self.processes.entry(event.pid).or_default();
                process.exited = true;
                self.view.address_space_ended(event.pid);
                out.push(TraceEvent::ProcessExited { pid: event.pid });
            }
            Record::Process(event) => {
                out.push(TraceEvent::ProcessForked {
                    pid: event.pid,
                    parent: event.parent,
                });
                self.inherit(event.parent, event.pid, out);
            }
        }
    }

    /// Settles the open faults of threads that have been quiet since before `before_ns`
    /// (CLOCK_MONOTONIC), from /proc, when their counters show the fault ended; a thread that
    /// faults once and then sleeps would otherwise hold its fault back until it exits. A read
    /// is believed only at the next call, if the thread made no record in between (see
    /// [`Classifier::settle_quiet`]): the caller reads the buffer between two calls.
    pub fn settle_quiet(&mut self, before_ns: u64, out: &mut Vec<TraceEvent>) {
        let view = &*self.view;
        for (fault, resolved) in self.classifier.settle_quiet(
            |fault| fault.timestamp_ns < before_ns,
            |pid, tid| view.thread_fault_counters(pid, tid),
        ) {
            // A quiet thread makes no record soon: what it holds goes out with this fault.
            let tid = fault.fault.tid;
            self.hold(fault, resolved, out);
            self.release(tid, out);
        }
    }

    /// Settles every open fault: threads still alive settle their last fault from /proc; the
    /// faults of threads that are gone without an exit record never completed as far as anything
    /// shows. A trace does this at its end, a walk at the end of each step, when its child waits
    /// for the next command.
    pub fn finish(&mut self, out: &mut Vec<TraceEvent>) {
        let view = &*self.view;
        let settled = self
            .classifier
            .settle_all(|pid, tid| view.thread_fault_counters(pid, tid));
        for (fault, resolved) in settled {
            self.hold(fault, resolved, out);
        }
        // Held events go out by their first fault, oldest first.
        let mut threads: Vec<(u64, u32)> = self
            .held
            .iter()
            .map(|(&tid, held)| {
                let first = held.events.iter().find_map(|event| match event {
                    Held::Fault(fault, _) => Some(fault.fault.timestamp_ns),
                    Held::Event(_) => None,
                });
                (first.unwrap_or(0), tid)
            })
            .collect();
        threads.sort_unstable();
        for (_, tid) in threads {
            self.release(tid, out);
        }
    }

    /// Emits a classed fault, or holds it back: a fault in no mapping may be one the kernel
    /// took during an exec, writing the new image (zeroing its bss, building its stack) before
    /// the exec's records, so it waits for its thread's next record that is not a fault; so do
    /// the thread's later events, to keep their order. The normal path costs no lookup.
    fn hold(&mut self, fault: ClassifiedFault, resolved: Resolved, out: &mut Vec<TraceEvent>) {
        if self.held.is_empty() && resolved.unknown.is_none() {
            self.emit_fault(fault, resolved, out);
            return;
        }
        let tid = fault.fault.tid;
        let held = match self.held.get_mut(&tid) {
            Some(held) => held,
            None if resolved.unknown.is_some() => self.held.entry(tid).or_default(),
            None => {
                self.emit_fault(fault, resolved, out);
                return;
            }
        };
        held.events.push(Held::Fault(fault, resolved));
        if held.events.len() > MAX_HELD {
            self.release(tid, out);
        }
    }

    /// Emits what thread `tid` held back, in order. After an exec of its process, its faults
    /// in no mapping are named anew from the new image's mappings; otherwise as they were.
    fn release(&mut self, tid: u32, out: &mut Vec<TraceEvent>) {
        let Some(held) = self.held.remove(&tid) else {
            return;
        };
        for event in held.events {
            match event {
                Held::Fault(fault, mut resolved) => {
                    if held.exec && resolved.unknown.is_some() {
                        let (mapping, offset, unknown) =
                            self.resolve_mapping(fault.fault.pid, fault.fault.address);
                        resolved.mapping = mapping;
                        resolved.mapping_offset = offset;
                        resolved.unknown = unknown;
                    }
                    self.emit_fault(fault, resolved, out);
                }
                Held::Event(event) => out.push(event),
            }
        }
    }

    fn apply_region_change(&mut self, change: RegionChange, out: &mut Vec<TraceEvent>) {
        match change {
            RegionChange::Started(id) => {
                let tracked = self.regions.get(id).clone();
                self.pages.insert(
                    id,
                    (
                        PageModel::without_origins(tracked.region.page_count() as usize),
                        0,
                    ),
                );
                out.push(TraceEvent::RegionStarted(tracked));
            }
            RegionChange::Ended(id) => {
                out.push(TraceEvent::RegionEnded(self.regions.get(id).clone()));
                self.ended.push_back(id);
                if self.ended.len() > KEPT_ENDED_REGIONS
                    && let Some(oldest) = self.ended.pop_front()
                {
                    self.pages.remove(&oldest);
                    self.regions.forget(oldest);
                    self.forgotten_regions += 1;
                }
            }
        }
    }

    /// What a fault hit, as the process's mappings and the tracked regions are now.
    fn resolve(&mut self, fault: &Fault, stack: Option<RawStack>) -> Resolved {
        let (mapping, mapping_offset, unknown) = self.resolve_mapping(fault.pid, fault.address);
        // The code is named from the mappings too: a library mapped since the last lookup there
        // is asked for as the fault's address was. A copied stack's callers are known only once
        // it is unwound, with the mappings that hold its code.
        let process = self.processes.entry(fault.pid).or_default();
        // A copied stack adds the user ip only where it is not the fault's own (a kernel-mode
        // fault's syscall), so a user-mode fault's code is looked up once.
        let callers: &[u64] = match &stack {
            Some(RawStack::Frames(frames)) => frames,
            Some(RawStack::Copied(copy)) if copy.regs.ip != fault.ip => {
                std::slice::from_ref(&copy.regs.ip)
            }
            _ => &[],
        };
        for &address in std::iter::once(&fault.ip).chain(callers) {
            current_maps(process, &mut *self.view, fault.pid, address);
        }
        let (code, stack) =
            self.view
                .fault_code(fault.pid, fault.ip, stack.as_ref(), &process.maps);
        let command = process.command.clone();
        let region = self
            .regions
            .find(fault.pid, fault.address)
            .and_then(|tracked| {
                let location = tracked.region.locate(fault.address)?;
                Some((tracked.id, Arc::clone(&tracked.region.name), location))
            });
        Resolved {
            mapping,
            mapping_offset,
            unknown,
            region,
            code,
            stack,
            command,
        }
    }

    fn emit_fault(
        &mut self,
        fault: ClassifiedFault,
        resolved: Resolved,
        out: &mut Vec<TraceEvent>,
    ) {
        let raw = fault.fault;
        if fault.class != FaultClass::Error {
            self.processes.entry(raw.pid).or_default().completions += 1;
        }
        // The kernel counts demo's own faults too, so they stay in the process's completions,
        // which are compared with its counts; they are not the program's events.
        let before_exec = self.command_before_exec && self.command == Some(raw.pid);
        if let Some(cause) = own::fault_cause(&resolved.mapping, before_exec) {
            self.own.count(cause);
            return;
        }
        self.totals.add(fault.class);
        let Resolved {
            mapping,
            mapping_offset,
            unknown,
            region,
            code,
            stack,
            command,
        } = resolved;
        if let Some(cause) = unknown {
            self.unknown_mappings.add(cause);
        }
        if let Some(stack) = &stack {
            self.stacks.add(stack);
        }
        self.functions
            .add(&code, region.as_ref().map(|(id, name, _)| (*id, name)));
        if let Some((id, _, location)) = &region
            && let Some((pages, count)) = self.pages.get_mut(id)
        {
            *count += 1;
            if fault.class != FaultClass::Error {
                pages.apply_at(location, raw.error_code.access(), 0);
            }
        }
        out.push(TraceEvent::Fault(TracedFault {
            fault,
            mapping,
            mapping_offset,
            region,
            code,
            stack,
            command,
        }));
    }

    /// Names the mapping behind `address` (see [`current_maps`]), or, once the process is gone,
    /// what the trace itself saw mapped there; else `[unknown]`, and why.
    fn resolve_mapping(&mut self, pid: u32, address: u64) -> (Arc<str>, u64, Option<UnknownCause>) {
        let process = self.processes.entry(pid).or_default();
        let (maps, asked) = current_maps(process, &mut *self.view, pid, address);
        if let Some(m) = maps.find(address) {
            return (Arc::clone(&m.name), m.offset_of(address), None);
        }
        // The process is gone (short-lived ones often are by the next poll): name what the
        // trace itself saw mapped.
        if let Some((start, end)) = process.heap
            && (start..end).contains(&address)
        {
            return (Arc::clone(&self.fallback.heap), address - start, None);
        }
        let cause = if asked {
            UnknownCause::NothingMapped
        } else {
            UnknownCause::ProcessGone
        };
        match self.regions.find(pid, address) {
            Some(tracked) if matches!(tracked.origin, Origin::Mmap | Origin::Mremap) => (
                Arc::clone(&self.fallback.anon),
                address - tracked.region.start,
                None,
            ),
            _ => (Arc::clone(&self.fallback.unknown), address, Some(cause)),
        }
    }

    /// What demo's own tracing made the traced processes do, left out of the events.
    pub fn demo_own(&self) -> DemoOwn {
        self.own
    }

    /// The faults counted by function, and by function and region.
    pub fn functions(&self) -> &FunctionCounts {
        &self.functions
    }

    /// The command name of `pid`, as last read.
    pub fn command_of(&self, pid: u32) -> Option<&str> {
        self.processes.get(&pid)?.command.as_deref()
    }

    /// Faults whose mapping could not be named, by cause.
    pub fn unknown_mappings(&self) -> UnknownMappings {
        self.unknown_mappings
    }

    /// The stacks of the faults emitted so far, counted.
    pub fn stack_totals(&self) -> StackTotals {
        self.stacks
    }

    pub fn totals(&self) -> ClassCounts {
        self.totals
    }

    /// Ended regions left out of the summary, to bound memory.
    pub fn forgotten_regions(&self) -> u64 {
        self.forgotten_regions
    }

    pub fn unattributed_faults(&self) -> u64 {
        self.classifier.unattributed()
    }

    /// Fault completions that ended no open fault (see [`Classifier::unmatched_ends`]).
    pub fn completions_without_start(&self) -> u64 {
        self.classifier.unmatched_ends()
    }

    /// Completed faults whose class by the counters differs from the kernel's event (see
    /// [`Classifier::disagreements`]).
    pub fn class_disagreements(&self) -> u64 {
        self.classifier.disagreements()
    }

    /// True once the kernel reported that `pid` exited.
    pub fn has_exited(&self, pid: u32) -> bool {
        self.processes.get(&pid).is_some_and(|p| p.exited)
    }

    /// Completed faults seen for `pid`.
    pub fn completions_of(&self, pid: u32) -> u64 {
        self.processes.get(&pid).map_or(0, |p| p.completions)
    }

    /// What the kernel and the trace counted for each traced process, by pid; processes that
    /// had the same pid in turn, oldest first.
    pub fn process_totals(&self) -> impl Iterator<Item = ProcessTotals> + '_ {
        let mut all: Vec<ProcessTotals> = self
            .ended_processes
            .iter()
            .cloned()
            .chain(
                self.processes
                    .iter()
                    .map(|(&pid, process)| totals_of(pid, process)),
            )
            .collect();
        // A stable sort: the ended ones, in the order they ended, before their pid's current one.
        all.sort_by_key(|totals| totals.pid);
        all.into_iter()
    }

    /// The page states of region `id`, while it keeps them.
    pub fn pages_of(&self, id: usize) -> Option<&PageModel> {
        self.pages.get(&id).map(|(pages, _)| pages)
    }

    /// Every region with its page model and fault count, in creation order.
    pub fn region_states(&self) -> impl Iterator<Item = (&TrackedRegion, &PageModel, u64)> {
        self.regions.regions().filter_map(|tracked| {
            let (pages, count) = self.pages.get(&tracked.id)?;
            Some((tracked, pages, *count))
        })
    }
}

/// What the kernel and the trace counted for `process`, whose pid is `pid`.
fn totals_of(pid: u32, process: &ProcessState) -> ProcessTotals {
    ProcessTotals {
        pid,
        command: process.command.clone(),
        traced: process.completions,
        // A process only records named was never added: its join or fork record was lost
        // (counted with its lost records), so what it counted before is not known.
        before_trace: process.before_trace,
        kernel: process.exited.then_some(process.exited_threads),
    }
}

/// The mappings of `process`, up to date at `address` (see [`MappingTable::refresh`]): as they
/// were when nothing changed there, else as the kernel says now; never asked again once the
/// process is gone. Kernel addresses (a kernel-mode fault's instruction) are in no mapping.
/// With them, whether the kernel answered for the process (false once it is gone).
fn current_maps<'a>(
    process: &'a mut ProcessState,
    view: &mut dyn SystemView,
    pid: u32,
    address: u64,
) -> (&'a MappingTable, bool) {
    // Once /proc/PID/maps cannot be read the process is gone; its remaining faults (its exit
    // record comes last) must not each try again.
    let mut asked = !process.exited && !process.maps_gone;
    if address >> 63 == 0 && asked {
        match process.maps.refresh(view, pid, address) {
            Some(Refreshed::ReadWhole) => {
                // A whole read follows an exec, which names the process anew.
                if let Some(command) = view.command_name(pid) {
                    process.command = Some(command.into());
                }
            }
            Some(Refreshed::Current | Refreshed::Queried) => {}
            // The maps could not be read, or showed nothing: the process is gone, or exited
            // and not reaped yet. Only a process that is gone is not asked again; a read that
            // failed for another reason is tried again at the next miss.
            None => {
                asked = false;
                process.maps_gone = view.command_name(pid).is_none();
            }
        }
    }
    (&process.maps, asked)
}

#[cfg(test)]
mod tests;
