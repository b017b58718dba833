//! JSON Lines output: one object per region, fault, syscall, signal, step, summary and
//! comparison, with stable field names.

use std::{
    collections::BTreeMap,
    io::{self, Write},
};

use serde::Serialize;

use super::JsonLines;
use crate::model::{
    hex::hex,
    signals::{ProcessEnd, si_code_name},
};
use crate::walk::Reporter;
use crate::{
    kernel::procmem::VmaUsage,
    model::access::{Access, Mode},
    model::classify::{ClassifiedFault, FaultClass},
    model::events::SignalEvent,
    model::pages::PageOrigin,
    model::region::Location,
    model::region::Region,
    model::signals::signal_name,
    model::syscalls::SyscallCall,
    model::syscalls::Value,
    walk::plan::{Allocator, ScenarioName},
    walk::scenario::{Summary, WalkResult},
    walk::step_report::{AddressCheck, StepReport},
};

/// Writes one JSON object per line and flushes after each step.
pub struct JsonReporter<W: Write> {
    out: JsonLines<W>,
}

impl<W: Write> JsonReporter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: JsonLines::new(out),
        }
    }
}

/// A `region` line: an array the report resolves faults in.
#[derive(Serialize)]
pub struct RegionLine<'a> {
    kind: &'static str,
    scenario: &'a str,
    pid: Option<u32>,
    name: &'a str,
    #[serde(serialize_with = "hex")]
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
            kind: "region",
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

/// A `fault` line.
#[derive(Serialize)]
pub struct FaultLine<'a> {
    pub(super) kind: &'static str,
    pub(super) scenario: &'a str,
    pub(super) step: Option<u32>,
    pub(super) pid: u32,
    pub(super) tid: u32,
    pub(super) timestamp_ns: u64,
    #[serde(serialize_with = "hex")]
    pub(super) address: u64,
    #[serde(serialize_with = "hex")]
    pub(super) ip: u64,
    /// Null when the source has no error code (the perf event).
    pub(super) error_code: Option<u64>,
    pub(super) access: Access,
    pub(super) present: Option<bool>,
    pub(super) mode: Mode,
    pub(super) class: FaultClass,
    pub(super) region: Option<&'a str>,
    pub(super) offset: Option<i64>,
    pub(super) index: Option<i64>,
    pub(super) page: Option<u64>,
    pub(super) in_bounds: Option<bool>,
    pub(super) mapping: &'a str,
    #[serde(
        serialize_with = "optional_hex",
        skip_serializing_if = "Option::is_none"
    )]
    pub(super) mapping_offset: Option<u64>,
}

impl<'a> FaultLine<'a> {
    /// The line of `fault`, which hit `region` at `location` (when it hit one) and `mapping`.
    pub fn new(
        scenario: &'a str,
        step: Option<u32>,
        fault: &ClassifiedFault,
        region: Option<(&'a str, Location)>,
        mapping: &'a str,
        mapping_offset: Option<u64>,
    ) -> Self {
        let raw = &fault.fault;
        let location = region.map(|(_, location)| location);
        Self {
            kind: "fault",
            scenario,
            step,
            pid: raw.pid,
            tid: raw.tid,
            timestamp_ns: raw.timestamp_ns,
            address: raw.address,
            ip: raw.ip,
            error_code: raw.error_code.known().then_some(raw.error_code.0),
            access: raw.error_code.access(),
            present: raw.error_code.known().then_some(raw.error_code.present()),
            mode: raw.error_code.mode(),
            class: fault.class,
            region: region.map(|(name, _)| name),
            offset: location.map(|l| l.offset),
            index: location.map(|l| l.index),
            page: location.map(|l| l.page),
            in_bounds: location.map(|l| l.in_bounds),
            mapping,
            mapping_offset,
        }
    }
}

/// A `syscall` line.
#[derive(Serialize)]
pub struct SyscallLine<'a> {
    kind: &'static str,
    scenario: &'a str,
    step: Option<u32>,
    pid: u32,
    tid: u32,
    name: &'static str,
    args: BTreeMap<&'static str, Value>,
    ret: Value,
    text: String,
}

impl<'a> SyscallLine<'a> {
    pub fn new(scenario: &'a str, step: Option<u32>, call: &SyscallCall) -> Self {
        Self {
            kind: "syscall",
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

/// A `signal` line.
#[derive(Serialize)]
pub struct SignalLine<'a> {
    kind: &'static str,
    scenario: &'a str,
    step: Option<u32>,
    pid: u32,
    signal: String,
    signo: i32,
    si_code: Option<String>,
    code: Option<i32>,
    #[serde(serialize_with = "optional_hex")]
    address: Option<u64>,
    index: Option<i64>,
    page: Option<u64>,
    in_bounds: Option<bool>,
    /// Where the signal was seen: the tracepoint, the wait status, or both.
    sources: Vec<&'static str>,
    /// How the child ended, when the signal killed it.
    wait_status: Option<ProcessEnd>,
}

impl<'a> SignalLine<'a> {
    /// The line of a signal the kernel generated (signal:signal_generate).
    pub fn generated(scenario: &'a str, step: Option<u32>, signal: &SignalEvent) -> Self {
        Self {
            kind: "signal",
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
            sources: vec!["signal:signal_generate"],
            wait_status: None,
        }
    }
}

#[derive(Serialize)]
struct Allocation<'a> {
    allocator: Allocator,
    /// The syscalls made during the allocation; empty when the heap already had room.
    served_by: Vec<String>,
    page_offset: u64,
    address_check: AddressCheck,
    guard: Option<Guard>,
    vma: Option<&'a str>,
}

#[derive(Serialize)]
struct Guard {
    #[serde(serialize_with = "hex")]
    address: u64,
    unmapped: bool,
}

#[derive(Serialize)]
struct TouchLine<'a> {
    index: i64,
    access: Access,
    page: Option<u64>,
    in_bounds: Option<bool>,
    faulted: bool,
    resident_since: Option<PageOrigin>,
    mapping: &'a str,
}

