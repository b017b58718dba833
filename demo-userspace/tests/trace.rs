//! Integration tests of `demo trace` on plain C programs compiled at run time, with the real
//! eBPF programs loaded into the running kernel. They need root and fail (never skip) without.

mod common;

use std::{
    io::{BufRead as _, BufReader, Write as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use common::c_programs::{HOSTILE, SEED, compile_c};
use common::json::{demo, json_file, json_lines, of_kind, trace_to_file};
use common::{DEMO, output_file, require_root};
use serde_json::Value;

/// Maps an array, says where, then writes one element per `touch N` line.
const TOUCHER: &str = r#"
#include <stdio.h>
#include <sys/mman.h>
int main(void) {
    int *arr = mmap(NULL, 20000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("ready %p\n", (void *)arr);
    fflush(stdout);
    char line[64];
    int index;
    while (fgets(line, sizeof line, stdin)) {
        if (sscanf(line, "touch %d", &index) == 1) arr[index] = 1;
        printf("done\n");
        fflush(stdout);
    }
    return 0;
}
"#;

/// Forks a child that maps 40000 bytes and writes two elements, then waits for it.
const FORKER: &str = r#"
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t child = fork();
    if (child == 0) {
        int *arr = mmap(NULL, 40000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        arr[7000] = 1;
        arr[42] = 1;
        _exit(0);
    }
    waitpid(child, 0, 0);
    return 0;
}
"#;

/// Writes through a null pointer.
const CRASHER: &str = r#"
int main(void) {
    volatile int *nothing = 0;
    *nothing = 1;
    return 0;
}
"#;

fn steps_file() -> PathBuf {
    let path = common::test_dir().join("steps");
    std::fs::write(&path, "\n\n\n\n\n").unwrap();
    path
}

/// Runs `demo trace ARGS -- PROGRAM` with stdin from the steps file; returns its JSON Lines.
fn trace_program(name: &str, program: &Path, args: &[&str], env: &[(&str, String)]) -> Vec<Value> {
    trace_command(name, program, &[], args, env)
}

/// Like `trace_program`, with arguments for the program.
fn trace_command(
    name: &str,
    program: &Path,
    program_args: &[&str],
    args: &[&str],
    env: &[(&str, String)],
) -> Vec<Value> {
    let mut command: Vec<&std::ffi::OsStr> = vec![program.as_os_str()];
    command.extend(program_args.iter().map(std::ffi::OsStr::new));
    trace_to_file(
        name,
        args,
        &command,
        env,
        std::fs::File::open(steps_file()).unwrap().into(),
    )
}

/// The one region of `size` bytes, and the indices of the faults in it, in order.
fn faults_in_region_of_size(lines: &[Value], size: u64) -> (Value, Vec<i64>) {
    let regions: Vec<&Value> = of_kind(lines, "region")
        .into_iter()
        .filter(|region| region["size"] == size)
        .collect();
    assert_eq!(regions.len(), 1, "regions of {size} bytes: {regions:?}");
    let name = &regions[0]["name"];
    let indices = of_kind(lines, "fault")
        .into_iter()
        .filter(|fault| &fault["region"] == name)
        .map(|fault| fault["index"].as_i64().unwrap())
        .collect();
    (regions[0].clone(), indices)
}

#[test]
fn trace_finds_the_mmap_array_of_an_unmodified_program() {
    let program = compile_c("alloc_mmap", SEED, &["-DMMAP"]);
    let lines = trace_program("mmap", &program, &["--elem-size", "4"], &[]);
    let (region, indices) = faults_in_region_of_size(&lines, 20000);
    assert_eq!(region["origin"], "mmap");
    assert_eq!(region["elem_size"], 4);
    assert_eq!(indices, [1500, 0, 3000]);
    for fault in of_kind(&lines, "fault")
        .into_iter()
        .filter(|fault| fault["region"] == region["name"])
    {
        assert_eq!(fault["access"], "write");
        assert_eq!(fault["class"], "minor");
        assert_eq!(fault["mapping"], "[anon]");
        assert_eq!(fault["scenario"], "trace");
    }
    let summary = &of_kind(&lines, "summary")[0];
    assert_eq!(summary["child"], "exited with status 0");
    assert_eq!(summary["ended_by"], "exit");
    assert_eq!(summary["lost"], 0);
    // The only faults the kernel counted that no tracepoint saw are execve's (see the rusage test).
    assert!(
        summary["unattributed_faults"].as_u64().unwrap()
            <= summary["rusage_difference"].as_u64().unwrap(),
        "{summary}"
    );
    assert_eq!(of_kind(&lines, "trace")[0]["source"], "tracepoint");
}

#[test]
fn trace_finds_the_malloc_array_and_only_1500_and_3000_fault() {
    let program = compile_c("alloc", SEED, &[]);
    let lines = trace_program("malloc", &program, &["--elem-size", "4"], &[]);
    let (region, indices) = faults_in_region_of_size(&lines, 20000);
    assert_eq!(region["origin"], "malloc");
    assert!(region["name"].as_str().unwrap().starts_with("malloc#"));
    assert_eq!(indices, [1500, 3000]);
}

#[test]
fn the_perf_source_gives_the_same_region_faults() {
    let program = compile_c("alloc_mmap_perf", SEED, &["-DMMAP"]);
    let lines = trace_program(
        "perf",
        &program,
        &["--elem-size", "4", "--source", "perf"],
        &[],
    );
    assert_eq!(of_kind(&lines, "trace")[0]["source"], "perf");
    let (_, indices) = faults_in_region_of_size(&lines, 20000);
    assert_eq!(indices, [1500, 0, 3000]);
    let fault = of_kind(&lines, "fault")[0];
    assert_eq!(fault["access"], "unknown");
    assert!(fault["error_code"].is_null());
}

#[test]
fn a_kernel_without_the_fault_tracepoints_falls_back_to_perf_and_says_so() {
    let program = compile_c("alloc_mmap_fallback", SEED, &["-DMMAP"]);
    let lines = trace_program(
        "fallback",
        &program,
        &[
            "--elem-size",
            "4",
            "--debug-fault-category",
            "no_such_category",
        ],
        &[],
    );
    let start = &of_kind(&lines, "trace")[0];
    assert_eq!(start["source"], "perf");
    assert_eq!(start["fallback"], true);
    let (_, indices) = faults_in_region_of_size(&lines, 20000);
    assert_eq!(indices, [1500, 0, 3000]);
}

#[test]
fn no_fault_is_missed_and_rusage_differs_only_by_execve_argument_pages() {
    let program = compile_c("alloc_mmap_rusage", SEED, &["-DMMAP"]);
    let gap = |lines: &[Value]| {
        let summary = &of_kind(lines, "summary")[0];
        let rusage = &summary["rusage"];
        let kernel = rusage["minflt"].as_i64().unwrap() + rusage["majflt"].as_i64().unwrap();
        let traced = summary["traced_completions"].as_i64().unwrap();
        assert_eq!(
            summary["rusage_difference"].as_i64().unwrap(),
            kernel - traced
        );
        assert!(traced > 50, "{summary}");
        (
            kernel - traced,
            summary["unattributed_faults"].as_i64().unwrap(),
        )
    };
    let (plain, plain_unattributed) = gap(&trace_program("rusage", &program, &[], &[]));
    // execve copies argv and envp onto the new stack through get_user_pages, whose faults the
    // kernel counts in rusage without a tracepoint or perf event: a page more per 4 KiB.
    assert!((1..=8).contains(&plain), "difference {plain}");
    let big = "x".repeat(80_000);
    let (grown, grown_unattributed) = gap(&trace_program(
        "rusage-env",
        &program,
        &[],
        &[("DEMO_BIG", big)],
    ));
    assert!((18..=22).contains(&(grown - plain)), "{plain} then {grown}");
    // The thread's own counters, which every record carries, see the same faults: between two
    // traced records of the thread the kernel counted that many more than were traced.
    assert_eq!(
        grown_unattributed - plain_unattributed,
        grown - plain,
        "{plain_unattributed} then {grown_unattributed}"
    );
}

#[test]
fn pid_attaches_to_a_running_process_and_sees_its_later_faults() {
    require_root();
    let program = compile_c("toucher", TOUCHER, &[]);
    let mut target = Command::new(&program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut replies = BufReader::new(target.stdout.take().unwrap()).lines();
    let ready = replies.next().unwrap().unwrap();
    let address = ready.strip_prefix("ready ").unwrap().to_owned();
    let out = output_file("pid");
    // A file left by an earlier run with the same pid must not pass for this run's start line.
    let _ = std::fs::remove_file(&out);
    let mut tracer = Command::new(DEMO)
        .args(["trace", "--format", "json", "--elem-size", "4", "--region"])
        .arg(format!("{address}:20000"))
        .arg("--pid")
        .arg(target.id().to_string())
        .arg("--output")
        .arg(&out)
        .spawn()
        .unwrap();
    // The start line is written once the probes are attached.
    while !std::fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("\"kind\":\"trace\"")
    {
        assert!(
            tracer.try_wait().unwrap().is_none(),
            "demo trace ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut stdin = target.stdin.take().unwrap();
    for index in [1500, 0, 1501] {
        writeln!(stdin, "touch {index}").unwrap();
        assert_eq!(replies.next().unwrap().unwrap(), "done");
    }
    drop(stdin);
    assert!(target.wait().unwrap().success());
    assert!(tracer.wait().unwrap().success());
    let lines = json_file(&out);
    let manual: Vec<i64> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|fault| fault["region"] == "manual#1")
        .map(|fault| fault["index"].as_i64().unwrap())
        .collect();
    assert_eq!(manual, [1500, 0]);
    let summary = &of_kind(&lines, "summary")[0];
    assert_eq!(summary["ended_by"], "exit");
    assert!(
        summary["child"].is_null(),
        "a --pid target is not our child"
    );
}

#[test]
fn follow_sees_the_faults_of_a_forked_child() {
    let program = compile_c("forker", FORKER, &[]);
    let lines = trace_program("follow", &program, &["--elem-size", "4", "--follow"], &[]);
    let forks = of_kind(&lines, "process")
        .into_iter()
        .filter(|p| p["event"] == "fork")
        .count();
    assert_eq!(forks, 1);
    let (region, indices) = faults_in_region_of_size(&lines, 40000);
    assert_eq!(indices, [7000, 42]);
    let parent = of_kind(&lines, "trace")[0]["pid"].clone();
    assert_ne!(region["pid"], parent, "the region is the child's");

    let unfollowed = trace_program("nofollow", &program, &["--elem-size", "4"], &[]);
    assert!(
        of_kind(&unfollowed, "region")
            .iter()
            .all(|r| r["size"] != 40000)
    );
    let main = &of_kind(&unfollowed, "trace")[0]["pid"];
    assert!(
        of_kind(&unfollowed, "fault")
            .iter()
            .all(|f| &f["pid"] == main)
    );
}

#[test]
fn death_by_signal_is_reported_with_the_failed_fault() {
    let program = compile_c("crasher", CRASHER, &[]);
    let lines = trace_program("crash", &program, &[], &[]);
    let summary = &of_kind(&lines, "summary")[0];
    assert_eq!(summary["child"], "killed by SIGSEGV");
    let signals = of_kind(&lines, "signal");
    assert!(
        signals
            .iter()
            .any(|s| s["signal"] == "SIGSEGV" && s["si_code"] == "SEGV_MAPERR")
    );
    let null_write: Vec<&Value> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|f| f["address"] == "0x0")
        .collect();
    assert_eq!(null_write.len(), 1);
    assert_eq!(null_write[0]["class"], "error");
    assert_eq!(null_write[0]["access"], "write");
}

#[test]
fn stdio_passes_through_and_text_lines_name_region_and_index() {
    require_root();
    let program = compile_c("alloc_mmap_text", SEED, &["-DMMAP"]);
    let out = output_file("text");
    let output = Command::new(DEMO)
        .args(["trace", "--elem-size", "4", "--output"])
        .arg(&out)
        .arg("--")
        .arg(&program)
        .stdin(std::fs::File::open(steps_file()).unwrap())
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("arr = 0x"));
    let text = std::fs::read_to_string(&out).unwrap();
    // The seed's array is the 20000-byte mapping; the loader and libc map smaller regions of
    // their own before it, whose first bytes are written too.
    let array = text
        .lines()
        .find_map(|line| {
            let rest = line.split("region ").nth(1)?;
            let (name, size) = rest.split_once(" = ")?;
            size.contains(", 20000 bytes (mmap)").then_some(name)
        })
        .unwrap_or_else(|| panic!("no 20000-byte region line: {text}"));
    // Under each fault's line, the next names its region, index and page, "mmap#4[1500] page
    // 1", its mapping, then the code that faulted: the seed's main.
    let lines: Vec<&str> = text.lines().collect();
    let array_faults: Vec<String> = lines
        .windows(2)
        .filter(|pair| pair[0].contains(" minor "))
        .filter_map(|pair| {
            let words: Vec<&str> = pair[1].split_whitespace().collect();
            let at = words
                .iter()
                .position(|word| word.starts_with(&format!("{array}[")))?;
            assert_eq!(at, 0, "{}", pair[1]);
            assert!(words[4].starts_with("main+0x"), "{}", pair[1]);
            Some(words[..3].join(" "))
        })
        .collect();
    // The report is 80 columns wide, as the help says.
    let wide: Vec<&&str> = lines
        .iter()
        .filter(|line| line.chars().count() > 80)
        .collect();
    assert!(wide.is_empty(), "{wide:#?}");
    assert_eq!(
        array_faults,
        [
            format!("{array}[1500] page 1"),
            format!("{array}[0] page 0"),
            format!("{array}[3000] page 2"),
        ],
        "{text}"
    );
    assert!(text.contains("kernel's count (rusage)"), "{text}");
}

#[test]
fn bad_trace_input_gets_one_sentence_and_status_2() {
    require_root();
    let free_pid = (400_000..)
        .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        .unwrap();
    let free_pid = free_pid.to_string();
    // This machine mounts cgroup v1 hierarchies beside v2 (setup's kernel command line):
    // without one, the row for a v1 path would test nothing.
    let v1 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find_map(|line| {
            let (fields, filesystem) = line.split_once(" - ")?;
            (filesystem.split(' ').next() == Some("cgroup"))
                .then(|| fields.split(' ').nth(4).map(str::to_owned))
                .flatten()
        })
        .expect("no cgroup v1 mount in /proc/self/mountinfo");
    for (args, says) in [
        (
            vec!["trace", "--pid", free_pid.as_str()],
            "no process has pid",
        ),
        (vec!["trace", "--", "/no/such/command"], "was not found"),
        (
            vec!["trace", "--region", "0x1000", "--pid", "1"],
            "is not ADDR:LEN",
        ),
        (
            vec!["trace", "--region", "0x1000:0", "--pid", "1"],
            "has length 0",
        ),
        (
            vec![
                "trace",
                "--region",
                "0x1000:100",
                "--region",
                "0x1010:8",
                "--pid",
                "1",
            ],
            "overlaps",
        ),
        (vec!["trace", "--elem-size", "0", "--pid", "1"], "elem-size"),
        (vec!["trace", "--duration", "0", "--pid", "1"], "duration"),
        (
            vec!["trace", "--stack-depth", "128", "--pid", "1"],
            "128 is not in 1..=127",
        ),
        (vec!["top", "--stacks"], "not per stack"),
        (vec!["top", "--format", "folded"], "not per stack"),
        (
            vec!["--tui", "--format", "folded", "alloc", "mmap"],
            "not the --tui view",
        ),
        (vec!["alloc", "thp", "--bytes", "5"], "has fixed steps"),
        (vec!["alloc", "all", "--read"], "has fixed steps"),
        (vec!["alloc"], "required"),
        (vec!["alloc", "mmap", "--list"], "cannot be used with"),
        (
            vec!["trace", "--format", "json", "--", "/bin/true"],
            "needs --output FILE",
        ),
        (
            vec!["trace", "--format", "chrome-trace", "--", "/bin/true"],
            "needs --output FILE",
        ),
        (vec!["top", "--format", "chrome-trace"], "keeps no events"),
        (
            vec!["--tui", "--format", "chrome-trace", "alloc", "mmap"],
            "not the --tui view",
        ),
        (
            vec!["trace", "--cgroup", "/no-such-demo-cgroup"],
            "does not exist under the cgroup v2 mount",
        ),
        (vec!["trace", "--cgroup", "/tmp"], "/tmp is not a cgroup"),
        (
            vec!["trace", "--cgroup", v1.as_str()],
            "is a cgroup v1 path",
        ),
        (
            vec!["trace", "--cgroup", "/x", "--pid", "1"],
            "cannot be used with",
        ),
        (
            vec!["trace", "--cgroup", "/x", "--", "/bin/true"],
            "cannot be used with",
        ),
        (
            vec!["trace", "--cgroup", "/x", "--region", "0x1000:8"],
            "is a range of one process",
        ),
        (
            vec!["top", "--cgroup", "/x", "--pid", "1"],
            "cannot be used with",
        ),
        (
            vec!["top", "--cgroup", "/no-such-demo-cgroup"],
            "does not exist under the cgroup v2 mount",
        ),
        (
            vec!["trace", "--format", "pprof", "--", "/bin/true"],
            "give --output FILE",
        ),
        (
            vec!["--tui", "--format", "pprof", "alloc", "mmap"],
            "not the --tui view",
        ),
    ] {
        let output = Command::new(DEMO).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
    }
    // A run that works, so the table above cannot pass by failing everything.
    let lines = json_lines(&demo(&["alloc", "mmap", "--format", "json"]));
    assert_eq!(of_kind(&lines, "summary")[0]["faults_in_region"], 3);
}

#[test]
fn duration_ends_the_trace_and_leaves_no_command_running() {
    let lines = trace_command(
        "duration",
        Path::new("/bin/sleep"),
        &["30"],
        &["--duration", "0.5"],
        &[],
    );
    let summary = &of_kind(&lines, "summary")[0];
    assert_eq!(summary["ended_by"], "duration");
    assert_eq!(summary["child"], "killed by SIGKILL");
    let pid = summary["pid"].as_u64().unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "sleep {pid} is still there"
    );
}

#[test]
fn a_traced_commands_output_never_mixes_into_json() {
    require_root();
    // Without --output, a machine-read trace of a command is refused: the command's output
    // would mix into it.
    for format in ["json", "folded"] {
        let output = Command::new(DEMO)
            .args(["trace", "--format", format, "--", "sh", "-c", "echo hello"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{format}: {stderr}");
        assert!(stderr.contains("needs --output FILE"), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
        assert!(output.stdout.is_empty(), "nothing ran");
    }
    // With it, stdout is the command's alone and the file holds JSON Lines alone.
    let out = output_file("hello");
    let output = Command::new(DEMO)
        .args(["trace", "--format", "json", "--output"])
        .arg(&out)
        .args(["--", "sh", "-c", "echo hello; echo oops >&2"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "hello\n");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "oops\n");
    let lines = json_file(&out);
    assert_eq!(lines.first().unwrap()["kind"], "trace");
    assert_eq!(lines.last().unwrap()["kind"], "summary");
    assert_eq!(lines.last().unwrap()["child"], "exited with status 0");
    // Text is for people: it keeps stdout, beside the command's output.
    let output = Command::new(DEMO)
        .args(["trace", "--", "sh", "-c", "echo hello"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("# tracing sh"), "{text}");
    assert!(text.lines().any(|line| line == "hello"), "{text}");
}

#[test]
fn an_output_file_belongs_to_the_user_who_ran_sudo() {
    use std::os::unix::fs::MetadataExt as _;
    require_root();
    // demo creates the file as that user, so it goes where they may write.
    let theirs = common::test_dir().join("owned-by-65534");
    let _ = std::fs::create_dir(&theirs);
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
    let out = theirs.join("owned.json");
    let _ = std::fs::remove_file(&out);
    let status = Command::new(DEMO)
        .args(["trace", "--format", "json", "--output"])
        .arg(&out)
        .args(["--", "/bin/true"])
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .status()
        .unwrap();
    assert!(status.success());
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    // Without sudo's variables a new file stays root's.
    std::fs::remove_file(&out).unwrap();
    let status = Command::new(DEMO)
        .args(["alloc", "mmap", "--format", "json", "--output"])
        .arg(&out)
        .env_remove("SUDO_UID")
        .env_remove("SUDO_GID")
        .status()
        .unwrap();
    assert!(status.success());
    let meta = std::fs::metadata(&out).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
}

/// Reads a Trace Event Format file and checks what every timeline tool relies on: the frame,
/// a phase and a time from 0 on each event, and complete events that nest on each thread.
fn chrome_events(path: &Path) -> Vec<Value> {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(file["displayTimeUnit"], "ms");
    let events = file["traceEvents"].as_array().unwrap().clone();
    let mut slices: std::collections::BTreeMap<(u64, u64), Vec<(f64, f64)>> = Default::default();
    for event in &events {
        let ph = event["ph"].as_str().unwrap();
        assert!(matches!(ph, "i" | "X" | "C" | "M"), "{event}");
        assert!(event["ts"].as_f64().unwrap() >= 0.0, "{event}");
        assert!(event["pid"].is_u64() && event["tid"].is_u64(), "{event}");
        if ph == "X" {
            let (ts, dur) = (
                event["ts"].as_f64().unwrap(),
                event["dur"].as_f64().unwrap(),
            );
            assert!(dur >= 0.0, "{event}");
            let track = (
                event["pid"].as_u64().unwrap(),
                event["tid"].as_u64().unwrap(),
            );
            slices.entry(track).or_default().push((ts, ts + dur));
        }
    }
    for (track, mut spans) in slices {
        spans.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut open: Vec<f64> = Vec::new();
        for (start, end) in spans {
            while open.last().is_some_and(|&outer| outer <= start) {
                open.pop();
            }
            if let Some(&outer) = open.last() {
                assert!(end <= outer, "slices overlap without nesting on {track:?}");
            }
            open.push(end);
        }
    }
    events
}

fn faults_of(events: &[Value], pid: u64) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["cat"] == "fault" && e["pid"] == pid)
        .collect()
}

#[test]
fn chrome_trace_has_every_fault_on_its_threads_track() {
    require_root();
    let program = compile_c("forker_chrome", FORKER, &[]);
    let out = common::test_dir().join("forker.trace.json");
    let status = Command::new(DEMO)
        .args(["trace", "--follow", "--elem-size", "4"])
        .args(["--format", "chrome-trace", "--output"])
        .arg(&out)
        .arg("--")
        .arg(&program)
        .status()
        .unwrap();
    assert!(status.success());
    let events = chrome_events(&out);
    let summary = events.last().unwrap();
    assert_eq!(summary["name"], "summary");
    let faults: Vec<&Value> = events.iter().filter(|e| e["cat"] == "fault").collect();
    assert_eq!(
        faults.len() as u64,
        summary["args"]["faults_total"].as_u64().unwrap(),
        "every traced fault is in the file"
    );
    assert_eq!(summary["args"]["lost"], 0);
    let fork = events
        .iter()
        .find(|e| e["name"] == "fork")
        .expect("the fork");
    let child = fork["pid"].as_u64().unwrap();
    // The child's own array is the region its write of arr[7000] hit; before it, the child's
    // copy-on-write faults hit the regions it inherited.
    let child_faults = faults_of(&events, child);
    let array = child_faults
        .iter()
        .find(|e| e["args"]["index"] == 7000)
        .expect("arr[7000] on the child's track")["args"]["region"]
        .clone();
    let in_array: Vec<(i64, u64)> = child_faults
        .iter()
        .filter(|e| e["args"]["region"] == array)
        .map(|e| {
            (
                e["args"]["index"].as_i64().unwrap(),
                e["args"]["page"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        in_array,
        [(7000, 6), (42, 0)],
        "the child's writes, on its track"
    );
    assert!(
        events
            .iter()
            .any(|e| e["name"] == "mmap" && e["ph"] == "X" && e["pid"] == child)
    );
    let counter_name = format!("resident pages {}", array.as_str().unwrap());
    let counter = events
        .iter()
        .filter(|e| e["ph"] == "C" && e["name"] == counter_name.as_str())
        .map(|e| e["args"]["resident"].as_u64().unwrap())
        .max();
    assert_eq!(counter, Some(2), "the region's resident pages");
    assert!(
        events
            .iter()
            .any(|e| e["name"] == "exit" && e["pid"] == child)
    );
    assert!(events.iter().any(|e| e["ph"] == "M" && e["pid"] == child));

    // A walk: its steps are slices on the child's track, and the three array faults sit in
    // the steps that made them.
    let out = common::test_dir().join("mmap.trace.json");
    let status = Command::new(DEMO)
        .args(["alloc", "mmap", "--format", "chrome-trace", "--output"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let events = chrome_events(&out);
    let steps: Vec<&Value> = events.iter().filter(|e| e["cat"] == "step").collect();
    assert_eq!(steps.len(), 5);
    let walker = steps[0]["pid"].as_u64().unwrap();
    let array: Vec<&Value> = faults_of(&events, walker)
        .into_iter()
        .filter(|e| e["args"]["region"] == "arr")
        .collect();
    let indices: Vec<i64> = array
        .iter()
        .map(|e| e["args"]["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indices, [1500, 0, 3000]);
    for (fault, step) in array.iter().zip([1, 3, 4]) {
        let slice = steps[step];
        let (start, end) = (
            slice["ts"].as_f64().unwrap(),
            slice["ts"].as_f64().unwrap() + slice["dur"].as_f64().unwrap(),
        );
        let ts = fault["ts"].as_f64().unwrap();
        assert!(start <= ts && ts <= end, "{fault} in {slice}");
    }
}

/// A process name that retitles a terminal (`ESC ]2;x BEL`) and forges a line (a newline).
const HOSTILE_NAME: &str = "a\x1b]2;x\x07\nb";

/// The hostile program, as a file whose path holds the title sequence (`e ESC ]2;x BEL`), run
/// through a symlink named `HOSTILE_NAME`: exec names the process after the path it was given.
/// (The file's own name holds no newline: /proc/PID/maps writes one as `\012`, and the
/// symbolizer could not open the file by that name.)
fn hostile_program() -> &'static Path {
    // Made once: the tests that trace it may run at the same time.
    static PROGRAM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PROGRAM.get_or_init(|| {
        let compiled = compile_c("hostile_name", HOSTILE, &[]);
        let file = compiled.with_file_name("e\x1b]2;x\x07");
        std::fs::copy(&compiled, &file).unwrap();
        let link = compiled.with_file_name(HOSTILE_NAME);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        link
    })
}

/// Runs `demo trace --format FORMAT --output FILE -- PROGRAM 16` and returns what it wrote.
fn trace_hostile(format: &str, program: &Path) -> String {
    require_root();
    let out = common::test_dir().join(format!("hostile.{format}"));
    let status = Command::new(DEMO)
        .args(["trace", "--format", format, "--output"])
        .arg(&out)
        .arg("--")
        .arg(program)
        .arg("16")
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        !text.contains(['\x1b', '\x07']),
        "a raw control reached {format}: {text:?}"
    );
    text
}

/// The process's name and its file's path, which any user chooses, reach the trace's text
/// escaped: the terminal's title stays, and no line is forged.
#[test]
fn a_hostile_process_name_is_escaped_in_the_trace_text() {
    let program = hostile_program();
    let text = trace_hostile("text", program);
    let dir = program.parent().unwrap().display();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("# tracing {dir}/a\\e]2;x\\x07\\nb 16 (pid ")),
        "{first}"
    );
    // main's write to its data is a fault in the file's mapping, named by its escaped path,
    // under the fault's line: `-  PATH@0x…  main+0x…`.
    let path = format!("{dir}/e\\e]2;x\\x07@0x");
    let own_data: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("  main+0x"))
        .filter(|line| line.split_whitespace().any(|word| word.starts_with(&path)))
        .collect();
    assert_eq!(own_data.len(), 1, "{text}");
    assert!(!text.lines().any(|line| line.starts_with("b")), "{text}");
}

/// Folded stacks: the newline in the process's name would start a line of its own, read as a
/// stack with a count the process chose. Every line is `NAME;frames COUNT` under its name.
#[test]
fn a_hostile_process_name_is_one_frame_of_every_folded_line() {
    let program = hostile_program();
    let folded = trace_hostile("folded", program);
    // Escaped, and `;` made `:`, the name is one frame.
    let mut total = 0;
    for line in folded.lines() {
        assert!(line.starts_with("a\\e]2:x\\x07\\nb;"), "{folded}");
        let (_, count) = line.rsplit_once(' ').unwrap();
        total += count.parse::<u64>().unwrap_or_else(|_| panic!("{line}"));
    }
    // main wrote a page of its data and 16 fresh pages: 17 faults, under the process's name.
    let main: Vec<&str> = folded
        .lines()
        .filter(|line| line.starts_with("a\\e]2:x\\x07\\nb;main "))
        .collect();
    assert_eq!(main, ["a\\e]2:x\\x07\\nb;main 17"], "{folded}");
    assert!(total > 17, "{folded}");
}

/// The command demo starts runs demo's own code from its fork to its exec (`__libc_fork`,
/// `demo::kernel::spawn::spawn`, `tie_to_parent`); its first malloc's return goes through the
/// uretprobe trampoline on the `[uprobes]` page the kernel maps for demo's heap probes, which
/// faults it in; and each ptrace stop at its exit sends demo a SIGCHLD with CLD_TRAPPED. None of
/// them is the program's: not a line, not in the totals, not in `faults_by_function`. The
/// summary counts them apart, and the kernel's count still matches.
#[test]
fn demos_own_faults_and_signals_are_not_the_programs() {
    let program = compile_c("alloc_mmap_own", SEED, &["-DMMAP"]);
    let lines = trace_program("own", &program, &["--elem-size", "4"], &[]);
    let demo_binary = std::fs::canonicalize(DEMO).unwrap();
    let demo_binary = demo_binary.to_str().unwrap();
    let demos = |code: &Value| {
        code["module"] == demo_binary
            || code["module"] == "[uprobes]"
            || code["symbol"]
                .as_str()
                .is_some_and(|symbol| symbol.starts_with("demo::") || symbol == "__libc_fork")
    };
    let faults = of_kind(&lines, "fault");
    let own_faults: Vec<&&Value> = faults
        .iter()
        .filter(|fault| demos(&fault["code"]) || fault["mapping"] == "[uprobes]")
        .collect();
    assert!(own_faults.is_empty(), "{own_faults:#?}");
    let trapped: Vec<&Value> = of_kind(&lines, "signal")
        .into_iter()
        .filter(|signal| signal["signal"] == "SIGCHLD" && signal["code"] == 4)
        .collect();
    assert!(trapped.is_empty(), "{trapped:?}");
    let summary = of_kind(&lines, "summary")[0];
    let functions = summary["faults_by_function"].as_array().unwrap();
    assert!(!functions.is_empty(), "{summary}");
    assert!(!functions.iter().any(demos), "{functions:#?}");
    assert!(
        functions.iter().any(|row| row["symbol"] == "main"),
        "{functions:#?}"
    );
    let own = &summary["demo_own"];
    assert!(own["faults_before_exec"].as_u64().unwrap() > 0, "{own}");
    assert_eq!(own["uprobes_page_faults"], 1, "{own}");
    assert_eq!(own["ptrace_stop_signals"], 1, "{own}");
    assert_eq!(
        faults.len() as u64,
        summary["faults_total"].as_u64().unwrap()
    );
    // The kernel counted demo's faults too: they stay in the completions compared with it.
    assert_eq!(
        summary["traced_completions"].as_u64().unwrap(),
        summary["minor"].as_u64().unwrap()
            + summary["major"].as_u64().unwrap()
            + own["faults_before_exec"].as_u64().unwrap()
            + own["uprobes_page_faults"].as_u64().unwrap(),
        "{summary}"
    );
    assert!(
        (0..=5).contains(&summary["rusage_difference"].as_i64().unwrap()),
        "{summary}"
    );
}

/// Built without frame pointers, `touch` keeps in rbp what the frame-pointer walk takes for
/// a frame: once the address of ASCII text's bytes (`param_va`, 0x61765f6d61726170, as a
/// Python stack gave), once a pointer into the program's data. Each fault's stack ends before
/// them: every frame is in an executable mapping of the process (its maps, saved before it
/// exits), and the text marks where the walk left code.
const NO_FRAME_POINTERS: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
long table[64] = {1};
__attribute__((noinline)) static void touch(volatile char *page, long *frame) {
    __asm__ volatile("mov %%rsi, %%rbp\n\tmovb $1, (%%rdi)" :: "D"(page), "S"(frame)
                     : "rbp", "memory");
}
int main(int argc, char **argv) {
    char *pages = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    long text[2] = {0, 0x61765f6d61726170L};
    long data[2] = {0, (long)&table[8]};
    touch(pages, text);
    touch(pages + 4096, data);
    FILE *in = fopen("/proc/self/maps", "r"), *out = fopen(argv[1], "w");
    int c;
    while ((c = fgetc(in)) != EOF) fputc(c, out);
    fclose(out);
    return 0;
}
"#;

/// The executable ranges of a /proc/PID/maps text.
fn executable_ranges(maps: &str) -> Vec<(u64, u64)> {
    maps.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (range, perms) = (words.next()?, words.next()?);
            let (start, end) = range.split_once('-')?;
            (perms.as_bytes()[2] == b'x').then(|| {
                (
                    u64::from_str_radix(start, 16).unwrap(),
                    u64::from_str_radix(end, 16).unwrap(),
                )
            })
        })
        .collect()
}

#[test]
fn a_stack_ends_at_the_first_frame_outside_an_executable_mapping() {
    let program = compile_c(
        "no_frame_pointers",
        NO_FRAME_POINTERS,
        &["-O2", "-fomit-frame-pointer"],
    );
    let maps_file = common::test_dir().join("no_frame_pointers.maps");
    let _ = std::fs::remove_file(&maps_file);
    let maps_arg = maps_file.to_str().unwrap().to_owned();
    let lines = trace_command(
        "stacks_without_fp",
        &program,
        &[&maps_arg],
        &["--call-graph", "fp"],
        &[],
    );
    let executable = executable_ranges(&std::fs::read_to_string(&maps_file).unwrap());
    let pid = of_kind(&lines, "trace")[0]["pid"].as_u64().unwrap();
    let touches: Vec<&Value> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|fault| fault["pid"] == pid && fault["code"]["symbol"] == "touch")
        .collect();
    assert_eq!(touches.len(), 2, "{touches:#?}");
    for fault in of_kind(&lines, "fault")
        .into_iter()
        .filter(|f| f["pid"] == pid)
    {
        let frames = fault["stack"].as_array().expect("a stack");
        for frame in frames {
            let address = u64::from_str_radix(
                frame["address"].as_str().unwrap().trim_start_matches("0x"),
                16,
            )
            .unwrap();
            if address >= 0xffff_8000_0000_0000 {
                continue;
            }
            assert!(
                executable
                    .iter()
                    .any(|&(start, end)| (start..end).contains(&address)),
                "frame {frame} of {fault} is in no executable mapping"
            );
        }
    }
    // The text shows the faulting instruction, then where the walk left code.
    let out = output_file("stacks_without_fp.txt");
    let status = Command::new(DEMO)
        .args(["trace", "--call-graph", "fp", "--wide", "--output"])
        .arg(&out)
        .arg("--")
        .arg(&program)
        .arg(&maps_arg)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&out).unwrap();
    let ends: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("(not code:"))
        .collect();
    assert!(
        ends.iter().any(|line| line.contains("0x61765f6d61726170")),
        "{text}"
    );
    assert!(!text.contains("table+"), "{text}");
}
