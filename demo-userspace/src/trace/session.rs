//! The trace's state machine: takes decoded records in ring-buffer order and turns them into
//! trace events (classed faults resolved to mapping and region, syscalls, heap regions,
//! signals, processes), keeping the counts for the summary.

use std::{collections::BTreeMap, sync::Arc};

use super::{
    functions::FunctionCounts,
    heap::HeapPairer,
    regions::{Origin, RegionChange, RegionTracker, TrackedRegion},
};
use crate::{
    kernel::mappings::{MappingTable, Refreshed, UNKNOWN_MAPPING},
    kernel::symbols::{Code, StackFrame},
    kernel::system_view::SystemView,
    model::classify::{ClassCounts, ClassifiedFault, Classifier, FaultClass},
    model::events::{Decoded, Fault, Record, SignalEvent},
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
    pub stack: Option<Vec<StackFrame>>,
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
}

/// Where a fault hit, worked out when its record arrived.
#[derive(Debug)]
struct Resolved {
    mapping: Arc<str>,
    mapping_offset: u64,
    region: Option<(usize, Arc<str>, Location)>,
    code: Arc<Code>,
    stack: Option<Vec<StackFrame>>,
}

pub struct Session {
    /// Each open fault carries where it hit, worked out when its record arrived.
    classifier: Classifier<Resolved>,
    syscalls: SyscallPairer,
    heap: HeapPairer,
    regions: RegionTracker,
    processes: BTreeMap<u32, ProcessState>,
    /// Per region id: its page model and fault count.
    pages: BTreeMap<usize, (PageModel, u64)>,
    totals: ClassCounts,
    fallback: FallbackNames,
    /// Ended regions whose page models are still kept, oldest first.
    ended: std::collections::VecDeque<usize>,
    /// Ended regions whose page models were let go (see [`KEPT_ENDED_REGIONS`]).
    forgotten_regions: u64,
    /// Faults named `[unknown]`.
    unknown_mappings: u64,
    /// Where the mappings, command names, thread counters and symbols come from.
    view: Box<dyn SystemView>,
    functions: FunctionCounts,
}

/// How many ended regions keep their page model for the summary. A process that maps and
/// unmaps in a loop would otherwise grow the loader by a page model per mapping, for ever.
pub const KEPT_ENDED_REGIONS: usize = 64;

/// Mapping names for a process that is gone, made once and shared by every fault.
struct FallbackNames {
    heap: Arc<str>,
    anon: Arc<str>,
    unknown: Arc<str>,
}

impl Session {
    pub fn new(regions: RegionTracker, view: Box<dyn SystemView>) -> Self {
        Self {
            classifier: Classifier::default(),
            syscalls: SyscallPairer::default(),
            heap: HeapPairer::default(),
            regions,
            processes: BTreeMap::new(),
            pages: BTreeMap::new(),
            totals: ClassCounts::default(),
            fallback: FallbackNames {
                heap: "[heap]".into(),
                anon: "[anon]".into(),
                unknown: UNKNOWN_MAPPING.into(),
            },
            ended: std::collections::VecDeque::new(),
            forgotten_regions: 0,
            unknown_mappings: 0,
            view,
            functions: FunctionCounts::default(),
        }
    }

    /// Starts tracking a process (the command, or the --pid target) and reads its mappings.
    pub fn add_process(&mut self, pid: u32) {
        self.processes.insert(
            pid,
            ProcessState {
                maps: self.view.read_mappings(pid).unwrap_or_default(),
                command: self.view.command_name(pid).map(Arc::from),
                ..ProcessState::default()
            },
        );
    }

    /// Starts tracking a forked `child` with what it inherited from `parent`: fork copies the
    /// address space, so the child starts with the parent's mappings and regions, and names
    /// them even if it is gone before /proc/PID/maps could be read.
    fn inherit(&mut self, parent: u32, child: u32, out: &mut Vec<TraceEvent>) {
        let inherited = self.processes.get(&parent).map(|parent| ProcessState {
            maps: parent.maps.clone(),
            heap: parent.heap,
            command: parent.command.clone(),
            ..ProcessState::default()
        });
        match inherited {
            Some(state) => {
                self.processes.insert(child, state);
            }
            None => self.add_process(child),
        }
        for change in self.regions.inherit(parent, child) {
            self.apply_region_change(change, out);
        }
    }

    /// Adds a region given by hand, for process `pid`.
    pub fn add_manual_region(&mut self, pid: u32, start: u64, len: u64, out: &mut Vec<TraceEvent>) {
        let change = self.regions.add_manual(pid, start, len);
        self.apply_region_change(change, out);
    }

