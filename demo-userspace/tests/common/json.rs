//! Runs `demo` and reads its JSON Lines, for the tests that check its output.

use std::{
    path::Path,
    process::{Command, Output},
    sync::OnceLock,
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

/// The committed JSON Schema of demo's lines, which a unit test holds to the types.
fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/lines.schema.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let schema = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::validator_for(&schema).expect("the schema is a JSON Schema")
    })
}

/// One line of demo's JSON output, parsed, after checking it against the committed schema:
/// every line a test reads goes through here.
pub fn parse_line(line: &str) -> Value {
    let value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    if let Err(error) = schema().validate(&value) {
        panic!("a line does not match lines.schema.json: {error}\n{line}");
    }
    value
}

pub fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(parse_line)
        .collect()
}

pub fn of_kind<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|line| line["kind"] == kind).collect()
}

/// The faults in the one region of `size` bytes the trace found.
pub fn faults_in_region_of(lines: &[Value], size: u64) -> Vec<Value> {
    let region = of_kind(lines, "region")
        .into_iter()
        .find(|r| r["size"] == size)
        .unwrap_or_else(|| panic!("a region of {size} bytes"))["name"]
        .clone();
    of_kind(lines, "fault")
        .into_iter()
        .filter(|f| f["region"] == region)
        .cloned()
        .collect()
}

/// Reads a JSON Lines file written with `--output`.
pub fn json_file(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(parse_line)
        .collect()
}

/// Runs `demo trace --format json --output FILE ARGS -- COMMAND` with `env` and `stdin`, checks
/// that it exited as the command did, and reads the lines it wrote.
pub fn trace_to_file(
    name: &str,
    args: &[&str],
    command: &[&std::ffi::OsStr],
    env: &[(&str, String)],
    stdin: std::process::Stdio,
) -> Vec<Value> {
    require_root();
    let out = crate::common::output_file(name);
    let status = Command::new(DEMO)
        .args(["trace", "--format", "json", "--output"])
        .arg(&out)
        .args(args)
        .arg("--")
        .args(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("start demo trace");
    let lines = json_file(&out);
    // demo exits as the command did (128 plus a signal that killed it), as strace does, when
    // the trace ended because the command did; 0 when demo ended it.
    let expected = lines
        .iter()
        .find(|line| line["kind"] == "summary" && line["ended_by"] == "exit")
        .and_then(|summary| summary["child"].as_str())
        .map_or(0, exit_status_of);
    assert_eq!(
        status.code(),
        Some(expected),
        "demo trace {args:?} failed: {status}"
    );
    lines
}

/// The exit status a shell gives a command that ended as `child` says (`exited with status 3`,
/// `killed by SIGSEGV`).
pub fn exit_status_of(child: &str) -> i32 {
    if let Some(code) = child.strip_prefix("exited with status ") {
        return code.parse().unwrap();
    }
    let name = child.strip_prefix("killed by ").unwrap();
    let signal: nix::sys::signal::Signal = name.parse().unwrap();
    128 + signal as i32
}
