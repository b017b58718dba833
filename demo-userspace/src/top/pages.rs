//! `demo top --pid PID --pages`: where in one process the faults land, as ranges of consecutive
//! pages, each named by the mapping it was in when its pages faulted, and by the code that last
//! faulted on its hottest page on the CPU that faulted there most.

use std::{collections::HashMap, sync::Arc};

use crate::kernel::{
    mappings::{Mapping, MappingTable, UNKNOWN_MAPPING},
    probes::PageCount,
    symbols::{At, Code, Site, Symbols},
};

/// The x86-64 page size: the kernel side counts faults per page of it.
const PAGE: u64 = 4096;

/// Where one process faults: its hottest page ranges and mappings.
#[derive(Clone, Debug)]
pub struct PageReport {
    pub pid: u32,
    /// The hottest ranges, hottest first, at most `-n` of them.
    pub ranges: Vec<PageRange>,
    /// (mapping name, faults), hottest first.
    pub mappings: Vec<(String, u64)>,
}

/// Consecutive pages of one mapping that faulted, and what faulted there.
#[derive(Clone, Debug, PartialEq)]
pub struct PageRange {
    /// The first page's address.
    pub start: u64,
    /// How many pages, from `start`.
    pub pages: u64,
    /// Faults on them since demo top started watching.
    pub faults: u64,
    /// The faults on the range's hottest page.
    pub hottest: u64,
    /// The mapping the pages were in when they faulted, as pmap names it; [`UNKNOWN_MAPPING`]
    /// when no reading of the maps saw one there.
    pub mapping: Arc<str>,
    /// The code of the last fault on the hottest page on the CPU that faulted there most, when
    /// the kernel side caught it: the kernel side keeps one instruction per page and CPU, and
    /// which CPU faulted there last is not kept.
    pub code: Option<Arc<Code>>,
}

impl PageRange {
    /// The address after the last page.
    pub fn end(&self) -> u64 {
        self.start + self.pages * PAGE
    }
}

/// What the book knows of one page: its count when it was last named, and the mapping then.
#[derive(Clone, Debug)]
struct Known {
    faults: u64,
    mapping: Option<Mapping>,
}

/// The pages of one process as demo top has seen them, interval after interval, so that a page
/// keeps the name of the mapping it faulted in after that mapping is gone.
pub struct PageBook {
    pid: u32,
    /// The maps read at the last interval's end: what was there before this interval's faults.
    before: MappingTable,
    known: HashMap<u64, Known>,
    /// The code named at each (instruction, start of its mapping) so far. A symbolizer is not
    /// `Send` and the book lives behind demo top's lock, so one is made only for what this
    /// cache lacks; it is emptied past [`KNOWN_CODE`] entries.
    code: HashMap<(u64, Option<u64>), Arc<Code>>,
}

/// The most instructions [`PageBook`] keeps the code of.
const KNOWN_CODE: usize = 4096;

impl PageBook {
    /// Starts watching `pid`, whose maps are read now.
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            before: MappingTable::read(pid as i32).unwrap_or_default(),
            known: HashMap::new(),
            code: HashMap::new(),
        }
    }

    /// This interval's report from the kernel side's per-page counts: the first `count` ranges.
    pub fn report(&mut self, pages: &[PageCount], count: usize) -> PageReport {
        // A process that exited has no maps: what the book knew of its pages stands.
        let now = MappingTable::read(self.pid as i32).unwrap_or_default();
        let ranges = self.name(pages, &now);
        let before = std::mem::replace(&mut self.before, now);
        let mut ranges = self.ranges(ranges, &before);
        let mut mappings: HashMap<Arc<str>, u64> = HashMap::new();
        for range in &ranges {
            *mappings.entry(Arc::clone(&range.mapping)).or_default() += range.faults;
        }
        let mut mappings: Vec<(String, u64)> = mappings
            .into_iter()
            .map(|(name, faults)| (name.to_string(), faults))
            .collect();
        mappings.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranges.sort_by(|a, b| b.faults.cmp(&a.faults).then(a.start.cmp(&b.start)));
        ranges.truncate(count);
        PageReport {
            pid: self.pid,
            ranges,
            mappings,
        }
    }

    /// Each page with the mapping it faulted in, in address order. A page whose count grew
    /// since the last interval faulted between the last reading of the maps and this one: it
    /// is named from this reading, or from the last when its mapping is gone by now. A page
    /// whose count did not grow keeps its name. Pages the kernel side evicted are forgotten.
    fn name(
        &mut self,
        pages: &[PageCount],
        now: &MappingTable,
    ) -> Vec<(PageCount, Option<Mapping>)> {
        let mut known = HashMap::with_capacity(pages.len());
        let mut named: Vec<(PageCount, Option<Mapping>)> = pages
            .iter()
            .map(|page| {
                let old = self.known.remove(&page.page);
                let mapping = match old {
                    Some(old) if old.faults == page.faults => old.mapping,
                    old => now
                        .find(page.page)
                        .or_else(|| self.before.find(page.page))
                        .cloned()
                        .or_else(|| old.and_then(|old| old.mapping)),
                };
                known.insert(
                    page.page,
                    Known {
                        faults: page.faults,
                        mapping: mapping.clone(),
                    },
                );
                (*page, mapping)
            })
            .collect();
        self.known = known;
        named.sort_by_key(|(page, _)| page.page);
        named
    }

    /// Joins consecutive pages of one mapping into ranges, and names the code that faulted
    /// last on each range's hottest page, on the CPU that faulted there most.
    fn ranges(
        &mut self,
        named: Vec<(PageCount, Option<Mapping>)>,
        before: &MappingTable,
    ) -> Vec<PageRange> {
        let mut ranges: Vec<(PageRange, Option<Mapping>, Option<u64>)> = Vec::new();
        for (page, mapping) in named {
            if let Some((range, current, ip)) = ranges.last_mut()
                && range.end() == page.page
                && same_mapping(current.as_ref(), mapping.as_ref())
            {
                range.pages += 1;
                range.faults += page.faults;
                if page.faults > range.hottest {
                    range.hottest = page.faults;
                    *ip = page.ip;
                }
                continue;
            }
            let name = mapping
                .as_ref()
                .map_or_else(|| Arc::from(UNKNOWN_MAPPING), |m| Arc::clone(&m.name));
            let range = PageRange {
                start: page.page,
                pages: 1,
                faults: page.faults,
                hottest: page.faults,
                mapping: name,
                code: None,
            };
            ranges.push((range, mapping, page.ip));
        }
        if self.code.len() > KNOWN_CODE {
            self.code.clear();
        }
        let mut symbols: Option<Symbols> = None;
        ranges
            .into_iter()
            .map(|(mut range, _, ip)| {
                range.code = ip.map(|ip| {
                    let held_by = self.before.find(ip).or_else(|| before.find(ip));
                    let key = (ip, held_by.map(|mapping| mapping.start));
                    let code = self.code.entry(key).or_insert_with(|| {
                        symbols
                            .get_or_insert_with(Symbols::new)
                            .code(Site::of(ip, held_by), At::Instruction)
                    });
                    Arc::clone(code)
                });
                range
            })
            .collect()
    }
}

