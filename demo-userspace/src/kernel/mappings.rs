//! A process's mappings as a trace keeps them: the file mappings the kernel side captured when
//! they were made (mmap, exec), which are facts; around them, what /proc/PID/maps said, read
//! whole once, then kept by the traced memory syscalls, and asked of the kernel one VMA at a
//! time where those changed them (through a [`MappingSource`]).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use demo_common::Syscall;

use super::procmem::{self, ProcMemError, mapping_name};
use crate::model::{events::MappedFile, syscalls::SyscallCall};

/// One line of /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// Permissions as maps shows them, e.g. `rw-p`.
    pub perms: String,
    /// The name pmap would show: a file's base name, `[heap]`, `[stack]`, or `[anon]`;
    /// shared, since every fault in the mapping carries it.
    pub name: Arc<str>,
    /// Offset of `start` in the mapped file (0 for anonymous memory).
    pub file_offset: u64,
    /// Captured by the kernel side when it was made: a fact of that moment, which no later
    /// read of /proc replaces.
    pub captured: bool,
}

impl Mapping {
    /// A mapping of `name` from its start (file offset 0), as the kernel described it.
    #[cfg(test)]
    pub(crate) fn at(start: u64, end: u64, perms: &str, name: &str) -> Self {
        Self {
            start,
            end,
            perms: perms.to_owned(),
            name: name.into(),
            file_offset: 0,
            captured: false,
        }
    }

    /// The offset of `address` in what is mapped, as perf's `dso@offset` shows it.
    pub fn offset_of(&self, address: u64) -> u64 {
        address - self.start + self.file_offset
    }
}

/// A process's mappings, used to name the mapping behind each fault: the captured file
/// mappings ([`Self::capture`]), and around them what /proc/PID/maps said, read whole, then
/// kept up to date by the traced memory syscalls ([`Self::apply`]).
///
/// A captured mapping is named from its capture until a syscall unmaps or replaces its range;
/// the kernel is never asked about an address it holds, and what the kernel says of a range
/// fills only the gaps between captured mappings. So an address unmapped and mapped again
/// before the trace reads its faults keeps each mapping's own name.
///
/// A syscall's record does not say what the kernel made of its range: a new mapping merges with
/// a neighbour of the same kind, an mprotect splits one, and an anonymous mapping's offset
/// counts from the start of its VMA, wherever a merge or a split put it. So the table does not
/// guess: it marks the range, and the mappings that touch it, stale, and the next lookup in a
/// stale range asks the kernel for that one VMA ([`Self::refresh`]). Only what a record says in
/// full is applied in place: munmap removes its range. The cost of a change is then one query
/// of one VMA, not a parse of every line of a maps file that grows with the process.
#[derive(Clone, Debug, Default)]
pub struct MappingTable {
    /// The mappings by start address; no two overlap.
    mappings: BTreeMap<u64, Mapping>,
    /// Ranges a syscall changed since the kernel last described them, start → end; disjoint,
    /// and no two touch.
    stale: BTreeMap<u64, u64>,
    /// Nothing in the table holds any more (an exec): the next lookup reads the maps whole.
    all_stale: bool,
    /// The program break the last brk returned: the heap's end moves from there.
    brk: Option<u64>,
    /// The last two mappings [`Self::refresh`] found current, newest first, while nothing in
    /// the table changed: every change empties it. A fault's address and its instruction's are
    /// each looked up several times, and the tree walks were a tenth of the loader's time.
    recent: [Option<Mapping>; 2],
    /// Changes with every change of the table, and differs between any two tables made apart,
    /// so a cache built from a table (an unwinder's modules) is checked with one comparison.
    version: TableVersion,
}

/// A number no other table's contents had: taken from one counter at every change and for
/// every new table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TableVersion(u64);

impl TableVersion {
    fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        Self(COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

impl Default for TableVersion {
    fn default() -> Self {
        Self::next()
    }
}

/// Looks up addresses one after another, most of them in the mapping of the one before, as a
/// stack's frames are: the last mapping found is tried before the table.
pub struct Finder<'m> {
    maps: &'m MappingTable,
    last: Option<&'m Mapping>,
}

impl<'m> Finder<'m> {
    /// The mapping that holds `address`, as [`MappingTable::find`] says.
    pub fn find(&mut self, address: u64) -> Option<&'m Mapping> {
        if let Some(last) = self.last
            && last.start <= address
            && address < last.end
        {
            return Some(last);
        }
        let found = self.maps.find(address);
        if found.is_some() {
            self.last = found;
        }
        found
    }
}

/// How a lookup brought the table up to date at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refreshed {
    /// The table already held it.
    Current,
    /// The kernel was asked for the one VMA there (or said that nothing is mapped there).
    Queried,
    /// /proc/PID/maps was read whole.
    ReadWhole,
}

