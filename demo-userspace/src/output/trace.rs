//! Output of `demo trace`: one line per event as it happens, then a summary per region and
//! per process; in text or in the JSON Lines schema of `demo alloc`.

use std::io::{self, Write};

use super::{
    BatchWrite, Format, JsonLines,
    duration::human,
    escape::escape,
    lines::{
        CodeJson, FaultLine, ProcessLine, RegionEndLine, RegionLine, RegionSummaryLine, SCENARIO,
        SignalLine, SyscallLine, TraceLine, TraceSummaryLine,
    },
    trace_durations_text::Listed,
    trace_summary_text::write_summary,
    trace_text::{LineWidth, ProcessNames, time_ms, write_lines},
};
use crate::{
    model::signals::{si_code_name, signal_name},
    trace::{
        TraceOutput, TraceStart, TraceSummary,
        session::{Session, TraceEvent, TracedFault},
    },
};

/// The trace's output in `format`: text at `width`, and folded stacks weighed by `weight`.
pub fn output<'a>(
    format: Format,
    width: LineWidth,
    weight: super::folded::Weight,
    out: impl BatchWrite + 'a,
) -> Box<dyn TraceOutput + 'a> {
    match format {
        Format::Text => Box::new(TextTrace {
            out,
            start: None,
            width,
            names: ProcessNames::default(),
        }),
        Format::Json => Box::new(JsonTrace {
            out: JsonLines::new(out),
            codes: CodeJson::default(),
            start: None,
        }),
        Format::Folded => Box::new(super::folded::FoldedTrace::weighted(out, weight)),
        Format::ChromeTrace => Box::new(super::chrome::ChromeTrace::new(out)),
        Format::Pprof => Box::new(super::pprof::PprofTrace::new(out)),
    }
}

/// What one heap call costs the traced process with the uprobes on, as `cargo xtask bench`
/// measured it on this kind of machine (its "heap call" rows).
pub const HEAP_CALL_COST: &str = "8 to 10 us per call (cargo xtask bench)";

/// The text trace. Each line is written when its event is known whole: a fault at its
/// completion, or once its thread's next record (or its exit, or 50 ms of quiet) shows it
/// ended without one, a syscall at its return; TIME_MS is when it began. So one thread's lines are in time order, and the lines of
/// threads that ran at once may be out of it by as long as a fault or a call took to end.
struct TextTrace<W> {
    out: W,
    /// What the trace watches, once it started: the time its events are relative to, and
    /// which faults are listed.
    start: Option<TraceStart>,
    width: LineWidth,
    /// The command of each process whose faults are listed, named once.
    names: ProcessNames,
}

impl<W: Write> TextTrace<W> {
    /// The columns every event line starts with: milliseconds since the start, pid, tid.
    fn prefix(&self, timestamp_ns: u64, pid: u32, tid: u32) -> String {
        format!("{} {pid:>7} {tid:>7}", self.time(timestamp_ns))
    }

    /// Milliseconds since the start, in the time column.
    fn time(&self, timestamp_ns: u64) -> String {
        time_ms(
            timestamp_ns,
            self.start.as_ref().map_or(0, |start| start.start_ns),
        )
    }

    /// `head`, then `text` wrapped at words to the trace's width.
    fn line(&mut self, head: &str, text: &str) -> io::Result<()> {
        let lines = self.width.wrap(&format!("{head} "), text);
        write_lines(&mut self.out, &lines)
    }

    /// A header line, `# ` and the text wrapped at words.
    fn comment(&mut self, text: &str) -> io::Result<()> {
        let lines = self.width.wrap_under("# ", "#   ", text);
        write_lines(&mut self.out, &lines)
    }
}