    pub fn handle(&mut self, decoded: Decoded, out: &mut Vec<TraceEvent>) {
        if let Some((fault, resolved)) = self.classifier.observe(decoded.snapshot) {
            self.emit_fault(fault, resolved, out);
        }
        match decoded.record {
            Record::Fault(fault) => {
                // The mapping and region are those of now, before any later munmap is handled.
                let resolved = self.resolve(&fault, decoded.stack);
                self.classifier
                    .open(fault, decoded.snapshot.counters, resolved);
            }
            Record::ThreadExit => {}
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
            Record::Signal(signal) => out.push(TraceEvent::Signal(signal)),
            Record::Exec(pid) => {
                // The old image's mappings and arrays are gone; faults from here are the new one's.
                let process = self.processes.entry(pid).or_default();
                process.maps.invalidate();
                process.heap = None;
                self.view.address_space_ended(pid);
                for change in self.regions.end_all(pid) {
                    self.apply_region_change(change, out);
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
    /// faults once and then sleeps would otherwise hold its fault back until it exits.
    pub fn settle_quiet(&mut self, before_ns: u64, out: &mut Vec<TraceEvent>) {
        let view = &*self.view;
        for (fault, resolved) in self.classifier.settle_open(
            |fault| fault.timestamp_ns < before_ns,
            |pid, tid| view.thread_fault_counters(pid, tid),
            true,
        ) {
            self.emit_fault(fault, resolved, out);
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
            self.emit_fault(fault, resolved, out);
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
    fn resolve(&mut self, fault: &Fault, stack: Option<Vec<u64>>) -> Resolved {
        let (mapping, mapping_offset) = self.resolve_mapping(fault.pid, fault.address);
        // The code is named from the mappings too: a library mapped since the last lookup there
        // is asked for as the fault's address was.
        let process = self.processes.entry(fault.pid).or_default();
        for &address in std::iter::once(&fault.ip).chain(stack.iter().flatten()) {
            current_maps(process, &mut *self.view, fault.pid, address);
        }
        let (code, stack) = self
            .view
            .fault_code(fault.ip, stack.as_deref(), &process.maps);
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
            region,
            code,
            stack,
        }
    }

    fn emit_fault(
        &mut self,
        fault: ClassifiedFault,
        resolved: Resolved,
        out: &mut Vec<TraceEvent>,
    ) {
        let raw = fault.fault;
        self.totals.add(fault.class);
        if fault.class != FaultClass::Error {
            self.processes.entry(raw.pid).or_default().completions += 1;
        }
        let Resolved {
            mapping,
            mapping_offset,
            region,
            code,
            stack,
        } = resolved;
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
        }));
    }

    /// Names the mapping behind `address` (see [`current_maps`]), or, once the process is gone,
    /// what the trace itself saw mapped there.
    fn resolve_mapping(&mut self, pid: u32, address: u64) -> (Arc<str>, u64) {
        let process = self.processes.entry(pid).or_default();
        if let Some(m) = current_maps(process, &mut *self.view, pid, address).find(address) {
            return (Arc::clone(&m.name), m.offset_of(address));
        }
        // The process is gone (short-lived ones often are by the next poll): name what the
        // trace itself saw mapped.
        if let Some((start, end)) = process.heap
            && (start..end).contains(&address)
        {
            return (Arc::clone(&self.fallback.heap), address - start);
        }
        match self.regions.find(pid, address) {
            Some(tracked) if matches!(tracked.origin, Origin::Mmap | Origin::Mremap) => (
                Arc::clone(&self.fallback.anon),
                address - tracked.region.start,
            ),
            _ => {
                self.unknown_mappings += 1;
                (Arc::clone(&self.fallback.unknown), address)
            }
        }
    }

    /// The faults counted by function, and by function and region.
    pub fn functions(&self) -> &FunctionCounts {
        &self.functions
    }

    /// The command name of `pid`, as last read.
    pub fn command_of(&self, pid: u32) -> Option<&str> {
        self.processes.get(&pid)?.command.as_deref()
    }

    /// Faults whose mapping could not be named.
    pub fn unknown_mappings(&self) -> u64 {
        self.unknown_mappings
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

    /// True once the kernel reported that `pid` exited.
    pub fn has_exited(&self, pid: u32) -> bool {
        self.processes.get(&pid).is_some_and(|p| p.exited)
    }

    /// Completed faults seen for `pid`.
    pub fn completions_of(&self, pid: u32) -> u64 {
        self.processes.get(&pid).map_or(0, |p| p.completions)
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

/// The mappings of `process`, up to date at `address` (see [`MappingTable::refresh`]): as they
/// were when nothing changed there, else as the kernel says now; never asked again once the
/// process is gone. Kernel addresses (a kernel-mode fault's instruction) are in no mapping.
fn current_maps<'a>(
    process: &'a mut ProcessState,
    view: &mut dyn SystemView,
    pid: u32,
    address: u64,
) -> &'a MappingTable {
    // Once /proc/PID/maps cannot be read the process is gone; its remaining faults (its exit
    // record comes last) must not each try again.
    if address >> 63 == 0 && !process.exited && !process.maps_gone {
        match process.maps.refresh(view, pid, address) {
            Some(Refreshed::ReadWhole) => {
                // A whole read follows an exec, which names the process anew.
                if let Some(command) = view.command_name(pid) {
                    process.command = Some(command.into());
                }
            }
            Some(Refreshed::Current | Refreshed::Queried) => {}
            None => process.maps_gone = true,
        }
    }
    &process.maps
}

#[cfg(test)]
mod tests;
