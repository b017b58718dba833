//! dontneed: MADV_DONTNEED drops a private anonymous mapping's pages; reads then see the zero
//! page, and a write faults again for a page of its own.

use super::{
    Lesson, fixed,
    steps::{PAGE, mmap, page_range, write_page},
    words::{copies_on_write, pages},
};
use crate::{
    walk::plan::{Allocator, PlanError, PlannedStep, ScenarioName, WalkOptions, WalkPlan},
    walk::step_report::StepReport,
    walk::workload::{Command, protocol::Advice},
};

/// Pages of the dontneed lesson's array.
pub const DONTNEED_PAGES: u64 = 4;

pub struct Dontneed;

impl Lesson for Dontneed {
    fn teaches(&self) -> &'static str {
        "MADV_DONTNEED: RSS falls, reads see zeros, writes fault again"
    }

    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
        fixed(
            ScenarioName::Dontneed,
            Allocator::Mmap,
            DONTNEED_PAGES * PAGE,
            steps(),
            options,
        )
    }

    fn explain(&self, step: &StepReport) -> Vec<String> {
        let mut said = Vec::new();
        let Some(kernel) = &step.kernel else {
            return said;
        };
        let dropped = step.syscalls.iter().any(|call| {
            call.syscall == demo_common::Syscall::Madvise
                && call.args[2] == libc::MADV_DONTNEED as u64
                && !call.failed()
        });
        if dropped {
            said.push(format!(
                "MADV_DONTNEED: the kernel freed arr's pages: RSS {} KiB, pagemap shows {} \
                 present. A private anonymous page has no file to come back from, so its data is gone",
                kernel.rss_kib,
                kernel.resident_pages.len() + kernel.zero_pages.len()
            ));
        }
        if let Some(values) = &step.values
            && !kernel.zero_pages.is_empty()
        {
            let read: Vec<String> = values.iter().map(i32::to_string).collect();
            said.push(format!(
                "zero page: the reads returned {}: each faulted and got the shared zero page \
                 ({} on it, kpageflags ZERO_PAGE), not the data written before",
                read.join(" "),
                pages(&kernel.zero_pages)
            ));
        }
        if !copies_on_write(step).is_empty() {
            said.push(
                "write: the page was the zero page, present and read-only, so the write faulted \
                 again (present: true) and got a page of its own"
                    .to_owned(),
            );
        }
        said
    }
}

fn steps() -> Vec<PlannedStep> {
    let bytes = DONTNEED_PAGES * PAGE;
    vec![
        mmap(bytes),
        PlannedStep::one(
            Command::WritePages {
                first: 0,
                count: DONTNEED_PAGES,
                value: 2,
            },
            format!("write 2 to {} of arr", page_range(0, DONTNEED_PAGES)),
        ),
        PlannedStep::one(
            Command::Madvise {
                bytes,
                advice: Advice::DontNeed,
            },
            format!("madvise(arr, {bytes}, MADV_DONTNEED)"),
        ),
        PlannedStep::one(
            Command::ReadPages {
                first: 0,
                count: DONTNEED_PAGES,
            },
            format!("read {} of arr", page_range(0, DONTNEED_PAGES)),
        ),
        write_page(0, 5, "arr"),
    ]
}
