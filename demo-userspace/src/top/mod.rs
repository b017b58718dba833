//! `demo top`: which processes fault most, counted in the kernel per process and CPU, with no
//! event per fault; and, with `--pid --pages`, where in one process the faults land.

mod accounting;
mod kernel_counters;
mod rank;

use std::{
    collections::{HashMap, HashSet},
    io,
    time::Duration,
};

use anyhow::Context as _;

pub use self::rank::{Row, SortKey, sort_rows};
use self::{accounting::Accounting, rank::rank};
use crate::{
    kernel::probes::{ProcessCounts, TopCounting, TopProbes},
    kernel::procmem::MappingTable,
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
#[derive(Clone, Debug, serde::Serialize)]
pub struct PageReport {
    pub pid: u32,
    /// (page address, faults, mapping name), hottest first.
    pub pages: Vec<(u64, u64, String)>,
    /// (mapping name, faults), hottest first.
    pub mappings: Vec<(String, u64)>,
}

pub async fn run(
    options: &TopOptions,
    probes: &mut TopProbes,
    out: &mut dyn TopOutput,
) -> anyhow::Result<()> {
    // Installed first, so a signal at any moment ends top well.
    let shutdown = crate::kernel::shutdown::requested();
    if let Some(pid) = options.pages_of {
        crate::kernel::process::check_exists(pid)?;
        probes.watch_pages(pid)?;
    }
    let accounting = Accounting::at_start();
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
        let interval = take_interval(
            options,
            probes,
            &accounting,
            &mut before,
            (now - last).as_secs_f64(),
        )?;
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

/// Reads the counters, ranks the processes, and forgets those that exited (they were counted
/// in this interval, the last one they ran in).
fn take_interval(
    options: &TopOptions,
    probes: &mut TopProbes,
    accounting: &Accounting,
    before: &mut HashMap<u32, u64>,
    seconds: f64,
) -> anyhow::Result<Interval> {
    let exits: HashMap<u32, ExitCounts> = probes.take_exits()?.into_iter().collect();
    let Snapshot { processes, alive } = match options.counting() {
        TopCounting::KernelCounters { .. } => kernel_counters::snapshot(accounting, &exits),
        TopCounting::PerFault { .. } => per_fault_snapshot(probes, accounting, &exits)?,
    };
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
            probes.forget(row.pid)?;
        }
    }
    if let Some(pid) = options.pages_of {
        rows.retain(|row| row.pid == pid);
    }
    if !options.all_rows {
        rows.truncate(options.count);
    }
    let (dropped, pages_evicted) = probes.drops()?;
    let pages = match options.pages_of {
        Some(pid) => Some(page_report(pid, probes.pages_of(pid)?, options.count)?),
        None => None,
    };
    Ok(Interval {
        seconds,
        rows,
        dropped,
        pages_evicted,
        pages,
    })
}

/// One interval's reading: every process with faults, and the pids still alive.
struct Snapshot {
    processes: Vec<(u32, ProcessCounts)>,
    alive: HashSet<u32>,
}

/// The processes the fault programs counted, with the kernel's counters of each, and the pids
/// still alive.
fn per_fault_snapshot(
    probes: &TopProbes,
    accounting: &Accounting,
    exits: &HashMap<u32, ExitCounts>,
) -> anyhow::Result<Snapshot> {
    let mut snapshot = probes.processes()?;
    // One read of each process's /proc stat says both whether it lives and its counters.
    let mut alive = HashSet::new();
    for (pid, process) in &mut snapshot {
        let stat = procfs::process::Process::new(*pid as i32)
            .and_then(|p| p.stat())
            .ok();
        if stat.as_ref().is_some_and(|s| !is_dead(s)) {
            alive.insert(*pid);
        }
        let exited = exits.get(pid).map(|exit| exit.counters);
        process.accounted = accounting.since_start(*pid, stat.as_ref(), exited);
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
