//! What the lessons' explanations share: page lists read as runs, a VMA's smaps, and the
//! step's faults in the region and its copies on write.

use crate::{
    kernel::procmem::VmaUsage, model::access::Access, model::classify::FaultClass,
    trace::session::TracedFault, walk::step_report::StepReport,
};

/// Formats pages as `page 3`, `pages 0 and 1`, `pages 0-7`, or `pages 0-3, 5 and 9-12`: runs
/// of three or more pages as ranges, so a huge page reads as one.
pub fn pages(list: &[u64]) -> String {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for &page in list {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == page => *end = page,
            _ => runs.push((page, page)),
        }
    }
    // Two pages in a row read better as two than as a range.
    let shown: Vec<String> = runs
        .iter()
        .flat_map(|&(first, last)| match last - first {
            0 => vec![first.to_string()],
            1 => vec![first.to_string(), last.to_string()],
            _ => vec![format!("{first}-{last}")],
        })
        .collect();
    match shown.split_last() {
        None => "no page".to_owned(),
        Some((one, [])) if list.len() == 1 => format!("page {one}"),
        Some((one, [])) => format!("pages {one}"),
        Some((last, init)) => format!("pages {} and {last}", init.join(", ")),
    }
}

/// The completed write faults of the step on present pages in the region: copies on write.
pub fn copies_on_write(step: &StepReport) -> Vec<&TracedFault> {
    step.faults
        .iter()
        .filter(|fault| {
            let code = fault.fault.fault.error_code;
            fault.region.is_some()
                && fault.fault.class != FaultClass::Error
                && code.present()
                && code.access() == Access::Write
        })
        .collect()
}

/// How many of the step's faults fell in the region.
pub fn region_faults(step: &StepReport) -> usize {
    step.faults_in_region().count()
}

/// A VMA's dirty and anonymous KiB, as smaps counts them.
pub fn smaps(vma: &VmaUsage) -> String {
    format!(
        "Shared_Dirty {} KiB, Private_Dirty {} KiB, Anonymous {} KiB",
        vma.shared_dirty_kib, vma.private_dirty_kib, vma.anonymous_kib
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_lists_read_as_runs_or_lists() {
        assert_eq!(pages(&[]), "no page");
        assert_eq!(pages(&[3]), "page 3");
        assert_eq!(pages(&[0, 1, 2, 3]), "pages 0-3");
        assert_eq!(pages(&[0, 2, 5]), "pages 0, 2 and 5");
        assert_eq!(pages(&[0, 1, 2, 3, 5, 9, 10]), "pages 0-3, 5, 9 and 10");
        assert_eq!(pages(&[4, 5]), "pages 4 and 5");
    }
}