/// The x86-64 page size, the unit every range of a memory syscall is counted in.
const PAGE: u64 = 4096;

/// The one name of a mapping that cannot be known: no mapping the process had when its fault
/// was read (or, once it was gone, that the trace saw) holds the address.
pub const UNKNOWN_MAPPING: &str = "[unknown]";

fn page_down(address: u64) -> u64 {
    address & !(PAGE - 1)
}

/// The end of `len` bytes from `start`, rounded up to a page as the kernel rounds a length.
fn range_end(start: u64, len: u64) -> u64 {
    start.saturating_add(len).saturating_add(PAGE - 1) & !(PAGE - 1)
}

/// madvise advice that never changes a VMA's flags, so never splits or merges one; any other
/// (MADV_HUGEPAGE, MADV_DONTFORK, MADV_SEQUENTIAL, …) may.
fn keeps_vmas(advice: u64) -> bool {
    matches!(
        advice as i32,
        libc::MADV_WILLNEED
            | libc::MADV_DONTNEED
            | libc::MADV_FREE
            | libc::MADV_REMOVE
            | libc::MADV_COLD
            | libc::MADV_PAGEOUT
            | libc::MADV_POPULATE_READ
            | libc::MADV_POPULATE_WRITE
            | libc::MADV_HWPOISON
            // MADV_SOFT_OFFLINE, which the libc crate names on some targets only.
            | 101
    )
}

impl MappingTable {
    pub fn read(pid: i32) -> Result<Self, ProcMemError> {
        let maps = procmem::maps(pid)?;
        Ok(Self::from_mappings(
            maps.into_iter().map(|map| to_mapping(&map)),
        ))
    }

    /// A table that holds exactly `mappings` (which must not overlap).
    pub fn from_mappings(mappings: impl IntoIterator<Item = Mapping>) -> Self {
        Self {
            mappings: mappings.into_iter().map(|m| (m.start, m)).collect(),
            ..Self::default()
        }
    }

    /// The mapping that holds `address`, if any, as the table last learnt it.
    pub fn find(&self, address: u64) -> Option<&Mapping> {
        if let Some(hit) = self.recent_hit(address) {
            return Some(hit);
        }
        self.mappings
            .range(..=address)
            .next_back()
            .map(|(_, mapping)| mapping)
            .filter(|mapping| address < mapping.end)
    }

