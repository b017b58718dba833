//! The lines of a built-in walk: the region, each fault, syscall and signal, each step, the
//! summary and the comparison. `demo trace` shares the region, fault, syscall and signal lines.

use std::{collections::BTreeMap, sync::Arc};

use schemars::JsonSchema;
use serde::Serialize;

use super::{
    fault_time::FaultTimeLine,
    kernel_view::{LessonFactsLine, VmaUsageLine},
    plan::{AllocatorLine, ScenarioNameLine},
};
use crate::{
    kernel::symbols::{Code, Stack, StackFrame},
    model::access::{Access, Mode},
    model::classify::{ClassifiedFault, FaultClass},
    model::events::SignalEvent,
    model::pages::PageOrigin,
    model::region::{Location, Region},
    model::signals::{ProcessEnd, si_code_name, signal_name},
    model::syscalls::{SyscallCall, Value},
    trace::session::TracedFault,
    walk::step_report::{AddressCheck, StepReport},
};

/// A `region` line: an array the report resolves faults in.
#[derive(Serialize, JsonSchema)]
pub struct RegionLine<'a> {
    scenario: &'a str,
    pid: Option<u32>,
    name: &'a str,
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    address: u64,
    size: u64,
    elem_size: u64,
    pages: u64,
    /// Offset of element 0 inside its page; 0 when page-aligned.
    page_offset: u64,
    origin: &'static str,
}

impl<'a> RegionLine<'a> {
    pub fn new(
        scenario: &'a str,
        pid: Option<u32>,
        region: &'a Region,
        origin: &'static str,
    ) -> Self {
        Self {
            scenario,
            pid,
            name: &region.name,
            address: region.start,
            size: region.len,
            elem_size: region.elem_size,
            pages: region.page_count(),
            page_offset: region.start % region.page_size,
            origin,
        }
    }
}

/// A `fault` line. A trace writes one per fault through [`FaultLine::write_json`].
#[derive(Serialize, JsonSchema)]
pub struct FaultLine<'a> {
    pub(super) scenario: &'a str,
    pub(super) step: Option<u32>,
    pub(super) pid: u32,
    pub(super) tid: u32,
    /// The faulting process's command (comm) when its record arrived, in a trace; null when
    /// it was never known, and in a walk, whose one process is the workload.
    pub(super) comm: Option<&'a str>,
    pub(super) timestamp_ns: u64,
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    pub(super) address: u64,
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    pub(super) ip: u64,
    /// Null when the source has no error code (the perf event).
    pub(super) error_code: Option<u64>,
    pub(super) access: Access,
    pub(super) present: Option<bool>,
    pub(super) mode: Mode,
    pub(super) class: FaultClass,
    /// From the fault's start to its completion, in nanoseconds; null when it was not timed
    /// (an error fault never completes; a trace with --no-durations times none).
    pub(super) duration_ns: Option<u64>,
    /// Where that time went; null when it was not timed, or its split is not known.
    pub(super) time: Option<FaultTimeLine>,
    pub(super) region: Option<&'a str>,
    pub(super) offset: Option<i64>,
    pub(super) index: Option<i64>,
    pub(super) page: Option<u64>,
    pub(super) in_bounds: Option<bool>,
    pub(super) mapping: &'a str,
    /// Where in its mapping the address is, in a trace (perf trace's `dso@offset`).
    #[serde(
        serialize_with = "crate::model::hex::optional_hex",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<crate::model::hex::Hex>")]
    pub(super) mapping_offset: Option<u64>,
    /// The code that faulted, at `ip`.
    #[serde(serialize_with = "super::code::code")]
    #[schemars(with = "super::code::CodeLine<'static>")]
    pub(super) code: &'a Arc<Code>,
    /// With `--stacks`: the user stack, innermost first; frame 0 is the faulting instruction.
    #[serde(
        serialize_with = "super::code::stack",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<Vec<super::code::StackFrameLine<'static>>>")]
    pub(super) stack: Option<&'a [StackFrame]>,
    /// With `--stacks`, when the stack was cut short: where and why (a frame-pointer walk that
    /// left code, a copy too short for the stack, or stack memory that could not be read).
    /// Left out of a stack that ends at its outermost frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) stack_end: Option<super::code::StackEndLine>,
}

