//! Output of a walk: the `Reporter` trait and its text and JSON Lines implementations.

mod json;
mod text;

use std::io;

pub use json::JsonReporter;
pub use text::TextReporter;

use crate::{
    region::Region,
    scenario::{ScenarioName, StepReport, Summary},
};

/// Receives a walk's results as they happen, so interactive runs print each step at once.
pub trait Reporter {
    /// The array became known (after its allocation step).
    fn region(&mut self, scenario: ScenarioName, region: &Region) -> io::Result<()>;
    /// A step finished.
    fn step(&mut self, step: &StepReport) -> io::Result<()>;
    /// The walk finished.
    fn summary(&mut self, summary: &Summary) -> io::Result<()>;
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
pub fn hex<S: serde::Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("{value:#x}"))
}

/// Builds the reporter for `format`, writing to `out`.
pub fn reporter<'a>(format: Format, out: impl io::Write + 'a) -> Box<dyn Reporter + 'a> {
    match format {
        Format::Text => Box::new(TextReporter::new(out)),
        Format::Json => Box::new(JsonReporter::new(out)),
    }
}
