//! The lines only `demo trace` writes: a region's end, a process's fork or exit, and the
//! summary of each region.

use schemars::JsonSchema;
use serde::Serialize;

use crate::{model::pages::PageModel, trace::regions::TrackedRegion};

/// The `scenario` of every trace line.
pub const SCENARIO: &str = "trace";

/// A `region_end` line: a region was unmapped or freed.
#[derive(Serialize, JsonSchema)]
pub struct RegionEndLine<'a> {
    scenario: &'static str,
    pid: u32,
    name: &'a str,
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    address: u64,
}

impl<'a> RegionEndLine<'a> {
    pub fn new(tracked: &'a TrackedRegion) -> Self {
        Self {
            scenario: SCENARIO,
            pid: tracked.pid,
            name: &tracked.region.name,
            address: tracked.region.start,
        }
    }
}

/// What happened to a traced process.
#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProcessChange {
    Fork,
    Exit,
}

/// A `process` line: a followed child was forked, or a traced process exited.
#[derive(Serialize, JsonSchema)]
pub struct ProcessLine {
    scenario: &'static str,
    pid: u32,
    parent: Option<u32>,
    event: ProcessChange,
}

impl ProcessLine {
    pub fn forked(pid: u32, parent: u32) -> Self {
        Self {
            scenario: SCENARIO,
            pid,
            parent: Some(parent),
            event: ProcessChange::Fork,
        }
    }

    pub fn exited(pid: u32) -> Self {
        Self {
            scenario: SCENARIO,
            pid,
            parent: None,
            event: ProcessChange::Exit,
        }
    }
}

/// A `region_summary` line: one region's faults and pages at the end.
#[derive(Serialize, JsonSchema)]
pub struct RegionSummaryLine<'a> {
    scenario: &'static str,
    pid: u32,
    name: &'a str,
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    address: u64,
    size: u64,
    origin: &'static str,
    faults: u64,
    resident_pages: Vec<u64>,
    zero_pages: Vec<u64>,
    pages: String,
    live: bool,
}

impl<'a> RegionSummaryLine<'a> {
    pub fn new(tracked: &'a TrackedRegion, pages: &PageModel, faults: u64) -> Self {
        Self {
            scenario: SCENARIO,
            pid: tracked.pid,
            name: &tracked.region.name,
            address: tracked.region.start,
            size: tracked.region.len,
            origin: tracked.origin.as_str(),
            faults,
            resident_pages: pages.resident_pages(),
            zero_pages: pages.zero_pages(),
            pages: pages.settled_strip(crate::output::STRIP_WIDTH),
            live: tracked.live,
        }
    }
}