impl<W: Write> TraceOutput for TextTrace<W> {
    fn started(&mut self, start: &TraceStart) -> io::Result<()> {
        self.start = Some(start.clone());
        let what = match (&start.command, start.pid, &start.cgroup) {
            (Some(cmd), Some(pid), _) => format!("{} (pid {pid})", escape(cmd)),
            (None, Some(pid), _) => format!("pid {pid}"),
            (_, None, cgroup) => format!(
                "every process in cgroup {} and below it",
                escape(cgroup.as_deref().unwrap_or("?"))
            ),
        };
        self.comment(&format!(
            "tracing {what}{}",
            if start.follow {
                " and its children"
            } else {
                ""
            }
        ))?;
        if start.source.is_fallback() {
            self.comment(
                "this kernel has no exceptions tracepoints: faults come from the PAGE_FAULTS perf event",
            )?;
        } else {
            self.comment(&format!("faults from the {} source", start.source.name()))?;
        }
        if let Some(libc) = &start.heap_probes {
            self.comment(&format!(
                "heap regions from uprobes on {}, in the traced processes only",
                escape(libc)
            ))?;
            self.comment(&format!(
                "each malloc/calloc/realloc/free there now traps to the kernel, about {HEAP_CALL_COST}; --no-heap turns this off"
            ))?;
        } else if start.heap_blocks_off {
            self.comment(&format!(
                "heap blocks are not tracked: uprobes would cost every malloc/free of {} about {HEAP_CALL_COST}; --heap turns them on",
                start.pid.map_or_else(|| "the traced processes".to_owned(), |pid| format!("pid {pid}"))
            ))?;
        }
        for unseen in &start.unseen {
            self.comment(unseen.says())?;
        }
        if let Some(graph) = start.call_graph {
            self.comment(&super::stacks_text::call_graph_says(graph))?;
        }
        if let Some(min) = start.min_duration {
            self.comment(&format!(
                "only faults that took {} or more are listed (--min-duration); the summary \
                 counts every fault",
                human(u64::try_from(min.as_nanos()).unwrap_or(u64::MAX))
            ))?;
        }
        let header = self.width.header();
        write_lines(&mut self.out, &header)?;
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        match event {
            TraceEvent::Fault(traced) if !listed(self.start.as_ref(), traced) => Ok(()),
            TraceEvent::Fault(traced) => {
                // The start line names the command demo started by its command line.
                let started = self.start.as_ref().filter(|start| start.command.is_some());
                if started.and_then(|start| start.pid) != Some(traced.fault.fault.pid)
                    && let Some(name) = self.names.name(traced)
                {
                    self.comment(&name)?;
                }
                let time = self.time(traced.fault.fault.timestamp_ns);
                let mut lines = self.width.fault(&time, traced);
                lines.extend(self.width.stack(traced.stack.as_ref()));
                write_lines(&mut self.out, &lines)
            }
            TraceEvent::Syscall(call) => {
                let head = self.prefix(call.timestamp_ns, call.pid, call.tid);
                self.line(&head, &format!("syscall {}", call.describe()))
            }
            TraceEvent::Signal(signal) => {
                let head = self.prefix(signal.timestamp_ns, signal.pid, signal.tid);
                self.line(
                    &head,
                    &format!(
                        "signal {} si_code {} to tid {}",
                        signal_name(signal.signal),
                        si_code_name(signal.signal, signal.code),
                        signal.target_tid
                    ),
                )
            }
            TraceEvent::RegionStarted(tracked) => {
                let region = &tracked.region;
                let head = format!("{:>10} {:>7} {:>7}", "", tracked.pid, "");
                self.line(
                    &head,
                    &format!(
                        "region {} = {:#x}, {} bytes ({}), {} pages",
                        escape(&region.name),
                        region.start,
                        region.len,
                        tracked.origin.as_str(),
                        region.page_count()
                    ),
                )
            }
            TraceEvent::RegionEnded(tracked) => {
                let head = format!("{:>10} {:>7} {:>7}", "", tracked.pid, "");
                self.line(
                    &head,
                    &format!("region {} ended", escape(&tracked.region.name)),
                )
            }
            TraceEvent::ProcessForked { pid, parent } => writeln!(
                self.out,
                "{:>10} {parent:>7} {:>7} forked pid {pid}, now traced",
                "", ""
            ),
            TraceEvent::ProcessExited { pid } => {
                writeln!(self.out, "{:>10} {pid:>7} {:>7} exited", "", "")
            }
        }
    }

