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

/// The sentences that explain `step`, empty for the seed's walks (whose report says it all),
/// then those on what its faults cost, their durations written by the one formatter,
/// [`super::duration::human`]. A sentence may hold system-supplied text (the lesson file's
/// path, the kernel's THP settings), escaped here so it stays one line in every output.
pub fn explain(step: &StepReport) -> Vec<String> {
    let lesson = lessons::lesson(step.scenario);
    let mut said = lesson.explain(step);
    said.extend(lesson.explain_cost(step, super::duration::human));
    said.into_iter().map(escape_owned).collect()
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
        model::classify::FaultClass,
        model::events::FaultTiming,
        model::pages::PageModel,
        output::fixtures::{self, region, step},
        trace::session::TracedFault,
        walk::{
            fault_time::StepFaults,
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
            earlier: Vec::new(),
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

    /// A fault on `page` of `step`'s region, `class`, measured `duration_ns` long with
    /// `off_cpu_ns` of it off the CPU.
    fn measured(
        step: &StepReport,
        page: u64,
        class: FaultClass,
        (duration_ns, off_cpu_ns): (u64, u64),
    ) -> TracedFault {
        let region = &step.region;
        let mut fault = fixtures::fault(region.start + page * 4096, 6, "[anon]", region);
        fault.fault.class = class;
        fault.fault.timing = Some(FaultTiming {
            duration_ns,
            off_cpu_ns: Some(off_cpu_ns),
            ..FaultTiming::default()
        });
        fault
    }

    /// A later step of the file lesson, number `number`, after the `earlier` steps.
    fn file_later(number: u32, earlier: Vec<StepFaults>) -> StepReport {
        let mut later = file_step("/var/tmp/demo-file-1.dat");
        later.step = number;
        later.allocation = None;
        if let Some(LessonFacts::File { earlier: kept, .. }) = &mut later.lesson {
            *kept = earlier;
        }
        later
    }

    #[test]
    fn the_file_lesson_says_what_the_major_fault_took_and_its_time_off_cpu() {
        let mut read = file_later(2, Vec::new());
        read.faults = vec![measured(
            &read,
            0,
            FaultClass::Major,
            (1_900_000, 1_700_000),
        )];
        assert_eq!(
            sentence(&read, "time"),
            "time: the major fault took 1.9 ms, and its thread was off the CPU for 1.7 ms of it \
             (89%): asleep until the read completed, or preempted"
        );
        let major = read.region_faults_cost();
        let mut write = file_later(4, vec![major]);
        write.faults = vec![measured(&write, 2, FaultClass::Minor, (2_149, 0))];
        assert_eq!(
            sentence(&write, "time"),
            "time: the minor fault took 2.1 µs, against 1.9 ms for step 2's major fault"
        );
        // A run whose file was cached has no major fault, and says so rather than compare.
        let mut cached = file_later(2, Vec::new());
        cached.faults = vec![measured(&cached, 0, FaultClass::Minor, (3_000, 0))];
        assert_eq!(
            sentence(&cached, "time"),
            "time: the minor fault took 3.0 µs; no fault of this walk so far was major: the \
             kernel found every page it faulted on in the page cache, so none waited for the disk"
        );
        // A major fault whose thread never left the CPU says that, not a wait.
        let mut quick = file_later(2, Vec::new());
        quick.faults = vec![measured(&quick, 0, FaultClass::Major, (40_000, 0))];
        assert_eq!(
            sentence(&quick, "time"),
            "time: the major fault took 40 µs, and its thread was on the CPU all along"
        );
    }

    /// A step of the thp lesson on its 512-page array, THP `enabled`, after `earlier`.
    fn thp_step(number: u32, enabled: &str, earlier: Vec<StepFaults>) -> StepReport {
        let mut step = step(number, "write", PageModel::new(512), KernelView::default());
        step.scenario = ScenarioName::Thp;
        step.region.len = 2 << 20;
        step.lesson = Some(LessonFacts::Thp {
            enabled: Some(enabled.to_owned()),
            defrag: None,
            anon_huge_kib: 0,
            earlier,
        });
        step
    }

    #[test]
    fn the_thp_lesson_compares_one_2_mib_fault_with_512_of_4_kib() {
        let mut huge = thp_step(3, "madvise", Vec::new());
        huge.faults = vec![measured(&huge, 0, FaultClass::Minor, (85_000, 0))];
        huge.kernel.as_mut().unwrap().huge_pages = (0..512).collect();
        assert_eq!(
            sentence(&huge, "time"),
            "time: the fault took 85 µs for the 512 pages of a 2 MiB huge page"
        );
        let mut small = thp_step(5, "madvise", vec![huge.region_faults_cost()]);
        small.faults = (0..512)
            .map(|page| measured(&small, page, FaultClass::Minor, (1_000 + page, 0)))
            .collect();
        assert_eq!(
            explain(&small),
            [
                "2 MiB in one fault against 512 of 4 KiB: step 3's one fault mapped arr's 2 MiB \
              as a huge page and took 85 µs; these 512 faults of 4 KiB took 643 µs in all (1.0 \
              µs to 1.5 µs each)"
            ]
        );
        // Without THP there is no 2 MiB fault, and the lesson says why.
        let mut one = thp_step(3, "never", Vec::new());
        one.faults = vec![measured(&one, 0, FaultClass::Minor, (1_200, 0))];
        let mut never = thp_step(5, "never", vec![one.region_faults_cost()]);
        never.faults = small.faults.clone();
        assert_eq!(
            explain(&never),
            [
                "no 2 MiB fault to compare with: transparent huge pages are off here (enabled = \
              never), so step 3's fault mapped one 4 KiB page too and took 1.2 µs; these 512 \
              faults of 4 KiB took 643 µs in all (1.0 µs to 1.5 µs each)"
            ]
        );
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
