//! Whether demo keeps up when every CPU faults at once: one thread per CPU touches a million
//! fresh pages (4 GiB each), traced with JSON to a file, the heaviest output.

use std::{path::Path, process::Command};

use anyhow::bail;

use super::modes::{last_json_line, loader_ns_per_event};

/// What the all-CPU run measured.
#[derive(Clone, Debug, Default)]
pub struct ScaleRun {
    pub cpus: usize,
    pub faults: u64,
    pub lost: u64,
    pub loader_ns_per_event: f64,
    pub peak_rss_kib: u64,
    pub traced_gib: f64,
}

pub const PAGES_PER_THREAD: u64 = 1_048_576;

pub fn run(demo: &Path, touch_threads: &Path, dir: &Path) -> anyhow::Result<ScaleRun> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let out = dir.join("scale.json");
    let output = Command::new(demo)
        .args(["trace", "--format", "json", "--output"])
        .arg(&out)
        .arg("--")
        .arg(touch_threads)
        .args([cpus.to_string(), PAGES_PER_THREAD.to_string()])
        .output()?;
    if !output.status.success() {
        bail!(
            "demo trace failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let summary = last_json_line(&out)?;
    // The file is most of a gigabyte; only its summary matters.
    let _ = std::fs::remove_file(&out);
    Ok(ScaleRun {
        cpus,
        faults: summary["faults_total"].as_u64().unwrap_or(0),
        lost: summary["lost"].as_u64().unwrap_or(u64::MAX),
        loader_ns_per_event: loader_ns_per_event(&summary).unwrap_or(f64::NAN),
        peak_rss_kib: summary["loader"]["peak_rss_kib"].as_u64().unwrap_or(0),
        traced_gib: (cpus as u64 * PAGES_PER_THREAD * 4096) as f64 / (1u64 << 30) as f64,
    })
}
