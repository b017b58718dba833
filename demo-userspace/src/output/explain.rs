//! What a lesson's step shows, said in sentences: the text report, the JSON `explanation` and
//! the terminal view's log all say the same, from here. Each lesson words its own
//! (`walk::lessons`); this escapes them for the sinks.

use std::borrow::Cow;

use super::{
    code::{base_name, function},
    escape::{escape, escape_owned},
};
use crate::{
    model::pages::{Companion, PageOrigin},
    model::signals::{ProcessEnd, si_code_meaning, si_code_name, signal_name},
    walk::{
        lessons,
        plan::ScenarioName,
        step_report::{OwnFrame, StepReport},
    },
};

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

/// "was killed by SIGSEGV" or "exited with status 0", to follow "the child".
pub fn child_fate(status: &ProcessEnd) -> String {
    match status {
        ProcessEnd::Killed(_) => format!("was {status}"),
        _ => status.to_string(),
    }
}

/// An access past the array that a mapping still holds, so the child did not die: the two
/// lines the text report writes under `bounds`.
pub fn past_the_array(step: &StepReport) -> Option<[String; 2]> {
    let outcome = step.touch.as_ref()?;
    let location = outcome.location?;
    if location.in_bounds || step.death.is_some() {
        return None;
    }
    let mapping = if outcome.mapping.is_empty() {
        Cow::Borrowed("a VMA")
    } else {
        escape(&outcome.mapping)
    };
    Some([
        format!(
            "{}[{}] is past the array, yet {mapping} maps it: the MMU checks",
            step.region.name, outcome.touch.index
        ),
        "whole mappings, never arrays, so there is no SIGSEGV".to_owned(),
    ])
}

/// Why the step's access did not fault: its page was already present (and writable), and
/// since when. `None` when it faulted, fell outside the array, or nothing made the page present.
pub fn no_fault(step: &StepReport) -> Option<String> {
    let outcome = step.touch.as_ref()?;
    let location = outcome.location?;
    if outcome.faulted {
        return None;
    }
    let name = &step.region.name;
    let page = location.page;
    if let (
        Some(OwnFrame {
            step: copied,
            index: written,
            from_zero_page,
        }),
        Some(PageOrigin::Fault {
            step: first,
            index: first_index,
            ..
        }),
    ) = (outcome.own_frame_since, outcome.resident_since)
        && copied > first
    {
        let before = if from_zero_page {
            format!("step {first} ({name}[{first_index}]) mapped the shared zero page there")
        } else {
            format!("it was present since step {first} ({name}[{first_index}]), shared")
        };
        return Some(format!(
            "no fault: page {page} was already present and writable: {before}, and step \
             {copied}'s write ({name}[{written}]) gave it a copy of its own"
        ));
    }
    let why = match outcome.resident_since? {
        PageOrigin::Fault {
            step: 0..=1,
            offset,
            index: first,
        } if offset < 0 => {
            format!("since step 1 ({name}[{first}], {offset} bytes: malloc's chunk header)")
        }
        PageOrigin::Fault {
            step, index: first, ..
        } => format!("since step {step} ({name}[{first}])"),
        PageOrigin::BeforeWalk => "before the walk began".to_owned(),
        PageOrigin::WithFault { step, how } => match how {
            Companion::FaultAround => format!("mapped by fault-around in step {step}"),
            Companion::HugePage => format!("part of the huge page step {step} mapped"),
        },
    };
    Some(format!("no fault: page {page} was already present, {why}"))
}

/// malloc's write of the next chunk's header past the array, which faulted the array's last
/// page in.
pub fn chunk_header(step: &StepReport) -> Option<String> {
    let (fault, past_end) = step.next_chunk_header_write()?;
    let name = &step.region.name;
    let (symbol, _, _) = fault.code.innermost();
    let function = function(symbol, fault.code.module.as_deref());
    let module = escape(fault.code.module.as_deref().map_or("-", base_name));
    let index = fault.location().map_or(0, |location| location.index);
    Some(format!(
        "{name}[{index}] is {past_end} bytes past {name}'s end, in the next chunk's header: \
         malloc's {function} ({module}) wrote that chunk's size there, so malloc, not the \
         program, faulted the last page in"
    ))
}

