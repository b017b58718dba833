//! `--format chrome-trace`: the Trace Event Format, which the Perfetto UI, chrome://tracing and
//! the Firefox Profiler open. A track per thread with a complete event per timed fault, lasting
//! its duration (an instant for a fault that was not timed), syscalls as complete events, a
//! counter per region of its resident pages, process forks, exits and signals, and a walk's
//! steps as slices; times in microseconds from the first event.

use std::{collections::HashMap, io};

use serde::Serialize;
use serde_json::{Value, json};

use super::{code::describe, trace_text::frame_lines};
use crate::{
    kernel::symbols::Stack,
    model::classify::ClassifiedFault,
    model::region::Region,
    model::signals::signal_name,
    model::syscalls::SyscallCall,
    trace::session::{Session, TraceEvent},
    trace::{TraceOutput, TraceStart, TraceSummary},
    walk::Reporter,
    walk::plan::{Allocator, ScenarioName},
    walk::scenario::{Summary, WalkResult},
    walk::step_report::StepReport,
};

/// One event of the Trace Event Format.
#[derive(Serialize)]
struct Event {
    name: String,
    /// `i` instant, `X` complete, `C` counter, `M` metadata.
    ph: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'static str>,
    /// Microseconds from the first event.
    ts: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    pid: u32,
    tid: u32,
    /// An instant's scope: `t` its thread, `p` its process, `g` the whole trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    #[serde(skip_serializing_if = "Value::is_null")]
    args: Value,
}

/// The name of a track whose process's command is not known (yet).
const UNNAMED: &str = "pid";

/// Writes the events as they come, inside `{"traceEvents":[…]}`, closed by the summary.
pub struct ChromeTrace<W: io::Write> {
    out: W,
    /// CLOCK_MONOTONIC ns of time 0: the trace's start, or a walk's first step.
    base_ns: Option<u64>,
    /// The latest time written, for events that have no time of their own.
    last_us: f64,
    written: usize,
    /// Each region's resident pages as last written, by region id (a walk's is 0).
    resident: HashMap<usize, u64>,
    /// Threads and processes already named, each with whether by a command (not yet when
    /// named [`UNNAMED`]).
    named: HashMap<(u32, u32), bool>,
    named_processes: HashMap<u32, bool>,
    /// The walks' faults and losses so far, for the closing summary.
    walked: (u32, u64, u64),
}

