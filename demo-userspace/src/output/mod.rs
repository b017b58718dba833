//! The sinks: a walk's text and JSON Lines reports, the JSON Lines writer every command's JSON
//! goes through, and the terminal view.

mod chrome;
pub mod code;
pub mod destination;
pub mod duration;
pub(crate) mod escape;
pub(crate) mod explain;
#[cfg(test)]
mod fixtures;
pub mod folded;
mod json;
mod json_lines;
pub mod lines;
pub mod metrics;
pub mod pprof;
mod stacks_text;
mod text;
pub mod top;
pub mod trace;
mod trace_durations_text;
mod trace_summary_text;
pub mod trace_text;
pub mod tui;

pub use json::JsonReporter;
pub use json_lines::{BatchWrite, JsonLines};
pub use text::TextReporter;

use crate::walk::Reporter;

/// How many glyphs a trace region's page strip has at most; larger regions share glyphs.
pub const STRIP_WIDTH: usize = 64;

/// Output formats of the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// A report for people, 80 columns wide.
    #[default]
    Text,
    /// JSON Lines: one object per line, with a `kind` field.
    Json,
    /// One line per distinct stack at the end (FlameGraph's folded stacks).
    Folded,
    /// The Trace Event Format, a timeline for Perfetto, chrome://tracing and Firefox.
    ChromeTrace,
    /// A gzipped pprof profile (`profile.proto`) of the faults by stack, written at the end,
    /// for `go tool pprof`, Pyroscope and Parca; binary, so only to a file.
    Pprof,
}

/// Builds the reporter for `format`, writing to `out`.
pub fn reporter<'a>(format: Format, out: impl BatchWrite + 'a) -> Box<dyn Reporter + 'a> {
    match format {
        Format::Text => Box::new(TextReporter::new(out)),
        Format::Json => Box::new(JsonReporter::new(out)),
        Format::Folded => Box::new(folded::FoldedReporter::new(out)),
        Format::ChromeTrace => Box::new(chrome::ChromeTrace::new(out)),
        Format::Pprof => Box::new(pprof::PprofReporter::new(out)),
    }
}
