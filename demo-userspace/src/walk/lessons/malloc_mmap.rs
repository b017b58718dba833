//! malloc-mmap: the seed's walk on an array above glibc's mmap threshold, which malloc serves
//! with a mapping of its own, 16 bytes into its first page.

use super::Lesson;
use crate::{
    walk::plan::{PlanError, ScenarioName, WalkOptions, WalkPlan},
    walk::step_report::{AddressCheck, StepReport},
};

/// The lesson's default size: above glibc's mmap threshold (128 KiB at start).
pub const MALLOC_MMAP_BYTES: u64 = 256 << 10;

pub struct MallocMmap;

impl Lesson for MallocMmap {
    fn teaches(&self) -> &'static str {
        "a large malloc is its own mmap, 16 bytes into its first page"
    }

    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
        let options = WalkOptions {
            bytes: Some(options.bytes.unwrap_or(MALLOC_MMAP_BYTES)),
            ..options.clone()
        };
        WalkPlan::new(ScenarioName::MallocMmap, &options)
    }

    fn explain(&self, step: &StepReport) -> Vec<String> {
        let Some(facts) = &step.allocation else {
            return Vec::new();
        };
        let AddressCheck::Inside { offset, .. } = facts.address_check else {
            return Vec::new();
        };
        let mapped = step
            .syscalls
            .iter()
            .find(|call| call.syscall == demo_common::Syscall::Mmap)
            .map_or(0, |call| call.args[1]);
        let page = step.region.page_size;
        vec![format!(
            "mmap threshold: {} bytes is above glibc's M_MMAP_THRESHOLD (128 KiB at start), so \
             malloc made a mapping of its own, {mapped} bytes = {} + 1 pages, and arr starts \
             {offset} bytes in, after the chunk header. The seed's \"(5 * 4 + 1)\", the size plus \
             one page, holds here; malloc(20000) is under the threshold and comes from the heap",
            step.region.len,
            step.region.len / page
        )]
    }
}
