//! Names of signals, of their si_codes and of how a process ended.

use std::{os::unix::process::ExitStatusExt as _, process::ExitStatus};

/// How a process ended; shown as `exited with status 0` or `killed by SIGSEGV`, in text and
/// JSON alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessEnd {
    Exited(i32),
    Killed(i32),
    /// Neither (a stopped process, which demo does not wait for): the status as Rust shows it.
    Other(String),
}

impl From<ExitStatus> for ProcessEnd {
    fn from(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Self::Exited(code),
            (None, Some(signal)) => Self::Killed(signal),
            (None, None) => Self::Other(status.to_string()),
        }
    }
}

impl std::fmt::Display for ProcessEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exited with status {code}"),
            Self::Killed(signal) => write!(f, "killed by {}", signal_name(*signal)),
            Self::Other(status) => f.write_str(status),
        }
    }
}

impl serde::Serialize for ProcessEnd {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl schemars::JsonSchema for ProcessEnd {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ProcessEnd".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "How a process ended, e.g. `exited with status 0` or `killed by SIGSEGV`.",
            "type": "string"
        })
    }
}

/// The name of a signal number, e.g. `SIGSEGV`.
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned())
}

/// The name of a signal's si_code, e.g. `SEGV_MAPERR`.
pub fn si_code_name(signal: i32, code: i32) -> String {
    let name = match (signal, code) {
        (libc::SIGSEGV, 1) => "SEGV_MAPERR",
        (libc::SIGSEGV, 2) => "SEGV_ACCERR",
        (libc::SIGSEGV, 3) => "SEGV_BNDERR",
        (libc::SIGSEGV, 4) => "SEGV_PKUERR",
        (libc::SIGBUS, 1) => "BUS_ADRALN",
        (libc::SIGBUS, 2) => "BUS_ADRERR",
        (libc::SIGBUS, 3) => "BUS_OBJERR",
        (_, 0) => "SI_USER",
        (_, 0x80) => "SI_KERNEL",
        (_, -1) => "SI_QUEUE",
        (_, -6) => "SI_TKILL",
        _ => return code.to_string(),
    };
    name.to_owned()
}

/// What an si_code means, for the text report.
pub fn si_code_meaning(signal: i32, code: i32) -> &'static str {
    match (signal, code) {
        (libc::SIGSEGV, 1) => "no mapping at the address",
        (libc::SIGSEGV, 2) => "mapped, but the access is not allowed",
        (_, 0) => "sent by a process with kill(2)",
        (_, 0x80) => "sent by the kernel",
        _ => "see sigaction(2)",
    }
}
