//! A walk's scenario and allocator as JSON names them, with the schema's description of each.

use schemars::JsonSchema;
use serde::Serialize;

use crate::walk::plan::{Allocator, ScenarioName};

/// The built-in scenarios, named as on the command line and in JSON.
#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "ScenarioName")]
pub(super) enum ScenarioNameLine {
    /// The seed's alloc_mmap: an int array from mmap, then writes to a few elements.
    Mmap,
    /// The seed's alloc: the same walk on an array from glibc malloc.
    Malloc,
    /// The seed's alloc_out: the walk, then writes past the array's end.
    OutOfBounds,
    /// Copy on write after fork: the parent's and the child's faults and frames.
    ForkCow,
    /// A file mapping: a major fault after DONTNEED, readahead and fault-around, private and
    /// shared writes.
    File,
    /// A write to a page made read-only: SIGSEGV with SEGV_ACCERR on a present page.
    Mprotect,
    /// The stack growing below its VMA, and the SIGSEGV at RLIMIT_STACK.
    Stack,
    /// One fault making a whole transparent huge page resident.
    Thp,
    /// MADV_DONTNEED: the pages go, the zero page comes back, the data is gone.
    Dontneed,
    /// A malloc above glibc's mmap threshold, served by a mapping of its own.
    MallocMmap,
}

impl From<ScenarioName> for ScenarioNameLine {
    fn from(name: ScenarioName) -> Self {
        match name {
            ScenarioName::Mmap => Self::Mmap,
            ScenarioName::Malloc => Self::Malloc,
            ScenarioName::OutOfBounds => Self::OutOfBounds,
            ScenarioName::ForkCow => Self::ForkCow,
            ScenarioName::File => Self::File,
            ScenarioName::Mprotect => Self::Mprotect,
            ScenarioName::Stack => Self::Stack,
            ScenarioName::Thp => Self::Thp,
            ScenarioName::Dontneed => Self::Dontneed,
            ScenarioName::MallocMmap => Self::MallocMmap,
        }
    }
}

/// Where the array's memory comes from.
#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(rename = "Allocator")]
pub(super) enum AllocatorLine {
    Mmap,
    Malloc,
    /// A mapping of a file.
    File,
    /// The process's own stack: the region is the span below its top that it may grow into.
    Stack,
}

impl From<Allocator> for AllocatorLine {
    fn from(allocator: Allocator) -> Self {
        match allocator {
            Allocator::Mmap => Self::Mmap,
            Allocator::Malloc => Self::Malloc,
            Allocator::File => Self::File,
            Allocator::Stack => Self::Stack,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each name is written as the command line and the text report spell it.
    #[test]
    fn the_json_names_are_the_command_line_names() {
        for name in ScenarioName::ALL {
            assert_eq!(
                serde_json::to_value(ScenarioNameLine::from(name)).unwrap(),
                name.as_str()
            );
        }
        for allocator in [
            Allocator::Mmap,
            Allocator::Malloc,
            Allocator::File,
            Allocator::Stack,
        ] {
            assert_eq!(
                serde_json::to_value(AllocatorLine::from(allocator)).unwrap(),
                allocator.as_str()
            );
        }
    }
}