#[derive(Serialize)]
struct StepLine<'a> {
    kind: &'static str,
    scenario: ScenarioName,
    step: u32,
    action: &'a str,
    faults_in_region: usize,
    faults_elsewhere: BTreeMap<&'a str, u64>,
    classes: BTreeMap<&'static str, u64>,
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
    vma: Option<&'a VmaUsage>,
    child_alive: bool,
}

#[derive(Serialize)]
struct SummaryLine<'a> {
    kind: &'static str,
    #[serde(flatten)]
    summary: &'a Summary,
}

#[derive(Serialize)]
struct ComparisonLine<'a> {
    kind: &'static str,
    walks: &'a [WalkResult],
}

fn optional_hex<S: serde::Serializer>(
    value: &Option<u64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => hex(value, serializer),
        None => serializer.serialize_none(),
    }
}

impl<W: Write> JsonReporter<W> {
    fn faults(&mut self, step: &StepReport) -> io::Result<()> {
        let scenario = step.scenario.as_str();
        for resolved in &step.faults {
            self.out.line(&FaultLine::new(
                scenario,
                Some(step.step),
                &resolved.fault,
                resolved.location.map(|l| (&*step.region.name, l)),
                &resolved.mapping,
                None,
            ))?;
        }
        Ok(())
    }

    fn syscalls(&mut self, step: &StepReport) -> io::Result<()> {
        for call in &step.syscalls {
            self.out.line(&SyscallLine::new(
                step.scenario.as_str(),
                Some(step.step),
                call,
            ))?;
        }
        Ok(())
    }

    fn signals(&mut self, step: &StepReport) -> io::Result<()> {
        let fatal = step.death.as_ref().and_then(|death| death.generated);
        for signal in step.signals.iter().filter(|&&signal| Some(signal) != fatal) {
            self.out.line(&SignalLine::generated(
                step.scenario.as_str(),
                Some(step.step),
                signal,
            ))?;
        }
        let Some(death) = &step.death else {
            return Ok(());
        };
        let Some(signo) = death.wait_signal.or(death.generated.map(|g| g.signal)) else {
            return Ok(());
        };
        let mut sources = Vec::new();
        if death.generated.is_some() {
            sources.push("signal:signal_generate");
        }
        if death.wait_signal.is_some() {
            sources.push("wait status");
        }
        let location = death.fault.and_then(|(_, location)| location);
        self.out.line(&SignalLine {
            kind: "signal",
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

impl<W: Write> Reporter for JsonReporter<W> {
    fn region(
        &mut self,
        scenario: ScenarioName,
        allocator: Allocator,
        region: &Region,
    ) -> io::Result<()> {
        self.out.line(&RegionLine::new(
            scenario.as_str(),
            None,
            region,
            allocator.as_str(),
        ))
    }

    fn step(&mut self, step: &StepReport) -> io::Result<()> {
        self.faults(step)?;
        self.syscalls(step)?;
        self.signals(step)?;
        let kernel = step.kernel.as_ref();
        let vma = kernel.and_then(|k| k.vma.as_ref());
        self.out.line(&StepLine {
            kind: "step",
            scenario: step.scenario,
            step: step.step,
            action: &step.action,
            faults_in_region: step.faults_in_region().count(),
            faults_elsewhere: step.elsewhere(),
            classes: step.class_counts().by_name(),
            syscalls: step.syscalls.iter().map(|call| call.describe()).collect(),
            allocation: step.allocation.as_ref().map(|facts| Allocation {
                allocator: facts.allocator,
                served_by: step.syscalls.iter().map(|call| call.describe()).collect(),
                page_offset: step.region.start % step.region.page_size,
                address_check: facts.address_check,
                guard: facts
                    .guard
                    .map(|(address, unmapped)| Guard { address, unmapped }),
                vma: vma.map(|vma| vma.name.as_str()),
            }),
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
            vma,
            child_alive: step.death.is_none(),
        })?;
        self.out.flush()
    }

    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        self.out.line(&SummaryLine {
            kind: "summary",
            summary,
        })?;
        self.out.flush()
    }

    fn comparison(&mut self, walks: &[WalkResult]) -> io::Result<()> {
        self.out.line(&ComparisonLine {
            kind: "comparison",
            walks,
        })?;
        self.out.flush()
    }
}
