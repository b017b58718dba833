//! Every walk as a [`Lesson`]: what it teaches, its plan, the facts its steps read from the
//! kernel beyond a seed walk's view, and the sentences that explain a step. A lesson is one
//! file of this module and one line of [`lesson`], the registry.

pub mod dontneed;
pub mod facts;
pub mod file;
pub mod fork_cow;
pub mod malloc_mmap;
pub mod mprotect;
pub mod seed;
pub mod stack;
pub mod state;
mod steps;
pub mod thp;
pub mod words;

pub use self::{facts::LessonFacts, state::LessonState};

use crate::{
    model::region::Region,
    walk::plan::{Allocator, PlanError, PlannedStep, ScenarioName, WalkOptions, WalkPlan},
    walk::step_report::{KernelView, StepReport},
};

/// One walk of the course: its plan, its facts and its explanation.
pub trait Lesson: Sync {
    /// One line on what the walk teaches, for `demo alloc --list` and the command line's help.
    fn teaches(&self) -> &'static str;

    /// The walk's plan: its fixed steps, or the steps `options` shape.
    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError>;

    /// What a step shows beyond a seed walk's view, read from the kernel at the step's end;
    /// `learned` is what the child's replies said in this and the earlier steps.
    fn facts(
        &self,
        _learned: &LessonState,
        _at: &StepEnd<'_>,
    ) -> anyhow::Result<Option<LessonFacts>> {
        Ok(None)
    }

    /// The sentences that explain `step`; none for a walk whose report says it all.
    fn explain(&self, _step: &StepReport) -> Vec<String> {
        Vec::new()
    }

    /// The sentences on what `step`'s faults cost, after [`Lesson::explain`]'s, from the
    /// durations the kernel measured, written by `durations`; none for a walk that compares no
    /// fault's time.
    fn explain_cost(&self, _step: &StepReport, _durations: Durations) -> Vec<String> {
        Vec::new()
    }
}

/// How a lesson's sentences write a duration: the outputs' one formatter, handed down, since a
/// lesson, like every command, knows none of its sinks.
pub type Durations = fn(u64) -> String;

/// Where a step ended, for a lesson's facts.
pub struct StepEnd<'a> {
    /// The walked process.
    pub pid: i32,
    pub region: &'a Region,
    /// The step's view of the region; `None` once the child is gone.
    pub kernel: Option<&'a KernelView>,
    /// This step's faults below the stack's first bottom (the stack lesson's growth).
    pub faults_below: u64,
}

/// The lesson of `scenario`: the registry every walk is found in.
pub fn lesson(scenario: ScenarioName) -> &'static dyn Lesson {
    match scenario {
        ScenarioName::Mmap => &seed::Mmap,
        ScenarioName::Malloc => &seed::Malloc,
        ScenarioName::OutOfBounds => &seed::OutOfBounds,
        ScenarioName::ForkCow => &fork_cow::ForkCow,
        ScenarioName::File => &file::File,
        ScenarioName::Mprotect => &mprotect::Mprotect,
        ScenarioName::Stack => &stack::Stack,
        ScenarioName::Thp => &thp::Thp,
        ScenarioName::Dontneed => &dontneed::Dontneed,
        ScenarioName::MallocMmap => &malloc_mmap::MallocMmap,
    }
}

/// The plan of any walk: a lesson's fixed steps (which take no options), or a walk shaped by
/// `options`.
pub fn plan_for(scenario: ScenarioName, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
    lesson(scenario).plan(options)
}

impl LessonState {
    /// Reads the facts of a step of `scenario` in process `pid`, whose region is `region`;
    /// `kernel` is the step's view of it, `None` once the child is gone, and `faults_below`
    /// this step's faults below the stack's first bottom. The step driver asks here, so it
    /// needs to know no lesson.
    pub fn facts(
        &self,
        scenario: ScenarioName,
        pid: i32,
        region: &Region,
        kernel: Option<&KernelView>,
        faults_below: u64,
    ) -> anyhow::Result<Option<LessonFacts>> {
        let at = StepEnd {
            pid,
            region,
            kernel,
            faults_below,
        };
        lesson(scenario).facts(self, &at)
    }
}

/// The plan of a lesson of fixed steps on an array of `bytes` from `allocator`; such a lesson
/// takes no options, so any is refused.
fn fixed(
    scenario: ScenarioName,
    allocator: Allocator,
    bytes: u64,
    steps: Vec<PlannedStep>,
    options: &WalkOptions,
) -> Result<WalkPlan, PlanError> {
    if *options != WalkOptions::default() {
        return Err(PlanError::FixedLesson(scenario.as_str()));
    }
    Ok(WalkPlan {
        scenario,
        allocator,
        guard_page: false,
        bytes,
        touches: Vec::new(),
        via_syscall: false,
        script: Some(steps),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::workload::Command;

    #[test]
    fn every_walk_is_registered_under_its_own_name() {
        for scenario in ScenarioName::ALL {
            let plan = plan_for(scenario, &WalkOptions::default()).unwrap();
            assert_eq!(plan.scenario, scenario);
            assert!(!lesson(scenario).teaches().is_empty(), "{scenario:?}");
        }
    }

    /// `--list` writes each name in 15 columns, then what the walk teaches: 80 in all.
    #[test]
    fn what_each_walk_teaches_fits_the_list_in_80_columns() {
        for scenario in ScenarioName::ALL {
            let teaches = lesson(scenario).teaches();
            assert!(scenario.as_str().len() < 15, "{scenario:?}");
            assert!(
                15 + teaches.chars().count() <= 80,
                "{scenario:?}: {teaches}"
            );
        }
    }

    #[test]
    fn every_lesson_with_fixed_steps_allocates_in_its_first_step_and_takes_no_options() {
        let fixed: Vec<ScenarioName> = ScenarioName::ALL
            .into_iter()
            .filter(|&scenario| {
                plan_for(scenario, &WalkOptions::default())
                    .unwrap()
                    .script
                    .is_some()
            })
            .collect();
        assert_eq!(
            fixed,
            [
                ScenarioName::ForkCow,
                ScenarioName::File,
                ScenarioName::Mprotect,
                ScenarioName::Stack,
                ScenarioName::Thp,
                ScenarioName::Dontneed
            ]
        );
        for scenario in fixed {
            let steps = plan_for(scenario, &WalkOptions::default()).unwrap().steps();
            assert!(
                matches!(
                    steps[0].commands.last(),
                    Some(
                        Command::Mmap { .. }
                            | Command::MmapAligned { .. }
                            | Command::MapFile { .. }
                            | Command::StackPointer
                    )
                ),
                "{scenario:?}"
            );
            let options = WalkOptions {
                read: true,
                ..WalkOptions::default()
            };
            assert_eq!(
                plan_for(scenario, &options),
                Err(PlanError::FixedLesson(scenario.as_str()))
            );
        }
    }
}
