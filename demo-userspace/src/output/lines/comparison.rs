//! The lines that close a walk: its `summary`, and the `comparison` of every walk of the run.

use schemars::JsonSchema;
use serde::Serialize;

use super::plan::ScenarioNameLine;
use crate::{
    model::signals::ProcessEnd,
    model::syscalls::SyscallCall,
    walk::scenario::{DeathDigest, StepDigest, Summary, WalkResult},
};

/// Totals of a whole walk.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Summary")]
pub struct SummaryLine<'a> {
    scenario: ScenarioNameLine,
    faults_in_region: u64,
    /// Faults of all steps.
    faults_total: u64,
    minor: u64,
    major: u64,
    error: u64,
    /// Faults of the child's start-up (exec, dynamic linking), which belong to no step. The child
    /// is traced from just after it is spawned, so this is a lower bound.
    faults_startup: u64,
    /// Faults the kernel counted for the child during the steps beyond the traced ones (its
    /// get_user_pages faults, which no tracepoint sees); 0 unless a fault escaped the tracepoints.
    unattributed_faults: u64,
    /// Records dropped by the kernel side plus records that did not decode, over the whole run
    /// so far.
    lost: u64,
    /// How the child ended, e.g. `exit status: 0` or `signal: 11 (SIGSEGV)`.
    child: &'a ProcessEnd,
}

impl<'a> From<&'a Summary> for SummaryLine<'a> {
    fn from(summary: &'a Summary) -> Self {
        Self {
            scenario: summary.scenario.into(),
            faults_in_region: summary.faults_in_region,
            faults_total: summary.faults_total,
            minor: summary.minor,
            major: summary.major,
            error: summary.error,
            faults_startup: summary.faults_startup,
            unattributed_faults: summary.unattributed_faults,
            lost: summary.lost,
            child: &summary.child,
        }
    }
}

/// One step, reduced to what the comparison of walks shows.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "StepDigest")]
struct StepDigestLine<'a> {
    action: &'a str,
    faults_in_region: usize,
    /// In JSON, as strace shows them.
    syscalls: Vec<String>,
    rss_kib: Option<u64>,
}

impl<'a> From<&'a StepDigest> for StepDigestLine<'a> {
    fn from(step: &'a StepDigest) -> Self {
        Self {
            action: &step.action,
            faults_in_region: step.faults_in_region,
            syscalls: step.syscalls.iter().map(SyscallCall::describe).collect(),
            rss_kib: step.rss_kib,
        }
    }
}

/// A finished walk, for the comparison table.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "WalkResult")]
struct WalkResultLine<'a> {
    summary: SummaryLine<'a>,
    page_offset: u64,
    vma: Option<&'a str>,
    steps: Vec<StepDigestLine<'a>>,
    /// How the child died, when a step killed it.
    death: Option<DeathDigestLine<'a>>,
}

impl<'a> From<&'a WalkResult> for WalkResultLine<'a> {
    fn from(walk: &'a WalkResult) -> Self {
        Self {
            summary: SummaryLine::from(&walk.summary),
            page_offset: walk.page_offset,
            vma: walk.vma.as_deref(),
            steps: walk.steps.iter().map(StepDigestLine::from).collect(),
            death: walk.death.as_ref().map(DeathDigestLine::from),
        }
    }
}

/// The fatal access of a walk, for the comparison of SEGV_MAPERR against SEGV_ACCERR.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "DeathDigest")]
struct DeathDigestLine<'a> {
    signal: &'a str,
    si_code: Option<&'a str>,
    /// The element the fatal access touched.
    element: Option<i64>,
    /// The CPU's error code of the fault that did not complete.
    error_code: Option<u64>,
    /// Whether that page was present: a protection fault, not a missing page.
    present: Option<bool>,
    /// The VMA that held the address just before (perms and name), or null when none did.
    vma: Option<&'a str>,
}

impl<'a> From<&'a DeathDigest> for DeathDigestLine<'a> {
    fn from(death: &'a DeathDigest) -> Self {
        Self {
            signal: &death.signal,
            si_code: death.si_code.as_deref(),
            element: death.element,
            error_code: death.error_code,
            present: death.present,
            vma: death.vma.as_deref(),
        }
    }
}

/// The `comparison` line: every walk of the run, side by side.
#[derive(Serialize, JsonSchema)]
pub struct ComparisonLine<'a> {
    walks: Vec<WalkResultLine<'a>>,
}

impl<'a> ComparisonLine<'a> {
    pub fn new(walks: &'a [WalkResult]) -> Self {
        Self {
            walks: walks.iter().map(WalkResultLine::from).collect(),
        }
    }
}
