//! What one step of a walk produced: its faults with their classes and places, its syscalls and
//! signals, the child's fate, and what the kernel reports afterwards.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    kernel::mappings::MappingTable,
    kernel::procmem::VmaUsage,
    kernel::symbols::{Code, StackFrame},
    model::classify::{ClassCounts, FaultClass},
    model::events::SignalEvent,
    model::pages::{PageModel, PageOrigin},
    model::region::{Location, Region},
    model::syscalls::SyscallCall,
    trace::session::TracedFault,
    walk::fault_time::{FaultTime, StepFaults},
    walk::plan::{Allocator, ScenarioName, Touch},
};

/// The id a walk's one region has in its faults: the session tracks no region of its own for
/// a walk, whose array is known only once the step that made it has ended.
pub const WALK_REGION: usize = 0;

/// What the kernel reports after a step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelView {
    /// Pages of the region that pagemap shows present with memory of their own.
    pub resident_pages: Vec<u64>,
    /// Pages of the region mapped to the shared zero page (kpageflags ZERO_PAGE).
    pub zero_pages: Vec<u64>,
    /// The region's own resident size: resident pages × page size, in KiB. Like the kernel's
    /// RSS, it does not count the zero page.
    pub rss_kib: u64,
    /// The VMA that holds the region's first byte, from smaps.
    pub vma: Option<VmaUsage>,
    /// Each page's frame number (pagemap's PFN), 0 when not present.
    pub frames: Vec<u64>,
    /// Present pages that are the file's own page-cache pages (pagemap's file bit).
    pub file_pages: Vec<u64>,
    /// Present pages that are part of a transparent huge page (kpageflags THP).
    pub huge_pages: Vec<u64>,
    /// Every VMA of the process, from the same read of smaps, in address order: the whole
    /// process as `pmap -x` shows it.
    pub process: Vec<VmaUsage>,
}

/// How the loader checked the address the child reported for its array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressCheck {
    /// The kernel's mmap returned the same address the child reported.
    Matches,
    /// The kernel's mmap returned another address than the child reported.
    Differs { kernel: u64 },
    /// The array lies inside what the kernel's mmap returned, `offset` bytes in: malloc's
    /// chunk header before it, or an alignment the child made by unmapping the rest.
    Inside { kernel: u64, offset: u64 },
    /// No traced mmap returned the array (malloc served it from existing memory or brk).
    NotFromMmap,
    /// The stack lesson's region: the child's stack pointer was `sp`.
    StackPointer { sp: u64 },
}

/// Facts about the allocation step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllocationFacts {
    pub allocator: Allocator,
    pub address_check: AddressCheck,
    /// For a guarded array: the address of the page after it, and whether no VMA holds it.
    pub guard: Option<(u64, bool)>,
}

/// What happened to the touched element of a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouchOutcome {
    pub touch: Touch,
    pub location: Option<Location>,
    /// A fault of this step hit the touched page.
    pub faulted: bool,
    /// The mapping that holds the touched element (empty once the child is gone).
    pub mapping: String,
    /// What first made the page present, when it did not fault now.
    pub resident_since: Option<PageOrigin>,
    /// When a later write gave the page a frame of its own (a copy on write), when it did
    /// not fault now.
    pub own_frame_since: Option<OwnFrame>,
}

/// The write fault that gave a page already present a frame of its own: a copy on write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnFrame {
    /// The step of the write, and the element it wrote.
    pub step: u32,
    pub index: i64,
    /// The page was the shared zero page before (a read had mapped it), not a page fork shared.
    pub from_zero_page: bool,
}

/// How the child died during a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Death {
    /// The wait status, e.g. `signal: 11 (SIGSEGV)`.
    pub status: crate::model::signals::ProcessEnd,
    /// The signal from the wait status.
    pub wait_signal: Option<i32>,
    /// The kernel's own record of the fatal signal (signal:signal_generate), if seen.
    pub generated: Option<SignalEvent>,
    /// The fault that did not complete just before, with where it fell.
    pub fault: Option<(u64, Option<Location>)>,
    /// That fault's error code: whether the page was present, and the access.
    pub error_code: Option<crate::model::access::ErrorCode>,
}

/// Everything known about one step.
#[derive(Clone, Debug)]
pub struct StepReport {
    pub scenario: ScenarioName,
    pub step: u32,
    /// The workload child's pid.
    pub pid: u32,
    /// The workload's own executable, demo's binary (`/proc/PID/exe`): its code and pages are
    /// demo's machinery, which the report does not present as the lesson's.
    pub workload_binary: Arc<str>,
    /// CLOCK_MONOTONIC ns when the step's first command was sent, and when its last reply came.
    pub started_ns: u64,
    pub ended_ns: u64,
    pub action: String,
    pub region: Region,
    pub faults: Vec<TracedFault>,
    pub syscalls: Vec<SyscallCall>,
    pub signals: Vec<SignalEvent>,
    pub allocation: Option<AllocationFacts>,
    pub touch: Option<TouchOutcome>,
    pub death: Option<Death>,
    pub pages: PageModel,
    /// `None` once the child is gone.
    pub kernel: Option<KernelView>,
    /// The values the step read, when it read (`x = arr[i]`, or a page each).
    pub values: Option<Vec<i32>>,
    /// What a lesson's step adds to the kernel's view.
    pub lesson: Option<crate::walk::lessons::facts::LessonFacts>,
}

impl StepReport {
    pub fn faults_in_region(&self) -> impl Iterator<Item = (&TracedFault, Location)> {
        self.faults
            .iter()
            .filter_map(|fault| fault.location().map(|location| (fault, location)))
    }

