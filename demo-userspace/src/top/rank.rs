//! Turns two snapshots of per-process counters into one interval's ranked rows: one per
//! process, or with `--group`, one per command or cgroup.

use std::collections::HashMap;

use super::fault_time::{TimeInFaults, since};
use crate::kernel::probes::ProcessCounts;
use demo_common::{TopTimes, top_kind};

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
    /// Time in faults in the last interval (with durations).
    FaultTime,
}

/// What the last reading said of a process, for the next interval's share.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Before {
    pub faults: u64,
    pub times: Option<TopTimes>,
}

/// Whose faults a row counts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    /// One process, by the command it runs now (or ran last).
    Process { pid: u32, comm: String },
    /// The processes of one group (`--group`) that are in this interval: the living, and those
    /// that exited in it.
    Group { group: Group, processes: usize },
}

/// What `--group` sums processes by, and the name of one group.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// The processes that run one command (comm).
    Command(String),
    /// The processes in one cgroup v2, by its path.
    Cgroup(String),
}

impl Subject {
    /// The process this row counts; `None` for a group.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Self::Process { pid, .. } => Some(*pid),
            Self::Group { .. } => None,
        }
    }

    /// The name the table shows: the command, or the cgroup's path.
    pub fn name(&self) -> &str {
        match self {
            Self::Process { comm, .. }
            | Self::Group {
                group: Group::Command(comm),
                ..
            } => comm,
            Self::Group {
                group: Group::Cgroup(path),
                ..
            } => path,
        }
    }

    /// What the row's group is made by; `None` for a process.
    pub fn group_by(&self) -> Option<super::GroupBy> {
        match self {
            Self::Process { .. } => None,
            Self::Group {
                group: Group::Command(_),
                ..
            } => Some(super::GroupBy::Command),
            Self::Group {
                group: Group::Cgroup(_),
                ..
            } => Some(super::GroupBy::Cgroup),
        }
    }

    /// True when two rows count the same process or group (a group's size may differ).
    pub fn same(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Process { pid: a, .. }, Self::Process { pid: b, .. }) => a == b,
            (Self::Group { group: a, .. }, Self::Group { group: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// One process, or one group of processes, in one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub subject: Subject,
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
    /// The process exited (for a group: every process of it had), in this interval or, with
    /// `--keep-exited`, before.
    pub exited: bool,
    /// With durations, its time in faults.
    pub fault_time: Option<TimeInFaults>,
}

impl Row {
    /// The process this row counts; `None` for a group.
    pub fn pid(&self) -> Option<u32> {
        self.subject.pid()
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// One process's counts in an interval, or their sum over a group.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    faults: u64,
    interval_faults: u64,
    writes: u64,
    kernel: u64,
    /// Every process summed had its faults split by access and mode.
    split: bool,
    minor: Option<u64>,
    major: Option<u64>,
    living: usize,
    processes: usize,
    /// With durations, the faults timed so far and in the interval.
    times: Option<(TopTimes, TopTimes)>,
}

impl Tally {
    fn of(pid: u32, process: &ProcessCounts, before: &HashMap<u32, Before>, alive: bool) -> Self {
        let counts = &process.counts;
        let before = before.get(&pid);
        Self {
            faults: counts.faults,
            interval_faults: counts.faults
                - before.map_or(0, |before| before.faults).min(counts.faults),
            writes: counts.of_access(top_kind::WRITE),
            kernel: counts.kernel_mode(),
            split: process.split,
            minor: process.accounted.map(|a| a.minor),
            major: process.accounted.map(|a| a.major),
            living: usize::from(alive),
            processes: 1,
            times: process.times.map(|now| {
                let earlier = before.and_then(|before| before.times.as_ref());
                (now, since(&now, earlier))
            }),
        }
    }

    /// Adds another process's tally; a count of the sum is known only when it is known of
    /// every process in it.
    fn add(&mut self, other: &Self) {
        let first = self.processes == 0;
        let both = |sum: Option<u64>, part: Option<u64>| Some(if first { 0 } else { sum? } + part?);
        self.minor = both(self.minor, other.minor);
        self.major = both(self.major, other.major);
        self.split = (first || self.split) && other.split;
        self.times = match (first, self.times, other.times) {
            (true, _, times) => times,
            (false, Some((mut total, mut interval)), Some((more, more_interval))) => {
                total.add(&more);
                interval.add(&more_interval);
                Some((total, interval))
            }
            _ => None,
        };
        self.faults += other.faults;
        self.interval_faults += other.interval_faults;
        self.writes += other.writes;
        self.kernel += other.kernel;
        self.living += other.living;
        self.processes += other.processes;
    }

    fn row(&self, subject: Subject, seconds: f64) -> Row {
        Row {
            subject,
            faults: self.faults,
            interval_faults: self.interval_faults,
            rate: if seconds > 0.0 {
                (self.interval_faults as f64 / seconds * 10.0).round() / 10.0
            } else {
                0.0
            },
            minor: self.minor,
            major: self.major,
            write_pct: self.split.then(|| percent(self.writes, self.faults)),
            kernel_pct: self.split.then(|| percent(self.kernel, self.faults)),
            exited: self.living == 0,
            fault_time: self
                .times
                .map(|(total, interval)| TimeInFaults::of(&total, &interval, seconds)),
        }
    }
}

/// Ranks every process with faults in `now` by `sort`, using `before` (the last interval's
/// snapshot) for the interval's share. `alive` says whether a process still exists.
pub fn rank(
    now: &[(u32, ProcessCounts)],
    before: &HashMap<u32, Before>,
    seconds: f64,
    sort: SortKey,
    alive: impl Fn(u32) -> bool,
) -> Vec<Row> {
    let mut rows: Vec<Row> = now
        .iter()
        .map(|(pid, process)| {
            let subject = Subject::Process {
                pid: *pid,
                comm: process.comm.clone(),
            };
            Tally::of(*pid, process, before, alive(*pid)).row(subject, seconds)
        })
        .collect();
    sort_rows(&mut rows, sort);
    rows
}

/// Ranks the groups of the processes in `now`, each the sum of its processes: `group_of` says
/// which group a process is in.
pub fn rank_groups(
    now: &[(u32, ProcessCounts)],
    before: &HashMap<u32, Before>,
    seconds: f64,
    sort: SortKey,
    alive: impl Fn(u32) -> bool,
    mut group_of: impl FnMut(u32, &ProcessCounts) -> Group,
) -> Vec<Row> {
    let mut groups: HashMap<Group, Tally> = HashMap::new();
    for (pid, process) in now {
        let tally = Tally::of(*pid, process, before, alive(*pid));
        groups
            .entry(group_of(*pid, process))
            .or_default()
            .add(&tally);
    }
    let mut rows: Vec<Row> = groups
        .into_iter()
        .map(|(group, tally)| {
            let processes = tally.processes;
            tally.row(Subject::Group { group, processes }, seconds)
        })
        .collect();
    sort_rows(&mut rows, sort);
    rows
}

/// Sorts rows by `sort`, highest first, the living before the exited (so short-lived processes
/// never push a living one off the table); ties go to more faults, then the lower pid or name.
pub fn sort_rows(rows: &mut [Row], sort: SortKey) {
    let key = |row: &Row| match sort {
        SortKey::Rate => row.interval_faults,
        SortKey::Total => row.faults,
        SortKey::Major => row.major.unwrap_or(0),
        SortKey::FaultTime => row.fault_time.map_or(0, |time| time.interval_ns),
    };
    rows.sort_by(|a, b| {
        a.exited
            .cmp(&b.exited)
            .then(key(b).cmp(&key(a)))
            .then(b.faults.cmp(&a.faults))
            .then(a.subject.cmp(&b.subject))
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
            times: None,
        }
    }

    /// The last reading's fault counts of each pid.
    fn before<const N: usize>(faults: [(u32, u64); N]) -> HashMap<u32, Before> {
        faults
            .into_iter()
            .map(|(pid, faults)| {
                let before = Before {
                    faults,
                    times: None,
                };
                (pid, before)
            })
            .collect()
    }

    #[test]
    fn ranks_by_interval_rate_total_or_major() {
        let now = vec![
            (1, process(1000, 500, 0, 0)),
            (2, process(300, 300, 30, 7)),
            (3, process(50, 0, 0, 1)),
        ];
        let before = before([(1, 990), (2, 100)]);
        let pids = |sort| -> Vec<u32> {
            rank(&now, &before, 2.0, sort, |_| true)
                .iter()
                .filter_map(Row::pid)
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
        // Process 3 exited: it comes after every living process, whatever its rate.
        let order: Vec<(Option<u32>, bool)> = rows.iter().map(|r| (r.pid(), r.exited)).collect();
        assert_eq!(order, [(Some(2), false), (Some(1), false), (Some(3), true)]);
    }

    #[test]
    fn a_group_sums_its_processes_and_ranks_among_groups() {
        let now = vec![
            (1, process(1000, 500, 0, 2)),
            (2, process(300, 300, 30, 7)),
            (3, process(50, 0, 0, 1)),
            (4, process(10, 10, 10, 0)),
        ];
        let before = before([(1, 990), (2, 100), (4, 4)]);
        let group_of = |pid: u32, _: &ProcessCounts| {
            Group::Command(if pid == 1 { "server" } else { "curl" }.to_owned())
        };
        // Processes 3 and 4 exited; 2 lives, so the curl group does.
        let rows = rank_groups(&now, &before, 2.0, SortKey::Rate, |pid| pid < 3, group_of);
        assert_eq!(rows.len(), 2);
        let curl = &rows[0];
        assert_eq!(
            curl.subject,
            Subject::Group {
                group: Group::Command("curl".to_owned()),
                processes: 3
            }
        );
        assert_eq!(
            (curl.faults, curl.interval_faults, curl.rate),
            (360, 256, 128.0)
        );
        assert_eq!((curl.minor, curl.major), (Some(352), Some(8)));
        // 310 writes and 40 kernel-mode faults of 360.
        assert_eq!((curl.write_pct, curl.kernel_pct), (Some(86.1), Some(11.1)));
        assert!(!curl.exited);
        assert_eq!(rows[1].subject.name(), "server");
        assert_eq!((rows[1].faults, rows[1].interval_faults), (1000, 10));
        assert_eq!(curl.pid(), None);
        // A group whose processes all exited is exited, and goes after the living.
        let rows = rank_groups(&now, &before, 2.0, SortKey::Rate, |pid| pid == 1, group_of);
        assert_eq!(
            rows.iter()
                .map(|r| (r.subject.name(), r.exited))
                .collect::<Vec<_>>(),
            [("server", false), ("curl", true)]
        );
    }

    #[test]
    fn a_group_with_a_process_of_unknown_counts_has_them_unknown() {
        let mut counters_only = process(50, 0, 0, 1);
        counters_only.split = false;
        counters_only.accounted = None;
        let now = vec![(1, process(10, 10, 0, 0)), (2, counters_only)];
        let rows = rank_groups(
            &now,
            &HashMap::new(),
            1.0,
            SortKey::Rate,
            |_| true,
            |_, _| Group::Cgroup("/a".to_owned()),
        );
        assert_eq!(rows[0].faults, 60);
        assert_eq!((rows[0].minor, rows[0].major), (None, None));
        assert_eq!((rows[0].write_pct, rows[0].kernel_pct), (None, None));
        assert_eq!(rows[0].subject.name(), "/a");
    }

    #[test]
    fn a_reused_pid_with_fewer_faults_does_not_underflow() {
        let now = vec![(1, process(5, 0, 0, 0))];
        let before = before([(1, 90)]);
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

    #[test]
    fn sorts_by_time_in_faults_and_a_group_sums_it() {
        let timed = |ns: u64| {
            let mut process = process(10, 0, 0, 0);
            let mut times = TopTimes::default();
            times.faults[0] = 10;
            times.total_ns[0] = ns;
            times.buckets[0][0] = 10;
            process.times = Some(times);
            process
        };
        let now = vec![(1, timed(5_000)), (2, timed(9_000)), (3, timed(1_000))];
        let rows = rank(&now, &HashMap::new(), 1.0, SortKey::FaultTime, |_| true);
        let order: Vec<_> = rows.iter().filter_map(Row::pid).collect();
        assert_eq!(order, [2, 1, 3]);
        let time = rows[0].fault_time.unwrap();
        assert_eq!((time.interval_ns, time.per_second_ns), (9_000, 9_000));
        let group = |_, _: &ProcessCounts| Group::Command("p".to_owned());
        let rows = rank_groups(&now, &HashMap::new(), 2.0, SortKey::Rate, |_| true, group);
        let time = rows[0].fault_time.unwrap();
        assert_eq!((time.timed, time.interval_ns), ([30, 0], 15_000));
        assert_eq!(time.per_second_ns, 7_500);
        // A process without durations leaves the group's unknown.
        let mixed = vec![(1, timed(5_000)), (4, process(1, 0, 0, 0))];
        let rows = rank_groups(&mixed, &HashMap::new(), 1.0, SortKey::Rate, |_| true, group);
        assert_eq!(rows[0].fault_time, None);
    }
}