/// How the child died in a step, as the text report says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeathWords {
    /// `the child was killed by SIGSEGV`.
    pub fate: String,
    /// `SIGSEGV, si_code SEGV_MAPERR: no mapping at the address`, when the kernel's record of
    /// the signal was seen.
    pub signal: Option<String>,
    /// Where the fault that did not complete fell.
    pub place: Option<String>,
}

/// The child's death in `step`, if it died there.
pub fn death(step: &StepReport) -> Option<DeathWords> {
    let death = step.death.as_ref()?;
    let name = &step.region.name;
    let signal = death.generated.map(|signal| {
        format!(
            "{}, si_code {}: {}",
            signal_name(signal.signal),
            si_code_name(signal.signal, signal.code),
            si_code_meaning(signal.signal, signal.code)
        )
    });
    let pages = step.region.page_count();
    let whole = if step.scenario == ScenarioName::Stack {
        format!("the {pages}-page region below the top of [stack]")
    } else {
        format!("the {pages}-page array")
    };
    let place = death.fault.map(|(address, location)| match location {
        Some(location) => format!(
            "at {address:#x} = {name}[{}], page {}, {} {whole}",
            location.index,
            location.page,
            if location.page < pages {
                "inside"
            } else {
                "outside"
            },
        ),
        None => format!("at {address:#x}, outside {whole}"),
    });
    Some(DeathWords {
        fate: format!("the child {}", child_fate(&death.status)),
        signal,
        place,
    })
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

    /// A fork-cow step after the fork (step `number`) whose VMA holding arr is `vma_kib` large,
    /// pages 0-7 still shared.
    fn fork_step(number: u32, vma_kib: u64) -> StepReport {
        let mut region = region();
        region.len = 8 * 4096;
        let vma = crate::output::fixtures::vma(region.start, vma_kib, 40);
        let mut step = step(
            number,
            "child: read pages 0-7 of arr",
            PageModel::new(8),
            KernelView {
                vma: Some(vma.clone()),
                ..KernelView::default()
            },
        );
        step.scenario = ScenarioName::ForkCow;
        step.region = region;
        step.lesson = Some(LessonFacts::Fork {
            child: 7,
            same_frames: (0..8).collect(),
            own_frames: Vec::new(),
            child_vma: Some(vma),
        });
        step
    }

    /// The sentence of `step`'s explanation that starts with `start`.
    fn sentence(step: &StepReport, start: &str) -> String {
        explain(step)
            .into_iter()
            .find(|sentence| sentence.starts_with(start))
            .unwrap_or_else(|| panic!("no sentence starts with {start:?}: {:?}", explain(step)))
    }

    #[test]
    fn fork_cow_says_smaps_counts_are_the_vmas_and_explains_them_once() {
        let fork = sentence(&fork_step(3, 44), "smaps");
        assert_eq!(
            fork,
            "smaps of the 44 KiB VMA holding arr: parent Shared_Dirty 0 KiB, Private_Dirty 40 \
             KiB, Anonymous 40 KiB; child Shared_Dirty 0 KiB, Private_Dirty 40 KiB, Anonymous \
             40 KiB. arr is 32 KiB of it; the rest is a neighbour the kernel merged with it, \
             and counts too. smaps counts a page Shared while more than one process maps it, \
             Private once it is a process's own"
        );
        let later = sentence(&fork_step(4, 44), "smaps");
        assert_eq!(
            later,
            "smaps of the 44 KiB VMA holding arr: parent Shared_Dirty 0 KiB, Private_Dirty 40 \
             KiB, Anonymous 40 KiB; child Shared_Dirty 0 KiB, Private_Dirty 40 KiB, Anonymous \
             40 KiB"
        );
        assert!(sentence(&fork_step(4, 32), "smaps").starts_with("smaps of arr's VMA: parent"));
    }

    #[test]
    fn fork_cow_frames_read_as_shared_and_copied() {
        assert_eq!(
            sentence(&fork_step(4, 44), "frames"),
            "frames (pagemap PFNs, parent against child 7): pages 0-7 shared, one frame for \
             both; no page copied yet"
        );
    }
}
