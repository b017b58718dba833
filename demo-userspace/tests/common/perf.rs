//! Runs a command under `perf record` and reads back every sample, so a test can hold demo's
//! faults to what perf saw of the same execution.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
};

use serde_json::Value;

/// The fault tracepoints demo's programs are attached to (demo-common's `fault_tracepoint`).
pub const FAULT_TRACEPOINTS: [&str; 2] =
    ["exceptions:page_fault_user", "exceptions:page_fault_kernel"];

/// Prints each sample as one JSON object: a tracepoint's own fields (the faulting address, the
/// instruction, the error code; none for another tracepoint, such as an exec), or a software event's address, instruction and what perf
/// names at each from the MMAP records it kept.
const SCRIPT: &str = r#"
import json

def trace_unhandled(event_name, context, fields, sample):
    s = sample["sample"]
    print(json.dumps({"event": event_name, "pid": s["pid"], "tid": s["tid"],
                      "address": fields.get("address"), "ip": fields.get("ip", 0),
                      "error_code": fields.get("error_code")}))

def process_event(param):
    s = param["sample"]
    print(json.dumps({"event": param["ev_name"], "pid": s["pid"], "tid": s["tid"],
                      "address": s.get("addr"), "ip": s["ip"],
                      "symbol": param.get("symbol"), "symoff": param.get("symoff"),
                      "dso": param.get("dso"), "addr_dso": s.get("addr_dso")}))
"#;

/// One sample of a perf recording.
#[derive(Debug, Clone)]
pub struct Sample {
    /// `exceptions__page_fault_user` for a tracepoint, `major-faults` for a software event.
    pub event: String,
    pub pid: u32,
    pub tid: u32,
    pub address: Option<u64>,
    pub ip: u64,
    /// Only a tracepoint's.
    pub error_code: Option<u64>,
    /// Only a software event's: the function perf names at `ip`, and the offset into it.
    pub symbol: Option<String>,
    pub symoff: Option<u64>,
    /// Only a software event's: the mapping perf names at `address` when the fault happened.
    pub addr_dso: Option<String>,
}

impl Sample {
    fn from_json(line: &str) -> Self {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let text = |key: &str| value[key].as_str().map(str::to_owned);
        let number = |key: &str| value[key].as_u64();
        let id = |key: &str| u32::try_from(value[key].as_u64().unwrap()).unwrap();
        Self {
            event: text("event").unwrap(),
            pid: id("pid"),
            tid: id("tid"),
            address: number("address"),
            ip: number("ip").unwrap(),
            error_code: number("error_code"),
            symbol: text("symbol"),
            symoff: number("symoff"),
            addr_dso: text("addr_dso"),
        }
    }

    /// True for a sample of one of the fault tracepoints.
    pub fn is_fault(&self) -> bool {
        self.event.starts_with("exceptions__page_fault_")
    }
}

/// Fails unless perf is installed; `cargo xtask test` installs it (Debian's `linux-perf`).
pub fn require_perf() {
    let found = Command::new("perf").arg("--version").output();
    assert!(
        found.is_ok_and(|out| out.status.success()),
        "the agreement tests run perf; install it with `cargo xtask setup` (linux-perf)"
    );
}

/// Runs `command` under `perf record` of every one of `events` (with its data address), the
/// command and all it starts, into `name`'s file of the test directory, and returns the
/// recording and the command's status. Fails if perf lost any sample.
pub fn record(name: &str, events: &[&str], command: &[&OsStr]) -> (PathBuf, ExitStatus) {
    require_perf();
    let data = crate::common::test_dir().join(format!("{name}.perf.data"));
    let mut perf = Command::new("perf");
    // Every event, not a sample of them: a software event's default is a frequency.
    let every = ["--count", "1"];
    perf.args(["record", "--quiet", "--data", "--mmap-pages", "1024"])
        .args(every)
        .arg("--output")
        .arg(&data);
    for event in events {
        perf.args(["--event", event]);
    }
    let status = perf
        .arg("--")
        .args(command)
        .status()
        .expect("start perf record");
    let stats = Command::new("perf")
        .args(["report", "--stats", "--input"])
        .arg(&data)
        .output()
        .expect("run perf report --stats");
    let stats = String::from_utf8_lossy(&stats.stdout);
    assert!(!stats.contains("LOST"), "perf lost samples:\n{stats}");
    (data, status)
}

/// Every sample of the recording `data`, in perf's order.
pub fn samples(data: &Path) -> Vec<Sample> {
    let script = data.with_extension("py");
    std::fs::write(&script, SCRIPT).unwrap();
    let out = Command::new("perf")
        .args(["script", "--input"])
        .arg(data)
        .arg("--script")
        .arg(&script)
        .output()
        .expect("run perf script");
    assert!(
        out.status.success(),
        "perf script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(Sample::from_json)
        .collect()
}

/// perf's name of a function without its symbol version (`pthread_create@GLIBC_2.2.5`).
pub fn unversioned(symbol: &str) -> &str {
    symbol.split('@').next().unwrap_or(symbol)
}

/// Runs `demo trace --format json --output FILE ARGS -- COMMAND` under `perf record` of
/// `events`, checks that both succeeded, and returns demo's lines and perf's samples of the
/// same execution (demo's own among them: a test picks the processes demo traced).
pub fn trace_beside_perf(
    name: &str,
    args: &[&str],
    command: &[&OsStr],
    events: &[&str],
) -> (Vec<serde_json::Value>, Vec<Sample>) {
    crate::common::require_root();
    let out = crate::common::output_file(name);
    let mut demo: Vec<&OsStr> = [crate::common::DEMO, "trace", "--format", "json", "--output"]
        .iter()
        .map(OsStr::new)
        .collect();
    demo.push(out.as_os_str());
    demo.extend(args.iter().map(OsStr::new));
    demo.push(OsStr::new("--"));
    demo.extend_from_slice(command);
    let (data, status) = record(name, events, &demo);
    assert!(status.success(), "perf record of demo trace: {status}");
    (crate::common::json::json_file(&out), samples(&data))
}
