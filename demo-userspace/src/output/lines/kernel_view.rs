//! What the kernel shows of a step's memory besides its faults, as a step line writes it: a
//! VMA's smaps columns, and the facts a lesson's step reads.

use schemars::JsonSchema;
use serde::Serialize;

use crate::{
    kernel::procmem::VmaUsage,
    walk::lessons::facts::{LessonFacts, StackFacts},
};

/// The `pmap -x` columns of one VMA, from /proc/PID/smaps.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "VmaUsage")]
pub(super) struct VmaUsageLine<'a> {
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    start: u64,
    size_kib: u64,
    rss_kib: u64,
    dirty_kib: u64,
    /// smaps splits the resident pages by how many mappings map them: Shared when more than
    /// one does (another process, or another mapping of the same file), Private otherwise,
    /// whatever MAP_SHARED or MAP_PRIVATE said.
    shared_clean_kib: u64,
    shared_dirty_kib: u64,
    private_clean_kib: u64,
    private_dirty_kib: u64,
    /// Resident pages that are anonymous: in a file mapping, the copies private writes made.
    anonymous_kib: u64,
    /// Of those, the ones in transparent huge pages.
    anon_huge_kib: u64,
    perms: &'a str,
    name: &'a str,
}

impl<'a> From<&'a VmaUsage> for VmaUsageLine<'a> {
    fn from(vma: &'a VmaUsage) -> Self {
        Self {
            start: vma.start,
            size_kib: vma.size_kib,
            rss_kib: vma.rss_kib,
            dirty_kib: vma.dirty_kib,
            shared_clean_kib: vma.shared_clean_kib,
            shared_dirty_kib: vma.shared_dirty_kib,
            private_clean_kib: vma.private_clean_kib,
            private_dirty_kib: vma.private_dirty_kib,
            anonymous_kib: vma.anonymous_kib,
            anon_huge_kib: vma.anon_huge_kib,
            perms: &vma.perms,
            name: &vma.name,
        }
    }
}

/// The facts of one lesson step, by lesson; JSON tags them with `lesson`.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "lesson", rename_all = "snake_case")]
#[schemars(rename = "LessonFacts")]
pub(super) enum LessonFactsLine<'a> {
    /// fork-cow, from the fork on.
    Fork {
        child: u32,
        /// Pages of arr whose frame (pagemap's PFN) is the same in the parent and the child:
        /// still one page, shared.
        same_frames: &'a [u64],
        /// Pages of arr whose frames differ: each process has a copy of its own.
        own_frames: &'a [u64],
        /// The child's VMA holding arr, from its smaps; the parent's is the step's `vma`.
        child_vma: Option<VmaUsageLine<'a>>,
    },
    /// file: the file behind arr.
    File {
        path: &'a str,
        /// The kind of filesystem that holds it, e.g. `ext4`.
        filesystem: &'a str,
        /// Pages of the file in the page cache (mincore).
        cached_pages: &'a [u64],
        /// The MAP_SHARED mapping of the same file, once the lesson made it.
        shared_vma: Option<VmaUsageLine<'a>>,
    },
    /// stack: the [stack] VMA against where it started and where the limit stops it.
    Stack(StackFactsLine<'a>),
    /// thp: the kernel's huge page settings and what it did.
    Thp {
        /// `/sys/kernel/mm/transparent_hugepage/enabled`'s selected value; null without THP.
        enabled: Option<&'a str>,
        /// Its `defrag` setting.
        defrag: Option<&'a str>,
        /// smaps' AnonHugePages of arr's VMA, in KiB.
        anon_huge_kib: u64,
    },
}

