//! Failure paths with the real programs loaded: signals, a killed target, a panic, two
//! instances at once, a tiny ring buffer, and bad input that only the kernel can reveal.
//! After each, nothing of ours may stay loaded and no child may stay running. They need root.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::c_programs::compile_c;
use common::json::{demo, json_file, json_lines, of_kind, parse_line};
use common::kernel::assert_nothing_of_ours_is_loaded;
use common::{DEMO, assert_one_sentence, output_file, require_root};
use serde_json::Value;

fn gone(pid: u64) -> bool {
    // A zombie waiting for init to reap it runs nothing; count it as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting until {what}");
}

/// Starts `demo trace --format json -o FILE ARGS` and waits for its start line.
fn start_trace(name: &str, args: &[&str], env: &[(&str, &str)]) -> (Child, PathBuf, Value) {
    require_root();
    let out = output_file(name);
    let _ = std::fs::remove_file(&out);
    let mut child = Command::new(DEMO)
        .args(["trace", "--format", "json", "--output"])
        .arg(&out)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut start = Value::Null;
    wait_until("demo trace attached", || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            start = parse_line(line);
            return true;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "demo trace ended early"
        );
        false
    });
    (child, out, start)
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) with a pid we started.
    assert_eq!(unsafe { libc::kill(pid as i32, signal) }, 0);
}

#[test]
fn sigint_and_sigterm_end_the_trace_cleanly() {
    for (name, signo) in [("sigint", libc::SIGINT), ("sigterm", libc::SIGTERM)] {
        let (mut tracer, out, start) = start_trace(name, &["--", "sleep", "30"], &[]);
        let traced = start["pid"].as_u64().unwrap();
        signal(tracer.id(), signo);
        assert!(tracer.wait().unwrap().success(), "{name}");
        let lines = json_file(&out);
        let summary = &of_kind(&lines, "summary")[0];
        assert_eq!(summary["ended_by"], "interrupt", "{name}");
        assert_eq!(summary["child"], "killed by SIGKILL", "{name}");
        assert!(gone(traced), "{name}: the traced sleep still runs");
        assert_nothing_of_ours_is_loaded();
    }
}

#[test]
fn a_killed_target_ends_the_trace_with_its_signal() {
    let (mut tracer, out, start) = start_trace("killed", &["--", "sleep", "30"], &[]);
    signal(start["pid"].as_u64().unwrap() as u32, libc::SIGKILL);
    // demo exits as the command did, as strace does: 128 plus the signal.
    assert_eq!(tracer.wait().unwrap().code(), Some(128 + libc::SIGKILL));
    let lines = json_file(&out);
    let summary = &of_kind(&lines, "summary")[0];
    assert_eq!(summary["ended_by"], "exit");
    assert_eq!(summary["child"], "killed by SIGKILL");
    assert_nothing_of_ours_is_loaded();
}

#[test]
fn a_panic_leaves_nothing_loaded_and_no_child_running() {
    let (mut tracer, _, start) = start_trace(
        "panic",
        &["--", "sleep", "30"],
        &[
            ("DEMO_DEBUG_PANIC", "after-attach"),
            ("RUST_BACKTRACE", "0"),
        ],
    );
    let status = tracer.wait().unwrap();
    assert!(!status.success(), "the forced panic did not happen");
    let traced = start["pid"].as_u64().unwrap();
    wait_until("the orphaned command died with its tracer", || gone(traced));
    assert_nothing_of_ours_is_loaded();
}

#[test]
fn a_pid_target_is_left_running_when_the_trace_stops() {
    require_root();
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let (mut tracer, out, _) = start_trace("pid-stop", &["--pid", &pid], &[]);
    signal(tracer.id(), libc::SIGTERM);
    assert!(tracer.wait().unwrap().success());
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "demo must not kill a --pid target"
    );
    assert!(of_kind(&json_file(&out), "summary")[0]["child"].is_null());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_nothing_of_ours_is_loaded();
}

