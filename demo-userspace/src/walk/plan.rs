//! What a built-in walk does: the allocation, then one access per step, from the scenario and
//! the command-line options.

use crate::{model::access::Access, walk::workload::Command};

/// The built-in scenarios, named as on the command line and in JSON. What each one shows is
/// its lesson's [`Lesson::teaches`](crate::walk::lessons::Lesson::teaches); the JSON Schema
/// describes each name beside it (`output::lines`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioName {
    Mmap,
    Malloc,
    OutOfBounds,
    ForkCow,
    File,
    Mprotect,
    Stack,
    Thp,
    Dontneed,
    MallocMmap,
}

impl ScenarioName {
    /// Every walk, in the order `demo alloc all` runs them and `--list` shows them.
    pub const ALL: [Self; 10] = [
        Self::Mmap,
        Self::Malloc,
        Self::OutOfBounds,
        Self::ForkCow,
        Self::File,
        Self::Mprotect,
        Self::Stack,
        Self::Thp,
        Self::Dontneed,
        Self::MallocMmap,
    ];

    /// The seed's three walks, which `demo` with no arguments runs.
    pub const SEED: [Self; 3] = [Self::Mmap, Self::Malloc, Self::OutOfBounds];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mmap => "mmap",
            Self::Malloc => "malloc",
            Self::OutOfBounds => "out-of-bounds",
            Self::ForkCow => "fork-cow",
            Self::File => "file",
            Self::Mprotect => "mprotect",
            Self::Stack => "stack",
            Self::Thp => "thp",
            Self::Dontneed => "dontneed",
            Self::MallocMmap => "malloc-mmap",
        }
    }
}

/// Where the array's memory comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocator {
    Mmap,
    Malloc,
    /// A mapping of a file.
    File,
    /// The process's own stack: the region is the span below its top that it may grow into.
    Stack,
}

impl Allocator {
    /// The region's origin as the JSON `region` line names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mmap => "mmap",
            Self::Malloc => "malloc",
            Self::File => "file",
            Self::Stack => "stack",
        }
    }
}

/// Size of an element of the walked array (a C `int`).
pub const ELEMENT_SIZE: u64 = 4;
/// The seed's array size in bytes.
pub const SEED_BYTES: u64 = 20000;
/// The indices the seed touches, in order.
pub const SEED_TOUCHES: [i64; 4] = [1500, 1501, 0, 3000];
/// The seed's out-of-bounds indices: inside the last page of the mapping, then past it.
pub const OUT_OF_BOUNDS_TOUCHES: [i64; 2] = [5001, 5121];

/// One access of the walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Touch {
    pub index: i64,
    pub access: Access,
}

/// The options of `demo alloc` that shape a walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkOptions {
    pub bytes: Option<u64>,
    pub touch: Option<Vec<i64>>,
    pub read: bool,
    pub then_write: bool,
    pub via: Option<Allocator>,
    pub via_syscall: bool,
}

/// A bad combination of options.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("--bytes must be at least {ELEMENT_SIZE} (one int)")]
    TooSmall,
    #[error("--then-write needs --read")]
    ThenWriteWithoutRead,
    #[error("--via applies only to the out-of-bounds scenario")]
    ViaOutsideOutOfBounds,
    #[error(
        "the {0} walk has fixed steps; --bytes, --touch, --read, --then-write, --via and --via-syscall do not apply"
    )]
    FixedLesson(&'static str),
}

/// Everything a walk does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkPlan {
    pub scenario: ScenarioName,
    pub allocator: Allocator,
    /// Unmap the page after the array so an access there must fault with SIGSEGV.
    pub guard_page: bool,
    pub bytes: u64,
    pub touches: Vec<Touch>,
    /// Touch through read(2)/write(2), so the kernel faults on the child's behalf.
    pub via_syscall: bool,
    /// A lesson's fixed steps, in place of the allocation and the touches.
    pub script: Option<Vec<PlannedStep>>,
}

/// One step: the child's commands (most steps have one), the report's text for it, and the
/// access it makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedStep {
    pub commands: Vec<Command>,
    pub action: String,
    pub touch: Option<Touch>,
}

impl PlannedStep {
    /// A step of one command that touches no single element.
    pub fn one(command: Command, action: impl Into<String>) -> Self {
        Self {
            commands: vec![command],
            action: action.into(),
            touch: None,
        }
    }
}

impl WalkPlan {
    /// The plan of a walk shaped by `options`, for the walks that take them: the seed's three
    /// and malloc-mmap (which sets its own default `bytes`). The other lessons have fixed steps;
    /// `walk::lessons::plan_for` makes the plan of any walk.
    pub(crate) fn new(scenario: ScenarioName, options: &WalkOptions) -> Result<Self, PlanError> {
        let bytes = options.bytes.unwrap_or(SEED_BYTES);
        if bytes < ELEMENT_SIZE {
            return Err(PlanError::TooSmall);
        }
        if options.then_write && !options.read {
            return Err(PlanError::ThenWriteWithoutRead);
        }
        if options.via.is_some() && scenario != ScenarioName::OutOfBounds {
            return Err(PlanError::ViaOutsideOutOfBounds);
        }
        let allocator = match scenario {
            ScenarioName::Malloc | ScenarioName::MallocMmap => Allocator::Malloc,
            ScenarioName::OutOfBounds => options.via.unwrap_or(Allocator::Mmap),
            _ => Allocator::Mmap,
        };
        let indices = options.touch.clone().unwrap_or_else(|| {
            let mut indices = SEED_TOUCHES.to_vec();
            if scenario == ScenarioName::OutOfBounds {
                indices.extend(OUT_OF_BOUNDS_TOUCHES);
            }
            indices
        });
        let first = if options.read {
            Access::Read
        } else {
            Access::Write
        };
        let mut touches: Vec<Touch> = indices
            .iter()
            .map(|&index| Touch {
                index,
                access: first,
            })
            .collect();
        if options.then_write {
            touches.extend(indices.iter().map(|&index| Touch {
                index,
                access: Access::Write,
            }));
        }
        Ok(Self {
            scenario,
            allocator,
            guard_page: scenario == ScenarioName::OutOfBounds && allocator == Allocator::Mmap,
            bytes,
            touches,
            via_syscall: options.via_syscall,
            script: None,
        })
    }

