//! thp: one fault maps a whole 2 MiB transparent huge page, against 512 faults of 4 KiB once
//! MADV_NOHUGEPAGE keeps huge pages away, each measured. Its facts are the kernel's huge page
//! settings, smaps' AnonHugePages of arr, and what the earlier steps' faults took.

use super::{
    Durations, Lesson, LessonFacts, LessonState, StepEnd, fixed,
    steps::{PAGE, page_range, write_page},
    words::{region_faults, took},
};
use crate::{
    kernel::pagecache,
    walk::fault_time::{FaultTime, StepFaults},
    walk::plan::{Allocator, PlanError, PlannedStep, ScenarioName, WalkOptions, WalkPlan},
    walk::step_report::StepReport,
    walk::workload::{Command, protocol::Advice},
};

/// A transparent huge page on x86-64.
pub const HUGE_PAGE_BYTES: u64 = 2 << 20;

pub struct Thp;

impl Lesson for Thp {
    fn teaches(&self) -> &'static str {
        "one fault maps a 2 MiB transparent huge page: 512 pages at once"
    }

    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
        fixed(
            ScenarioName::Thp,
            Allocator::Mmap,
            HUGE_PAGE_BYTES,
            steps(),
            options,
        )
    }

    fn facts(
        &self,
        learned: &LessonState,
        at: &StepEnd<'_>,
    ) -> anyhow::Result<Option<LessonFacts>> {
        Ok(Some(LessonFacts::Thp {
            enabled: pagecache::thp_setting("enabled"),
            defrag: pagecache::thp_setting("defrag"),
            anon_huge_kib: at
                .kernel
                .and_then(|kernel| kernel.vma.as_ref())
                .map_or(0, |vma| vma.anon_huge_kib),
            earlier: learned.earlier.clone(),
        }))
    }

    fn explain(&self, step: &StepReport) -> Vec<String> {
        let Some(LessonFacts::Thp {
            enabled,
            defrag,
            anon_huge_kib,
            earlier,
        }) = &step.lesson
        else {
            return Vec::new();
        };
        if dropped_for_small_pages(step) {
            return vec![format!(
                "4 KiB pages from now on: MADV_DONTNEED dropped arr's pages (pagemap: {} \
                 resident), and MADV_NOHUGEPAGE keeps huge pages out of arr, so each write \
                 that follows faults for one 4 KiB page",
                step.kernel
                    .as_ref()
                    .map_or(0, |kernel| kernel.resident_pages.len())
            )];
        }
        // The faults after the first write's are the 4 KiB ones: the cost says what they are.
        if first_write(earlier).is_some() {
            return Vec::new();
        }
        explain(step, enabled.as_deref(), defrag.as_deref(), *anon_huge_kib)
            .into_iter()
            .collect()
    }

    fn explain_cost(&self, step: &StepReport, durations: Durations) -> Vec<String> {
        let Some(LessonFacts::Thp {
            enabled, earlier, ..
        }) = &step.lesson
        else {
            return Vec::new();
        };
        let faults = FaultTime::of(step.faults_in_region().map(|(fault, _)| fault));
        if faults.faults == 0 {
            return Vec::new();
        }
        vec![match first_write(earlier) {
            None => huge_cost(step, faults, durations),
            Some(first) => compared(first, faults, enabled.as_deref(), durations),
        }]
    }
}

/// The step of the walk's first faults in arr: the write that a huge page served, when THP
/// gave one.
fn first_write(earlier: &[StepFaults]) -> Option<&StepFaults> {
    earlier.iter().find(|step| step.all().faults > 0)
}

/// True for the step that dropped arr's pages and turned huge pages off for it.
fn dropped_for_small_pages(step: &StepReport) -> bool {
    step.syscalls.iter().any(|call| {
        call.syscall == demo_common::Syscall::Madvise
            && !call.failed()
            && call.args[2] == libc::MADV_NOHUGEPAGE as u64
    })
}

/// What the first write's fault took, for the 2 MiB it mapped or the one page.
fn huge_cost(step: &StepReport, faults: FaultTime, durations: Durations) -> String {
    let huge = step
        .kernel
        .as_ref()
        .map_or(0, |kernel| kernel.huge_pages.len());
    let mapped = if huge > 0 {
        format!("for the {huge} pages of a 2 MiB huge page")
    } else {
        "for one 4 KiB page".to_owned()
    };
    let subject = if faults.faults == 1 {
        "the fault".to_owned()
    } else {
        format!("the {} faults", faults.faults)
    };
    format!("time: {subject} {} {mapped}", took(faults, durations))
}