/// Touches N pages of a fresh mapping, one every 2 ms, so two of it overlap in time.
const SLOW_TOUCHER: &str = r#"
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long pages = atol(argv[1]);
    char *area = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (long i = 0; i < pages; i++) { area[i * 4096] = 1; usleep(2000); }
    return 0;
}
"#;

#[test]
fn two_instances_tracing_different_processes_do_not_disturb_each_other() {
    require_root();
    let program = compile_c("slow_toucher", SLOW_TOUCHER, &[]);
    let run = |pages: &str| {
        let out = output_file(&format!("pair-{pages}"));
        let child = Command::new(DEMO)
            .args(["trace", "--format", "json", "--output"])
            .arg(&out)
            .arg("--")
            .arg(&program)
            .arg(pages)
            .spawn()
            .unwrap();
        (child, out)
    };
    let (mut first, first_out) = run("150");
    let (mut second, second_out) = run("250");
    assert!(first.wait().unwrap().success());
    assert!(second.wait().unwrap().success());
    for (out, pages) in [(first_out, 150), (second_out, 250)] {
        let lines = json_file(&out);
        let pid = &of_kind(&lines, "trace")[0]["pid"];
        assert!(
            of_kind(&lines, "fault").iter().all(|f| &f["pid"] == pid),
            "foreign faults"
        );
        let region = of_kind(&lines, "region")
            .into_iter()
            .find(|r| r["size"] == pages * 4096)
            .expect("the touched region");
        let touched = of_kind(&lines, "fault")
            .into_iter()
            .filter(|f| f["region"] == region["name"])
            .count();
        assert_eq!(touched, pages as usize);
        assert_eq!(of_kind(&lines, "summary")[0]["lost"], 0);
    }
    assert_nothing_of_ours_is_loaded();
}

/// Touches N pages as fast as it can.
const FAST_TOUCHER: &str = r#"
#include <stdlib.h>
#include <sys/mman.h>
int main(int argc, char **argv) {
    long pages = atol(argv[1]);
    char *area = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (long i = 0; i < pages; i++) area[i * 4096] = 1;
    return 0;
}
"#;

#[test]
fn a_tiny_ring_buffer_drops_records_and_counts_every_one() {
    require_root();
    let program = compile_c("fast_toucher", FAST_TOUCHER, &["-O2"]);
    // Faults with stacks are records of their own kind, dropped and counted as such: a walked
    // stack's, and a copied one's (a 1 KiB copy, so that one fits the ring).
    for (extra, kind) in [
        (&[][..], "fault"),
        (&["--call-graph", "fp"], "fault_stack"),
        (&["--stack-bytes", "1024"], "fault_user_stack"),
    ] {
        tiny_ring(&program, extra, kind);
    }
}

