//! Integration tests of `demo alloc` that load the real eBPF programs into the running kernel.
//! They need root; `cargo xtask test` runs them as root, and they fail (never skip) without it.

mod common;

use std::{os::unix::process::CommandExt as _, process::Command};

use common::json::{demo, json_file, json_lines, of_kind, parse_line};
use common::kernel::assert_nothing_of_ours_is_loaded;
use common::{DEMO, require_root};
use serde_json::Value;

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
            assert_eq!(fault["class"], "minor", "{fault}");
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

    // The region comes from the kernel's mmap return, which the child's report matches.
    let syscalls = of_kind(&lines, "syscall");
    assert_eq!(syscalls.len(), 1, "{syscalls:?}");
    assert_eq!(syscalls[0]["name"], "mmap");
    assert_eq!(syscalls[0]["step"], 1);
    assert_eq!(syscalls[0]["args"]["len"], 20000);
    assert_eq!(syscalls[0]["args"]["prot"], "RW");
    assert_eq!(syscalls[0]["args"]["flags"], "PRIVATE|ANON");
    assert_eq!(syscalls[0]["ret"], region[0]["address"]);
    assert_eq!(steps[0]["allocation"]["address_check"]["check"], "matches");

    let summary = of_kind(&lines, "summary");
    assert_eq!(summary.len(), 1);
    assert_eq!(summary[0]["faults_in_region"], 3);
    assert_eq!(summary[0]["error"], 0);
    assert_eq!(summary[0]["unattributed_faults"], 0);
    assert_eq!(summary[0]["lost"], 0);
    let total = summary[0]["faults_total"].as_u64().unwrap();
    assert_eq!(total as usize, of_kind(&lines, "fault").len());
}

