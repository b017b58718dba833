//! The in-kernel cost of a tracer's programs from `bpf_stats`: the bench turns the kernel's
//! counting on for its run, and reads each new program's run count and run time with bpftool
//! while the tracer still has them loaded (or from demo trace's own summary).

use std::{collections::BTreeSet, process::Command};

use anyhow::Context as _;
use serde_json::Value;

/// `kernel.bpf_stats_enabled` on while this lives, back to what it was after.
pub struct StatsEnabled {
    before: String,
}

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl StatsEnabled {
    pub fn turn_on() -> anyhow::Result<Self> {
        let before = std::fs::read_to_string(SYSCTL).context("read kernel.bpf_stats_enabled")?;
        std::fs::write(SYSCTL, "1").context("turn kernel.bpf_stats_enabled on")?;
        Ok(Self { before })
    }
}

impl Drop for StatsEnabled {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, self.before.trim());
    }
}

/// One loaded program, as bpftool lists it.
#[derive(Clone, Debug)]
pub struct LoadedProgram {
    pub id: u64,
    pub name: String,
    pub runs: u64,
    pub run_time_ns: u64,
}

/// Every program loaded now.
pub fn loaded_programs() -> anyhow::Result<Vec<LoadedProgram>> {
    let output = Command::new("bpftool")
        .args(["--json", "prog", "show"])
        .output()
        .context("run `bpftool --json prog show`")?;
    let listed: Value =
        serde_json::from_slice(&output.stdout).context("read bpftool's program list")?;
    Ok(listed
        .as_array()
        .map(|programs| {
            programs
                .iter()
                .map(|program| LoadedProgram {
                    id: program["id"].as_u64().unwrap_or(0),
                    name: program["name"].as_str().unwrap_or("").to_owned(),
                    runs: program["run_cnt"].as_u64().unwrap_or(0),
                    run_time_ns: program["run_time_ns"].as_u64().unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// The ids loaded now, to tell a tracer's programs from those that were there before it.
pub fn loaded_ids() -> anyhow::Result<BTreeSet<u64>> {
    Ok(loaded_programs()?.into_iter().map(|p| p.id).collect())
}

/// One program's runs and their time in the kernel, from `bpf_stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramCost {
    pub name: String,
    pub runs: u64,
    pub run_time_ns: u64,
}

impl ProgramCost {
    pub fn ns_per_run(&self) -> Option<f64> {
        ns_per_run(&[(self.runs, self.run_time_ns)])
    }
}

/// The programs that time a fault rather than start one: the completions on the software perf
/// events, the scheduler's switch, direct reclaim and compaction. They run per completion, per
/// context switch of every process, per stall, so their runs are not the faults' count.
const TIMING_PROGRAMS: [&str; 5] = [
    "fault_done",
    "fault_sched",
    "reclaim_",
    "memcg_reclaim",
    "compaction_",
];

/// True for a program that runs at the start of every fault: demo's and bpftrace's name the
/// fault tracepoint, and the floor's are `top_empty_*`.
pub fn on_fault_path(name: &str) -> bool {
    let timing = TIMING_PROGRAMS
        .iter()
        .any(|prefix| name.starts_with(prefix) || name.starts_with(&format!("top_{prefix}")));
    !timing && (name.contains("fault") || name.starts_with("top_empty"))
}

/// The programs loaded since `before` that ran, by name.
pub fn new_programs(before: &BTreeSet<u64>) -> anyhow::Result<Vec<ProgramCost>> {
    let mut programs: Vec<ProgramCost> = loaded_programs()?
        .into_iter()
        .filter(|p| !before.contains(&p.id) && p.runs > 0)
        .map(|p| ProgramCost {
            name: p.name,
            runs: p.runs,
            run_time_ns: p.run_time_ns,
        })
        .collect();
    programs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(programs)
}

/// Nanoseconds per run of `programs` that start a fault, over all of them, or `None` when none
/// ran.
pub fn fault_ns_per_run(programs: &[ProgramCost]) -> Option<f64> {
    let starts: Vec<(u64, u64)> = programs
        .iter()
        .filter(|p| on_fault_path(&p.name))
        .map(|p| (p.runs, p.run_time_ns))
        .collect();
    ns_per_run(&starts)
}

/// Total time over total runs.
pub fn ns_per_run(programs: &[(u64, u64)]) -> Option<f64> {
    let runs: u64 = programs.iter().map(|(runs, _)| runs).sum();
    let time: u64 = programs.iter().map(|(_, time)| time).sum();
    (runs > 0).then(|| time as f64 / runs as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_programs_that_start_a_fault_are_on_its_path() {
        for start in [
            "page_fault_user",
            "page_fault_kernel",
            "page_fault_perf",
            "top_fault_user",
            "top_empty_user",
        ] {
            assert!(on_fault_path(start), "{start}");
        }
        for timing in [
            "fault_done_minor",
            "fault_done_mino",
            "fault_sched_switch",
            "reclaim_begin",
            "memcg_reclaim_end",
            "compaction_begin",
            "top_fault_done_minor",
            "task_newtask",
        ] {
            assert!(!on_fault_path(timing), "{timing}");
        }
    }

    #[test]
    fn the_fault_path_cost_is_over_the_starts_alone() {
        let cost = |name: &str, runs, run_time_ns| ProgramCost {
            name: name.to_owned(),
            runs,
            run_time_ns,
        };
        let programs = [
            cost("page_fault_user", 1000, 100_000),
            cost("page_fault_kernel", 0, 0),
            cost("fault_done_minor", 1000, 300_000),
            cost("fault_sched_switch", 50, 1_000),
        ];
        assert_eq!(fault_ns_per_run(&programs), Some(100.0));
        assert_eq!(fault_ns_per_run(&programs[2..]), None);
        assert_eq!(programs[2].ns_per_run(), Some(300.0));
    }
}
