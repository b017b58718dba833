//! What the heap uprobes cost: malloc+free pairs of a process demo traces with them, and of a
//! process demo does not trace while it traces another with them (which must pay nothing).

use std::{path::Path, process::Command};

use anyhow::bail;

use super::modes::{Setup, stop, wait_for_file};

/// One way of running the heap workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapMode {
    Untraced,
    /// Untraced, while `demo trace --heap --pid` traces a sleeping process.
    BesideTrace,
    /// Under `demo trace -- CMD`, whose heap uprobes are on by default.
    Traced,
    /// Under `demo trace --no-heap -- CMD`.
    TracedNoHeap,
}

impl HeapMode {
    pub const ALL: [Self; 4] = [
        Self::Untraced,
        Self::BesideTrace,
        Self::Traced,
        Self::TracedNoHeap,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Untraced => "untraced",
            Self::BesideTrace => "untraced, demo traces another (--heap)",
            Self::Traced => "demo trace -- CMD (heap probes on)",
            Self::TracedNoHeap => "demo trace --no-heap -- CMD",
        }
    }

    /// Pairs per run: a few hundred milliseconds either way.
    fn pairs(self) -> u64 {
        match self {
            Self::Traced => 20_000,
            _ => 20_000_000,
        }
    }
}

/// ns per malloc+free pair in `mode`.
pub fn run(mode: HeapMode, setup: &Setup, heap: &Path) -> anyhow::Result<f64> {
    let pairs = mode.pairs().to_string();
    let workload = || {
        let mut command = Command::new("taskset");
        command.args(["-c", "0"]).arg(heap).arg(&pairs);
        command
    };
    let stdout = match mode {
        HeapMode::Untraced => workload().output()?.stdout,
        HeapMode::BesideTrace => {
            let mut sleeper = Command::new("sleep").arg("600").spawn()?;
            let out = setup.dir.join("heap-beside.json");
            let _ = std::fs::remove_file(&out);
            let mut tracer = Command::new("taskset")
                .args(["-c", "1"])
                .arg(setup.demo)
                .args(["trace", "--heap", "--format", "json", "--output"])
                .arg(&out)
                .args(["--pid", &sleeper.id().to_string()])
                .spawn()?;
            wait_for_file(&out, &mut tracer)?;
            let output = workload().output();
            stop(&mut tracer)?;
            sleeper.kill()?;
            sleeper.wait()?;
            output?.stdout
        }
        HeapMode::Traced | HeapMode::TracedNoHeap => {
            let out = setup.dir.join("heap-traced.json");
            let mut command = Command::new("taskset");
            command
                .args(["-c", "1"])
                .arg(setup.demo)
                .args(["trace", "--format", "json", "--output"])
                .arg(&out);
            if mode == HeapMode::TracedNoHeap {
                command.arg("--no-heap");
            }
            let output = command
                .args(["--", "taskset", "-c", "0"])
                .arg(heap)
                .arg(&pairs)
                .output()?;
            if !output.status.success() {
                bail!(
                    "demo trace failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            output.stdout
        }
    };
    let text = String::from_utf8_lossy(&stdout);
    match text
        .lines()
        .last()
        .and_then(|line| line.trim().parse().ok())
    {
        Some(ns) => Ok(ns),
        None => bail!("the heap workload printed no ns per pair: {text}"),
    }
}
