//! Totals that add up: the kernel's own fault counts, per process and for a followed tree,
//! against what the trace saw, on real programs in the real kernel. Root.

mod common;

use std::{
    ffi::OsStr,
    process::{Child, Command, Stdio},
};

use common::c_programs::{TOUCH, compile_c};
use common::json::{of_kind, trace_to_file};
use serde_json::Value;

const PAGES: u64 = 20_000;

/// A busy loop on every CPU, for as long as it is held.
struct Contention(Vec<Child>);

impl Contention {
    fn start() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Self(
            (0..cpus)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "while :; do :; done"])
                        .stdout(Stdio::null())
                        .spawn()
                        .expect("start a busy loop")
                })
                .collect(),
        )
    }
}

impl Drop for Contention {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn summary(lines: &[Value]) -> &Value {
    of_kind(lines, "summary")
        .into_iter()
        .next()
        .expect("a summary line")
}

/// The quiet-thread settling once read a thread's counters from /proc while thousands of its
/// records still waited in the buffer, and called them unattributed (16,282 of 20,000 in one
/// run under contention). With every CPU busy, the loader falls behind; the one fault the
/// kernel takes outside the tracepoints (execve copying the arguments) is all that remains.
#[test]
fn a_loader_behind_under_contention_attributes_every_fault() {
    let touch = compile_c("totals_touch", TOUCH, &[]);
    let pages = PAGES.to_string();
    for run in 0..3 {
        let lines = {
            let _busy = Contention::start();
            trace_to_file(
                &format!("contention_{run}"),
                &[],
                &[touch.as_os_str(), OsStr::new(&pages)],
                &[],
                Stdio::null(),
            )
        };
        let summary = summary(&lines);
        assert_eq!(summary["lost"], 0, "run {run}: {summary}");
        let unattributed = summary["unattributed_faults"].as_u64().unwrap();
        // One execve: at most 5 faults the kernel took through get_user_pages.
        assert!(unattributed <= 5, "run {run}: {summary}");
        assert!(summary["minor"].as_u64().unwrap() >= PAGES, "{summary}");
    }
}

/// With --follow, the kernel's count covers the whole tree: `sh` reaps the child, so its rusage
/// holds the child's faults, and the summary compares them with every traced process's, and
/// shows each process's own difference from the counters its threads exited with.
#[test]
fn a_followed_tree_is_compared_with_the_kernels_count_per_process_and_in_total() {
    let touch = compile_c("totals_tree", TOUCH, &[]);
    let script = format!("{} {PAGES}; true", touch.display());
    let lines = trace_to_file(
        "tree",
        &["--follow"],
        &[OsStr::new("sh"), OsStr::new("-c"), OsStr::new(&script)],
        &[],
        Stdio::null(),
    );
    let summary = summary(&lines);
    let processes = summary["processes"].as_array().expect("processes");
    // sh, and the child it forked that exec'd the program.
    assert_eq!(processes.len(), 2, "{summary}");
    // Two execves: the command's own (sh), and its child's.
    let execs = 2;
    for process in processes {
        let difference = process["difference"]
            .as_i64()
            .expect("a process that exited");
        let kernel = &process["kernel"];
        let kernel_total = kernel["minflt"].as_i64().unwrap() + kernel["majflt"].as_i64().unwrap();
        assert_eq!(
            kernel_total
                - process["before_trace"].as_i64().unwrap()
                - process["traced"].as_i64().unwrap(),
            difference,
            "{process}"
        );
        assert!((0..=5).contains(&difference), "{process}");
    }
    let child = processes
        .iter()
        .find(|process| process["traced"].as_u64().unwrap() >= PAGES)
        .expect("the child traced with its pages");
    assert_eq!(child["before_trace"], 0, "{child}");
    let total = summary["rusage_difference"].as_i64().unwrap();
    assert!((0..=5 * execs).contains(&total), "{summary}");
    let traced: u64 = processes
        .iter()
        .map(|process| process["traced"].as_u64().unwrap())
        .sum();
    assert_eq!(summary["traced_completions"], traced, "{summary}");
}
