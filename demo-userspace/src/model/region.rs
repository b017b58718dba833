//! The traced array: maps a faulting address to its byte offset, element index and page.

use std::sync::Arc;

use serde::Serialize;

/// A named range of the target's address space whose faults are resolved to array indices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Region {
    /// What the report calls it, e.g. `arr`; shared, since every fault in it carries it.
    pub name: Arc<str>,
    /// Address of the first byte (element 0).
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Bytes per element, so offsets become indices.
    pub elem_size: u64,
    /// The page size of the target.
    pub page_size: u64,
    /// Extra pages after the last one that still resolve to indices, so that an out-of-bounds
    /// access just past the array is shown as `arr[5121]` rather than as a stray address.
    pub pages_after: u64,
}

/// Where inside a region an address falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Location {
    /// Byte offset from the region's start; negative before element 0 (e.g. a malloc header).
    pub offset: i64,
    /// Element index (`offset / elem_size`, rounded toward minus infinity).
    pub index: i64,
    /// Page number within the region; page 0 holds element 0.
    pub page: u64,
    /// True when the byte is one of the region's own `len` bytes.
    pub in_bounds: bool,
}

impl Region {
    /// Address of the start of the page that holds element 0.
    pub fn first_page_base(&self) -> u64 {
        self.start - self.start % self.page_size
    }

    /// How many pages the region's bytes touch.
    pub fn page_count(&self) -> u64 {
        let end = self.start + self.len;
        end.div_ceil(self.page_size) - self.start / self.page_size
    }

    /// Number of elements the region holds.
    pub fn element_count(&self) -> u64 {
        self.len / self.elem_size
    }

    /// Resolves `address` when it lies on one of the region's pages (or the pages after it).
    pub fn locate(&self, address: u64) -> Option<Location> {
        let base = self.first_page_base();
        let limit = base + (self.page_count() + self.pages_after) * self.page_size;
        if address < base || address >= limit {
            return None;
        }
        let offset = address as i64 - self.start as i64;
        Some(Location {
            offset,
            index: offset.div_euclid(self.elem_size as i64),
            page: (address - base) / self.page_size,
            in_bounds: offset >= 0 && (offset as u64) < self.len,
        })
    }

    /// The first and last element index whose first byte lies on `page`, clipped to the array.
    pub fn index_range_of_page(&self, page: u64) -> (i64, i64) {
        let page_start = self.first_page_base() + page * self.page_size;
        let first = page_start.max(self.start) as i64 - self.start as i64;
        let last =
            (page_start + self.page_size).min(self.start + self.len) as i64 - self.start as i64 - 1;
        let elem = self.elem_size as i64;
        (
            first.div_euclid(elem) + i64::from(first % elem != 0),
            last.div_euclid(elem),
        )
    }
}

#[cfg(test)]
impl Region {
    /// The seed's mmap'd array, int[5000] at a page-aligned address, for tests.
    pub fn seed_array() -> Self {
        Self {
            name: "arr".into(),
            start: 0x7f00_0000_0000,
            len: 20000,
            elem_size: 4,
            page_size: 4096,
            pages_after: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mmap_array() -> Region {
        Region::seed_array()
    }

    #[test]
    fn seed_indices_land_on_the_seed_pages() {
        let region = mmap_array();
        assert_eq!(region.page_count(), 5);
        let at = |index: u64| region.locate(region.start + index * 4).unwrap();
        assert_eq!(
            (at(1500).index, at(1500).page, at(1500).offset),
            (1500, 1, 6000)
        );
        assert_eq!(at(1501).page, 1);
        assert_eq!(at(0).page, 0);
        assert_eq!(at(3000).page, 2);
        assert!(at(4999).in_bounds);
    }

    #[test]
    fn page_index_ranges_are_clipped_to_the_array() {
        let region = mmap_array();
        assert_eq!(region.index_range_of_page(0), (0, 1023));
        assert_eq!(region.index_range_of_page(1), (1024, 2047));
        assert_eq!(region.index_range_of_page(4), (4096, 4999));
    }

    #[test]
    fn unaligned_start_counts_pages_from_the_one_holding_element_zero() {
        let region = Region {
            start: 0x5555_0000_02a0,
            ..mmap_array()
        };
        assert_eq!(region.page_count(), 6);
        assert_eq!(region.index_range_of_page(0), (0, 855));
        let header = region.locate(region.start - 16).unwrap();
        assert_eq!((header.offset, header.index, header.page), (-16, -4, 0));
        assert!(!header.in_bounds);
    }

    #[test]
    fn addresses_past_the_pages_resolve_only_when_asked() {
        let region = mmap_array();
        let past = region.start + 5121 * 4;
        assert_eq!(region.locate(past), None);
        let guarded = Region {
            pages_after: 1,
            ..region
        };
        let location = guarded.locate(past).unwrap();
        assert_eq!(
            (location.index, location.page, location.in_bounds),
            (5121, 5, false)
        );
        let tail = guarded.locate(guarded.start + 5001 * 4).unwrap();
        assert_eq!((tail.page, tail.in_bounds), (4, false));
    }
}
