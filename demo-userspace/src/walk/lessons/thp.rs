//! thp: one fault maps a whole 2 MiB transparent huge page. Its facts are the kernel's huge
//! page settings and smaps' AnonHugePages of arr.

use super::{
    Lesson, LessonFacts, LessonState, StepEnd, fixed, steps::write_page, words::region_faults,
};
use crate::{
    kernel::pagecache,
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
        _learned: &LessonState,
        at: &StepEnd<'_>,
    ) -> anyhow::Result<Option<LessonFacts>> {
        Ok(Some(LessonFacts::Thp {
            enabled: pagecache::thp_setting("enabled"),
            defrag: pagecache::thp_setting("defrag"),
            anon_huge_kib: at
                .kernel
                .and_then(|kernel| kernel.vma.as_ref())
                .map_or(0, |vma| vma.anon_huge_kib),
        }))
    }

    fn explain(&self, step: &StepReport) -> Vec<String> {
        let Some(LessonFacts::Thp {
            enabled,
            defrag,
            anon_huge_kib,
        }) = &step.lesson
        else {
            return Vec::new();
        };
        explain(step, enabled.as_deref(), defrag.as_deref(), *anon_huge_kib)
            .into_iter()
            .collect()
    }
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
    ]
}

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