    fn summary(&mut self, summary: &TraceSummary, session: &Session) -> io::Result<()> {
        let start = self.start.as_ref();
        write_summary(
            &mut self.out,
            self.width,
            summary,
            session,
            start.is_some_and(|start| start.heap_probes.is_some()),
            Listed {
                start_ns: start.map_or(0, |start| start.start_ns),
                min_duration: start.and_then(|start| start.min_duration),
            },
        )?;
        self.out.flush()
    }
}

/// True when a sink that lists faults lists `traced`: every fault, or with `--min-duration`
/// only those that took that long.
fn listed(start: Option<&TraceStart>, traced: &TracedFault) -> bool {
    start.is_none_or(|start| start.lists(traced))
}

struct JsonTrace<W: BatchWrite> {
    out: JsonLines<W>,
    codes: CodeJson,
    /// What the trace watches, once it started: which faults are listed.
    start: Option<TraceStart>,
}

impl<W: BatchWrite> TraceOutput for JsonTrace<W> {
    fn started(&mut self, start: &TraceStart) -> io::Result<()> {
        self.start = Some(start.clone());
        self.out.line(&TraceLine::Trace(start.into()))?;
        // The start line tells a waiting script that the probes are attached.
        self.out.flush()
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        let line = match event {
            TraceEvent::Fault(traced) if !listed(self.start.as_ref(), traced) => return Ok(()),
            TraceEvent::Fault(traced) => {
                return self.out.line_with(|line| {
                    FaultLine::of_traced(SCENARIO, traced).write_json(line, &mut self.codes)
                });
            }
            TraceEvent::Syscall(call) => TraceLine::Syscall(SyscallLine::new(SCENARIO, None, call)),
            TraceEvent::Signal(signal) => {
                TraceLine::Signal(SignalLine::generated(SCENARIO, None, signal))
            }
            TraceEvent::RegionStarted(tracked) => TraceLine::Region(RegionLine::new(
                SCENARIO,
                Some(tracked.pid),
                &tracked.region,
                tracked.origin.as_str(),
            )),
            TraceEvent::RegionEnded(tracked) => TraceLine::RegionEnd(RegionEndLine::new(tracked)),
            TraceEvent::ProcessForked { pid, parent } => {
                TraceLine::Process(ProcessLine::forked(*pid, *parent))
            }
            TraceEvent::ProcessExited { pid } => TraceLine::Process(ProcessLine::exited(*pid)),
        };
        self.out.line(&line)
    }

