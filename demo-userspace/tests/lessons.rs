//! Integration tests of the course's lessons (`demo alloc fork-cow`, `file`, `mprotect`,
//! `stack`, `thp`, `dontneed`, `malloc-mmap`), each loading the real eBPF programs and asserting
//! what the kernel did, fault by fault. They need root; `cargo xtask test` runs them as root.

mod common;

use std::process::Command;

use common::DEMO;
use common::json::{demo, json_lines, of_kind};
use serde_json::Value;

/// Every walk, in the order `--list` names them.
const WALKS: [&str; 10] = [
    "mmap",
    "malloc",
    "out-of-bounds",
    "fork-cow",
    "file",
    "mprotect",
    "stack",
    "thp",
    "dontneed",
    "malloc-mmap",
];

/// Runs `demo alloc LESSON --format json` and returns its lines.
fn lesson(name: &str) -> Vec<Value> {
    json_lines(&demo(&["alloc", name, "--format", "json"]))
}

/// The step lines, by step number from 1.
fn steps(lines: &[Value]) -> Vec<&Value> {
    let steps = of_kind(lines, "step");
    for (number, step) in (1..).zip(&steps) {
        assert_eq!(step["step"], number);
    }
    steps
}

/// The faults of step `step` in the lesson's region.
fn region_faults(lines: &[Value], step: u64) -> Vec<&Value> {
    of_kind(lines, "fault")
        .into_iter()
        .filter(|fault| fault["step"] == step && !fault["region"].is_null())
        .collect()
}

fn pages(values: &Value) -> Vec<u64> {
    values
        .as_array()
        .unwrap_or_else(|| panic!("not a list of pages: {values}"))
        .iter()
        .map(|page| page.as_u64().unwrap())
        .collect()
}