    /// In malloc's allocation step, the fault that wrote the header of the chunk after the array
    /// (its 16 bytes: prev_size, then size): malloc carves the array's chunk from the top of the
    /// heap and writes the size of what is left there, the next chunk. With the bytes past the
    /// array's end it wrote at.
    pub fn next_chunk_header_write(&self) -> Option<(&TracedFault, u64)> {
        let facts = self.allocation.as_ref()?;
        if facts.allocator != Allocator::Malloc {
            return None;
        }
        let len = self.region.len as i64;
        self.faults_in_region()
            .find(|(_, location)| (len..len + 16).contains(&location.offset))
            .map(|(fault, location)| (fault, (location.offset - len) as u64))
    }

    /// True when `module` (a mapping's or a code's) is the workload's own binary, demo's.
    pub fn is_workload_binary(&self, module: &str) -> bool {
        let bare = |path: &str| path.trim_end_matches(" (deleted)").to_owned();
        bare(module) == bare(&self.workload_binary)
    }

    /// The code that made `fault`, when it tells something: a libc function such as malloc's
    /// `_int_malloc`, never the workload's own code in demo's binary.
    pub fn told_code<'a>(&self, fault: &'a TracedFault) -> Option<&'a Code> {
        let own = fault
            .code
            .module
            .as_deref()
            .is_some_and(|module| self.is_workload_binary(module));
        (!own).then_some(&*fault.code)
    }

    /// The frames of `fault`'s stack (`--stacks`) inside what the workload called: those before
    /// its first frame in the workload's own binary (a libc function and its callees, such as
    /// malloc's `_int_malloc`). The workload's frames and its callers (libc's start of a
    /// process, which an unwound stack reaches) say nothing of the step.
    pub fn told_frames(&self, fault: &TracedFault) -> Vec<StackFrame> {
        fault
            .stack
            .iter()
            .flatten()
            .take_while(|frame| {
                !frame
                    .code
                    .module
                    .as_deref()
                    .is_some_and(|module| self.is_workload_binary(module))
            })
            .cloned()
            .collect()
    }

    /// Faults outside the array, counted per mapping name.
    pub fn elsewhere(&self) -> BTreeMap<&str, u64> {
        let mut counts = BTreeMap::new();
        for fault in self.faults.iter().filter(|fault| fault.region.is_none()) {
            *counts.entry(&*fault.mapping).or_default() += 1;
        }
        counts
    }

    /// True when the pages the faults explain are exactly those the kernel shows, both the
    /// resident ones and the zero-page ones.
    pub fn agrees_with_kernel(&self) -> Option<bool> {
        self.kernel.as_ref().map(|kernel| {
            self.pages.resident_pages() == kernel.resident_pages
                && self.pages.zero_pages() == kernel.zero_pages
        })
    }

    /// True when the kernel's VMA is larger than the region's pages, i.e. it merged the new
    /// mapping with a neighbour (or the array lives in a larger heap).
    pub fn vma_is_larger(&self) -> bool {
        self.kernel
            .as_ref()
            .and_then(|kernel| kernel.vma.as_ref())
            .is_some_and(|vma| {
                vma.size_kib * 1024 > self.region.page_count() * self.region.page_size
            })
    }

    /// Counts of this step's faults by class.
    pub fn class_counts(&self) -> ClassCounts {
        ClassCounts::of(self.faults.iter().map(|f| f.fault.class))
    }

    /// The time this step's faults took, all of them, in the region and elsewhere.
    pub fn fault_time(&self) -> FaultTime {
        FaultTime::of(&self.faults)
    }

    /// The time this step's faults of `class` in the region took.
    pub fn region_fault_time(&self, class: FaultClass) -> FaultTime {
        FaultTime::of(
            self.faults_in_region()
                .map(|(fault, _)| fault)
                .filter(|fault| fault.fault.class == class),
        )
    }

    /// What this step's faults in the region took, by class, for a lesson's later steps.
    pub fn region_faults_cost(&self) -> StepFaults {
        StepFaults {
            step: self.step,
            minor: self.region_fault_time(FaultClass::Minor),
            major: self.region_fault_time(FaultClass::Major),
            huge_pages: self
                .kernel
                .as_ref()
                .map_or(0, |kernel| kernel.huge_pages.len() as u64),
        }
    }
}

/// Builds the outcome of a step's touch from its faults and the page model.
pub fn touch_outcome(
    touch: Touch,
    region: &Region,
    faults: &[TracedFault],
    pages: &PageModel,
    maps: &MappingTable,
    own_frames: &BTreeMap<u64, OwnFrame>,
) -> TouchOutcome {
    let address = (region.start as i64 + touch.index * region.elem_size as i64) as u64;
    let location = region.locate(address);
    let faulted = location.is_some_and(|location| {
        faults.iter().any(|fault| {
            fault
                .location()
                .is_some_and(|hit| hit.page == location.page)
        })
    });
    TouchOutcome {
        touch,
        location,
        faulted,
        mapping: maps
            .find(address)
            .map(|m| m.name.to_string())
            .unwrap_or_default(),
        resident_since: location
            .filter(|_| !faulted)
            .and_then(|location| pages.origin(location.page)),
        own_frame_since: location
            .filter(|_| !faulted)
            .and_then(|location| own_frames.get(&location.page).copied()),
    }
}

/// True when a fault should change the page model: it completed, so the kernel mapped a page.
pub fn completed(fault: &TracedFault) -> bool {
    fault.fault.class != FaultClass::Error
}
