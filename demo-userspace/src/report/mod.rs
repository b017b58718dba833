//! Output of a walk: the `Reporter` trait and its text and JSON Lines implementations.

mod fault_json;
mod json;
mod json_lines;
mod text;

use std::io;

pub use json::{FaultLine, JsonReporter, RegionLine, SignalLine, SyscallLine};
pub use json_lines::JsonLines;
pub use text::TextReporter;

use crate::{
    region::Region,
    scenario::{Summary, WalkResult},
    step_report::StepReport,
    walk_plan::ScenarioName,
};

/// Receives a walk's results as they happen, so interactive runs print each step at once.
pub trait Reporter {
    /// The array became known (after its allocation step).
    fn region(&mut self, scenario: ScenarioName, region: &Region) -> io::Result<()>;
    /// A step finished.
    fn step(&mut self, step: &StepReport) -> io::Result<()>;
    /// The walk finished.
    fn summary(&mut self, summary: &Summary) -> io::Result<()>;
    /// Several walks finished; compares the mmap and malloc ones side by side.
    fn comparison(&mut self, walks: &[WalkResult]) -> io::Result<()>;
}

/// Output formats of the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A report for people, 80 columns wide.
    #[default]
    Text,
    /// JSON Lines: one object per line, with a `kind` field.
    Json,
}

/// Serializes an address as a `0x…` hex string, as every address in the JSON output is.
/// It is written by hand into a stack buffer: going through `fmt` cost a trace a tenth of its
/// time, at three addresses per fault.
pub fn hex<S: serde::Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buffer = [0u8; 18];
    serializer.serialize_str(hex_digits(*value, &mut buffer))
}

/// `value` as `0x` and its lowercase hex digits, without leading zeros (`0x0` for zero).
fn hex_digits(value: u64, buffer: &mut [u8; 18]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digits = (64 - value.leading_zeros()).div_ceil(4).max(1) as usize;
    buffer[0] = b'0';
    buffer[1] = b'x';
    for i in 0..digits {
        buffer[1 + digits - i] = DIGITS[(value >> (4 * i)) as usize & 0xf];
    }
    // SAFETY: every byte written is an ASCII digit, `0` or `x`.
    unsafe { std::str::from_utf8_unchecked(&buffer[..2 + digits]) }
}

/// Builds the reporter for `format`, writing to `out`.
pub fn reporter<'a>(format: Format, out: impl io::Write + 'a) -> Box<dyn Reporter + 'a> {
    match format {
        Format::Text => Box::new(TextReporter::new(out)),
        Format::Json => Box::new(JsonReporter::new(out)),
    }
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

#[cfg(test)]
mod hex_tests {
    use super::hex_digits;

    #[test]
    fn hex_digits_match_the_formatter() {
        for value in [0, 1, 0xf, 0x10, 0x7f80_93b6_9000, u64::MAX, 1 << 63, 0x1000] {
            let mut buffer = [0; 18];
            assert_eq!(hex_digits(value, &mut buffer), format!("{value:#x}"));
        }
    }
}
