//! The counters `demo top --listen` exports: faults by command and cgroup (and pid), and with
//! durations their time as histograms by class, summed from every reading of the kernel's
//! counts as they grow, so that no counter ever goes down, a process's faults stay in its series
//! after it exits, and no metric has more than `--max-series` series.

use std::collections::{BTreeMap, HashMap};

use demo_common::{FaultCounters, TopTimes, top_time};

use crate::model::access::{Access, Mode};

/// How the exported series are labelled and bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesOptions {
    /// A series per process (a `pid` label), not only per command and cgroup.
    pub per_pid: bool,
    /// The most series any one metric has; past it, new ones fold into [`Owner::Other`].
    pub max_series: usize,
}

/// The fewest series `--max-series` may allow: every "other" series of the faults metric (one
/// per access and mode) has its place, and some left for the processes.
pub const MIN_SERIES: usize = 2 * ACCESSES.len() + 4;

/// Whose faults a series counts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// A command in a cgroup (the cgroup v2 path), and with `--per-pid`, one process.
    Process {
        comm: String,
        cgroup: String,
        pid: Option<u32>,
    },
    /// Everything that found its metric at `--max-series`.
    Other,
}

/// The accesses the exceptions tracepoints tell apart, in [`Split`] order.
pub const ACCESSES: [Access; 3] = [Access::Read, Access::Write, Access::Exec];
/// The modes, in [`Split`] order.
pub const MODES: [Mode; 2] = [Mode::User, Mode::Kernel];

/// One process's faults by mode (index into [`MODES`]) and access (into [`ACCESSES`]): the
/// kernel side's `TopCounts::by_kind`, whose indices are `demo_common::top_kind`'s.
pub type Split = [[u64; 3]; 2];

/// What one reading of the kernel says of one process: its counts so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reading {
    pub pid: u32,
    pub comm: String,
    pub cgroup: CgroupReading,
    /// Faults begun, by mode and access; `None` with the kernel's counters only.
    pub split: Option<Split>,
    /// The kernel's own minor and major counts since demo top started, when known.
    pub accounted: Option<FaultCounters>,
    /// With durations, its completed faults timed so far.
    pub times: Option<TopTimes>,
}

/// What a reading knows of a process's cgroup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupReading {
    /// Its cgroup v2 path.
    Path(String),
    /// The process exited between the reading of its counts and of its cgroup: its growth
    /// waits for the next reading, which has its exit.
    Unread,
    /// It exited, and its cgroup was removed before demo saw the cgroup's path: it is taken to
    /// be in the cgroup an earlier reading saw it in, or else [`UNKNOWN_CGROUP`].
    Removed,
}

/// The cgroup label of a process whose cgroup was removed before demo read its path.
pub const UNKNOWN_CGROUP: &str = "unknown";

/// The metrics a [`Ledger`] keeps, each bounded by `--max-series` on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Faults,
    Minor,
    Major,
    /// With durations, the histogram of fault durations.
    Durations,
}

impl Metric {
    pub const ALL: [Self; 4] = [Self::Faults, Self::Minor, Self::Major, Self::Durations];
}

/// The class of a completed fault, as the kernel's completion event said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimedClass {
    Minor,
    Major,
}

impl TimedClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minor => "minor",
            Self::Major => "major",
        }
    }
}

/// The classes in the kernel side's order (`demo_common::CompletedClass`).
pub const TIMED_CLASSES: [TimedClass; 2] = [TimedClass::Minor, TimedClass::Major];

/// One series of fault durations: how many in each `demo_common::top_time` bucket, and their
/// total time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durations {
    pub buckets: [u64; top_time::BUCKETS],
    pub sum_ns: u64,
}

impl Durations {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Class `class`'s faults of `now` that `before` did not have; all of them when `now` has
    /// fewer (a reused pid, which counted from zero).
    fn growth(now: &TopTimes, before: &TopTimes, class: usize) -> Self {
        let (now_buckets, before_buckets) = (&now.buckets[class], &before.buckets[class]);
        let mut buckets = *now_buckets;
        // Decided once, for the buckets and the sum alike, so that `_sum` always belongs to the
        // faults the buckets count.
        if now.faults[class] < before.faults[class] {
            return Self {
                buckets,
                sum_ns: now.total_ns[class],
            };
        }
        for (bucket, earlier) in buckets.iter_mut().zip(before_buckets) {
            *bucket = bucket.saturating_sub(*earlier);
        }
        Self {
            buckets,
            sum_ns: now.total_ns[class].saturating_sub(before.total_ns[class]),
        }
    }
}

