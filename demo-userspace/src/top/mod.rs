//! `demo top`: which processes fault most, counted in the kernel per process and CPU, with no
//! event per fault; and, with `--pid --pages`, where in one process the faults land.

mod accounting;
mod kernel_counters;
pub mod ledger;
mod rank;

use std::{
    collections::{HashMap, HashSet},
    io,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;

pub use self::rank::{Row, SortKey, sort_rows};
use self::{
    accounting::Accounting,
    ledger::{CgroupReading, Ledger, Reading, SeriesOptions},
    rank::rank,
};
use crate::{
    kernel::cgroup::Cgroups,
    kernel::mappings::MappingTable,
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
    pub interval: Duration,
    pub count: usize,
    pub sort: SortKey,
    pub duration: Option<Duration>,
    /// `--pid PID --pages`: count this process's faults per page too.
    pub pages_of: Option<u32>,
    /// Every row in each interval, not only the first `count`: the terminal view sorts them by
    /// the key the user picks, and cuts them itself.
    pub all_rows: bool,
    /// `--counters-only`: no program per fault, only the kernel's own counters.
    pub counters_only: bool,
    /// With `counters_only`, programs that count nothing on the fault tracepoints (bench).
    pub empty_fault_programs: bool,
    /// `--listen`: keep the counters a metrics endpoint exports, labelled and bounded so.
    pub series: Option<SeriesOptions>,
}

impl TopOptions {
    /// What the kernel side counts for these options.
    pub fn counting(&self) -> TopCounting {
        if self.counters_only {
            TopCounting::KernelCounters {
                empty_fault_programs: self.empty_fault_programs,
            }
        } else {
            TopCounting::PerFault {
                pages: self.pages_of.is_some(),
            }
        }
    }
}

/// One interval of `demo top`.
#[derive(Clone, Debug)]
pub struct Interval {
    pub seconds: f64,
    pub rows: Vec<Row>,
    /// Faults uncounted because the process map was full.
    pub dropped: u64,
    /// Pages evicted from the page map.
    pub pages_evicted: u64,
    pub pages: Option<PageReport>,
}

/// Where one process faults: its hottest pages and mappings.
#[derive(Clone, Debug)]
pub struct PageReport {
    pub pid: u32,
    /// (page address, faults, mapping name), hottest first.
    pub pages: Vec<(u64, u64, String)>,
    /// (mapping name, faults), hottest first.
    pub mappings: Vec<(String, u64)>,
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
    /// With `--listen`: the exported counters, and where the cgroups are.
    metrics: Option<(Ledger, Cgroups)>,
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
        if let Some(pid) = options.pages_of {
            crate::kernel::process::check_exists(pid)?;
            probes.watch_pages(pid)?;
        }
        let split = matches!(options.counting(), TopCounting::PerFault { .. });
        let metrics = options
            .series
            .map(|series| (Ledger::new(series, split), Cgroups::new()));
        let state = State {
            probes,
            accounting: Accounting::at_start(),
            exits: HashMap::new(),
            exits_waiting: HashSet::new(),
            metrics,
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
        let mut before: HashMap<u32, u64> = HashMap::new();
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
            if stop || done {
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
            .metrics
            .as_ref()
            .map(|(ledger, _)| ledger.clone())
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
    /// Reads every process's counts, and adds what grew to the exported counters.
    fn read(&mut self, counting: TopCounting) -> anyhow::Result<Snapshot> {
        let snapshot = match counting {
            TopCounting::KernelCounters { .. } => {
                kernel_counters::snapshot(&mut self.probes, &self.accounting, &mut self.exits)?
            }
            TopCounting::PerFault { .. } => {
                per_fault_snapshot(&mut self.probes, &self.accounting, &mut self.exits)?
            }
        };
        if let Some((ledger, cgroups)) = &mut self.metrics {
            cgroups.new_read();
            let readings: Vec<Reading> = snapshot
                .processes
                .iter()
                .map(|(pid, process)| reading(*pid, process, self.exits.get(pid), cgroups))
                .collect();
            ledger.absorb(&readings);
        }
        Ok(snapshot)
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

    /// Reads the counters, ranks the processes, and forgets those that exited (they were
    /// counted in this interval, the last one they ran in).
    fn take_interval(
        &mut self,
        options: &TopOptions,
        before: &mut HashMap<u32, u64>,
        seconds: f64,
    ) -> anyhow::Result<Interval> {
        let Snapshot { processes, alive } = self.read(options.counting())?;
        self.forget_shown_exits(&processes);
        let mut rows = rank(&processes, before, seconds, options.sort, |pid| {
            alive.contains(&pid)
        });
        before.clear();
        let per_fault = matches!(options.counting(), TopCounting::PerFault { .. });
        for row in &rows {
            if !row.exited {
                before.insert(row.pid, row.faults);
            } else if per_fault {
                // Only the per-fault programs keep an entry per process.
                self.probes.forget(row.pid)?;
            }
        }
        if let Some(pid) = options.pages_of {
            rows.retain(|row| row.pid == pid);
        }
        if !options.all_rows {
            rows.truncate(options.count);
        }
        let drops = self.probes.drops()?;
        let pages = match options.pages_of {
            Some(pid) => Some(page_report(pid, self.probes.pages_of(pid)?, options.count)?),
            None => None,
        };
        Ok(Interval {
            seconds,
            rows,
            dropped: drops.faults(),
            pages_evicted: drops.pages_evicted,
            pages,
        })
    }
}

/// What the exported counters take from one process: its counts, and its cgroup, from the
/// kernel's record of its exit when it is gone, from /proc while it lives.
fn reading(
    pid: u32,
    process: &ProcessCounts,
    exit: Option<&ExitCounts>,
    cgroups: &mut Cgroups,
) -> Reading {
    let cgroup = match exit {
        Some(exit) => cgroups
            .path_of(exit.cgroup)
            .map_or(CgroupReading::Removed, CgroupReading::Path),
        None => Cgroups::of_process(pid).map_or(CgroupReading::Unread, CgroupReading::Path),
    };
    Reading {
        pid,
        comm: process.comm.clone(),
        cgroup,
        split: process.split.then_some(process.counts.by_kind),
        accounted: process.accounted,
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

fn page_report(pid: u32, mut pages: Vec<(u64, u64)>, count: usize) -> anyhow::Result<PageReport> {
    let maps = MappingTable::read(pid as i32)
        .with_context(|| format!("read the mappings of pid {pid}"))
        .unwrap_or_default();
    pages.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut mappings: HashMap<String, u64> = HashMap::new();
    let named: Vec<(u64, u64, String)> = pages
        .iter()
        .map(|&(page, faults)| {
            let name = maps.name_of(page).to_string();
            *mappings.entry(name.clone()).or_default() += faults;
            (page, faults, name)
        })
        .collect();
    let mut mappings: Vec<(String, u64)> = mappings.into_iter().collect();
    mappings.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(PageReport {
        pid,
        pages: named.into_iter().take(count).collect(),
        mappings,
    })
}