fn hex(value: &Value) -> u64 {
    let text = value.as_str().unwrap_or_else(|| panic!("not hex: {value}"));
    u64::from_str_radix(text.trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn fork_cow_copies_each_written_page_for_the_writer_alone() {
    let lines = lesson("fork-cow");
    let steps = steps(&lines);
    assert_eq!(steps.len(), 6);
    let parent = region_faults(&lines, 2)[0]["pid"].as_u64().unwrap();
    let child = steps[2]["lesson"]["child"].as_u64().unwrap();
    assert_ne!(parent, child);
    assert_eq!(region_faults(&lines, 2).len(), 8);
    assert!(
        region_faults(&lines, 4).is_empty(),
        "the child's reads of shared pages do not fault"
    );
    assert_eq!(
        steps[3]["values"],
        serde_json::json!([2, 2, 2, 2, 2, 2, 2, 2])
    );
    for (step, pid, written) in [(5, child, [0, 1, 2, 3]), (6, parent, [4, 5, 6, 7])] {
        let faults = region_faults(&lines, step);
        let faulted: Vec<u64> = faults
            .iter()
            .map(|fault| fault["page"].as_u64().unwrap())
            .collect();
        assert_eq!(faulted, written, "step {step}");
        for fault in faults {
            assert_eq!(fault["pid"], pid, "{fault}");
            assert_eq!(fault["present"], true, "{fault}");
            assert_eq!(fault["access"], "write", "{fault}");
            assert_eq!(fault["class"], "minor", "{fault}");
        }
    }
    let frames = |step: usize| {
        let facts = &steps[step - 1]["lesson"];
        (pages(&facts["same_frames"]), pages(&facts["own_frames"]))
    };
    assert_eq!(frames(4), ((0..8).collect(), vec![]));
    assert_eq!(frames(5), (vec![4, 5, 6, 7], vec![0, 1, 2, 3]));
    assert_eq!(frames(6), (vec![], (0..8).collect()));
    // smaps: the eight written pages go from Shared (both processes map them) to Private.
    let kib = |step: usize, field: &str| steps[step - 1]["vma"][field].as_u64().unwrap();
    assert_eq!(kib(4, "shared_dirty_kib") - kib(6, "shared_dirty_kib"), 32);
    assert_eq!(
        kib(6, "private_dirty_kib") - kib(4, "private_dirty_kib"),
        32
    );
    let child_kib = |step: usize, field: &str| {
        steps[step - 1]["lesson"]["child_vma"][field]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        child_kib(4, "shared_dirty_kib") - child_kib(6, "shared_dirty_kib"),
        32
    );
}

#[test]
fn file_reads_fault_major_first_and_shared_writes_dirty_the_page_cache() {
    let lines = lesson("file");
    let steps = steps(&lines);
    assert_eq!(steps.len(), 5);
    let facts = &steps[0]["lesson"];
    let path = facts["path"].as_str().unwrap().to_owned();
    let findmnt = Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE", "--target", "/var/tmp"])
        .output()
        .expect("run findmnt");
    assert_eq!(
        facts["filesystem"],
        String::from_utf8_lossy(&findmnt.stdout).trim(),
        "the report names the file's filesystem"
    );
    assert_ne!(facts["filesystem"], "tmpfs", "the lesson needs a disk");
    assert_eq!(
        facts["cached_pages"],
        serde_json::json!([]),
        "DONTNEED dropped it"
    );

    let first_read = region_faults(&lines, 2);
    assert!(
        first_read
            .iter()
            .any(|fault| fault["page"] == 0 && fault["class"] == "major"),
        "{first_read:?}"
    );
    assert!(!pages(&steps[1]["lesson"]["cached_pages"]).is_empty());
    assert_eq!(steps[1]["values"], serde_json::json!([0]));
    assert_eq!(
        steps[2]["values"],
        serde_json::json!([3]),
        "page 3 holds its number"
    );

    // The private write copies page 2: a write fault on a present page, and the page is
    // anonymous afterwards.
    let private = region_faults(&lines, 4);
    assert_eq!(private.len(), 1, "{private:?}");
    assert_eq!(private[0]["page"], 2);
    assert_eq!(private[0]["present"], true);
    assert_eq!(private[0]["access"], "write");
    assert!(!pages(&steps[3]["file_pages"]).contains(&2));
    assert_eq!(steps[3]["vma"]["anonymous_kib"], 4);

    let shared = &steps[4]["lesson"]["shared_vma"];
    assert_eq!(shared["shared_dirty_kib"], 4, "{shared}");
    assert_eq!(shared["private_dirty_kib"], 0, "{shared}");
    assert_eq!(shared["anonymous_kib"], 0, "{shared}");
    assert!(
        !std::path::Path::new(&path).exists(),
        "the lesson's file is removed"
    );
}

#[test]
fn mprotect_ends_in_segv_accerr_on_a_present_page() {
    let lines = lesson("mprotect");
    let steps = steps(&lines);
    assert_eq!(steps.len(), 4);
    let syscalls = steps[2]["syscalls"].as_array().unwrap();
    assert_eq!(syscalls.len(), 1);
    assert!(
        syscalls[0].as_str().unwrap().ends_with(", 4096, R) = 0"),
        "{syscalls:?}"
    );
    let fatal = region_faults(&lines, 4);
    assert_eq!(fatal.len(), 1, "{fatal:?}");
    assert_eq!(fatal[0]["class"], "error");
    assert_eq!(fatal[0]["present"], true);
    assert_eq!(fatal[0]["access"], "write");
    assert_eq!(fatal[0]["error_code"], 7);
    let signals: Vec<&Value> = of_kind(&lines, "signal")
        .into_iter()
        .filter(|signal| signal["step"] == 4 && signal["signal"] == "SIGSEGV")
        .collect();
    assert!(!signals.is_empty());
    for signal in signals {
        assert_eq!(signal["si_code"], "SEGV_ACCERR", "{signal}");
    }
}

#[test]
fn the_stack_grows_below_its_vma_until_the_limit() {
    let lines = lesson("stack");
    let steps = steps(&lines);
    assert_eq!(steps.len(), 4);
    let start = &steps[0]["lesson"];
    let original = hex(&start["original_start"]);
    let top = hex(&start["top"]);
    let grown = &steps[1]["lesson"];
    assert!(grown["faults_below_original"].as_u64().unwrap() > 0);
    let lowest_fault = of_kind(&lines, "fault")
        .into_iter()
        .filter(|fault| fault["step"] == 2 && fault["region"] == "stack")
        .map(|fault| hex(&fault["address"]))
        .min()
        .unwrap();
    assert!(lowest_fault < original);
    let vma = &grown["vma"];
    assert_eq!(
        hex(&vma["start"]),
        lowest_fault & !4095,
        "the VMA grew down to the page of the lowest fault"
    );
    assert!(vma["size_kib"].as_u64().unwrap() * 1024 > top - original);

    let limited = &steps[2]["lesson"];
    assert_eq!(limited["limit"], 512 * 1024);
    let lowest_allowed = hex(&limited["lowest_allowed"]);
    assert_eq!(lowest_allowed, top - 512 * 1024);
    let death = of_kind(&lines, "signal")
        .into_iter()
        .find(|signal| signal["step"] == 4 && !signal["wait_status"].is_null())
        .expect("the child dies in step 4");
    assert_eq!(death["signal"], "SIGSEGV");
    assert_eq!(death["si_code"], "SEGV_MAPERR");
    assert!(hex(&death["address"]) < lowest_allowed, "{death}");
    let summary = &of_kind(&lines, "summary")[0];
    assert_eq!(summary["child"], "killed by SIGSEGV");
}

#[test]
fn thp_maps_a_whole_huge_page_in_one_fault_or_says_why_not() {
    let lines = lesson("thp");
    let steps = steps(&lines);
    let enabled =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let explanation = |step: usize| steps[step - 1]["explanation"].to_string();
    if enabled.is_empty() || enabled.contains("[never]") {
        assert!(
            explanation(1).contains("every fault maps one 4 KiB page"),
            "{}",
            explanation(1)
        );
        return;
    }
    assert_eq!(region_faults(&lines, 3).len(), 1);
    let write = &steps[2];
    assert_eq!(pages(&write["huge_pages"]), (0..512).collect::<Vec<u64>>());
    assert_eq!(pages(&write["resident_pages"]).len(), 512);
    assert_eq!(write["vma"]["anon_huge_kib"], 2048);
    assert_eq!(write["lesson"]["anon_huge_kib"], 2048);
    assert_eq!(write["agrees"], true);
    assert!(explanation(3).contains("huge page: 1 fault, 512 pages resident"));
}

/// One 2 MiB fault against 512 faults of 4 KiB, both measured in the same walk: MADV_DONTNEED
/// and MADV_NOHUGEPAGE, then a write to each page.
#[test]
fn thp_compares_one_2_mib_fault_with_512_faults_of_4_kib() {
    let lines = lesson("thp");
    let steps = steps(&lines);
    assert_eq!(steps.len(), 5);
    let enabled =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    let huge = region_faults(&lines, 3);
    assert_eq!(huge.len(), 1, "{huge:?}");
    let huge_ns = huge[0]["duration_ns"]
        .as_u64()
        .expect("the huge fault is timed");
    assert_eq!(steps[3]["resident_pages"], serde_json::json!([]));
    let small = region_faults(&lines, 5);
    let faulted: Vec<u64> = small.iter().map(|f| f["page"].as_u64().unwrap()).collect();
    assert_eq!(faulted, (0..512).collect::<Vec<u64>>());
    let small_ns: u64 = small
        .iter()
        .map(|fault| {
            fault["duration_ns"]
                .as_u64()
                .expect("each small fault is timed")
        })
        .sum();
    assert_eq!(
        steps[4]["huge_pages"],
        serde_json::json!([]),
        "MADV_NOHUGEPAGE"
    );
    assert_eq!(pages(&steps[4]["resident_pages"]).len(), 512);
    let in_region: u64 = small
        .iter()
        .map(|f| f["duration_ns"].as_u64().unwrap())
        .sum();
    assert!(steps[4]["fault_time_ns"].as_u64().unwrap() >= in_region);
    let said = steps[4]["explanation"][0].as_str().unwrap().to_owned();
    let human = |ns: u64| demo::output::duration::human(ns);
    if enabled.contains("[never]") {
        assert!(
            said.starts_with("no 2 MiB fault to compare with: transparent huge pages are off"),
            "{said}"
        );
    } else {
        assert_eq!(
            common::redact::measured(&said),
            "2 MiB in one fault against 512 of 4 KiB: step 3's one fault mapped arr's 2 MiB as \
             a huge page and took <time>; these 512 faults of 4 KiB took <time> in all (<time> \
             to <time> each)"
        );
        assert!(
            said.contains(&format!("and took {};", human(huge_ns))),
            "{said}"
        );
    }
    assert!(
        said.contains(&format!("took {} in all", human(small_ns))),
        "{said}"
    );
}

/// Must show: `demo alloc file` shows the major fault's duration and its off-CPU share beside
/// the minor faults' durations, measured in that run.
#[test]
fn file_shows_the_major_faults_duration_and_off_cpu_share_beside_the_minor_faults() {
    let lines = lesson("file");
    let steps = steps(&lines);
    let faults = of_kind(&lines, "fault");
    // Every completed fault of the walk has a duration, and an error fault none.
    for fault in &faults {
        let completed = fault["class"] != "error";
        assert_eq!(fault["duration_ns"].is_u64(), completed, "{fault}");
        assert_eq!(fault["time"].is_object(), completed, "{fault}");
    }
    // Each step's time in faults is its faults' durations added up.
    for (number, step) in (1u64..).zip(&steps) {
        let sum: u64 = faults
            .iter()
            .filter(|fault| fault["step"] == number)
            .filter_map(|fault| fault["duration_ns"].as_u64())
            .sum();
        assert_eq!(step["fault_time_ns"], sum, "step {number}");
    }
    let read = region_faults(&lines, 2);
    let majors: Vec<&&Value> = read.iter().filter(|f| f["class"] == "major").collect();
    assert_eq!(majors.len(), 1, "{read:?}");
    let major = majors[0];
    let duration = major["duration_ns"].as_u64().unwrap();
    let off_cpu = major["time"]["off_cpu_ns"].as_u64().unwrap();
    assert!(duration > 0, "{major}");
    assert!(
        off_cpu > 0,
        "the thread waited off the CPU for the read: {major}"
    );
    assert!(off_cpu <= duration, "{major}");
    let minors: Vec<&Value> = faults
        .iter()
        .copied()
        .filter(|fault| !fault["region"].is_null() && fault["class"] == "minor")
        .collect();
    assert!(!minors.is_empty(), "the copy on write is a minor fault");
    for minor in &minors {
        assert!(minor["duration_ns"].as_u64().unwrap() > 0, "{minor}");
    }

    // The text says the same, in sentences, from its own run's measurements.
    let text = String::from_utf8(demo(&["alloc", "file"]).stdout).unwrap();
    let text = text.replace("\n            ", " ");
    let head = text
        .lines()
        .find(|line| line.starts_with("  fault     arr[0] (+0) on page 0 = arr[0..1023]  major, "))
        .unwrap_or_else(|| panic!("no major fault on page 0:\n{text}"));
    assert!(head.contains(" off CPU)"), "{head}");
    let sentence = |start: &str| {
        text.lines()
            .find(|line| line.starts_with(start))
            .unwrap_or_else(|| panic!("no {start:?} in:\n{text}"))
            .to_owned()
    };
    let major = common::redact::measured(&sentence("  lesson    time: the major fault took "));
    assert_eq!(
        major,
        "  lesson    time: the major fault took <time>, and its thread was off the CPU for \
         <time> of it (<share>): asleep until the read completed, or preempted"
    );
    let minor = common::redact::measured(&sentence("  lesson    time: the minor fault took "));
    assert_eq!(
        minor,
        "  lesson    time: the minor fault took <time>, against <time> for step 2's major fault"
    );
    assert!(
        text.lines().any(|line| line
            .starts_with("  fault     arr[2048] (+8192) on page 2 = arr[2048..3071]  minor, ")),
        "{text}"
    );
}

#[test]
fn the_redaction_masks_durations_and_shares_and_nothing_else() {
    assert_eq!(
        common::redact::measured(
            "major, 1.9 ms (1.7 ms off CPU); 812 ns, 12 µs, 2.3 s, 89%; 3 steps, 4 KiB, \
             page 5, 0x7f12 s"
        ),
        "major, <time>; <time>, <time>, <time>, <share>; 3 steps, 4 KiB, page 5, 0x7f12 s"
    );
    assert_eq!(
        common::redact::measured(
            "minor, 2.0 µs (time off CPU not known, 1.0 µs in reclaim); 512 in all (1.0 µs to \
             2.0 µs each)"
        ),
        "minor, <time>; 512 in all (<time> to <time> each)"
    );
}

#[test]
fn dontneed_drops_the_pages_and_their_data() {
    let lines = lesson("dontneed");
    let steps = steps(&lines);
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[1]["rss_kib"], 16);
    let dropped = &steps[2];
    assert_eq!(dropped["rss_kib"], 0);
    assert_eq!(dropped["resident_pages"], serde_json::json!([]));
    assert_eq!(dropped["zero_pages"], serde_json::json!([]));
    let reread = &steps[3];
    assert_eq!(reread["values"], serde_json::json!([0, 0, 0, 0]));
    assert_eq!(reread["zero_pages"], serde_json::json!([0, 1, 2, 3]));
    let reads = region_faults(&lines, 4);
    assert_eq!(reads.len(), 4);
    assert!(reads.iter().all(|fault| fault["access"] == "read"));
    let write = region_faults(&lines, 5);
    assert_eq!(write.len(), 1, "{write:?}");
    assert_eq!(write[0]["page"], 0);
    assert_eq!(write[0]["present"], true, "the zero page was mapped");
    assert_eq!(steps[4]["resident_pages"], serde_json::json!([0]));
}

#[test]
fn malloc_mmap_is_an_mmap_of_the_size_and_a_page_sixteen_bytes_in() {
    let lines = lesson("malloc-mmap");
    let region = &of_kind(&lines, "region")[0];
    assert_eq!(region["size"], 262144);
    assert_eq!(region["page_offset"], 16);
    let allocation = &steps(&lines)[0]["allocation"];
    assert_eq!(allocation["address_check"]["check"], "inside");
    assert_eq!(allocation["address_check"]["offset"], 16);
    let mmaps: Vec<&Value> = of_kind(&lines, "syscall")
        .into_iter()
        .filter(|call| call["step"] == 1 && call["name"] == "mmap")
        .collect();
    assert_eq!(mmaps.len(), 1, "{mmaps:?}");
    assert_eq!(mmaps[0]["args"]["len"], 262144 + 4096);
}

#[test]
fn the_list_names_every_walk_and_all_compares_them() {
    let list = Command::new(DEMO)
        .args(["alloc", "--list"])
        .output()
        .unwrap();
    assert!(list.status.success());
    let names: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|line| line.split_whitespace().next().unwrap().to_owned())
        .collect();
    assert_eq!(names, WALKS);
    let all = json_lines(&demo(&["alloc", "all", "--format", "json"]));
    let walks = &of_kind(&all, "comparison")[0]["walks"];
    let death = |scenario: &str| {
        walks
            .as_array()
            .unwrap()
            .iter()
            .find(|walk| walk["summary"]["scenario"] == scenario)
            .map(|walk| walk["death"].clone())
            .unwrap()
    };
    assert_eq!(death("out-of-bounds")["si_code"], "SEGV_MAPERR");
    assert_eq!(death("out-of-bounds")["present"], false);
    assert_eq!(death("mprotect")["si_code"], "SEGV_ACCERR");
    assert_eq!(death("mprotect")["present"], true);
    assert_eq!(death("mprotect")["vma"], "r--p [anon]");
    let text = demo(&["alloc", "all"]);
    let text = String::from_utf8_lossy(&text.stdout);
    for table in [
        "== mmap against malloc ==",
        "== malloc against malloc-mmap ==",
        "== out-of-bounds against mprotect ==",
    ] {
        assert!(text.contains(table), "{table}");
    }
    let widest = text.lines().map(|line| line.chars().count()).max().unwrap();
    assert!(widest <= 80, "a line of {widest} columns");
}

