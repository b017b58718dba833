//! The parsed command line turned into what the library runs: each command with its own
//! choice of output. The combinations that have none are refused here, in one sentence each.

use std::time::Duration;

use demo::{
    app::{self, Alloc, BadInput, Destination, EventSink, Invocation, Report, TopFormat, TopSink},
    kernel::{cgroup::CgroupScope, probes::ProbeOptions},
    model::call_graph::{CallGraph, DEFAULT_STACK_BYTES, DEFAULT_STACK_DEPTH},
    output::{folded::Weight, trace_text::LineWidth},
    top, trace,
    walk::{
        lessons,
        plan::{ScenarioName, WalkPlan},
    },
};

use super::{
    CallGraphArg, Cli, Command, FormatArg, ScenarioArg, SortArg, SourceArg, TopArgs, TraceArgs,
    WeightArg,
};

/// Why `demo top` refuses stacks.
const NOT_PER_STACK: &str = "demo top counts faults per process and page, not per stack: --stacks, --call-graph, --stack-bytes, --stack-depth, --format folded and --format pprof are for alloc and trace";

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
                    // A walk always times its faults: that is half of what it teaches.
                    probes: self.probe_options(true)?,
                    sink,
                })
            }
            None => app::Command::Alloc(Alloc {
                sink: self.event_sink(false)?,
                plans: ScenarioName::SEED.map(WalkPlan::seed).to_vec(),
                interactive: false,
                probes: self.probe_options(true)?,
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
                FormatArg::Folded | FormatArg::ChromeTrace | FormatArg::Pprof => {
                    Err(BadInput(format!(
                        "--format {} writes a file for another tool, not the --tui view",
                        self.format.name()
                    )))
                }
            };
        }
        if self.format == FormatArg::Pprof && self.output.is_none() {
            return Err(BadInput(
                "--format pprof writes a binary profile: give --output FILE".to_owned(),
            ));
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

    /// Where demo top is shown: it counts, so it has no stacks and no timeline. The global
    /// options top has no use for are read from its own hidden copies, which hold them wherever
    /// they stood on the command line.
    fn top_sink(&self, args: &TopArgs) -> Result<TopSink, BadInput> {
        let not_per_stack = || BadInput(NOT_PER_STACK.to_owned());
        if args.stacks
            || args.stack_depth.is_some()
            || args.call_graph.is_some()
            || args.stack_bytes.is_some()
        {
            return Err(not_per_stack());
        }
        if args.source == Some(SourceArg::Perf) {
            return Err(BadInput(
                "demo top counts on the exceptions tracepoints: --source perf is for alloc and trace"
                    .to_owned(),
            ));
        }
        if args
            .ring_buffer_kib
            .is_some_and(|kib| kib != demo_common::DEFAULT_RING_BYTES / 1024)
        {
            return Err(BadInput(
                "demo top sends no events through a ring buffer: --ring-buffer-kib is for alloc and trace"
                    .to_owned(),
            ));
        }
        if args.as_root {
            return Err(BadInput(
                "--as-root says who runs what demo starts, and demo top starts nothing".to_owned(),
            ));
        }
        let format = match args.format {
            FormatArg::Text => TopFormat::Text,
            FormatArg::Json => TopFormat::Json,
            FormatArg::Folded | FormatArg::Pprof => return Err(not_per_stack()),
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

    /// How `--stacks`, `--call-graph`, `--stack-bytes` and `--stack-depth` ask for stacks:
    /// dwarf unless frame pointers are asked for, by name or by a depth to walk.
    fn call_graph(&self) -> Result<Option<CallGraph>, BadInput> {
        let refused = |sentence: &str| Err(BadInput(sentence.to_owned()));
        let asked = self.stacks
            || self.call_graph.is_some()
            || self.stack_bytes.is_some()
            || self.stack_depth.is_some();
        if asked && self.source == SourceArg::Perf {
            return refused(
                "--source perf captures no stacks: --stacks, --call-graph, --stack-bytes and --stack-depth need the exceptions tracepoints",
            );
        }
        match (self.call_graph, self.stack_bytes, self.stack_depth) {
            (Some(CallGraphArg::Fp), Some(_), _) | (None, Some(_), Some(_)) => refused(
                "--stack-bytes is the stack copy of --call-graph dwarf; --call-graph fp walks frame pointers and copies no stack",
            ),
            (Some(CallGraphArg::Dwarf), _, Some(_)) => refused(
                "--stack-depth is how far --call-graph fp walks frame pointers; --call-graph dwarf unwinds all the stack that --stack-bytes copies",
            ),
            (Some(CallGraphArg::Fp), None, depth) | (None, None, depth @ Some(_)) => {
                Ok(Some(CallGraph::FramePointers {
                    depth: depth.unwrap_or(DEFAULT_STACK_DEPTH),
                }))
            }
            (Some(CallGraphArg::Dwarf), bytes, None) | (None, bytes @ Some(_), None) => {
                Ok(Some(CallGraph::Dwarf {
                    stack_bytes: bytes.unwrap_or(DEFAULT_STACK_BYTES),
                }))
            }
            (None, None, None) => Ok(self.stacks.then_some(CallGraph::Dwarf {
                stack_bytes: DEFAULT_STACK_BYTES,
            })),
        }
    }

    /// The programs a walk or a trace loads, timing faults or not.
    fn probe_options(&self, durations: bool) -> Result<ProbeOptions, BadInput> {
        let call_graph = self.call_graph()?;
        // A record with a stack copy is reserved whole: a ring smaller than one would drop
        // every fault.
        let record = std::mem::size_of::<demo_common::FaultUserStackRecord>() as u32 + 8;
        if let (Some(kib), Some(CallGraph::Dwarf { stack_bytes })) =
            (self.ring_buffer_kib, call_graph)
            && kib * 1024 < record + stack_bytes
        {
            return Err(BadInput(format!(
                "--ring-buffer-kib {kib} cannot hold one fault with its {stack_bytes}-byte stack copy ({} bytes): give a larger ring, or fewer --stack-bytes",
                record + stack_bytes
            )));
        }
        Ok(ProbeOptions {
            durations,
            source: self.source.into(),
            fault_category: self.debug_fault_category.clone(),
            ring_bytes: self.ring_buffer_kib.map_or(
                if call_graph.is_some_and(|graph| graph.stack_bytes() > 0) {
                    demo_common::STACK_COPY_RING_BYTES
                } else if durations {
                    demo_common::DURATIONS_RING_BYTES
                } else {
                    demo_common::DEFAULT_RING_BYTES
                },
                |kib| kib * 1024,
            ),
            stack_depth: call_graph.map_or(0, CallGraph::stack_depth),
            stack_bytes: call_graph.map_or(0, CallGraph::stack_bytes),
            cgroup: None,
        })
    }

    fn trace(&self, args: TraceArgs) -> Result<app::Trace, BadInput> {
        let sink = self.event_sink(!args.command.is_empty())?;
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
        if args.cgroup.is_some() && !specs.is_empty() {
            return Err(BadInput(
                "--region ADDR:LEN is a range of one process, and --cgroup traces many: give --pid with it"
                    .to_owned(),
            ));
        }
        // Uprobes slow every heap call of the target, so running processes (--pid, --cgroup)
        // get them only when asked; a command demo starts is usually a small program under
        // study.
        let running = args.command.is_empty();
        let heap_blocks = !args.no_heap && (args.heap || !running);
        // Timing every fault costs the traced process about a third more per fault (cargo
        // xtask bench), so, as with heap probes, a running process is timed only when asked.
        let durations = !args.no_durations && (args.durations || !running);
        let durations_off = if args.no_durations {
            "--no-durations turns off"
        } else if args.cgroup.is_some() {
            "--cgroup leaves off unless --durations asks"
        } else {
            "--pid leaves off unless --durations asks"
        };
        if args.min_duration.is_some() && !durations {
            return Err(BadInput(format!(
                "--min-duration needs the faults' durations, which {durations_off}"
            )));
        }
        if args.weight.is_some() && (self.tui || self.format != FormatArg::Folded) {
            return Err(BadInput(
                "--weight says what the stacks of --format folded count, and only folded has stacks to weigh"
                    .to_owned(),
            ));
        }
        if args.weight == Some(WeightArg::Time) && !durations {
            return Err(BadInput(format!(
                "--weight time weighs faults by their durations, which {durations_off}"
            )));
        }
        let options = trace::TraceOptions {
            heap_blocks,
            // Resolved last, once the options are known to go together, and before anything
            // needs privileges: a path that names no cgroup is refused in its own sentence.
            target: match (args.pid, args.cgroup) {
                (Some(pid), _) => trace::TraceTarget::Pid(pid),
                (None, Some(path)) => trace::TraceTarget::Cgroup(cgroup_scope(&path)?),
                (None, None) => trace::TraceTarget::Command(args.command),
            },
            follow: args.follow,
            auto_regions,
            manual_regions: trace::regions::parse_region_specs(&specs)
                .map_err(|error| BadInput(error.to_string()))?,
            min_block: args.min_block,
            elem_size: args.elem_size,
            duration: args.duration.map(Duration::from_secs_f64),
            min_duration: args.min_duration,
            run_as: None,
            // A report shares demo's terminal with the command. The view gives the command a
            // pseudo-terminal of its own instead, which app::run_trace opens: only there is
            // the terminal's size, and so the pane's, known.
            command_io: trace::CommandIo::Inherit,
        };
        let mut probes = self.probe_options(durations)?;
        if let trace::TraceTarget::Cgroup(scope) = &options.target {
            probes.cgroup = Some(scope.dir());
        }
        Ok(app::Trace {
            options,
            probes,
            sink,
            width: if args.wide {
                LineWidth::Wide
            } else {
                LineWidth::Columns80
            },
            weight: args.weight.map_or(Weight::Faults, Weight::from),
        })
    }

    fn top(&self, args: TopArgs) -> Result<app::Top, BadInput> {
        let sink = self.top_sink(&args)?;
        let durations = !args.counters_only
            && (args.durations || (top::DURATIONS_BY_DEFAULT && !args.no_durations));
        if matches!(args.sort, SortArg::FaultTime) && !durations {
            return Err(BadInput(
                "--sort fault-time needs --durations: without it demo top times no fault"
                    .to_owned(),
            ));
        }
        let options = top::TopOptions {
            cgroup: args.cgroup.as_deref().map(cgroup_scope).transpose()?,
            interval: Duration::from_secs_f64(args.interval),
            count: args.count as usize,
            sort: args.sort.into(),
            duration: args.duration.map(Duration::from_secs_f64),
            pid: args.pid,
            pages: args.pages,
            group: args.group.map(Into::into),
            keep_exited: args.keep_exited,
            all_rows: matches!(sink, TopSink::View),
            counters_only: args.counters_only,
            empty_fault_programs: args.debug_empty_fault_programs,
            durations,
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

/// The cgroup `--cgroup PATH` names, or the sentence that says why it names none.
fn cgroup_scope(path: &str) -> Result<CgroupScope, BadInput> {
    CgroupScope::resolve(path).map_err(|error| BadInput(error.to_string()))
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
        let not_per_stack = NOT_PER_STACK;
        for (args, says) in [
            (&["top", "--stacks"][..], not_per_stack),
            (
                &["top", "--stack-depth", "4", "--format", "chrome-trace"][..],
                not_per_stack,
            ),
            (&["top", "--format", "folded"][..], not_per_stack),
            (
                &["top", "--format", "pprof", "-o", "p.pb.gz"][..],
                not_per_stack,
            ),
            (
                &["trace", "--format", "pprof", "--", "/bin/true"][..],
                "--format pprof writes a binary profile: give --output FILE",
            ),
            (
                &["alloc", "mmap", "--format", "pprof"][..],
                "--format pprof writes a binary profile: give --output FILE",
            ),
            (
                &["--tui", "--format", "pprof", "alloc", "mmap"][..],
                "--format pprof writes a file for another tool, not the --tui view",
            ),
            (
                &["top", "--sort", "fault-time", "--no-durations"][..],
                "--sort fault-time needs --durations: without it demo top times no fault",
            ),
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
            (
                &["trace", "--weight", "faults", "--pid", "1"][..],
                "--weight says what the stacks of --format folded count, and only folded has stacks to weigh",
            ),
            (
                &[
                    "trace",
                    "--format",
                    "chrome-trace",
                    "--weight",
                    "time",
                    "--pid",
                    "1",
                ][..],
                "--weight says what the stacks of --format folded count, and only folded has stacks to weigh",
            ),
            (
                &[
                    "trace",
                    "--format",
                    "folded",
                    "--weight",
                    "time",
                    "--no-durations",
                    "--pid",
                    "1",
                ][..],
                "--weight time weighs faults by their durations, which --no-durations turns off",
            ),
        ] {
            match request(args) {
                Err(refusal) => assert_eq!(refusal.to_string(), says, "{args:?}"),
                Ok(request) => panic!("{args:?} is accepted: {request:?}"),
            }
        }
    }

    /// The global options top has no use for are refused wherever they stand on the line.
    #[test]
    fn top_refuses_the_global_options_it_has_no_use_for() {
        for (args, says) in [
            (&["--stacks", "top"][..], NOT_PER_STACK),
            (
                &["top", "--source", "perf"][..],
                "demo top counts on the exceptions tracepoints: --source perf is for alloc and trace",
            ),
            (
                &["--ring-buffer-kib", "64", "top"][..],
                "demo top sends no events through a ring buffer: --ring-buffer-kib is for alloc and trace",
            ),
            (
                &["top", "--as-root"][..],
                "--as-root says who runs what demo starts, and demo top starts nothing",
            ),
        ] {
            match request(args) {
                Err(refusal) => assert_eq!(refusal.to_string(), says, "{args:?}"),
                Ok(request) => panic!("{args:?} is accepted: {request:?}"),
            }
        }
        let app::Command::Top(top) = run(&["--format", "json", "top", "--source", "tracepoint"])
        else {
            panic!("not top");
        };
        assert!(matches!(
            top.sink,
            TopSink::Report(Report {
                format: TopFormat::Json,
                ..
            })
        ));
    }

    #[test]
    fn top_aims_at_one_process_or_sums_groups() {
        let app::Command::Top(top) = run(&["top", "--pid", "42"]) else {
            panic!("not top");
        };
        assert_eq!((top.options.pid, top.options.pages_of()), (Some(42), None));
        let app::Command::Top(top) = run(&["top", "-p", "42", "--pages"]) else {
            panic!("not top");
        };
        assert_eq!(top.options.pages_of(), Some(42));
        let app::Command::Top(top) = run(&["top", "--group", "cgroup", "--keep-exited"]) else {
            panic!("not top");
        };
        assert_eq!(top.options.group, Some(top::GroupBy::Cgroup));
        assert!(top.options.keep_exited);
        let app::Command::Top(top) = run(&["top", "--group", "comm"]) else {
            panic!("not top");
        };
        assert_eq!(top.options.group, Some(top::GroupBy::Command));
        for bad in [
            &["demo", "top", "--pages"][..],
            &["demo", "top", "--pid", "1", "--group", "comm"][..],
            &["demo", "top", "--group", "pid"][..],
        ] {
            assert_eq!(
                Cli::try_parse_from(bad).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
    }

    /// `--cgroup` is a target of its own: clap refuses it beside --pid or a command, a range
    /// given by hand (which is one process's) is refused in a sentence, and the refusals come
    /// before PATH is resolved, so a missing cgroup does not hide them.
    #[test]
    fn a_cgroup_is_a_target_of_its_own() {
        for bad in [
            &["demo", "trace", "--cgroup", "/x", "--pid", "1"][..],
            &["demo", "trace", "--cgroup", "/x", "--", "/bin/true"],
            &["demo", "top", "--cgroup", "/x", "--pid", "1"],
        ] {
            let error = Cli::try_parse_from(bad).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad:?}");
            assert!(
                error.to_string().contains("cannot be used with"),
                "{bad:?}: {error}"
            );
        }
        assert_eq!(
            request(&["trace", "--cgroup", "/no-such", "--region", "0x1000:8"])
                .unwrap_err()
                .to_string(),
            "--region ADDR:LEN is a range of one process, and --cgroup traces many: give --pid \
             with it"
        );
        for args in [
            &["trace", "--cgroup", "/no-such-demo-cgroup"][..],
            &["top", "--cgroup", "/no-such-demo-cgroup"],
        ] {
            let refusal = request(args).unwrap_err().to_string();
            assert!(
                refusal.starts_with(
                    "cgroup /no-such-demo-cgroup does not exist under the cgroup v2 mount "
                ),
                "{args:?}: {refusal}"
            );
        }
    }

    /// `demo top --help` offers what top accepts, and nothing it refuses.
    #[test]
    fn top_help_lists_only_what_top_accepts() {
        let help_of = |flag| {
            Cli::try_parse_from(["demo", "top", flag])
                .unwrap_err()
                .to_string()
        };
        let short = help_of("-h");
        assert!(short.contains("[possible values: text, json]"), "{short}");
        let help = help_of("--help");
        for refused in [
            "--stacks",
            "--stack-depth",
            "- folded",
            "chrome-trace",
            "--source",
            "--ring-buffer-kib",
            "--as-root",
        ] {
            assert!(!help.contains(refused), "{refused} offered:\n{help}");
        }
        for accepted in [
            "--format",
            "- text:",
            "- json:",
            "--pid",
            "--pages",
            "--group",
            "--keep-exited",
            "--output",
            "--tui",
            "--listen",
        ] {
            assert!(help.contains(accepted), "{accepted} missing:\n{help}");
        }
        // The other commands still offer every format.
        let trace = Cli::try_parse_from(["demo", "trace", "--help"])
            .unwrap_err()
            .to_string();
        assert!(trace.contains("chrome-trace"), "{trace}");
    }

    /// Durations are on for a command demo starts and off for --pid unless asked, as heap
    /// probes are: they cost the traced process about a third more per fault.
    #[test]
    fn durations_are_on_for_a_command_and_off_for_a_running_process_unless_asked() {
        let durations_of = |args: &[&str]| match run(args) {
            app::Command::Trace(traced) => traced.probes.durations,
            other => panic!("{args:?}: {other:?}"),
        };
        assert!(durations_of(&["trace", "--", "true"]));
        assert!(!durations_of(&["trace", "--no-durations", "--", "true"]));
        assert!(!durations_of(&["trace", "--pid", "1"]));
        assert!(durations_of(&["trace", "--durations", "--pid", "1"]));
        // A cgroup's processes run already, as a --pid process does.
        for target in [&["--pid", "1"][..], &["--cgroup", "/no-such"]] {
            let args = [&["trace", "--min-duration", "1ms"][..], target].concat();
            assert_eq!(
                request(&args).unwrap_err().to_string(),
                format!(
                    "--min-duration needs the faults' durations, which {} leaves off unless \
                     --durations asks",
                    target[0]
                )
            );
        }
    }

    #[test]
    fn folded_stacks_weigh_faults_unless_asked_for_their_time() {
        let weight_of = |args: &[&str]| match run(args) {
            app::Command::Trace(traced) => traced.weight,
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(
            weight_of(&["trace", "--format", "folded", "--pid", "1"]),
            Weight::Faults
        );
        assert_eq!(
            weight_of(&[
                "trace",
                "--format",
                "folded",
                "--weight",
                "time",
                "--durations",
                "--pid",
                "1"
            ]),
            Weight::Time
        );
        assert_eq!(
            weight_of(&[
                "--format", "folded", "trace", "--weight", "faults", "--pid", "1"
            ]),
            Weight::Faults
        );
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
        assert!(traced.options.heap_blocks);
        assert!(matches!(
            traced.options.command_io,
            trace::CommandIo::Inherit
        ));
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
    fn tui_is_the_view_of_trace_top_and_alloc() {
        let app::Command::Trace(traced) = run(&["--tui", "--format", "json", "trace", "--", "ls"])
        else {
            panic!("not a trace");
        };
        assert!(matches!(traced.sink, EventSink::View));
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

    /// `--call-graph` and the options that imply it: what the kernel side is asked to capture
    /// (frames walked, stack bytes copied) and the ring buffer that carries it.
    #[test]
    fn the_call_graph_is_dwarf_unless_frame_pointers_are_asked_for() {
        let mib = 1 << 20;
        for (args, depth, bytes, ring) in [
            (&["trace", "--pid", "1"][..], 0, 0, 16 * mib),
            (&["trace", "--stacks", "--pid", "1"], 0, 8192, 64 * mib),
            (
                &["trace", "--call-graph", "dwarf", "--pid", "1"],
                0,
                8192,
                64 * mib,
            ),
            (
                &["trace", "--stack-bytes", "100", "--pid", "1"],
                0,
                104,
                64 * mib,
            ),
            (
                &["trace", "--call-graph", "fp", "--pid", "1"],
                32,
                0,
                16 * mib,
            ),
            (
                &["trace", "--stack-depth", "5", "--pid", "1"],
                5,
                0,
                16 * mib,
            ),
            (
                &[
                    "trace",
                    "--stacks",
                    "--call-graph",
                    "fp",
                    "--stack-depth",
                    "7",
                    "--pid",
                    "1",
                ],
                7,
                0,
                16 * mib,
            ),
        ] {
            let app::Command::Trace(trace) = run(args) else {
                panic!("not trace: {args:?}");
            };
            let probes = &trace.probes;
            assert_eq!(
                (probes.stack_depth, probes.stack_bytes, probes.ring_bytes),
                (depth, bytes, ring),
                "{args:?}"
            );
        }
        for (args, refused) in [
            (
                &[
                    "trace",
                    "--call-graph",
                    "fp",
                    "--stack-bytes",
                    "4096",
                    "--pid",
                    "1",
                ][..],
                "--stack-bytes is the stack copy of --call-graph dwarf",
            ),
            (
                &[
                    "trace",
                    "--stack-bytes",
                    "4096",
                    "--stack-depth",
                    "3",
                    "--pid",
                    "1",
                ],
                "--stack-bytes is the stack copy of --call-graph dwarf",
            ),
            (
                &[
                    "trace",
                    "--call-graph",
                    "dwarf",
                    "--stack-depth",
                    "3",
                    "--pid",
                    "1",
                ],
                "--stack-depth is how far --call-graph fp walks frame pointers",
            ),
            (
                &["trace", "--stacks", "--ring-buffer-kib", "8", "--pid", "1"],
                "--ring-buffer-kib 8 cannot hold one fault with its 8192-byte stack copy",
            ),
            (
                &["trace", "--stacks", "--source", "perf", "--pid", "1"],
                "--source perf captures no stacks",
            ),
        ] {
            let error = request(args).unwrap_err().0;
            assert!(error.starts_with(refused), "{args:?}: {error}");
        }
        for bad in [
            &["demo", "trace", "--stack-bytes", "0", "--pid", "1"][..],
            &["demo", "trace", "--stack-bytes", "65537", "--pid", "1"],
            &["demo", "trace", "--call-graph", "lbr", "--pid", "1"],
        ] {
            assert_eq!(
                Cli::try_parse_from(bad).unwrap_err().exit_code(),
                2,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn no_command_runs_the_seed_walks_and_the_others_need_no_invocation() {
        let app::Command::Alloc(alloc) = run(&["--stacks"]) else {
            panic!("not alloc");
        };
        let walks: Vec<_> = alloc.plans.iter().map(|plan| plan.scenario).collect();
        assert_eq!(walks, ScenarioName::SEED);
        // --stacks alone unwinds 8 KiB copies, as perf's --call-graph dwarf does.
        assert_eq!(
            (alloc.probes.stack_depth, alloc.probes.stack_bytes),
            (0, 8192)
        );
        assert!(matches!(run(&["alloc", "--list"]), app::Command::ListWalks));
        assert!(matches!(
            request(&["completions", "bash"]),
            Ok(Request::Completions(_))
        ));
        assert!(
            matches!(request(&["__man", "top"]), Ok(Request::Man(Some(name))) if name == "top")
        );
    }

    /// A value each option's value name stands for, for the test below.
    fn sample(arg: &clap::Arg) -> Vec<String> {
        let values = arg.get_possible_values();
        if !values.is_empty() {
            // A hidden value is not listed (top's --format folded, which top refuses).
            return values
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect();
        }
        let name = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map(|name| name.as_str().to_owned())
            .unwrap_or_default();
        vec![
            match name.as_str() {
                "FILE" => "report.out",
                "N" | "BYTES" => "4096",
                "ADDR:PORT" => "127.0.0.1:0",
                "auto|none|ADDR:LEN" => "auto",
                "I,J,..." => "0",
                "KIB" => "64",
                "TIME" => "1ms",
                _ => "1",
            }
            .to_owned(),
        ]
    }

    /// What each command needs besides the option tried, and what an option needs with it
    /// (clap's `requires`).
    fn companions(command: &str, option: &str) -> Vec<&'static str> {
        let mut args = match command {
            "alloc" => vec!["out-of-bounds"],
            "trace" if !["pid", "cgroup"].contains(&option) => vec!["--pid", "1"],
            _ => Vec::new(),
        };
        args.extend(match option {
            "pages" => &["--pid", "1"][..],
            "pid" if command == "top" => &["--pages"][..],
            "per_pid" | "max_series" | "quiet" => &["--listen", "127.0.0.1:0"][..],
            "then_write" => &["--read"][..],
            "debug_empty_fault_programs" => &["--counters-only"][..],
            // --sort fault-time needs it.
            "sort" if command == "top" => &["--durations"][..],
            // --pid leaves durations off unless asked.
            "weight" => &["--format", "folded", "--durations"][..],
            "min_duration" => &["--durations"][..],
            _ => &[][..],
        });
        args
    }

    /// Each command's help offers only what it accepts: every option it lists, with each of
    /// its values, makes a request (`demo top --help` once offered --stacks and --format
    /// folded, then refused them).
    #[test]
    fn every_option_a_command_lists_is_accepted_by_it() {
        use clap::CommandFactory as _;
        let mut cli = Cli::command();
        cli.build();
        for command in ["alloc", "trace", "top"] {
            let sub = cli.find_subcommand(command).unwrap();
            for arg in sub.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if arg.is_hide_set() || ["help", "list"].contains(&long) {
                    continue;
                }
                let values = if arg.get_num_args().is_some_and(|n| n.takes_values()) {
                    sample(arg).into_iter().map(Some).collect()
                } else {
                    vec![None]
                };
                for value in values {
                    let mut args = vec![command.to_owned(), format!("--{long}")];
                    args.extend(value.clone());
                    args.extend(
                        companions(command, arg.get_id().as_str())
                            .iter()
                            .map(|a| (*a).to_owned()),
                    );
                    if value
                        .as_deref()
                        .is_some_and(|v| ["json", "folded", "chrome-trace", "pprof"].contains(&v))
                    {
                        args.extend(["-o".to_owned(), "report.out".to_owned()]);
                    }
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let parsed =
                        Cli::try_parse_from(std::iter::once("demo").chain(args.iter().copied()));
                    let accepted = parsed
                        .map_err(|error| error.to_string())
                        .and_then(|cli| cli.request().map_err(|refusal| refusal.to_string()));
                    // A cgroup is resolved as the request is made, and this test makes none:
                    // the one refusal allowed is that its PATH names none here.
                    if long == "cgroup" {
                        let unresolved = CgroupScope::resolve("1").unwrap_err().to_string();
                        assert_eq!(accepted.err(), Some(unresolved), "demo {}", args.join(" "));
                        continue;
                    }
                    assert!(
                        accepted.is_ok(),
                        "demo {}: {:?}",
                        args.join(" "),
                        accepted.err()
                    );
                }
            }
        }
    }
}
