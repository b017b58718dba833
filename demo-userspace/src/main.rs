//! Entry point of `demo`: parses the command line, runs the command, and turns any error into one
//! sentence on stderr and a non-zero exit code.

mod access;
mod cli;
mod event_reader;
mod pages;
mod privileges;
mod probes;
mod procmem;
mod records;
mod region;
mod report;
mod scenario;
mod tracefs;
mod workload;

use std::{
    io::{self, BufWriter},
    process::ExitCode,
};

use anyhow::Context as _;
use clap::Parser as _;

use crate::{
    cli::{Cli, Command},
    event_reader::EventReader,
    probes::{ProbeOptions, Probes},
    scenario::{ScenarioName, WalkPlan},
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let scenarios = match cli.command {
        Some(Command::Workload) => {
            return match workload::child::serve() {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: workload child: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Command::Alloc { scenario }) => vec![scenario],
        None => vec![ScenarioName::Mmap],
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&scenarios, cli.format)) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`demo | head`) is not an error of ours.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

async fn run(scenarios: &[ScenarioName], format: report::Format) -> anyhow::Result<()> {
    privileges::check()?;
    let mut probes = Probes::load(ProbeOptions::default())?;
    let ring = probes.take_events().context("open the event ring buffer")?;
    let mut reader = EventReader::new(ring).context("register the event ring buffer")?;
    let mut reporter = report::reporter(format, BufWriter::new(io::stdout().lock()));
    let run_as = privileges::invoking_user();
    for &scenario in scenarios {
        scenario::run_walk(
            &WalkPlan::seed(scenario),
            &mut probes,
            &mut reader,
            run_as,
            reporter.as_mut(),
        )
        .await
        .with_context(|| format!("run the {} walk", scenario.as_str()))?;
    }
    Ok(())
}
