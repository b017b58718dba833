//! What a lesson's step shows beyond a seed walk's view: the forked child's frames and smaps,
//! a file's page cache and filesystem, the stack's VMA and limit, and the transparent huge
//! page settings. Each lesson's file reads its own; their types are gathered here, apart from
//! the lessons, because the step report holds them and the lessons read the step report.

use crate::{kernel::procmem::VmaUsage, walk::fault_time::StepFaults};

/// The facts of one lesson step, by lesson; JSON tags them with `lesson`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LessonFacts {
    /// fork-cow, from the fork on.
    Fork {
        child: u32,
        /// Pages of arr whose frame (pagemap's PFN) is the same in the parent and the child:
        /// still one page, shared.
        same_frames: Vec<u64>,
        /// Pages of arr whose frames differ: each process has a copy of its own.
        own_frames: Vec<u64>,
        /// The child's VMA holding arr, from its smaps; the parent's is the step's `vma`.
        child_vma: Option<VmaUsage>,
    },
    /// file: the file behind arr.
    File {
        path: String,
        /// The kind of filesystem that holds it, e.g. `ext4`.
        filesystem: String,
        /// Pages of the file in the page cache (mincore).
        cached_pages: Vec<u64>,
        /// The MAP_SHARED mapping of the same file, once the lesson made it.
        shared_vma: Option<VmaUsage>,
        /// What the earlier steps' faults in arr took, for a minor fault's comparison with the
        /// major one. The fault lines carry the same durations, so JSON does not repeat them.
        earlier: Vec<StepFaults>,
    },
    /// stack: the [stack] VMA against where it started and where the limit stops it.
    Stack(StackFacts),
    /// thp: the kernel's huge page settings and what it did.
    Thp {
        /// `/sys/kernel/mm/transparent_hugepage/enabled`'s selected value; null without THP.
        enabled: Option<String>,
        /// Its `defrag` setting.
        defrag: Option<String>,
        /// smaps' AnonHugePages of arr's VMA, in KiB.
        anon_huge_kib: u64,
        /// What the earlier steps' faults in arr took, for the 4 KiB faults' comparison with
        /// the huge page's. The fault lines carry the same durations, so JSON does not repeat
        /// them.
        earlier: Vec<StepFaults>,
    },
}

/// stack: the [stack] VMA against where it started and where the limit stops it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackFacts {
    /// The bottom of [stack] before the lesson's first recursion.
    pub original_start: u64,
    /// The top of [stack], which does not move.
    pub top: u64,
    /// [stack] now; null once the child is gone.
    pub vma: Option<VmaUsage>,
    /// This step's faults below `original_start`.
    pub faults_below_original: u64,
    /// The child's RLIMIT_STACK soft limit in bytes; null when unlimited or gone.
    pub limit: Option<u64>,
    /// The lowest address the limit lets the stack grow to: `top - limit`.
    pub lowest_allowed: Option<u64>,
    /// The distance between two frames of the recursion, as the child measured it.
    pub frame_bytes: Option<u64>,
}
