//! End-to-end tests of `--tui` in a real terminal: tmux runs demo, send-keys types, and
//! capture-pane reads the screen (`common::tmux`). They need root (the programs load) and tmux.

mod common;

use std::{process::Command, time::Duration};

use common::c_programs::{SEED, compile_c};
use common::tmux::Pane;
use common::{DEMO, processes_running, require_root};

/// Presses Enter for walk step `step` and waits until its row is in the steps pane: the view
/// takes Enter only once the step before is shown, as a person would see it.
fn press_step(pane: &Pane, step: u32) {
    pane.keys(&["Enter"]);
    let row = format!("│ {step} ");
    pane.wait_for(&format!("step {step}"), |s| {
        s.lines().any(|line| line.starts_with(&row))
    });
}

/// The page map's labelled cells, one per page: (label line, state line), read from the
/// columns where each "page N" starts.
fn page_cells(screen: &str) -> Vec<(String, String)> {
    let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
    let (Some(labels), Some(states)) = (lines.get(1), lines.get(3)) else {
        return Vec::new();
    };
    let text: String = labels.iter().collect();
    let starts: Vec<usize> = text
        .match_indices("page ")
        .map(|(byte, _)| text[..byte].chars().count())
        .map(|column| {
            if labels.get(column.wrapping_sub(2)) == Some(&'▶') {
                column - 2
            } else {
                column
            }
        })
        .collect();
    let cell = |line: &[char], from: usize, to: usize| -> String {
        line.get(from..to.min(line.len()))
            .unwrap_or_default()
            .iter()
            .collect::<String>()
            .trim_matches(|c: char| c == '│' || c.is_whitespace())
            .to_owned()
    };
    starts
        .iter()
        .enumerate()
        .map(|(n, &from)| {
            let to = starts.get(n + 1).copied().unwrap_or(labels.len());
            (cell(labels, from, to), cell(states, from, to))
        })
        .collect()
}

/// Whether `text` has `head` followed by a duration as the view writes it (`1.4 µs`).
fn followed_by_a_duration(text: &str, head: &str) -> bool {
    text.match_indices(head).any(|(at, _)| {
        let mut words = text[at + head.len()..].split_whitespace();
        words.next().is_some_and(|n| n.parse::<f64>().is_ok())
            && words
                .next()
                .is_some_and(|unit| ["ns", "µs", "ms", "s"].contains(&unit))
    })
}

#[test]
fn alloc_mmap_stepped_with_enter_shows_three_resident_pages_and_quits_cleanly() {
    let pane = Pane::start("mmap", 100, 30, &format!("{DEMO} alloc mmap --tui"));
    pane.wait_for("the first prompt", |s| {
        s.contains("press Enter for the next step")
    });
    for step in 1..=5 {
        pane.keys(&["Enter"]);
        pane.wait_for(&format!("step {step}"), |s| {
            s.lines().any(|line| {
                line.trim_start_matches('│')
                    .trim_start()
                    .starts_with(&format!("{step} "))
            })
        });
    }
    let screen = pane.wait_for("the end of the walk", |s| s.contains("RSS 12 KiB"));
    // Five labelled cells, one per page, pages 0 to 2 resident (page 2 faulted in the last step).
    let cells = page_cells(&screen);
    let labels: Vec<&str> = cells
        .iter()
        .map(|(label, _)| label.trim_start_matches("▶ "))
        .collect();
    assert_eq!(
        labels,
        ["page 0", "page 1", "page 2", "page 3", "page 4"],
        "{screen}"
    );
    let states: Vec<&str> = cells.iter().map(|(_, state)| state.as_str()).collect();
    assert_eq!(
        states,
        [
            "resident",
            "resident",
            "faulted now",
            "untouched",
            "untouched"
        ],
        "{screen}"
    );
    for range in ["[0..1023]", "[1024..2047]", "[2048..3071]", "[4096..4999]"] {
        assert!(screen.contains(range), "{range} missing:\n{screen}");
    }
    for action in ["arr[1500]", "arr[1501]", "arr[0]", "arr[3000]"] {
        assert!(screen.contains(action), "{action} missing:\n{screen}");
    }
    // A walk times its faults: the page panel (on page 0) says how long step 4's took.
    assert!(
        followed_by_a_duration(&screen, "step 4 write minor "),
        "no duration:\n{screen}"
    );
    assert!(pane.alternate_screen());
    pane.keys(&["q"]);
    assert_eq!(pane.exit_status(), "0");
    assert!(
        !pane.alternate_screen(),
        "the terminal was left in the alternate screen"
    );
}