impl<W: io::Write> ChromeTrace<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            base_ns: None,
            last_us: 0.0,
            written: 0,
            resident: HashMap::new(),
            named: HashMap::new(),
            named_processes: HashMap::new(),
            walked: (0, 0, 0),
        }
    }

    /// Microseconds from time 0; the first time seen is time 0 when nothing set it.
    fn micros(&mut self, ns: u64) -> f64 {
        let base = *self.base_ns.get_or_insert(ns);
        let us = ns.saturating_sub(base) as f64 / 1000.0;
        self.last_us = self.last_us.max(us);
        us
    }

    fn write(&mut self, event: &Event) -> io::Result<()> {
        let separator = if self.written == 0 {
            "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
        } else {
            ",\n"
        };
        self.out.write_all(separator.as_bytes())?;
        serde_json::to_writer(&mut self.out, event)?;
        self.written += 1;
        Ok(())
    }

    fn instant(
        &mut self,
        name: String,
        cat: &'static str,
        (pid, tid): (u32, u32),
        ts: f64,
        scope: &'static str,
        args: Value,
    ) -> io::Result<()> {
        self.write(&Event {
            name,
            ph: "i",
            cat: Some(cat),
            ts,
            dur: None,
            pid,
            tid,
            s: Some(scope),
            args,
        })
    }

    /// Names a thread's track the first time it appears, and its process's with the first of
    /// its threads; names them again by `name` when they were named [`UNNAMED`] before it was
    /// known (a cgroup's process whose first event was no fault).
    fn name_thread(&mut self, pid: u32, tid: u32, name: &str) -> io::Result<()> {
        let by_command = name != UNNAMED;
        let unnamed = |named: Option<&bool>| named.is_none_or(|&had| by_command && !had);
        if unnamed(self.named_processes.get(&pid)) {
            self.named_processes.insert(pid, by_command);
            self.metadata("process_name", pid, pid, format!("{name} {pid}"))?;
        }
        if unnamed(self.named.get(&(pid, tid))) {
            self.named.insert((pid, tid), by_command);
            self.metadata("thread_name", pid, tid, format!("{name} {tid}"))?;
        }
        Ok(())
    }

    fn metadata(&mut self, kind: &str, pid: u32, tid: u32, name: String) -> io::Result<()> {
        self.write(&Event {
            name: kind.to_owned(),
            ph: "M",
            cat: None,
            ts: 0.0,
            dur: None,
            pid,
            tid,
            s: None,
            args: json!({ "name": name }),
        })
    }

    /// A fault as a complete event from its start to its completion, so a slow fault is as
    /// long on the timeline as it was; one that was not timed (an error fault never completes,
    /// or durations were off) as an instant at its start.
    fn fault(&mut self, fault: &ClassifiedFault, args: Value) -> io::Result<()> {
        let raw = &fault.fault;
        let ts = self.micros(raw.timestamp_ns);
        let name = format!(
            "{} {}",
            fault.class.as_str(),
            raw.error_code.access().as_str()
        );
        let Some(timing) = fault.timing else {
            return self.instant(name, "fault", (raw.pid, raw.tid), ts, "t", args);
        };
        // The duration itself, not the difference of two times from 0, which would lose
        // nanoseconds to the float's precision late in a long trace.
        self.micros(raw.timestamp_ns + timing.duration_ns);
        self.write(&Event {
            name,
            ph: "X",
            cat: Some("fault"),
            ts,
            dur: Some(timing.duration_ns as f64 / 1000.0),
            pid: raw.pid,
            tid: raw.tid,
            s: None,
            args,
        })
    }

    fn syscall(&mut self, call: &SyscallCall) -> io::Result<()> {
        let ts = self.micros(call.timestamp_ns);
        let end = self.micros(call.timestamp_ns + call.duration_ns);
        self.write(&Event {
            name: call.syscall.name().to_owned(),
            ph: "X",
            cat: Some("syscall"),
            ts,
            dur: Some(end - ts),
            pid: call.pid,
            tid: call.tid,
            s: None,
            args: json!({ "call": call.describe() }),
        })
    }

    /// A region's resident pages, when they changed since last written.
    fn counter(
        &mut self,
        id: usize,
        pid: u32,
        name: &str,
        resident: u64,
        ts: f64,
    ) -> io::Result<()> {
        if self.resident.insert(id, resident) == Some(resident) {
            return Ok(());
        }
        self.write(&Event {
            name: format!("resident pages {name}"),
            ph: "C",
            cat: Some("region"),
            ts,
            dur: None,
            pid,
            tid: pid,
            s: None,
            args: json!({ "resident": resident }),
        })
    }

    /// Closes the array and the object.
    fn close(&mut self, pid: u32, args: Value) -> io::Result<()> {
        let ts = self.last_us;
        self.instant("summary".to_owned(), "trace", (pid, pid), ts, "g", args)?;
        self.out.write_all(b"\n]}\n")?;
        self.out.flush()
    }
}

fn fault_args(
    address: u64,
    mapping: &str,
    region: Option<(&str, i64, u64)>,
    fault: &ClassifiedFault,
    (code, stack): (&crate::kernel::symbols::Code, Option<&Stack>),
) -> Value {
    // The stack as text, innermost first, as the text trace lists it: a timeline shows args
    // as they are, and a frame's whole code object would bury the fault's own fields.
    let frames = stack.map(|stack| {
        frame_lines(Some(stack))
            .into_iter()
            .map(|(head, text)| format!("{}{text}", head.trim_start_matches('#')))
            .collect::<Vec<_>>()
    });
    json!({
        "address": format!("{address:#x}"),
        "mapping": mapping,
        "region": region.map(|(name, _, _)| name),
        "index": region.map(|(_, index, _)| index),
        "page": region.map(|(_, _, page)| page),
        "class": fault.class.as_str(),
        "access": fault.fault.error_code.access().as_str(),
        "present": fault.fault.error_code.present(),
        "code": describe(code),
        "duration_ns": fault.timing.map(|timing| timing.duration_ns),
        "time": fault.timing.map(|timing| json!({
            "on_cpu_ns": timing.on_cpu_ns(),
            "off_cpu_ns": timing.off_cpu_ns,
            "reclaim_ns": timing.reclaim_ns,
            "compaction_ns": timing.compaction_ns,
        })),
        "stack": frames,
    })
}

