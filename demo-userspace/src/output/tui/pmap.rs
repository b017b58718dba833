//! The whole process as `pmap -x` sums it, a row per mapping name, from the smaps the walk read:
//! the lab's first screen, before the array exists, and after each step with the array's row.

use crate::{
    kernel::procmem::VmaUsage,
    model::region::Region,
    output::{code::base_name, escape::escape},
};

/// One row of the table: the VMAs of one mapping name, summed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PmapRow {
    /// The file's name without its directory, `[heap]`, `[stack]`, `[anon]`, or the array's
    /// name and the mapping that holds it.
    pub name: String,
    pub size_kib: u64,
    pub rss_kib: u64,
    pub dirty_kib: u64,
    /// How many VMAs the row sums.
    pub vmas: usize,
    /// The row holds the walk's array.
    pub array: bool,
}

impl PmapRow {
    fn add(&mut self, vma: &VmaUsage) {
        self.size_kib += vma.size_kib;
        self.rss_kib += vma.rss_kib;
        self.dirty_kib += vma.dirty_kib;
        self.vmas += 1;
    }
}

/// The table: its rows in address order and the total of every VMA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pmap {
    pub rows: Vec<PmapRow>,
    pub total: PmapRow,
}

/// Sums `vmas` (smaps, in address order) by mapping name, in the order the names first
/// appear; the VMAs that hold `region`'s bytes are a row of their own.
pub fn summed(vmas: &[VmaUsage], region: Option<&Region>) -> Pmap {
    let mut rows: Vec<PmapRow> = Vec::new();
    let mut total = PmapRow {
        name: "total".to_owned(),
        ..PmapRow::default()
    };
    for vma in vmas {
        total.add(vma);
        let base = escape(base_name(&vma.name)).into_owned();
        let array = region
            .is_some_and(|region| vma.start < region.start + region.len && region.start < vma.end);
        let name = match region.filter(|_| array) {
            Some(region) => format!("{} in {base}", region.name),
            None => base,
        };
        match rows.iter_mut().find(|row| row.name == name) {
            Some(row) => row.add(vma),
            None => {
                let mut row = PmapRow {
                    name,
                    array,
                    ..PmapRow::default()
                };
                row.add(vma);
                rows.push(row);
            }
        }
    }
    Pmap { rows, total }
}

impl Pmap {
    /// At most `room` rows for a pane: the array's, the program's own file (the first file
    /// mapped), `[heap]`, libc, `[stack]`, the dynamic loader, then the most resident; the
    /// rest summed into one `N more` row. Kept rows stay in address order.
    pub fn fitted(&self, room: usize) -> Vec<PmapRow> {
        if self.rows.len() <= room {
            return self.rows.clone();
        }
        let keep = room.saturating_sub(1);
        let binary = self.rows.iter().position(|row| !row.name.starts_with('['));
        let rank = |index: usize, row: &PmapRow| -> (u8, std::cmp::Reverse<u64>) {
            let class = if row.array {
                0
            } else if Some(index) == binary {
                1
            } else if row.name == "[heap]" {
                2
            } else if row.name.starts_with("libc.") || row.name.starts_with("libc-") {
                3
            } else if row.name == "[stack]" {
                4
            } else if row.name.starts_with("ld-") {
                5
            } else {
                6
            };
            (class, std::cmp::Reverse(row.rss_kib))
        };
        let mut order: Vec<usize> = (0..self.rows.len()).collect();
        order.sort_by_key(|&index| rank(index, &self.rows[index]));
        let mut kept: Vec<usize> = order[..keep.min(order.len())].to_vec();
        kept.sort_unstable();
        let mut rows: Vec<PmapRow> = kept.iter().map(|&index| self.rows[index].clone()).collect();
        let mut rest = PmapRow::default();
        for (index, row) in self.rows.iter().enumerate() {
            if !kept.contains(&index) {
                rest.size_kib += row.size_kib;
                rest.rss_kib += row.rss_kib;
                rest.dirty_kib += row.dirty_kib;
                rest.vmas += row.vmas;
            }
        }
        let folded = self.rows.len() - kept.len();
        rest.name = format!("{folded} more");
        rows.push(rest);
        rows
    }
}
