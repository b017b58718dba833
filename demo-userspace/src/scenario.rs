//! Drives a built-in allocation walk step by step in the workload child and attributes every
//! traced fault to the step that caused it, beside what the kernel reports after the step.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::{
    event_reader::EventReader,
    pages::PageModel,
    privileges::RunAs,
    probes::Probes,
    procmem::{self, MappingTable, VmaUsage},
    records::{Fault, Record},
    region::{Location, Region},
    report::Reporter,
    workload::{Command, Reply, Workload},
};

/// The built-in scenarios, named as on the command line and in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioName {
    /// The seed's `alloc_mmap`: an int array from mmap, then writes to a few elements.
    Mmap,
}

impl ScenarioName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mmap => "mmap",
        }
    }
}

/// Size of an element of the walked array (a C `int`).
const ELEMENT_SIZE: u64 = 4;

/// The seed's array size in bytes.
pub const SEED_BYTES: u64 = 20000;
/// The indices the seed touches, in order.
pub const SEED_TOUCHES: [i64; 4] = [1500, 1501, 0, 3000];

/// What to run: the allocation, then one access per touched index.
#[derive(Clone, Debug)]
pub struct WalkPlan {
    pub scenario: ScenarioName,
    pub bytes: u64,
    pub touches: Vec<i64>,
}

impl WalkPlan {
    pub fn seed(scenario: ScenarioName) -> Self {
        Self {
            scenario,
            bytes: SEED_BYTES,
            touches: SEED_TOUCHES.to_vec(),
        }
    }

    /// The child's commands with the text the report shows for each. A write stores the step's
    /// number, so the value in memory tells which step wrote it.
    fn steps(&self) -> Vec<(Command, String)> {
        let allocate = (
            Command::Mmap { bytes: self.bytes },
            format!(
                "arr = mmap(NULL, {}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)",
                self.bytes
            ),
        );
        let touches = self.touches.iter().zip(2..).map(|(&index, step)| {
            (
                Command::Write { index, value: step },
                format!("arr[{index}] = {step}"),
            )
        });
        std::iter::once(allocate).chain(touches).collect()
    }
}

/// A fault with what it hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedFault {
    pub fault: Fault,
    /// Where in the array, when it hit the array's pages.
    pub location: Option<Location>,
    /// The /proc/PID/maps name of the mapping it hit.
    pub mapping: String,
}

/// What the kernel reports after a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelView {
    /// Pages of the region that pagemap shows present.
    pub present_pages: Vec<u64>,
    /// The region's own resident size (present pages × page size), in KiB.
    pub rss_kib: u64,
    /// The VMA that holds the region's first byte, from smaps.
    pub vma: Option<VmaUsage>,
}

/// Everything known about one step.
#[derive(Clone, Debug)]
pub struct StepReport {
    pub scenario: ScenarioName,
    pub step: u32,
    pub action: String,
    pub region: Region,
    pub faults: Vec<ResolvedFault>,
    pub pages: PageModel,
    pub kernel: KernelView,
}

impl StepReport {
    pub fn faults_in_region(&self) -> impl Iterator<Item = (&ResolvedFault, Location)> {
        self.faults
            .iter()
            .filter_map(|fault| fault.location.map(|location| (fault, location)))
    }

    /// Faults outside the array, counted per mapping name.
    pub fn elsewhere(&self) -> BTreeMap<&str, u64> {
        let mut counts = BTreeMap::new();
        for fault in self.faults.iter().filter(|fault| fault.location.is_none()) {
            *counts.entry(fault.mapping.as_str()).or_default() += 1;
        }
        counts
    }

    /// True when the pages the faults made present are exactly those pagemap shows present.
    pub fn agrees_with_kernel(&self) -> bool {
        self.pages.mapped_pages() == self.kernel.present_pages
    }

    /// True when the kernel's VMA is larger than the region's pages, i.e. it merged the new
    /// mapping with a neighbour.
    pub fn vma_is_merged(&self) -> bool {
        self.kernel.vma.as_ref().is_some_and(|vma| {
            vma.size_kib * 1024 > self.region.page_count() * self.region.page_size
        })
    }
}

/// Totals of a whole walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub scenario: ScenarioName,
    pub faults_in_region: u64,
    /// Faults of all steps.
    pub faults_total: u64,
    /// Faults of the child's start-up (exec, dynamic linking), which belong to no step. The child
    /// is traced from just after it is spawned, so this is a lower bound.
    pub faults_startup: u64,
    /// Records dropped by the kernel side plus records that did not decode.
    pub lost: u64,
}

