//! The steps the lessons of fixed steps share: an anonymous mapping, and a read or write of
//! one page's first int.

use crate::{
    model::access::Access,
    walk::plan::{ELEMENT_SIZE, PlannedStep, Touch},
    walk::workload::Command,
};

/// The page size the lessons are written for; the steps' texts name page numbers, and x86-64
/// pages are 4 KiB.
pub const PAGE: u64 = 4096;
/// Ints in a page, to turn a page number into an index.
pub const INTS_PER_PAGE: i64 = (PAGE / ELEMENT_SIZE) as i64;

/// `arr = mmap(...)` of `bytes`, private and anonymous.
pub fn mmap(bytes: u64) -> PlannedStep {
    PlannedStep::one(
        Command::Mmap { bytes },
        format!("arr = mmap(NULL, {bytes}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)"),
    )
}

/// A write of `value` to the first int of page `page`, as a touch the report follows.
pub fn write_page(page: u64, value: i32, array: &str) -> PlannedStep {
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

/// A read of the first int of page `page`, as a touch the report follows.
pub fn read_page(page: u64) -> PlannedStep {
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

/// `pages 0-7`: `count` pages from `first`, as a step's text names them.
pub fn page_range(first: u64, count: u64) -> String {
    format!("pages {first}-{}", first + count - 1)
}
