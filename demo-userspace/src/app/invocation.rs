//! What a run of demo was asked for: the command, its options, and its own choice of output,
//! so that an output a command cannot give has no value to be written with.

use std::{net::SocketAddr, path::PathBuf};

use crate::{
    kernel::probes::ProbeOptions, output::Format, top::TopOptions, trace::TraceOptions,
    walk::plan::WalkPlan,
};

/// A command with everything it runs with.
#[derive(Debug)]
pub struct Invocation {
    pub command: Command,
    /// `--as-root`: workloads and traced commands run as root even when demo was started
    /// through sudo.
    pub as_root: bool,
}

impl Invocation {
    /// Whether the full-screen view shows the run, which then owns the terminal.
    pub fn shows_view(&self) -> bool {
        match &self.command {
            Command::ListWalks => false,
            Command::Alloc(alloc) => matches!(alloc.sink, EventSink::View),
            Command::Trace(trace) => matches!(trace.sink, EventSink::View),
            Command::Top(top) => matches!(top.sink, TopSink::View),
        }
    }
}

/// The commands the library runs; completions and man pages are the command line's own.
#[derive(Debug)]
pub enum Command {
    /// `demo alloc --list`: what each walk teaches.
    ListWalks,
    Alloc(Alloc),
    Trace(Trace),
    Top(Top),
}

/// `demo alloc`, or `demo` alone: walks, one after the other.
#[derive(Debug)]
pub struct Alloc {
    pub plans: Vec<WalkPlan>,
    /// Wait for Enter before each step of a report; the view paces the steps itself.
    pub interactive: bool,
    pub probes: ProbeOptions,
    pub sink: EventSink,
}

/// `demo trace`. Its options' `run_as` is left to the run, which learns the invoking user.
#[derive(Debug)]
pub struct Trace {
    pub options: TraceOptions,
    pub probes: ProbeOptions,
    pub sink: EventSink,
    /// How wide a text report's lines are (`--wide`).
    pub width: crate::output::trace_text::LineWidth,
    /// What a folded report's stacks weigh (`--weight`).
    pub weight: crate::output::folded::Weight,
}

/// `demo top`.
#[derive(Debug)]
pub struct Top {
    pub options: TopOptions,
    /// The category of the fault tracepoints; only tests change it.
    pub fault_category: String,
    /// `--listen`: where the metrics endpoint listens.
    pub listen: Option<SocketAddr>,
    pub sink: TopSink,
}

/// Where a walk or a trace is shown: a report in any format, or the view.
#[derive(Debug)]
pub enum EventSink {
    Report(Report<Format>),
    View,
}

/// Where demo top is shown: a table or JSON Lines per interval, the view, or nowhere
/// (`--quiet`, when the metrics endpoint is the output).
#[derive(Debug)]
pub enum TopSink {
    Report(Report<TopFormat>),
    View,
    Quiet,
}

/// A report: its format, and where it goes.
#[derive(Debug)]
pub struct Report<F> {
    pub format: F,
    pub to: Destination,
}

/// Where a report goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    /// `--output FILE`, opened as the invoking user.
    File(PathBuf),
}

/// The formats of demo top, which counts and keeps no events: no stacks, no timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopFormat {
    Text,
    Json,
}

impl From<TopFormat> for Format {
    fn from(format: TopFormat) -> Self {
        match format {
            TopFormat::Text => Self::Text,
            TopFormat::Json => Self::Json,
        }
    }
}
