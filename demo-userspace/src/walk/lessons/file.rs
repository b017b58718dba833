//! file: a file mapping, its major fault after POSIX_FADV_DONTNEED (how long it took, and how
//! much of that its thread waited off the CPU for the read, against the minor faults'
//! microseconds), readahead and fault-around, and a private write against a shared one. Its
//! facts are the file's page cache and filesystem, the shared mapping's smaps, and what the
//! earlier steps' faults took.

use super::{
    Durations, Lesson, LessonFacts, LessonState, StepEnd, fixed,
    steps::{INTS_PER_PAGE, PAGE, read_page, write_page},
    words::{copies_on_write, pages, share, smaps, took},
};
use crate::{
    kernel::pagecache,
    kernel::procmem::{self, VmaUsage},
    model::classify::FaultClass,
    model::pages::{Companion, PageOrigin},
    walk::fault_time::{FaultTime, StepFaults},
    walk::plan::{Allocator, PlanError, PlannedStep, ScenarioName, WalkOptions, WalkPlan},
    walk::step_report::StepReport,
    walk::workload::Command,
};

/// Pages of the file lesson's file.
pub const FILE_PAGES: u64 = 16;
/// Where the file lesson writes its file: a directory that should be on a disk (FHS keeps
/// /var/tmp across reboots, so it is rarely tmpfs); the report says which filesystem it is.
pub const FILE_DIRECTORY: &str = "/var/tmp";

/// The file the file lesson writes for the loader with pid `loader`.
pub fn lesson_file(loader: u32) -> std::path::PathBuf {
    std::path::Path::new(FILE_DIRECTORY).join(format!("demo-file-{loader}.dat"))
}

pub struct File;

impl Lesson for File {
    fn teaches(&self) -> &'static str {
        "a file: a major fault, readahead, fault-around, shared writes"
    }

    fn plan(&self, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
        fixed(
            ScenarioName::File,
            Allocator::File,
            FILE_PAGES * PAGE,
            steps(),
            options,
        )
    }

    fn facts(
        &self,
        learned: &LessonState,
        at: &StepEnd<'_>,
    ) -> anyhow::Result<Option<LessonFacts>> {
        let Some(path) = &learned.file else {
            return Ok(None);
        };
        let directory = path.parent().unwrap_or(path);
        Ok(Some(LessonFacts::File {
            filesystem: pagecache::filesystem_of(directory)?,
            cached_pages: pagecache::cached_pages(path, FILE_PAGES)?,
            shared_vma: match (learned.shared_mapping, at.kernel) {
                (Some(address), Some(_)) => procmem::vma_usage(at.pid, address)?,
                _ => None,
            },
            path: path.display().to_string(),
            earlier: learned.earlier.clone(),
        }))
    }

    fn explain(&self, step: &StepReport) -> Vec<String> {
        let Some(LessonFacts::File {
            path,
            filesystem,
            cached_pages,
            shared_vma,
            ..
        }) = &step.lesson
        else {
            return Vec::new();
        };
        explain(step, path, filesystem, cached_pages, shared_vma)
    }

    fn explain_cost(&self, step: &StepReport, durations: Durations) -> Vec<String> {
        let Some(LessonFacts::File { earlier, .. }) = &step.lesson else {
            return Vec::new();
        };
        cost(step, earlier, durations)
    }
}

/// What the step's faults in arr took: a major fault's time and how much of it its thread
/// waited off the CPU, and minor faults' time against the walk's major fault, from this run's
/// measurements. A walk without a major fault says so.
fn cost(step: &StepReport, earlier: &[StepFaults], durations: Durations) -> Vec<String> {
    let mut said = Vec::new();
    let major = step.region_fault_time(FaultClass::Major);
    let minor = step.region_fault_time(FaultClass::Minor);
    if major.faults > 0 {
        said.push(major_cost(major, durations));
    }
    if minor.faults > 0 {
        // This step's major fault, or the walk's first before it.
        let against = if major.faults > 0 {
            Some(("the major fault above".to_owned(), major))
        } else {
            earlier
                .iter()
                .find(|before| before.major.faults > 0)
                .map(|before| (format!("step {}'s major fault", before.step), before.major))
        };
        let subject = match minor.faults {
            1 => "the minor fault".to_owned(),
            count => format!("the {count} minor faults"),
        };
        let minors = format!("time: {subject} {}", took(minor, durations));
        said.push(match against {
            Some((which, major)) if major.timed > 0 => format!(
                "{minors}, against {} for {which}",
                durations(major.total_ns)
            ),
            Some((which, _)) => format!("{minors}; {which} has no measured duration"),
            None => format!(
                "{minors}; no fault of this walk so far was major: the kernel found every page \
                 it faulted on in the page cache, so none waited for the disk"
            ),
        });
    }
    said
}

/// How long the step's major fault took, and how much of it its thread was off the CPU: asleep
/// until the read completed, or preempted (the kernel does not say which).
fn major_cost(major: FaultTime, durations: Durations) -> String {
    let subject = match major.faults {
        1 => "the major fault".to_owned(),
        count => format!("the {count} major faults"),
    };
    let took = took(major, durations);
    if major.timed == 0 {
        return format!("time: {subject} {took}");
    }
    let thread = if major.faults == 1 {
        "its thread was"
    } else {
        "their threads were"
    };
    if major.off_cpu_unknown > 0 {
        return format!("time: {subject} {took}; how much of it {thread} off the CPU is not known");
    }
    if major.off_cpu_ns == 0 {
        return format!("time: {subject} {took}, and {thread} on the CPU all along");
    }
    format!(
        "time: {subject} {took}, and {thread} off the CPU for {} of it ({}): asleep until the \
         read completed, or preempted",
        durations(major.off_cpu_ns),
        share(major.off_cpu_ns, major.total_ns)
    )
}

fn steps() -> Vec<PlannedStep> {
    let bytes = FILE_PAGES * PAGE;
    let path = lesson_file(std::process::id());
    vec![
        PlannedStep {
            commands: vec![
                Command::CreateFile {
                    path,
                    pages: FILE_PAGES,
                },
                Command::MapFile {
                    bytes,
                    shared: false,
                },
            ],
            action: format!(
                "write a {FILE_PAGES}-page file, fsync, posix_fadvise(POSIX_FADV_DONTNEED); \
                 arr = mmap(NULL, {bytes}, PROT_READ|PROT_WRITE, MAP_PRIVATE, fd, 0)"
            ),
            touch: None,
        },
        read_page(0),
        read_page(3),
        write_page(2, 4, "arr"),
        PlannedStep {
            commands: vec![
                Command::MapFile {
                    bytes,
                    shared: true,
                },
                Command::Write {
                    index: 3 * INTS_PER_PAGE,
                    value: 5,
                },
            ],
            action: format!(
                "shared = mmap(NULL, {bytes}, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0); \
                 shared[{}] = 5   (page 3)",
                3 * INTS_PER_PAGE
            ),
            touch: None,
        },
    ]
}

fn explain(
    step: &StepReport,
    path: &str,
    filesystem: &str,
    cached: &[u64],
    shared_vma: &Option<VmaUsage>,
) -> Vec<String> {
    let mut said = Vec::new();
    if step.allocation.is_some() {
        let memory = if pagecache::is_memory_filesystem(filesystem) {
            ": it keeps files in memory, so no read of it can be a major fault"
        } else {
            ", a disk filesystem"
        };
        // The path is system-supplied text: the sinks escape it (`output::explain`), so the
        // sentence stays one line in every output.
        said.push(format!("file: {path} on {filesystem}{memory}"));
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
    said
}
