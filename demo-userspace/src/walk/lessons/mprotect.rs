//! mprotect: a write to a page made read-only while it is present ends in SIGSEGV with
//! SEGV_ACCERR, where out-of-bounds' ends in SEGV_MAPERR.

use super::{
    Lesson, fixed,
    steps::{PAGE, mmap, write_page},
};
use crate::{
    walk::plan::{Allocator, PlanError, PlannedStep, ScenarioName, WalkOptions, WalkPlan},
    walk::step_report::StepReport,
    walk::workload::Command,
};

pub struct Mprotect;

impl Lesson for Mprotect {
    fn teaches(&self) -> &'static str {
        "a write to a read-only present page: SIGSEGV with SEGV_ACCERR"
    }

    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
        fixed(
            ScenarioName::Mprotect,
            Allocator::Mmap,
            PAGE,
            steps(),
            options,
        )
    }

    fn explain(&self, step: &StepReport) -> Vec<String> {
        let Some((death, code)) = step
            .death
            .as_ref()
            .and_then(|death| Some((death, death.error_code?)))
        else {
            return Vec::new();
        };
        let accerr = death.generated.is_some_and(|signal| signal.code == 2);
        vec![format!(
            "protection: the page was present (error code {:#x}, present bit {}) and arr's VMA is \
             read-only since mprotect; {}. out-of-bounds' SIGSEGV is SEGV_MAPERR: no VMA at all",
            code.0,
            u8::from(code.present()),
            if accerr {
                "SEGV_ACCERR: a mapping holds the address, but forbids the write"
            } else {
                "the kernel's si_code was not SEGV_ACCERR"
            }
        )]
    }
}

fn steps() -> Vec<PlannedStep> {
    vec![
        mmap(PAGE),
        write_page(0, 2, "arr"),
        PlannedStep::one(
            Command::Mprotect {
                bytes: PAGE,
                writable: false,
            },
            format!("mprotect(arr, {PAGE}, PROT_READ)"),
        ),
        write_page(0, 4, "arr"),
    ]
}
