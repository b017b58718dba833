//! The parsed command line turned into what the library runs: each command with its own
//! choice of output. The combinations that have none are refused here, in one sentence each.

use std::time::Duration;

use demo::{
    app::{self, Alloc, BadInput, Destination, EventSink, Invocation, Report, TopFormat, TopSink},
    kernel::probes::ProbeOptions,
    top, trace,
    walk::{
        lessons,
        plan::{ScenarioName, WalkPlan},
    },
};

use super::{Cli, Command, FormatArg, ScenarioArg, TopArgs, TraceArgs};

/// What the command line asks for.
#[derive(Debug)]
pub enum Request {
    /// `demo completions SHELL`.
    Completions(clap_complete::Shell),
    /// `demo __man [COMMAND]`: a man page.
    Man(Option<String>),
    /// A command the library runs.
    Run(Invocation),
}

impl Cli {
    /// The request these arguments make, or the sentence that refuses them.
    pub fn request(mut self) -> Result<Request, BadInput> {
        let command = match self.command.take() {
            Some(Command::Completions { shell }) => return Ok(Request::Completions(shell)),
            Some(Command::Man { command }) => return Ok(Request::Man(command)),
            Some(Command::Alloc { list: true, .. }) => app::Command::ListWalks,
            Some(Command::Alloc {
                scenario,
                walk,
                interactive,
                ..
            }) => {
                let sink = self.event_sink(false)?;
                let plans = scenario
                    .map_or_else(Vec::new, ScenarioArg::scenarios)
                    .into_iter()
                    .map(|scenario| lessons::plan_for(scenario, &walk.options()))
                    .collect::<Result<_, _>>()
                    .map_err(|error| BadInput(error.to_string()))?;
                app::Command::Alloc(Alloc {
                    plans,
                    interactive,
                    probes: self.probe_options(),
                    sink,
                })
            }
            None => app::Command::Alloc(Alloc {
                sink: self.event_sink(false)?,
                plans: ScenarioName::SEED.map(WalkPlan::seed).to_vec(),
                interactive: false,
                probes: self.probe_options(),
            }),
            Some(Command::Trace(args)) => app::Command::Trace(self.trace(args)?),
            Some(Command::Top(args)) => app::Command::Top(self.top(args)?),
        };
        Ok(Request::Run(Invocation {
            command,
            as_root: self.as_root,
        }))
    }

    /// Where a walk or a trace is shown.
    fn event_sink(&self, traces_a_command: bool) -> Result<EventSink, BadInput> {
        if self.tui {
            return match self.format {
                FormatArg::Text | FormatArg::Json => Ok(EventSink::View),
                FormatArg::Folded | FormatArg::ChromeTrace => Err(BadInput(format!(
                    "--format {} writes a file for another tool, not the --tui view",
                    self.format.name()
                ))),
            };
        }
        // A command demo starts shares demo's stdout and stderr, so its own output would mix
        // into a machine-read report on either; text is for people and keeps its place beside
        // it.
        if traces_a_command && self.output.is_none() && self.format != FormatArg::Text {
            return Err(BadInput(format!(
                "--format {} of a traced command needs --output FILE: the command's own output would mix into it on stdout or stderr",
                self.format.name()
            )));
        }
        Ok(EventSink::Report(self.report(self.format.into())))
    }

    /// Where demo top is shown: it counts, so it has no stacks and no timeline.
    fn top_sink(&self, args: &TopArgs) -> Result<TopSink, BadInput> {
        let not_per_stack = || {
            BadInput("demo top counts faults per process and page, not per stack: --stacks, --stack-depth and --format folded are for alloc and trace".to_owned())
        };
        if self.stack_depth() != 0 {
            return Err(not_per_stack());
        }
        let format = match self.format {
            FormatArg::Text => TopFormat::Text,
            FormatArg::Json => TopFormat::Json,
            FormatArg::Folded => return Err(not_per_stack()),
            FormatArg::ChromeTrace => return Err(BadInput(
                "--format chrome-trace is a timeline of an alloc or trace; demo top counts, it keeps no events".to_owned(),
            )),
        };
        if args.quiet {
            if self.tui || format != TopFormat::Text || self.output.is_some() {
                return Err(BadInput(
                    "--quiet shows no intervals, so --tui, --format and --output have nothing to show"
                        .to_owned(),
                ));
            }
            return Ok(TopSink::Quiet);
        }
        Ok(if self.tui {
            TopSink::View
        } else {
            TopSink::Report(self.report(format))
        })
    }

