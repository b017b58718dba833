//! Integration tests that load the real eBPF programs into the running kernel. They need root;
//! `cargo xtask test` runs them as root, and they fail (never skip) without it.

use std::{
    os::unix::process::CommandExt as _,
    process::{Command, Output},
};

use serde_json::Value;

const DEMO: &str = env!("CARGO_BIN_EXE_demo");

fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the privileged tests load eBPF programs and need root; run them with `cargo xtask test`"
    );
}

fn demo(args: &[&str]) -> Output {
    require_root();
    let output = Command::new(DEMO).args(args).output().expect("start demo");
    assert!(
        output.status.success(),
        "demo {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

fn of_kind<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|line| line["kind"] == kind).collect()
}

#[test]
fn mmap_walk_faults_exactly_the_seed_pages() {
    let lines = json_lines(&demo(&["alloc", "mmap", "--format", "json"]));

    let region = of_kind(&lines, "region");
    assert_eq!(region.len(), 1);
    assert_eq!(region[0]["size"], 20000);
    assert_eq!(region[0]["pages"], 5);
    assert_eq!(region[0]["page_offset"], 0);

    let in_array: Vec<(u64, i64, u64)> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|fault| fault["region"] == "arr")
        .map(|fault| {
            assert_eq!(fault["access"], "write", "{fault}");
            assert_eq!(fault["present"], false, "{fault}");
            assert_eq!(fault["mode"], "user", "{fault}");
            assert_eq!(fault["error_code"], 6, "{fault}");
            assert_eq!(fault["mapping"], "[anon]", "{fault}");
            assert_eq!(fault["scenario"], "mmap");
            (
                fault["step"].as_u64().unwrap(),
                fault["index"].as_i64().unwrap(),
                fault["page"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(in_array, vec![(2, 1500, 1), (4, 0, 0), (5, 3000, 2)]);

    let steps = of_kind(&lines, "step");
    let actions: Vec<&str> = steps
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "arr = mmap(NULL, 20000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)",
            "arr[1500] = 2",
            "arr[1501] = 3",
            "arr[0] = 4",
            "arr[3000] = 5"
        ]
    );
    let resident: Vec<Value> = steps.iter().map(|s| s["resident_pages"].clone()).collect();
    assert_eq!(
        resident,
        [
            serde_json::json!([]),
            serde_json::json!([1]),
            serde_json::json!([1]),
            serde_json::json!([0, 1]),
            serde_json::json!([0, 1, 2])
        ]
    );
    let rss: Vec<u64> = steps
        .iter()
        .map(|s| s["rss_kib"].as_u64().unwrap())
        .collect();
    assert_eq!(rss, [0, 4, 4, 8, 12]);
    for step in &steps {
        assert_eq!(step["agrees"], true, "{step}");
        let vma = &step["vma"];
        assert!(vma["start"].as_str().unwrap().starts_with("0x"));
        if step["vma_merged"] == false {
            assert_eq!(vma["size_kib"], 20, "{step}");
            assert_eq!(vma["rss_kib"], step["rss_kib"], "{step}");
        }
    }
    assert!(steps[4]["vma"]["dirty_kib"].as_u64().unwrap() >= 12);

    let summary = of_kind(&lines, "summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["faults_in_region"], 3);
    assert_eq!(summary[0]["lost"], 0);
    let total = summary[0]["faults_total"].as_u64().unwrap();
    assert_eq!(total as usize, of_kind(&lines, "fault").len());
}

#[test]
fn text_report_shows_each_step_in_80_columns() {
    let output = demo(&["alloc", "mmap"]);
    let text = String::from_utf8(output.stdout).unwrap();
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line}");
    }
    for expected in [
        "step 2  arr[1500] = 2",
        "  fault     arr[1500] (+6000) on page 1 = arr[1024..2047]",
        "            write, page not present, user mode (error code 0x6)",
        "step 3  arr[1501] = 3\n  fault     none in arr",
        "  pages     [##*..]  3 of 5 resident, 12 KiB",
        "  kernel    pagemap shows pages 0, 1 and 2 present, as the faults say",
        "summary: 3 faults in the array",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn demo_without_arguments_runs_the_mmap_walk() {
    let lines = json_lines(&demo(&["--format", "json"]));
    let summaries = of_kind(&lines, "summary");
    let scenarios: Vec<&str> = summaries
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(scenarios, ["mmap"]);
    assert_eq!(summaries[0]["faults_in_region"], 3);
}

#[test]
fn without_root_demo_says_so_in_one_sentence() {
    require_root();
    let output = Command::new(DEMO)
        .args(["alloc", "mmap"])
        .uid(65534)
        .gid(65534)
        .env_remove("SUDO_UID")
        .output()
        .expect("start demo as nobody");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: demo needs root (or CAP_BPF and CAP_PERFMON)"),
        "{stderr}"
    );
    assert!(stderr.contains("sudo"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn demo_mounts_tracefs_when_it_is_missing() {
    require_root();
    let tracefs = std::path::Path::new("/sys/kernel/tracing/events");
    if tracefs.is_dir() {
        nix::mount::umount("/sys/kernel/tracing").expect("unmount tracefs for the test");
    }
    assert!(!tracefs.is_dir());
    let lines = json_lines(&demo(&["alloc", "mmap", "--format", "json"]));
    assert_eq!(of_kind(&lines, "summary")[0]["faults_in_region"], 3);
    assert!(tracefs.is_dir(), "demo did not leave tracefs mounted");
}

#[test]
fn no_program_of_ours_stays_loaded_after_exit() {
    demo(&["alloc", "mmap", "--format", "json"]);
    let ours: Vec<String> = aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter_map(|program| program.name_as_str().map(str::to_owned))
        .filter(|name| name.starts_with("page_fault_"))
        .collect();
    assert!(ours.is_empty(), "still loaded: {ours:?}");
}
