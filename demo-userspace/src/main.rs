//! Entry point of `demo`: parses the command line, runs the command, and turns any error into one
//! sentence on stderr and a non-zero exit code.

mod access;
mod classify;
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
mod step_report;
mod syscalls;
mod tracefs;
mod walk_plan;
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
    scenario::{EnterPacer, NoPause, Tracing},
    walk_plan::{ScenarioName, WalkPlan},
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
        Some(Command::Alloc {
            scenario,
            walk,
            interactive,
        }) => match WalkPlan::new(scenario, &walk.options()) {
            Ok(plan) => Run {
                plans: vec![plan],
                interactive,
            },
            Err(error) => {
                eprintln!("error: {error}");
                return ExitCode::from(2);
            }
        },
        None => Run {
            plans: [
                ScenarioName::Mmap,
                ScenarioName::Malloc,
                ScenarioName::OutOfBounds,
            ]
            .map(WalkPlan::seed)
            .to_vec(),
            interactive: false,
        },
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
    match runtime.block_on(run(scenarios, cli.format)) {
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

/// The walks to run and how to pace them.
struct Run {
    plans: Vec<WalkPlan>,
    interactive: bool,
}

async fn run(walks: Run, format: report::Format) -> anyhow::Result<()> {
    privileges::check()?;
    let mut probes = Probes::load(ProbeOptions::default())?;
    let ring = probes.take_events().context("open the event ring buffer")?;
    let mut reader = EventReader::new(ring).context("register the event ring buffer")?;
    let mut reporter = report::reporter(format, BufWriter::new(io::stdout().lock()));
    let run_as = privileges::invoking_user();
    let mut results = Vec::new();
    for plan in &walks.plans {
        let tracing = Tracing {
            probes: &mut probes,
            reader: &mut reader,
            run_as,
        };
        let walked = if walks.interactive {
            scenario::run_walk(plan, tracing, &mut EnterPacer::new(), reporter.as_mut()).await
        } else {
            scenario::run_walk(plan, tracing, &mut NoPause, reporter.as_mut()).await
        };
        results.push(walked.with_context(|| format!("run the {} walk", plan.scenario.as_str()))?);
    }
    if results.len() > 1 {
        reporter.comparison(&results)?;
    }
    Ok(())
}