impl<W: io::Write> TraceOutput for ChromeTrace<W> {
    fn started(&mut self, start: &TraceStart) -> io::Result<()> {
        self.base_ns = Some(start.start_ns);
        let Some(pid) = start.pid else {
            // A cgroup's processes name their tracks at their first events.
            return Ok(());
        };
        let name = start.command.clone().unwrap_or_else(|| UNNAMED.to_owned());
        self.name_thread(pid, pid, &name)
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        match event {
            TraceEvent::Fault(traced) => {
                let raw = &traced.fault.fault;
                self.name_thread(
                    raw.pid,
                    raw.tid,
                    traced.command.as_deref().unwrap_or(UNNAMED),
                )?;
                let region = traced
                    .region
                    .as_ref()
                    .map(|(_, name, location)| (&**name, location.index, location.page));
                let args = fault_args(
                    raw.address,
                    &traced.mapping,
                    region,
                    &traced.fault,
                    (&traced.code, traced.stack.as_ref()),
                );
                self.fault(&traced.fault, args)
            }
            TraceEvent::Syscall(call) => {
                self.name_thread(call.pid, call.tid, UNNAMED)?;
                self.syscall(call)
            }
            TraceEvent::Signal(signal) => {
                let ts = self.micros(signal.timestamp_ns);
                self.instant(
                    signal_name(signal.signal),
                    "signal",
                    (signal.target_tid, signal.target_tid),
                    ts,
                    "p",
                    json!({ "code": signal.code }),
                )
            }
            TraceEvent::ProcessForked { pid, parent } => {
                let ts = self.last_us;
                self.name_thread(*pid, *pid, UNNAMED)?;
                self.instant(
                    "fork".to_owned(),
                    "process",
                    (*pid, *pid),
                    ts,
                    "p",
                    json!({ "parent": parent }),
                )
            }
            TraceEvent::ProcessExited { pid } => {
                let ts = self.last_us;
                self.instant(
                    "exit".to_owned(),
                    "process",
                    (*pid, *pid),
                    ts,
                    "p",
                    Value::Null,
                )
            }
            TraceEvent::RegionStarted(_) | TraceEvent::RegionEnded(_) => Ok(()),
        }
    }

    fn pages(&mut self, session: &Session) -> io::Result<()> {
        let ts = self.last_us;
        let states: Vec<(usize, u32, String, u64)> = session
            .region_states()
            .map(|(tracked, pages, _)| {
                (
                    tracked.id,
                    tracked.pid,
                    tracked.region.name.to_string(),
                    pages.resident_count(),
                )
            })
            .collect();
        for (id, pid, name, resident) in states {
            self.counter(id, pid, &name, resident, ts)?;
        }
        Ok(())
    }

    fn summary(&mut self, summary: &TraceSummary, session: &Session) -> io::Result<()> {
        self.pages(session)?;
        // A global instant spans every track; a cgroup's trace has no one process to name.
        self.close(
            summary.pid.unwrap_or(0),
            json!({ "faults_total": summary.faults_total, "lost": summary.lost }),
        )
    }
}

impl<W: io::Write> Reporter for ChromeTrace<W> {
    fn region(&mut self, _: ScenarioName, _: Allocator, _: &Region) -> io::Result<()> {
        Ok(())
    }