impl<'a> FaultLine<'a> {
    /// The line of `fault`, which hit `region` at `location` (when it hit one) and `mapping`,
    /// made by `code`.
    pub fn new(
        scenario: &'a str,
        step: Option<u32>,
        (fault, code, stack): (&ClassifiedFault, &'a Arc<Code>, Option<&'a Stack>),
        region: Option<(&'a str, Location)>,
        mapping: &'a str,
        mapping_offset: Option<u64>,
    ) -> Self {
        let raw = &fault.fault;
        let location = region.map(|(_, location)| location);
        Self {
            scenario,
            step,
            pid: raw.pid,
            tid: raw.tid,
            comm: None,
            timestamp_ns: raw.timestamp_ns,
            address: raw.address,
            ip: raw.ip,
            error_code: raw.error_code.known().then_some(raw.error_code.0),
            access: raw.error_code.access(),
            present: raw.error_code.known().then_some(raw.error_code.present()),
            mode: raw.error_code.mode(),
            class: fault.class,
            duration_ns: fault.timing.map(|timing| timing.duration_ns),
            time: fault.timing.and_then(FaultTimeLine::of),
            region: region.map(|(name, _)| name),
            offset: location.map(|l| l.offset),
            index: location.map(|l| l.index),
            page: location.map(|l| l.page),
            in_bounds: location.map(|l| l.in_bounds),
            mapping,
            mapping_offset,
            code,
            stack: stack.map(|stack| &stack.frames[..]),
            stack_end: stack
                .and_then(|stack| stack.end)
                .map(super::code::StackEndLine::from),
        }
    }

    /// The line of a trace's fault, which names its process's command.
    pub fn of_traced(scenario: &'a str, traced: &'a TracedFault) -> Self {
        Self {
            comm: traced.command.as_deref(),
            ..Self::new(
                scenario,
                None,
                (&traced.fault, &traced.code, traced.stack.as_ref()),
                (traced.region.as_ref()).map(|(_, name, location)| (&**name, *location)),
                &traced.mapping,
                Some(traced.mapping_offset),
            )
        }
    }

    /// The same line naming the faulting process's command `comm`.
    pub fn with_comm(self, comm: Option<&'a str>) -> Self {
        Self { comm, ..self }
    }
}

/// A `syscall` line.
#[derive(Serialize, JsonSchema)]
pub struct SyscallLine<'a> {
    scenario: &'a str,
    step: Option<u32>,
    pid: u32,
    tid: u32,
    name: &'static str,
    args: BTreeMap<&'static str, Value>,
    ret: Value,
    /// The call as strace shows it.
    text: String,
}

impl<'a> SyscallLine<'a> {
    pub fn new(scenario: &'a str, step: Option<u32>, call: &SyscallCall) -> Self {
        Self {
            scenario,
            step,
            pid: call.pid,
            tid: call.tid,
            name: call.syscall.name(),
            args: call.named_args().into_iter().collect(),
            ret: call.result(),
            text: call.describe(),
        }
    }
}

/// Where demo saw a signal.
#[derive(Clone, Copy, Serialize, JsonSchema)]
pub enum SignalSource {
    /// The kernel generated it: the signal:signal_generate tracepoint.
    #[serde(rename = "signal:signal_generate")]
    Tracepoint,
    /// The child's wait status says it was killed by it.
    #[serde(rename = "wait status")]
    WaitStatus,
}

/// A `signal` line.
#[derive(Serialize, JsonSchema)]
pub struct SignalLine<'a> {
    scenario: &'a str,
    step: Option<u32>,
    pid: u32,
    signal: String,
    signo: i32,
    si_code: Option<String>,
    code: Option<i32>,
    #[serde(serialize_with = "crate::model::hex::optional_hex")]
    #[schemars(with = "Option<crate::model::hex::Hex>")]
    address: Option<u64>,
    index: Option<i64>,
    page: Option<u64>,
    in_bounds: Option<bool>,
    /// Where the signal was seen: the tracepoint, the wait status, or both.
    sources: Vec<SignalSource>,
    /// How the child ended, when the signal killed it.
    wait_status: Option<ProcessEnd>,
}

