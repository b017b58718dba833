//! JSON Lines output: one object per region, fault, step and summary, with stable field names.

use std::io::{self, Write};

use serde::Serialize;

use super::{Reporter, hex};
use crate::{
    access::{Access, Mode},
    procmem::VmaUsage,
    region::Region,
    scenario::{ScenarioName, StepReport, Summary},
};

/// Writes one JSON object per line and flushes after each step.
pub struct JsonReporter<W> {
    out: W,
}

impl<W: Write> JsonReporter<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }

    fn line(&mut self, value: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")
    }
}

#[derive(Serialize)]
struct RegionLine<'a> {
    kind: &'static str,
    scenario: ScenarioName,
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

#[derive(Serialize)]
struct FaultLine<'a> {
    kind: &'static str,
    scenario: ScenarioName,
    step: u32,
    pid: u32,
    tid: u32,
    timestamp_ns: u64,
    #[serde(serialize_with = "hex")]
    address: u64,
    #[serde(serialize_with = "hex")]
    ip: u64,
    error_code: u64,
    access: Access,
    present: bool,
    mode: Mode,
    region: Option<&'a str>,
    offset: Option<i64>,
    index: Option<i64>,
    page: Option<u64>,
    in_bounds: Option<bool>,
    mapping: &'a str,
}

#[derive(Serialize)]
struct StepLine<'a> {
    kind: &'static str,
    scenario: ScenarioName,
    step: u32,
    action: &'a str,
    faults_in_region: usize,
    faults_elsewhere: std::collections::BTreeMap<&'a str, u64>,
    /// Pages pagemap shows present.
    resident_pages: &'a [u64],
    /// The region's own resident size from pagemap, in KiB.
    rss_kib: u64,
    /// The page strip of the text report.
    pages: String,
    /// Whether the pages the faults made present are those pagemap shows.
    agrees: bool,
    /// Whether the kernel merged the mapping with a neighbour, so the VMA is larger.
    vma_merged: bool,
    vma: Option<&'a VmaUsage>,
}

#[derive(Serialize)]
struct SummaryLine {
    kind: &'static str,
    #[serde(flatten)]
    summary: Summary,
}

impl<W: Write> Reporter for JsonReporter<W> {
    fn region(&mut self, scenario: ScenarioName, region: &Region) -> io::Result<()> {
        self.line(&RegionLine {
            kind: "region",
            scenario,
            name: &region.name,
            address: region.start,
            size: region.len,
            elem_size: region.elem_size,
            pages: region.page_count(),
            page_offset: region.start % region.page_size,
            origin: "mmap",
        })
    }

    fn step(&mut self, step: &StepReport) -> io::Result<()> {
        for resolved in &step.faults {
            let fault = &resolved.fault;
            let location = resolved.location;
            self.line(&FaultLine {
                kind: "fault",
                scenario: step.scenario,
                step: step.step,
                pid: fault.pid,
                tid: fault.tid,
                timestamp_ns: fault.timestamp_ns,
                address: fault.address,
                ip: fault.ip,
                error_code: fault.error_code.0,
                access: fault.error_code.access(),
                present: fault.error_code.present(),
                mode: fault.error_code.mode(),
                region: location.map(|_| step.region.name.as_str()),
                offset: location.map(|l| l.offset),
                index: location.map(|l| l.index),
                page: location.map(|l| l.page),
                in_bounds: location.map(|l| l.in_bounds),
                mapping: &resolved.mapping,
            })?;
        }
        self.line(&StepLine {
            kind: "step",
            scenario: step.scenario,
            step: step.step,
            action: &step.action,
            faults_in_region: step.faults_in_region().count(),
            faults_elsewhere: step.elsewhere(),
            resident_pages: &step.kernel.present_pages,
            rss_kib: step.kernel.rss_kib,
            pages: step.pages.strip(),
            agrees: step.agrees_with_kernel(),
            vma_merged: step.vma_is_merged(),
            vma: step.kernel.vma.as_ref(),
        })?;
        self.out.flush()
    }

    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        self.line(&SummaryLine {
            kind: "summary",
            summary: *summary,
        })?;
        self.out.flush()
    }
}