    /// The seed's walk for `scenario`.
    pub fn seed(scenario: ScenarioName) -> Self {
        Self::new(scenario, &WalkOptions::default()).expect("the default options are valid")
    }

    /// How many pages after the array still resolve to indices: one when the walk reaches past
    /// the end, so `arr[5121]` reads as index 5121 on page 5.
    pub fn pages_after(&self) -> u64 {
        u64::from(self.scenario == ScenarioName::OutOfBounds)
    }

    /// The allocation step, then one step per touch. A write stores the step's number, so the
    /// value in memory tells which step wrote it.
    pub fn steps(&self) -> Vec<PlannedStep> {
        if let Some(script) = &self.script {
            return script.clone();
        }
        let bytes = self.bytes;
        let allocate = match (self.allocator, self.guard_page) {
            (Allocator::Mmap | Allocator::File | Allocator::Stack, false) => PlannedStep {
                commands: vec![Command::Mmap { bytes }],
                action: format!(
                    "arr = mmap(NULL, {bytes}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)"
                ),
                touch: None,
            },
            (Allocator::Mmap | Allocator::File | Allocator::Stack, true) => PlannedStep {
                commands: vec![Command::MmapGuarded { bytes }],
                action: format!("arr = mmap({bytes} bytes + 1 page), then munmap the extra page"),
                touch: None,
            },
            (Allocator::Malloc, _) => PlannedStep {
                commands: vec![Command::Malloc { bytes }],
                action: format!("arr = malloc({bytes})"),
                touch: None,
            },
        };
        let touches = self.touches.iter().zip(2..).map(|(&touch, step)| {
            let index = touch.index;
            let reads = touch.access == Access::Read;
            let (command, action) = match (reads, self.via_syscall) {
                (false, false) => (
                    Command::Write { index, value: step },
                    format!("arr[{index}] = {step}"),
                ),
                (true, false) => (Command::Read { index }, format!("x = arr[{index}]")),
                (false, true) => (
                    Command::SyscallWrite { index },
                    format!("read(/dev/zero, &arr[{index}], 4)"),
                ),
                (true, true) => (
                    Command::SyscallRead { index },
                    format!("write(pipe, &arr[{index}], 4)"),
                ),
            };
            PlannedStep {
                commands: vec![command],
                action,
                touch: Some(touch),
            }
        });
        std::iter::once(allocate).chain(touches).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions(plan: &WalkPlan) -> Vec<String> {
        plan.steps().into_iter().map(|step| step.action).collect()
    }

    #[test]
    fn the_seed_walks() {
        assert_eq!(
            actions(&WalkPlan::seed(ScenarioName::Mmap)),
            [
                "arr = mmap(NULL, 20000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)",
                "arr[1500] = 2",
                "arr[1501] = 3",
                "arr[0] = 4",
                "arr[3000] = 5"
            ]
        );
        assert_eq!(
            actions(&WalkPlan::seed(ScenarioName::Malloc))[0],
            "arr = malloc(20000)"
        );
        let out = WalkPlan::seed(ScenarioName::OutOfBounds);
        assert!(out.guard_page);
        assert_eq!(out.pages_after(), 1);
        assert_eq!(&actions(&out)[5..], ["arr[5001] = 6", "arr[5121] = 7"]);
    }

    #[test]
    fn read_then_write_walks_the_indices_twice() {
        let plan = WalkPlan::new(
            ScenarioName::Mmap,
            &WalkOptions {
                read: true,
                then_write: true,
                touch: Some(vec![0, 1500]),
                ..WalkOptions::default()
            },
        )
        .unwrap();
        assert_eq!(
            &actions(&plan)[1..],
            ["x = arr[0]", "x = arr[1500]", "arr[0] = 4", "arr[1500] = 5"]
        );
    }

    #[test]
    fn via_malloc_has_no_guard_and_syscall_touches_name_the_syscall() {
        let plan = WalkPlan::new(
            ScenarioName::OutOfBounds,
            &WalkOptions {
                via: Some(Allocator::Malloc),
                via_syscall: true,
                ..WalkOptions::default()
            },
        )
        .unwrap();
        assert!(!plan.guard_page);
        assert_eq!(actions(&plan)[1], "read(/dev/zero, &arr[1500], 4)");
    }

    #[test]
    fn bad_option_combinations_are_refused() {
        let refuse =
            |scenario, options: WalkOptions| WalkPlan::new(scenario, &options).unwrap_err();
        assert_eq!(
            refuse(
                ScenarioName::Mmap,
                WalkOptions {
                    bytes: Some(2),
                    ..WalkOptions::default()
                }
            ),
            PlanError::TooSmall
        );
        assert_eq!(
            refuse(
                ScenarioName::Mmap,
                WalkOptions {
                    then_write: true,
                    ..WalkOptions::default()
                }
            ),
            PlanError::ThenWriteWithoutRead
        );
        assert_eq!(
            refuse(
                ScenarioName::Malloc,
                WalkOptions {
                    via: Some(Allocator::Mmap),
                    ..WalkOptions::default()
                }
            ),
            PlanError::ViaOutsideOutOfBounds
        );
    }
}
