//! What a fault cost, held to the kernel's own facts: a program takes 256 anonymous minor faults,
//! one major fault on a file dropped from the page cache, kernel-mode faults in read(2) and one
//! fault that fails; every fault that completed has a duration and the class its completion
//! event gave, the program's own rusage agrees fault for fault, and the summary's histograms
//! count what the lines show. Root, real kernel, a disk filesystem at /var/tmp.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::OnceLock,
};

use common::c_programs::compile_c;
use common::cold_file::{disk_file, drop_from_cache};
use common::json::{of_kind, trace_to_file};
use common::test_dir;
use serde_json::Value;

/// Fresh anonymous pages the program writes, one fault each.
const ANON_PAGES: u64 = 256;
/// Pages read(2) copies into untouched anonymous memory: a kernel-mode fault each.
const READ_PAGES: u64 = 16;

/// `durations COLD WARM REPORT`. Its window is cut by two calls of `madvise(NULL, 0,
/// MADV_NORMAL)`, which demo traces: right after the first it reads its rusage, then writes one
/// byte to each of 256 fresh anonymous pages, reads the one page of the file COLD (dropped from
/// the page cache) through a mapping, read(2)s 16 pages of the file WARM into untouched
/// anonymous memory, and pread(2)s into a PROT_NONE page (a kernel-mode fault that fails: the
/// call returns EFAULT); it reads its rusage again right before the second marker. The
/// sequence marker, getrusage, getrusage, marker ran once before, so the edges of the window
/// take no fault of their own. After the window it writes both readings and its mappings'
/// addresses to REPORT.
const DURATIONS_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#define PAGE 4096
static char report[1024];
static void marker(void) { madvise(NULL, 0, MADV_NORMAL); }
static char *map(long pages, int prot, int fd) {
    char *area = mmap(NULL, pages * PAGE, prot, fd < 0 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_PRIVATE,
                      fd, 0);
    if (area == MAP_FAILED) return NULL;
    if (fd < 0 && madvise(area, pages * PAGE, MADV_NOHUGEPAGE)) return NULL;
    return area;
}
int main(int argc, char **argv) {
    if (argc != 4) return 3;
    int cold = open(argv[1], O_RDONLY), warm = open(argv[2], O_RDONLY);
    int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (cold < 0 || warm < 0 || out < 0) return 1;
    char *anon = map(ANON_PAGES, PROT_READ | PROT_WRITE, -1);
    volatile char *file = map(1, PROT_READ, cold);
    char *buffer = map(READ_PAGES, PROT_READ | PROT_WRITE, -1);
    char *guard = map(1, PROT_NONE, -1);
    if (!anon || !file || !buffer || !guard) return 1;
    struct rusage start, end;
    marker(); getrusage(RUSAGE_SELF, &start); getrusage(RUSAGE_SELF, &end); marker();

    marker();
    getrusage(RUSAGE_SELF, &start);
    for (long i = 0; i < ANON_PAGES; i++) anon[i * PAGE] = 1;
    char byte = file[0];
    ssize_t got = read(warm, buffer, READ_PAGES * PAGE);
    ssize_t refused = pread(warm, guard, 1, 0);
    int refused_errno = errno;
    getrusage(RUSAGE_SELF, &end);
    marker();

    if (byte != 'c' || got != READ_PAGES * PAGE || refused != -1 || refused_errno != EFAULT)
        return 2;
    int length = snprintf(report, sizeof report,
        "start %ld %ld\nend %ld %ld\nanon %lx\nfile %lx\nbuffer %lx\nguard %lx\n",
        start.ru_minflt, start.ru_majflt, end.ru_minflt, end.ru_majflt,
        (unsigned long)anon, (unsigned long)file, (unsigned long)buffer, (unsigned long)guard);
    return write(out, report, length) == length ? 0 : 1;
}
"#;

/// What the program wrote: its rusage at the window's edges (minor, major) and where its
/// mappings are.
#[derive(Debug)]
struct Report {
    start: Counts,
    end: Counts,
    anon: u64,
    file: u64,
    buffer: u64,
    guard: u64,
}

/// Faults by class, as the kernel counts them (minor, major) and as demo gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    minor: u64,
    major: u64,
}

