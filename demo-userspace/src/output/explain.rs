//! What a lesson's step shows, said in sentences: the text report, the JSON `explanation` and
//! the terminal view's log all say the same, from here. Each lesson words its own
//! (`walk::lessons`); this escapes them for the sinks.

use super::escape::escape_owned;
use crate::walk::{lessons, step_report::StepReport};

pub use crate::walk::lessons::words::pages;

/// The sentences that explain `step`, empty for the seed's walks (whose report says it all).
/// A sentence may hold system-supplied text (the lesson file's path, the kernel's THP
/// settings), escaped here so it stays one line in every output.
pub fn explain(step: &StepReport) -> Vec<String> {
    lessons::lesson(step.scenario)
        .explain(step)
        .into_iter()
        .map(escape_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::pages::PageModel,
        output::fixtures::{region, step},
        walk::{
            lessons::LessonFacts,
            plan::{Allocator, ScenarioName},
            step_report::{AddressCheck, AllocationFacts, KernelView},
        },
    };

    /// The file lesson's allocation step, its file at `path`.
    fn file_step(path: &str) -> StepReport {
        let mut step = step(
            1,
            "arr = mmap(...)",
            PageModel::new(region().page_count() as usize),
            KernelView::default(),
        );
        step.scenario = ScenarioName::File;
        step.allocation = Some(AllocationFacts {
            allocator: Allocator::File,
            address_check: AddressCheck::Matches,
            guard: None,
        });
        step.lesson = Some(LessonFacts::File {
            path: path.to_owned(),
            filesystem: "ext4".to_owned(),
            cached_pages: vec![0, 1, 2],
            shared_vma: None,
        });
        step
    }

    #[test]
    fn the_lesson_of_the_step_explains_it_and_a_path_of_control_characters_stays_one_line() {
        let cached = "page cache (mincore): 3 of the file's 5 pages cached: pages 0-2";
        assert_eq!(
            explain(&file_step("/var/tmp/demo-file-1.dat")),
            [
                "file: /var/tmp/demo-file-1.dat on ext4, a disk filesystem",
                cached
            ]
        );
        assert_eq!(
            explain(&file_step("/var/tmp/a\nb\x1b[2J")),
            [
                r"file: /var/tmp/a\nb\e[2J on ext4, a disk filesystem",
                cached
            ]
        );
        let mut seed = file_step("/var/tmp/demo-file-1.dat");
        seed.scenario = ScenarioName::Mmap;
        assert!(explain(&seed).is_empty());
    }
}
