//! End-to-end tests of `--tui` in a real terminal: tmux runs demo, send-keys types, and
//! capture-pane reads the screen. They need root (the programs load) and tmux.

#[path = "common/c_programs.rs"]
mod c_programs;
mod common;

use std::{path::PathBuf, process::Command, time::Duration};

use c_programs::compile_c;
use common::{DEMO, require_root};

/// A tmux session running one command, killed when dropped.
struct Pane {
    name: String,
    status_file: PathBuf,
}

impl Pane {
    fn start(name: &str, width: u16, height: u16, command: &str) -> Self {
        require_root();
        let name = format!("demo-{}-{name}", std::process::id());
        let status_file = std::env::temp_dir().join(format!("{name}.status"));
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

/// The glyphs of the first page-map row, after its index label.
fn map_cells(screen: &str) -> String {
    let row = screen.lines().nth(1).unwrap_or_default();
    row.trim_start_matches('│')
        .trim_start()
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start()
        .trim_end_matches('│')
        .trim_end()
        .to_owned()
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
    let cells: Vec<char> = map_cells(&screen).chars().collect();
    assert_eq!(cells.len(), 5, "five page cells:\n{screen}");
    assert!(
        cells[..3].iter().all(|&c| c == '█' || c == '*'),
        "pages 0-2 resident:\n{screen}"
    );
    assert!(
        cells[3..].iter().all(|&c| c == '·'),
        "pages 3-4 untouched:\n{screen}"
    );
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
    for _ in 1..=7 {
        pane.keys(&["Enter"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    let screen = pane.wait_for("the SIGSEGV", |s| map_cells(s).ends_with('X'));
    let cells: Vec<char> = map_cells(&screen).chars().collect();
    assert_eq!(
        cells.len(),
        6,
        "five pages and the one past the mapping:\n{screen}"
    );
    pane.keys(&["Right", "Right", "Right", "Right", "Right"]);
    let screen = pane.wait_for("the detail of page 5", |s| s.contains("page 5:"));
    assert!(screen.contains("past the mapping"), "{screen}");
    assert!(screen.contains("error"), "{screen}");
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
