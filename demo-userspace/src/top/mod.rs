//! `demo top`: which processes fault most, counted in the kernel per process and CPU, with no
//! event per fault; and, with `--pid --pages`, where in one process the faults land.

mod accounting;
pub mod fault_time;
mod kernel_counters;
pub mod ledger;
mod pages;
mod rank;

use std::{
    collections::{HashMap, HashSet},
    io,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;

pub use self::pages::{PageRange, PageReport};
pub use self::rank::{Group, Row, SortKey, Subject, sort_rows};
use self::{
    accounting::Accounting,
    ledger::{CgroupReading, Ledger, Reading, SeriesOptions, UNKNOWN_CGROUP},
    pages::PageBook,
    rank::{Before, rank, rank_groups},
};
use crate::{
    kernel::cgroup::{CgroupScope, Cgroups},
    kernel::probes::{ProcessCounts, ProgramRuns, TopCounting, TopDrops, TopProbes, command_name},
};
use demo_common::ExitCounts;

/// Receives each interval of `demo top` as it ends.
pub trait TopOutput {
    fn interval(&mut self, interval: &Interval) -> io::Result<()>;
}

/// The options of `demo top`, checked.
#[derive(Clone, Debug)]
pub struct TopOptions {
    /// `--cgroup`: only the processes in this cgroup and below it, counted by the kernel side;
    /// top ends when the cgroup is removed.
    pub cgroup: Option<CgroupScope>,
    pub interval: Duration,
    pub count: usize,
    pub sort: SortKey,
    pub duration: Option<Duration>,
    /// `--pid`: show this process alone, and end when it exits.
    pub pid: Option<u32>,
    /// `--pages` (with `--pid`): count that process's faults per page too.
    pub pages: bool,
    /// `--group`: one row per command or cgroup instead of one per process.
    pub group: Option<GroupBy>,
    /// `--keep-exited`: processes that exited stay in the table after their last interval.
    pub keep_exited: bool,
    /// Every row in each interval, not only the first `count`: the terminal view sorts them by
    /// the key the user picks, and cuts them itself.
    pub all_rows: bool,
    /// `--counters-only`: no program per fault, only the kernel's own counters.
    pub counters_only: bool,
    /// With `counters_only`, programs that count nothing on the fault tracepoints (bench).
    pub empty_fault_programs: bool,
    /// `--durations`: time every completed fault (not with `counters_only`).
    pub durations: bool,
    /// `--listen`: keep the counters a metrics endpoint exports, labelled and bounded so.
    pub series: Option<SeriesOptions>,
}

/// What `--group` sums processes by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// The command (comm), as the kernel names the process now.
    Command,
    /// The cgroup v2: from /proc while a process lives, from the id the kernel side kept at
    /// its exit after.
    Cgroup,
}

/// How many exited rows `--keep-exited` keeps; past it, the oldest leave.
pub const KEPT_EXITED: usize = 1000;

/// Whether `demo top` times faults when neither `--durations` nor `--no-durations` is given.
pub const DURATIONS_BY_DEFAULT: bool = false;

impl TopOptions {
    /// The process whose faults are counted per page: `--pid` with `--pages`.
    pub fn pages_of(&self) -> Option<u32> {
        self.pid.filter(|_| self.pages)
    }

    /// What the kernel side counts for these options.
    pub fn counting(&self) -> TopCounting {
        if self.counters_only {
            TopCounting::KernelCounters {
                empty_fault_programs: self.empty_fault_programs,
            }
        } else {
            TopCounting::PerFault {
                pages: self.pages_of().is_some(),
                durations: self.durations,
            }
        }
    }
}

/// One interval of `demo top`.
#[derive(Clone, Debug, Default)]
pub struct Interval {
    pub seconds: f64,
    pub rows: Vec<Row>,
    /// Faults uncounted because the process map was full.
    pub dropped: u64,
    /// Pages evicted from the page map.
    pub pages_evicted: u64,
    pub pages: Option<PageReport>,
}

/// A running `demo top`: the programs and what has been read from them, shared between the
/// interval loop and, with `--listen`, the metrics endpoint, which reads at scrape time.
pub struct Top {
    options: TopOptions,
    state: Arc<Mutex<State>>,
}

