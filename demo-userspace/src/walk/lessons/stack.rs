//! stack: the stack grows down by faults below its VMA, until RLIMIT_STACK ends it in SIGSEGV.
//! Its facts are [stack] against where it started, and where the limit stops it.

use super::{Lesson, LessonFacts, LessonState, StepEnd, facts::StackFacts, fixed};
use crate::{
    kernel::procmem,
    walk::plan::{Allocator, PlanError, PlannedStep, ScenarioName, WalkOptions, WalkPlan},
    walk::step_report::{AddressCheck, StepReport},
    walk::workload::{Command, protocol::FRAME_BYTES},
};

/// The stack lesson's region: this much below the stack's top, room for all its growth.
pub const STACK_SPAN: u64 = 1 << 20;
/// The RLIMIT_STACK the stack lesson sets before it recurses too deep.
pub const STACK_LIMIT: u64 = 512 << 10;
/// Calls of the first recursion, which the default limit allows.
pub const STACK_FRAMES: u32 = 64;
/// Calls of the second, more than `STACK_LIMIT` holds.
pub const STACK_FRAMES_TOO_MANY: u32 = 256;
// The second recursion needs more than the limit allows, and the region holds all of it.
const _: () = assert!(STACK_FRAMES_TOO_MANY as u64 * FRAME_BYTES as u64 > STACK_LIMIT);
const _: () = assert!(STACK_LIMIT < STACK_SPAN);

pub struct Stack;

impl Lesson for Stack {
    fn teaches(&self) -> &'static str {
        "the stack grows down by faults until RLIMIT_STACK stops it"
    }

    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
        fixed(
            ScenarioName::Stack,
            Allocator::Stack,
            STACK_SPAN,
            steps(),
            options,
        )
    }

    fn facts(
        &self,
        learned: &LessonState,
        at: &StepEnd<'_>,
    ) -> anyhow::Result<Option<LessonFacts>> {
        Ok(learned.stack.map(|(original_start, top)| {
            // Once the child is gone, the limit it set is the one it died of.
            let limit = match at.kernel {
                Some(_) => procmem::stack_limit(at.pid),
                None => learned.stack_limit,
            };
            LessonFacts::Stack(StackFacts {
                original_start,
                top,
                // The step's own view already holds [stack]: the region's VMA.
                vma: at.kernel.and_then(|kernel| kernel.vma.clone()),
                faults_below_original: at.faults_below,
                limit,
                lowest_allowed: limit.map(|limit| top.saturating_sub(limit)),
                frame_bytes: learned.frame_bytes,
            })
        }))
    }

    fn explain(&self, step: &StepReport) -> Vec<String> {
        let Some(LessonFacts::Stack(stack)) = &step.lesson else {
            return Vec::new();
        };
        explain(stack, step)
    }
}

fn steps() -> Vec<PlannedStep> {
    vec![
        PlannedStep::one(
            Command::StackPointer,
            "sp = the stack pointer; stack = the 1 MiB below the top of [stack]",
        ),
        PlannedStep::one(
            Command::Recurse {
                frames: STACK_FRAMES,
            },
            format!("recurse {STACK_FRAMES} calls deep, {FRAME_BYTES} bytes of locals each"),
        ),
        PlannedStep::one(
            Command::LimitStack { bytes: STACK_LIMIT },
            format!("setrlimit(RLIMIT_STACK, {} KiB)", STACK_LIMIT >> 10),
        ),
        PlannedStep::one(
            Command::Recurse {
                frames: STACK_FRAMES_TOO_MANY,
            },
            format!(
                "recurse {STACK_FRAMES_TOO_MANY} calls deep, {FRAME_BYTES} bytes of locals each"
            ),
        ),
    ]
}

/// Where [stack] started, how it grew, and where the limit stopped it.
fn explain(stack: &StackFacts, step: &StepReport) -> Vec<String> {
    let mut said = Vec::new();
    let original_kib = (stack.top - stack.original_start) / 1024;
    if let (Some(_), Some(AddressCheck::StackPointer { sp })) = (
        &step.allocation,
        step.allocation.as_ref().map(|facts| facts.address_check),
    ) {
        said.push(format!(
            "stack: [stack] is {:#x}-{:#x}, {original_kib} KiB, sp {sp:#x}; the region is the 1 MiB \
             below its top, the VMA from page {}",
            stack.original_start,
            stack.top,
            (stack.original_start - step.region.start) / step.region.page_size
        ));
        return said;
    }
    let page = step.region.page_size;
    let frames = stack
        .frame_bytes
        .map(|bytes| {
            let each = if bytes >= page {
                ", more than a page, so each call's frame starts on a new page"
            } else {
                ""
            };
            format!("; the frames are {bytes} bytes apart{each}")
        })
        .unwrap_or_default();
    match (stack.faults_below_original, stack.vma.as_ref()) {
        (0, _) => {}
        (below, Some(vma)) => said.push(format!(
            "growth: {below} faults below the original bottom {:#x}; [stack] is {:#x}-{:#x} \
             now, {} KiB (was {original_kib} KiB): each fault below the VMA made the \
             kernel grow it down to the page{frames}",
            stack.original_start, vma.start, vma.end, vma.size_kib
        )),
        (below, None) => said.push(format!(
            "growth: {below} faults below the original bottom {:#x}, the stack growing \
             until the fault it could not grow for{frames}",
            stack.original_start
        )),
    }
    if let (Some(limit), Some(lowest), None) = (stack.limit, stack.lowest_allowed, &step.death) {
        said.push(format!(
            "limit: RLIMIT_STACK {} KiB: the stack may grow down to {lowest:#x} ({:#x} less \
             {} KiB) and no further",
            limit / 1024,
            stack.top,
            limit / 1024
        ));
    }
    if let (Some(death), Some(lowest)) = (&step.death, stack.lowest_allowed)
        && let Some((address, _)) = death.fault
    {
        let side = if address < lowest { "below" } else { "above" };
        said.push(format!(
            "limit: the fault at {address:#x} is {side} {lowest:#x}, the lowest address \
             RLIMIT_STACK allows: the kernel refused to grow [stack] there, so no VMA holds \
             the address and the fault ends in SIGSEGV (SEGV_MAPERR)"
        ));
    }
    said
}
