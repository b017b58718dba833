//! Finds "the array" by itself: turns a traced process's anonymous mmaps and large heap blocks
//! into named regions, ends them when they are unmapped or freed, and resolves addresses.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use demo_common::{HeapFunction, Syscall};

use crate::{model::region::Region, model::syscalls::SyscallCall};

/// How a region came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    Mmap,
    Mremap,
    Malloc,
    Calloc,
    Realloc,
    /// Given with `--region ADDR:LEN`.
    Manual,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mmap => "mmap",
            Self::Mremap => "mremap",
            Self::Malloc => "malloc",
            Self::Calloc => "calloc",
            Self::Realloc => "realloc",
            Self::Manual => "manual",
        }
    }
}

/// A completed heap call: what was asked and what came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapCall {
    pub pid: u32,
    pub tid: u32,
    pub function: HeapFunction,
    pub args: [u64; 2],
    /// The returned pointer; 0 for free.
    pub ret: u64,
}

/// One tracked region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedRegion {
    /// Sequence number among all regions, in creation order.
    pub id: usize,
    pub pid: u32,
    pub origin: Origin,
    pub region: Region,
    /// False once unmapped or freed; its faults stay counted.
    pub live: bool,
}

/// A region's birth or end, for the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegionChange {
    Started(usize),
    Ended(usize),
}

/// The regions of every traced process.
#[derive(Debug)]
pub struct RegionTracker {
    auto: bool,
    min_block: u64,
    elem_size: u64,
    page_size: u64,
    /// Every region by id, in creation order, less those forgotten after they ended.
    regions: BTreeMap<usize, TrackedRegion>,
    next_id: usize,
    /// Live regions by (pid, start address) → index in `regions`.
    live: BTreeMap<(u32, u64), usize>,
    /// How many regions of each origin exist, for the `mmap#3` names.
    counts: HashMap<Origin, usize>,
}

/// A manual region that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegionSpecError {
    #[error("--region `{0}` is not ADDR:LEN (e.g. 0x7f0000000000:20000)")]
    Malformed(String),
    #[error("--region `{0}` has length 0")]
    Empty(String),
    #[error("--region `{0}` overlaps --region `{1}`")]
    Overlap(String, String),
}

/// Parses `0xADDR:LEN` (each part decimal or 0x-hex).
pub fn parse_region_spec(spec: &str) -> Result<(u64, u64), RegionSpecError> {
    let malformed = || RegionSpecError::Malformed(spec.to_owned());
    let (address, len) = spec.split_once(':').ok_or_else(malformed)?;
    let number = |text: &str| match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    };
    let (address, len) = (
        number(address).ok_or_else(malformed)?,
        number(len).ok_or_else(malformed)?,
    );
    if len == 0 {
        return Err(RegionSpecError::Empty(spec.to_owned()));
    }
    address.checked_add(len).ok_or_else(malformed)?;
    Ok((address, len))
}

/// Checks a set of manual regions: each well-formed, none empty, no two overlapping.
pub fn parse_region_specs(specs: &[String]) -> Result<Vec<(u64, u64)>, RegionSpecError> {
    let mut parsed: Vec<(u64, u64, &String)> = Vec::new();
    for spec in specs {
        let (address, len) = parse_region_spec(spec)?;
        if let Some((_, _, other)) = parsed
            .iter()
            .find(|&&(start, other_len, _)| address < start + other_len && start < address + len)
        {
            return Err(RegionSpecError::Overlap(spec.clone(), (*other).clone()));
        }
        parsed.push((address, len, spec));
    }
    Ok(parsed
        .into_iter()
        .map(|(address, len, _)| (address, len))
        .collect())
}

impl RegionTracker {
    pub fn new(auto: bool, min_block: u64, elem_size: u64, page_size: u64) -> Self {
        Self {
            auto,
            min_block,
            elem_size,
            page_size,
            regions: BTreeMap::new(),
            next_id: 0,
            live: BTreeMap::new(),
            counts: HashMap::new(),
        }
    }

    /// Every region not forgotten, in creation order.
    pub fn regions(&self) -> impl Iterator<Item = &TrackedRegion> {
        self.regions.values()
    }

