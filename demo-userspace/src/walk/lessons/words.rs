//! What the lessons' explanations share: page lists read as runs, a VMA's smaps, the step's
//! faults in the region and its copies on write, and what faults took.

use super::Durations;
use crate::{
    kernel::procmem::VmaUsage, model::access::Access, model::classify::FaultClass,
    trace::session::TracedFault, walk::fault_time::FaultTime, walk::step_report::StepReport,
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

/// What faults took, to follow their subject (`the major fault`, `these 512 faults`): `took
/// 1.9 ms`, `took 610 µs in all (812 ns to 12 µs each)`. Faults without a measured duration are
/// said apart, never guessed: an error fault never completes, and a fault whose completion was
/// not seen has no duration.
pub fn took(time: FaultTime, durations: Durations) -> String {
    let unmeasured = time.faults - time.timed;
    let mut said = match (time.timed, time.shortest_ns, time.longest_ns) {
        (0, _, _) if time.errors == time.faults => {
            return "never completed, so no duration was measured".to_owned();
        }
        (0, _, _) => return "took a time not measured: no completion was seen".to_owned(),
        (1, _, _) => format!("took {}", durations(time.total_ns)),
        (_, Some(shortest), Some(longest)) if durations(shortest) != durations(longest) => format!(
            "took {} in all ({} to {} each)",
            durations(time.total_ns),
            durations(shortest),
            durations(longest)
        ),
        _ => format!(
            "took {} in all ({} each)",
            durations(time.total_ns),
            durations(time.longest_ns.unwrap_or_default())
        ),
    };
    if unmeasured > 0 {
        said += &format!("; {unmeasured} more have no measured duration");
    }
    said
}

/// `70%`: the share `part` is of `whole`, rounded; 0% of nothing.
pub fn share(part: u64, whole: u64) -> String {
    let percent = if whole == 0 {
        0
    } else {
        (u128::from(part) * 100 + u128::from(whole) / 2) / u128::from(whole)
    };
    format!("{percent}%")
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

    /// Nanoseconds as they are, so the sentences' shape is checked apart from the formatter.
    fn ns(ns: u64) -> String {
        format!("{ns} ns")
    }

    #[test]
    fn what_faults_took_says_the_unmeasured_apart() {
        let time = |timed, errors, faults| FaultTime {
            faults,
            timed,
            errors,
            total_ns: 30,
            shortest_ns: (timed > 0).then_some(10),
            longest_ns: (timed > 0).then_some(if timed > 1 { 20 } else { 10 }),
            ..FaultTime::default()
        };
        assert_eq!(took(time(1, 0, 1), ns), "took 30 ns");
        assert_eq!(
            took(time(2, 0, 2), ns),
            "took 30 ns in all (10 ns to 20 ns each)"
        );
        assert_eq!(
            took(time(2, 1, 4), ns),
            "took 30 ns in all (10 ns to 20 ns each); 2 more have no measured duration"
        );
        assert_eq!(
            took(time(0, 2, 2), ns),
            "never completed, so no duration was measured"
        );
        assert_eq!(
            took(time(0, 0, 1), ns),
            "took a time not measured: no completion was seen"
        );
        assert_eq!(share(1_700_000, 1_900_000), "89%");
        assert_eq!(share(0, 0), "0%");
    }
}