/// What the interval loop and the scrapes read and change, one at a time.
struct State {
    probes: TopProbes,
    accounting: Accounting,
    /// Exits taken from the kernel and not yet shown in an interval.
    exits: HashMap<u32, ExitCounts>,
    /// Exits kept through the last interval because their process was not in it.
    exits_waiting: HashSet<u32>,
    /// With `--listen` or `--group cgroup`: where the cgroups are.
    cgroups: Option<Cgroups>,
    /// With `--listen`: the exported counters.
    ledger: Option<Ledger>,
    /// With `--keep-exited`: the rows of processes (or groups) that exited, oldest first.
    kept: Vec<Row>,
    /// With `--pages`: the pages of the process seen so far, and the mappings they were in.
    pages: Option<PageBook>,
    /// `--cgroup`: the /proc reading of `--counters-only` keeps its processes alone (the
    /// per-fault programs count no other).
    scope: Option<CgroupScope>,
}

/// Reads the counters for a metrics endpoint, at scrape time.
#[derive(Clone)]
pub struct MetricsSource {
    state: Arc<Mutex<State>>,
    counting: TopCounting,
}

/// What one scrape read: the exported counters and what the programs could not count.
#[derive(Clone, Debug)]
pub struct Scrape {
    pub ledger: Ledger,
    pub counting: TopCounting,
    pub drops: TopDrops,
    /// What each program cost in the kernel, when `kernel.bpf_stats_enabled` is on.
    pub programs: Option<Vec<ProgramRuns>>,
}