#[test]
fn out_of_bounds_shows_the_sigsegv_on_page_5_outside_the_mapping() {
    let pane = Pane::start("oob", 80, 24, &format!("{DEMO} alloc out-of-bounds --tui"));
    pane.wait_for("the first prompt", |s| s.contains("press Enter"));
    for step in 1..=7 {
        press_step(&pane, step);
    }
    let screen = pane.wait_for("the SIGSEGV", |s| {
        page_cells(s)
            .last()
            .is_some_and(|(_, state)| state == "fault failed")
    });
    let cells = page_cells(&screen);
    assert_eq!(
        cells.len(),
        6,
        "five pages and the one past the mapping:\n{screen}"
    );
    assert!(screen.contains("past the end"), "{screen}");
    pane.keys(&["Right", "Right", "Right", "Right", "Right"]);
    let screen = pane.wait_for("the detail of page 5", |s| s.contains("page 5:"));
    assert!(screen.contains("past the mapping"), "{screen}");
    assert!(screen.contains("error"), "{screen}");
    pane.keys(&["q"]);
    assert_eq!(pane.exit_status(), "0");
}

#[test]
fn a_lesson_explains_its_steps_in_the_event_log() {
    let pane = Pane::start("dontneed", 160, 40, &format!("{DEMO} alloc dontneed --tui"));
    pane.wait_for("the first prompt", |s| s.contains("press Enter"));
    for step in 1..=5 {
        press_step(&pane, step);
    }
    let screen = pane.wait_for("the last step", |s| s.contains("the child exited"));
    // The events pane wraps; the lesson's words are read with its lines joined. It is the
    // rightmost pane: its text is what stands before a row's last border, whatever the borders
    // of the panes to its left are on that row (a corner, where the steps pane ends).
    let events: String = screen
        .lines()
        .filter_map(|line| line.trim_end().strip_suffix('│')?.rsplit('│').next())
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        events.contains("MADV_DONTNEED: the kernel freed arr's pages: RSS 0 KiB"),
        "{screen}"
    );
    assert!(events.contains("the reads returned 0 0 0 0"), "{screen}");
    assert!(
        events.contains("the write faulted again (present: true)"),
        "{screen}"
    );
    pane.keys(&["q"]);
    assert_eq!(pane.exit_status(), "0");
}

/// Maps 600 pages and touches one every 5 ms.
const SLOW: &str = r#"
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    char *area = mmap(0, 600 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 600; i++) { area[i * 4096] = 1; usleep(5000); }
    sleep(1);
    return 0;
}
"#;

#[test]
fn trace_tui_shows_the_regions_filling_in_live() {
    let program = compile_c("tui_slow", SLOW, &[]);
    let pane = Pane::start(
        "trace",
        100,
        30,
        &format!("{DEMO} trace --tui -- {}", program.display()),
    );
    let resident = |screen: &str| -> Option<u64> {
        let line = screen.lines().find(|line| line.contains("2457600 B"))?;
        let counts = line.split("B").nth(1)?.trim_start();
        counts.split('/').next()?.trim().parse().ok()
    };
    let partway = pane.wait_for("the region part filled", |s| {
        resident(s).is_some_and(|n| n > 0 && n < 600)
    });
    let first = resident(&partway).unwrap();
    let full = pane.wait_for("the region full", |s| resident(s) == Some(600));
    assert!(first < 600, "{full}");
    pane.keys(&["q"]);
    assert_eq!(pane.exit_status(), "0");
}

