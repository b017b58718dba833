//! A real terminal for the tests that type into demo as a person would: tmux runs the
//! command, send-keys types, and capture-pane reads the screen.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use super::require_root;

/// How long a wait for the screen lasts before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// A tmux session running one command, killed when dropped. Each has a tmux server of its own
/// (`-L`), which ends with it: a server shared with other sessions would outlive the test,
/// holding whatever descriptors it inherited from it.
pub struct Pane {
    name: String,
    status_file: PathBuf,
}

/// tmux, on the pane's own server.
fn tmux(name: &str) -> Command {
    let mut command = Command::new("tmux");
    command.args(["-L", name]);
    command
}

impl Pane {
    /// Runs `command` in a terminal of `width` × `height`; its exit status is kept for
    /// [`Pane::exit_status`].
    pub fn start(name: &str, width: u16, height: u16, command: &str) -> Self {
        require_root();
        let name = format!("demo-{}-{name}", std::process::id());
        let status_file = super::test_dir().join(format!("{name}.status"));
        let _ = std::fs::remove_file(&status_file);
        let script = format!("{command}; echo $? > {}; sleep 60", status_file.display());
        let started = tmux(&name)
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

    /// The screen as it is now.
    pub fn capture(&self) -> String {
        self.capture_with(&[])
    }

    /// Everything the terminal showed, the lines scrolled off the top included, with the lines
    /// the terminal wrapped joined again.
    pub fn history(&self) -> String {
        self.capture_with(&["-S", "-", "-J"])
    }

    fn capture_with(&self, options: &[&str]) -> String {
        let output = tmux(&self.name)
            .args(["capture-pane", "-p", "-t", &self.name])
            .args(options)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        assert!(
            tmux(&self.name)
                .args(["send-keys", "-t", &self.name])
                .args(keys)
                .status()
                .unwrap()
                .success()
        );
    }

    /// Waits until the screen satisfies `done`; returns that screen.
    pub fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        self.wait_until(what, || self.capture(), done).0
    }

    /// Waits until the terminal's whole history satisfies `done`; returns it, and how long the
    /// wait took.
    pub fn wait_in_history(&self, what: &str, done: impl Fn(&str) -> bool) -> (String, Duration) {
        self.wait_until(what, || self.history(), done)
    }

    fn wait_until(
        &self,
        what: &str,
        read: impl Fn() -> String,
        done: impl Fn(&str) -> bool,
    ) -> (String, Duration) {
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            let screen = read();
            if done(&screen) {
                return (screen, start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "timed out waiting for {what}; the terminal:\n{}",
            self.history()
        );
    }

    /// The exit status of the command, once it exited.
    pub fn exit_status(&self) -> String {
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            if let Ok(status) = std::fs::read_to_string(&self.status_file) {
                return status.trim().to_owned();
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("demo did not exit; the screen:\n{}", self.capture());
    }

    pub fn alternate_screen(&self) -> bool {
        let output = tmux(&self.name)
            .args(["display-message", "-p", "-t", &self.name, "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim() == "1"
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = tmux(&self.name)
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}

/// The seed's `alloc_mmap`, compiled for the test `name`, under `demo trace --elem-size 4`
/// with `options`, in a terminal of `width` × `height`.
pub fn trace_seed(name: &str, options: &str, width: u16, height: u16) -> Pane {
    let program = super::c_programs::compile_c(name, super::c_programs::SEED, &["-DMMAP"]);
    Pane::start(
        name,
        width,
        height,
        &format!(
            "{} trace {options} --elem-size 4 -- {}",
            super::DEMO,
            program.display()
        ),
    )
}