    /// A finder for addresses looked up one after another (see [`Finder`]).
    pub fn finder(&self) -> Finder<'_> {
        Finder {
            maps: self,
            last: None,
        }
    }

    /// The name of the mapping that holds `address`, or [`UNKNOWN_MAPPING`].
    pub fn name_of(&self, address: u64) -> Arc<str> {
        self.find(address)
            .map_or_else(|| UNKNOWN_MAPPING.into(), |m| Arc::clone(&m.name))
    }

    /// Every mapping, in address order.
    pub fn mappings(&self) -> impl Iterator<Item = &Mapping> {
        self.mappings.values()
    }

    /// The ranges a syscall changed that the kernel has not described since, in address order.
    pub fn stale_ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.stale.iter().map(|(&start, &end)| (start, end))
    }

    /// True when the table names `address` as the kernel would: it holds a mapping there and
    /// no syscall changed the range since.
    pub fn is_current(&self, address: u64) -> bool {
        !self.all_stale && !self.is_stale(address) && self.find(address).is_some()
    }

    fn is_stale(&self, address: u64) -> bool {
        self.stale
            .range(..=address)
            .next_back()
            .is_some_and(|(_, &end)| address < end)
    }

    fn recent_hit(&self, address: u64) -> Option<&Mapping> {
        self.recent
            .iter()
            .flatten()
            .find(|m| m.start <= address && address < m.end)
    }

    /// Keeps `mapping`, found current, for the next lookups.
    fn remember(&mut self, mapping: Mapping) {
        self.recent.swap(0, 1);
        self.recent[0] = Some(mapping);
    }

    /// Forgets what lookups found: the table is about to change.
    fn changing(&mut self) {
        self.recent = [None, None];
        self.version = TableVersion::next();
    }

    /// A number that changes with every change of the table: two reads that give the same
    /// version saw the same mappings.
    pub fn version(&self) -> u64 {
        self.version.0
    }

    /// Forgets everything: the process exec'd a new image, whose mappings are all new.
    pub fn invalidate(&mut self) {
        self.changing();
        self.mappings.clear();
        self.all_stale = true;
        self.brk = None;
        self.stale.clear();
    }

    /// Takes in what a completed memory syscall of the process did.
    pub fn apply(&mut self, call: &SyscallCall) {
        self.changing();
        let [first, second, third, fourth, ..] = call.args;
        let ret = call.ret as u64;
        if call.failed() {
            // A failed call may still have changed part of its range (an mprotect that stops
            // at a hole, a MAP_FIXED mmap that unmapped what was there first).
            match call.syscall {
                Syscall::Mmap if fourth & libc::MAP_FIXED as u64 != 0 => {
                    self.changed(first, range_end(first, second));
                }
                Syscall::Mremap | Syscall::Madvise | Syscall::Mprotect => {
                    self.changed(first, range_end(first, second));
                }
                _ => {}
            }
            return;
        }
        match call.syscall {
            Syscall::Mmap => {
                let end = range_end(ret, second);
                // What was mapped there is replaced (MAP_FIXED). A private anonymous mapping is
                // `[anon]` with offset 0 whatever the kernel merges it with; that is kept for a
                // fault whose record is read after the mapping is gone, when the kernel can no
                // longer be asked (see `refresh`).
                self.carve(ret, end);
                // The mapping type is the low two bits (MAP_SHARED_VALIDATE is both).
                let private = fourth & libc::MAP_SHARED_VALIDATE as u64 == libc::MAP_PRIVATE as u64;
                let kind = (libc::MAP_ANONYMOUS | libc::MAP_HUGETLB) as u64;
                if private && fourth & kind == libc::MAP_ANONYMOUS as u64 {
                    let anonymous = Mapping {
                        start: ret,
                        end,
                        perms: perms(third, false),
                        name: "[anon]".into(),
                        file_offset: 0,
                        captured: false,
                    };
                    self.mappings.insert(ret, anonymous);
                }
                self.changed(ret, end);
            }
            Syscall::Munmap => self.unmapped(first, range_end(first, second)),
            Syscall::Mremap => {
                let (old_end, new_end) = (range_end(first, second), range_end(first, third));
                // A captured file moves with its pages, at the same offsets in the file.
                let moved: Vec<Mapping> = if ret == first {
                    Vec::new()
                } else {
                    self.captured_in(page_down(first), old_end.min(new_end))
                        .map(|m| m.shifted(ret.wrapping_sub(page_down(first))))
                        .collect()
                };
                if ret != first {
                    // The mapping moved: the old range is unmapped, unless MREMAP_DONTUNMAP
                    // left it mapped and empty.
                    if fourth & libc::MREMAP_DONTUNMAP as u64 != 0 {
                        self.changed(first, old_end);
                    } else {
                        self.unmapped(first, old_end);
                    }
                } else if new_end < old_end {
                    self.unmapped(new_end, old_end);
                }
                self.changed(ret, range_end(ret, third));
                for mapping in moved {
                    self.capture(mapping);
                }
            }
            Syscall::Brk => {
                let previous = self.brk.replace(ret);
                match previous {
                    Some(previous) if previous != ret => self.changed(
                        page_down(previous.min(ret)),
                        range_end(previous.max(ret), 0),
                    ),
                    Some(_) => {}
                    // The first break seen: the heap's end was wherever the kernel had it,
                    // so the mappings at the new end are asked again (brk(0) changes nothing).
                    None if first != 0 => self.changed(page_down(ret), range_end(ret, 0)),
                    None => {}
                }
            }
            Syscall::Mprotect => self.changed(first, range_end(first, second)),
            Syscall::Madvise if !keeps_vmas(third) => {
                self.changed(first, range_end(first, second));
            }
            Syscall::Madvise | Syscall::Fadvise64 => {}
        }
    }

    /// Marks `[start, end)` stale, and the mappings that touch it: the kernel may have merged
    /// the range with a neighbour, or split a mapping across the range's edge, which moves
    /// where that VMA starts and so every offset in it.
    fn changed(&mut self, start: u64, end: u64) {
        let start = page_down(start);
        let start = start
            .checked_sub(1)
            .and_then(|before| self.find(before))
            .map_or(start, |m| m.start.min(start));
        let end = self.find(end).map_or(end, |m| m.end.max(end));
        self.mark_stale(start, end);
    }

    /// Takes `[start, end)` out of the table: nothing is mapped there now.
    fn unmapped(&mut self, start: u64, end: u64) {
        let start = page_down(start);
        self.carve(start, end);
        self.clear_stale(start, end);
    }

    /// Takes in the VMA the kernel described now, in place of whatever the table held there
    /// but the captured mappings, which it fills around.
    pub fn learn(&mut self, mapping: Mapping) {
        self.changing();
        self.clear_stale(mapping.start, mapping.end);
        let covered: Vec<(u64, u64)> = self
            .captured_in(mapping.start, mapping.end)
            .map(|m| (m.start, m.end))
            .collect();
        let mut cursor = mapping.start;
        for (start, end) in covered.into_iter().chain([(mapping.end, mapping.end)]) {
            if cursor < start {
                self.carve(cursor, start);
                let piece = Mapping {
                    end: start,
                    ..mapping.from(cursor)
                };
                self.mappings.insert(cursor, piece);
            }
            cursor = cursor.max(end);
        }
    }

    /// Takes in a mapping the kernel side captured as it was made, in place of whatever the
    /// table held there.
    pub fn capture(&mut self, mapping: Mapping) {
        self.changing();
        self.carve(mapping.start, mapping.end);
        self.clear_stale(mapping.start, mapping.end);
        let mapping = Mapping {
            captured: true,
            ..mapping
        };
        self.mappings.insert(mapping.start, mapping);
    }

    /// Takes in a file mmap the kernel side captured, when its path is known; it follows the
    /// mmap's own record, which [`Self::apply`] took in already.
    pub fn capture_file(&mut self, mapped: &MappedFile) {
        self.changing();
        let Some(path) = &mapped.file.path else {
            return;
        };
        let shared = mapped.flags & libc::MAP_SHARED_VALIDATE as u64 != libc::MAP_PRIVATE as u64;
        self.capture(Mapping {
            start: mapped.start,
            end: range_end(mapped.start, mapped.len),
            perms: perms(mapped.prot, shared),
            name: Arc::clone(path),
            file_offset: mapped.offset,
            captured: true,
        });
    }

    /// The captured mappings that overlap `[start, end)`, clipped to it, in address order.
    fn captured_in(&self, start: u64, end: u64) -> impl Iterator<Item = Mapping> + '_ {
        let first = self
            .mappings
            .range(..start)
            .next_back()
            .filter(|(_, m)| m.end > start)
            .map(|(&key, _)| key)
            .unwrap_or(start);
        self.mappings
            .range(first..end)
            .map(|(_, m)| m)
            .filter(move |m| m.captured && m.end > start)
            .map(move |m| Mapping {
                end: m.end.min(end),
                ..m.from(m.start.max(start))
            })
    }

    /// Removes `[start, end)` from the mappings. A mapping cut at `start` keeps its start, so
    /// its offsets hold; one cut at `end` starts somewhere new, and is marked stale.
    fn carve(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let mut upper = None;
        if let Some((_, below)) = self.mappings.range_mut(..start).next_back()
            && below.end > start
        {
            if below.end > end {
                upper = Some(below.from(end));
            }
            below.end = start;
        }
        let inside: Vec<u64> = self.mappings.range(start..end).map(|(&s, _)| s).collect();
        for key in inside {
            if let Some(mapping) = self.mappings.remove(&key)
                && mapping.end > end
            {
                upper = Some(mapping.from(end));
            }
        }
        if let Some(upper) = upper {
            self.mark_stale(upper.start, upper.end);
            self.mappings.insert(upper.start, upper);
        }
    }

    fn mark_stale(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut start, mut end) = (start, end);
        // Every range that overlaps or touches this one joins it.
        let joined: Vec<(u64, u64)> = self
            .stale
            .range(..=end)
            .rev()
            .take_while(|&(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in joined {
            self.stale.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.stale.insert(start, end);
    }

    fn clear_stale(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let overlapping: Vec<(u64, u64)> = self
            .stale
            .range(..end)
            .rev()
            .take_while(|&(_, &e)| e > start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in overlapping {
            self.stale.remove(&s);
            if s < start {
                self.stale.insert(s, start);
            }
            if e > end {
                self.stale.insert(end, e);
            }
        }
    }

    /// Makes the table name `address` as the kernel does now: nothing to do when it is
    /// current; the one VMA there when a syscall changed the range or the table misses it (a
    /// stack grew, or something was mapped that no traced syscall said); the whole maps after
    /// an exec, or where the kernel cannot be asked for one VMA. `source` answers for process
    /// `pid`. `None` means its maps could not be read, or showed nothing: it is gone, or has
    /// exited and is not reaped yet.
    pub fn refresh<S: MappingSource + ?Sized>(
        &mut self,
        source: &mut S,
        pid: u32,
        address: u64,
    ) -> Option<Refreshed> {
        if self.recent_hit(address).is_some() {
            return Some(Refreshed::Current);
        }
        if let Some(current) = self
            .find(address)
            .filter(|m| m.captured || (!self.all_stale && !self.is_stale(address)))
        {
            self.remember(current.clone());
            return Some(Refreshed::Current);
        }
        if !self.all_stale && !self.mappings.is_empty() {
            match source.query_mapping(pid, address) {
                Query::Found(mapping) => {
                    self.learn(mapping);
                    return Some(Refreshed::Queried);
                }
                // Unmapped by a syscall whose record is still to come: what the records so far
                // say is the best there is, and it stays stale.
                Query::Unmapped => return Some(Refreshed::Queried),
                // An exec the trace has not seen yet, or the process is gone: the whole read
                // below tells which.
                Query::Gone | Query::Failed => {}
            }
        }
        let (brk, captured) = (self.brk, self.captured_in(0, u64::MAX).collect::<Vec<_>>());
        // A process that has exited but is not reaped yet shows no mappings at all: that is
        // no answer, and must not replace what the table knows.
        *self = source
            .read_mappings(pid)
            .filter(|read| !read.mappings.is_empty())?;
        self.brk = brk;
        for mapping in captured {
            self.capture(mapping);
        }
        Some(Refreshed::ReadWhole)
    }
}

/// Where a [`MappingTable`] learns what the kernel says of a process's mappings: the live
/// /proc files, or a fake of them in tests.
pub trait MappingSource {
    /// The VMA of process `pid` that holds `address` now.
    fn query_mapping(&mut self, pid: u32, address: u64) -> Query;
    /// Every mapping of process `pid` now, read whole; `None` once it is gone.
    fn read_mappings(&mut self, pid: u32) -> Option<MappingTable>;
    /// Process `pid`'s address space ended (an exec, or its exit): nothing held open on it
    /// applies any more.
    fn address_space_ended(&mut self, pid: u32);
}

impl Mapping {
    /// The same mapping moved by `delta` bytes (wrapping), as mremap moves one.
    fn shifted(&self, delta: u64) -> Mapping {
        Mapping {
            start: self.start.wrapping_add(delta),
            end: self.end.wrapping_add(delta),
            ..self.clone()
        }
    }

    /// The part of this mapping from `start` on, as a split there leaves it: a file mapping's
    /// offset moves with its start; memory without a file (named `[…]` or nothing) shows 0.
    fn from(&self, start: u64) -> Mapping {
        let file = self.name.starts_with('/');
        Mapping {
            start,
            file_offset: if file {
                self.file_offset + (start - self.start)
            } else {
                self.file_offset
            },
            ..self.clone()
        }
    }
}

/// What the kernel said of one address.
#[derive(Debug)]
pub enum Query {
    /// The VMA that holds it, as /proc/PID/maps would show it.
    Found(Mapping),
    /// No VMA holds it.
    Unmapped,
    /// The address space the file was opened on is gone (an exec, or the process's exit).
    Gone,
    /// The kernel could not answer (no PROCMAP_QUERY, or a name longer than PATH_MAX).
    Failed,
}

/// Permissions as /proc/PID/maps shows them, from PROT_* bits.
pub(super) fn perms(prot: u64, shared: bool) -> String {
    let flag = |bit: i32, letter: char| {
        if prot & bit as u64 != 0 { letter } else { '-' }
    };
    [
        flag(libc::PROT_READ, 'r'),
        flag(libc::PROT_WRITE, 'w'),
        flag(libc::PROT_EXEC, 'x'),
        if shared { 's' } else { 'p' },
    ]
    .into_iter()
    .collect()
}

fn to_mapping(map: &procfs::process::MemoryMap) -> Mapping {
    Mapping {
        start: map.address.0,
        end: map.address.1,
        perms: map.perms.as_str(),
        name: mapping_name(&map.pathname).into(),
        file_offset: map.offset,
        captured: false,
    }
}

#[cfg(test)]
mod tests {
    //! The table kept by syscalls: fixed syscall sequences against fixed mappings, and real
    //! syscalls of this process against what /proc/PID/maps says after each.

    use super::*;
    use crate::kernel::procmap_query::ProcMaps;

    #[test]
    fn names_the_mapping_of_own_code_by_its_file() {
        let table = MappingTable::read(std::process::id() as i32).unwrap();
        let code = names_the_mapping_of_own_code_by_its_file as fn() as usize as u64;
        let exe = std::env::current_exe().unwrap();
        assert_eq!(&*table.name_of(code), exe.display().to_string());
        assert_eq!(&*table.name_of(8), UNKNOWN_MAPPING);
    }

    const P: u64 = PAGE;

    fn call(syscall: Syscall, args: &[u64], ret: i64) -> SyscallCall {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        SyscallCall {
            pid: 1,
            tid: 1,
            syscall,
            args: all,
            ret,
            timestamp_ns: 0,
            duration_ns: 0,
        }
    }

    fn mapping(start: u64, end: u64, name: &str, file_offset: u64) -> Mapping {
        Mapping {
            start,
            end,
            perms: "rw-p".to_owned(),
            name: name.into(),
            file_offset,
            captured: false,
        }
    }

    fn table() -> MappingTable {
        // A file at 0x10000, a gap, anonymous memory at 0x20000, a gap, the heap at 0x30000.
        MappingTable::from_mappings([
            mapping(0x10000, 0x14000, "/lib/x.so", 0x2000),
            mapping(0x20000, 0x24000, "[anon]", 0),
            mapping(0x30000, 0x31000, "[heap]", 0),
        ])
    }

    fn stale(table: &MappingTable) -> Vec<(u64, u64)> {
        table.stale_ranges().collect()
    }

    fn spans(table: &MappingTable) -> Vec<(u64, u64, String, u64)> {
        table
            .mappings()
            .map(|m| (m.start, m.end, m.name.to_string(), m.file_offset))
            .collect()
    }

    const ANON: u64 = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;

    #[test]
    fn an_mmap_in_a_gap_is_stale_over_its_pages_only() {
        let mut table = table();
        table.apply(&call(
            Syscall::Mmap,
            &[0, 5000, 3, ANON, u64::MAX, 0],
            0x40000,
        ));
        assert_eq!(stale(&table), [(0x40000, 0x42000)]);
        // What the record says for sure is kept: anonymous, private, offset 0 at its start.
        let new = table.find(0x41fff).unwrap();
        assert_eq!(
            (&*new.name, &*new.perms, new.start),
            ("[anon]", "rw-p", 0x40000)
        );
        // A file's name is not in the record.
        let shared = libc::MAP_SHARED as u64;
        table.apply(&call(Syscall::Mmap, &[0, P, 1, shared, 3, 0], 0x60000));
        assert!(table.find(0x60000).is_none());
        assert!(!table.is_current(0x41fff));
        assert!(table.is_current(0x20000));
        assert!(table.is_current(0x13fff));
    }

    #[test]
    fn an_mmap_beside_a_mapping_makes_the_neighbour_stale_too() {
        let mut table = table();
        // Below the anonymous mapping: the kernel may merge the two, moving its start.
        table.apply(&call(
            Syscall::Mmap,
            &[0, 2 * P, 3, ANON, u64::MAX, 0],
            0x1e000,
        ));
        assert_eq!(stale(&table), [(0x1e000, 0x24000)]);
        // Above the file: the same at its end; the two stale ranges touch and are one.
        table.apply(&call(
            Syscall::Mmap,
            &[0, 0xa000, 3, ANON, u64::MAX, 0],
            0x14000,
        ));
        assert_eq!(stale(&table), [(0x10000, 0x24000)]);
        assert!(table.is_current(0x30000));
    }

    #[test]
    fn an_mprotect_inside_a_mapping_makes_the_whole_mapping_stale() {
        let mut table = table();
        table.apply(&call(Syscall::Mprotect, &[0x21000, P, 1], 0));
        assert_eq!(stale(&table), [(0x20000, 0x24000)]);
    }

    #[test]
    fn munmap_cuts_the_range_out_and_a_moved_start_is_stale() {
        let mut table = table();
        table.apply(&call(Syscall::Munmap, &[0x11000, P + 1], 0));
        // The part below keeps its start and offset; the part above starts anew.
        assert_eq!(
            spans(&table)[..2],
            [
                (0x10000, 0x11000, "/lib/x.so".to_owned(), 0x2000),
                (0x13000, 0x14000, "/lib/x.so".to_owned(), 0x5000),
            ]
        );
        assert_eq!(stale(&table), [(0x13000, 0x14000)]);
        assert!(table.is_current(0x10fff));
        assert!(table.find(0x11000).is_none() && table.find(0x12fff).is_none());
        // Unmapping a stale range leaves nothing stale there.
        table.apply(&call(Syscall::Munmap, &[0x13000, P], 0));
        assert_eq!(stale(&table), []);
        assert_eq!(spans(&table).len(), 3);
    }

    #[test]
    fn learning_a_vma_replaces_what_it_covers_and_clears_its_staleness() {
        let mut table = table();
        table.apply(&call(
            Syscall::Mmap,
            &[0, 2 * P, 3, ANON, u64::MAX, 0],
            0x1e000,
        ));
        // The kernel merged the new pages with the mapping above them.
        table.learn(mapping(0x1e000, 0x24000, "[anon]", 0));
        assert_eq!(stale(&table), []);
        let merged = table.find(0x20000).unwrap();
        assert_eq!((merged.start, merged.offset_of(0x20000)), (0x1e000, 0x2000));
        assert_eq!(spans(&table).len(), 3);
    }

    #[test]
    fn a_moving_mremap_unmaps_the_old_range_and_makes_the_new_one_stale() {
        let mut table = table();
        let maymove = libc::MREMAP_MAYMOVE as u64;
        table.apply(&call(
            Syscall::Mremap,
            &[0x20000, 4 * P, 8 * P, maymove],
            0x50000,
        ));
        assert!(table.find(0x20000).is_none());
        assert_eq!(stale(&table), [(0x50000, 0x58000)]);
        // Shrinking in place unmaps the tail.
        let mut table = self::table();
        table.apply(&call(Syscall::Mremap, &[0x20000, 4 * P, P, 0], 0x20000));
        assert_eq!(table.find(0x20000).unwrap().end, 0x21000);
        assert!(table.find(0x21000).is_none());
    }

    #[test]
    fn brk_makes_the_heap_stale_where_its_end_moved() {
        let mut table = table();
        // brk(0) only asks.
        table.apply(&call(Syscall::Brk, &[0], 0x31000));
        assert_eq!(stale(&table), []);
        table.apply(&call(Syscall::Brk, &[0x52000], 0x52000));
        assert_eq!(stale(&table), [(0x30000, 0x52000)]);
        let mut table = self::table();
        // A first break that is not brk(0): the heap's old end is unknown.
        table.apply(&call(Syscall::Brk, &[0x30800], 0x30800));
        assert_eq!(stale(&table), [(0x30000, 0x31000)]);
    }

    #[test]
    fn advice_that_keeps_vmas_changes_nothing_and_other_advice_does() {
        let mut table = table();
        let dontneed = libc::MADV_DONTNEED as u64;
        table.apply(&call(Syscall::Madvise, &[0x20000, P, dontneed], 0));
        table.apply(&call(Syscall::Fadvise64, &[3, 0, P, 4], 0));
        assert_eq!(stale(&table), []);
        let huge = libc::MADV_HUGEPAGE as u64;
        table.apply(&call(Syscall::Madvise, &[0x21000, P, huge], 0));
        assert_eq!(stale(&table), [(0x20000, 0x24000)]);
    }

    #[test]
    fn a_failed_call_changes_nothing_unless_it_may_have_changed_part() {
        let mut table = table();
        table.apply(&call(
            Syscall::Mmap,
            &[0, 1 << 50, 3, ANON, u64::MAX, 0],
            -12,
        ));
        table.apply(&call(Syscall::Munmap, &[0x20000, P], -22));
        assert_eq!(stale(&table), []);
        assert!(table.is_current(0x20000));
        table.apply(&call(Syscall::Mprotect, &[0x40000, P, 3], -12));
        assert_eq!(stale(&table), [(0x40000, 0x41000)]);
    }

    #[test]
    fn an_exec_leaves_nothing_current() {
        let mut table = table();
        table.invalidate();
        assert!(!table.is_current(0x20000));
    }

    /// The name and offset /proc/PID/maps gives every page of `start..end` now.
    fn proc_view(start: u64, end: u64) -> Vec<(u64, Option<(String, u64)>)> {
        let table = MappingTable::read(std::process::id() as i32).unwrap();
        (start..end)
            .step_by(P as usize)
            .map(|page| {
                let named = table
                    .find(page)
                    .map(|m| (m.name.to_string(), m.offset_of(page)));
                (page, named)
            })
            .collect()
    }

    /// What `table`, brought up to date at each page, names it.
    fn table_view(
        table: &mut MappingTable,
        source: &mut ProcMaps,
        start: u64,
        end: u64,
    ) -> Vec<(u64, Option<(String, u64)>)> {
        let pid = std::process::id();
        (start..end)
            .step_by(P as usize)
            .map(|page| {
                let refreshed = table.refresh(source, pid, page).unwrap();
                assert_ne!(refreshed, Refreshed::ReadWhole, "page {page:#x}");
                let named = table
                    .find(page)
                    .map(|m| (m.name.to_string(), m.offset_of(page)));
                (page, named)
            })
            .collect()
    }

    /// Real syscalls in a reserved range of this process, each given to a table as its trace
    /// record would give it: after every one, the table names every page of the range, with
    /// its offset, as /proc/PID/maps does, and never reads the maps whole. The sequence makes
    /// the kernel merge and split VMAs: a thread stack's mmap and mprotect beside another's
    /// guard page, anonymous mappings that merge with the one above, a file mapping cut in
    /// two, a move.
    #[test]
    fn the_table_kept_by_syscalls_names_every_page_as_proc_does() {
        let pid = std::process::id() as i32;
        let pages = 64;
        let none = libc::PROT_NONE;
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let anon = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        // SAFETY: a fresh mapping the kernel places; nothing else uses it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                (pages * P) as usize,
                none,
                anon,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let base = base as u64;
        // The first and last pages stay as they are: only what lies between is compared, so a
        // neighbour of the reservation outside this test cannot matter.
        let (start, end) = (base + P, base + (pages - 1) * P);
        let mut table = MappingTable::read(pid).unwrap();
        let mut file = ProcMaps::default();
        let exe = std::fs::File::open(std::env::current_exe().unwrap()).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&exe);

        let check =
            |table: &mut MappingTable, file: &mut ProcMaps, call: SyscallCall, what: &str| {
                assert!(!call.failed(), "{what}: {}", call.ret);
                table.apply(&call);
                let ours = table_view(table, file, start, end);
                assert_eq!(ours, proc_view(start, end), "after {what}");
            };
        let mmap = |address: u64, len: u64, prot: i32, flags: i32, fd: i32, offset: u64| {
            // SAFETY: MAP_FIXED inside the reservation, which this test alone uses.
            let ret = unsafe {
                libc::mmap(
                    address as *mut _,
                    len as usize,
                    prot,
                    flags | libc::MAP_FIXED,
                    fd,
                    offset as i64,
                )
            };
            let args = [
                address,
                len,
                prot as u64,
                (flags | libc::MAP_FIXED) as u64,
                fd as u64,
                offset,
            ];
            call(Syscall::Mmap, &args, ret as i64)
        };
        let mprotect = |address: u64, len: u64, prot: i32| {
            // SAFETY: inside the reservation.
            let ret = unsafe { libc::mprotect(address as *mut _, len as usize, prot) };
            call(Syscall::Mprotect, &[address, len, prot as u64], ret as i64)
        };
        let munmap = |address: u64, len: u64| {
            // SAFETY: inside the reservation.
            let ret = unsafe { libc::munmap(address as *mut _, len as usize) };
            call(Syscall::Munmap, &[address, len], ret as i64)
        };
        let touch = |address: u64| {
            // SAFETY: a writable page of the reservation.
            unsafe { std::ptr::write_volatile(address as *mut u8, 1) };
        };

        // Two thread stacks as glibc makes them: PROT_NONE, then all but the guard page RW.
        // The second lies below the first, against its guard page.
        let first = base + 40 * P;
        check(
            &mut table,
            &mut file,
            mmap(first, 8 * P, none, anon, -1, 0),
            "first stack's mmap",
        );
        check(
            &mut table,
            &mut file,
            mprotect(first + P, 7 * P, rw),
            "first stack's mprotect",
        );
        touch(first + 7 * P);
        let second = first - 8 * P;
        check(
            &mut table,
            &mut file,
            mmap(second, 8 * P, none, anon, -1, 0),
            "second stack's mmap",
        );
        check(
            &mut table,
            &mut file,
            mprotect(second + P, 7 * P, rw),
            "second stack's mprotect",
        );
        touch(second + 7 * P);
        // Anonymous memory right below a written mapping of the same kind merges into it.
        let low = base + 10 * P;
        check(
            &mut table,
            &mut file,
            mmap(low, 4 * P, rw, anon, -1, 0),
            "anonymous mmap",
        );
        touch(low);
        check(
            &mut table,
            &mut file,
            mmap(low - 3 * P, 3 * P, rw, anon, -1, 0),
            "mmap below it",
        );
        // A file mapped from its second page, then cut in two.
        let mapped = base + 2 * P;
        let private = libc::MAP_PRIVATE;
        check(
            &mut table,
            &mut file,
            mmap(mapped, 5 * P, libc::PROT_READ, private, fd, P),
            "file mmap",
        );
        check(
            &mut table,
            &mut file,
            munmap(mapped + 2 * P, P),
            "munmap of its middle page",
        );
        // mprotect in the middle of the merged anonymous memory, and back.
        check(
            &mut table,
            &mut file,
            mprotect(low, P, libc::PROT_READ),
            "mprotect to read-only",
        );
        check(&mut table, &mut file, mprotect(low, P, rw), "mprotect back");
        // A move of the second stack's top into the gap above the file.
        let to = base + 20 * P;
        // SAFETY: both ranges are inside the reservation.
        let moved = unsafe {
            libc::mremap(
                (second + 6 * P) as *mut _,
                (2 * P) as usize,
                (2 * P) as usize,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                to as *mut libc::c_void,
            )
        };
        let flags = (libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED) as u64;
        let args = [second + 6 * P, 2 * P, 2 * P, flags, to];
        check(
            &mut table,
            &mut file,
            call(Syscall::Mremap, &args, moved as i64),
            "mremap",
        );
        // A mapping gone before its fault's record is read (its munmap's record still to come):
        // the kernel knows nothing there now, and the table keeps what its mmap said.
        let gone = base + 30 * P;
        table.apply(&mmap(gone, 2 * P, rw, anon, -1, 0));
        // SAFETY: inside the reservation.
        assert_eq!(unsafe { libc::munmap(gone as *mut _, (2 * P) as usize) }, 0);
        let refreshed = table.refresh(&mut file, pid as u32, gone + P).unwrap();
        assert_eq!(refreshed, Refreshed::Queried);
        let kept = table.find(gone + P).unwrap();
        assert_eq!((&*kept.name, kept.offset_of(gone + P)), ("[anon]", P));
        // SAFETY: the reservation, unmapped whole at the end.
        unsafe { libc::munmap(base as *mut _, (pages * P) as usize) };
    }
}
