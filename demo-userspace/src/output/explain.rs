//! What a lesson's step shows, said in sentences from the kernel's facts: the text report, the
//! JSON `explanation` and the terminal view's log all say the same, from here.

use crate::{
    kernel::procmem::VmaUsage,
    model::access::Access,
    model::classify::FaultClass,
    model::pages::{Companion, PageOrigin},
    walk::lesson_facts::{LessonFacts, StackFacts},
    walk::plan::ScenarioName,
    walk::step_report::{AddressCheck, ResolvedFault, StepReport},
};

/// Formats pages as `page 3`, `pages 0 and 1`, `pages 0-7`, or `pages 0-3, 5 and 9-12`: runs
/// of three or more pages as ranges, so a huge page reads as one.
pub fn pages(list: &[u64]) -> String {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &page in list {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == page => *end = page,
            _ => runs.push((page, page)),
        }
    }
    // Two pages in a row read better as two than as a range.
    let shown: Vec<String> = runs
        .iter()
        .flat_map(|&(first, last)| match last - first {
            0 => vec![first.to_string()],
            1 => vec![first.to_string(), last.to_string()],
            _ => vec![format!("{first}-{last}")],
        })
        .collect();
    match shown.split_last() {
        None => "no page".to_owned(),
        Some((one, [])) if list.len() == 1 => format!("page {one}"),
        Some((one, [])) => format!("pages {one}"),
        Some((last, init)) => format!("pages {} and {last}", init.join(", ")),
    }
}

/// The sentences that explain `step`, empty for the seed's walks (whose report says it all).
pub fn explain(step: &StepReport) -> Vec<String> {
    let mut said = Vec::new();
    match &step.lesson {
        Some(LessonFacts::Fork {
            child,
            same_frames,
            own_frames,
            child_vma,
        }) => fork(step, *child, same_frames, own_frames, child_vma, &mut said),
        Some(LessonFacts::File {
            path,
            filesystem,
            cached_pages,
            shared_vma,
        }) => file(step, path, filesystem, cached_pages, shared_vma, &mut said),
        Some(LessonFacts::Stack(stack)) => explain_stack(stack, step, &mut said),
        Some(LessonFacts::Thp {
            enabled,
            defrag,
            anon_huge_kib,
        }) => thp(
            step,
            enabled.as_deref(),
            defrag.as_deref(),
            *anon_huge_kib,
            &mut said,
        ),
        None => {}
    }
    match step.scenario {
        ScenarioName::Dontneed => dontneed(step, &mut said),
        ScenarioName::Mprotect => mprotect(step, &mut said),
        ScenarioName::MallocMmap => malloc_mmap(step, &mut said),
        _ => {}
    }
    said
}

/// The completed write faults of the step on present pages in the region: copies on write.
fn copies_on_write(step: &StepReport) -> Vec<&ResolvedFault> {
    step.faults
        .iter()
        .filter(|fault| {
            let code = fault.fault.fault.error_code;
            fault.location.is_some()
                && fault.fault.class != FaultClass::Error
                && code.present()
                && code.access() == Access::Write
        })
        .collect()
}

fn region_faults(step: &StepReport) -> usize {
    step.faults_in_region().count()
}

fn smaps(vma: &VmaUsage) -> String {
    format!(
        "Shared_Dirty {} KiB, Private_Dirty {} KiB, Anonymous {} KiB",
        vma.shared_dirty_kib, vma.private_dirty_kib, vma.anonymous_kib
    )
}

fn fork(
    step: &StepReport,
    child: u32,
    same: &[u64],
    own: &[u64],
    child_vma: &Option<VmaUsage>,
    said: &mut Vec<String>,
) {
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
    said.push(format!(
        "frames (pagemap PFNs, parent against child {child}): {} the same frame, {} a \
         frame of its own in each",
        pages(same),
        pages(own)
    ));
    if let (Some(parent), Some(child_vma)) = (
        step.kernel.as_ref().and_then(|kernel| kernel.vma.as_ref()),
        child_vma,
    ) {
        said.push(format!(
            "smaps of arr: parent {}; child {}. smaps counts a page Shared while more than \
             one process maps it, Private once it is a process's own",
            smaps(parent),
            smaps(child_vma)
        ));
    }
}

