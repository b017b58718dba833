//! The built-in walks (`demo alloc`): the seed's allocation walks run by a workload child, each
//! step's faults mapped to the array index and page that caused them.

pub mod fault_time;
pub mod lessons;
pub mod plan;
pub mod scenario;
pub mod step_report;
pub mod workload;
pub mod wrap;

use std::io;

use crate::{kernel::procmem::VmaUsage, model::region::Region};

use self::{
    plan::{Allocator, ScenarioName},
    scenario::{Summary, WalkResult},
    step_report::StepReport,
};

/// Receives a walk's results as they happen, so interactive runs print each step at once.
pub trait Reporter {
    /// The workload child started: its mappings (smaps) before the first step, the lab's
    /// first `pmap -x`. Only the view shows them.
    fn started(&mut self, _mappings: &[VmaUsage]) -> io::Result<()> {
        Ok(())
    }
    /// A walk of `scenario` begins, before its first step (and its first `--interactive`
    /// prompt).
    fn walk_started(&mut self, _scenario: ScenarioName) -> io::Result<()> {
        Ok(())
    }
    /// The array became known (after its allocation step).
    fn region(
        &mut self,
        scenario: ScenarioName,
        allocator: Allocator,
        region: &Region,
    ) -> io::Result<()>;
    /// A step finished.
    fn step(&mut self, step: &StepReport) -> io::Result<()>;
    /// The walk finished.
    fn summary(&mut self, summary: &Summary) -> io::Result<()>;
    /// Several walks finished; compares the mmap and malloc ones side by side.
    fn comparison(&mut self, walks: &[WalkResult]) -> io::Result<()>;
    /// Every walk of the run finished: an output that frames its walks closes the frame.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}
