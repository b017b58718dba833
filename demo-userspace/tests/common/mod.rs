//! Helpers shared by the privileged integration tests: running the real `demo` binary,
//! parsing its JSON Lines, and compiling C test programs at run time.

use std::{
    path::Path,
    process::{Command, Output},
};

use serde_json::Value;

pub const DEMO: &str = env!("CARGO_BIN_EXE_demo");

pub fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the privileged tests load eBPF programs and need root; run them with `cargo xtask test`"
    );
}

pub fn demo(args: &[&str]) -> Output {
    require_root();
    let output = Command::new(DEMO).args(args).output().expect("start demo");
    assert!(
        output.status.success(),
        "demo {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

pub fn of_kind<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|line| line["kind"] == kind).collect()
}

/// Reads a JSON Lines file written with `--output`.
pub fn json_file(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}