    fn summary(&mut self, summary: &TraceSummary, session: &Session) -> io::Result<()> {
        for (tracked, pages, faults) in session.region_states() {
            self.out
                .line(&TraceLine::RegionSummary(RegionSummaryLine::new(
                    tracked, pages, faults,
                )))?;
        }
        self.out
            .line(&TraceLine::Summary(TraceSummaryLine::new(summary)))?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::output::folded::Weight;
    use crate::{
        kernel::{probes::FaultSourceInUse, symbols::Code},
        output::fixtures::{classified, region},
        trace::{RecordCount, Rusage, TraceSummary, regions::RegionTracker, session::TracedFault},
    };

    fn summary(records: &[(&'static str, RecordCount)], lost: u64, gap: u64) -> TraceSummary {
        TraceSummary::fixture(10, records, lost, gap)
    }

    /// The start of a trace of `command` (pid 100), from 0 ns, without heap probes.
    fn trace_start(command: &str) -> TraceStart {
        TraceStart {
            pid: Some(100),
            cgroup: None,
            command: Some(command.to_owned()),
            source: FaultSourceInUse::Tracepoints,
            heap_probes: None,
            heap_blocks_off: false,
            follow: false,
            unseen: Vec::new(),
            start_ns: 0,
            min_duration: None,
            call_graph: None,
        }
    }

    fn session() -> Session {
        let system = crate::trace::fake_system::FakeSystem::default();
        Session::new(RegionTracker::new(true, 4096, 4, 4096), system.view())
    }

    /// A process and its files named to retitle the terminal and forge a line, everywhere the
    /// trace's text names them: the command, the mapping, the region and the code.
    #[test]
    fn hostile_names_reach_the_text_escaped_on_their_own_lines() {
        let region = region();
        let location = region.locate(region.start + 6000).unwrap();
        let fault = TracedFault {
            fault: classified(region.start + 6000, 6),
            mapping: Arc::from("/tmp/a\x1b]2;x\x07\nb"),
            mapping_offset: 0x1000,
            region: Some((1, Arc::from("r\x1b[2J\n"), location)),
            code: Arc::new(Code {
                module: Some("/tmp/a\x1b]2;x\x07\nb".to_owned()),
                symbol: Some("f\x1b[31m".to_owned()),
                offset: 0x10,
                ..Code::default()
            }),
            stack: None,
            command: None,
        };
        let mut out = Vec::new();
        {
            let mut trace = output(Format::Text, LineWidth::Wide, Weight::Faults, &mut out);
            trace
                .started(&trace_start("./a\x1b]2;x\x07\nb arg"))
                .unwrap();
            trace.event(&TraceEvent::Fault(fault)).unwrap();
            trace.summary(&summary(&[], 0, 0), &session()).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains(['\x1b', '\x07']), "{text:?}");
        assert!(
            text.starts_with("# tracing ./a\\e]2;x\\x07\\nb arg (pid 100)\n"),
            "{text}"
        );
        let faults: Vec<&str> = text
            .lines()
            .filter(|line| line.contains(" minor        - write "))
            .collect();
        assert_eq!(faults.len(), 1, "{text}");
        let words: Vec<&str> = faults[0].split_whitespace().collect();
        assert_eq!(
            words[9..],
            [
                r"r\e[2J\n[1500]",
                "page",
                "1",
                r"/tmp/a\e]2;x\x07\nb@0x1000",
                r"f\e[31m+0x10"
            ],
            "{text}"
        );
    }

    /// A trace's text as a class reads it, at 80 columns: the seed's mmap and its region, a
    /// first touch and a copy-on-write write (PRESENT no, yes), a fault in ld.so whose long
    /// path and a Rust symbol would run past the edge, a stack that ends where the walk left
    /// code, the SIGSEGV, and the summary. No line passes 80 columns, no word is cut, and the
    /// columns stay put.
    #[test]
    fn a_trace_at_80_columns() {
        use crate::{
            kernel::symbols::{EndCause, Stack, StackEnd, StackFrame},
            model::classify::FaultClass,
            model::events::SignalEvent,
            output::fixtures::{code, durations_of, fault, mmap_call, segv, timed},
        };
        let region = region();
        let mut session = session();
        let mut regions = Vec::new();
        session.add_manual_region(100, region.start, region.len, &mut regions);
        let mut first = fault(region.start + 6000, 6, "[anon]", &region);
        first.region = first
            .region
            .map(|(id, _, location)| (id, Arc::from("mmap#4"), location));
        let first = timed(first, 1_400, 0);
        let mut again = timed(first.clone(), 2_100, 0);
        again.fault.fault.error_code = crate::model::access::ErrorCode(7);
        again.fault.fault.timestamp_ns = 2_500_000;
        // A read of a file page the disk had to supply: the thread waited off the CPU.
        let mut major = fault(0x7f4a_2c00_0000, 4, "/data/input.bin", &region);
        major = timed(major, 1_900_000, 1_750_000);
        major.fault.class = FaultClass::Major;
        major.fault.fault.timestamp_ns = 2_800_000;
        // The write through a null pointer, which never completes.
        let mut error = fault(0, 6, "[unknown]", &region);
        error.fault.class = FaultClass::Error;
        error.fault.fault.timestamp_ns = 3_050_000;
        let mut loader = fault(
            0x7f4a_2bab_d2c8,
            6,
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            &region,
        );
        loader.fault.fault.timestamp_ns = 3_000_000;
        loader.mapping_offset = 0x3a2c8;
        loader.code = Arc::new(Code {
            module: Some("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".to_owned()),
            symbol: Some(
                "<alloc::vec::Vec<T> as alloc::vec::spec_from_iter_nested::SpecFromIterNested<T,I>>::from_iter"
                    .to_owned(),
            ),
            offset: 0xc6,
            ..Code::default()
        });
        loader.stack = Some(Stack {
            frames: vec![StackFrame {
                address: 0x5555_0000_1000,
                code: code(),
                no_unwind_info: false,
            }],
            end: Some(StackEnd {
                address: 0x6176_5f6d_6172_6170,
                why: EndCause::NoUserAddress,
            }),
        });
        let loader = timed(loader, 12_400, 0);
        let durations = durations_of(
            &[first.clone(), again.clone(), major.clone(), loader.clone()],
            3_000_000,
            50_000_000,
        );
        let mut out = Vec::new();
        {
            let mut trace = output(Format::Text, LineWidth::Columns80, Weight::Faults, &mut out);
            trace
                .started(&TraceStart {
                    heap_probes: Some("/proc/7/root/usr/lib/x86_64-linux-gnu/libc.so.6".to_owned()),
                    ..trace_start("./alloc_mmap")
                })
                .unwrap();
            let events = [TraceEvent::Syscall(mmap_call(&region))]
                .into_iter()
                .chain(regions)
                .chain([
                    TraceEvent::Fault(first),
                    TraceEvent::Fault(again),
                    TraceEvent::Fault(major),
                    TraceEvent::Fault(loader),
                    TraceEvent::Fault(error),
                    TraceEvent::Signal(SignalEvent {
                        timestamp_ns: 3_100_000,
                        ..segv()
                    }),
                    TraceEvent::ProcessExited { pid: 100 },
                ]);
            for event in events {
                trace.event(&event).unwrap();
            }
            // The kernel counted 16: the trace completed 11, of which 4 are the program's (the
            // faults above but the error) and 7 demo's own; the other 5 are get_user_pages'.
            let mut summary = TraceSummary::fixture(11, &[], 0, 4);
            (
                summary.faults_total,
                summary.minor,
                summary.major,
                summary.error,
            ) = (5, 3, 1, 1);
            summary.rusage = summary.rusage.map(|rusage| Rusage {
                majflt: 1,
                user_ns: 2_000_000,
                system_ns: 1_000_000,
                ..rusage
            });
            summary.durations = Some(durations);
            summary.demo_own = crate::trace::own::DemoOwn {
                faults_before_exec: 6,
                uprobes_page_faults: 1,
                ptrace_stop_signals: 1,
            };
            trace.summary(&summary, &session).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "{line:?}");
        }
        insta::assert_snapshot!(text);
    }

    /// `--min-duration 1ms`: the text and the JSON lines list only the faults of 1 ms or more
    /// (not an untimed one), while the summary, made from every fault, counts them all.
    #[test]
    fn min_duration_lists_only_slower_faults_and_the_summary_counts_all() {
        use crate::{
            model::classify::FaultClass,
            output::fixtures::{durations_of, fault, timed},
        };
        let region = region();
        let at = |n: u64, ns: Option<u64>| {
            let mut traced = fault(region.start + n * 4096, 6, "[anon]", &region);
            traced.fault.fault.timestamp_ns = n * 1_000_000;
            match ns {
                Some(ns) => timed(traced, ns, 0),
                None => {
                    traced.fault.class = FaultClass::Error;
                    traced
                }
            }
        };
        let faults = [
            at(0, Some(999_999)),
            at(1, Some(1_000_000)),
            at(2, Some(3_000)),
            at(3, None),
            at(4, Some(2_500_000)),
        ];
        let start = TraceStart {
            min_duration: Some(std::time::Duration::from_millis(1)),
            ..trace_start("./prog")
        };
        let mut summary = summary(&[], 0, 0);
        (summary.faults_total, summary.minor, summary.error) = (5, 4, 1);
        summary.durations = Some(durations_of(&faults, 10_000_000, 20_000_000));
        let written = |format, width| {
            let mut out = Vec::new();
            {
                let mut trace = output(format, width, Weight::Faults, &mut out);
                trace.started(&start).unwrap();
                for traced in &faults {
                    trace.event(&TraceEvent::Fault(traced.clone())).unwrap();
                }
                trace.summary(&summary, &session()).unwrap();
            }
            String::from_utf8(out).unwrap()
        };
        let json = written(Format::Json, LineWidth::Columns80);
        let lines: Vec<serde_json::Value> = (json.lines())
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let listed: Vec<_> = (lines.iter())
            .filter(|line| line["kind"] == "fault")
            .map(|line| line["duration_ns"].as_u64().unwrap())
            .collect();
        assert_eq!(listed, [1_000_000, 2_500_000], "{json}");
        let last = lines.last().unwrap();
        assert_eq!(last["kind"], "summary");
        assert_eq!(
            (last["minor"].as_u64(), last["error"].as_u64()),
            (Some(4), Some(1))
        );
        let durations = &last["durations"];
        assert_eq!(durations["timed_faults"], 4, "{durations}");
        assert_eq!(durations["by_class"]["minor"]["count"], 4, "{durations}");
        assert_eq!(durations["total_ns"], 4_502_999, "{durations}");
        let slowest: Vec<_> = (durations["slowest"].as_array().unwrap().iter())
            .map(|fault| fault["duration_ns"].as_u64().unwrap())
            .collect();
        assert_eq!(slowest, [2_500_000, 1_000_000, 999_999, 3_000]);

        let text = written(Format::Text, LineWidth::Columns80);
        let listed: Vec<&str> = (text.lines())
            .take_while(|line| !line.starts_with("regions"))
            .filter(|line| line.contains(" minor ") || line.contains(" error "))
            .collect();
        assert_eq!(listed.len(), 2, "{text}");
        assert!(listed[0].contains(" minor   1.0 ms "), "{text}");
        assert!(listed[1].contains(" minor   2.5 ms "), "{text}");
        assert!(
            text.contains(
                "\n# only faults that took 1.0 ms or more are listed (--min-duration); the \
                 summary\n#   counts every fault\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("\nminor faults: 4 timed, total 4.5 ms, max 2.5 ms\n"),
            "{text}"
        );
    }

    /// The loader stopped for seconds: N fault records lost, rusage N + 5 more than traced.
    /// The text says the difference holds the lost faults and leaves 5 to get_user_pages.
    #[test]
    fn the_difference_with_rusage_takes_the_lost_faults_out_first() {
        let lost = RecordCount {
            delivered: 10,
            dropped: 864_798,
        };
        let mut out = Vec::new();
        output(Format::Text, LineWidth::Columns80, Weight::Faults, &mut out)
            .summary(&summary(&[("fault", lost)], 864_798, 864_803), &session())
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("\nLOST: the ring buffer was full; dropped 864798 fault records\n"),
            "{text}"
        );
        // The sentence wraps at 80 columns, its lines after the first indented.
        let start = text
            .find("\ndifference ")
            .unwrap_or_else(|| panic!("no difference line: {text}"));
        let difference = (text[start + 1..].lines())
            .enumerate()
            .take_while(|(at, line)| *at == 0 || line.starts_with("  "))
            .map(|(_, line)| line.trim())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            text.lines().all(|line| line.chars().count() <= 80),
            "{text}"
        );
        assert!(
            difference.starts_with(
                "difference 864803: it includes the faults of the 864798 fault records lost \
                 (the ring buffer was full); the other 5 are faults the kernel took on the \
                 process's behalf through get_user_pages"
            ),
            "{difference}"
        );
    }
}
