//! The kernel's own minor and major fault counts of each process since demo top started: from
//! /proc while a process lives, from the counters the kernel side kept when it exited.

use std::collections::HashMap;

use demo_common::FaultCounters;
use procfs::process::Stat;

use crate::kernel::procmem::fault_counters_of;

/// Every process's counters when demo top started, to subtract from later readings.
pub struct Accounting {
    /// Per pid: its start time (clock ticks since boot, which tells a reused pid) and counters.
    baseline: HashMap<u32, (u64, FaultCounters)>,
}

impl Accounting {
    /// Reads the counters of every process now.
    pub fn at_start() -> Self {
        let baseline = procfs::process::all_processes()
            .into_iter()
            .flatten()
            .filter_map(|process| process.ok()?.stat().ok())
            .map(|stat| (stat.pid as u32, (stat.starttime, fault_counters_of(&stat))))
            .collect();
        Self { baseline }
    }

    /// Process `pid`'s counts since demo top started: from `exited` (its final counters, when
    /// it exited) or else from `stat`, its /proc stat now; `None` when neither has them.
    pub fn since_start(
        &self,
        pid: u32,
        stat: Option<&Stat>,
        exited: Option<FaultCounters>,
    ) -> Option<FaultCounters> {
        let (started, now) = match (exited, stat) {
            (Some(counters), _) => (None, counters),
            (None, Some(stat)) => (Some(stat.starttime), fault_counters_of(stat)),
            (None, None) => return None,
        };
        Some(since(self.baseline.get(&pid).copied(), started, now))
    }
}

/// `now` minus the baseline, when the baseline is of the same process (a process born after
/// the start has none: its counters began at 0).
fn since(
    baseline: Option<(u64, FaultCounters)>,
    started: Option<u64>,
    now: FaultCounters,
) -> FaultCounters {
    let base = match baseline {
        Some((base_started, counters)) if started.is_none_or(|s| s == base_started) => counters,
        _ => FaultCounters::default(),
    };
    FaultCounters {
        minor: now.minor.saturating_sub(base.minor),
        major: now.major.saturating_sub(base.major),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(minor: u64, major: u64) -> FaultCounters {
        FaultCounters { minor, major }
    }

    #[test]
    fn subtracts_the_baseline_of_the_same_process_only() {
        let base = Some((100, counters(50, 2)));
        assert_eq!(since(base, Some(100), counters(80, 3)), counters(30, 1));
        // An exited process's start time is unknown; its pid is taken to be the same process.
        assert_eq!(since(base, None, counters(80, 3)), counters(30, 1));
        // A reused pid, or a process born after the start, counts from zero.
        assert_eq!(since(base, Some(200), counters(7, 0)), counters(7, 0));
        assert_eq!(since(None, Some(200), counters(7, 0)), counters(7, 0));
    }

    #[test]
    fn this_process_is_in_the_baseline_and_counts_its_own_faults() {
        let accounting = Accounting::at_start();
        let me = std::process::id();
        let stat = || procfs::process::Process::myself().unwrap().stat().unwrap();
        let before = accounting.since_start(me, Some(&stat()), None).unwrap();
        // A fresh anonymous mapping: a heap buffer may reuse memory that is already resident.
        // SAFETY: a new private anonymous mapping, written within its length and unmapped.
        unsafe {
            let length = 64 * 4096;
            let area = libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(area, libc::MAP_FAILED);
            for page in 0..64 {
                std::ptr::write_volatile(area.cast::<u8>().add(page * 4096), 1);
            }
            libc::munmap(area, length);
        }
        let after = accounting.since_start(me, Some(&stat()), None).unwrap();
        assert!(after.minor >= before.minor + 64, "{before:?} {after:?}");
        let exited = Some(counters(u64::MAX, 0));
        assert_eq!(accounting.since_start(me, None, exited).unwrap().major, 0);
        assert_eq!(accounting.since_start(me, None, None), None);
    }
}
