//! Entry point of `demo`: parses the command line, runs the command, and turns any error into one
//! sentence on stderr and a non-zero exit code.

mod cli;

use std::{io, process::ExitCode};

use anyhow::Context as _;

use crate::cli::{Cli, Command};
use demo::{
    kernel::event_reader::EventReader,
    kernel::probes::{ProbeOptions, Probes},
    kernel::{privileges, probes},
    output,
    output::destination::{self, ReportWriter},
    output::tui,
    top, trace,
    walk::plan::{ScenarioName, WalkPlan},
    walk::scenario::{EnterPacer, NoPause, Tracing},
    walk::{self, scenario, workload},
};

fn main() -> ExitCode {
    // The workload child starts before the command-line parser allocates anything, so its
    // heap is as close to a fresh C program's as a Rust program's can be.
    if std::env::args_os().nth(1).as_deref() == Some(workload::WORKLOAD_SUBCOMMAND.as_ref()) {
        return match workload::child::serve() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: workload child: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = cli::parse();
    if let Err(error) = check_combination(&cli) {
        eprintln!("error: {error}");
        return ExitCode::from(2);
    }
    if cli.tui {
        if let Err(error) = tui::check_terminal() {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
        tui::TuiLogger::install();
    } else {
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    }
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
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // A reader that went away (`demo | head`) is not an error of ours.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit_code(&error)
        }
    }
}

/// Bad input the user can fix: exit status 2, like clap's usage errors.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

