//! The in-kernel cost of a tracer's programs from `bpf_stats`: the bench turns the kernel's
//! counting on for its run, and reads each new program's run count and run time with bpftool
//! while the tracer still has them loaded.

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

/// True for a program that runs on every fault: demo's and bpftrace's name the fault
/// tracepoint, and the floor's are `top_empty_*`.
pub fn on_fault_path(name: &str) -> bool {
    name.contains("fault") || name.starts_with("top_empty")
}

/// Nanoseconds per run of the fault programs loaded since `before`, summed over them, or
/// `None` when none ran.
pub fn fault_ns_per_run(before: &BTreeSet<u64>) -> anyhow::Result<Option<f64>> {
    let new: Vec<(u64, u64)> = loaded_programs()?
        .into_iter()
        .filter(|p| !before.contains(&p.id) && on_fault_path(&p.name))
        .map(|p| (p.runs, p.run_time_ns))
        .collect();
    Ok(ns_per_run(&new))
}

/// Total time over total runs.
pub fn ns_per_run(programs: &[(u64, u64)]) -> Option<f64> {
    let runs: u64 = programs.iter().map(|(runs, _)| runs).sum();
    let time: u64 = programs.iter().map(|(_, time)| time).sum();
    (runs > 0).then(|| time as f64 / runs as f64)
}