impl<'a> SignalLine<'a> {
    /// The line of a signal the kernel generated (signal:signal_generate).
    pub fn generated(scenario: &'a str, step: Option<u32>, signal: &SignalEvent) -> Self {
        Self {
            scenario,
            step,
            pid: signal.target_tid,
            signal: signal_name(signal.signal),
            signo: signal.signal,
            si_code: Some(si_code_name(signal.signal, signal.code)),
            code: Some(signal.code),
            address: None,
            index: None,
            page: None,
            in_bounds: None,
            sources: vec![SignalSource::Tracepoint],
            wait_status: None,
        }
    }

    /// The line of the signal that ended the child in `step`, from the tracepoint, the wait
    /// status or both; `None` when the child did not die of a signal in it.
    pub fn death(step: &'a StepReport) -> Option<Self> {
        let death = step.death.as_ref()?;
        let signo = death.wait_signal.or(death.generated.map(|g| g.signal))?;
        let mut sources = Vec::new();
        if death.generated.is_some() {
            sources.push(SignalSource::Tracepoint);
        }
        if death.wait_signal.is_some() {
            sources.push(SignalSource::WaitStatus);
        }
        let location = death.fault.and_then(|(_, location)| location);
        Some(Self {
            scenario: step.scenario.as_str(),
            step: Some(step.step),
            pid: death.generated.map_or(0, |g| g.target_tid),
            signal: signal_name(signo),
            signo,
            si_code: death.generated.map(|g| si_code_name(g.signal, g.code)),
            code: death.generated.map(|g| g.code),
            address: death.fault.map(|(address, _)| address),
            index: location.map(|l| l.index),
            page: location.map(|l| l.page),
            in_bounds: location.map(|l| l.in_bounds),
            sources,
            wait_status: Some(death.status.clone()),
        })
    }
}

#[derive(Serialize, JsonSchema)]
struct Allocation<'a> {
    allocator: AllocatorLine,
    /// The syscalls made during the allocation; empty when the heap already had room.
    served_by: Vec<String>,
    page_offset: u64,
    address_check: AddressCheckLine,
    guard: Option<Guard>,
    vma: Option<&'a str>,
}

#[derive(Serialize, JsonSchema)]
struct Guard {
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    address: u64,
    unmapped: bool,
}

#[derive(Serialize, JsonSchema)]
struct TouchLine<'a> {
    index: i64,
    access: Access,
    page: Option<u64>,
    in_bounds: Option<bool>,
    faulted: bool,
    resident_since: Option<PageOrigin>,
    mapping: &'a str,
}

/// How the loader checked the address the child reported for its array.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "check")]
#[schemars(rename = "AddressCheck")]
enum AddressCheckLine {
    /// The kernel's mmap returned the same address the child reported.
    Matches,
    /// The kernel's mmap returned another address than the child reported.
    Differs {
        #[serde(serialize_with = "crate::model::hex::hex")]
        #[schemars(with = "crate::model::hex::Hex")]
        kernel: u64,
    },
    /// The array lies inside what the kernel's mmap returned, `offset` bytes in: malloc's
    /// chunk header before it, or an alignment the child made by unmapping the rest.
    Inside {
        #[serde(serialize_with = "crate::model::hex::hex")]
        #[schemars(with = "crate::model::hex::Hex")]
        kernel: u64,
        offset: u64,
    },
    /// No traced mmap returned the array (malloc served it from existing memory or brk).
    NotFromMmap,
    /// The stack lesson's region: the child's stack pointer was `sp`.
    StackPointer {
        #[serde(serialize_with = "crate::model::hex::hex")]
        #[schemars(with = "crate::model::hex::Hex")]
        sp: u64,
    },
}

impl From<AddressCheck> for AddressCheckLine {
    fn from(check: AddressCheck) -> Self {
        match check {
            AddressCheck::Matches => Self::Matches,
            AddressCheck::Differs { kernel } => Self::Differs { kernel },
            AddressCheck::Inside { kernel, offset } => Self::Inside { kernel, offset },
            AddressCheck::NotFromMmap => Self::NotFromMmap,
            AddressCheck::StackPointer { sp } => Self::StackPointer { sp },
        }
    }
}