impl Counts {
    fn total(self) -> u64 {
        self.minor + self.major
    }

    fn plus(self, other: Self) -> Self {
        Self {
            minor: self.minor + other.minor,
            major: self.major + other.major,
        }
    }

    fn less(self, other: Self) -> Self {
        Self {
            minor: self.minor - other.minor,
            major: self.major - other.major,
        }
    }
}

fn read_report(path: &Path) -> Report {
    let text = std::fs::read_to_string(path).unwrap();
    let field = |key: &str| -> Vec<&str> {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {key} in the report: {text}"))
            .split(' ')
            .collect()
    };
    let counts = |key: &str| {
        let values = field(key);
        Counts {
            minor: values[0].parse().unwrap(),
            major: values[1].parse().unwrap(),
        }
    };
    let address = |key: &str| u64::from_str_radix(field(key)[0], 16).unwrap();
    Report {
        start: counts("start"),
        end: counts("end"),
        anon: address("anon"),
        file: address("file"),
        buffer: address("buffer"),
        guard: address("guard"),
    }
}

/// A `rusage` object's minor and major faults.
fn kernel_counts(rusage: &Value) -> Counts {
    Counts {
        minor: number(&rusage["minflt"]),
        major: number(&rusage["majflt"]),
    }
}

fn hex(value: &Value) -> u64 {
    u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn number(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

/// The completed faults of `faults` by class, and how many failed.
fn classes<'a>(faults: impl IntoIterator<Item = &'a Value>) -> (Counts, u64) {
    let (mut counts, mut errors) = (Counts::default(), 0);
    for fault in faults {
        match fault["class"].as_str().unwrap() {
            "minor" => counts.minor += 1,
            "major" => counts.major += 1,
            "error" => errors += 1,
            other => panic!("a class demo does not have: {other}"),
        }
    }
    (counts, errors)
}

/// The traced program's lines cut where its markers are: its faults before the window, in it,
/// and after it.
struct Window<'a> {
    before: Vec<&'a Value>,
    inside: Vec<&'a Value>,
    after: Vec<&'a Value>,
}

/// Cuts the lines of process `pid` at its four markers; the window is between the last two.
/// Its edges take no fault: the program ran the same calls once before, between the first two.
/// (The window's count against the program's rusage is the check of that.)
fn window(lines: &[Value], pid: u64) -> Window<'_> {
    let mut window = Window {
        before: Vec::new(),
        inside: Vec::new(),
        after: Vec::new(),
    };
    let mut markers = 0;
    for line in lines.iter().filter(|line| line["pid"] == pid) {
        if line["kind"] == "syscall"
            && line["name"] == "madvise"
            && line["text"].as_str().unwrap().contains("MADV_NORMAL")
        {
            markers += 1;
        } else if line["kind"] == "fault" {
            match markers {
                0..=2 => window.before.push(line),
                3 => window.inside.push(line),
                _ => window.after.push(line),
            }
        }
    }
    assert_eq!(markers, 4, "the program's four marker calls");
    window
}

/// The files and the program of every run.
struct Setup {
    program: PathBuf,
    cold: PathBuf,
    warm: PathBuf,
}

/// Made once for the test binary's runs.
fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| Setup {
        program: compile_c(
            "durations",
            DURATIONS_C,
            &[
                &format!("-DANON_PAGES={ANON_PAGES}"),
                &format!("-DREAD_PAGES={READ_PAGES}"),
            ],
        ),
        cold: disk_file("cold", 1, b'c'),
        warm: disk_file("warm", READ_PAGES as usize, b'w'),
    })
}

/// Runs the program under `demo trace --no-heap ARGS`, its cold file dropped from the page
/// cache first. Heap probes stay off: the first return through their trampoline faults a page
/// demo counts as its own and leaves out of its lines, wherever it falls.
fn run(name: &str, args: &[&str], setup: &Setup) -> (Vec<Value>, Report) {
    drop_from_cache(&setup.cold);
    let report = test_dir().join(format!("{name}.report"));
    let mut all = vec!["--no-heap"];
    all.extend_from_slice(args);
    let lines = trace_to_file(
        name,
        &all,
        &[
            setup.program.as_os_str(),
            setup.cold.as_os_str(),
            setup.warm.as_os_str(),
            report.as_os_str(),
        ],
        &[],
        Stdio::null(),
    );
    (lines, read_report(&report))
}