/// Masks what changes from run to run in `demo alloc` text: addresses, pids, the lesson file's
/// name, libc's offsets, the durations and shares measured (the shared redaction,
/// `common::redact`), the faults outside the array (left out: the workload's own vary from run
/// to run) and so the step's time in faults, the summary's totals, and, with `digits` (the
/// stack, whose pages follow the size of the environment, and the file, whose readahead
/// varies), every number but the steps', the strips' glyphs and the stack's lone minor faults.
fn stable(text: &str, digits: bool) -> String {
    let mut out = Vec::new();
    let mut in_elsewhere = false;
    // Numbers of another width (a pid, an address, a duration) wrap a paragraph elsewhere: with
    // them masked, it is one line. The width itself is checked line by line, unjoined.
    let text = common::redact::measured(&text.replace("\n            ", " "));
    for line in text.lines() {
        // The step's time in faults counts those outside the array too, so whether a step
        // has the line varies as they do.
        if line.starts_with("  time      ") {
            continue;
        }
        // Whether the workload's own machinery faults in a step varies from run to run.
        if line.starts_with("  elsewhere ") {
            in_elsewhere = true;
            continue;
        }
        if in_elsewhere && line.starts_with("                       ") {
            continue;
        }
        in_elsewhere = false;
        let mut line = mask_after(line, "0x", 8, |c| c.is_ascii_hexdigit());
        line = mask_after(&line, "+0x", 1, |c| c.is_ascii_hexdigit());
        if let Some(rest) = line.strip_prefix("  pmap      ") {
            line = format!("  pmap      …{}", &rest[16.min(rest.len())..]);
        }
        for word in ["child ", "parent ", "demo-file-"] {
            line = mask_after(&line, word, 1, |c| c.is_ascii_digit());
        }
        let totals = line.starts_with("summary: ")
            || line.starts_with("         ") && line.contains(" lost, ");
        // The stack's first step faults once or twice, as the stack pointer falls.
        if digits && line.starts_with("  fault     stack[") && line.contains("  minor ") {
            continue;
        }
        // Which stack pages are resident follows where the stack pointer fell.
        if digits
            && let Some(agrees) = line
                .strip_prefix("  kernel    pagemap: ")
                .and_then(|rest| rest.split_once(", as the faults say"))
        {
            line = format!("  kernel    pagemap: …, as the faults say{}", agrees.1);
        }
        if digits && line.starts_with("  pages     [") {
            line = line.replace(['*', '#'], ".");
        }
        if digits && !line.starts_with("step ") || totals {
            line = numbers_masked(&line);
        }
        out.push(line);
    }
    out.join("\n") + "\n"
}