#[test]
fn tui_without_a_terminal_is_refused() {
    require_root();
    let output = Command::new(DEMO)
        .args(["alloc", "mmap", "--tui"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tui needs a terminal"), "{stderr}");
}

#[test]
fn quitting_the_trace_view_ends_the_command_and_all_it_started() {
    // The command would run 20 s, its backgrounded child longer; `q` must end both at once.
    let pane = Pane::start(
        "quit",
        100,
        30,
        &format!("{DEMO} trace --tui -- sh -c 'sleep 314.5 & sleep 20.5'"),
    );
    pane.wait_for("the trace view", |s| s.contains("demo trace"));
    // The view draws before the command runs: the trace attaches first.
    pane.wait_for("the command", |_| {
        processes_running(&["sleep", "20.5"]).len() == 1
    });
    pane.keys(&["q"]);
    // exit_status gives up after 15 s, before the command would have ended by itself.
    assert_eq!(pane.exit_status(), "0");
    assert_eq!(processes_running(&["sleep", "20.5"]), Vec::<u32>::new());
    assert_eq!(processes_running(&["sleep", "314.5"]), Vec::<u32>::new());
}

/// Enter on the row of a process that exited since the row was drawn keeps the view, and says
/// so in its log, instead of starting `demo trace` on a pid that is gone; `q` then ends demo
/// top as usual.
#[test]
fn top_survives_enter_on_a_process_that_just_exited() {
    let mut workload = common::workload::start_workload();
    let pid = workload.pid;
    let pane = Pane::start(
        "top-exited",
        100,
        30,
        &format!("{DEMO} top --tui --pid {pid} --interval 5"),
    );
    pane.wait_for("the top view", |s| s.contains("demo top"));
    workload.touch();
    pane.wait_for("the workload's row", |s| s.contains("top_workload"));
    // Gone before the next interval can mark its row exited: the row first shows at an
    // interval's end, and the next is 5 s away, so Enter lands on a row still drawn as live.
    workload.child.kill().unwrap();
    workload.child.wait().unwrap();
    pane.keys(&["Enter"]);
    let said = format!("pid {pid} has exited: nothing to trace");
    let screen = pane.wait_for("the log's word on the exited process", |s| {
        s.contains(&said)
    });
    assert!(!screen.contains("no process has pid"), "{screen}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(pane.alternate_screen(), "{}", pane.capture());
    pane.keys(&["q"]);
    assert_eq!(pane.exit_status(), "0");
}

/// The state line of page `page`'s labelled cell, once the map shows labelled cells.
fn page_state(screen: &str, page: usize) -> Option<String> {
    page_cells(screen).get(page).map(|(_, state)| state.clone())
}

/// The lab's own program under `demo trace --tui`, one Enter at a time: each Enter reaches its
/// `getchar()` through the command pane, and the step's fault is on the map before the next
/// Enter is sent. The map opens on the program's array (the address it prints), not on a
/// region the dynamic loader made before it ran.
#[test]
fn the_seed_program_is_stepped_with_enter_in_the_trace_views_command_pane() {
    let program = compile_c("alloc_mmap_tui", SEED, &["-DMMAP"]);
    let pane = Pane::start(
        "seed-trace",
        100,
        40,
        &format!("{DEMO} trace --tui --elem-size 4 -- {}", program.display()),
    );
    // ld.so's regions come first, while the program waits for its first Enter.
    pane.wait_for("the dynamic loader's regions", |s| {
        s.contains("command · Enter goes to it") && s.contains("mmap#1")
    });
    pane.keys(&["Enter"]);
    let screen = pane.wait_for("the array's region", |s| {
        s.contains("arr = 0x") && s.contains(" 20000 bytes, 5 pages") && page_cells(s).len() == 5
    });
    let printed = screen
        .split("arr = ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(
        screen.contains(&format!("page 0: {printed}..")),
        "the map does not show the array at {printed}:\n{screen}"
    );
    let states = |s: &str| -> Vec<String> {
        (0..5)
            .map(|page| page_state(s, page).unwrap_or_default())
            .collect()
    };
    assert_eq!(states(&screen), ["untouched"; 5], "{screen}");
    let present = |state: &str| state == "faulted now" || state == "resident";
    // arr[1500], arr[1501] (the same page: no fault), arr[0], arr[3000].
    for (enter, pages) in [(2, &[1][..]), (3, &[1]), (4, &[0, 1]), (5, &[0, 1, 2])] {
        pane.keys(&["Enter"]);
        pane.wait_for(&format!("the fault of Enter {enter}"), |s| {
            let states = states(s);
            (0..5).all(|page| present(&states[page]) == pages.contains(&page))
        });
    }
    let screen = pane.wait_for("the program's end", |s| {
        s.contains("command ended") && s.contains("exited with status 0")
    });
    assert!(!screen.contains("[1501]"), "arr[1501] faulted:\n{screen}");
    pane.keys(&["q"]);
    assert_eq!(pane.exit_status(), "0");
}

/// After F2 every key goes to the command, `q` too, until F2 gives them back to the view.
#[test]
fn f2_gives_the_command_every_key_and_takes_them_back() {
    let pane = Pane::start(
        "pane-keys",
        100,
        30,
        &format!("{DEMO} trace --tui -- sh -c 'read line; echo got $line; sleep 30'"),
    );
    pane.wait_for("the command pane", |s| {
        s.contains("command · Enter goes to it")
    });
    pane.keys(&["F2"]);
    pane.wait_for("the pane's focus", |s| s.contains("every key goes to it"));
    pane.keys(&["q", "u", "i", "t", "Enter"]);
    pane.wait_for("the command's answer", |s| s.contains("got quit"));
    pane.keys(&["F2"]);
    pane.wait_for("the view's keys", |s| {
        s.contains("command · Enter goes to it")
    });
    pane.keys(&["q"]);
    assert_eq!(pane.exit_status(), "0");
}
