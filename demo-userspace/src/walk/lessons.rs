//! The course's lessons beyond the seed: each a walk of fixed steps, from fork's copy on write to
//! the stack's growth, that the step driver runs like the seed's walks.

use crate::{
    model::access::Access,
    walk::plan::{
        Allocator, ELEMENT_SIZE, PlanError, PlannedStep, ScenarioName, Touch, WalkOptions, WalkPlan,
    },
    walk::workload::protocol::{Advice, Command, FRAME_BYTES},
};

/// The page size the lessons are written for; the steps' texts name page numbers, and x86-64
/// pages are 4 KiB.
const PAGE: u64 = 4096;
/// Ints in a page, to turn a page number into an index.
const INTS_PER_PAGE: i64 = (PAGE / ELEMENT_SIZE) as i64;
/// Pages of the fork lesson's array.
pub const FORK_PAGES: u64 = 8;
/// Pages of the file lesson's file.
pub const FILE_PAGES: u64 = 16;
/// Where the file lesson writes its file: a directory that should be on a disk (FHS keeps
/// /var/tmp across reboots, so it is rarely tmpfs); the report says which filesystem it is.
pub const FILE_DIRECTORY: &str = "/var/tmp";
/// A transparent huge page on x86-64.
pub const HUGE_PAGE_BYTES: u64 = 2 << 20;
/// Pages of the dontneed lesson's array.
pub const DONTNEED_PAGES: u64 = 4;
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

/// The file the file lesson writes for the loader with pid `loader`.
pub fn lesson_file(loader: u32) -> std::path::PathBuf {
    std::path::Path::new(FILE_DIRECTORY).join(format!("demo-file-{loader}.dat"))
}

/// The plan of any walk: a lesson's fixed steps (which take no options), or a walk shaped by
/// `options`.
pub fn plan_for(scenario: ScenarioName, options: &WalkOptions) -> Result<WalkPlan, PlanError> {
    match (script(scenario), *options == WalkOptions::default()) {
        (Some((allocator, bytes, script)), true) => Ok(WalkPlan {
            scenario,
            allocator,
            guard_page: false,
            bytes,
            touches: Vec::new(),
            via_syscall: false,
            script: Some(script),
        }),
        (Some(_), false) => Err(PlanError::FixedLesson(scenario.as_str())),
        (None, _) => WalkPlan::new(scenario, options),
    }
}

/// A lesson's array (where it comes from, its size) and fixed steps; `None` for the walks
/// shaped by options.
fn script(scenario: ScenarioName) -> Option<(Allocator, u64, Vec<PlannedStep>)> {
    Some(match scenario {
        ScenarioName::ForkCow => (Allocator::Mmap, FORK_PAGES * PAGE, fork_cow()),
        ScenarioName::File => (Allocator::File, FILE_PAGES * PAGE, file()),
        ScenarioName::Mprotect => (Allocator::Mmap, PAGE, mprotect()),
        ScenarioName::Stack => (Allocator::Stack, STACK_SPAN, stack()),
        ScenarioName::Thp => (Allocator::Mmap, HUGE_PAGE_BYTES, thp()),
        ScenarioName::Dontneed => (Allocator::Mmap, DONTNEED_PAGES * PAGE, dontneed()),
        ScenarioName::Mmap
        | ScenarioName::Malloc
        | ScenarioName::OutOfBounds
        | ScenarioName::MallocMmap => return None,
    })
}

fn mmap(bytes: u64) -> PlannedStep {
    PlannedStep::one(
        Command::Mmap { bytes },
        format!("arr = mmap(NULL, {bytes}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)"),
    )
}

/// A write of `value` to the first int of page `page`, as a touch the report follows.
fn write_page(page: u64, value: i32, array: &str) -> PlannedStep {
    let index = page as i64 * INTS_PER_PAGE;
    PlannedStep {
        commands: vec![Command::Write { index, value }],
        action: format!("{array}[{index}] = {value}   (page {page})"),
        touch: Some(Touch {
            index,
            access: Access::Write,
        }),
    }
}

fn read_page(page: u64) -> PlannedStep {
    let index = page as i64 * INTS_PER_PAGE;
    PlannedStep {
        commands: vec![Command::Read { index }],
        action: format!("x = arr[{index}]   (page {page})"),
        touch: Some(Touch {
            index,
            access: Access::Read,
        }),
    }
}

fn pages(first: u64, count: u64) -> String {
    format!("pages {first}-{}", first + count - 1)
}

fn fork_cow() -> Vec<PlannedStep> {
    let write = |first, count, value| Command::WritePages {
        first,
        count,
        value,
    };
    vec![
        mmap(FORK_PAGES * PAGE),
        PlannedStep::one(
            write(0, FORK_PAGES, 2),
            format!("write {} of arr", pages(0, FORK_PAGES)),
        ),
        PlannedStep::one(Command::Fork, "fork(): the child gets a copy of arr"),
        PlannedStep::one(
            Command::InChild(Box::new(Command::ReadPages {
                first: 0,
                count: FORK_PAGES,
            })),
            format!("child: read {} of arr", pages(0, FORK_PAGES)),
        ),
        PlannedStep::one(
            Command::InChild(Box::new(write(0, 4, 5))),
            format!("child: write {} of arr", pages(0, 4)),
        ),
        PlannedStep::one(
            write(4, 4, 6),
            format!("parent: write {} of arr", pages(4, 4)),
        ),
    ]
}

fn file() -> Vec<PlannedStep> {
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

fn mprotect() -> Vec<PlannedStep> {
    vec![
        mmap(PAGE),
        write_page(0, 2, "arr"),
        PlannedStep::one(
            Command::Mprotect {
                bytes: PAGE,
                writable: false,
            },
            format!("mprotect(arr, {PAGE}, PROT_READ)"),
        ),
        write_page(0, 4, "arr"),
    ]
}

fn stack() -> Vec<PlannedStep> {
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

fn thp() -> Vec<PlannedStep> {
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

fn dontneed() -> Vec<PlannedStep> {
    let bytes = DONTNEED_PAGES * PAGE;
    vec![
        mmap(bytes),
        PlannedStep::one(
            Command::WritePages {
                first: 0,
                count: DONTNEED_PAGES,
                value: 2,
            },
            format!("write 2 to {} of arr", pages(0, DONTNEED_PAGES)),
        ),
        PlannedStep::one(
            Command::Madvise {
                bytes,
                advice: Advice::DontNeed,
            },
            format!("madvise(arr, {bytes}, MADV_DONTNEED)"),
        ),
        PlannedStep::one(
            Command::ReadPages {
                first: 0,
                count: DONTNEED_PAGES,
            },
            format!("read {} of arr", pages(0, DONTNEED_PAGES)),
        ),
        write_page(0, 5, "arr"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lesson_with_fixed_steps_allocates_in_its_first_step() {
        for scenario in ScenarioName::ALL {
            assert_eq!(
                script(scenario).is_some(),
                scenario.has_fixed_steps(),
                "{scenario:?}"
            );
            let plan = plan_for(scenario, &WalkOptions::default()).unwrap();
            assert_eq!(plan.scenario, scenario);
            if !scenario.has_fixed_steps() {
                continue;
            }
            let steps = plan.steps();
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

    #[test]
    fn fork_cow_writes_half_in_each_process() {
        let actions: Vec<String> = fork_cow().into_iter().map(|step| step.action).collect();
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