/// The access and mode of a fault series; `None` with the kernel's counters only.
pub type Kind = Option<(Access, Mode)>;

/// The exported counters, summed over every reading.
#[derive(Clone, Debug)]
pub struct Ledger {
    options: SeriesOptions,
    faults: Capped<(Owner, Kind)>,
    minor: Capped<Owner>,
    major: Capped<Owner>,
    /// With durations (`timed`), by owner and class.
    durations: Capped<(Owner, TimedClass), Durations>,
    timed: bool,
    /// Per process, what the last reading said, so the next adds only what grew.
    seen: HashMap<u32, Seen>,
}

#[derive(Clone, Debug, Default)]
struct Seen {
    split: Split,
    accounted: FaultCounters,
    times: TopTimes,
    /// The metrics (by [`Metric`] index) this process has already folded into "other" in.
    folded: [bool; 4],
    /// The cgroup the last reading saw it in.
    cgroup: Option<String>,
}

impl Ledger {
    /// An empty ledger; `split` says whether readings will have faults by access and mode.
    pub fn new(options: SeriesOptions, split: bool) -> Self {
        let other_faults = if split {
            ACCESSES.len() * MODES.len()
        } else {
            1
        };
        Self {
            options,
            faults: Capped::new(options.max_series, other_faults),
            minor: Capped::new(options.max_series, 1),
            major: Capped::new(options.max_series, 1),
            durations: Capped::new(options.max_series, TIMED_CLASSES.len()),
            timed: false,
            seen: HashMap::new(),
        }
    }

    /// The same ledger, keeping fault durations when `timed` (the readings will have them).
    pub fn timed(self, timed: bool) -> Self {
        Self { timed, ..self }
    }

    /// True when it keeps fault durations.
    pub fn is_timed(&self) -> bool {
        self.timed
    }

    /// Adds what grew since the last reading. `readings` holds every process the kernel still
    /// counts; any other is gone, and a process that comes back under its pid is a new one.
    pub fn absorb(&mut self, readings: &[Reading]) {
        let mut seen = HashMap::with_capacity(readings.len());
        for reading in readings {
            let mut before = self.seen.remove(&reading.pid).unwrap_or_default();
            let cgroup = match &reading.cgroup {
                CgroupReading::Path(path) => path.clone(),
                CgroupReading::Unread => {
                    seen.insert(reading.pid, before);
                    continue;
                }
                CgroupReading::Removed => before
                    .cgroup
                    .clone()
                    .unwrap_or_else(|| UNKNOWN_CGROUP.to_owned()),
            };
            before.cgroup = Some(cgroup.clone());
            let owner = Owner::Process {
                comm: reading.comm.clone(),
                cgroup,
                pid: self.options.per_pid.then_some(reading.pid),
            };
            let folded = &mut before.folded;
            if let Some(split) = reading.split {
                for (m, mode) in MODES.into_iter().enumerate() {
                    for (a, access) in ACCESSES.into_iter().enumerate() {
                        let grew = growth(split[m][a], before.split[m][a]);
                        let key = (owner.clone(), Some((access, mode)));
                        self.faults.add(key, grew, &mut folded[0]);
                    }
                }
                before.split = split;
            }
            if let Some(now) = reading.accounted {
                let minor = growth(now.minor, before.accounted.minor);
                let major = growth(now.major, before.accounted.major);
                if reading.split.is_none() {
                    self.faults
                        .add((owner.clone(), None), minor + major, &mut folded[0]);
                }
                self.minor.add(owner.clone(), minor, &mut folded[1]);
                self.major.add(owner.clone(), major, &mut folded[2]);
                before.accounted = now;
            }
            if let Some(now) = reading.times.filter(|_| self.timed) {
                for (index, class) in TIMED_CLASSES.into_iter().enumerate() {
                    let grew = Durations::growth(&now, &before.times, index);
                    self.durations
                        .add((owner.clone(), class), grew, &mut folded[3]);
                }
                before.times = now;
            }
            seen.insert(reading.pid, before);
        }
        self.seen = seen;
    }

    /// Every fault series with its count, in label order.
    pub fn faults(&self) -> impl Iterator<Item = (&Owner, Kind, u64)> {
        self.faults
            .values
            .iter()
            .map(|((owner, kind), value)| (owner, *kind, *value))
    }