impl Top {
    /// Takes over the loaded programs; with `--pid --pages`, checks the process and watches it.
    pub fn start(options: TopOptions, mut probes: TopProbes) -> anyhow::Result<Self> {
        if let Some(pid) = options.pid {
            crate::kernel::process::check_exists(pid)?;
        }
        if let Some(pid) = options.pages_of() {
            probes.watch_pages(pid)?;
        }
        let split = matches!(options.counting(), TopCounting::PerFault { .. });
        let timed = split && options.durations;
        let ledger = options
            .series
            .map(|series| Ledger::new(series, split).timed(timed));
        let cgroups =
            (ledger.is_some() || options.group == Some(GroupBy::Cgroup)).then(Cgroups::new);
        let state = State {
            probes,
            accounting: Accounting::at_start(),
            exits: HashMap::new(),
            exits_waiting: HashSet::new(),
            cgroups,
            ledger,
            kept: Vec::new(),
            pages: options.pages_of().map(PageBook::new),
            scope: options.cgroup.clone(),
        };
        Ok(Self {
            options,
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// The source a metrics endpoint scrapes; `None` unless `--listen` asked for one.
    pub fn metrics(&self) -> Option<MetricsSource> {
        self.options.series?;
        Some(MetricsSource {
            state: Arc::clone(&self.state),
            counting: self.options.counting(),
        })
    }

    /// Shows an interval every `--interval` until `--duration` ends or a signal comes.
    pub async fn run(&self, out: &mut dyn TopOutput) -> anyhow::Result<()> {
        // Installed first, so a signal at any moment ends top well.
        let shutdown = crate::kernel::shutdown::requested();
        let options = &self.options;
        let mut before: HashMap<u32, Before> = HashMap::new();
        let mut ticker = tokio::time::interval(options.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let started = tokio::time::Instant::now();
        let mut last = started;
        // The end of --duration ends the run even inside an interval longer than it.
        let deadline = options.duration.map(|duration| started + duration);
        tokio::pin!(shutdown);
        loop {
            let stop = tokio::select! {
                _ = ticker.tick() => false,
                () = &mut shutdown => true,
                () = async { match deadline {
                    Some(deadline) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                } } => true,
            };
            let now = tokio::time::Instant::now();
            // Checked before the reading, which then holds the process's exit: its last row is
            // shown before top ends.
            let target_gone = options
                .pid
                .is_some_and(|pid| !crate::kernel::process::exists(pid))
                || options.cgroup.as_ref().is_some_and(CgroupScope::removed);
            // A reading flushes every CPU and reads /proc for every process: off the runtime's
            // one thread, like a scrape, so the metrics endpoint keeps accepting meanwhile.
            let (state, reading_options, seconds) = (
                Arc::clone(&self.state),
                options.clone(),
                (now - last).as_secs_f64(),
            );
            let (interval, counted) = tokio::task::spawn_blocking(move || {
                let interval = lock(&state).take_interval(&reading_options, &mut before, seconds);
                (interval, before)
            })
            .await
            .context("read an interval of demo top")?;
            before = counted;
            let interval = interval?;
            last = now;
            out.interval(&interval)?;
            let done = options
                .duration
                .is_some_and(|d| now - started >= d - Duration::from_millis(50));
            if stop || done || target_gone {
                return Ok(());
            }
        }
    }
}

impl MetricsSource {
    /// Reads the kernel's counts now and returns the exported counters.
    pub fn scrape(&self) -> anyhow::Result<Scrape> {
        let mut state = lock(&self.state);
        state.read(self.counting)?;
        let drops = state.probes.drops()?;
        let programs = state.probes.program_runs();
        let ledger = state
            .ledger
            .clone()
            .context("read the exported counters: demo top was started without --listen")?;
        Ok(Scrape {
            ledger,
            counting: self.counting,
            drops,
            programs,
        })
    }
}

/// The state, even after a panic elsewhere held its lock: every change to it is whole.
fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    /// Reads every process's counts and, with `--listen` or `--group cgroup`, each one's
    /// cgroup, and adds what grew to the exported counters.
    fn read(&mut self, counting: TopCounting) -> anyhow::Result<(Snapshot, CgroupsRead)> {
        let snapshot = match counting {
            TopCounting::KernelCounters { .. } => kernel_counters::snapshot(
                &mut self.probes,
                &self.accounting,
                &mut self.exits,
                self.scope.as_ref(),
            )?,
            TopCounting::PerFault { .. } => {
                per_fault_snapshot(&mut self.probes, &self.accounting, &mut self.exits)?
            }
        };
        let cgroups = match &mut self.cgroups {
            Some(cgroups) => {
                cgroups.new_read();
                cgroups_of(&snapshot.processes, &self.exits, cgroups)
            }
            None => HashMap::new(),
        };
        if let Some(ledger) = &mut self.ledger {
            let readings: Vec<Reading> = snapshot
                .processes
                .iter()
                .map(|(pid, process)| reading(*pid, process, &cgroups))
                .collect();
            ledger.absorb(&readings);
        }
        Ok((snapshot, cgroups))
    }

    /// Forgets the exits of the processes in this interval's rows, the last they are in. An exit
    /// taken while its process's last counts were still on their way to the process map waits
    /// for the next interval, once: a process whose exit was read has no more faults to come.
    fn forget_shown_exits(&mut self, processes: &[(u32, ProcessCounts)]) {
        let shown: HashSet<u32> = processes.iter().map(|(pid, _)| *pid).collect();
        let waited = std::mem::take(&mut self.exits_waiting);
        self.exits
            .retain(|pid, _| !shown.contains(pid) && !waited.contains(pid));
        self.exits_waiting = self.exits.keys().copied().collect();
    }

    /// Reads the counters, ranks the processes (or their groups), and forgets those that exited
    /// (they were counted in this interval, the last one they ran in).
    fn take_interval(
        &mut self,
        options: &TopOptions,
        before: &mut HashMap<u32, Before>,
        seconds: f64,
    ) -> anyhow::Result<Interval> {
        let (Snapshot { processes, alive }, cgroups) = self.read(options.counting())?;
        let is_alive = |pid| alive.contains(&pid);
        let mut rows = match options.group {
            None => rank(&processes, before, seconds, options.sort, is_alive),
            Some(by) => {
                let group_of = |pid, process: &ProcessCounts| match by {
                    GroupBy::Command => Group::Command(process.comm.clone()),
                    GroupBy::Cgroup => Group::Cgroup(match cgroups.get(&pid) {
                        Some(CgroupReading::Path(path)) => path.clone(),
                        _ => UNKNOWN_CGROUP.to_owned(),
                    }),
                };
                rank_groups(
                    &processes,
                    before,
                    seconds,
                    options.sort,
                    is_alive,
                    group_of,
                )
            }
        };
        self.forget_shown_exits(&processes);
        before.clear();
        let per_fault = matches!(options.counting(), TopCounting::PerFault { .. });
        for (pid, process) in &processes {
            if alive.contains(pid) {
                let last = Before {
                    faults: process.counts.faults,
                    times: process.times,
                };
                before.insert(*pid, last);
            } else if per_fault {
                // Only the per-fault programs keep an entry per process.
                self.probes.forget(*pid)?;
            }
        }
        if let Some(pid) = options.pid {
            rows.retain(|row| row.pid() == Some(pid));
        }
        if options.keep_exited {
            self.keep_exited(&mut rows, options.sort);
        }
        if !options.all_rows {
            rows.truncate(options.count);
        }
        let drops = self.probes.drops()?;
        let pages = match (options.pages_of(), &mut self.pages) {
            (Some(pid), Some(book)) => {
                Some(book.report(&self.probes.pages_of(pid)?, options.count))
            }
            _ => None,
        };
        Ok(Interval {
            seconds,
            rows,
            dropped: drops.faults(),
            pages_evicted: drops.pages_evicted,
            pages,
        })
    }

    /// `--keep-exited`: adds the rows kept from earlier intervals to `rows`, and keeps this
    /// interval's exited rows for the next, with nothing more in any interval to come.
    fn keep_exited(&mut self, rows: &mut Vec<Row>, sort: SortKey) {
        // A process or group in this interval again (a reused pid, a group with a new process)
        // is shown as it is now.
        self.kept
            .retain(|kept| !rows.iter().any(|row| row.subject.same(&kept.subject)));
        let exited: Vec<Row> = rows
            .iter()
            .filter(|row| row.exited)
            .map(|row| Row {
                interval_faults: 0,
                rate: 0.0,
                ..row.clone()
            })
            .collect();
        rows.extend(self.kept.iter().cloned());
        sort_rows(rows, sort);
        self.kept.extend(exited);
        let excess = self.kept.len().saturating_sub(KEPT_EXITED);
        self.kept.drain(..excess);
    }
}

/// Each process's cgroup as one reading found it; empty when no cgroup was asked for.
type CgroupsRead = HashMap<u32, CgroupReading>;

/// The cgroup of each process, read once per reading for both the exported counters and
/// `--group cgroup`: the one the kernel side saw it exit in (the exits are still kept, so a
/// process that exited is in its cgroup of then), or else the one /proc says it is in now. It
/// is not kept from one reading to the next, since a living process can be moved to another
/// cgroup at any time.
fn cgroups_of(
    processes: &[(u32, ProcessCounts)],
    exits: &HashMap<u32, ExitCounts>,
    cgroups: &mut Cgroups,
) -> CgroupsRead {
    processes
        .iter()
        .map(|(pid, _)| {
            let cgroup = match exits.get(pid) {
                Some(exit) => cgroups
                    .path_of(exit.cgroup)
                    .map_or(CgroupReading::Removed, CgroupReading::Path),
                None => {
                    Cgroups::of_process(*pid).map_or(CgroupReading::Unread, CgroupReading::Path)
                }
            };
            (*pid, cgroup)
        })
        .collect()
}

/// What the exported counters take from one process: its counts, and its cgroup as this
/// reading found it.
fn reading(pid: u32, process: &ProcessCounts, cgroups: &CgroupsRead) -> Reading {
    Reading {
        pid,
        comm: process.comm.clone(),
        cgroup: cgroups.get(&pid).cloned().unwrap_or(CgroupReading::Unread),
        split: process.split.then_some(process.counts.by_kind),
        accounted: process.accounted,
        times: process.times,
    }
}

/// One interval's reading: every process with faults, and the pids still alive.
struct Snapshot {
    processes: Vec<(u32, ProcessCounts)>,
    alive: HashSet<u32>,
}

/// The processes the fault programs counted, with the kernel's counters of each, and the pids
/// still alive.
fn per_fault_snapshot(
    probes: &mut TopProbes,
    accounting: &Accounting,
    exits: &mut HashMap<u32, ExitCounts>,
) -> anyhow::Result<Snapshot> {
    let mut snapshot = probes.processes()?;
    // One read of each process's /proc stat says both whether it lives and its counters.
    let mut alive = HashSet::new();
    let stats: Vec<_> = snapshot
        .iter()
        .map(|(pid, _)| {
            let stat = procfs::process::Process::new(*pid as i32)
                .and_then(|p| p.stat())
                .ok();
            if stat.as_ref().is_some_and(|s| !is_dead(s)) {
                alive.insert(*pid);
            }
            stat
        })
        .collect();
    // Taken after the stats: the kernel keeps a process's counters at its exit, before its
    // stat can go, so every process whose stat was gone or dead has its exit here.
    exits.extend(probes.take_exits()?);
    for ((pid, process), stat) in snapshot.iter_mut().zip(&stats) {
        let exit = exits.get(pid);
        process.accounted = accounting.since_start(*pid, stat.as_ref(), exit.map(|e| e.counters));
        // The kernel side names a process when it begins faulting on a CPU; the stat
        // just read, or the exit, name it as it is now, after any exec.
        if let Some(exit) = exit {
            process.comm = command_name(&exit.comm);
        } else if let Some(stat) = stat {
            process.comm.clone_from(&stat.comm);
        }
    }
    // A process that faulted after the read and then exited may have its last faults in a CPU's
    // recent counts, which would come back as a new entry once it is forgotten. It is gone now,
    // so one more read of it is final.
    if snapshot.iter().any(|(pid, _)| !alive.contains(pid)) {
        probes.flush_recent()?;
        for (pid, process) in &mut snapshot {
            if !alive.contains(pid)
                && let Some(last) = probes.process(*pid)?
            {
                process.counts = last.counts;
                process.times = last.times;
            }
        }
    }
    Ok(Snapshot {
        processes: snapshot,
        alive,
    })
}

/// A zombie, or a task being reaped: it faults no more.
fn is_dead(stat: &procfs::process::Stat) -> bool {
    matches!(stat.state, 'Z' | 'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One reading names each process's cgroup once: a living process from /proc, one that
    /// exited from the cgroup id the kernel kept, and says which could not be named and why.
    #[test]
    fn a_reading_names_the_cgroup_of_the_living_and_of_the_exited() {
        let mut cgroups = Cgroups::new();
        let me = std::process::id();
        let mine = Cgroups::of_process(me).unwrap();
        let my_id = cgroup_id(&mine);
        let (gone, exited, exited_unknown) = (u32::MAX, u32::MAX - 1, u32::MAX - 2);
        let processes: Vec<(u32, ProcessCounts)> = [me, gone, exited, exited_unknown]
            .into_iter()
            .map(|pid| (pid, ProcessCounts::default()))
            .collect();
        let exit = |cgroup| ExitCounts {
            cgroup,
            ..ExitCounts::default()
        };
        let exits = HashMap::from([(exited, exit(my_id)), (exited_unknown, exit(u64::MAX))]);
        cgroups.new_read();
        let read = cgroups_of(&processes, &exits, &mut cgroups);
        let expected = HashMap::from([
            (me, CgroupReading::Path(mine.clone())),
            (gone, CgroupReading::Unread),
            (exited, CgroupReading::Path(mine)),
            (exited_unknown, CgroupReading::Removed),
        ]);
        assert_eq!(read, expected);
    }

    /// The id the kernel gives the cgroup at `path`: the inode of its directory.
    fn cgroup_id(path: &str) -> u64 {
        use std::os::unix::fs::MetadataExt as _;
        let (mount, root) = crate::kernel::cgroup::v2_mount().unwrap();
        let relative = path
            .strip_prefix(root.as_str())
            .unwrap_or(path)
            .trim_start_matches('/');
        std::fs::metadata(mount.join(relative)).unwrap().ino()
    }
}
