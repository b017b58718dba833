//! The library's one entry point, above the outputs: runs what the command line asked for,
//! each command into the output it chose, and says how demo should exit.

mod invocation;
mod probes;
mod report_file;
mod run_alloc;
mod run_top;
mod run_trace;
mod view;

use std::{io, process::ExitCode};

use anyhow::Context as _;

pub use self::invocation::{
    Alloc, Command, Destination, EventSink, Invocation, Report, Top, TopFormat, TopSink, Trace,
};
use crate::{
    kernel::{privileges, shutdown},
    output::tui,
};

/// Bad input the user can fix: the binary exits with status 2 for it, as clap does for usage
/// errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Runs `invocation` to its end. Its exit status is 0, or a traced command's own, when the
/// trace ended with it.
pub fn run(invocation: Invocation) -> anyhow::Result<ExitCode> {
    if invocation.shows_view() {
        tui::check_terminal().map_err(|error| BadInput(error.to_string()))?;
        tui::TuiLogger::install();
    } else {
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?
        .block_on(execute(invocation))
}

async fn execute(invocation: Invocation) -> anyhow::Result<ExitCode> {
    let run_as = if invocation.as_root {
        None
    } else {
        privileges::invoking_user().map_err(|error| BadInput(error.to_string()))?
    };
    match invocation.command {
        // It loads nothing, so it needs no privileges.
        Command::ListWalks => run_alloc::list_walks(io::stdout().lock())?,
        Command::Alloc(alloc) => {
            prepare_to_load()?;
            run_alloc::run(alloc, run_as).await?;
        }
        Command::Trace(trace) => {
            prepare_to_load()?;
            return run_trace::run(trace, run_as).await;
        }
        Command::Top(top) => {
            prepare_to_load()?;
            run_top::run(top, run_as).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What precedes loading any program: the privilege check, and the signal watch, which from
/// here also ends a wait for a report's reader.
fn prepare_to_load() -> anyhow::Result<()> {
    privileges::check()?;
    shutdown::watch();
    Ok(())
}
