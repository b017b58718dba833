//! fork-cow: fork shares the parent's pages read-only, and each write after it copies one.
//! Its facts compare the parent's and the child's frames and smaps.

use super::{
    Lesson, LessonFacts, LessonState, StepEnd, fixed,
    steps::{PAGE, mmap, page_range},
    words::{copies_on_write, pages, region_faults, smaps},
};
use crate::{
    kernel::procmem::{self, VmaUsage},
    model::region::Region,
    walk::plan::{Allocator, PlanError, PlannedStep, ScenarioName, WalkOptions, WalkPlan},
    walk::step_report::{KernelView, StepReport},
    walk::workload::Command,
};

/// Pages of the fork lesson's array.
pub const FORK_PAGES: u64 = 8;
/// The step that forks: the first with the child's facts, where the report explains smaps'
/// Shared and Private once.
const FORK_STEP: u32 = 3;

pub struct ForkCow;

impl Lesson for ForkCow {
    fn teaches(&self) -> &'static str {
        "fork shares pages; each write after it copies one (copy on write)"
    }

    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
        fixed(
            ScenarioName::ForkCow,
            Allocator::Mmap,
            FORK_PAGES * PAGE,
            steps(),
            options,
        )
    }

    fn facts(
        &self,
        learned: &LessonState,
        at: &StepEnd<'_>,
    ) -> anyhow::Result<Option<LessonFacts>> {
        match (learned.forked, at.kernel) {
            (Some(child), Some(kernel)) => Ok(Some(frames(child, at.region, kernel)?)),
            _ => Ok(None),
        }
    }

    fn explain(&self, step: &StepReport) -> Vec<String> {
        let Some(LessonFacts::Fork {
            child,
            same_frames,
            own_frames,
            child_vma,
        }) = &step.lesson
        else {
            return Vec::new();
        };
        explain(step, *child, same_frames, own_frames, child_vma)
    }
}

fn steps() -> Vec<PlannedStep> {
    let write = |first, count, value| Command::WritePages {
        first,
        count,
        value,
    };
    vec![
        mmap(FORK_PAGES * PAGE),
        PlannedStep::one(
            write(0, FORK_PAGES, 2),
            format!("write {} of arr", page_range(0, FORK_PAGES)),
        ),
        PlannedStep::one(Command::Fork, "fork(): the child gets a copy of arr"),
        PlannedStep::one(
            Command::InChild(Box::new(Command::ReadPages {
                first: 0,
                count: FORK_PAGES,
            })),
            format!("child: read {} of arr", page_range(0, FORK_PAGES)),
        ),
        PlannedStep::one(
            Command::InChild(Box::new(write(0, 4, 5))),
            format!("child: write {} of arr", page_range(0, 4)),
        ),
        PlannedStep::one(
            write(4, 4, 6),
            format!("parent: write {} of arr", page_range(4, 4)),
        ),
    ]
}

/// The parent's frames (the step's view) against the child's, page by page, and the child's
/// VMA of arr.
fn frames(child: u32, region: &Region, kernel: &KernelView) -> anyhow::Result<LessonFacts> {
    let child_pages = procmem::page_presence(
        child as i32,
        region.first_page_base(),
        region.page_size,
        region.page_count(),
    )?;
    let (mut same_frames, mut own_frames) = (Vec::new(), Vec::new());
    for ((page, parent), child) in (0u64..).zip(&kernel.frames).zip(&child_pages) {
        if *parent == 0 || child.pfn == 0 {
            continue;
        }
        if *parent == child.pfn {
            same_frames.push(page);
        } else {
            own_frames.push(page);
        }
    }
    Ok(LessonFacts::Fork {
        child,
        same_frames,
        own_frames,
        child_vma: procmem::vma_usage(child as i32, region.start)?,
    })
}