    fn step(&mut self, step: &StepReport) -> io::Result<()> {
        let start = self.micros(step.started_ns);
        let end = self.micros(step.ended_ns);
        let pid = step.pid;
        self.walked.0 = pid;
        self.name_thread(pid, pid, &format!("demo alloc {}", step.scenario.as_str()))?;
        self.write(&Event {
            name: format!("step {}: {}", step.step, step.action),
            ph: "X",
            cat: Some("step"),
            ts: start,
            dur: Some(end - start),
            pid,
            tid: pid,
            s: None,
            args: json!({ "faults_in_region": step.faults_in_region().count() }),
        })?;
        for call in &step.syscalls {
            self.syscall(call)?;
        }
        for resolved in &step.faults {
            let raw = &resolved.fault.fault;
            self.name_thread(
                raw.pid,
                raw.tid,
                &format!("demo alloc {}", step.scenario.as_str()),
            )?;
            let region = resolved
                .location()
                .map(|location| (&*step.region.name, location.index, location.page));
            let args = fault_args(
                raw.address,
                &resolved.mapping,
                region,
                &resolved.fault,
                (&resolved.code, resolved.stack.as_ref()),
            );
            self.fault(&resolved.fault, args)?;
        }
        for signal in &step.signals {
            let ts = self.micros(signal.timestamp_ns);
            self.instant(
                signal_name(signal.signal),
                "signal",
                (pid, pid),
                ts,
                "p",
                json!({ "code": signal.code }),
            )?;
        }
        let resident = step.pages.resident_count();
        self.counter(0, pid, &step.region.name, resident, end)
    }

    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        // Several walks share one file, which `finish` closes.
        let (pid, faults, _) = self.walked;
        self.walked = (pid, faults + summary.faults_total, summary.lost);
        Ok(())
    }

    fn comparison(&mut self, _: &[WalkResult]) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        let (pid, faults, lost) = self.walked;
        self.close(pid, json!({ "faults_total": faults, "lost": lost }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        kernel::probes::FaultSourceInUse,
        model::{classify::FaultClass, events::FaultTiming},
        output::fixtures::{fault, region},
        trace::regions::RegionTracker,
    };

    /// The events a trace of `faults` writes, parsed.
    fn chrome_of(faults: Vec<crate::trace::session::TracedFault>) -> Vec<Value> {
        let system = crate::trace::fake_system::FakeSystem::default();
        let session = Session::new(RegionTracker::new(true, 4096, 4, 4096), system.view());
        let mut out = Vec::new();
        {
            let mut chrome = ChromeTrace::new(&mut out);
            TraceOutput::started(
                &mut chrome,
                &TraceStart {
                    pid: Some(100),
                    cgroup: None,
                    command: Some("./prog".to_owned()),
                    source: FaultSourceInUse::Tracepoints,
                    heap_probes: None,
                    heap_blocks_off: false,
                    follow: false,
                    unseen: Vec::new(),
                    start_ns: 1_000_000,
                    min_duration: None,
                    call_graph: None,
                },
            )
            .unwrap();
            for traced in faults {
                chrome.event(&TraceEvent::Fault(traced)).unwrap();
            }
            let summary = TraceSummary::fixture(2, &[], 0, 0);
            TraceOutput::summary(&mut chrome, &summary, &session).unwrap();
        }
        let file: Value = serde_json::from_slice(&out).unwrap();
        file["traceEvents"].as_array().unwrap().clone()
    }

    /// A fault's stack is in its args, a frame a string as the text trace lists it, with the
    /// frames found without unwind tables and the copy's cut marked; a fault without one has
    /// a null stack.
    #[test]
    fn a_fault_carries_its_stack_in_its_args() {
        let region = region();
        let mut with = fault(region.start + 6000, 6, "[anon]", &region);
        with.stack = Some(crate::output::fixtures::unwound_stack());
        let without = fault(region.start + 9000, 6, "[anon]", &region);
        let events = chrome_of(vec![with, without]);
        let faults: Vec<&Value> = events.iter().filter(|e| e["cat"] == "fault").collect();
        let stack: Vec<&str> = faults[0]["args"]["stack"]
            .as_array()
            .expect("a stack")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(stack.len(), 3, "{stack:?}");
        assert!(
            stack[0]
                .starts_with("0   0x0000555500001000 demo::walk::workload::child::State::perform"),
            "{stack:?}"
        );
        assert!(
            stack[1].ends_with("(no unwind info: its caller found by frame pointer)"),
            "{stack:?}"
        );
        assert!(stack[2].contains("truncated"), "{stack:?}");
        assert_eq!(faults[1]["args"]["stack"], Value::Null);
    }

    /// A timed fault lasts its duration on its thread's track, from its start, with its split
    /// in args; an error fault, which never completed, stays an instant on the thread.
    #[test]
    fn a_timed_fault_is_a_slice_as_long_as_it_took_and_an_error_an_instant() {
        let region = region();
        let mut timed = fault(region.start + 6000, 6, "[anon]", &region);
        timed.fault.fault.timestamp_ns = 3_000_000;
        timed.fault.class = FaultClass::Major;
        timed.fault.timing = Some(FaultTiming {
            duration_ns: 1_900_500,
            off_cpu_ns: Some(1_800_000),
            reclaim_ns: 20_000,
            compaction_ns: 500,
        });
        let mut error = fault(region.start + 30_000, 6, "[anon]", &region);
        error.fault.fault.timestamp_ns = 5_000_250;
        error.fault.class = FaultClass::Error;
        let events = chrome_of(vec![timed, error]);
        let faults: Vec<&Value> = events.iter().filter(|e| e["cat"] == "fault").collect();
        assert_eq!(faults.len(), 2, "{events:?}");
        let (slice, instant) = (faults[0], faults[1]);
        assert_eq!(slice["name"], "major write");
        assert_eq!(slice["ph"], "X");
        assert_eq!(slice["ts"], 2000.0);
        assert_eq!(slice["dur"], 1900.5);
        assert_eq!(
            (slice["pid"].as_u64(), slice["tid"].as_u64()),
            (Some(100), Some(100))
        );
        assert!(slice.get("s").is_none(), "{slice}");
        assert_eq!(slice["args"]["duration_ns"], 1_900_500);
        assert_eq!(
            slice["args"]["time"],
            json!({
                "on_cpu_ns": 80_000,
                "off_cpu_ns": 1_800_000,
                "reclaim_ns": 20_000,
                "compaction_ns": 500,
            })
        );
        assert_eq!(instant["name"], "error write");
        assert_eq!(instant["ph"], "i");
        assert_eq!(instant["s"], "t");
        assert_eq!(instant["ts"], 4000.25);
        assert!(instant.get("dur").is_none(), "{instant}");
        assert!(instant["args"]["duration_ns"].is_null(), "{instant}");
        assert!(instant["args"]["time"].is_null(), "{instant}");
        // The summary comes after the slice has ended, never inside it.
        let summary = events.last().unwrap();
        assert_eq!(summary["name"], "summary");
        assert_eq!(summary["ts"], 4000.25);
    }

    /// Without durations every fault is an instant, as before, and says it was not timed; a
    /// fault whose split the kernel missed lasts its duration, its split unknown (null).
    #[test]
    fn untimed_faults_stay_instants_and_an_unknown_split_is_null() {
        let region = region();
        let mut unsplit = fault(region.start + 4096, 6, "[anon]", &region);
        unsplit.fault.fault.timestamp_ns = 2_000_000;
        unsplit.fault.timing = Some(FaultTiming {
            duration_ns: 1_400,
            off_cpu_ns: None,
            reclaim_ns: 0,
            compaction_ns: 0,
        });
        let events = chrome_of(vec![fault(region.start, 6, "[anon]", &region), unsplit]);
        let faults: Vec<&Value> = events.iter().filter(|e| e["cat"] == "fault").collect();
        let (untimed, unsplit) = (faults[0], faults[1]);
        assert_eq!(
            (untimed["ph"].as_str(), untimed["s"].as_str()),
            (Some("i"), Some("t"))
        );
        assert!(untimed["args"]["duration_ns"].is_null(), "{untimed}");
        assert_eq!(
            (unsplit["ph"].as_str(), unsplit["dur"].as_f64()),
            (Some("X"), Some(1.4))
        );
        assert_eq!(
            unsplit["args"]["time"],
            json!({"on_cpu_ns": null, "off_cpu_ns": null, "reclaim_ns": 0, "compaction_ns": 0})
        );
    }

    /// A cgroup's trace names each process's track by its command, from its first fault; a
    /// track named by its pid alone, at an event that carries no command, is named again by
    /// the command at its first fault, once.
    #[test]
    fn a_cgroup_process_track_is_named_by_its_command() {
        let region = region();
        let mut out = Vec::new();
        {
            let mut chrome = ChromeTrace::new(&mut out);
            let faulted = |chrome: &mut ChromeTrace<_>, pid: u32, command: &str| {
                let mut traced = fault(region.start, 6, "[anon]", &region);
                traced.fault.fault.pid = pid;
                traced.fault.fault.tid = pid;
                traced.command = Some(command.into());
                chrome.event(&TraceEvent::Fault(traced)).unwrap();
            };
            faulted(&mut chrome, 7, "worker");
            chrome
                .event(&TraceEvent::ProcessForked { pid: 8, parent: 7 })
                .unwrap();
            faulted(&mut chrome, 8, "child");
            faulted(&mut chrome, 8, "child");
        }
        let text = String::from_utf8(out).unwrap();
        let file: Value = serde_json::from_str(&format!("{text}]}}")).unwrap();
        let names: Vec<(&str, u64, &str)> = file["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|event| event["ph"] == "M")
            .map(|event| {
                (
                    event["name"].as_str().unwrap(),
                    event["tid"].as_u64().unwrap(),
                    event["args"]["name"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("process_name", 7, "worker 7"),
                ("thread_name", 7, "worker 7"),
                ("process_name", 8, "pid 8"),
                ("thread_name", 8, "pid 8"),
                ("process_name", 8, "child 8"),
                ("thread_name", 8, "child 8"),
            ]
        );
    }
}