/// True when two pages' mappings are one: the same VMA by its start, or both unknown.
fn same_mapping(a: Option<&Mapping>, b: Option<&Mapping>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.start == b.start && a.name == b.name,
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(start: u64, end: u64, name: &str) -> Mapping {
        Mapping {
            start,
            end,
            perms: "rw-p".to_owned(),
            name: name.into(),
            file_offset: 0,
            captured: false,
        }
    }

    fn page(page: u64, faults: u64, ip: Option<u64>) -> PageCount {
        PageCount { page, faults, ip }
    }

    fn book(maps: &[Mapping]) -> PageBook {
        PageBook {
            pid: u32::MAX,
            before: MappingTable::from_mappings(maps.iter().cloned()),
            known: HashMap::new(),
            code: HashMap::new(),
        }
    }

    #[test]
    fn consecutive_pages_of_one_mapping_are_one_range() {
        let heap = mapping(0x1000, 0x9000, "[heap]");
        let anon = mapping(0x9000, 0x20000, "[anon]");
        let mut book = book(&[heap.clone(), anon.clone()]);
        let now = MappingTable::from_mappings([heap, anon]);
        let pages = [
            page(0x3000, 5, None),
            page(0x1000, 1, None),
            page(0x2000, 7, None),
            // The next VMA begins at 0x9000: a range of its own, though the pages touch.
            page(0x8000, 2, None),
            page(0x9000, 40, None),
            // A gap.
            page(0xb000, 1, None),
        ];
        let named = book.name(&pages, &now);
        let before = MappingTable::default();
        let ranges = book.ranges(named, &before);
        let summary: Vec<(u64, u64, u64, u64, &str)> = ranges
            .iter()
            .map(|r| (r.start, r.pages, r.faults, r.hottest, &*r.mapping))
            .collect();
        assert_eq!(
            summary,
            [
                (0x1000, 3, 13, 7, "[heap]"),
                (0x8000, 1, 2, 2, "[heap]"),
                (0x9000, 1, 40, 40, "[anon]"),
                (0xb000, 1, 1, 1, "[anon]"),
            ]
        );
        assert_eq!(ranges[0].end(), 0x4000);
    }

    /// A page keeps the name of the mapping it faulted in when that mapping is gone at the
    /// next reading, and when something else is mapped there later, until it faults again.
    #[test]
    fn a_page_is_named_by_the_mapping_it_faulted_in() {
        let mut book = book(&[mapping(0x10000, 0x20000, "[anon]")]);
        // It faulted, and its mapping was unmapped before the interval ended.
        let gone = MappingTable::default();
        let named = book.name(&[page(0x11000, 3, None)], &gone);
        assert_eq!(named[0].1.as_ref().map(|m| &*m.name), Some("[anon]"));
        book.before = gone;
        // A file is mapped there now; the page did not fault again: still the arena's.
        let file = MappingTable::from_mappings([mapping(0x10000, 0x20000, "/tmp/data")]);
        let named = book.name(&[page(0x11000, 3, None)], &file);
        assert_eq!(named[0].1.as_ref().map(|m| &*m.name), Some("[anon]"));
        book.before = file.clone();
        // It faulted again, in the file.
        let named = book.name(&[page(0x11000, 4, None)], &file);
        assert_eq!(named[0].1.as_ref().map(|m| &*m.name), Some("/tmp/data"));
        // A page no reading saw mapped is unknown.
        let mut book = self::book(&[]);
        let named = book.name(&[page(0x5000, 1, None)], &MappingTable::default());
        let ranges = book.ranges(named, &MappingTable::default());
        assert_eq!(&*ranges[0].mapping, UNKNOWN_MAPPING);
    }
}