/// One 2 MiB fault against this step's faults of 4 KiB, both measured in this walk; or, when
/// THP gave the first write no huge page, that there is none to compare with.
fn compared(
    first: &StepFaults,
    small: FaultTime,
    enabled: Option<&str>,
    durations: Durations,
) -> String {
    let these = format!(
        "these {} faults of 4 KiB {}",
        small.faults,
        took(small, durations)
    );
    let huge = first.all();
    if first.huge_pages > 0 {
        return format!(
            "2 MiB in one fault against 512 of 4 KiB: step {}'s one fault mapped arr's 2 MiB as \
             a huge page and {}; {these}",
            first.step,
            took(huge, durations)
        );
    }
    let why = match enabled {
        None => "this kernel has no transparent huge pages".to_owned(),
        Some("never") => "transparent huge pages are off here (enabled = never)".to_owned(),
        Some(_) => "the kernel fell back to 4 KiB pages there".to_owned(),
    };
    format!(
        "no 2 MiB fault to compare with: {why}, so step {}'s fault mapped one 4 KiB page too \
         and {}; {these}",
        first.step,
        took(huge, durations)
    )
}

fn steps() -> Vec<PlannedStep> {
    vec![
        PlannedStep::one(
            Command::MmapAligned {
                bytes: HUGE_PAGE_BYTES,
                align: HUGE_PAGE_BYTES,
            },
            "arr = 2 MiB of mmap(MAP_PRIVATE|MAP_ANONYMOUS) at a 2 MiB boundary (4 MiB mapped, the rest unmapped)",
        ),
        PlannedStep::one(
            Command::Madvise {
                bytes: HUGE_PAGE_BYTES,
                advice: Advice::HugePage,
            },
            format!("madvise(arr, {HUGE_PAGE_BYTES}, MADV_HUGEPAGE)"),
        ),
        write_page(0, 3, "arr"),
        PlannedStep {
            commands: vec![
                Command::Madvise {
                    bytes: HUGE_PAGE_BYTES,
                    advice: Advice::DontNeed,
                },
                Command::Madvise {
                    bytes: HUGE_PAGE_BYTES,
                    advice: Advice::NoHugePage,
                },
            ],
            action: format!(
                "madvise(arr, {HUGE_PAGE_BYTES}, MADV_DONTNEED); madvise(arr, {HUGE_PAGE_BYTES}, \
                 MADV_NOHUGEPAGE)"
            ),
            touch: None,
        },
        PlannedStep::one(
            Command::WritePages {
                first: 0,
                count: SMALL_PAGES,
                value: 5,
            },
            format!(
                "write 5 to {} of arr, one int each",
                page_range(0, SMALL_PAGES)
            ),
        ),
    ]
}

/// The 4 KiB pages of the huge page, each written in the last step.
const SMALL_PAGES: u64 = HUGE_PAGE_BYTES / PAGE;

/// The settings at the allocation, then whether the fault got a huge page.
fn explain(
    step: &StepReport,
    enabled: Option<&str>,
    defrag: Option<&str>,
    anon_huge_kib: u64,
) -> Option<String> {
    if step.allocation.is_some() {
        return Some(match (enabled, defrag) {
            (None, _) => "thp: this kernel has no transparent huge pages (no \
                          /sys/kernel/mm/transparent_hugepage): every fault maps one 4 KiB page"
                .to_owned(),
            (Some("never"), _) => "thp: transparent huge pages are off (enabled = never): \
                                   every fault maps one 4 KiB page, MADV_HUGEPAGE or not"
                .to_owned(),
            (Some(enabled), defrag) => format!(
                "thp: enabled = {enabled}, defrag = {}: {}",
                defrag.unwrap_or("unknown"),
                if enabled == "always" {
                    "every large enough anonymous mapping may get huge pages"
                } else {
                    "only ranges given MADV_HUGEPAGE get huge pages"
                }
            ),
        });
    }
    if region_faults(step) == 0 {
        return None;
    }
    let huge = step
        .kernel
        .as_ref()
        .map_or(0, |kernel| kernel.huge_pages.len());
    Some(if anon_huge_kib >= 2048 {
        format!(
            "huge page: {} fault, {huge} pages resident: the kernel mapped a whole 2 MiB page \
             at once (kpageflags THP on {huge} pages, smaps AnonHugePages {anon_huge_kib} KiB)",
            region_faults(step)
        )
    } else {
        format!(
            "no huge page: smaps AnonHugePages {anon_huge_kib} KiB: the kernel fell back to a \
             4 KiB page (THP {}, or no free 2 MiB of memory)",
            enabled.unwrap_or("absent")
        )
    })
}