    /// Every series of the minor faults metric with its count, in label order.
    pub fn minor(&self) -> impl Iterator<Item = (&Owner, u64)> {
        self.minor
            .values
            .iter()
            .map(|(owner, value)| (owner, *value))
    }

    /// Every series of the major faults metric with its count, in label order.
    pub fn major(&self) -> impl Iterator<Item = (&Owner, u64)> {
        self.major
            .values
            .iter()
            .map(|(owner, value)| (owner, *value))
    }

    /// Every series of fault durations, in label order.
    pub fn durations(&self) -> impl Iterator<Item = (&Owner, TimedClass, &Durations)> {
        self.durations
            .values
            .iter()
            .map(|((owner, class), value)| (owner, *class, value))
    }

    /// How many processes had counts of `metric` fold into "other".
    pub fn folded(&self, metric: Metric) -> u64 {
        match metric {
            Metric::Faults => self.faults.folded,
            Metric::Minor => self.minor.folded,
            Metric::Major => self.major.folded,
            Metric::Durations => self.durations.folded,
        }
    }

    /// The number of series of `metric`.
    pub fn series(&self, metric: Metric) -> usize {
        match metric {
            Metric::Faults => self.faults.values.len(),
            Metric::Minor => self.minor.values.len(),
            Metric::Major => self.major.values.len(),
            Metric::Durations => self.durations.values.len(),
        }
    }

    pub fn options(&self) -> SeriesOptions {
        self.options
    }
}

/// What a count grew by: a smaller count than before is a new process under a reused pid (or
/// an entry the kernel side made anew), which counted from zero.
fn growth(now: u64, before: u64) -> u64 {
    if now >= before { now - before } else { now }
}

/// A series key that knows which "other" series it folds into.
trait Fold: Ord + Clone {
    fn other(&self) -> Self;
    fn is_other(&self) -> bool;
}

impl Fold for Owner {
    fn other(&self) -> Self {
        Self::Other
    }

    fn is_other(&self) -> bool {
        *self == Self::Other
    }
}

impl<T: Ord + Clone + Copy> Fold for (Owner, T) {
    fn other(&self) -> Self {
        (Owner::Other, self.1)
    }

    fn is_other(&self) -> bool {
        self.0.is_other()
    }
}

/// What a series holds: a count, or durations.
trait Amount: Default {
    fn is_zero(&self) -> bool;
    fn add(&mut self, other: Self);
}

impl Amount for u64 {
    fn is_zero(&self) -> bool {
        *self == 0
    }

    fn add(&mut self, other: Self) {
        *self += other;
    }
}

impl Amount for Durations {
    fn is_zero(&self) -> bool {
        self.sum_ns == 0 && self.count() == 0
    }

    fn add(&mut self, other: Self) {
        for (bucket, more) in self.buckets.iter_mut().zip(other.buckets) {
            *bucket += more;
        }
        self.sum_ns += other.sum_ns;
    }
}

/// One metric's series, at most `cap` of them, `reserved` of which are kept for "other".
#[derive(Clone, Debug)]
struct Capped<K, V = u64> {
    values: BTreeMap<K, V>,
    cap: usize,
    reserved: usize,
    /// Series of processes (not "other") present.
    own: usize,
    folded: u64,
}

impl<K: Fold, V: Amount> Capped<K, V> {
    fn new(cap: usize, reserved: usize) -> Self {
        Self {
            values: BTreeMap::new(),
            cap,
            reserved,
            own: 0,
            folded: 0,
        }
    }