/// Checks what both sources share: the kernel's counts against demo's, the faults of each
/// kind where the program took them, and their durations. Returns the window's faults.
fn check_run<'a>(lines: &'a [Value], report: &Report, timed: bool) -> Vec<&'a Value> {
    let summary = of_kind(lines, "summary")[0];
    assert_eq!(summary["lost"], 0, "{summary}");
    let pid = number(&summary["pid"]);
    let cut = window(lines, pid);

    // Inside the window, the program's own rusage and demo's classes agree fault for fault.
    let (inside, errors) = classes(cut.inside.iter().copied());
    assert_eq!(
        inside,
        report.end.less(report.start),
        "the window's faults by class"
    );
    // Before it: demo's own faults before the exec (its code in the forked child), and the
    // faults the kernel takes through get_user_pages at exec, copying the arguments and the
    // environment onto the new stack, which fire neither the fault tracepoints nor the perf
    // events. demo's summary gives those as the process's `difference`: all of them precede
    // the program's first reading.
    let process = summary["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|process| process["pid"] == pid)
        .unwrap();
    let (before, _) = classes(cut.before.iter().copied());
    let own = number(&summary["demo_own"]["faults_before_exec"]);
    let get_user_pages = u64::try_from(process["difference"].as_i64().unwrap()).unwrap();
    assert_eq!(
        before.total() + own + get_user_pages,
        report.start.total(),
        "faults before the window: {summary}"
    );
    // After it, until the exit: the kernel's final count is the program's last reading plus
    // what demo saw after it, class by class.
    let (after, _) = classes(cut.after.iter().copied());
    let kernel = kernel_counts(&process["kernel"]);
    assert_eq!(kernel, report.end.plus(after), "{process}");
    assert_eq!(number(&process["before_trace"]), 0, "{process}");
    // wait4's rusage of the command, which reaped no child, is the same count.
    assert_eq!(kernel_counts(&summary["rusage"]), kernel, "{summary}");
    println!("faults the kernel took through get_user_pages at exec: {get_user_pages}");

    // Where the window's faults are: each kind on its own mapping, all of one class and mode.
    let anon = faults_on(&cut.inside, report.anon, ANON_PAGES, "minor", "user");
    assert_eq!(anon.len() as u64, ANON_PAGES, "{anon:?}");
    let mut pages: Vec<u64> = anon
        .iter()
        .map(|fault| (hex(&fault["address"]) - report.anon) / 4096)
        .collect();
    pages.sort_unstable();
    pages.dedup();
    assert_eq!(
        pages,
        (0..ANON_PAGES).collect::<Vec<_>>(),
        "one fault on each page"
    );
    let file = faults_on(&cut.inside, report.file, 1, "major", "user");
    assert_eq!(file.len(), 1, "{file:?}");
    let read = faults_on(&cut.inside, report.buffer, READ_PAGES, "minor", "kernel");
    assert_eq!(read.len() as u64, READ_PAGES, "{read:?}");
    let refused = faults_on(&cut.inside, report.guard, 1, "error", "kernel");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(errors, 1, "the one failed fault is the guard page's");

    // Durations: every completed fault of the trace has one, with its parts adding up to it;
    // a fault that failed has none.
    for fault in of_kind(lines, "fault") {
        let completed = fault["class"] != "error";
        if !(timed && completed) {
            assert!(
                fault["duration_ns"].is_null() && fault["time"].is_null(),
                "{fault}"
            );
            continue;
        }
        let duration = number(&fault["duration_ns"]);
        let time = &fault["time"];
        let parts = ["on_cpu_ns", "off_cpu_ns", "reclaim_ns", "compaction_ns"]
            .map(|part| number(&time[part]));
        assert_eq!(parts.iter().sum::<u64>(), duration, "{fault}");
    }
    if timed {
        let off_cpu = number(&file[0]["time"]["off_cpu_ns"]);
        assert!(
            off_cpu > 0 && off_cpu <= number(&file[0]["duration_ns"]),
            "the major fault waited off the CPU for its read: {}",
            file[0]
        );
    }
    cut.inside
}