fn explain(
    step: &StepReport,
    child: u32,
    same: &[u64],
    own: &[u64],
    child_vma: &Option<VmaUsage>,
) -> Vec<String> {
    let mut said = Vec::new();
    let copies = copies_on_write(step);
    if !copies.is_empty() {
        let mut by_pid: Vec<u32> = copies.iter().map(|fault| fault.fault.fault.pid).collect();
        by_pid.dedup();
        let who: Vec<String> = by_pid
            .iter()
            .map(|&pid| {
                let role = if pid == child { "child" } else { "parent" };
                format!("{role} {pid}")
            })
            .collect();
        said.push(format!(
            "copy on write: {} write faults on present pages of arr, in the {}: fork left \
             the pages read-only in both processes, so each write traps, and the kernel gives \
             the writer a copy of its own",
            copies.len(),
            who.join(" and ")
        ));
    } else if step.values.is_some() && region_faults(step) == 0 {
        said.push(
            "no fault: fork copied the parent's page tables, read-only, so the child's reads \
             find every page present, on the parent's own frames"
                .to_owned(),
        );
    }
    said.push(frames_sentence(child, same, own));
    if let (Some(parent), Some(child_vma)) = (
        step.kernel.as_ref().and_then(|kernel| kernel.vma.as_ref()),
        child_vma,
    ) {
        said.push(smaps_sentence(step, parent, child_vma));
    }
    said
}

/// Which pages parent and child still share a frame for, and which each has a copy of.
fn frames_sentence(child: u32, same: &[u64], own: &[u64]) -> String {
    let shared = if same.is_empty() {
        "no page shared any more".to_owned()
    } else {
        format!("{} shared, one frame for both", pages(same))
    };
    let copied = if own.is_empty() {
        "no page copied yet".to_owned()
    } else {
        format!(
            "{} copied, each process with a frame of its own",
            pages(own)
        )
    };
    format!("frames (pagemap PFNs, parent against child {child}): {shared}; {copied}")
}

/// smaps of the VMA that holds arr, in both processes: the VMA's counts, which are arr's
/// alone only when the VMA is no larger than arr. What Shared and Private mean, and why the
/// VMA is larger, is said once, at the fork.
fn smaps_sentence(step: &StepReport, parent: &VmaUsage, child: &VmaUsage) -> String {
    let arr_kib = step.region.page_count() * step.region.page_size / 1024;
    let larger = parent.size_kib > arr_kib;
    let whose = if larger {
        format!("the {} KiB VMA holding arr", parent.size_kib)
    } else {
        "arr's VMA".to_owned()
    };
    let mut sentence = format!(
        "smaps of {whose}: parent {}; child {}",
        smaps(parent),
        smaps(child)
    );
    if step.step == FORK_STEP {
        if larger {
            sentence.push_str(&format!(
                ". arr is {arr_kib} KiB of it; the rest is a neighbour the kernel merged with \
                 it, and counts too"
            ));
        }
        sentence.push_str(
            ". smaps counts a page Shared while more than one process maps it, Private once \
             it is a process's own",
        );
    }
    sentence
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fork_step_is_the_third() {
        assert_eq!(
            steps()[FORK_STEP as usize - 1].commands,
            [Command::Fork],
            "FORK_STEP names the step that forks"
        );
    }

    #[test]
    fn frames_say_which_pages_are_shared_and_which_copied() {
        assert_eq!(
            frames_sentence(7, &[0, 1, 2, 3, 4, 5, 6, 7], &[]),
            "frames (pagemap PFNs, parent against child 7): pages 0-7 shared, one frame for \
             both; no page copied yet"
        );
        assert_eq!(
            frames_sentence(7, &[4, 5, 6, 7], &[0, 1, 2, 3]),
            "frames (pagemap PFNs, parent against child 7): pages 4-7 shared, one frame for \
             both; pages 0-3 copied, each process with a frame of its own"
        );
        assert_eq!(
            frames_sentence(7, &[], &[0, 1, 2, 3, 4, 5, 6, 7]),
            "frames (pagemap PFNs, parent against child 7): no page shared any more; pages \
             0-7 copied, each process with a frame of its own"
        );
    }

    #[test]
    fn fork_cow_writes_half_in_each_process() {
        let actions: Vec<String> = steps().into_iter().map(|step| step.action).collect();
        assert_eq!(
            &actions[1..],
            [
                "write pages 0-7 of arr",
                "fork(): the child gets a copy of arr",
                "child: read pages 0-7 of arr",
                "child: write pages 0-3 of arr",
                "parent: write pages 4-7 of arr"
            ]
        );
    }
}