fn tiny_ring(program: &std::path::Path, extra: &[&str], kind: &str) {
    let out = output_file(&format!("tiny_{kind}"));
    let status = Command::new(DEMO)
        .args(extra)
        .args([
            "trace",
            "--ring-buffer-kib",
            "4",
            "--region",
            "none",
            "--format",
            "json",
        ])
        .arg("--output")
        .arg(&out)
        .arg("--")
        .arg(program)
        .arg("20000")
        .status()
        .unwrap();
    assert!(status.success());
    let lines = json_file(&out);
    let summary = &of_kind(&lines, "summary")[0];
    let count = |kind: &str| {
        let record = &summary["records"][kind];
        (
            record["delivered"].as_u64().unwrap(),
            record["dropped"].as_u64().unwrap(),
        )
    };
    let (faults_delivered, faults_dropped) = count(kind);
    assert!(
        faults_dropped > 10_000,
        "a 4 KiB ring must overflow: {summary}"
    );
    // Every delivered fault is classed, and every fault the program took is either delivered or
    // counted as dropped: the total matches the kernel's own count of the command's faults,
    // less the few it takes through get_user_pages while execve copies the arguments.
    let classed: u64 = ["minor", "major", "error"]
        .iter()
        .map(|class| summary[class].as_u64().unwrap())
        .sum();
    // demo's own faults (the forked command's before its exec) are delivered and counted
    // apart, not classed among the program's.
    let own = &summary["demo_own"];
    let own_faults =
        own["faults_before_exec"].as_u64().unwrap() + own["uprobes_page_faults"].as_u64().unwrap();
    assert_eq!(classed + own_faults, faults_delivered, "{summary}");
    let rusage = &summary["rusage"];
    let kernel = rusage["minflt"].as_u64().unwrap() + rusage["majflt"].as_u64().unwrap();
    let traced = faults_delivered + faults_dropped;
    assert!(
        traced > 20_000 && kernel >= traced && kernel - traced <= 8,
        "{summary}"
    );
    let lost: u64 = summary["records"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(summary["lost"].as_u64().unwrap(), lost);
    // The one traced process lost every dropped record, each counted under its kind.
    let processes = summary["processes"].as_array().unwrap();
    assert_eq!(processes.len(), 1, "{summary}");
    assert_eq!(processes[0]["pid"], summary["pid"], "{summary}");
    let by_process: u64 = processes[0]["lost"]
        .as_object()
        .unwrap()
        .values()
        .map(|count| count.as_u64().unwrap())
        .sum();
    assert_eq!(by_process, lost, "{summary}");
    assert_eq!(processes[0]["lost"][kind], faults_dropped, "{summary}");
}

#[test]
fn commands_run_as_the_sudo_user_unless_as_root() {
    require_root();
    let run = |extra: &[&str]| {
        let output = Command::new(DEMO)
            .args(extra)
            .args(["trace", "--output", "/dev/null", "--", "id", "-u"])
            .env("SUDO_UID", "65534")
            .env("SUDO_GID", "65534")
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    assert_eq!(run(&[]), "65534");
    assert_eq!(run(&["--as-root"]), "0");
}

#[test]
fn bad_input_only_the_system_reveals_gets_one_sentence_and_a_code() {
    require_root();
    // A zombie: the process has exited, so attaching to it must fail.
    let mut zombie = Command::new("true").spawn().unwrap();
    let zombie_pid = zombie.id();
    wait_until("the child became a zombie", || gone(u64::from(zombie_pid)));
    let output = Command::new(DEMO)
        .args(["trace", "--pid", &zombie_pid.to_string()])
        .output()
        .unwrap();
    zombie.wait().unwrap();
    assert_one_sentence(&output, 2, "no process has pid");

    // A kernel without the fault tracepoint, simulated with a wrong category.
    let output = Command::new(DEMO)
        .args([
            "--source",
            "tracepoint",
            "--debug-fault-category",
            "nope",
            "alloc",
            "mmap",
        ])
        .output()
        .unwrap();
    assert_one_sentence(
        &output,
        1,
        "this kernel has no tracepoint nope:page_fault_user",
    );

    // No tracefs, and no CAP_SYS_ADMIN to mount it.
    let tracefs = Path::new("/sys/kernel/tracing/events");
    if tracefs.is_dir() {
        nix::mount::umount("/sys/kernel/tracing").expect("unmount tracefs for the test");
    }
    let output = Command::new("setpriv")
        .args([
            "--bounding-set",
            "-sys_admin",
            "--inh-caps",
            "-sys_admin",
            "--",
        ])
        .args([DEMO, "alloc", "mmap"])
        .output()
        .expect("run setpriv (util-linux)");
    assert_one_sentence(&output, 1, "tracefs is not mounted and mounting it");
    // Put tracefs back the way demo would.
    let lines = json_lines(&demo(&["alloc", "mmap", "--format", "json"]));
    assert_eq!(of_kind(&lines, "summary")[0]["faults_in_region"], 3);
    assert!(tracefs.is_dir());
}
