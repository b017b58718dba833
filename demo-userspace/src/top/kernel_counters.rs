//! `demo top --counters-only`: every process's faults from the kernel's own per-process
//! counters, with no program running per fault.

use std::collections::{HashMap, HashSet};

use demo_common::{ExitCounts, FaultCounters, TopCounts};

use super::{Snapshot, accounting::Accounting, is_dead};
use crate::kernel::{
    cgroup::CgroupScope,
    probes::{ProbeError, ProcessCounts, TopProbes, command_name},
};

/// Every process with faults since demo top started, and the pids still alive: the living from
/// /proc, and those that exited since the last interval from the counters the exit program
/// kept (with the command it captured, so that a process born and gone between two refreshes
/// is named). With `scope` (`--cgroup`), only the living in that cgroup or below it; the exit
/// program keeps no other process's exit.
pub fn snapshot(
    probes: &mut TopProbes,
    accounting: &Accounting,
    exits: &mut HashMap<u32, ExitCounts>,
    scope: Option<&CgroupScope>,
) -> Result<Snapshot, ProbeError> {
    // The cgroup's processes, listed once from its `cgroup.procs` files, rather than each
    // process of the machine's /proc/PID/cgroup read every interval.
    let members: Option<HashSet<u32>> = scope.map(|scope| scope.procs().into_iter().collect());
    let stats: Vec<_> = procfs::process::all_processes()
        .into_iter()
        .flatten()
        .filter_map(|process| {
            let process = process.ok()?;
            let pid = process.pid as u32;
            members
                .as_ref()
                .is_none_or(|members| members.contains(&pid))
                .then(|| process.stat().ok())?
        })
        .collect();
    // Taken after the stats: the kernel keeps a process's counters at its exit, before it can
    // leave /proc, so a process gone from the stats has its exit here, and none is missed for
    // a reading (which would count it twice at the next).
    exits.extend(probes.take_exits()?);
    let mut alive = HashSet::new();
    let mut snapshot = Vec::new();
    for stat in stats {
        let pid = stat.pid as u32;
        let exit = exits.get(&pid);
        if is_dead(&stat) {
            // A zombie stays in /proc until it is reaped; it was shown when it exited.
            if exit.is_none() {
                continue;
            }
        } else {
            alive.insert(pid);
        }
        let counted = accounting.since_start(pid, Some(&stat), exit.map(|e| e.counters));
        snapshot.push((pid, process(stat.comm, counted)));
    }
    let seen: HashSet<u32> = snapshot.iter().map(|(pid, _)| *pid).collect();
    for (pid, exit) in exits {
        if !seen.contains(pid) {
            let counted = accounting.since_start(*pid, None, Some(exit.counters));
            snapshot.push((*pid, process(command_name(&exit.comm), counted)));
        }
    }
    snapshot.retain(|(_, process)| process.counts.faults > 0);
    Ok(Snapshot {
        processes: snapshot,
        alive,
    })
}

/// A process whose faults are its minor and major counts: the split by access and mode is
/// unknown without a program per fault.
fn process(comm: String, counted: Option<FaultCounters>) -> ProcessCounts {
    ProcessCounts {
        counts: TopCounts {
            faults: counted.map_or(0, |c| c.minor + c.major),
            ..TopCounts::default()
        },
        split: false,
        comm,
        accounted: counted,
        times: None,
    }
}