/// The summary's histograms count the trace's faults, class by class, and nothing else.
fn check_histograms(lines: &[Value]) {
    let summary = of_kind(lines, "summary")[0];
    let durations = &summary["durations"];
    let (counts, _) = classes(of_kind(lines, "fault"));
    assert_eq!(number(&summary["minor"]), counts.minor, "{summary}");
    assert_eq!(number(&summary["major"]), counts.major, "{summary}");
    assert_eq!(
        number(&durations["timed_faults"]),
        counts.total(),
        "{durations}"
    );
    assert_eq!(
        number(&summary["completions_without_start"]),
        0,
        "{summary}"
    );
    // Every completion event's class is the one the thread's counters moved by.
    assert_eq!(number(&summary["class_disagreements"]), 0, "{summary}");
    for (class, count) in [("minor", counts.minor), ("major", counts.major)] {
        let histogram = &durations["by_class"][class];
        assert_eq!(number(&histogram["count"]), count, "{class}: {histogram}");
        let bucketed: u64 = histogram["log2_buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|bucket| number(&bucket["count"]))
            .sum();
        assert_eq!(bucketed, count, "{class}: {histogram}");
    }
}

/// The faults of `faults` on the `pages` pages from `base`, after checking that each is of
/// `class` and `mode`.
fn faults_on<'a>(
    faults: &[&'a Value],
    base: u64,
    pages: u64,
    class: &str,
    mode: &str,
) -> Vec<&'a Value> {
    let on: Vec<&Value> = faults
        .iter()
        .filter(|fault| (base..base + pages * 4096).contains(&hex(&fault["address"])))
        .copied()
        .collect();
    for fault in &on {
        assert!(
            fault["class"] == class && fault["mode"] == mode,
            "not {class} in {mode} mode: {fault}"
        );
    }
    on
}

/// min, median and max of the faults' durations.
fn spread(faults: &[&Value]) -> String {
    let mut ns: Vec<u64> = faults.iter().map(|f| number(&f["duration_ns"])).collect();
    ns.sort_unstable();
    format!(
        "{} faults, min {} ns, median {} ns, max {} ns",
        ns.len(),
        ns[0],
        ns[ns.len() / 2],
        ns[ns.len() - 1]
    )
}

/// Prints the window's figures for the README.
fn print_figures(source: &str, inside: &[&Value]) {
    let pick = |class: &str, mode: &str| -> Vec<&Value> {
        inside
            .iter()
            .filter(|f| f["class"] == class && f["mode"] == mode)
            .copied()
            .collect()
    };
    println!(
        "{source}: minor, user mode: {}",
        spread(&pick("minor", "user"))
    );
    println!(
        "{source}: minor, kernel mode: {}",
        spread(&pick("minor", "kernel"))
    );
    let major = pick("major", "user");
    let time = &major[0]["time"];
    println!(
        "{source}: major: {}, off CPU {} ns, on CPU {} ns",
        spread(&major),
        time["off_cpu_ns"],
        time["on_cpu_ns"]
    );
}

/// A timed run with `args`, its faults from `source` ("tracepoint" or "perf"): every check,
/// then the figures.
fn timed(name: &str, args: &[&str], source: &str) {
    let (lines, report) = run(name, args, setup());
    assert_eq!(of_kind(&lines, "trace")[0]["source"], source);
    let inside = check_run(&lines, &report, true);
    check_histograms(&lines);
    print_figures(source, &inside);
}

#[test]
fn every_completed_fault_has_a_duration_and_the_kernels_class() {
    timed("durations", &[], "tracepoint");
}

#[test]
fn the_perf_event_source_times_faults_too() {
    timed("durations_perf", &["--source", "perf"], "perf");
}

/// Without durations, the class comes from the thread's counters, and it is the same.
#[test]
fn without_durations_the_counters_give_the_same_classes_and_no_fault_is_timed() {
    let (lines, report) = run("no_durations", &["--no-durations"], setup());
    check_run(&lines, &report, false);
    assert!(of_kind(&lines, "summary")[0]["durations"].is_null());
}
