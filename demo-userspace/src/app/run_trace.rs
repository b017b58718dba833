//! `demo trace`: a trace into a report or the view, and the traced command's end as demo's
//! own exit status.

use std::{process::ExitCode, sync::Arc};

use anyhow::Context as _;

use super::{EventSink, Trace, probes, report_file, view};
use crate::{
    kernel::{
        privileges::RunAs,
        pty::{Pty, PtyError},
    },
    model::signals::ProcessEnd,
    output::{self, tui},
    trace,
};

/// Runs the trace into its sink. With a report, demo exits as the traced command did when
/// the trace ended with it; the view's exit is the user's quitting.
pub(super) async fn run(mut traced: Trace, run_as: Option<RunAs>) -> anyhow::Result<ExitCode> {
    traced.options.run_as = run_as;
    let report = match traced.sink {
        EventSink::Report(report) => report,
        EventSink::View => {
            run_in_view(traced).await?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    // Opened before anything is loaded, so a file demo may not write fails at once.
    let out = report_file::open(&report.to, run_as)?;
    let (mut probes, mut reader) = probes::load(&traced.probes)?;
    let mut output = output::trace::output(report.format, traced.width, traced.weight, out);
    let ended = trace::run(&traced.options, &mut probes, &mut reader, output.as_mut()).await?;
    Ok(ended.map_or(ExitCode::SUCCESS, command_status))
}

/// Runs the trace behind the full-screen view until the user quits. A command demo starts
/// gets a terminal of its own, a pseudo-terminal shown in a pane of the view, which types
/// the user's Enter into it.
async fn run_in_view(traced: Trace) -> anyhow::Result<()> {
    let (mut probes, mut reader) = probes::load(&traced.probes)?;
    let (sender, events) = tui::channel();
    let mut output = tui::ViewTrace::new(sender.clone());
    let app = tui::app(tui::app::Mode::Trace, "demo trace");
    let mut options = traced.options;
    if !matches!(options.target, trace::TraceTarget::Command(_)) {
        let work = async move {
            trace::run(&options, &mut probes, &mut reader, &mut output)
                .await
                .map(drop)
        };
        return view::follow(tui::run_view(app, sender, events, None, work).await?);
    }
    let [_, pane_area] =
        tui::command_pane::split(tui::terminal_size().context("read the terminal's size")?);
    let size = tui::command_pane::terminal_size(pane_area);
    let (pty, terminal) = Pty::open(size).map_err(|error: PtyError| anyhow::Error::new(error))?;
    options.command_io = trace::CommandIo::Terminal(Arc::new(terminal));
    let pane = tui::command_pane::CommandPane::new(pty, size).context("start the command pane")?;
    let work = async move {
        let traced = trace::run(&options, &mut probes, &mut reader, &mut output).await;
        // The command has its own copy of its terminal: with the loader's closed, the pane
        // says the command ended once it and all it started are gone.
        drop(options);
        traced.map(drop)
    };
    view::follow(tui::run_view_with_command(app, sender, events, pane, work).await?)
}

/// A traced command's end as demo's own exit status, as strace and time(1) give it: its exit
/// status, or 128 plus the signal that killed it.
fn command_status(end: ProcessEnd) -> ExitCode {
    match end {
        ProcessEnd::Exited(code) => ExitCode::from(code as u8),
        ProcessEnd::Killed(signal) => ExitCode::from((128 + signal) as u8),
        ProcessEnd::Other(_) => ExitCode::FAILURE,
    }
}