fn file(
    step: &StepReport,
    path: &str,
    filesystem: &str,
    cached: &[u64],
    shared_vma: &Option<VmaUsage>,
    said: &mut Vec<String>,
) {
    if step.allocation.is_some() {
        let memory = if crate::kernel::pagecache::is_memory_filesystem(filesystem) {
            ": it keeps files in memory, so no read of it can be a major fault"
        } else {
            ", a disk filesystem"
        };
        // The path is the user's to choose: escaped, the sentence stays one line in every output.
        said.push(format!(
            "file: {} on {filesystem}{memory}",
            super::escape::escape(path)
        ));
    }
    said.push(format!(
        "page cache (mincore): {} of the file's {} pages cached: {}",
        cached.len(),
        step.region.page_count(),
        pages(cached)
    ));
    let majors: Vec<u64> = step
        .faults_in_region()
        .filter(|(fault, _)| fault.fault.class == FaultClass::Major)
        .map(|(_, location)| location.page)
        .collect();
    if !majors.is_empty() {
        said.push(format!(
            "major: {} was not in the page cache, so the fault waited for the disk; readahead \
             read more of the file in the same I/O",
            pages(&majors)
        ));
    }
    let minors = step
        .faults_in_region()
        .filter(|(fault, _)| {
            fault.fault.class == FaultClass::Minor && !fault.fault.fault.error_code.present()
        })
        .count();
    if minors > 0 && majors.is_empty() {
        said.push(format!(
            "minor: {minors} fault(s) on pages already in the page cache (readahead brought \
             them): the kernel only mapped them"
        ));
    }
    let around: Vec<u64> = (0..step.region.page_count())
        .filter(|&page| {
            step.pages.origin(page)
                == Some(PageOrigin::WithFault {
                    step: step.step,
                    how: Companion::FaultAround,
                })
        })
        .collect();
    if !around.is_empty() {
        said.push(format!(
            "fault-around: {} mapped in the same fault without faults of their own: a read \
             fault on a file maps the cached pages around it (fault_around_bytes, 64 KiB)",
            pages(&around)
        ));
    }
    let copies = copies_on_write(step);
    if !copies.is_empty()
        && let Some(kernel) = &step.kernel
    {
        let anonymous: Vec<u64> = kernel
            .resident_pages
            .iter()
            .filter(|page| !kernel.file_pages.contains(page))
            .copied()
            .collect();
        said.push(format!(
            "copy on write: MAP_PRIVATE, so the write to a present page of the file copied it; \
             pagemap shows {} anonymous now, not the file's, smaps Anonymous {} KiB",
            pages(&anonymous),
            kernel.vma.as_ref().map_or(0, |vma| vma.anonymous_kib)
        ));
    }
    if let Some(shared) = shared_vma {
        let shared_count = if shared.shared_dirty_kib > 0 {
            "Shared: two mappings map the page, shared and arr (which mapped it in step 2's \
             fault-around or a read), and smaps counts mappings, not the MAP_SHARED flag"
        } else {
            "Private: only this mapping maps the page; smaps counts mappings, not the \
             MAP_SHARED flag"
        };
        said.push(format!(
            "MAP_SHARED: the write dirtied the page-cache page itself, no copy: shared's smaps \
             {}. It shows as {shared_count}",
            smaps(shared)
        ));
    }
}

/// The stack lesson: where [stack] started, how it grew, and where the limit stopped it.
fn explain_stack(stack: &StackFacts, step: &StepReport, said: &mut Vec<String>) {
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
        return;
    }
    let frames = stack
        .frame_bytes
        .map(|bytes| format!("; the frames are {bytes} bytes apart"))
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
}

fn thp(
    step: &StepReport,
    enabled: Option<&str>,
    defrag: Option<&str>,
    anon_huge_kib: u64,
    said: &mut Vec<String>,
) {
    if step.allocation.is_some() {
        said.push(match (enabled, defrag) {
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
        return;
    }
    if region_faults(step) == 0 {
        return;
    }
    let huge = step
        .kernel
        .as_ref()
        .map_or(0, |kernel| kernel.huge_pages.len());
    if anon_huge_kib >= 2048 {
        said.push(format!(
            "huge page: {} fault, {huge} pages resident: the kernel mapped a whole 2 MiB page \
             at once (kpageflags THP on {huge} pages, smaps AnonHugePages {anon_huge_kib} KiB)",
            region_faults(step)
        ));
    } else {
        said.push(format!(
            "no huge page: smaps AnonHugePages {anon_huge_kib} KiB: the kernel fell back to a \
             4 KiB page (THP {}, or no free 2 MiB of memory)",
            enabled.unwrap_or("absent")
        ));
    }
}

fn dontneed(step: &StepReport, said: &mut Vec<String>) {
    let Some(kernel) = &step.kernel else {
        return;
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
}

fn mprotect(step: &StepReport, said: &mut Vec<String>) {
    let Some((death, code)) = step
        .death
        .as_ref()
        .and_then(|death| Some((death, death.error_code?)))
    else {
        return;
    };
    let accerr = death.generated.is_some_and(|signal| signal.code == 2);
    said.push(format!(
        "protection: the page was present (error code {:#x}, present bit {}) and arr's VMA is \
         read-only since mprotect; {}. out-of-bounds' SIGSEGV is SEGV_MAPERR: no VMA at all",
        code.0,
        u8::from(code.present()),
        if accerr {
            "SEGV_ACCERR: a mapping holds the address, but forbids the write"
        } else {
            "the kernel's si_code was not SEGV_ACCERR"
        }
    ));
}

fn malloc_mmap(step: &StepReport, said: &mut Vec<String>) {
    let Some(facts) = &step.allocation else {
        return;
    };
    if let AddressCheck::Inside { offset, .. } = facts.address_check {
        let mapped = step
            .syscalls
            .iter()
            .find(|call| call.syscall == demo_common::Syscall::Mmap)
            .map_or(0, |call| call.args[1]);
        let page = step.region.page_size;
        said.push(format!(
            "mmap threshold: {} bytes is above glibc's M_MMAP_THRESHOLD (128 KiB at start), so \
             malloc made a mapping of its own, {mapped} bytes = {} + 1 pages, and arr starts \
             {offset} bytes in, after the chunk header. The seed's \"(5 * 4 + 1)\", the size plus \
             one page, holds here; malloc(20000) is under the threshold and comes from the heap",
            step.region.len,
            step.region.len / page
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_lists_read_as_runs_or_lists() {
        assert_eq!(pages(&[]), "no page");
        assert_eq!(pages(&[3]), "page 3");
        assert_eq!(pages(&[0, 1, 2, 3]), "pages 0-3");
        assert_eq!(pages(&[0, 2, 5]), "pages 0, 2 and 5");
        assert_eq!(pages(&[0, 1, 2, 3, 5, 9, 10]), "pages 0-3, 5, 9 and 10");
        assert_eq!(pages(&[4, 5]), "pages 4 and 5");
    }
}