impl<'a> From<&'a LessonFacts> for LessonFactsLine<'a> {
    fn from(facts: &'a LessonFacts) -> Self {
        match facts {
            LessonFacts::Fork {
                child,
                same_frames,
                own_frames,
                child_vma,
            } => Self::Fork {
                child: *child,
                same_frames,
                own_frames,
                child_vma: child_vma.as_ref().map(VmaUsageLine::from),
            },
            LessonFacts::File {
                path,
                filesystem,
                cached_pages,
                shared_vma,
                ..
            } => Self::File {
                path,
                filesystem,
                cached_pages,
                shared_vma: shared_vma.as_ref().map(VmaUsageLine::from),
            },
            LessonFacts::Stack(stack) => Self::Stack(StackFactsLine::from(stack)),
            LessonFacts::Thp {
                enabled,
                defrag,
                anon_huge_kib,
                ..
            } => Self::Thp {
                enabled: enabled.as_deref(),
                defrag: defrag.as_deref(),
                anon_huge_kib: *anon_huge_kib,
            },
        }
    }
}

/// stack: the [stack] VMA against where it started and where the limit stops it.
#[derive(Serialize, JsonSchema)]
// Inlined, so the `stack` line's schema is one object with its `lesson` tag.
#[schemars(inline)]
pub(super) struct StackFactsLine<'a> {
    /// The bottom of [stack] before the lesson's first recursion.
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    original_start: u64,
    /// The top of [stack], which does not move.
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    top: u64,
    /// [stack] now; null once the child is gone.
    vma: Option<VmaUsageLine<'a>>,
    /// This step's faults below `original_start`.
    faults_below_original: u64,
    /// The child's RLIMIT_STACK soft limit in bytes; null when unlimited or gone.
    limit: Option<u64>,
    /// The lowest address the limit lets the stack grow to: `top - limit`.
    #[serde(serialize_with = "crate::model::hex::optional_hex")]
    #[schemars(with = "Option<crate::model::hex::Hex>")]
    lowest_allowed: Option<u64>,
    /// The distance between two frames of the recursion, as the child measured it.
    frame_bytes: Option<u64>,
}

impl<'a> From<&'a StackFacts> for StackFactsLine<'a> {
    fn from(stack: &'a StackFacts) -> Self {
        Self {
            original_start: stack.original_start,
            top: stack.top,
            vma: stack.vma.as_ref().map(VmaUsageLine::from),
            faults_below_original: stack.faults_below_original,
            limit: stack.limit,
            lowest_allowed: stack.lowest_allowed,
            frame_bytes: stack.frame_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::fixtures::vma;

    fn json(facts: &LessonFacts) -> String {
        serde_json::to_string(&LessonFactsLine::from(facts)).unwrap()
    }

    /// The lessons the walk snapshot does not show: each tagged with its lesson, its addresses
    /// in hex, a missing one as null.
    #[test]
    fn every_lesson_writes_its_facts_under_its_tag() {
        let stack = LessonFacts::Stack(StackFacts {
            original_start: 0x7ffe_0000_0000,
            top: 0x7ffe_0002_1000,
            vma: None,
            faults_below_original: 3,
            limit: None,
            lowest_allowed: None,
            frame_bytes: Some(4160),
        });
        assert_eq!(
            json(&stack),
            r#"{"lesson":"stack","original_start":"0x7ffe00000000","top":"0x7ffe00021000","vma":null,"faults_below_original":3,"limit":null,"lowest_allowed":null,"frame_bytes":4160}"#
        );
        let file = LessonFacts::File {
            path: "/tmp/f".to_owned(),
            filesystem: "ext4".to_owned(),
            cached_pages: vec![0, 2],
            shared_vma: Some(vma(0x1000, 4, 4)),
            earlier: Vec::new(),
        };
        assert_eq!(
            json(&file),
            r#"{"lesson":"file","path":"/tmp/f","filesystem":"ext4","cached_pages":[0,2],"shared_vma":{"start":"0x1000","size_kib":4,"rss_kib":4,"dirty_kib":4,"shared_clean_kib":0,"shared_dirty_kib":0,"private_clean_kib":0,"private_dirty_kib":4,"anonymous_kib":4,"anon_huge_kib":0,"perms":"rw-p","name":"[anon]"}}"#
        );
        let thp = LessonFacts::Thp {
            enabled: Some("always".to_owned()),
            defrag: None,
            anon_huge_kib: 2048,
            earlier: Vec::new(),
        };
        assert_eq!(
            json(&thp),
            r#"{"lesson":"thp","enabled":"always","defrag":null,"anon_huge_kib":2048}"#
        );
    }
}
