//! End-to-end tests of `--tui` in a real terminal: tmux runs demo, send-keys types, and
//! capture-pane reads the screen. They need root (the programs load) and tmux.

mod common;

use std::{path::PathBuf, process::Command, time::Duration};

use common::c_programs::compile_c;
use common::{DEMO, processes_running, require_root};

/// A tmux session running one command, killed when dropped.
struct Pane {
    name: String,
    status_file: PathBuf,
}

impl Pane {
    fn start(name: &str, width: u16, height: u16, command: &str) -> Self {
        require_root();
        let name = format!("demo-{}-{name}", std::process::id());
        let status_file = common::test_dir().join(format!("{name}.status"));
        let _ = std::fs::remove_file(&status_file);
        let script = format!("{command}; echo $? > {}; sleep 60", status_file.display());
        let started = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg(script)
            .status()
            .expect("run tmux");
        assert!(started.success());
        Self { name, status_file }
    }

    fn capture(&self) -> String {
        let output = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        assert!(
            Command::new("tmux")
                .args(["send-keys", "-t", &self.name])
                .args(keys)
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits until the screen satisfies `done`; returns that screen.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        for _ in 0..600 {
            let screen = self.capture();
            if done(&screen) {
                return screen;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "timed out waiting for {what}; the screen:\n{}",
            self.capture()
        );
    }

    /// Presses Enter for walk step `step` and waits until its row is in the steps pane: the
    /// view takes Enter only once the step before is shown, as a person would see it.
    fn step(&self, step: u32) {
        self.keys(&["Enter"]);
        let row = format!("│ {step} ");
        self.wait_for(&format!("step {step}"), |s| {
            s.lines().any(|line| line.starts_with(&row))
        });
    }

    fn exit_status(&self) -> String {
        for _ in 0..600 {
            if let Ok(status) = std::fs::read_to_string(&self.status_file) {
                return status.trim().to_owned();
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("demo did not exit; the screen:\n{}", self.capture());
    }

    fn alternate_screen(&self) -> bool {
        let output = Command::new("tmux")
            .args(["display-message", "-p", "-t", &self.name, "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim() == "1"
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
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
        pane.step(step);
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
        pane.step(step);
    }
    let screen = pane.wait_for("the last step", |s| s.contains("the child exited"));
    // The events pane wraps; the lesson's words are read with its lines joined.
    let events: String = screen
        .lines()
        .filter_map(|line| line.split('│').nth(3))
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
    assert_eq!(processes_running(&["sleep", "20.5"]).len(), 1);
    pane.keys(&["q"]);
    // exit_status gives up after 15 s, before the command would have ended by itself.
    assert_eq!(pane.exit_status(), "0");
    assert_eq!(processes_running(&["sleep", "20.5"]), Vec::<u32>::new());
    assert_eq!(processes_running(&["sleep", "314.5"]), Vec::<u32>::new());
}
