//! Runs `demo` and reads its JSON Lines, for the tests that check its output.

use std::{
    path::Path,
    process::{Command, Output},
};

use serde_json::Value;

use crate::common::{DEMO, require_root};

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
