//! `demo trace --min-duration` on a real program, with the real eBPF programs: only the faults
//! at least that slow are reported, and the summary still counts every fault, each completed
//! one in its class's histogram. Needs root, and fails (never skips) without.

mod common;

use std::{
    collections::BTreeSet,
    io::Write as _,
    process::{Command, Stdio},
};

use common::c_programs::compile_c;
use common::json::{of_kind, trace_to_file};
use common::{DEMO, require_root};
use serde_json::Value;

/// Touches 256 fresh anonymous pages, then reads the first page of the file `argv[1]`, dropped
/// from the page cache first, through a mapping: 256 minor faults, then a major one.
const TOUCH_THEN_READ: &str = r#"
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char *area = mmap(NULL, 256 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 256; i++) area[i * 4096] = 1;
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0) return 2;
    volatile char *file = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    return file == MAP_FAILED || file[0] != 7 ? 3 : 0;
}
"#;

/// The `--min-duration` of the test, in nanoseconds: a log2 bucket's lower bound, so the
/// summary's histogram says exactly how many faults took at least that long; near the middle
/// of the minor faults' durations here, so that the filter has faults on both sides.
const MIN_NS: u64 = 1024;

fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{value} is not a count"))
}

#[test]
fn min_duration_reports_only_slower_faults_and_the_summary_counts_every_fault() {
    require_root();
    let program = compile_c("touch_then_read", TOUCH_THEN_READ, &[]);
    // A file on a disk filesystem, written out, so that dropping it from the cache sticks.
    let data = common::test_dir().join("durations.data");
    let mut file = std::fs::File::create(&data).unwrap();
    file.write_all(&[7; 4096]).unwrap();
    file.sync_all().unwrap();
    let lines = trace_to_file(
        "min-duration",
        &["--min-duration", "1024ns"],
        &[program.as_os_str(), data.as_os_str()],
        &[],
        Stdio::null(),
    );
    let summary = of_kind(&lines, "summary")[0];
    assert_eq!(summary["child"], "exited with status 0", "{summary}");

    // Every fault reported took at least MIN_NS, and its parts add up to its duration.
    let listed = of_kind(&lines, "fault");
    for fault in &listed {
        let duration = number(&fault["duration_ns"]);
        assert!(duration >= MIN_NS, "{fault}");
        let time = &fault["time"];
        let parts: u64 = ["on_cpu_ns", "off_cpu_ns", "reclaim_ns", "compaction_ns"]
            .iter()
            .map(|part| number(&time[part]))
            .sum();
        assert_eq!(parts, duration, "{fault}");
    }

    // The summary counts every fault, listed or not: each completed one is in its class's
    // histogram, whose buckets add up to its count.
    let (minor, major) = (number(&summary["minor"]), number(&summary["major"]));
    assert!(minor >= 256 && major >= 1, "{summary}");
    let durations = &summary["durations"];
    for (class, count) in [("minor", minor), ("major", major)] {
        let histogram = &durations["by_class"][class];
        assert_eq!(number(&histogram["count"]), count, "{class}: {durations}");
        let in_buckets: u64 = (histogram["log2_buckets"].as_array().unwrap().iter())
            .map(|bucket| number(&bucket["count"]))
            .sum();
        assert_eq!(in_buckets, count, "{class}: {durations}");
    }
    assert_eq!(number(&durations["timed_faults"]), minor + major);

    // The kernel's own count agrees: rusage is what the trace completed (the program's faults
    // and demo's own before the exec) plus the get_user_pages faults of the exec, a few.
    let own = &summary["demo_own"];
    let completed = number(&summary["traced_completions"]);
    assert_eq!(
        completed,
        minor + major + number(&own["faults_before_exec"]) + number(&own["uprobes_page_faults"]),
        "{summary}"
    );
    let rusage = &summary["rusage"];
    let kernel = number(&rusage["minflt"]) + number(&rusage["majflt"]);
    let difference = summary["rusage_difference"].as_i64().unwrap();
    assert_eq!(kernel as i64 - completed as i64, difference, "{summary}");
    assert!((0..=8).contains(&difference), "{summary}");

    // The faults listed are exactly those of at least MIN_NS: as many as the histograms hold
    // from that bound up (a test that listed none, or all, would say nothing of the filter).
    let at_least: u64 = ["minor", "major"]
        .iter()
        .flat_map(|class| {
            durations["by_class"][class]["log2_buckets"]
                .as_array()
                .unwrap()
        })
        .filter(|bucket| number(&bucket["from_ns"]) >= MIN_NS)
        .map(|bucket| number(&bucket["count"]))
        .sum();
    assert_eq!(listed.len() as u64, at_least, "{durations}");
    // The slowest ten, which the summary names whatever was listed, show it too: each of them
    // that took MIN_NS is listed, and when one took less, every listed fault is among them.
    let slowest: Vec<&Value> = durations["slowest"].as_array().unwrap().iter().collect();
    let stamps = |faults: &[&Value]| -> BTreeSet<(u64, u64)> {
        faults
            .iter()
            .map(|fault| (number(&fault["tid"]), number(&fault["timestamp_ns"])))
            .collect()
    };
    let slow: Vec<&Value> = (slowest.iter().copied())
        .filter(|fault| number(&fault["duration_ns"]) >= MIN_NS)
        .collect();
    let listed_stamps = stamps(&listed);
    assert!(stamps(&slow).is_subset(&listed_stamps), "{durations}");
    if slow.len() < slowest.len() {
        assert_eq!(stamps(&slow), listed_stamps, "{durations}");
    }
    let in_order: Vec<u64> = slowest.iter().map(|f| number(&f["duration_ns"])).collect();
    assert!(in_order.is_sorted_by(|a, b| a >= b), "{in_order:?}");
    assert_eq!(slowest.len(), 10.min((minor + major) as usize));

    // The command's CPU time is its rusage's, and the shares are the total over it.
    let cpu = number(&rusage["user_ns"]) + number(&rusage["system_ns"]);
    assert_eq!(number(&durations["cpu_ns"]), cpu, "{summary}");
    let total = number(&durations["total_ns"]) as f64;
    if cpu > 0 {
        let share = durations["share_of_cpu"].as_f64().unwrap();
        assert!((share - total / cpu as f64).abs() < 1e-9, "{durations}");
    }
    let wall = number(&durations["wall_ns"]) as f64;
    let share = durations["share_of_wall"].as_f64().unwrap();
    assert!((share - total / wall).abs() < 1e-9, "{durations}");
}

#[test]
fn min_duration_takes_a_time_with_its_unit_and_needs_durations() {
    for (args, says) in [
        (vec!["--min-duration", "1"], "must be a time with its unit"),
        (
            vec!["--min-duration", "1 fortnight"],
            "must be a time with its unit",
        ),
        (vec!["--min-duration=-1ms"], "must be more than 0"),
        (
            vec!["--min-duration", "1ms", "--no-durations"],
            "--min-duration needs",
        ),
    ] {
        let output = Command::new(DEMO)
            .arg("trace")
            .args(&args)
            .args(["--", "/bin/true"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
