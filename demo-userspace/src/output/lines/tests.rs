//! Every kind of line, from fixed values: snapshots of the bytes, each checked against the
//! schema; and the committed schema held to the one the types make.

use std::sync::Arc;

use super::*;
use crate::{
    kernel::probes::{FaultSourceInUse, ProgramRuns},
    model::pages::PageModel,
    model::signals::ProcessEnd,
    output::fixtures::{
        classified, code, durations_of, fault, mmap_call, page_1_written_in_step_2, region, segv,
        step, summary, timed, vma, write_touch,
    },
    top::{Group, Interval, PageRange, PageReport, Row, Subject},
    trace::functions::FunctionFaults,
    trace::regions::{Origin, TrackedRegion},
    trace::{LoaderCost, RecordCount, Rusage, TraceEnd, TraceStart, TraceSummary},
    walk::lessons::LessonFacts,
    walk::plan::Allocator,
    walk::scenario::{DeathDigest, StepDigest, WalkResult},
    walk::step_report::{AddressCheck, AllocationFacts, Death, KernelView},
};

/// Where the schema is committed.
const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/lines.schema.json");

fn json(line: &impl Serialize) -> String {
    serde_json::to_string(line).expect("a line serializes")
}

/// The lines, one per row, after checking each against the generated schema.
fn checked(lines: &[String]) -> String {
    let validator =
        jsonschema::validator_for(&schema()).expect("the schema is a valid JSON Schema");
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Err(error) = validator.validate(&value) {
            panic!("{line}\ndoes not match the schema: {error}");
        }
    }
    lines.join("\n")
}