/// Runs `plan` in a fresh workload child, reporting each step as soon as it is complete.
pub async fn run_walk(
    plan: &WalkPlan,
    probes: &mut Probes,
    reader: &mut EventReader,
    run_as: Option<RunAs>,
    reporter: &mut dyn Reporter,
) -> anyhow::Result<Summary> {
    let mut workload = Workload::spawn(run_as)?;
    let pid = workload.pid();
    probes.add_target(pid).context("trace the workload child")?;
    let walked = walk(plan, &mut workload, probes, reader, reporter).await;
    probes
        .remove_target(pid)
        .context("stop tracing the workload child")?;
    let totals = walked?;
    let status = workload.finish().await?;
    if !status.success() {
        bail!("the workload child ended badly: {status}");
    }
    let summary = Summary {
        scenario: plan.scenario,
        faults_in_region: totals.in_region,
        faults_total: totals.in_steps,
        faults_startup: totals.startup,
        lost: probes.dropped()? + reader.malformed(),
    };
    reporter.summary(&summary)?;
    Ok(summary)
}

/// The steps of a walk, after the child reports it has started.
async fn walk(
    plan: &WalkPlan,
    workload: &mut Workload,
    probes: &mut Probes,
    reader: &mut EventReader,
    reporter: &mut dyn Reporter,
) -> anyhow::Result<WalkTotals> {
    let pid = workload.pid();
    let page_size = procfs::page_size();
    let (ready, startup) = await_reply(workload, reader, probes).await?;
    if let Reply::Died(status) = ready {
        bail!("the workload child died while starting: {status}");
    }
    let mut totals = WalkTotals {
        startup: startup.len() as u64,
        ..WalkTotals::default()
    };
    let mut state: Option<(Region, PageModel)> = None;
    for ((command, action), step) in plan.steps().into_iter().zip(1u32..) {
        workload.send(command).await?;
        let (reply, faults) = await_reply(workload, reader, probes).await?;
        let detail = match reply {
            Reply::Done(detail) => detail,
            Reply::Died(status) => bail!("the workload child died in step {step}: {status}"),
        };
        let (region, pages) = match &mut state {
            Some(state) => state,
            None => {
                let address = detail
                    .as_deref()
                    .and_then(|text| u64::from_str_radix(text.trim_start_matches("0x"), 16).ok())
                    .context("the workload did not report the array's address")?;
                let region = Region {
                    name: "arr".to_owned(),
                    start: address,
                    len: plan.bytes,
                    elem_size: ELEMENT_SIZE,
                    page_size,
                    pages_after: 0,
                };
                let pages = PageModel::new(region.page_count() as usize);
                reporter.region(plan.scenario, &region)?;
                state.insert((region, pages))
            }
        };
        pages.begin_step();
        let maps = MappingTable::read(pid as i32)?;
        let faults: Vec<ResolvedFault> = faults
            .into_iter()
            .map(|fault| {
                let location = region.locate(fault.address);
                if let Some(location) = location {
                    pages.apply_fault(location.page, fault.error_code.access());
                }
                ResolvedFault {
                    mapping: maps.name_of(fault.address),
                    location,
                    fault,
                }
            })
            .collect();
        let report = StepReport {
            scenario: plan.scenario,
            step,
            action,
            kernel: kernel_view(pid as i32, region)?,
            region: region.clone(),
            pages: pages.clone(),
            faults,
        };
        totals.in_region += report.faults_in_region().count() as u64;
        totals.in_steps += report.faults.len() as u64;
        reporter.step(&report)?;
    }
    Ok(totals)
}

/// Fault counts of a walk.
#[derive(Clone, Copy, Debug, Default)]
struct WalkTotals {
    /// Faults of the child's start-up, before its first step.
    startup: u64,
    /// Faults inside the array's pages.
    in_region: u64,
    /// Faults of all steps, in the array or not.
    in_steps: u64,
}

/// Waits for the child's next reply while draining the ring buffer, and returns the reply with
/// every fault the child made since the last reply.
async fn await_reply(
    workload: &mut Workload,
    reader: &mut EventReader,
    probes: &mut Probes,
) -> anyhow::Result<(Reply, Vec<Fault>)> {
    let mut faults = Vec::new();
    let reply = loop {
        tokio::select! {
            reply = workload.reply() => break reply?,
            waited = reader.wait() => {
                waited.context("wait for fault events")?;
                reader.drain(|record| collect(record, &mut faults));
            }
        }
    };
    // Every fault before the reply was recorded before the child wrote it, so one more drain
    // collects the rest: the faults between two replies are exact.
    reader.drain(|record| collect(record, &mut faults));
    probes.flush_log();
    Ok((reply, faults))
}

fn collect(record: Record, faults: &mut Vec<Fault>) {
    match record {
        Record::Fault(fault) => faults.push(fault),
    }
}

fn kernel_view(pid: i32, region: &Region) -> anyhow::Result<KernelView> {
    let presence = procmem::page_presence(
        pid,
        region.first_page_base(),
        region.page_size,
        region.page_count(),
    )?;
    let present_pages: Vec<u64> = (0u64..)
        .zip(&presence)
        .filter(|(_, page)| page.present)
        .map(|(page, _)| page)
        .collect();
    Ok(KernelView {
        rss_kib: present_pages.len() as u64 * region.page_size / 1024,
        present_pages,
        vma: procmem::vma_usage(pid, region.start)?,
    })
}