/// A `step` line: what one step did and what the kernel shows afterwards.
#[derive(Serialize, JsonSchema)]
pub struct StepLine<'a> {
    scenario: ScenarioNameLine,
    step: u32,
    action: &'a str,
    faults_in_region: usize,
    faults_elsewhere: BTreeMap<&'a str, u64>,
    classes: BTreeMap<&'static str, u64>,
    /// The time the step's faults took, in the region and elsewhere: the sum of their
    /// `duration_ns`. A fault without one (an error fault, which never completes) adds nothing.
    fault_time_ns: u64,
    syscalls: Vec<String>,
    allocation: Option<Allocation<'a>>,
    touch: Option<TouchLine<'a>>,
    /// Pages pagemap shows present with memory of their own.
    resident_pages: Option<&'a [u64]>,
    /// Pages mapped to the shared zero page.
    zero_pages: Option<&'a [u64]>,
    /// The region's own resident size from pagemap, in KiB, not counting the zero page.
    rss_kib: Option<u64>,
    /// The page strip of the text report.
    pages: String,
    /// Whether the pages the faults explain are those the kernel shows; null once the child
    /// is gone.
    agrees: Option<bool>,
    /// Whether the VMA is larger than the array's pages (merged mapping, or the heap).
    vma_merged: bool,
    vma: Option<VmaUsageLine<'a>>,
    child_alive: bool,
    /// Present pages that are the file's own page-cache pages (pagemap's file bit).
    file_pages: Option<&'a [u64]>,
    /// Present pages that are part of a transparent huge page (kpageflags THP).
    huge_pages: Option<&'a [u64]>,
    /// The values the step read, when it read.
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<&'a [i32]>,
    /// What a lesson's step adds to the kernel's view.
    #[serde(skip_serializing_if = "Option::is_none")]
    lesson: Option<LessonFactsLine<'a>>,
    /// The lesson's explanation of the step, as the text report words it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    explanation: Vec<String>,
}

impl<'a> StepLine<'a> {
    pub fn new(step: &'a StepReport) -> Self {
        let kernel = step.kernel.as_ref();
        let vma = kernel.and_then(|k| k.vma.as_ref());
        let syscalls: Vec<String> = step.syscalls.iter().map(SyscallCall::describe).collect();
        Self {
            scenario: step.scenario.into(),
            step: step.step,
            action: &step.action,
            faults_in_region: step.faults_in_region().count(),
            faults_elsewhere: step.elsewhere(),
            classes: step.class_counts().by_name(),
            fault_time_ns: step.fault_time().total_ns,
            allocation: step.allocation.as_ref().map(|facts| Allocation {
                allocator: facts.allocator.into(),
                served_by: syscalls.clone(),
                page_offset: step.region.start % step.region.page_size,
                address_check: facts.address_check.into(),
                guard: facts
                    .guard
                    .map(|(address, unmapped)| Guard { address, unmapped }),
                vma: vma.map(|vma| vma.name.as_str()),
            }),
            syscalls,
            touch: step.touch.as_ref().map(|outcome| TouchLine {
                index: outcome.touch.index,
                access: outcome.touch.access,
                page: outcome.location.map(|l| l.page),
                in_bounds: outcome.location.map(|l| l.in_bounds),
                faulted: outcome.faulted,
                resident_since: outcome.resident_since,
                mapping: &outcome.mapping,
            }),
            resident_pages: kernel.map(|k| k.resident_pages.as_slice()),
            zero_pages: kernel.map(|k| k.zero_pages.as_slice()),
            rss_kib: kernel.map(|k| k.rss_kib),
            pages: step.pages.strip(),
            agrees: step.agrees_with_kernel(),
            vma_merged: step.vma_is_larger(),
            vma: vma.map(VmaUsageLine::from),
            child_alive: step.death.is_none(),
            file_pages: kernel.map(|k| k.file_pages.as_slice()),
            huge_pages: kernel.map(|k| k.huge_pages.as_slice()),
            values: step.values.as_deref(),
            lesson: step.lesson.as_ref().map(LessonFactsLine::from),
            explanation: crate::output::explain::explain(step),
        }
    }
}