/// 2 for bad input (options, pid, command), 1 for everything that went wrong at run time.
fn exit_code(error: &anyhow::Error) -> ExitCode {
    let bad_input = error.chain().any(|cause| {
        cause.is::<BadInput>()
            || cause.is::<trace::TargetError>()
            || cause.is::<demo::kernel::process::ProcessError>()
            || cause
                .downcast_ref::<output::metrics::BindError>()
                .is_some_and(output::metrics::BindError::is_bad_input)
    });
    ExitCode::from(if bad_input { 2 } else { 1 })
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// What the command line asks for, checked before anything is loaded.
enum Action {
    /// `demo alloc --list`: what each walk teaches.
    List,
    /// `demo completions SHELL`.
    Completions(clap_complete::Shell),
    /// `demo __man [COMMAND]`: a man page.
    Man(Option<String>),
    /// A command that loads the eBPF programs.
    Run(Run),
}

/// The commands that load the eBPF programs and need privileges.
enum Run {
    Alloc {
        plans: Vec<WalkPlan>,
        interactive: bool,
    },
    Trace(trace::TraceOptions),
    Top {
        options: top::TopOptions,
        /// `--listen`: where the metrics endpoint listens.
        listen: Option<std::net::SocketAddr>,
        /// `--quiet`: no intervals shown.
        quiet: bool,
    },
}

fn action(
    command: Option<Command>,
    run_as: Option<privileges::RunAs>,
    tui: bool,
) -> Result<Action, BadInput> {
    let bad = |error: &dyn std::fmt::Display| BadInput(error.to_string());
    Ok(match command {
        Some(Command::Alloc { list: true, .. }) => Action::List,
        Some(Command::Completions { shell }) => Action::Completions(shell),
        Some(Command::Man { command }) => Action::Man(command),
        Some(Command::Alloc {
            scenario,
            walk,
            interactive,
            ..
        }) => Action::Run(Run::Alloc {
            plans: scenario
                .map_or_else(Vec::new, cli::ScenarioArg::scenarios)
                .into_iter()
                .map(|scenario| walk::lessons::plan_for(scenario, &walk.options()))
                .collect::<Result<_, _>>()
                .map_err(|e| bad(&e))?,
            interactive,
        }),
        None => Action::Run(Run::Alloc {
            plans: ScenarioName::SEED.map(WalkPlan::seed).to_vec(),
            interactive: false,
        }),
        Some(Command::Trace(args)) => {
            let specs: Vec<String> = args
                .regions
                .iter()
                .filter(|spec| !matches!(spec.as_str(), "auto" | "none"))
                .cloned()
                .collect();
            let auto_regions =
                args.regions.is_empty() || args.regions.iter().any(|spec| spec == "auto");
            if auto_regions && args.regions.iter().any(|spec| spec == "none") {
                return Err(BadInput(
                    "--region auto and --region none exclude each other".to_owned(),
                ));
            }
            // Uprobes slow every heap call of the target, so a running process gets them only
            // when asked; a command demo starts is usually a small program under study.
            let heap_blocks = !args.no_heap && (args.heap || args.pid.is_none());
            Action::Run(Run::Trace(trace::TraceOptions {
                heap_blocks,
                target: match args.pid {
                    Some(pid) => trace::TraceTarget::Pid(pid),
                    None => trace::TraceTarget::Command(args.command),
                },
                follow: args.follow,
                auto_regions,
                manual_regions: trace::regions::parse_region_specs(&specs).map_err(|e| bad(&e))?,
                min_block: args.min_block,
                elem_size: args.elem_size,
                duration: args.duration.map(std::time::Duration::from_secs_f64),
                run_as,
                quiet: tui,
            }))
        }
        Some(Command::Top(args)) => Action::Run(Run::Top {
            options: top::TopOptions {
                interval: std::time::Duration::from_secs_f64(args.interval),
                count: args.count as usize,
                sort: args.sort.into(),
                duration: args.duration.map(std::time::Duration::from_secs_f64),
                pages_of: args.pid.filter(|_| args.pages),
                all_rows: tui,
                counters_only: args.counters_only,
                empty_fault_programs: args.debug_empty_fault_programs,
                series: args.listen.map(|_| top::ledger::SeriesOptions {
                    per_pid: args.per_pid,
                    max_series: args.max_series as usize,
                }),
            },
            listen: args.listen,
            quiet: args.quiet,
        }),
    })
}

/// Rejects options that the chosen command or view has no use for.
fn check_combination(cli: &Cli) -> Result<(), BadInput> {
    let folded = cli.format == cli::FormatArg::Folded;
    let timeline = cli.format == cli::FormatArg::ChromeTrace;
    if matches!(cli.command, Some(Command::Top(_))) && (cli.stack_depth() != 0 || folded) {
        return Err(BadInput(
            "demo top counts faults per process and page, not per stack: --stacks, --stack-depth and --format folded are for alloc and trace".to_owned(),
        ));
    }
    if matches!(cli.command, Some(Command::Top(_))) && timeline {
        return Err(BadInput(
            "--format chrome-trace is a timeline of an alloc or trace; demo top counts, it keeps no events".to_owned(),
        ));
    }
    if let Some(Command::Top(args)) = &cli.command
        && args.quiet
        && (cli.tui || cli.format != cli::FormatArg::Text || cli.output.is_some())
    {
        return Err(BadInput(
            "--quiet shows no intervals, so --tui, --format and --output have nothing to show"
                .to_owned(),
        ));
    }
    if cli.tui && (folded || timeline) {
        return Err(BadInput(format!(
            "--format {} writes a file for another tool, not the --tui view",
            cli.format.name()
        )));
    }
    // A command demo starts shares demo's stdout and stderr, so its own output would mix into
    // a machine-read report on either; text is for people and keeps its place beside it.
    let traces_a_command = matches!(&cli.command, Some(Command::Trace(args)) if args.pid.is_none());
    if traces_a_command && !cli.tui && cli.output.is_none() && cli.format != cli::FormatArg::Text {
        return Err(BadInput(format!(
            "--format {} of a traced command needs --output FILE: the command's own output would mix into it on stdout or stderr",
            cli.format.name()
        )));
    }
    Ok(())
}

/// `demo alloc --list`: every walk with one line on what it teaches.
fn list_walks(mut out: impl io::Write) -> anyhow::Result<()> {
    for scenario in ScenarioName::ALL {
        writeln!(out, "{:<15}{}", scenario.as_str(), scenario.teaches())
            .context("write the list of walks")?;
    }
    out.flush().context("write the list of walks")
}

/// Runs the command; its exit status is 0, or a traced command's own (see [`command_status`]).
async fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    let run_as = if cli.as_root {
        None
    } else {
        privileges::invoking_user().map_err(|error| BadInput(error.to_string()))?
    };
    let action = action(cli.command.take(), run_as, cli.tui)?;
    // These load nothing, so they need no privileges.
    let action = match action {
        Action::List => return list_walks(io::stdout().lock()).map(|()| ExitCode::SUCCESS),
        Action::Completions(shell) => {
            cli::write_completions(shell, &mut io::stdout().lock());
            return Ok(ExitCode::SUCCESS);
        }
        Action::Man(command) => {
            cli::write_man(command.as_deref(), &mut io::stdout().lock())?;
            return Ok(ExitCode::SUCCESS);
        }
        Action::Run(run) => run,
    };
    privileges::check()?;
    // Bound before anything is loaded, so a port in use fails at once.
    let listener = match &action {
        Run::Top {
            listen: Some(address),
            ..
        } => Some(output::metrics::bind(*address).await?),
        _ => None,
    };
    // From here a signal also ends a wait for a report's reader.
    demo::kernel::shutdown::watch();
    let out: Box<dyn io::Write> = Box::new(
        match &cli.output {
            Some(path) => ReportWriter::new(
                path.display().to_string(),
                destination::open_report_file(path, run_as).map_err(|error| match error {
                    destination::ReportFileError::NotTheUsers { .. } => {
                        anyhow::Error::new(BadInput(error.to_string()))
                    }
                    _ => anyhow::Error::new(error),
                })?,
            ),
            None => ReportWriter::new("standard output".to_owned(), io::stdout()),
        }
        .context("start the report's writer")?,
    );
    if cli.tui {
        return run_in_view(&cli, action, run_as, listener)
            .await
            .map(|()| ExitCode::SUCCESS);
    }
    match action {
        Run::Top { options, quiet, .. } => {
            let top = start_top(&cli, options, listener.as_ref())?;
            let mut output = if quiet {
                output::top::silent()
            } else {
                output::top::output(cli.format.into(), out)
            };
            run_top(&top, listener, output.as_mut()).await?;
        }
        Run::Alloc { plans, interactive } => {
            let (mut probes, mut reader) = trace_probes(&cli)?;
            let mut reporter = output::reporter(cli.format.into(), out);
            let tracing = Tracing {
                probes: &mut probes,
                reader: &mut reader,
                run_as,
            };
            if interactive {
                run_walks(&plans, tracing, &mut EnterPacer::new(), reporter.as_mut()).await?;
            } else {
                run_walks(&plans, tracing, &mut NoPause, reporter.as_mut()).await?;
            }
        }
        Run::Trace(options) => {
            let (mut probes, mut reader) = trace_probes(&cli)?;
            let mut output = output::trace::output(cli.format.into(), out);
            let ended = trace::run(&options, &mut probes, &mut reader, output.as_mut()).await?;
            return Ok(ended.map_or(ExitCode::SUCCESS, command_status));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A traced command's end as demo's own exit status, as strace and time(1) give it: its exit
/// status, or 128 plus the signal that killed it.
fn command_status(end: demo::model::signals::ProcessEnd) -> ExitCode {
    use demo::model::signals::ProcessEnd;
    match end {
        ProcessEnd::Exited(code) => ExitCode::from(code as u8),
        ProcessEnd::Killed(signal) => ExitCode::from((128 + signal) as u8),
        ProcessEnd::Other(_) => ExitCode::FAILURE,
    }
}

/// Runs the command behind the full-screen view until the user quits.
async fn run_in_view(
    cli: &Cli,
    action: Run,
    run_as: Option<privileges::RunAs>,
    listener: Option<output::metrics::Listener>,
) -> anyhow::Result<()> {
    use tui::app::{Mode, Request};
    let (sender, events) = tui::channel();
    let request = match action {
        Run::Alloc { plans, .. } => {
            let (mut probes, mut reader) = trace_probes(cli)?;
            let (requests, paced) = tokio::sync::mpsc::unbounded_channel();
            let mut pacer = tui::ViewPacer(paced);
            let mut reporter = tui::ViewReporter(sender.clone());
            let tracing = Tracing {
                probes: &mut probes,
                reader: &mut reader,
                run_as,
            };
            let title = format!("demo alloc {}", plans[0].scenario.as_str());
            let work = run_walks(&plans, tracing, &mut pacer, &mut reporter);
            tui::run_view(
                tui::app(Mode::Alloc, &title),
                sender,
                events,
                Some(requests),
                work,
            )
            .await?
        }
        Run::Trace(options) => {
            let (mut probes, mut reader) = trace_probes(cli)?;
            let mut output = tui::ViewTrace::new(sender.clone());
            let work = async {
                trace::run(&options, &mut probes, &mut reader, &mut output)
                    .await
                    .map(drop)
            };
            tui::run_view(
                tui::app(Mode::Trace, "demo trace"),
                sender,
                events,
                None,
                work,
            )
            .await?
        }
        Run::Top { options, .. } => {
            let app = tui::app(Mode::Top, "demo top").with_top(options.count, options.sort);
            let top = start_top(cli, options, listener.as_ref())?;
            let mut output = tui::ViewTop(sender.clone());
            let work = run_top(&top, listener, &mut output);
            tui::run_view(app, sender, events, None, work).await?
        }
    };
    if let Request::TracePid(pid) = request {
        // The view is restored; demo trace takes over this process and terminal.
        use std::os::unix::process::CommandExt as _;
        let error = std::process::Command::new("/proc/self/exe")
            .args(["trace", "--tui", "--pid", &pid.to_string()])
            .exec();
        return Err(error).context("start demo trace --pid for the chosen process");
    }
    Ok(())
}

/// Loads demo top's programs and starts it; with a metrics endpoint, says where it listens,
/// once every count it serves is being counted.
fn start_top(
    cli: &Cli,
    options: top::TopOptions,
    listener: Option<&output::metrics::Listener>,
) -> anyhow::Result<top::Top> {
    let probes = probes::TopProbes::load(&cli.debug_fault_category, options.counting())?;
    let top = top::Top::start(options, probes)?;
    if let Some(listener) = listener {
        let bound = listener
            .local_addr()
            .context("read the address the metrics endpoint listens on")?;
        eprintln!("demo top: serving metrics at http://{bound}/metrics");
    }
    Ok(top)
}

/// Runs demo top, and beside it the metrics endpoint when it listens; the endpoint stops when
/// top does.
async fn run_top(
    top: &top::Top,
    listener: Option<output::metrics::Listener>,
    out: &mut dyn top::TopOutput,
) -> anyhow::Result<()> {
    match (listener, top.metrics()) {
        (Some(listener), Some(source)) => tokio::select! {
            done = top.run(out) => done,
            served = output::metrics::serve(listener, source) => served,
        },
        _ => top.run(out).await,
    }
}

/// Loads the per-event programs and opens their ring buffer.
fn trace_probes(cli: &Cli) -> anyhow::Result<(Probes, EventReader)> {
    let mut probes = Probes::load(&ProbeOptions {
        source: cli.source.into(),
        fault_category: cli.debug_fault_category.clone(),
        ring_bytes: cli.ring_buffer_kib * 1024,
        stack_depth: cli.stack_depth(),
    })?;
    let ring = probes.take_events().context("open the event ring buffer")?;
    let reader = EventReader::new(ring).context("register the event ring buffer")?;
    Ok((probes, reader))
}

async fn run_walks(
    plans: &[WalkPlan],
    tracing: Tracing<'_>,
    pacer: &mut impl scenario::Pacer,
    reporter: &mut dyn walk::Reporter,
) -> anyhow::Result<()> {
    let Tracing {
        probes,
        reader,
        run_as,
    } = tracing;
    let mut results = Vec::new();
    for plan in plans {
        let tracing = Tracing {
            probes,
            reader,
            run_as,
        };
        let walked = scenario::run_walk(plan, tracing, pacer, reporter).await;
        results.push(walked.with_context(|| format!("run the {} walk", plan.scenario.as_str()))?);
    }
    if results.len() > 1 {
        reporter.comparison(&results)?;
    }
    reporter.finish()?;
    Ok(())
}
