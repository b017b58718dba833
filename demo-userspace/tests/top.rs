//! Integration tests of `demo top` with the real counting programs loaded into the running
//! kernel, against a C workload whose own rusage is the reference. They need root.

mod common;

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
};

use common::c_programs::{HOSTILE, compile_c};
use common::cgroup::TestCgroup;
use common::json::{demo, json_file, json_lines, of_kind, parse_line};
use common::kernel::{assert_nothing_of_ours_is_loaded, ours_loaded};
use common::workload::{Workload, start_workload};
use common::{DEMO, require_root};
use serde_json::Value;

/// Starts `demo top ARGS` and waits for its first interval, so the counters are attached.
fn start_top(args: &[&str]) -> (Child, std::io::Lines<BufReader<std::process::ChildStdout>>) {
    require_root();
    let mut top = Command::new(DEMO)
        .arg("top")
        .args(args)
        .args(["--format", "json", "--interval", "0.5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(top.stdout.take().unwrap()).lines();
    (top, lines)
}

fn intervals(lines: impl Iterator<Item = std::io::Result<String>>) -> Vec<Value> {
    lines.map(|line| parse_line(&line.unwrap())).collect()
}

/// The last row of `pid` over all intervals: its counts since top started.
fn last_row(intervals: &[Value], pid: u64) -> &Value {
    intervals
        .iter()
        .flat_map(|interval| interval["processes"].as_array().unwrap())
        .rfind(|row| row["pid"].as_u64() == Some(pid))
        .unwrap_or_else(|| panic!("pid {pid} was never shown"))
}

#[test]
fn top_ranks_the_faulting_workload_first_with_its_own_counts() {
    ranks_the_faulting_workload_first(&[]);
}

/// With the kernel's counters only, TOTAL is minor + major and the split is unknown.
#[test]
fn counters_only_ranks_the_faulting_workload_first_with_the_kernel_counts() {
    let leader = ranks_the_faulting_workload_first(&["--counters-only"]);
    let counted = |field: &str| leader[field].as_u64().unwrap();
    assert_eq!(
        counted("faults"),
        counted("minor") + counted("major"),
        "{leader}"
    );
    assert!(leader["write_pct"].is_null(), "{leader}");
    assert!(leader["kernel_pct"].is_null(), "{leader}");
}

/// Runs top with `extra` while the workload touches its pages; checks the workload leads the
/// interval it faulted most in, with counts that agree with its rusage. Returns its last row.
fn ranks_the_faulting_workload_first(extra: &[&str]) -> Value {
    let mut workload = start_workload();
    let workload_pid = workload.pid;
    let pid = Value::from(workload_pid);
    let mut args = vec!["--duration", "3"];
    args.extend(extra);
    let (mut top, mut lines) = start_top(&args);
    let first: Value = parse_line(&lines.next().unwrap().unwrap());
    assert_eq!(first["kind"], "top");
    let (minflt, majflt) = workload.touch();
    let mut all = vec![first];
    all.extend(intervals(lines));
    assert!(top.wait().unwrap().success());
    workload.finish();

    // The interval in which the workload faulted most has it first.
    let busiest = all
        .iter()
        .max_by_key(|interval| {
            interval["processes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["pid"] == pid)
                .map_or(0, |p| p["interval_faults"].as_u64().unwrap())
        })
        .unwrap();
    let leader = &busiest["processes"][0];
    assert_eq!(leader["pid"], pid, "{busiest}");
    assert_eq!(leader["comm"], "top_workload", "{busiest}");
    // The touching may straddle two intervals; the counts since start are in the last row.
    let leader = last_row(&all, workload_pid);
    assert!(leader["faults"].as_u64().unwrap() >= 65536, "{leader}");
    assert!(leader["minor"].as_u64().unwrap() >= 65536, "{leader}");
    assert!(leader["major"].is_u64());
    if extra.is_empty() {
        assert_eq!(leader["write_pct"], 100.0);
    }
    // The kernel's counters agree with the workload's rusage for the touching loop: every
    // counted minor fault is one rusage counts; the few more are the workload's own
    // getrusage/printf faults around the loop.
    let minor = leader["minor"].as_u64().unwrap();
    assert!(
        minor >= minflt && minor - minflt < 64,
        "top {minor}, rusage {minflt}"
    );
    assert_eq!(leader["major"].as_u64().unwrap(), majflt);
    for interval in &all {
        assert_eq!(interval["dropped"], 0);
        assert!((interval["interval_s"].as_f64().unwrap() - 0.5).abs() < 0.25);
    }
    leader.clone()
}

#[test]
fn top_pages_names_the_anonymous_mapping_hottest() {
    let mut workload = start_workload();
    let pid = workload.pid;
    let (mut top, mut lines) = start_top(&[
        "--pid",
        &pid.to_string(),
        "--pages",
        "--duration",
        "2",
        "-n",
        "3",
    ]);
    lines.next().unwrap().unwrap();
    workload.touch();
    let all = intervals(lines);
    assert!(top.wait().unwrap().success());
    workload.finish();
    let last = all.last().unwrap();
    let pages = &last["pages"];
    assert_eq!(pages["pid"].as_u64(), Some(pid));
    assert_eq!(pages["mappings"][0]["name"], "[anon]");
    assert_eq!(pages["mappings"][0]["faults"], 65536);
    // The 65,536 consecutive pages of the mapping are one range, the hottest, named by the
    // code that wrote them: the workload's loop in main.
    let ranges = pages["pages"].as_array().unwrap();
    assert!((1..=3).contains(&ranges.len()), "{pages}");
    let hottest = &ranges[0];
    assert_eq!(hottest["mapping"], "[anon]", "{hottest}");
    assert_eq!(hottest["pages"], 65536, "{hottest}");
    assert_eq!(hottest["faults"], 65536, "{hottest}");
    assert_eq!(hottest["most"], 1, "{hottest}");
    assert_eq!(hottest["code"]["symbol"], "main", "{hottest}");
    assert!(
        hottest["code"]["module"]
            .as_str()
            .unwrap()
            .ends_with("/top_workload"),
        "{hottest}"
    );
    assert_eq!(pages["evicted"], 0);
    let rows = last["processes"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["pid"].as_u64(), Some(pid));
}

#[test]
fn an_exited_process_is_counted_in_the_interval_it_ran_in() {
    counts_an_exited_process(&[]);
}

/// Without a program per fault, an exited process's name and counts come from the exit program.
#[test]
fn counters_only_counts_an_exited_process_in_the_interval_it_ran_in() {
    counts_an_exited_process(&["--counters-only"]);
}

/// Touches 1,000 fresh pages and exits at once: it lives a few milliseconds, between two
/// refreshes.
const BLINK: &str = r#"
#include <stddef.h>
#include <sys/mman.h>
int main(void) {
    char *area = mmap(NULL, 1000L * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (long i = 0; i < 1000; i++) area[i * 4096] = 1;
    return 0;
}
"#;

/// A process /proc never showed is named by the command the exit program captured.
#[test]
fn counters_only_names_a_process_that_lived_between_refreshes() {
    let program = compile_c("top_blink", BLINK, &["-O2"]);
    let (mut top, mut lines) = start_top(&[
        "--counters-only",
        "--duration",
        "1",
        "--sort",
        "total",
        "-n",
        "1000",
    ]);
    lines.next().unwrap().unwrap();
    let blink = Command::new(program).spawn().unwrap();
    let pid = u64::from(blink.id());
    assert!(blink.wait_with_output().unwrap().status.success());
    let all = intervals(lines);
    assert!(top.wait().unwrap().success());
    let last = last_row(&all, pid);
    assert_eq!(last["comm"], "top_blink", "{last}");
    assert_eq!(last["exited"], true, "{last}");
    assert!(last["minor"].as_u64().unwrap() >= 1000, "{last}");
}

fn counts_an_exited_process(extra: &[&str]) {
    let mut args = vec!["--duration", "2", "--sort", "total", "-n", "100"];
    args.extend(extra);
    let (mut top, mut lines) = start_top(&args);
    lines.next().unwrap().unwrap();
    let mut workload = start_workload();
    let pid = workload.pid;
    let (loop_minor, loop_major) = workload.touch();
    workload.finish();
    let all = intervals(lines);
    assert!(top.wait().unwrap().success());
    let last = last_row(&all, pid);
    assert_eq!(last["exited"], true, "{last}");
    assert!(last["faults"].as_u64().unwrap() >= 65536);
    // /proc no longer has the process; its counts are those the kernel side kept at its exit,
    // which hold at least what the workload's own rusage counted for its loop. (Its start-up
    // may take a major fault when this VM has reclaimed the binary's page cache: a fresh
    // clone's run saw one.)
    assert!(loop_minor >= 65536);
    assert!(last["minor"].as_u64().unwrap() >= loop_minor, "{last}");
    assert!(last["major"].as_u64().unwrap() >= loop_major, "{last}");
    assert_eq!(last["comm"], "top_workload");
}

/// Two processes on CPU 0 that take turns through pipes, each touching one fresh page per
/// turn, so every fault on that CPU is of the other process than the one before.
const TAKING_TURNS: &str = r#"
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#define TURNS 20000
int main(void) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    sched_setaffinity(0, sizeof one, &one);
    int ping[2], pong[2];
    if (pipe(ping) || pipe(pong)) return 1;
    char *area = mmap(NULL, 2L * TURNS * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char token = 0;
    pid_t child = fork();
    if (child == 0) {
        for (long i = 0; i < TURNS; i++) {
            if (read(ping[0], &token, 1) != 1) return 1;
            area[(TURNS + i) * 4096] = 1;
            if (write(pong[1], &token, 1) != 1) return 1;
        }
        return 0;
    }
    printf("%d %d\n", getpid(), child);
    fflush(stdout);
    for (long i = 0; i < TURNS; i++) {
        area[i * 4096] = 1;
        if (write(ping[1], &token, 1) != 1 || read(pong[0], &token, 1) != 1) return 1;
    }
    int status;
    waitpid(child, &status, 0);
    return status;
}
"#;

/// Runs `demo top ARGS` for 2 s with up to 100 rows while the two processes of
/// [`TAKING_TURNS`] run; returns their pids (parent, child) and every interval.
fn top_while_taking_turns(args: &[&str]) -> (Vec<u64>, Vec<Value>) {
    let program = compile_c("taking_turns", TAKING_TURNS, &["-O2"]);
    let (mut top, mut lines) = start_top(&[&["--duration", "2", "-n", "100"], args].concat());
    lines.next().unwrap().unwrap();
    let run = Command::new(program).output().unwrap();
    assert!(run.status.success());
    let pids: Vec<u64> = String::from_utf8(run.stdout)
        .unwrap()
        .split_whitespace()
        .map(|pid| pid.parse().unwrap())
        .collect();
    let all = intervals(lines);
    assert!(top.wait().unwrap().success());
    (pids, all)
}

/// Each fault there moves the CPU's recent counts of one process into the process map; none
/// may be lost or counted twice.
#[test]
fn processes_taking_turns_on_one_cpu_are_each_counted_exactly() {
    let (pids, all) = top_while_taking_turns(&["--sort", "total"]);

    let counted = |row: &Value, field: &str| row[field].as_u64().unwrap();
    let (parent, child) = (last_row(&all, pids[0]), last_row(&all, pids[1]));
    for row in [parent, child] {
        assert_eq!(row["exited"], true, "{row}");
        assert!(counted(row, "faults") >= 20000, "{row}");
    }
    // The child never ran execve, so every fault it took raised the tracepoint: the kernel's
    // count is the same. The parent's execve faulted in its arguments through get_user_pages,
    // which the kernel counts and the tracepoint does not see.
    assert_eq!(
        counted(child, "faults"),
        counted(child, "minor") + counted(child, "major"),
        "{child}"
    );
    let kernel_counted = counted(parent, "minor") + counted(parent, "major");
    assert!(
        (0..64).contains(&(kernel_counted - counted(parent, "faults"))),
        "{parent}"
    );
    for interval in &all {
        assert_eq!(interval["dropped"], 0);
    }
}

/// With --durations, every completed fault of the forked child (which never ran execve, so every
/// fault it took raised the tracepoint) is timed, in the class the kernel counted it in, though
/// the two processes take turns on one CPU; each interval's time has a p99 bucket bound.
#[test]
fn durations_time_every_completed_fault_in_the_kernels_class() {
    let (pids, all) = top_while_taking_turns(&["--sort", "fault-time", "--durations"]);
    let counted = |row: &Value, field: &str| row[field].as_u64().unwrap();
    let (parent, child) = (last_row(&all, pids[0]), last_row(&all, pids[1]));
    let time = &child["fault_time"];
    assert_eq!(counted(time, "minor"), counted(child, "minor"), "{child}");
    assert_eq!(counted(time, "major"), counted(child, "major"), "{child}");
    assert_eq!(
        counted(time, "minor") + counted(time, "major"),
        counted(child, "faults"),
        "{child}"
    );
    assert!(counted(time, "total_ns") > 0, "{child}");
    // The parent's execve faulted in its arguments through get_user_pages, which neither the
    // tracepoint nor the completion event sees; every fault the tracepoint saw was timed.
    let parent_time = &parent["fault_time"];
    assert_eq!(
        counted(parent_time, "minor") + counted(parent_time, "major"),
        counted(parent, "faults"),
        "{parent}"
    );
    // In the interval the child faulted most, its p99 is a bucket's bound: at most a power of
    // two from 2^10 to 2^30 ns, or above the last bound, 2^30 ns.
    let busiest = all
        .iter()
        .flat_map(|interval| interval["processes"].as_array().unwrap())
        .filter(|row| row["pid"].as_u64() == Some(pids[1]))
        .max_by_key(|row| counted(&row["fault_time"], "interval_faults"))
        .unwrap();
    let p99 = &busiest["fault_time"]["p99"];
    match p99.get("above_ns") {
        Some(above) => assert_eq!(above.as_u64(), Some(1 << 30), "{busiest}"),
        None => {
            let at_most = counted(p99, "at_most_ns");
            assert!(
                at_most.is_power_of_two() && (10..=30).contains(&at_most.trailing_zeros()),
                "{busiest}"
            );
        }
    }
    for interval in &all {
        assert_eq!(interval["dropped"], 0);
    }
}

/// --sort fault-time without --durations is refused in one sentence.
#[test]
fn sorting_by_fault_time_needs_durations() {
    let out = Command::new(DEMO)
        .args(["top", "--sort", "fault-time", "--duration", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: --sort fault-time needs --durations: without it demo top times no fault\n"
    );
}

#[test]
fn one_shot_modes_text_json_and_output_file() {
    let text =
        String::from_utf8(demo(&["top", "--duration", "0.5", "--interval", "0.5"]).stdout).unwrap();
    assert!(text.contains("PID COMMAND"), "{text}");
    assert!(text.contains("FAULTS/S"), "{text}");

    let json = json_lines(&demo(&[
        "top",
        "--duration",
        "1",
        "--interval",
        "0.5",
        "--format",
        "json",
    ]));
    assert_eq!(of_kind(&json, "top").len(), 2, "one object per interval");
    for interval in &json {
        for field in ["ts", "interval_s", "processes", "dropped"] {
            assert!(!interval[field].is_null(), "{field} missing in {interval}");
        }
    }

    let out = common::output_file("top");
    demo(&[
        "top",
        "--duration",
        "0.5",
        "--interval",
        "0.5",
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(of_kind(&json_file(&out), "top").len(), 1);
}

/// Ctrl-C ends top the normal way: its counting, exit and flush programs and every map go, in
/// each counting mode.
#[test]
fn ctrl_c_leaves_nothing_of_top_loaded() {
    for extra in [&["--pid", "1", "--pages"][..], &["--counters-only"]] {
        let (mut top, mut lines) = start_top(extra);
        lines.next().unwrap().unwrap();
        // The check sees demo's programs and maps while they are loaded, so its silence after
        // the exit means something.
        let loaded = ours_loaded();
        assert!(
            loaded.iter().any(|name| name == "top_process_exi"),
            "{loaded:?}"
        );
        assert!(loaded.iter().any(|name| name == "TOP_EXITS"), "{loaded:?}");
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(top.id() as libc::pid_t, libc::SIGINT) };
        assert!(top.wait().unwrap().success(), "{extra:?}");
        assert_nothing_of_ours_is_loaded();
    }
}

#[test]
fn top_pages_of_a_missing_pid_is_bad_input() {
    require_root();
    let bad = Command::new(DEMO)
        .args(["top", "--pid", "999999999", "--pages", "--duration", "1"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no process has pid"));
}

/// The table shows a process's name escaped, in its one row: no escape sequence reaches the
/// terminal and the newline forges no row.
#[test]
fn a_hostile_process_name_is_one_escaped_cell_of_the_table() {
    require_root();
    let program = compile_c("top_hostile", HOSTILE, &["-O2"]);
    let mut top = Command::new(DEMO)
        .args(["top", "--duration", "2", "--interval", "0.5"])
        .args(["--sort", "total", "-n", "100000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(top.stdout.take().unwrap()).lines();
    // The first interval is out: the counters are attached.
    let mut text = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let end = line.is_empty();
        text.push_str(&line);
        text.push('\n');
        if end {
            break;
        }
    }
    let run = Command::new(program).arg("20000").spawn().unwrap();
    let pid = run.id().to_string();
    assert!(run.wait_with_output().unwrap().status.success());
    for line in lines {
        text.push_str(&line.unwrap());
        text.push('\n');
    }
    assert!(top.wait().unwrap().success());
    assert!(!text.contains(['\x1b', '\x07']), "{text:?}");
    assert!(!text.lines().any(|line| line.starts_with('b')), "{text}");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|words| words.get(1) == Some(&"a\\e]2;x\\x07\\nb"))
        .collect();
    assert!(!rows.is_empty(), "the process was never shown: {text}");
    // Its last row holds every fault it took: at least the 20000 pages it wrote.
    let last = rows.last().unwrap();
    assert_eq!(last[0], pid, "{text}");
    assert_eq!(last.len(), 9, "{last:?}");
    assert_eq!(last[8], "(exited)", "{last:?}");
    assert!(last[3].parse::<u64>().unwrap() >= 20000, "{last:?}");
}

/// The rows of every interval whose `key` is `value`, in order.
fn rows_where<'a>(intervals: &'a [Value], key: &str, value: &str) -> Vec<&'a Value> {
    intervals
        .iter()
        .flat_map(|interval| interval["processes"].as_array().unwrap())
        .filter(|row| row[key] == value)
        .collect()
}

/// `--pid` alone shows that process's row only, needs no `--pages`, and ends demo top when the
/// process exits, after the interval that shows its exit.
#[test]
fn pid_alone_shows_one_process_and_ends_with_it() {
    let mut workload = start_workload();
    let pid = workload.pid;
    let (mut top, mut lines) = start_top(&["--pid", &pid.to_string()]);
    lines.next().unwrap().unwrap();
    let (minflt, _) = workload.touch();
    workload.finish();
    // No --duration: top ends because the process did.
    let all = intervals(lines);
    assert!(top.wait().unwrap().success());
    assert!(!all.is_empty());
    for interval in &all {
        assert!(interval["pages"].is_null(), "{interval}");
        for row in interval["processes"].as_array().unwrap() {
            assert_eq!(row["pid"].as_u64(), Some(pid), "{interval}");
        }
    }
    let last = all.last().unwrap();
    let row = &last["processes"][0];
    assert_eq!(row["exited"], true, "{last}");
    assert_eq!(row["comm"], "top_workload", "{last}");
    assert!(row["faults"].as_u64().unwrap() >= 65536, "{row}");
    assert!(row["minor"].as_u64().unwrap() >= minflt, "{row}");
}

/// Runs `demo top --group BY` for 3 s while `workloads` touch their pages; returns its
/// intervals, and each workload's own minor and major faults for its loop.
fn grouped_while_touching(by: &str, mut workloads: [Workload; 2]) -> (Vec<Value>, Vec<(u64, u64)>) {
    let (mut top, mut lines) = start_top(&["--group", by, "--duration", "3", "-n", "100"]);
    lines.next().unwrap().unwrap();
    let touched = workloads.iter_mut().map(Workload::touch).collect();
    let all = intervals(lines);
    assert!(top.wait().unwrap().success());
    for workload in workloads {
        workload.finish();
    }
    (all, touched)
}

/// Two workloads in two cgroups made for the test: each cgroup is one row that holds its
/// workload's faults, and the cgroups' rows have no pid.
#[test]
fn group_cgroup_sums_each_cgroup_in_one_row() {
    require_root();
    let (first, second) = (TestCgroup::new("demo-top-a"), TestCgroup::new("demo-top-b"));
    let workloads = [start_workload(), start_workload()];
    first.enter(workloads[0].pid);
    second.enter(workloads[1].pid);
    let (all, touched) = grouped_while_touching("cgroup", workloads);
    for (cgroup, (minflt, majflt)) in [&first, &second].into_iter().zip(touched) {
        let rows = rows_where(&all, "cgroup", &cgroup.path);
        let last = rows
            .last()
            .unwrap_or_else(|| panic!("{} never shown", cgroup.path));
        assert_eq!(last["processes"], 1, "{last}");
        assert!(last["pid"].is_null() && last["comm"].is_null(), "{last}");
        assert!(last["faults"].as_u64().unwrap() >= 65536, "{last}");
        // The workload is the cgroup's one process: the kernel's counts are its own, which
        // hold its loop, and its start-up's few more.
        let minor = last["minor"].as_u64().unwrap();
        assert!(
            minor >= minflt && minor - minflt < 64,
            "{last} rusage {minflt}"
        );
        assert_eq!(last["major"].as_u64().unwrap(), majflt, "{last}");
        assert_eq!(last["exited"], false, "{last}");
    }
}

/// Two processes of one command are one row, which sums them.
#[test]
fn group_comm_sums_the_processes_of_a_command() {
    let (all, touched) = grouped_while_touching("comm", [start_workload(), start_workload()]);
    let rows = rows_where(&all, "comm", "top_workload");
    let last = rows.last().expect("top_workload never shown");
    assert_eq!(last["processes"], 2, "{last}");
    assert!(last["pid"].is_null(), "{last}");
    assert!(last["faults"].as_u64().unwrap() >= 2 * 65536, "{last}");
    let minflt: u64 = touched.iter().map(|(minor, _)| minor).sum();
    let minor = last["minor"].as_u64().unwrap();
    assert!(
        minor >= minflt && minor - minflt < 128,
        "{last} rusage {minflt}"
    );
    // One row per command in each interval.
    for interval in &all {
        let names: Vec<&Value> = interval["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| &row["comm"])
            .collect();
        let distinct: std::collections::HashSet<String> =
            names.iter().map(ToString::to_string).collect();
        assert_eq!(distinct.len(), names.len(), "{interval}");
    }
}

/// A process that exited is in the table in the interval it exited in, and not after; with
/// --keep-exited it stays, with nothing more in later intervals.
#[test]
fn an_exited_process_leaves_the_table_unless_kept() {
    let program = compile_c("top_blink", BLINK, &["-O2"]);
    for keep in [false, true] {
        let mut args = vec!["--duration", "2", "--sort", "total", "-n", "100000"];
        if keep {
            args.push("--keep-exited");
        }
        let (mut top, mut lines) = start_top(&args);
        lines.next().unwrap().unwrap();
        let blink = Command::new(&program).spawn().unwrap();
        let pid = u64::from(blink.id());
        assert!(blink.wait_with_output().unwrap().status.success());
        let all = intervals(lines);
        assert!(top.wait().unwrap().success());
        let shown: Vec<(usize, &Value)> = all
            .iter()
            .enumerate()
            .filter_map(|(at, interval)| {
                let rows = interval["processes"].as_array().unwrap();
                Some((
                    at,
                    rows.iter().find(|row| row["pid"].as_u64() == Some(pid))?,
                ))
            })
            .collect();
        let (first, row) = shown[0];
        assert_eq!(row["exited"], true, "{row}");
        assert!(row["faults"].as_u64().unwrap() >= 1000, "{row}");
        // Every process still living is above it.
        let rows = all[first]["processes"].as_array().unwrap();
        let at = rows
            .iter()
            .position(|r| r["pid"].as_u64() == Some(pid))
            .unwrap();
        assert!(
            rows[at..].iter().all(|r| r["exited"] == true),
            "{}",
            all[first]
        );
        assert!(first + 1 < all.len(), "no interval after its exit: {all:?}");
        if keep {
            assert_eq!(shown.len(), all.len() - first, "{all:?}");
            for (_, later) in &shown[1..] {
                assert_eq!(later["interval_faults"], 0, "{later}");
                assert_eq!(later["faults"], row["faults"], "{later}");
            }
        } else {
            assert_eq!(shown.len(), 1, "{shown:?}");
        }
    }
}
