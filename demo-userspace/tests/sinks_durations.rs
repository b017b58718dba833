//! Fault durations in the sinks that draw them: a chrome-trace timeline whose timed faults last
//! their duration and whose error fault stays an instant, and folded stacks weighed by their
//! faults' time (`--weight time`). A C program compiled at test time; root, real kernel. No
//! timing threshold is asserted: only what must hold of any run.

mod common;

use std::{collections::BTreeMap, path::Path, process::Command};

use common::c_programs::compile_c;
use common::{DEMO, require_root, test_dir};
use serde_json::Value;

/// `fill` writes one byte to each of 256 fresh anonymous pages (huge pages refused, so each is
/// a fault of its own), then `main` writes through a null pointer: an error fault, which never
/// completes, and the program dies of SIGSEGV.
const TOUCH_THEN_CRASH: &str = r#"
#include <sys/mman.h>
static char *buffer;
__attribute__((noinline)) void fill(int pages) {
    for (int i = 0; i < pages; i++)
        buffer[i * 4096] = 1;
}
int main(void) {
    buffer = mmap(0, 256 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffer == MAP_FAILED) return 1;
    madvise(buffer, 256 * 4096, MADV_NOHUGEPAGE);
    fill(256);
    *(volatile int *)0 = 1;
    return 0;
}
"#;

/// What a shell reports for a command killed by SIGSEGV, as demo exits when its command did.
const KILLED_BY_SEGV: i32 = 128 + 11;

/// Runs `demo trace ARGS -o OUT -- PROGRAM` (the program dies of SIGSEGV) with `env`, and
/// returns what it wrote and its stderr.
fn trace(program: &Path, out: &Path, args: &[&str], env: &[(&str, &str)]) -> (String, String) {
    require_root();
    let output = Command::new(DEMO)
        .arg("trace")
        .args(args)
        .arg("--output")
        .arg(out)
        .arg("--")
        .arg(program)
        .envs(env.iter().copied())
        .output()
        .expect("start demo trace");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(KILLED_BY_SEGV), "{stderr}");
    (std::fs::read_to_string(out).unwrap(), stderr)
}

