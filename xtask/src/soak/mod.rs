//! `cargo xtask soak --minutes N`: demo trace follows a process that maps, touches and unmaps
//! 64 MiB in a loop, while demo top watches ten short-lived processes start every second. It
//! samples both loaders' RSS, and checks that nothing was lost and no map filled.

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::command::{compile_c, release_demo};

pub struct SoakOptions {
    pub minutes: u64,
}

/// How much a loader's RSS may grow after the warm-up.
const GROWTH_LIMIT_KIB: u64 = 1024;

/// How often RSS is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// One RSS sample of both loaders, in KiB.
struct RssSample {
    at: Duration,
    trace_kib: u64,
    top_kib: u64,
}

pub fn soak(options: &SoakOptions) -> anyhow::Result<()> {
    let (demo, dir) = release_demo("soak")?;
    let maploop = compile_c(&dir, "maploop", include_str!("maploop.c"), &[])?;
    let duration = Duration::from_secs(options.minutes * 60);
    let warm_up = Duration::from_secs(60).min(duration / 2);

    let mut trace = Command::new(&demo)
        .args([
            // maploop prints nothing, so its stdout may carry the JSON Lines.
            "trace",
            "--follow",
            "--format",
            "json",
            "--output",
            "/dev/stdout",
            "--",
            "taskset",
            "-c",
            "0",
        ])
        .arg(&maploop)
        .args(["64", "200"])
        .stdout(Stdio::piped())
        .spawn()
        .context("start demo trace")?;
    // The trace writes tens of MB a second; only its line count and last line are kept.
    let trace_lines = keep_last_line(trace.stdout.take().context("the trace's stdout")?);
    let top_out = dir.join("top.json");
    let _ = std::fs::remove_file(&top_out);
    let mut top = Command::new(&demo)
        .args(["top", "--interval", "1", "--format", "json", "--output"])
        .arg(&top_out)
        .spawn()
        .context("start demo top")?;

    println!(
        "xtask: soak for {} minutes; RSS is checked from {} s on",
        options.minutes,
        warm_up.as_secs()
    );
    let start = Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    let mut spawned = 0u64;
    while start.elapsed() < duration {
        // Ten short-lived processes a second, for demo top to count and forget.
        for _ in 0..10 {
            Command::new("true")
                .status()
                .context("start a short-lived process")?;
            spawned += 1;
        }
        if start.elapsed() >= next_sample {
            samples.push(RssSample {
                at: start.elapsed(),
                trace_kib: rss_kib(&trace)?,
                top_kib: rss_kib(&top)?,
            });
            next_sample += SAMPLE_EVERY;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let full_maps = full_maps()?;
    stop(&mut top)?;
    stop(&mut trace)?;
    let (lines, last) = trace_lines
        .join()
        .map_err(|_| anyhow::anyhow!("the trace reader panicked"))??;
    let summary: Value = serde_json::from_str(&last).context("read the trace's summary")?;
    let top_dropped: u64 = std::fs::read_to_string(&top_out)?
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|interval| interval["dropped"].as_u64())
        .sum();

    println!(
        "\n{:>8} {:>14} {:>14}",
        "seconds", "trace RSS KiB", "top RSS KiB"
    );
    for sample in &samples {
        println!(
            "{:>8} {:>14} {:>14}",
            sample.at.as_secs(),
            sample.trace_kib,
            sample.top_kib
        );
    }
    let growth = |pick: fn(&RssSample) -> u64| {
        let after: Vec<u64> = samples
            .iter()
            .filter(|s| s.at >= warm_up)
            .map(pick)
            .collect();
        match (after.first(), after.iter().max()) {
            (Some(&first), Some(&max)) => max.saturating_sub(first),
            _ => 0,
        }
    };
    let trace_growth = growth(|s| s.trace_kib);
    let top_growth = growth(|s| s.top_kib);
    let lost = summary["lost"].as_u64().unwrap_or(u64::MAX);
    let faults = summary["faults_total"].as_u64().unwrap_or(0);
    println!(
        "\ntrace: {faults} faults in {lines} lines, {lost} lost; RSS grew {trace_growth} KiB after {} s",
        warm_up.as_secs()
    );
    println!(
        "top: {spawned} short-lived processes, {top_dropped} faults dropped; RSS grew {top_growth} KiB after {} s",
        warm_up.as_secs()
    );
    println!(
        "maps full at the end: {}",
        if full_maps.is_empty() {
            "none".to_owned()
        } else {
            full_maps.join(", ")
        }
    );
    let mut failures = Vec::new();
    if lost != 0 {
        failures.push(format!("the trace lost {lost} records"));
    }
    if top_dropped != 0 {
        failures.push(format!("demo top dropped {top_dropped} faults"));
    }
    for (who, grown) in [("demo trace", trace_growth), ("demo top", top_growth)] {
        if grown > GROWTH_LIMIT_KIB {
            failures.push(format!("{who}'s RSS grew {grown} KiB after the warm-up"));
        }
    }
    if !full_maps.is_empty() {
        failures.push(format!("full maps: {}", full_maps.join(", ")));
    }
    if faults == 0 {
        failures.push("the trace saw no fault".to_owned());
    }
    if !failures.is_empty() {
        bail!("the soak failed: {}", failures.join("; "));
    }
    println!("xtask: soak passed");
    Ok(())
}

/// Reads `stdout` to its end on a thread; returns the number of lines and the last one.
fn keep_last_line(stdout: std::process::ChildStdout) -> JoinHandle<anyhow::Result<(u64, String)>> {
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(1 << 20, stdout);
        let (mut lines, mut last, mut line) = (0u64, String::new(), String::new());
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok((lines, last));
            }
            lines += 1;
            std::mem::swap(&mut last, &mut line);
        }
    })
}

fn rss_kib(child: &Child) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .context("read a loader's /proc status (did it die?)")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .context("find VmRSS")
}

/// demo's hash maps that are at their maximum number of entries now.
fn full_maps() -> anyhow::Result<Vec<String>> {
    let output = Command::new("bpftool")
        .args(["--json", "map", "show"])
        .output()
        .context("run `bpftool --json map show`")?;
    let maps: Value = serde_json::from_slice(&output.stdout).context("read bpftool's map list")?;
    let mut full = Vec::new();
    for map in maps.as_array().into_iter().flatten() {
        let name = map["name"].as_str().unwrap_or("");
        let hash = map["type"]
            .as_str()
            .is_some_and(|kind| kind.contains("hash"));
        let ours = ["TARGETS", "TOP_COUNTS", "TOP_EXITS", "PAGE_COUNTS"].contains(&name);
        if !(hash && ours) {
            continue;
        }
        let id = map["id"].as_u64().unwrap_or(0).to_string();
        let max = map["max_entries"].as_u64().unwrap_or(0);
        let dump = Command::new("bpftool")
            .args(["--json", "map", "dump", "id", &id])
            .output()?;
        let entries = serde_json::from_slice::<Value>(&dump.stdout)
            .ok()
            .and_then(|v| v.as_array().map(Vec::len))
            .unwrap_or(0) as u64;
        if max > 1 && entries >= max {
            full.push(format!("{name} ({entries} of {max})"));
        }
    }
    Ok(full)
}

/// Stops a loader as Ctrl-C would and waits for it.
fn stop(child: &mut Child) -> anyhow::Result<()> {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait()?;
    if !status.success() {
        bail!("a loader ended with {status}");
    }
    Ok(())
}