    /// A report in `format`, to `--output` or stdout.
    fn report<F>(&self, format: F) -> Report<F> {
        Report {
            format,
            to: match &self.output {
                Some(path) => Destination::File(path.clone()),
                None => Destination::Stdout,
            },
        }
    }

    /// The programs a walk or a trace loads.
    fn probe_options(&self) -> ProbeOptions {
        ProbeOptions {
            source: self.source.into(),
            fault_category: self.debug_fault_category.clone(),
            ring_bytes: self.ring_buffer_kib * 1024,
            stack_depth: self.stack_depth(),
        }
    }

    fn trace(&self, args: TraceArgs) -> Result<app::Trace, BadInput> {
        let sink = self.event_sink(args.pid.is_none())?;
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
        let options = trace::TraceOptions {
            heap_blocks,
            target: match args.pid {
                Some(pid) => trace::TraceTarget::Pid(pid),
                None => trace::TraceTarget::Command(args.command),
            },
            follow: args.follow,
            auto_regions,
            manual_regions: trace::regions::parse_region_specs(&specs)
                .map_err(|error| BadInput(error.to_string()))?,
            min_block: args.min_block,
            elem_size: args.elem_size,
            duration: args.duration.map(Duration::from_secs_f64),
            run_as: None,
            quiet: matches!(sink, EventSink::View),
        };
        Ok(app::Trace {
            options,
            probes: self.probe_options(),
            sink,
        })
    }