#[test]
fn the_committed_schema_is_the_one_the_types_make() {
    let generated = serde_json::to_string_pretty(&schema()).unwrap() + "\n";
    if std::env::var_os("DEMO_UPDATE_SCHEMA").is_some() {
        std::fs::write(SCHEMA_PATH, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(SCHEMA_PATH).unwrap_or_default();
    assert!(
        committed == generated,
        "{SCHEMA_PATH} is out of date: run `DEMO_UPDATE_SCHEMA=1 cargo test -p demo-userspace --lib schema` and commit it"
    );
}

#[test]
fn the_schema_rejects_a_line_that_breaks_it() {
    let validator = jsonschema::validator_for(&schema()).unwrap();
    let region = region();
    let good = json(&TraceLine::Fault(FaultLine::new(
        SCENARIO,
        None,
        (&classified(region.start, 6), &code(), None),
        None,
        "[anon]",
        Some(0),
    )));
    let good: serde_json::Value = serde_json::from_str(&good).unwrap();
    assert!(validator.is_valid(&good));
    for (field, bad) in [
        ("address", serde_json::json!(4096)),
        ("surprise", serde_json::json!(1)),
        ("class", serde_json::json!("huge")),
        ("kind", serde_json::json!("faults")),
    ] {
        let mut line = good.clone();
        line[field] = bad;
        assert!(!validator.is_valid(&line), "{field} = {}", line[field]);
    }
    let mut line = good.clone();
    line.as_object_mut().unwrap().remove("pid");
    assert!(!validator.is_valid(&line), "a line without pid");
}

#[test]
fn every_line_of_a_walk() {
    let region = region();
    let (pages, origin) = page_1_written_in_step_2();
    let kernel = |resident_pages: Vec<u64>| KernelView {
        rss_kib: 4 * resident_pages.len() as u64,
        vma: Some(vma(region.start, 20, 4 * resident_pages.len() as u64)),
        resident_pages,
        ..KernelView::default()
    };
    let mut allocation = step(1, "mmap 20000 bytes", PageModel::new(5), kernel(vec![]));
    allocation.syscalls = vec![mmap_call(&region)];
    allocation.allocation = Some(AllocationFacts {
        allocator: Allocator::Mmap,
        address_check: AddressCheck::Matches,
        guard: Some((region.start + 5 * 4096, true)),
    });
    let mut touch = step(2, "arr[1500] = 2", pages.clone(), kernel(vec![1]));
    touch.faults = vec![
        fault(region.start + 6000, 6, "[anon]", &region),
        fault(0x7ffe_0000_0000, 6, "[stack]", &region),
    ];
    touch.touch = Some(write_touch(&region, 1500, true, Some(origin)));
    touch.signals = vec![segv()];
    // The out-of-bounds walk: its region resolves the page after the array too.
    let mut death = step(3, "arr[5121] = 7", pages, kernel(vec![1]));
    death.region.pages_after = 1;
    let past_the_end = region.start + 5121 * 4;
    death.kernel = None;
    death.death = Some(Death {
        error_code: Some(crate::model::access::ErrorCode(6)),
        status: ProcessEnd::Killed(libc::SIGSEGV),
        wait_signal: Some(libc::SIGSEGV),
        generated: Some(segv()),
        fault: Some((past_the_end, death.region.locate(past_the_end))),
    });
    let summary = summary(1, 2, 0);
    let walks = [WalkResult {
        summary: summary.clone(),
        page_offset: 0,
        vma: Some("[anon]".to_owned()),
        steps: vec![StepDigest {
            action: "mmap 20000 bytes".to_owned(),
            element: None,
            faults_in_region: 0,
            syscalls: vec![mmap_call(&region)],
            rss_kib: Some(0),
        }],
        death: Some(DeathDigest {
            signal: "SIGSEGV".to_owned(),
            si_code: Some("SEGV_ACCERR".to_owned()),
            element: Some(0),
            error_code: Some(7),
            present: Some(true),
            vma: Some("r--p [anon]".to_owned()),
        }),
    }];
    // A lesson's step: the forked child read every page, which the parent had written.
    let mut forked = step(
        4,
        "child: read pages 0-4 of arr",
        page_1_written_in_step_2().0,
        kernel(vec![1]),
    );
    forked.scenario = crate::walk::plan::ScenarioName::ForkCow;
    forked.values = Some(vec![0, 2, 0, 0, 0]);
    forked.lesson = Some(LessonFacts::Fork {
        child: 101,
        same_frames: vec![1],
        own_frames: Vec::new(),
        child_vma: Some(vma(region.start, 20, 4)),
    });
    let resolved = &touch.faults[0];
    let lines = [
        json(&WalkLine::Region(RegionLine::new(
            "mmap",
            None,
            &region,
            Allocator::Mmap.as_str(),
        ))),
        json(&WalkLine::Fault(FaultLine::new(
            "mmap",
            Some(2),
            (&resolved.fault, &resolved.code, None),
            resolved.location().map(|l| (&*region.name, l)),
            &resolved.mapping,
            None,
        ))),
        json(&WalkLine::Syscall(SyscallLine::new(
            "mmap",
            Some(1),
            &allocation.syscalls[0],
        ))),
        json(&WalkLine::Signal(SignalLine::generated(
            "mmap",
            Some(2),
            &segv(),
        ))),
        json(&WalkLine::Signal(SignalLine::death(&death).unwrap())),
        json(&WalkLine::Step(Box::new(StepLine::new(&allocation)))),
        json(&WalkLine::Step(Box::new(StepLine::new(&touch)))),
        json(&WalkLine::Step(Box::new(StepLine::new(&death)))),
        json(&WalkLine::Step(Box::new(StepLine::new(&forked)))),
        json(&WalkLine::Summary((&summary).into())),
        json(&WalkLine::Comparison(ComparisonLine::new(&walks))),
    ];
    insta::assert_snapshot!(checked(&lines));
}

fn tracked(live: bool) -> TrackedRegion {
    TrackedRegion {
        id: 4,
        pid: 100,
        origin: Origin::Mmap,
        region: crate::model::region::Region {
            name: Arc::from("mmap#4"),
            elem_size: 1,
            ..region()
        },
        live,
    }
}

#[test]
fn every_line_of_a_trace() {
    let region = tracked(false);
    let (pages, _) = page_1_written_in_step_2();
    let start = TraceStart {
        pid: Some(100),
        cgroup: None,
        command: Some("./alloc".to_owned()),
        source: FaultSourceInUse::Tracepoints,
        heap_probes: Some("/usr/lib/x86_64-linux-gnu/libc.so.6".to_owned()),
        heap_blocks_off: false,
        follow: true,
        unseen: vec![crate::kernel::executable::Unseen::CompatSyscalls],
        start_ns: 0,
        min_duration: None,
        call_graph: Some(crate::model::call_graph::CallGraph::Dwarf { stack_bytes: 8192 }),
    };
    // Two minor faults of a few microseconds, one major that waited for the disk, one error
    // fault that never completed.
    let array = region.region.clone();
    let mut error = fault(array.start + 12000, 6, "[anon]", &array);
    error.fault.class = crate::model::classify::FaultClass::Error;
    let mut major = timed(
        fault(array.start + 100, 4, "/data/input", &array),
        1_900_000,
        1_750_000,
    );
    major.fault.class = crate::model::classify::FaultClass::Major;
    let mut unwound = timed(fault(array.start + 6000, 6, "[anon]", &array), 1_400, 0);
    unwound.stack = Some(crate::output::fixtures::unwound_stack());
    unwound.command = Some("alloc".into());
    let faults = [
        unwound,
        timed(fault(array.start + 9000, 6, "[anon]", &array), 2_600, 0),
        major,
        error,
    ];
    let summary = TraceSummary {
        stacks: Some((
            crate::model::call_graph::CallGraph::Dwarf { stack_bytes: 8192 },
            crate::trace::stacks::StackTotals {
                stacks: 4,
                truncated: 1,
                unreadable: 0,
                without_unwind_info: 1,
            },
        )),
        pid: Some(100),
        cgroup: None,
        ended_by: TraceEnd::Exit,
        child: Some(ProcessEnd::Exited(0)),
        faults_total: 4,
        minor: 2,
        major: 1,
        error: 1,
        lost: 0,
        unattributed_faults: 0,
        completions_without_start: 1,
        class_disagreements: 0,
        durations: Some(durations_of(&faults, 3_000_000, 40_000_000)),
        traced_completions: 3,
        before_trace: Some(1),
        rusage: Some(Rusage {
            minflt: 5,
            majflt: 0,
            user_ns: 2_000_000,
            system_ns: 1_000_000,
        }),
        processes: vec![
            crate::trace::ProcessSummary {
                totals: crate::trace::session::ProcessTotals {
                    pid: 100,
                    command: Some("prog".into()),
                    traced: 3,
                    before_trace: Some(demo_common::FaultCounters { minor: 1, major: 0 }),
                    kernel: Some(demo_common::FaultCounters { minor: 5, major: 0 }),
                },
                lost: [(demo_common::RecordKind::Fault, 0)].into_iter().collect(),
                at_end: None,
            },
            crate::trace::ProcessSummary {
                totals: crate::trace::session::ProcessTotals {
                    pid: 101,
                    command: Some("worker".into()),
                    traced: 2,
                    before_trace: Some(demo_common::FaultCounters {
                        minor: 40,
                        major: 1,
                    }),
                    kernel: None,
                },
                lost: std::collections::BTreeMap::new(),
                at_end: Some(crate::trace::ProcessStat {
                    minflt: 43,
                    majflt: 1,
                    cpu_ns: 20_000_000,
                }),
            },
        ],
        loader: LoaderCost {
            cpu_ms: 30,
            attach_cpu_ms: 20,
            peak_rss_kib: 25_000,
        },
        records: [(
            "fault",
            RecordCount {
                delivered: 3,
                dropped: 0,
            },
        )]
        .into(),
        untraced_children: 0,
        unjoined_events: 0,
        kernel_programs: Some(vec![ProgramRuns {
            program: "page_fault_user".to_owned(),
            runs: 3,
            run_time_ns: 300,
        }]),
        regions_not_listed: 0,
        unknown_mappings: crate::trace::session::UnknownMappings::default(),
        demo_own: crate::trace::own::DemoOwn {
            faults_before_exec: 32,
            uprobes_page_faults: 1,
            ptrace_stop_signals: 1,
        },
        faults_by_function: vec![FunctionFaults {
            symbol: Some("fill".to_owned()),
            module: Some("/tmp/prog".to_owned()),
            region: None,
            faults: 3,
        }],
        faults_by_function_and_region: vec![FunctionFaults {
            symbol: Some("fill".to_owned()),
            module: Some("/tmp/prog".to_owned()),
            region: Some("mmap#4".to_owned()),
            faults: 3,
        }],
    };
    // A timed fault and an untimed one, as the trace writes them.
    let mut fault_lines = Vec::new();
    for traced in [&faults[0], &faults[3]] {
        let hit = region.region.locate(traced.fault.fault.address).unwrap();
        let mut line = Vec::new();
        FaultLine::new(
            SCENARIO,
            None,
            (&traced.fault, &traced.code, None),
            Some(("mmap#4", hit)),
            "[anon]",
            Some(traced.fault.fault.address - region.region.start),
        )
        .write_json(&mut line, &mut CodeJson::default());
        fault_lines.push(String::from_utf8(line).unwrap());
    }
    let lines = [
        json(&TraceLine::Trace((&start).into())),
        json(&TraceLine::Region(RegionLine::new(
            SCENARIO,
            Some(100),
            &region.region,
            region.origin.as_str(),
        ))),
        fault_lines[0].clone(),
        fault_lines[1].clone(),
        json(&TraceLine::Syscall(SyscallLine::new(
            SCENARIO,
            None,
            &mmap_call(&region.region),
        ))),
        json(&TraceLine::Signal(SignalLine::generated(
            SCENARIO,
            None,
            &segv(),
        ))),
        json(&TraceLine::Process(ProcessLine::forked(101, 100))),
        json(&TraceLine::Process(ProcessLine::exited(101))),
        json(&TraceLine::RegionEnd(RegionEndLine::new(&region))),
        json(&TraceLine::RegionSummary(RegionSummaryLine::new(
            &region, &pages, 1,
        ))),
        json(&TraceLine::Summary(TraceSummaryLine::new(&summary))),
    ];
    insta::assert_snapshot!(checked(&lines));
}

#[test]
fn every_line_of_top() {
    let row = |pid, comm: &str, exited| Row {
        subject: Subject::Process {
            pid,
            comm: comm.to_owned(),
        },
        faults: 1000,
        interval_faults: 500,
        rate: 500.0,
        minor: Some(990),
        major: Some(10),
        write_pct: Some(75.0),
        kernel_pct: Some(2.5),
        exited,
        fault_time: None,
    };
    let mut interval = Interval {
        seconds: 1.0004,
        rows: vec![row(100, "alloc", false), row(101, "cc1", true)],
        dropped: 0,
        pages_evicted: 2,
        pages: Some(PageReport {
            pid: 100,
            ranges: vec![PageRange {
                start: 0x7f00_0000_1000,
                pages: 2,
                faults: 12,
                hottest: 9,
                mapping: "[anon]".into(),
                code: None,
            }],
            mappings: vec![("[anon]".to_owned(), 12)],
        }),
    };
    let with_pages = json(&TopLine::Top(IntervalLine::new(
        &interval,
        "2026-12-02T19:00:00.000Z".to_owned(),
    )));
    interval.pages = None;
    interval.rows[0].write_pct = None;
    interval.rows[0].kernel_pct = None;
    let counters_only = json(&TopLine::Top(IntervalLine::new(
        &interval,
        "2026-12-02T19:00:01.000Z".to_owned(),
    )));
    let group = |group, processes| Row {
        subject: Subject::Group { group, processes },
        ..interval.rows[1].clone()
    };
    interval.rows = vec![
        group(Group::Cgroup("/demo-a".to_owned()), 2),
        group(Group::Command("curl".to_owned()), 37),
    ];
    let grouped = json(&TopLine::Top(IntervalLine::new(
        &interval,
        "2026-12-02T19:00:02.000Z".to_owned(),
    )));
    insta::assert_snapshot!(checked(&[with_pages, counters_only, grouped]));
}