/// The fault events of a chrome-trace file.
fn chrome_faults(text: &str) -> Vec<Value> {
    let file: Value = serde_json::from_str(text).unwrap();
    file["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["cat"] == "fault")
        .cloned()
        .collect()
}

#[test]
fn chrome_trace_draws_each_completed_fault_as_long_as_it_took() {
    let program = compile_c("crash_chrome", TOUCH_THEN_CRASH, &["-g"]);
    let out = test_dir().join("crash.chrome.json");
    let (text, stderr) = trace(
        &program,
        &out,
        &["--durations", "--format", "chrome-trace"],
        &[],
    );
    let faults = chrome_faults(&text);
    let mut spans: BTreeMap<(u64, u64), Vec<(f64, f64)>> = BTreeMap::new();
    let (mut timed, mut errors, mut in_fill) = (0, 0, 0);
    for fault in &faults {
        let args = &fault["args"];
        match args["class"].as_str().unwrap() {
            "minor" | "major" => {
                timed += 1;
                assert_eq!(fault["ph"], "X", "{fault}");
                let (ts, dur) = (
                    fault["ts"].as_f64().unwrap(),
                    fault["dur"].as_f64().unwrap(),
                );
                assert!(dur > 0.0, "{fault}");
                // `dur` is the duration in microseconds, to the float's precision.
                let ns = args["duration_ns"].as_u64().unwrap();
                assert_eq!((dur * 1000.0).round() as u64, ns, "{fault}");
                let time = &args["time"];
                if let Some(off_cpu) = time["off_cpu_ns"].as_u64() {
                    let parts = ["on_cpu_ns", "reclaim_ns", "compaction_ns"]
                        .map(|part| time[part].as_u64().unwrap());
                    assert_eq!(off_cpu + parts.iter().sum::<u64>(), ns, "{fault}");
                }
                let track = (
                    fault["pid"].as_u64().unwrap(),
                    fault["tid"].as_u64().unwrap(),
                );
                spans.entry(track).or_default().push((ts, ts + dur));
                // `fill+0x…`, not ld.so's `fillin_rpath`, whose first run can fault its page.
                if args["code"].as_str().unwrap().starts_with("fill+") {
                    in_fill += 1;
                }
            }
            "error" => {
                errors += 1;
                assert_eq!(
                    (fault["ph"].as_str(), fault["s"].as_str()),
                    (Some("i"), Some("t"))
                );
                assert!(fault.get("dur").is_none(), "{fault}");
                assert!(
                    args["duration_ns"].is_null() && args["time"].is_null(),
                    "{fault}"
                );
            }
            class => panic!("class {class}: {fault}"),
        }
    }
    assert_eq!(in_fill, 256, "fill's faults, each a slice:\n{stderr}");
    assert_eq!(errors, 1, "the null write, an instant");
    assert_eq!(timed + errors, faults.len());
    // A thread takes one fault at a time: its faults' slices follow each other on its track.
    for (track, mut spans) in spans {
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        for pair in spans.windows(2) {
            assert!(
                pair[1].0 >= pair[0].1 - 1e-6,
                "faults overlap on {track:?}: {pair:?}"
            );
        }
    }

    // Without durations, every fault is an instant, as before.
    let (text, _) = trace(
        &program,
        &out,
        &["--no-durations", "--format", "chrome-trace"],
        &[],
    );
    let faults = chrome_faults(&text);
    assert!(faults.len() > 256, "{}", faults.len());
    for fault in &faults {
        assert_eq!(fault["ph"], "i", "{fault}");
        assert!(fault["args"]["duration_ns"].is_null(), "{fault}");
    }
}

/// The lines of a folded file, `stack weight`, each weight a positive integer.
fn folded_lines(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .map(|line| {
            let (stack, weight) = line.rsplit_once(' ').unwrap();
            let weight: u64 = weight.parse().unwrap_or_else(|_| panic!("{line}"));
            assert!(weight > 0, "{line}");
            (stack.to_owned(), weight)
        })
        .collect()
}

/// The same run cannot write two formats, so the folded weights are checked against the log
/// line the sink writes beside them (the format has no place for a total), and the faults'
/// count of the same program under `--weight faults`.
#[test]
fn folded_weight_time_weighs_each_stack_by_its_faults_nanoseconds() {
    let program = compile_c("crash_folded", TOUCH_THEN_CRASH, &["-g"]);
    let out = test_dir().join("crash.folded");
    let (text, stderr) = trace(
        &program,
        &out,
        &["--durations", "--format", "folded", "--weight", "time"],
        &[("RUST_LOG", "demo=info")],
    );
    let time = folded_lines(&text);
    let said = stderr
        .lines()
        .find_map(|line| {
            line.split_once("folded --weight time: ")
                .map(|(_, said)| said)
        })
        .unwrap_or_else(|| panic!("no total in the log:\n{stderr}"));
    let number = |before: &str| -> u64 {
        let (head, _) = said.split_once(before).unwrap();
        head.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // Every line's weight is in the total, and the null write weighs nothing.
    assert_eq!(time.values().sum::<u64>(), number(" ns in "), "{said}");
    assert_eq!(number(" faults not timed"), 1, "{said}");
    assert!(number(" timed faults") >= 256, "{said}");
    let fill = time
        .get("crash_folded;fill")
        .unwrap_or_else(|| panic!("no line for fill:\n{text}"));
    // 256 faults of at least a nanosecond each.
    assert!(*fill >= 256, "{fill}");

    let (text, _) = trace(
        &program,
        &out,
        &["--format", "folded", "--weight", "faults"],
        &[],
    );
    let faults = folded_lines(&text);
    assert_eq!(faults.get("crash_folded;fill"), Some(&256), "{text}");
}