    /// Adds `amount` to `key`'s series, or to its "other" series when a new one would pass the
    /// cap; `folded` marks (and the fold count counts once) a process that folded.
    fn add(&mut self, key: K, amount: V, folded: &mut bool) {
        if amount.is_zero() {
            return;
        }
        if let Some(value) = self.values.get_mut(&key) {
            value.add(amount);
            return;
        }
        if key.is_other() || self.own + self.reserved < self.cap {
            if !key.is_other() {
                self.own += 1;
            }
            self.values.insert(key, amount);
            return;
        }
        self.values.entry(key.other()).or_default().add(amount);
        if !*folded {
            *folded = true;
            self.folded += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(pid: u32, comm: &str, user_writes: u64, minor: u64) -> Reading {
        let mut split = Split::default();
        split[0][1] = user_writes;
        Reading {
            pid,
            comm: comm.to_owned(),
            cgroup: CgroupReading::Path("/test".to_owned()),
            split: Some(split),
            accounted: Some(FaultCounters { minor, major: 0 }),
            times: None,
        }
    }

    fn options(per_pid: bool, max_series: usize) -> SeriesOptions {
        SeriesOptions {
            per_pid,
            max_series,
        }
    }

    fn faults_of(ledger: &Ledger, comm: &str) -> u64 {
        ledger
            .faults()
            .filter(|(owner, ..)| matches!(owner, Owner::Process { comm: c, .. } if c == comm))
            .map(|(.., value)| value)
            .sum()
    }

    fn other_faults(ledger: &Ledger) -> u64 {
        ledger
            .faults()
            .filter(|(owner, ..)| owner.is_other())
            .map(|(.., value)| value)
            .sum()
    }

    #[test]
    fn the_split_is_in_the_kernel_sides_order() {
        use demo_common::top_kind;
        assert_eq!(MODES[top_kind::USER], Mode::User);
        assert_eq!(MODES[top_kind::KERNEL], Mode::Kernel);
        assert_eq!(ACCESSES[top_kind::READ], Access::Read);
        assert_eq!(ACCESSES[top_kind::WRITE], Access::Write);
        assert_eq!(ACCESSES[top_kind::EXEC], Access::Exec);
    }

    #[test]
    fn counts_only_what_grew_and_keeps_a_process_after_it_is_gone() {
        let mut ledger = Ledger::new(options(false, 100), true);
        ledger.absorb(&[reading(1, "a", 10, 8), reading(2, "a", 5, 5)]);
        ledger.absorb(&[reading(1, "a", 30, 20), reading(2, "a", 5, 5)]);
        assert_eq!(faults_of(&ledger, "a"), 35);
        // Process 2 exited and was forgotten; its faults stay in the series.
        ledger.absorb(&[reading(1, "a", 31, 21)]);
        assert_eq!(faults_of(&ledger, "a"), 36);
        let minor: Vec<_> = ledger.minor().collect();
        assert_eq!(minor.len(), 1);
        assert_eq!(minor[0].1, 26);
        assert_eq!(ledger.major().count(), 0);
    }

    #[test]
    fn a_process_that_changes_its_command_never_lowers_the_old_series() {
        let mut ledger = Ledger::new(options(false, 100), true);
        ledger.absorb(&[reading(7, "sh", 100, 100)]);
        // It exec'd: the new command gets only the faults after the change.
        ledger.absorb(&[reading(7, "stress", 150, 150)]);
        assert_eq!(faults_of(&ledger, "sh"), 100);
        assert_eq!(faults_of(&ledger, "stress"), 50);
    }

    #[test]
    fn a_process_whose_cgroup_is_unknown_for_a_reading_is_counted_at_the_next() {
        let mut ledger = Ledger::new(options(true, 100), true);
        ledger.absorb(&[reading(4, "true", 10, 11)]);
        let unread = Reading {
            cgroup: CgroupReading::Unread,
            ..reading(4, "true", 30, 40)
        };
        ledger.absorb(&[unread]);
        assert_eq!(faults_of(&ledger, "true"), 10);
        ledger.absorb(&[reading(4, "true", 49, 51)]);
        assert_eq!(faults_of(&ledger, "true"), 49);
        assert_eq!(ledger.minor().map(|(_, value)| value).sum::<u64>(), 51);
        assert_eq!(ledger.series(Metric::Minor), 1);
    }

    #[test]
    fn a_process_whose_cgroup_was_removed_stays_where_it_was_seen() {
        let mut ledger = Ledger::new(options(false, 100), true);
        let removed = |pid, writes| Reading {
            cgroup: CgroupReading::Removed,
            ..reading(pid, "job", writes, writes)
        };
        ledger.absorb(&[reading(5, "job", 10, 10)]);
        // Process 6 was born and gone between two readings, with its cgroup.
        ledger.absorb(&[removed(5, 25), removed(6, 3)]);
        let minor: Vec<_> = ledger.minor().collect();
        let cgroup_of = |owner: &Owner| match owner {
            Owner::Process { cgroup, .. } => cgroup.clone(),
            Owner::Other => unreachable!("no fold under the cap"),
        };
        assert_eq!(minor.len(), 2);
        assert_eq!(
            (cgroup_of(minor[0].0), minor[0].1),
            ("/test".to_owned(), 25)
        );
        assert_eq!(
            (cgroup_of(minor[1].0), minor[1].1),
            (UNKNOWN_CGROUP.to_owned(), 3)
        );
    }

    #[test]
    fn a_reused_pid_counts_from_zero() {
        let mut ledger = Ledger::new(options(true, 100), true);
        ledger.absorb(&[reading(9, "old", 1000, 0)]);
        ledger.absorb(&[reading(9, "new", 40, 0)]);
        assert_eq!(faults_of(&ledger, "old"), 1000);
        assert_eq!(faults_of(&ledger, "new"), 40);
    }

    #[test]
    fn past_the_cap_processes_fold_into_other_and_each_fold_is_counted_once() {
        let max = MIN_SERIES;
        let mut ledger = Ledger::new(options(true, max), true);
        let readings: Vec<Reading> = (1..=50).map(|pid| reading(pid, "short", 3, 3)).collect();
        ledger.absorb(&readings);
        let more: Vec<Reading> = (1..=50).map(|pid| reading(pid, "short", 4, 4)).collect();
        ledger.absorb(&more);
        for metric in Metric::ALL {
            assert!(ledger.series(metric) <= max, "{metric:?}");
        }
        let own = max - 2 * ACCESSES.len();
        assert_eq!(faults_of(&ledger, "short"), own as u64 * 4);
        assert_eq!(other_faults(&ledger), (50 - own as u64) * 4);
        assert_eq!(ledger.folded(Metric::Faults), 50 - own as u64);
        assert_eq!(ledger.folded(Metric::Minor), 50 - (max as u64 - 1));
    }

    #[test]
    fn with_the_kernels_counters_only_faults_are_minor_plus_major_without_a_kind() {
        let mut ledger = Ledger::new(options(false, 100), false);
        let counters_only = Reading {
            split: None,
            accounted: Some(FaultCounters {
                minor: 70,
                major: 2,
            }),
            ..reading(3, "c", 0, 0)
        };
        ledger.absorb(&[counters_only]);
        let faults: Vec<_> = ledger.faults().collect();
        assert_eq!(faults.len(), 1);
        assert_eq!((faults[0].1, faults[0].2), (None, 72));
        assert_eq!(ledger.major().next().unwrap().1, 2);
    }

    #[test]
    fn durations_grow_per_class_and_fold_into_other_past_the_cap() {
        let timed = |pid, minor_faults: u64, major_faults: u64| {
            let mut times = TopTimes {
                faults: [minor_faults, major_faults],
                total_ns: [minor_faults * 1_000, major_faults * 2_000_000],
                ..TopTimes::default()
            };
            times.buckets[0][0] = minor_faults;
            times.buckets[1][11] = major_faults;
            Reading {
                times: Some(times),
                ..reading(pid, "t", 0, 0)
            }
        };
        let mut ledger = Ledger::new(options(true, MIN_SERIES), true).timed(true);
        ledger.absorb(&[timed(1, 10, 1)]);
        ledger.absorb(&[timed(1, 30, 1)]);
        let series: Vec<_> = ledger.durations().collect();
        assert_eq!(series.len(), 2);
        let (owner, class, minor) = series[0];
        assert_eq!((owner.is_other(), class), (false, TimedClass::Minor));
        assert_eq!(
            (minor.count(), minor.sum_ns, minor.buckets[0]),
            (30, 30_000, 30)
        );
        let (_, class, major) = series[1];
        assert_eq!(class, TimedClass::Major);
        assert_eq!(
            (major.count(), major.sum_ns, major.buckets[11]),
            (1, 2_000_000, 1)
        );
        // A reused pid with fewer faults counts from zero.
        ledger.absorb(&[timed(1, 5, 0)]);
        assert_eq!(ledger.durations().next().unwrap().2.count(), 35);
        // Past the cap, processes fold into the two "other" series, one per class.
        let many: Vec<Reading> = (2..40).map(|pid| timed(pid, 1, 1)).collect();
        ledger.absorb(&many);
        assert!(ledger.series(Metric::Durations) <= MIN_SERIES);
        let other: u64 = ledger
            .durations()
            .filter(|(owner, ..)| owner.is_other())
            .map(|(.., durations)| durations.count())
            .sum();
        let own: u64 = ledger
            .durations()
            .filter(|(owner, ..)| !owner.is_other())
            .map(|(.., durations)| durations.count())
            .sum();
        assert_eq!(own + other, 35 + 1 + 38 * 2);
        assert!(ledger.folded(Metric::Durations) > 0);
        // An untimed ledger keeps none.
        let mut untimed = Ledger::new(options(true, 100), true);
        untimed.absorb(&[timed(1, 10, 1)]);
        assert_eq!(untimed.durations().count(), 0);
    }
}