    fn top(&self, args: TopArgs) -> Result<app::Top, BadInput> {
        let sink = self.top_sink(&args)?;
        let options = top::TopOptions {
            interval: Duration::from_secs_f64(args.interval),
            count: args.count as usize,
            sort: args.sort.into(),
            duration: args.duration.map(Duration::from_secs_f64),
            pages_of: args.pid.filter(|_| args.pages),
            all_rows: matches!(sink, TopSink::View),
            counters_only: args.counters_only,
            empty_fault_programs: args.debug_empty_fault_programs,
            series: args.listen.map(|_| top::ledger::SeriesOptions {
                per_pid: args.per_pid,
                max_series: args.max_series as usize,
            }),
        };
        Ok(app::Top {
            options,
            fault_category: self.debug_fault_category.clone(),
            listen: args.listen,
            sink,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use clap::Parser as _;
    use demo::output::Format;

    use super::*;

    /// The request `args` (after `demo`) make.
    fn request(args: &[&str]) -> Result<Request, BadInput> {
        Cli::try_parse_from(std::iter::once("demo").chain(args.iter().copied()))
            .expect("clap accepts it")
            .request()
    }

    fn run(args: &[&str]) -> app::Command {
        match request(args) {
            Ok(Request::Run(invocation)) => invocation.command,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn each_combination_without_an_output_is_refused_in_its_own_sentence() {
        let not_per_stack = "demo top counts faults per process and page, not per stack: --stacks, --stack-depth and --format folded are for alloc and trace";
        for (args, says) in [
            (&["top", "--stacks"][..], not_per_stack),
            (
                &["top", "--stack-depth", "4", "--format", "chrome-trace"][..],
                not_per_stack,
            ),
            (&["top", "--format", "folded"][..], not_per_stack),
            (&["--tui", "top", "--format", "folded"][..], not_per_stack),
            (
                &["top", "--format", "chrome-trace"][..],
                "--format chrome-trace is a timeline of an alloc or trace; demo top counts, it keeps no events",
            ),
            (
                &[
                    "top",
                    "--listen",
                    "127.0.0.1:0",
                    "--quiet",
                    "--format",
                    "json",
                ][..],
                "--quiet shows no intervals, so --tui, --format and --output have nothing to show",
            ),
            (
                &["top", "--listen", "127.0.0.1:0", "--quiet", "--tui"][..],
                "--quiet shows no intervals, so --tui, --format and --output have nothing to show",
            ),
            (
                &["top", "--listen", "127.0.0.1:0", "--quiet", "-o", "top.txt"][..],
                "--quiet shows no intervals, so --tui, --format and --output have nothing to show",
            ),
            (
                &["--tui", "--format", "folded", "alloc", "mmap"][..],
                "--format folded writes a file for another tool, not the --tui view",
            ),
            (
                &["--tui", "--format", "chrome-trace"][..],
                "--format chrome-trace writes a file for another tool, not the --tui view",
            ),
            (
                &["trace", "--tui", "--format", "folded", "--", "/bin/true"][..],
                "--format folded writes a file for another tool, not the --tui view",
            ),
            (
                &["trace", "--format", "json", "--", "/bin/true"][..],
                "--format json of a traced command needs --output FILE: the command's own output would mix into it on stdout or stderr",
            ),
            (
                &["trace", "--format", "chrome-trace", "--", "/bin/true"][..],
                "--format chrome-trace of a traced command needs --output FILE: the command's own output would mix into it on stdout or stderr",
            ),
            (
                &[
                    "trace", "--region", "auto", "--region", "none", "--pid", "1",
                ][..],
                "--region auto and --region none exclude each other",
            ),
        ] {
            match request(args) {
                Err(refusal) => assert_eq!(refusal.to_string(), says, "{args:?}"),
                Ok(request) => panic!("{args:?} is accepted: {request:?}"),
            }
        }
    }

    #[test]
    fn a_walk_that_has_fixed_steps_refuses_walk_options() {
        let refusal = request(&["alloc", "thp", "--bytes", "5"]).unwrap_err();
        assert!(refusal.to_string().contains("has fixed steps"), "{refusal}");
    }

    #[test]
    fn a_traced_commands_machine_report_goes_to_its_file_and_a_pids_may_go_to_stdout() {
        let app::Command::Trace(traced) =
            run(&["trace", "--format", "json", "-o", "t.json", "--", "ls"])
        else {
            panic!("not a trace");
        };
        let EventSink::Report(report) = traced.sink else {
            panic!("not a report");
        };
        assert_eq!(report.format, Format::Json);
        assert_eq!(report.to, Destination::File(PathBuf::from("t.json")));
        assert!(traced.options.heap_blocks && !traced.options.quiet);
        let app::Command::Trace(traced) = run(&["trace", "--format", "folded", "--pid", "1"])
        else {
            panic!("not a trace");
        };
        assert!(matches!(
            traced.sink,
            EventSink::Report(Report {
                format: Format::Folded,
                to: Destination::Stdout
            })
        ));
        assert!(!traced.options.heap_blocks);
    }

    #[test]
    fn tui_is_the_view_and_silences_a_traced_command() {
        let app::Command::Trace(traced) = run(&["--tui", "--format", "json", "trace", "--", "ls"])
        else {
            panic!("not a trace");
        };
        assert!(matches!(traced.sink, EventSink::View));
        assert!(traced.options.quiet);
        let app::Command::Top(top) = run(&["top", "--tui"]) else {
            panic!("not top");
        };
        assert!(matches!(top.sink, TopSink::View));
        assert!(top.options.all_rows);
        assert!(matches!(
            run(&["--tui"]),
            app::Command::Alloc(Alloc {
                sink: EventSink::View,
                ..
            })
        ));
    }

    #[test]
    fn top_reports_text_or_json_or_nothing_with_quiet() {
        let app::Command::Top(top) = run(&["top", "--format", "json", "-o", "top.json"]) else {
            panic!("not top");
        };
        assert!(matches!(
            top.sink,
            TopSink::Report(Report {
                format: TopFormat::Json,
                to: Destination::File(_)
            })
        ));
        assert!(!top.options.all_rows);
        let app::Command::Top(top) = run(&["top", "--listen", "127.0.0.1:0", "--quiet"]) else {
            panic!("not top");
        };
        assert!(matches!(top.sink, TopSink::Quiet));
        assert!(top.listen.is_some() && top.options.series.is_some());
    }

    #[test]
    fn no_command_runs_the_seed_walks_and_the_others_need_no_invocation() {
        let app::Command::Alloc(alloc) = run(&["--stacks"]) else {
            panic!("not alloc");
        };
        let walks: Vec<_> = alloc.plans.iter().map(|plan| plan.scenario).collect();
        assert_eq!(walks, ScenarioName::SEED);
        assert_eq!(alloc.probes.stack_depth, 32);
        assert!(matches!(run(&["alloc", "--list"]), app::Command::ListWalks));
        assert!(matches!(
            request(&["completions", "bash"]),
            Ok(Request::Completions(_))
        ));
        assert!(
            matches!(request(&["__man", "top"]), Ok(Request::Man(Some(name))) if name == "top")
        );
    }
}
