//! The seed's three walks (mmap, malloc, out-of-bounds): shaped by the command line's options
//! (`WalkPlan::new`), with no facts or explanation beyond what every step's report says.

use super::Lesson;
use crate::walk::plan::{PlanError, ScenarioName, WalkOptions, WalkPlan};

/// The seed's alloc_mmap.
pub struct Mmap;
/// The seed's alloc, on malloc's heap.
pub struct Malloc;
/// The seed's alloc_out, past the array's end.
pub struct OutOfBounds;

impl Lesson for Mmap {
    fn teaches(&self) -> &'static str {
        "demand paging: mmap gives no memory; a page's first touch faults"
    }

    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
        WalkPlan::new(ScenarioName::Mmap, options)
    }
}

impl Lesson for Malloc {
    fn teaches(&self) -> &'static str {
        "malloc's heap: fewer faults, and malloc's own header writes"
    }

    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
        WalkPlan::new(ScenarioName::Malloc, options)
    }
}

impl Lesson for OutOfBounds {
    fn teaches(&self) -> &'static str {
        "past the end: silent within the last page, SEGV_MAPERR beyond it"
    }

    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
        WalkPlan::new(ScenarioName::OutOfBounds, options)
    }
}