    /// Region `id`, which must not have been forgotten.
    pub fn get(&self, id: usize) -> &TrackedRegion {
        &self.regions[&id]
    }

    /// Lets an ended region go, so a process that maps in a loop cannot grow the loader.
    pub fn forget(&mut self, id: usize) {
        if self.regions.get(&id).is_some_and(|tracked| !tracked.live) {
            self.regions.remove(&id);
        }
    }

    /// Adds a region given by hand for process `pid`.
    pub fn add_manual(&mut self, pid: u32, start: u64, len: u64) -> RegionChange {
        self.start(pid, Origin::Manual, start, len)
    }

    /// Applies a completed memory syscall. `inside_heap_call` says the thread is inside malloc
    /// and friends, whose own mmaps belong to the heap block, not to a region of their own.
    pub fn on_syscall(&mut self, call: &SyscallCall, inside_heap_call: bool) -> Vec<RegionChange> {
        if call.failed() {
            return Vec::new();
        }
        let mut changes = Vec::new();
        match call.syscall {
            Syscall::Mmap => {
                let anonymous = call.args[3] & libc::MAP_ANONYMOUS as u64 != 0;
                if self.auto && anonymous && !inside_heap_call {
                    changes.push(self.start(call.pid, Origin::Mmap, call.ret as u64, call.args[1]));
                }
            }
            Syscall::Munmap => {
                changes.extend(self.end_overlapping(call.pid, call.args[0], call.args[1]));
            }
            Syscall::Mremap => {
                let ended = self.end_overlapping(call.pid, call.args[0], call.args[1]);
                // Only a region we tracked moves on as a region.
                if !ended.is_empty() {
                    changes.extend(ended);
                    changes.push(self.start(
                        call.pid,
                        Origin::Mremap,
                        call.ret as u64,
                        call.args[2],
                    ));
                }
            }
            Syscall::Brk | Syscall::Madvise | Syscall::Mprotect | Syscall::Fadvise64 => {}
        }
        changes
    }

    /// Applies a completed heap call.
    pub fn on_heap(&mut self, call: &HeapCall) -> Vec<RegionChange> {
        let mut changes = Vec::new();
        let (origin, size) = match call.function {
            HeapFunction::Free => {
                changes.extend(self.end_at(call.pid, call.args[0]));
                return changes;
            }
            HeapFunction::Malloc => (Origin::Malloc, call.args[0]),
            HeapFunction::Calloc => (Origin::Calloc, call.args[0].saturating_mul(call.args[1])),
            HeapFunction::Realloc => {
                changes.extend(self.end_at(call.pid, call.args[0]));
                (Origin::Realloc, call.args[1])
            }
        };
        if self.auto && call.ret != 0 && size >= self.min_block {
            changes.push(self.start(call.pid, origin, call.ret, size));
        }
        changes
    }

    /// The live region of `pid` whose bytes hold `address`.
    pub fn find(&self, pid: u32, address: u64) -> Option<&TrackedRegion> {
        let (_, &id) = self.live.range(..=(pid, address)).next_back()?;
        let tracked = &self.regions[&id];
        let region = &tracked.region;
        (tracked.pid == pid && address >= region.start && address < region.start + region.len)
            .then_some(tracked)
    }

    /// Ends every live region of `pid`, whose image was replaced by an exec.
    pub fn end_all(&mut self, pid: u32) -> Vec<RegionChange> {
        self.end_overlapping(pid, 0, u64::MAX)
    }

    /// Gives a forked `child` a copy of each live region of `parent`, with the same name:
    /// fork copies the address space, so the child's faults in them hit the same arrays.
    pub fn inherit(&mut self, parent: u32, child: u32) -> Vec<RegionChange> {
        let inherited: Vec<TrackedRegion> = self
            .live
            .range((parent, 0)..=(parent, u64::MAX))
            .map(|(_, id)| self.regions[id].clone())
            .collect();
        inherited
            .into_iter()
            .map(|tracked| {
                let region = &tracked.region;
                self.insert(
                    child,
                    tracked.origin,
                    region.start,
                    region.len,
                    Arc::clone(&region.name),
                )
            })
            .collect()
    }

