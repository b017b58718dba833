//! Turns two snapshots of per-process counters into one interval's ranked rows.

use std::collections::HashMap;

use crate::kernel::probes::ProcessCounts;
use demo_common::top_kind;

/// What `demo top` sorts by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    /// Faults per second in the last interval.
    #[default]
    Rate,
    /// Faults since demo top started.
    Total,
    /// Major faults since demo top started.
    Major,
}

/// One process in one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub pid: u32,
    pub comm: String,
    /// Faults since demo top started (or the process did).
    pub faults: u64,
    /// Faults in this interval.
    pub interval_faults: u64,
    /// Faults per second in this interval.
    pub rate: f64,
    /// The kernel's own minor and major fault counts since demo top started (or the process
    /// did); `None` when they could not be read.
    pub minor: Option<u64>,
    pub major: Option<u64>,
    /// Share of writes among all faults, in percent; `None` when only the kernel's counters
    /// were read (`--counters-only`).
    pub write_pct: Option<f64>,
    /// Share of kernel-mode faults, in percent; `None` likewise.
    pub kernel_pct: Option<f64>,
    /// The process exited during the interval; it is counted now and then forgotten.
    pub exited: bool,
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// Ranks every process with faults in `now` by `sort`, using `before` (the last interval's
/// snapshot) for the interval's share. `alive` says whether a process still exists.
pub fn rank(
    now: &[(u32, ProcessCounts)],
    before: &HashMap<u32, u64>,
    seconds: f64,
    sort: SortKey,
    alive: impl Fn(u32) -> bool,
) -> Vec<Row> {
    let mut rows: Vec<Row> = now
        .iter()
        .map(|(pid, process)| {
            let counts = &process.counts;
            let interval_faults =
                counts.faults - before.get(pid).copied().unwrap_or(0).min(counts.faults);
            Row {
                pid: *pid,
                comm: process.comm.clone(),
                faults: counts.faults,
                interval_faults,
                rate: if seconds > 0.0 {
                    (interval_faults as f64 / seconds * 10.0).round() / 10.0
                } else {
                    0.0
                },
                minor: process.accounted.map(|a| a.minor),
                major: process.accounted.map(|a| a.major),
                write_pct: process
                    .split
                    .then(|| percent(counts.of_access(top_kind::WRITE), counts.faults)),
                kernel_pct: process
                    .split
                    .then(|| percent(counts.kernel_mode(), counts.faults)),
                exited: !alive(*pid),
            }
        })
        .collect();
    sort_rows(&mut rows, sort);
    rows
}

/// Sorts rows by `sort`, highest first; ties go to more faults, then the lower pid.
pub fn sort_rows(rows: &mut [Row], sort: SortKey) {
    let key = |row: &Row| match sort {
        SortKey::Rate => row.interval_faults,
        SortKey::Total => row.faults,
        SortKey::Major => row.major.unwrap_or(0),
    };
    rows.sort_by(|a, b| {
        key(b)
            .cmp(&key(a))
            .then(b.faults.cmp(&a.faults))
            .then(a.pid.cmp(&b.pid))
    });
}

#[cfg(test)]
mod tests {
    use demo_common::TopCounts;

    use super::*;

    fn process(faults: u64, writes: u64, kernel: u64, major: u64) -> ProcessCounts {
        let kernel_writes = kernel.min(writes);
        let kernel_reads = kernel - kernel_writes;
        ProcessCounts {
            // The kernel-mode faults are writes as far as there are writes, then reads.
            counts: TopCounts {
                faults,
                by_kind: [
                    [faults - writes - kernel_reads, writes - kernel_writes, 0],
                    [kernel_reads, kernel_writes, 0],
                ],
                ..TopCounts::default()
            },
            split: true,
            comm: "p".to_owned(),
            accounted: Some(demo_common::FaultCounters {
                minor: faults - major,
                major,
            }),
        }
    }

    #[test]
    fn ranks_by_interval_rate_total_or_major() {
        let now = vec![
            (1, process(1000, 500, 0, 0)),
            (2, process(300, 300, 30, 7)),
            (3, process(50, 0, 0, 1)),
        ];
        let before = HashMap::from([(1, 990), (2, 100)]);
        let pids = |sort| -> Vec<u32> {
            rank(&now, &before, 2.0, sort, |_| true)
                .iter()
                .map(|r| r.pid)
                .collect()
        };
        assert_eq!(pids(SortKey::Rate), [2, 3, 1]);
        assert_eq!(pids(SortKey::Total), [1, 2, 3]);
        assert_eq!(pids(SortKey::Major), [2, 3, 1]);
        let rows = rank(&now, &before, 2.0, SortKey::Rate, |pid| pid != 3);
        assert_eq!((rows[0].interval_faults, rows[0].rate), (200, 100.0));
        assert_eq!(
            (rows[0].write_pct, rows[0].kernel_pct),
            (Some(100.0), Some(10.0))
        );
        assert!(rows[1].exited);
    }

    #[test]
    fn a_reused_pid_with_fewer_faults_does_not_underflow() {
        let now = vec![(1, process(5, 0, 0, 0))];
        let before = HashMap::from([(1, 90)]);
        assert_eq!(
            rank(&now, &before, 1.0, SortKey::Rate, |_| true)[0].interval_faults,
            0
        );
    }

    #[test]
    fn without_the_per_fault_split_the_shares_are_unknown() {
        let mut counters_only = process(50, 0, 0, 1);
        counters_only.split = false;
        let rows = rank(
            &[(1, counters_only)],
            &HashMap::new(),
            1.0,
            SortKey::Rate,
            |_| true,
        );
        assert_eq!((rows[0].write_pct, rows[0].kernel_pct), (None, None));
        assert_eq!((rows[0].faults, rows[0].major), (50, Some(1)));
    }
}