#[test]
fn text_report_shows_each_step_in_80_columns() {
    let everything = String::from_utf8(demo(&[]).stdout).unwrap();
    for line in everything.lines() {
        assert!(line.chars().count() <= 80, "too wide: {line}");
    }
    for expected in [
        "== mmap ==",
        "== malloc ==",
        "== out-of-bounds ==",
        "== mmap against malloc ==",
        "  died      the child was killed by SIGSEGV",
        "            SIGSEGV, si_code SEGV_MAPERR: no mapping at the address",
    ] {
        assert!(everything.contains(expected), "missing {expected:?}");
    }
    let output = demo(&["alloc", "mmap"]);
    let text = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "step 2  arr[1500] = 2",
        "  fault     arr[1500] (+6000) on page 1 = arr[1024..2047]  minor",
        "            write, page not present, user mode (error code 0x6)",
        "step 3  arr[1501] = 3\n  fault     none in arr",
        "  pages     [##*..]  3 of 5 resident, 12 KiB",
        "  kernel    pagemap: pages 0-2 resident, as the faults say",
        "  why       no fault: page 1 was already present, since step 2 (arr[1500])",
        "summary: 3 faults in the array",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn output_goes_to_the_file_given() {
    let out = common::output_file("alloc");
    let output = demo(&[
        "alloc",
        "mmap",
        "--format",
        "json",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(output.stdout.is_empty());
    let lines = json_file(&out);
    assert_eq!(of_kind(&lines, "summary")[0]["faults_in_region"], 3);
}

#[test]
fn demo_without_arguments_runs_every_scenario_and_compares() {
    let lines = json_lines(&demo(&["--format", "json"]));
    let summaries = of_kind(&lines, "summary");
    let scenarios: Vec<&str> = summaries
        .iter()
        .map(|s| s["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(scenarios, ["mmap", "malloc", "out-of-bounds"]);
    assert_eq!(summaries[0]["faults_in_region"], 3);
    assert_eq!(summaries[2]["child"], "killed by SIGSEGV");
    let comparison = of_kind(&lines, "comparison");
    assert_eq!(comparison.len(), 1);
    let walks = comparison[0]["walks"].as_array().unwrap();
    assert_eq!(walks[0]["summary"]["scenario"], "mmap");
    assert_eq!(walks[1]["summary"]["scenario"], "malloc");
    let faults = |walk: &Value| -> Vec<u64> {
        walk["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|step| step["faults_in_region"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(faults(&walks[0]), [0, 1, 0, 1, 1]);
    assert_eq!(&faults(&walks[1])[1..], [1, 0, 0, 1]);
    assert_eq!(walks[0]["page_offset"], 0);
    assert_ne!(walks[1]["page_offset"], 0);
}

/// The faults inside the array's bytes at touched indices, as (step, index).
fn touched_faults(lines: &[Value]) -> Vec<(u64, i64)> {
    of_kind(lines, "fault")
        .into_iter()
        .filter(|fault| fault["region"] == "arr" && fault["in_bounds"] == true)
        .map(|fault| {
            (
                fault["step"].as_u64().unwrap(),
                fault["index"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn malloc_walk_faults_only_at_1500_and_3000_and_explains_arr0() {
    let lines = json_lines(&demo(&["alloc", "malloc", "--format", "json"]));
    let region = &of_kind(&lines, "region")[0];
    assert_eq!(region["origin"], "malloc");
    let offset = region["page_offset"].as_u64().unwrap();
    assert_ne!(offset, 0, "malloc's array is not page-aligned");
    assert_eq!(offset % 16, 0, "glibc aligns blocks to 16 bytes");

    // Only the touched indices 1500 and 3000 fault; malloc's own writes fall outside arr's bytes.
    assert_eq!(touched_faults(&lines), [(2, 1500), (5, 3000)]);

    let steps = of_kind(&lines, "step");
    let allocation = &steps[0]["allocation"];
    assert_eq!(allocation["allocator"], "malloc");
    assert_eq!(allocation["page_offset"], offset);
    // The allocation step lists the syscalls that served malloc (none when the heap had room),
    // and they are exactly the syscall lines of step 1.
    let step1_syscalls: Vec<&Value> = of_kind(&lines, "syscall")
        .into_iter()
        .filter(|call| call["step"] == 1)
        .map(|call| &call["text"])
        .collect();
    let served: Vec<&Value> = allocation["served_by"].as_array().unwrap().iter().collect();
    assert_eq!(served, step1_syscalls);
    for call in &served {
        let text = call.as_str().unwrap();
        assert!(
            text.starts_with("brk(") || text.starts_with("mmap("),
            "{text}"
        );
    }
    assert_eq!(allocation["vma"], "[heap]");
    assert_eq!(steps[4]["vma"]["name"], "[heap]");

    // arr[0] did not fault because its page was already present, and the report says since when.
    let touch = &steps[3]["touch"];
    assert_eq!(touch["index"], 0);
    assert_eq!(touch["faulted"], false);
    assert!(!touch["resident_since"].is_null(), "{touch}");
    assert_eq!(steps[3]["faults_in_region"], 0);
    for step in &steps {
        assert_eq!(step["agrees"], true, "{step}");
    }
}

#[test]
fn out_of_bounds_dies_of_sigsegv_at_index_5121_page_5() {
    let lines = json_lines(&demo(&["alloc", "out-of-bounds", "--format", "json"]));
    let steps = of_kind(&lines, "step");
    assert_eq!(steps.len(), 7);
    let guard = &steps[0]["allocation"]["guard"];
    assert_eq!(guard["unmapped"], true, "{guard}");
    let step1: Vec<&str> = of_kind(&lines, "syscall")
        .iter()
        .filter(|call| call["step"] == 1)
        .map(|call| call["name"].as_str().unwrap())
        .collect();
    assert_eq!(step1, ["mmap", "munmap"]);

    // arr[5001] is past the array but inside its last page: a normal minor fault on page 4.
    let in_region: Vec<(u64, i64, u64, &str)> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|fault| fault["region"] == "arr")
        .map(|fault| {
            (
                fault["step"].as_u64().unwrap(),
                fault["index"].as_i64().unwrap(),
                fault["page"].as_u64().unwrap(),
                fault["class"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        in_region,
        [
            (2, 1500, 1, "minor"),
            (4, 0, 0, "minor"),
            (5, 3000, 2, "minor"),
            (6, 5001, 4, "minor"),
            (7, 5121, 5, "error")
        ]
    );

    let signals = of_kind(&lines, "signal");
    assert_eq!(signals.len(), 1, "{signals:?}");
    let signal = signals[0];
    assert_eq!(signal["signal"], "SIGSEGV");
    assert_eq!(signal["si_code"], "SEGV_MAPERR");
    assert_eq!(signal["index"], 5121);
    assert_eq!(signal["page"], 5);
    assert_eq!(signal["in_bounds"], false);
    assert_eq!(signal["step"], 7);
    assert_eq!(
        signal["sources"],
        serde_json::json!(["signal:signal_generate", "wait status"])
    );
    assert_eq!(steps[6]["child_alive"], false);
    let summary = &of_kind(&lines, "summary")[0];
    assert_eq!(summary["child"], "killed by SIGSEGV");
    assert_eq!(summary["error"], 1);
    assert_eq!(summary["lost"], 0);
}

#[test]
fn out_of_bounds_via_malloc_survives() {
    let lines = json_lines(&demo(&[
        "alloc",
        "out-of-bounds",
        "--via",
        "malloc",
        "--format",
        "json",
    ]));
    assert!(of_kind(&lines, "signal").is_empty());
    // The region's origin comes from the allocator, not from the scenario's name.
    assert_eq!(of_kind(&lines, "region")[0]["origin"], "malloc");
    let steps = of_kind(&lines, "step");
    assert_eq!(steps.len(), 7);
    for step in &steps[5..] {
        assert_eq!(step["touch"]["in_bounds"], false, "{step}");
        assert_eq!(step["touch"]["mapping"], "[heap]", "{step}");
        assert_eq!(step["child_alive"], true);
    }
    assert_eq!(
        of_kind(&lines, "summary")[0]["child"],
        "exited with status 0"
    );
}

#[test]
fn read_then_write_maps_the_zero_page_then_copies_on_write() {
    let lines = json_lines(&demo(&[
        "alloc",
        "mmap",
        "--read",
        "--then-write",
        "--format",
        "json",
    ]));
    let steps = of_kind(&lines, "step");
    let rss: Vec<u64> = steps
        .iter()
        .map(|s| s["rss_kib"].as_u64().unwrap())
        .collect();
    // Reads of 1500, 1501, 0, 3000 map the zero page and leave RSS alone; the writes that
    // follow take a copy-on-write fault each on pages 1, 0 and 2, and RSS grows by 4 KiB.
    assert_eq!(rss, [0, 0, 0, 0, 0, 4, 4, 8, 12]);
    let zero: Vec<Value> = steps.iter().map(|s| s["zero_pages"].clone()).collect();
    assert_eq!(zero[4], serde_json::json!([0, 1, 2]));
    assert_eq!(zero[8], serde_json::json!([]));

    let faults: Vec<(u64, i64, &str, bool, u64)> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|fault| fault["region"] == "arr")
        .map(|fault| {
            assert_eq!(fault["class"], "minor");
            (
                fault["step"].as_u64().unwrap(),
                fault["index"].as_i64().unwrap(),
                fault["access"].as_str().unwrap(),
                fault["present"].as_bool().unwrap(),
                fault["error_code"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        faults,
        [
            (2, 1500, "read", false, 4),
            (4, 0, "read", false, 4),
            (5, 3000, "read", false, 4),
            (6, 1500, "write", true, 7),
            (8, 0, "write", true, 7),
            (9, 3000, "write", true, 7)
        ]
    );
}

#[test]
fn kernel_mode_faults_on_user_pages_are_reported_as_such() {
    let lines = json_lines(&demo(&[
        "alloc",
        "mmap",
        "--via-syscall",
        "--format",
        "json",
    ]));
    let faults: Vec<(i64, &str, &str)> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|fault| fault["region"] == "arr")
        .map(|fault| {
            assert_eq!(fault["present"], false);
            assert_eq!(fault["class"], "minor");
            (
                fault["index"].as_i64().unwrap(),
                fault["mode"].as_str().unwrap(),
                fault["access"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        faults,
        [
            (1500, "kernel", "write"),
            (0, "kernel", "write"),
            (3000, "kernel", "write")
        ]
    );
}

#[test]
fn custom_bytes_and_touch_list() {
    let lines = json_lines(&demo(&[
        "alloc",
        "mmap",
        "--bytes",
        "40000",
        "--touch",
        "9999,0,5000",
        "--format",
        "json",
    ]));
    let region = &of_kind(&lines, "region")[0];
    assert_eq!(region["size"], 40000);
    assert_eq!(region["pages"], 10);
    let pages: Vec<(i64, u64)> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|fault| fault["region"] == "arr")
        .map(|fault| {
            (
                fault["index"].as_i64().unwrap(),
                fault["page"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(pages, [(9999, 9), (0, 0), (5000, 4)]);
}

#[test]
fn bad_walk_options_are_usage_errors() {
    require_root();
    for args in [
        &["alloc", "malloc", "--via", "mmap"][..],
        &["alloc", "mmap", "--bytes", "2"][..],
        &["alloc", "mmap", "--then-write"][..],
        &["alloc", "mmap", "--touch", "x"][..],
    ] {
        let output = Command::new(DEMO).args(args).output().expect("start demo");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
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
    assert_nothing_of_ours_is_loaded();
}

/// `demo ARGS` with piped stdio, and a thread that passes on each line of its stdout.
struct Interactive {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
}

impl Interactive {
    fn start(args: &[&str]) -> Self {
        use std::io::{BufRead as _, BufReader};
        require_root();
        let mut child = Command::new(DEMO)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start demo");
        let stdin = child.stdin.take().unwrap();
        let (line_sender, lines) = std::sync::mpsc::channel::<String>();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let _ = line_sender.send(line.unwrap());
            }
        });
        Self {
            child,
            stdin,
            lines,
            reader,
        }
    }
}

/// Enter is given one line at a time, and only after the prompt for that step: before each
/// Enter, the steps reported so far are exactly the earlier ones, and stay so while demo waits.
#[test]
fn interactive_waits_for_one_enter_per_step() {
    use std::{
        io::{Read as _, Write as _},
        sync::mpsc,
        time::Duration,
    };
    let Interactive {
        mut child,
        mut stdin,
        lines,
        reader,
    } = Interactive::start(&["alloc", "mmap", "--interactive", "--format", "json"]);
    // The prompts end with ": " and no newline, so stderr is read byte by byte.
    let (prompt_sender, prompts) = mpsc::channel::<String>();
    let mut stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut byte = [0u8; 1];
        while stderr.read(&mut byte).is_ok_and(|n| n == 1) {
            text.push(byte[0] as char);
            if let Some(rest) = text.split("press Enter for ").nth(1)
                && let Some((prompt, _)) = rest.split_once(':')
            {
                let _ = prompt_sender.send(prompt.to_owned());
                text.clear();
            }
        }
    });
    let mut got: Vec<serde_json::Value> = Vec::new();
    let steps_so_far = |got: &mut Vec<serde_json::Value>| {
        got.extend(lines.try_iter().map(|l| parse_line(&l)));
        got.iter().filter(|line| line["kind"] == "step").count()
    };
    for step in 1..=5 {
        let prompt = prompts
            .recv_timeout(Duration::from_secs(30))
            .expect("a prompt for the next step");
        assert_eq!(prompt, format!("step {step}"));
        // The last step's line may still be on its way through the pipe.
        let start = std::time::Instant::now();
        while steps_so_far(&mut got) < step - 1 && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            steps_so_far(&mut got),
            step - 1,
            "before Enter for step {step}"
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            steps_so_far(&mut got),
            step - 1,
            "ran ahead of Enter for step {step}"
        );
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    assert_eq!(steps_so_far(&mut got), 5);
    let summary: Vec<_> = got.iter().filter(|l| l["kind"] == "summary").collect();
    assert_eq!(summary[0]["faults_in_region"], 3);
}

/// The text of `demo ARGS`, with each wrapped paragraph joined into one line, so a sentence
/// can be checked whole wherever the report wraps it.
fn joined_text(args: &[&str]) -> String {
    let text = String::from_utf8(demo(args).stdout).unwrap();
    text.replace("\n            ", " ")
}

#[test]
fn stacks_leave_every_step_its_fault_line() {
    let text = String::from_utf8(demo(&["alloc", "mmap", "--stacks"]).stdout).unwrap();
    for expected in [
        "step 1  arr = mmap(NULL, 20000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)\n",
        "step 3  arr[1501] = 3\n  fault     none in arr\n",
        "  fault     arr[1500] (+6000) on page 1 = arr[1024..2047]  minor, ",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    assert_eq!(
        text.matches("  fault     none in arr\n").count(),
        2,
        "{text}"
    );
    // Every frame is the workload's own, which says nothing: none is printed.
    assert!(!text.contains("demo::"), "{text}");
    assert!(!text.contains("#0"), "{text}");
}

#[test]
fn a_write_after_a_copy_on_write_says_the_copy_made_the_page_writable() {
    let text = joined_text(&["alloc", "mmap", "--read", "--then-write"]);
    assert!(
        text.contains(
            "step 3  x = arr[1501]\n  fault     none in arr\n  why       no fault: page 1 \
             was already present, since step 2 (arr[1500])\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "step 7  arr[1501] = 7\n  fault     none in arr\n  why       no fault: page 1 \
             was already present and writable: step 2 (arr[1500]) mapped the shared zero page \
             there, and step 6's write (arr[1500]) gave it a copy of its own\n"
        ),
        "{text}"
    );
}

#[test]
fn walks_name_no_code_of_the_workload_and_call_demos_binary_the_workload() {
    let text = String::from_utf8(demo(&[]).stdout).unwrap();
    assert!(!text.contains("demo::"), "{text}");
    assert!(!text.contains(DEMO), "{text}");
    assert!(text.contains(" in the workload (demo's binary)"), "{text}");
    // malloc's own code, which tells something, is named.
    assert!(text.contains("by _int_malloc+0x"), "{text}");
    // Every index range beside an element holds it, past the array's end too.
    let heads: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("  fault     arr[") && line.contains(" = arr["))
        .collect();
    assert!(
        heads
            .iter()
            .any(|line| line
                .starts_with("  fault     arr[5001] (+20004) on page 4 = arr[4096..5119]  ")),
        "{heads:#?}"
    );
    for head in heads {
        let (element, rest) = head["  fault     arr[".len()..].split_once(']').unwrap();
        let range = rest
            .split_once("= arr[")
            .unwrap()
            .1
            .split_once(']')
            .unwrap()
            .0;
        let (first, last) = range.split_once("..").unwrap();
        let element: i64 = element.parse().unwrap();
        assert!(
            (first.parse::<i64>().unwrap()..=last.parse().unwrap()).contains(&element),
            "{head}"
        );
    }
}

/// `--interactive` in text shows the walk's title before the first Enter, and wraps each
/// prompt at words in 80 columns.
#[test]
fn interactive_text_shows_the_title_first_and_wraps_prompts_at_words() {
    use std::{
        io::{Read as _, Write as _},
        sync::{Arc, Mutex},
        time::{Duration, Instant},
    };
    let Interactive {
        mut child,
        mut stdin,
        lines,
        reader,
    } = Interactive::start(&["alloc", "thp", "--interactive"]);
    let prompts = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let written = Arc::clone(&prompts);
    let errors = std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        while stderr.read(&mut byte).is_ok_and(|n| n == 1) {
            written.lock().unwrap().push(byte[0] as char);
        }
    });
    assert_eq!(
        lines.recv_timeout(Duration::from_secs(30)).as_deref(),
        Ok("== thp =="),
        "the title comes before the first Enter"
    );
    let first = "press Enter for step 1: arr = 2 MiB of mmap(MAP_PRIVATE|MAP_ANONYMOUS) at a\n  \
                 2 MiB boundary (4 MiB mapped, the rest unmapped) ";
    let start = Instant::now();
    while *prompts.lock().unwrap() != first && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*prompts.lock().unwrap(), first);
    assert!(
        lines.try_recv().is_err(),
        "nothing of step 1 before its Enter"
    );
    stdin.write_all(b"\n\n\n\n\n").unwrap();
    drop(stdin);
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    errors.join().unwrap();
    let prompts = prompts.lock().unwrap().clone();
    // On a terminal the Enter typed after each prompt ends its line; in a pipe nothing does.
    let typed = prompts.replace(" press Enter", " \npress Enter");
    for line in typed.lines() {
        assert!(line.chars().count() <= 80, "{line}");
    }
    insta::assert_snapshot!("interactive_thp_prompts", typed);
    let report: Vec<String> = lines.try_iter().collect();
    assert!(
        report
            .iter()
            .any(|line| line.starts_with("step 3  arr[0] = 3")),
        "{report:#?}"
    );
}