    fn start(&mut self, pid: u32, origin: Origin, start: u64, len: u64) -> RegionChange {
        let count = self.counts.entry(origin).or_default();
        *count += 1;
        let name = format!("{}#{count}", origin.as_str()).into();
        self.insert(pid, origin, start, len, name)
    }

    /// Adds a live region named `name`; the one way a region comes to be.
    fn insert(
        &mut self,
        pid: u32,
        origin: Origin,
        start: u64,
        len: u64,
        name: Arc<str>,
    ) -> RegionChange {
        // A new region at a live region's start means the old one ended unseen (e.g. a free
        // of a block below --min-block's size reused the address); it is a new region.
        if let Some(old) = self.live.remove(&(pid, start))
            && let Some(tracked) = self.regions.get_mut(&old)
        {
            tracked.live = false;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.regions.insert(
            id,
            TrackedRegion {
                id,
                pid,
                origin,
                region: Region {
                    name,
                    start,
                    len,
                    elem_size: self.elem_size,
                    page_size: self.page_size,
                    pages_after: 0,
                },
                live: true,
            },
        );
        self.live.insert((pid, start), id);
        RegionChange::Started(id)
    }

    fn end_at(&mut self, pid: u32, start: u64) -> Option<RegionChange> {
        let id = self.live.remove(&(pid, start))?;
        if let Some(tracked) = self.regions.get_mut(&id) {
            tracked.live = false;
        }
        Some(RegionChange::Ended(id))
    }

    fn end_overlapping(&mut self, pid: u32, start: u64, len: u64) -> Vec<RegionChange> {
        let end = start.saturating_add(len);
        let ended: Vec<(u32, u64)> = self
            .live
            .range((pid, 0)..(pid, end))
            .filter(|&(_, &id)| {
                let region = &self.regions[&id].region;
                region.start + region.len > start
            })
            .map(|(&key, _)| key)
            .collect();
        ended
            .into_iter()
            .filter_map(|(pid, start)| self.end_at(pid, start))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mmap(pid: u32, address: u64, len: u64, flags: u64) -> SyscallCall {
        SyscallCall {
            pid,
            tid: pid,
            syscall: Syscall::Mmap,
            args: [0, len, 3, flags, u64::MAX, 0],
            ret: address as i64,
            timestamp_ns: 0,
            duration_ns: 0,
        }
    }

    fn heap(function: HeapFunction, args: [u64; 2], ret: u64) -> HeapCall {
        HeapCall {
            pid: 1,
            tid: 1,
            function,
            args,
            ret,
        }
    }

    fn tracker() -> RegionTracker {
        RegionTracker::new(true, 4096, 4, 4096)
    }

    #[test]
    fn anonymous_mmaps_become_numbered_regions_and_file_maps_do_not() {
        let mut regions = tracker();
        assert_eq!(
            regions.on_syscall(&mmap(1, 0x10000, 20000, 0x22), false),
            [RegionChange::Started(0)]
        );
        assert!(
            regions
                .on_syscall(&mmap(1, 0x90000, 8192, 0x02), false)
                .is_empty()
        );
        assert!(
            regions
                .on_syscall(&mmap(1, 0xa0000, 8192, 0x22), true)
                .is_empty(),
            "malloc's own mmap"
        );
        regions.on_syscall(&mmap(1, 0x50000, 4096, 0x22), false);
        let names: Vec<&str> = regions.regions().map(|r| &*r.region.name).collect();
        assert_eq!(names, ["mmap#1", "mmap#2"]);
        assert_eq!(
            &*regions.find(1, 0x10000 + 6000).unwrap().region.name,
            "mmap#1"
        );
        assert!(
            regions.find(1, 0x10000 + 20000).is_none(),
            "one past the end"
        );
        assert!(regions.find(2, 0x10000).is_none(), "another process");
    }

    #[test]
    fn a_forked_child_inherits_the_live_regions_under_their_names() {
        let mut regions = tracker();
        regions.on_syscall(&mmap(1, 0x10000, 20000, 0x22), false);
        regions.on_syscall(&mmap(1, 0x50000, 8192, 0x22), false);
        regions.on_syscall(&mmap(3, 0x70000, 8192, 0x22), false);
        assert_eq!(
            regions.inherit(1, 2),
            [RegionChange::Started(3), RegionChange::Started(4)]
        );
        let copy = regions.find(2, 0x10000 + 6000).unwrap();
        assert_eq!((&*copy.region.name, copy.pid), ("mmap#1", 2));
        assert_eq!(&*regions.find(2, 0x50000).unwrap().region.name, "mmap#2");
        assert!(
            regions.find(2, 0x70000).is_none(),
            "another process's region"
        );
        regions.on_syscall(&mmap(2, 0x90000, 4096, 0x22), false);
        assert_eq!(
            &*regions.find(2, 0x90000).unwrap().region.name,
            "mmap#4",
            "the copies are not new regions"
        );
    }

    #[test]
    fn munmap_ends_regions_and_reuse_makes_a_new_one() {
        let mut regions = tracker();
        regions.on_syscall(&mmap(1, 0x10000, 20000, 0x22), false);
        let munmap = SyscallCall {
            syscall: Syscall::Munmap,
            args: [0x10000, 20480, 0, 0, 0, 0],
            ret: 0,
            ..mmap(1, 0, 0, 0)
        };
        assert_eq!(regions.on_syscall(&munmap, false), [RegionChange::Ended(0)]);
        assert!(regions.find(1, 0x10000).is_none());
        regions.on_syscall(&mmap(1, 0x10000, 20000, 0x22), false);
        assert_eq!(&*regions.find(1, 0x10000).unwrap().region.name, "mmap#2");
        assert!(!regions.get(0).live);
    }

    #[test]
    fn heap_blocks_at_least_min_block_are_regions_until_freed() {
        let mut regions = tracker();
        assert!(
            regions
                .on_heap(&heap(HeapFunction::Malloc, [100, 0], 0x5000))
                .is_empty()
        );
        regions.on_heap(&heap(HeapFunction::Malloc, [20000, 0], 0x6010));
        regions.on_heap(&heap(HeapFunction::Calloc, [10, 1000], 0xb010));
        assert_eq!(
            &*regions.find(1, 0x6010 + 6000).unwrap().region.name,
            "malloc#1"
        );
        assert_eq!(regions.find(1, 0xb010).unwrap().region.len, 10000);
        assert_eq!(
            regions.on_heap(&heap(HeapFunction::Free, [0x6010, 0], 0)),
            [RegionChange::Ended(0)]
        );
        let grown = regions.on_heap(&heap(HeapFunction::Realloc, [0xb010, 30000], 0x20010));
        assert_eq!(grown, [RegionChange::Ended(1), RegionChange::Started(2)]);
        assert_eq!(&*regions.get(2).region.name, "realloc#1");
    }

    #[test]
    fn auto_off_tracks_only_manual_regions() {
        let mut regions = RegionTracker::new(false, 4096, 1, 4096);
        assert!(
            regions
                .on_syscall(&mmap(1, 0x10000, 20000, 0x22), false)
                .is_empty()
        );
        regions.add_manual(1, 0x10000, 100);
        assert_eq!(&*regions.find(1, 0x10063).unwrap().region.name, "manual#1");
    }

    #[test]
    fn region_specs_are_checked() {
        assert_eq!(parse_region_spec("0x1000:20000"), Ok((0x1000, 20000)));
        assert_eq!(parse_region_spec("4096:0x10"), Ok((4096, 16)));
        for bad in ["0x1000", "zz:1", "1:zz", "0xffffffffffffffff:2"] {
            assert_eq!(
                parse_region_spec(bad),
                Err(RegionSpecError::Malformed(bad.to_owned()))
            );
        }
        assert_eq!(
            parse_region_spec("0x1000:0"),
            Err(RegionSpecError::Empty("0x1000:0".to_owned()))
        );
        let overlap = parse_region_specs(&["0x1000:100".to_owned(), "0x1050:10".to_owned()]);
        assert_eq!(
            overlap,
            Err(RegionSpecError::Overlap(
                "0x1050:10".to_owned(),
                "0x1000:100".to_owned()
            ))
        );
        assert!(parse_region_specs(&["0x1000:100".to_owned(), "0x1064:10".to_owned()]).is_ok());
    }
}
