//! `demo trace --cgroup` and `demo top --cgroup`, end to end: the processes of a cgroup made
//! for the test (forked inside it, moved in, in a cgroup below it) are traced with exactly the
//! faults they make, a process outside faulting at the same time appears nowhere, and the
//! trace ends, saying why, when the cgroup is removed.

mod common;

use std::{
    fs::File,
    io::{BufRead as _, BufReader, Lines, Write as _},
    path::PathBuf,
    process::{Child, ChildStdout, Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    DEMO,
    c_programs::compile_c,
    cgroup::TestCgroup,
    json::{json_file, of_kind, parse_line},
    kernel::assert_nothing_of_ours_is_loaded,
    output_file, require_root, test_dir,
};
use serde_json::Value;

/// Prints its pid, waits for a line on the FIFO `argv[2]`, maps `argv[1]` pages and writes one
/// byte in each, prints `done`, and waits for the FIFO's end. It maps only once told to, so
/// that the trace has joined it by then.
const TOUCH: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long pages = atol(argv[1]);
    printf("%d\n", (int)getpid());
    fflush(stdout);
    FILE *go = fopen(argv[2], "r");
    if (!go) return 1;
    char line[16];
    if (!fgets(line, sizeof line, go)) return 1;
    char *area = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) return 1;
    for (long i = 0; i < pages; i++) area[i * 4096] = 1;
    printf("done\n");
    fflush(stdout);
    while (fgets(line, sizeof line, go)) {}
    return 0;
}
"#;

/// A FIFO of the test's own, made fresh.
fn fifo(name: &str) -> PathBuf {
    let path = test_dir().join(name);
    let _ = std::fs::remove_file(&path);
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    path
}

/// The next line a process wrote, trimmed.
fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    lines.next().expect("a line").unwrap().trim().to_owned()
}

/// A toucher that printed its pid and waits on its FIFO; the writer that tells it to go.
struct Toucher {
    pid: u64,
    pages: u64,
    fifo: PathBuf,
    go: Option<File>,
}

impl Toucher {
    /// Tells it to map and touch its pages.
    fn go(&mut self) {
        let mut writer = File::options().write(true).open(&self.fifo).unwrap();
        writer.write_all(b"go\n").unwrap();
        self.go = Some(writer);
    }

    /// Lets it end.
    fn end(&mut self) {
        drop(self.go.take());
    }
}