/// `line` with each run of digits replaced by `N`.
fn numbers_masked(line: &str) -> String {
    let mut out = String::new();
    for c in line.chars() {
        match (c.is_ascii_digit(), out.ends_with('N')) {
            (true, true) => {}
            (true, false) => out.push('N'),
            (false, _) => out.push(c),
        }
    }
    out
}

/// True for a line of a page strip, or a row of one.
fn is_strip_row(line: &str) -> bool {
    let glyphs = line.trim_start_matches("  pages     ").trim();
    !glyphs.is_empty()
        && glyphs
            .chars()
            .all(|c| matches!(c, '.' | '*' | '#' | '0' | '[' | ']'))
}

/// `line` with each run of at least `shortest` characters for which `keep` holds after
/// `marker` replaced by `…`.
fn mask_after(line: &str, marker: &str, shortest: usize, keep: impl Fn(char) -> bool) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(marker) {
        out.push_str(&rest[..at + marker.len()]);
        rest = &rest[at + marker.len()..];
        let end = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        if end >= shortest {
            out.push('…');
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// Checks that `text` fits 80 columns and that no wrapped line holds one word alone.
fn assert_classroom_width(name: &str, text: &str) {
    for line in text.lines() {
        assert!(line.chars().count() <= 80, "{name}: too wide: {line}");
        if line.starts_with("            ") && !is_strip_row(line) {
            assert!(
                line.trim().contains(' '),
                "{name}: a word alone: {line:?}\n{text}"
            );
        }
    }
}

#[test]
fn every_lesson_reads_in_80_columns() {
    for scenario in WALKS {
        let text = String::from_utf8(demo(&["alloc", scenario]).stdout).unwrap();
        assert_classroom_width(scenario, &text);
        assert!(
            !text.contains("demo::"),
            "{scenario}: names demo's own code:\n{text}"
        );
        assert!(
            !text.contains(common::DEMO),
            "{scenario}: names demo's binary:\n{text}"
        );
        // The stack's pages and sizes follow the environment's size; the THP lesson says
        // what this kernel's setting gives.
        let name = match scenario {
            "thp" => {
                let enabled =
                    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
                        .unwrap_or_default();
                let setting = enabled
                    .split_whitespace()
                    .find(|word| word.starts_with('['))
                    .unwrap_or("[absent]")
                    .trim_matches(['[', ']'])
                    .to_owned();
                format!("thp-{setting}")
            }
            other => other.to_owned(),
        };
        // How much of the file readahead and fault-around bring varies from run to run.
        let varies = matches!(scenario, "stack" | "file");
        insta::assert_snapshot!(name, stable(&text, varies));
    }
}

#[test]
fn the_list_fits_80_columns() {
    let list = Command::new(DEMO)
        .args(["alloc", "--list"])
        .output()
        .unwrap();
    assert!(list.status.success());
    let text = String::from_utf8(list.stdout).unwrap();
    assert_classroom_width("--list", &text);
    insta::assert_snapshot!("list", text);
}