/// Starts `demo trace --cgroup PATH --format json -o FILE` and waits for its start line.
fn start_trace(name: &str, cgroup: &TestCgroup) -> (Child, PathBuf, Value) {
    require_root();
    let out = output_file(name);
    let _ = std::fs::remove_file(&out);
    let mut tracer = Command::new(DEMO)
        .args([
            "trace",
            "--cgroup",
            &cgroup.path,
            "--format",
            "json",
            "--output",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let start = loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(line) = text.lines().next() {
            break parse_line(line);
        }
        if Instant::now() >= deadline {
            let _ = tracer.kill();
            let ended = tracer.wait();
            panic!("demo trace never started: {ended:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (tracer, out, start)
}

/// Sends SIGINT to `child` and waits for it to end well.
fn interrupt(mut child: Child) {
    // SAFETY: kill(2) on a process this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    assert!(child.wait().unwrap().success());
}

/// The fault lines of process `pid` in its region of `pages` pages made by mmap.
fn faults_in_mapping_of(lines: &[Value], pid: u64, pages: u64) -> Vec<&Value> {
    let regions: Vec<&Value> = of_kind(lines, "region")
        .into_iter()
        .filter(|r| r["pid"] == pid && r["size"] == pages * 4096 && r["origin"] == "mmap")
        .collect();
    assert_eq!(regions.len(), 1, "pid {pid}: {regions:#?}");
    of_kind(lines, "fault")
        .into_iter()
        .filter(|f| f["pid"] == pid && f["region"] == regions[0]["name"])
        .collect()
}

/// The Must-show of issue 31: a shell already in the cgroup forks one toucher, a second is
/// moved in through cgroup.procs, a third is in a cgroup below it; each is traced with exactly
/// the faults it made in its mapping, named by its command, while a fourth in another cgroup,
/// faulting at the same time, appears in no line of the trace, and `demo top --cgroup`,
/// running meanwhile, shows none but the cgroup's processes.
#[test]
fn a_cgroups_processes_are_traced_and_no_other() {
    let touch = compile_c("cg_touch", TOUCH, &[]);
    let cgroup = TestCgroup::new("demo-cg");
    let inner = cgroup.child("inner");
    let elsewhere = TestCgroup::new("demo-cg-out");
    let mut shell = Command::new("sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let shell_pid = u64::from(shell.id());
    cgroup.enter(shell_pid);
    let mut shell_in = shell.stdin.take().unwrap();
    let mut shell_out = BufReader::new(shell.stdout.take().unwrap()).lines();

    let (tracer, out, start) = start_trace("cgroup", &cgroup);
    assert_eq!(start["cgroup"], cgroup.path.as_str(), "{start}");
    assert_eq!(start["pid"], Value::Null, "{start}");
    // The fault programs, and the kernel's own counters alone, each scoped to the cgroup.
    let mut tops: Vec<(Child, Lines<BufReader<ChildStdout>>, Vec<Value>)> =
        [&[][..], &["--counters-only"]]
            .into_iter()
            .map(|args| {
                let mut top = Command::new(DEMO)
                    .args(["top", "--cgroup", &cgroup.path, "--format", "json"])
                    .args(["--interval", "0.5", "-n", "100000"])
                    .args(args)
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut lines = BufReader::new(top.stdout.take().unwrap()).lines();
                // Its first interval: it counts from here.
                let first = parse_line(&lines.next().unwrap().unwrap());
                (top, lines, vec![first])
            })
            .collect();

    // Forked by the shell, already inside.
    let forked_fifo = fifo("cg-forked");
    writeln!(shell_in, "{} 17 {}", touch.display(), forked_fifo.display()).unwrap();
    let mut forked = Toucher {
        pid: next_line(&mut shell_out).parse().unwrap(),
        pages: 17,
        fifo: forked_fifo,
        go: None,
    };
    // Started outside, then each moved into a cgroup before it maps anything.
    let mut outside = Vec::new();
    let mut start_outside = |name: &str, pages: u64, into: &TestCgroup| {
        let fifo = fifo(name);
        let mut child = Command::new(&touch)
            .arg(pages.to_string())
            .arg(&fifo)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let pid: u64 = next_line(&mut lines).parse().unwrap();
        into.enter(pid);
        outside.push((child, lines));
        Toucher {
            pid,
            pages,
            fifo,
            go: None,
        }
    };
    let mut moved = start_outside("cg-moved", 23, &cgroup);
    let mut below = start_outside("cg-below", 31, &inner);
    let mut other = start_outside("cg-other", 29, &elsewhere);

    for toucher in [&mut forked, &mut other, &mut moved, &mut below] {
        toucher.go();
    }
    assert_eq!(next_line(&mut shell_out), "done");
    for (_, lines) in &mut outside {
        assert_eq!(next_line(lines), "done");
    }
    // Two more intervals of each top, which then hold every fault.
    let mut intervals = Vec::new();
    for (top, mut lines, mut shown) in tops.drain(..) {
        shown.push(parse_line(&lines.next().unwrap().unwrap()));
        shown.push(parse_line(&lines.next().unwrap().unwrap()));
        interrupt(top);
        shown.extend(lines.map(|line| parse_line(&line.unwrap())));
        intervals.push(shown);
    }
    for toucher in [&mut forked, &mut moved, &mut below, &mut other] {
        toucher.end();
    }
    for (mut child, _) in outside {
        assert!(child.wait().unwrap().success());
    }
    drop(shell_in);
    assert!(shell.wait().unwrap().success());
    // Its exits are in the buffer when they are reaped; a poll reads them.
    std::thread::sleep(Duration::from_millis(300));
    interrupt(tracer);

    let lines = json_file(&out);
    for toucher in [&forked, &moved, &below] {
        let faults = faults_in_mapping_of(&lines, toucher.pid, toucher.pages);
        assert_eq!(faults.len() as u64, toucher.pages, "pid {}", toucher.pid);
        for fault in faults {
            assert_eq!(fault["class"], "minor", "{fault}");
            assert_eq!(fault["access"], "write", "{fault}");
            assert_eq!(fault["comm"], "cg_touch", "{fault}");
        }
    }
    let summary = of_kind(&lines, "summary")[0];
    assert_eq!(summary["ended_by"], "interrupt", "{summary}");
    assert_eq!(summary["cgroup"], cgroup.path.as_str(), "{summary}");
    let seen: std::collections::BTreeSet<u64> = summary["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|process| process["pid"].as_u64().unwrap())
        .collect();
    let ours: std::collections::BTreeSet<u64> = [shell_pid, forked.pid, moved.pid, below.pid]
        .into_iter()
        .collect();
    assert_eq!(seen, ours, "{summary}");
    // Each exited before the end: the kernel's own count of its faults is in the summary.
    for process in summary["processes"].as_array().unwrap() {
        assert!(process["kernel"].is_object(), "{process}");
    }
    // The process outside is in no line at all, at any depth: not as a fault's pid or tid (its
    // one thread's tid is its pid), a signal's receiver (named by its tid in `pid`), a fork's
    // parent, a region's owner or a process of the summary.
    let leaked: Vec<&Value> = lines
        .iter()
        .filter(|line| names_process(line, other.pid))
        .collect();
    assert!(leaked.is_empty(), "{leaked:#?}");

    for (intervals, how) in intervals.iter().zip(["per fault", "--counters-only"]) {
        let shown: std::collections::BTreeSet<u64> = intervals
            .iter()
            .flat_map(|interval| interval["processes"].as_array().unwrap())
            .map(|row| row["pid"].as_u64().unwrap())
            .collect();
        assert!(
            shown.is_subset(&ours),
            "top {how} showed {shown:?}, the cgroup's are {ours:?}"
        );
        for toucher in [&forked, &moved, &below] {
            assert!(
                shown.contains(&toucher.pid),
                "top {how} never showed {}",
                toucher.pid
            );
        }
    }
    drop(inner);
    assert_nothing_of_ours_is_loaded();
}

/// True when `value`, or anything in it, has a field that names process or thread `id`.
fn names_process(value: &Value, id: u64) -> bool {
    match value {
        Value::Object(fields) => fields.iter().any(|(key, field)| {
            (["pid", "tid", "parent"].contains(&key.as_str()) && *field == id)
                || names_process(field, id)
        }),
        Value::Array(items) => items.iter().any(|item| names_process(item, id)),
        _ => false,
    }
}

/// A trace of a cgroup ends when the cgroup is removed, says so in both outputs, and exits 0;
/// so does `demo top --cgroup`.
#[test]
fn removing_the_cgroup_ends_the_trace() {
    let cgroup = TestCgroup::new("demo-cg-removed");
    let (mut tracer, out, _) = start_trace("cgroup-removed", &cgroup);
    std::fs::remove_dir(&cgroup.directory).unwrap();
    let removed = Instant::now();
    let status = loop {
        if let Some(status) = tracer.try_wait().unwrap() {
            break status;
        }
        assert!(
            removed.elapsed() < Duration::from_secs(2),
            "demo trace still runs 2 s after its cgroup was removed"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
    let lines = json_file(&out);
    let summary = of_kind(&lines, "summary")[0];
    assert_eq!(summary["ended_by"], "cgroup_removed", "{summary}");
    assert_eq!(summary["cgroup"], cgroup.path.as_str(), "{summary}");
    assert_nothing_of_ours_is_loaded();

    let cgroup = TestCgroup::new("demo-cg-gone");
    let mut tracer = Command::new(DEMO)
        .args(["trace", "--cgroup", &cgroup.path])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut text = BufReader::new(tracer.stdout.take().unwrap()).lines();
    let first = text.next().unwrap().unwrap();
    assert_eq!(
        first,
        format!(
            "# tracing every process in cgroup {} and below it",
            cgroup.path
        )
    );
    std::fs::remove_dir(&cgroup.directory).unwrap();
    let rest: Vec<String> = text.map(Result::unwrap).collect();
    assert!(tracer.wait().unwrap().success());
    let ended = format!("ended: cgroup {} was removed", cgroup.path);
    assert!(rest.contains(&ended), "{rest:#?}");

    let cgroup = TestCgroup::new("demo-cg-top-gone");
    let mut top = Command::new(DEMO)
        .args(["top", "--cgroup", &cgroup.path, "--format", "json"])
        .args(["--interval", "0.2"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(top.stdout.take().unwrap()).lines();
    parse_line(&lines.next().unwrap().unwrap());
    std::fs::remove_dir(&cgroup.directory).unwrap();
    let removed = Instant::now();
    // It ends after the interval in which the cgroup went.
    let after: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(top.wait().unwrap().success());
    assert!(after.len() <= 2, "{after:#?}");
    assert!(
        removed.elapsed() < Duration::from_secs(2),
        "demo top ran {:?} after its cgroup was removed",
        removed.elapsed()
    );
    assert_nothing_of_ours_is_loaded();
}

/// A process listed in the cgroup at the start is taken on only while it is still there and
/// neither exiting nor a zombie: not this test's own process, which runs outside, nor a child
/// killed in the cgroup and not yet reaped.
#[test]
fn only_a_live_process_in_the_cgroup_is_held_live() {
    require_root();
    let cgroup = TestCgroup::new("demo-held");
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    cgroup.enter(u64::from(child.id()));
    let scope = demo::kernel::cgroup::CgroupScope::resolve(&cgroup.path).unwrap();
    let inside = scope.holds_live(child.id());
    let outside = scope.holds_live(std::process::id());
    child.kill().unwrap();
    // Until it is reaped, the killed child is a zombie, still listed in the cgroup.
    let zombie = (0..200).find_map(|_| {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).ok()?;
        let state = stat.rsplit_once(") ")?.1.chars().next()?;
        if state == 'Z' {
            return Some(scope.holds_live(child.id()));
        }
        std::thread::sleep(Duration::from_millis(10));
        None
    });
    child.wait().unwrap();
    assert_eq!((inside, outside, zombie), (true, false, Some(false)));
}
