//! Tests of the view: one per key on the state, and whole screens rendered from recorded
//! events to a `TestBackend`, compared with snapshots.

use demo_common::FaultSource;
use ratatui::{
    Terminal,
    backend::TestBackend,
    crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
};

use super::app::{App, Mode, PageMap, Request, TopView, UiEvent, View};
use crate::{
    kernel::procmem::VmaUsage,
    model::access::{Access, ErrorCode},
    model::classify::{ClassifiedFault, FaultClass},
    model::events::{Fault, FaultTiming},
    model::pages::{PageModel, PageOrigin},
    model::region::Region,
    top::{Interval, Row, SortKey, Subject},
    trace::session::TracedFault,
    walk::plan::ScenarioName,
    walk::step_report::{KernelView, StepReport, WALK_REGION},
};

/// One VMA of the lab's `pmap -x`: its address, name, Kbytes, RSS and Dirty.
fn vma(start: u64, name: &str, size_kib: u64, rss_kib: u64, dirty_kib: u64) -> VmaUsage {
    VmaUsage {
        start,
        end: start + size_kib * 1024,
        size_kib,
        rss_kib,
        dirty_kib,
        perms: "rw-p".to_owned(),
        name: name.to_owned(),
        ..VmaUsage::default()
    }
}

/// The seed's first `pmap -x` of `alloc_mmap` (total 2492 KiB, RSS 1140, Dirty 88), as smaps
/// gives it, and the array's 20 KiB VMA with `arr_rss` KiB resident when it exists.
fn lab_smaps(arr_rss: Option<u64>) -> Vec<VmaUsage> {
    let binary = "/home/student/alloc_mmap";
    let libc = "/usr/lib/x86_64-linux-gnu/libc-2.31.so";
    let ld = "/usr/lib/x86_64-linux-gnu/ld-2.31.so";
    let rows: [(u64, &str, u64, u64, u64); 24] = [
        (0x5630_0f7f_b000, binary, 4, 4, 0),
        (0x5630_0f7f_c000, binary, 4, 4, 0),
        (0x5630_0f7f_d000, binary, 4, 0, 0),
        (0x5630_0f7f_e000, binary, 4, 4, 4),
        (0x5630_0f7f_f000, binary, 4, 4, 4),
        (0x5630_116c_9000, "[heap]", 132, 4, 4),
        (0x7f00_0000_0000, "[anon]", 20, 0, 0),
        (0x7fdd_5e08_4000, libc, 148, 144, 0),
        (0x7fdd_5e0a_9000, libc, 1504, 656, 0),
        (0x7fdd_5e22_1000, libc, 296, 64, 0),
        (0x7fdd_5e26_b000, libc, 4, 0, 0),
        (0x7fdd_5e26_c000, libc, 12, 12, 12),
        (0x7fdd_5e26_f000, libc, 12, 12, 12),
        (0x7fdd_5e27_2000, "[anon]", 24, 24, 24),
        (0x7fdd_5e28_d000, ld, 4, 4, 0),
        (0x7fdd_5e28_e000, ld, 140, 140, 0),
        (0x7fdd_5e2b_1000, ld, 32, 32, 0),
        (0x7fdd_5e2b_a000, ld, 4, 4, 4),
        (0x7fdd_5e2b_b000, ld, 4, 4, 4),
        (0x7fdd_5e2b_c000, "[anon]", 4, 4, 4),
        (0x7ffc_1dfc_4000, "[stack]", 132, 16, 16),
        (0x7ffc_1dfe_9000, "[vvar]", 12, 0, 0),
        (0x7ffc_1dfe_c000, "[vdso]", 4, 4, 0),
        (0xffff_ffff_ff60_0000, "[vsyscall]", 4, 0, 0),
    ];
    rows.iter()
        .filter(|row| row.0 != 0x7f00_0000_0000 || arr_rss.is_some())
        .map(|&(start, name, size, rss, dirty)| match arr_rss {
            Some(kib) if start == 0x7f00_0000_0000 => vma(start, name, size, kib, kib),
            _ => vma(start, name, size, rss, dirty),
        })
        .collect()
}

fn key(code: KeyCode) -> UiEvent {
    UiEvent::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn region() -> Region {
    Region::seed_array()
}

fn map(app: &App) -> &PageMap {
    app.map().expect("a walk or a trace has a page map")
}

fn top(app: &App) -> &TopView {
    match &app.view {
        View::Top(top) => top,
        _ => panic!("not the top view"),
    }
}

/// The recorded seed walk: (step, action, faulting index) for the five steps.
const WALK: [(u32, &str, Option<i64>); 5] = [
    (1, "arr = mmap(NULL, 20000, RW, PRIVATE|ANON)", None),
    (2, "arr[1500] = 2", Some(1500)),
    (3, "arr[1501] = 3", None),
    (4, "arr[0] = 4", Some(0)),
    (5, "arr[3000] = 5", Some(3000)),
];

/// A fault's timing: `ns` in all, `off_cpu_ns` of it switched out (0 when `None`).
fn timed(ns: u64, off_cpu_ns: Option<u64>) -> FaultTiming {
    FaultTiming {
        duration_ns: ns,
        off_cpu_ns: Some(off_cpu_ns.unwrap_or(0)),
        reclaim_ns: 0,
        compaction_ns: 0,
    }
}

/// Feeds the first `steps` steps of the recorded seed walk to `app`, after the child's start
/// with the lab's first smaps.
fn feed_walk(app: &mut App, steps: usize) {
    let region = region();
    app.handle_event(UiEvent::Started(lab_smaps(None)));
    app.handle_event(UiEvent::Region(region.clone()));
    let mut pages = PageModel::new(5);
    for &(step, action, index) in WALK.iter().take(steps) {
        pages.begin_step();
        let mut faults = Vec::new();
        if let Some(index) = index {
            let address = region.start + index as u64 * 4;
            let location = region.locate(address).unwrap();
            pages.apply_fault(
                location.page,
                Access::Write,
                PageOrigin::Fault {
                    step,
                    offset: location.offset,
                    index,
                },
            );
            faults.push(TracedFault {
                fault: ClassifiedFault {
                    fault: Fault {
                        timestamp_ns: u64::from(step) * 1_000_000,
                        pid: 100,
                        tid: 100,
                        address,
                        ip: 0x5555_0000_1000,
                        error_code: ErrorCode(6),
                        source: FaultSource::User,
                    },
                    class: FaultClass::Minor,
                    // Step 2's fault took 1.4 µs, all on the CPU; the later ones longer.
                    timing: Some(timed(u64::from(step) * 700, None)),
                },
                mapping: "[anon]".into(),
                mapping_offset: 0,
                region: Some((WALK_REGION, std::sync::Arc::clone(&region.name), location)),
                code: crate::output::fixtures::code(),
                stack: None,
                command: None,
            });
        }
        let resident = pages.resident_pages();
        // arr[1501] in step 3 did not fault: its page was present since step 2.
        let touch = index.or((step == 3).then_some(1501)).map(|index| {
            let faulted = !faults.is_empty();
            let page = region.locate(region.start + index as u64 * 4).unwrap().page;
            crate::output::fixtures::write_touch(
                &region,
                index,
                faulted,
                (!faulted).then(|| pages.origin(page)).flatten(),
            )
        });
        app.handle_event(UiEvent::Step(Box::new(StepReport {
            scenario: ScenarioName::Mmap,
            step,
            pid: 100,
            workload_binary: "/usr/local/bin/demo".into(),
            started_ns: 0,
            ended_ns: 0,
            action: action.to_owned(),
            region: region.clone(),
            faults,
            syscalls: Vec::new(),
            signals: Vec::new(),
            allocation: None,
            touch,
            death: None,
            pages: pages.clone(),
            kernel: Some(KernelView {
                rss_kib: resident.len() as u64 * 4,
                process: lab_smaps(Some(resident.len() as u64 * 4)),
                resident_pages: resident,
                zero_pages: Vec::new(),
                vma: None,
                ..KernelView::default()
            }),
            values: None,
            lesson: None,
        })));
    }
}

fn screen(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| super::render::render(app, frame))
        .unwrap();
    terminal.backend().to_string()
}

#[test]
fn enter_runs_the_next_step_only_when_the_walk_waits() {
    let mut app = App::new(Mode::Alloc, "demo alloc mmap".to_owned());
    assert_eq!(
        app.handle_event(key(KeyCode::Enter)),
        Some(Request::NextStep)
    );
    assert_eq!(
        app.handle_event(key(KeyCode::Char(' '))),
        None,
        "the step is running"
    );
    feed_walk(&mut app, 1);
    assert_eq!(
        app.handle_event(key(KeyCode::Char(' '))),
        Some(Request::NextStep)
    );
    app.handle_event(UiEvent::Finished(
        "the child exited with status 0".to_owned(),
    ));
    assert_eq!(
        app.handle_event(key(KeyCode::Enter)),
        None,
        "the walk is over"
    );
}

#[test]
fn arrows_and_hjkl_move_over_pages_within_the_region() {
    let mut app = App::new(Mode::Alloc, String::new());
    feed_walk(&mut app, 5);
    app.handle_event(key(KeyCode::Right));
    app.handle_event(key(KeyCode::Char('l')));
    assert_eq!(map(&app).cursor, 2);
    app.handle_event(key(KeyCode::Left));
    assert_eq!(map(&app).cursor, 1);
    app.handle_event(key(KeyCode::Char('h')));
    app.handle_event(key(KeyCode::Char('h')));
    assert_eq!(map(&app).cursor, 0, "stops at the first page");
    app.handle_event(key(KeyCode::Char('j')));
    assert_eq!(map(&app).cursor, 4, "a row down stops at the last page");
    app.handle_event(key(KeyCode::Up));
    assert_eq!(map(&app).cursor, 0);
}

#[test]
fn plus_and_minus_zoom_and_tab_changes_region() {
    let mut app = App::new(Mode::Trace, String::new());
    app.handle_event(UiEvent::Region(region()));
    app.handle_event(UiEvent::Region(Region {
        name: "big".into(),
        len: 1 << 30,
        ..region()
    }));
    app.handle_event(key(KeyCode::Char('-')));
    assert_eq!(map(&app).zoom, 2);
    app.handle_event(key(KeyCode::Char('-')));
    assert_eq!(map(&app).zoom, 4);
    app.handle_event(key(KeyCode::Char('+')));
    assert_eq!(map(&app).zoom, 2);
    app.handle_event(key(KeyCode::Tab));
    assert_eq!(
        (map(&app).selected, map(&app).zoom, map(&app).cursor),
        (1, 0, 0)
    );
    app.handle_event(key(KeyCode::Tab));
    assert_eq!(map(&app).selected, 0);
}

#[test]
fn p_pauses_the_event_list_and_help_closes_on_any_key() {
    let mut app = App::new(Mode::Alloc, String::new());
    app.handle_event(key(KeyCode::Char('p')));
    feed_walk(&mut app, 2);
    assert!(app.events.is_empty(), "paused: no new events shown");
    app.handle_event(key(KeyCode::Char('p')));
    app.handle_event(key(KeyCode::Char('?')));
    assert!(app.show_help);
    assert_eq!(
        app.handle_event(key(KeyCode::Char('q'))),
        None,
        "q only closes the help"
    );
    assert!(!app.show_help);
}

#[test]
fn q_and_ctrl_c_quit() {
    let mut app = App::new(Mode::Trace, String::new());
    assert_eq!(
        app.handle_event(key(KeyCode::Char('q'))),
        Some(Request::Quit)
    );
    let ctrl_c = UiEvent::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(app.handle_event(ctrl_c), Some(Request::Quit));
}

#[test]
fn top_sorts_selects_and_traces_the_chosen_process() {
    // By rate 10, 20, 30; by total 30, 20, 10. With -n 2, pid 30 is not shown by rate.
    let mut app = App::new(Mode::Top, String::new()).with_top(2, SortKey::Rate);
    let row = |pid, rate: u64, faults| Row {
        subject: Subject::Process {
            pid,
            comm: format!("p{pid}"),
        },
        faults,
        interval_faults: rate,
        rate: rate as f64,
        minor: Some(faults),
        major: Some(0),
        write_pct: Some(100.0),
        kernel_pct: Some(0.0),
        exited: false,
        fault_time: None,
    };
    app.handle_event(UiEvent::Top(Box::new(Interval {
        seconds: 1.0,
        rows: vec![row(10, 500, 600), row(20, 50, 700), row(30, 5, 5000)],
        dropped: 0,
        pages_evicted: 0,
        pages: None,
    })));
    let pids = |app: &App| {
        top(app)
            .shown()
            .iter()
            .filter_map(Row::pid)
            .collect::<Vec<_>>()
    };
    assert_eq!(pids(&app), [10, 20]);
    app.handle_event(key(KeyCode::Down));
    assert_eq!(
        app.handle_event(key(KeyCode::Enter)),
        Some(Request::TracePid(20))
    );
    app.handle_event(key(KeyCode::Up));
    app.handle_event(key(KeyCode::Char('s')));
    assert_eq!(top(&app).sort, SortKey::Total);
    // Sorted over every process: 30 comes in although it was not among the first two by rate.
    assert_eq!(pids(&app), [30, 20]);
    assert_eq!(
        app.handle_event(key(KeyCode::Enter)),
        Some(Request::TracePid(30))
    );
    app.handle_event(key(KeyCode::Down));
    assert_eq!(
        app.handle_event(key(KeyCode::Enter)),
        Some(Request::TracePid(20))
    );
}

/// With durations, the top view shows each row's time in faults per second and its p99
/// bound, and `s` also sorts by the time.
#[test]
fn top_with_durations_shows_and_sorts_by_time_in_faults() {
    use crate::top::fault_time::{Bound, TimeInFaults};
    let mut app = App::new(Mode::Top, String::new()).with_top(10, SortKey::Major);
    let row = |pid, interval_ns| Row {
        subject: Subject::Process {
            pid,
            comm: format!("p{pid}"),
        },
        faults: 10,
        interval_faults: 10,
        rate: 10.0,
        minor: Some(10),
        major: Some(0),
        write_pct: Some(100.0),
        kernel_pct: Some(0.0),
        exited: false,
        fault_time: Some(TimeInFaults {
            timed: [10, 0],
            total_ns: interval_ns,
            interval_timed: 10,
            interval_ns,
            per_second_ns: interval_ns,
            p99: Some(Bound::AtMost(2048)),
        }),
    };
    app.handle_event(UiEvent::Top(Box::new(Interval {
        seconds: 1.0,
        rows: vec![row(10, 5_000), row(20, 1_500_000)],
        dropped: 0,
        pages_evicted: 0,
        pages: None,
    })));
    app.handle_event(key(KeyCode::Char('s')));
    assert_eq!(top(&app).sort, SortKey::FaultTime);
    let pids: Vec<u32> = top(&app).shown().iter().filter_map(Row::pid).collect();
    assert_eq!(pids, [20, 10]);
    let shown = screen(&app, 120, 12);
    assert!(shown.contains("FLT-TIME/S"), "{shown}");
    let line = shown.lines().find(|line| line.contains("p20")).unwrap();
    assert!(
        line.contains("1.5 ms") && line.contains("≤2.1 µs"),
        "{shown}"
    );
    app.handle_event(key(KeyCode::Char('s')));
    assert_eq!(top(&app).sort, SortKey::Rate);
}

/// Enter on a process that exited (its pid may be another's by now) or on a group traces
/// nothing, and the view stays.
#[test]
fn top_traces_no_exited_process_and_no_group() {
    let mut app = App::new(Mode::Top, String::new()).with_top(10, SortKey::Rate);
    let row = |subject, exited| Row {
        subject,
        faults: 10,
        interval_faults: 10,
        rate: 10.0,
        minor: Some(10),
        major: Some(0),
        write_pct: Some(100.0),
        kernel_pct: Some(0.0),
        exited,
        fault_time: None,
    };
    let curl = Subject::Process {
        pid: 13473,
        comm: "curl".to_owned(),
    };
    let group = Subject::Group {
        group: crate::top::Group::Command("curl".to_owned()),
        processes: 40,
    };
    app.handle_event(UiEvent::Top(Box::new(Interval {
        rows: vec![row(curl, true), row(group, false)],
        ..Interval::default()
    })));
    assert_eq!(app.handle_event(key(KeyCode::Enter)), None);
    app.handle_event(key(KeyCode::Down));
    assert_eq!(top(&app).selected, 1);
    assert_eq!(app.handle_event(key(KeyCode::Enter)), None);
    assert_eq!(
        app.handle_event(key(KeyCode::Char('q'))),
        Some(Request::Quit)
    );
}

/// With `--counters-only` the shares are unknown, and show as `-`; a process that exited is
/// marked in its last interval.
#[test]
fn the_top_screen_without_the_per_fault_split() {
    let mut app = App::new(Mode::Top, "demo top".to_owned());
    let row = |pid, comm: &str, faults, exited| Row {
        subject: Subject::Process {
            pid,
            comm: comm.to_owned(),
        },
        faults,
        interval_faults: faults / 2,
        rate: (faults / 2) as f64,
        minor: Some(faults - 1),
        major: Some(1),
        write_pct: None,
        kernel_pct: None,
        exited,
        fault_time: None,
    };
    app.handle_event(UiEvent::Top(Box::new(Interval {
        seconds: 1.0,
        rows: vec![row(4242, "touch", 65538, true), row(17, "bash", 98, false)],
        dropped: 0,
        pages_evicted: 0,
        pages: None,
    })));
    app.handle_event(UiEvent::Finished("running".to_owned()));
    let text = screen(&app, 80, 24);
    assert!(!text.contains("0.0"), "{text}");
    assert!(text.contains("touch (exited)"), "{text}");
    assert!(
        text.contains("sorted by rate (s: sort, enter: trace it)"),
        "{text}"
    );
    assert!(text.contains("? help q quit"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn the_seed_walk_screen_at_80_by_24() {
    let mut app = App::new(Mode::Alloc, "demo alloc mmap".to_owned());
    feed_walk(&mut app, 5);
    app.handle_event(UiEvent::Finished(
        "the child exited with status 0".to_owned(),
    ));
    let text = screen(&app, 80, 24);
    assert!(text.contains("RSS 12 KiB"), "{text}");
    // The seed's five pages, each a labelled cell: number, index range, state, the step.
    for whole in [
        "page 4",
        "[1024..2047]",
        "[4096..4999]",
        "step 4",
        "untouched",
    ] {
        assert!(text.contains(whole), "{whole} missing:\n{text}");
    }
    assert!(text.contains("the child exited with status 0"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn the_help_screen_lists_every_key() {
    let mut app = App::new(Mode::Alloc, "demo alloc mmap".to_owned());
    feed_walk(&mut app, 2);
    app.handle_event(key(KeyCode::Char('?')));
    let text = screen(&app, 80, 24);
    // Every key and every description whole, at the smallest size the view supports.
    for (keys, what) in super::app::HELP {
        assert!(text.contains(keys), "{keys} missing:\n{text}");
        assert!(text.contains(what), "{what} cut:\n{text}");
    }
    insta::assert_snapshot!(text);
}

/// `j` and `k` move by a row of the page map as it is drawn, which a resize changes.
#[test]
fn j_and_k_move_by_the_drawn_row_and_follow_a_resize() {
    let mut app = App::new(Mode::Trace, String::new());
    app.handle_event(UiEvent::Region(Region {
        name: "big".into(),
        len: 4096 * 4096,
        ..region()
    }));
    // 80x24: a map of 5 rows of 70 cells; 4096 pages fit at 12 pages a cell.
    app.handle_event(UiEvent::Resize(ratatui::layout::Rect::new(0, 0, 80, 24)));
    assert_eq!(app.map_geometry(), (70, 12));
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|frame| super::render::render(&app, frame))
        .unwrap();
    let drawn: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(drawn.contains("12 pages per cell"), "{drawn}");
    // The legend of the glyphs is whole at 80 columns.
    for item in super::render::LEGEND {
        assert!(drawn.contains(item), "{item} cut: {drawn}");
    }
    app.handle_event(key(KeyCode::Char('j')));
    assert_eq!(map(&app).cursor, 70 * 12);
    app.handle_event(key(KeyCode::Char('l')));
    assert_eq!(map(&app).cursor, 71 * 12, "one cell right");
    app.handle_event(key(KeyCode::Char('k')));
    assert_eq!(map(&app).cursor, 12);
    // 120x30: 7 rows of 110 cells, 6 pages a cell.
    app.handle_event(UiEvent::Resize(ratatui::layout::Rect::new(0, 0, 120, 30)));
    assert_eq!(app.map_geometry(), (110, 6));
    app.handle_event(key(KeyCode::Char('j')));
    assert_eq!(map(&app).cursor, 12 + 110 * 6);
}

/// A trace of the seed's writes, as the lab's `alloc_mmap` makes them: its array `mmap#4` and
/// three faults on it, then the session's pages, a SIGSEGV and the target's end.
fn traced_seed() -> App {
    use crate::trace::{
        regions::{Origin, TrackedRegion},
        session::{TraceEvent, TracedFault},
    };
    let mut app = App::new(Mode::Trace, "demo trace".to_owned());
    let region = region();
    let tracked = TrackedRegion {
        id: 0,
        pid: 4242,
        origin: Origin::Mmap,
        region: Region {
            name: "mmap#4".into(),
            ..region.clone()
        },
        live: true,
    };
    app.handle_event(UiEvent::Trace(Box::new(TraceEvent::RegionStarted(tracked))));
    // The session's page states, which it sends after the faults.
    let mut pages = PageModel::without_origins(5);
    for (index, page) in [(1500, 1), (0, 0), (3000, 2)] {
        let location = region.locate(region.start + index * 4).unwrap();
        pages.apply_at(&location, Access::Write, 0);
        app.handle_event(UiEvent::Trace(Box::new(TraceEvent::Fault(TracedFault {
            fault: ClassifiedFault {
                fault: Fault {
                    timestamp_ns: 1_000_000 * page,
                    pid: 4242,
                    tid: 4242,
                    address: region.start + index * 4,
                    ip: 0x5555_0000_1000,
                    error_code: ErrorCode(6),
                    source: FaultSource::User,
                },
                class: FaultClass::Minor,
                // Page 0's fault waited off the CPU; page 2's was not timed.
                timing: match page {
                    0 => Some(timed(12_000, Some(9_000))),
                    1 => Some(timed(1_400, None)),
                    _ => None,
                },
            },
            mapping: "[anon]".into(),
            mapping_offset: index * 4,
            region: Some((0, "mmap#4".into(), location)),
            code: crate::output::fixtures::code(),
            stack: None,
            command: None,
        }))));
    }
    app.handle_event(UiEvent::Pages(vec![(0, pages)]));
    app.handle_event(UiEvent::Trace(Box::new(TraceEvent::Signal(
        crate::output::fixtures::segv(),
    ))));
    app.handle_event(UiEvent::Finished("pid 4242 killed by SIGSEGV".to_owned()));
    app
}

/// A trace at 80x24: the legend, the events and the end of the target are whole.
#[test]
fn the_trace_screen_at_80_by_24() {
    let app = traced_seed();
    let text = screen(&app, 80, 24);
    for whole in [
        "minor write mmap#4[3000] page 2",
        // Each timed fault says how long it took, and the page panel where the time went.
        "4242 minor 1.4 µs write mmap#4[1500]",
        "4242 minor 12 µs write mmap#4[0]",
        "write minor 12 µs",
        "(9.0 µs off CPU)",
        "si_code SEGV_MAPERR",
        "[4096..4999]",
        "faulted now",
        "pid 4242 killed by SIGSEGV",
    ] {
        assert!(text.contains(whole), "{whole} cut:\n{text}");
    }
    insta::assert_snapshot!(text);
}

/// `demo trace --tui -- ./alloc_mmap` at 80x24: the command's pane takes the bottom 5 rows,
/// with what the program printed in it, and the page map above keeps a labelled cell per
/// page (its number, index range, state and who made it), as the README says.
#[test]
fn the_command_pane_at_80_by_24_leaves_the_page_map_its_labelled_cells() {
    let app = traced_seed();
    let [_, pane_area] = super::command_pane::split(ratatui::layout::Rect::new(0, 0, 80, 24));
    let size = super::command_pane::terminal_size(pane_area);
    assert_eq!(size, crate::kernel::pty::TermSize { rows: 3, cols: 78 });
    let (pty, _terminal) = crate::kernel::pty::Pty::open(size).unwrap();
    let mut command = super::command_pane::CommandPane::new(pty, size).unwrap();
    command.show(b"arr = 0x7f0000000000\r\ntouch arr[1500]\r\ntouch arr[1501]");
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|frame| super::render_with(&app, Some(&command), frame))
        .unwrap();
    let text = terminal.backend().to_string();
    let map = pane(&text, "mmap#4 20000 bytes, 5 pages");
    let cells = map.join("\n");
    for page in 0..5 {
        assert!(
            cells.contains(&format!("page {page}")),
            "page {page}:\n{text}"
        );
    }
    for whole in [
        "[0..1023]",
        "[1024..2047]",
        "[2048..3071]",
        "[3072..4095]",
        "[4096..4999]",
        "faulted now",
        "untouched",
        "tid 4242",
    ] {
        assert!(cells.contains(whole), "{whole} not in the map:\n{text}");
    }
    let typed = pane(&text, "command · Enter goes to it · F2: type to it");
    assert_eq!(
        typed,
        ["arr = 0x7f0000000000", "touch arr[1500]", "touch arr[1501]"],
        "{text}"
    );
    // The pane's border is the screen's last 5 rows: the view keeps the 19 above.
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[19].starts_with("\"┌ command "), "{text}");
    insta::assert_snapshot!(text);
}

/// In a trace the page states are the session's: a fault alone marks its page as faulted now
/// (until the next tick) but leaves its state to the pages the session sends.
#[test]
fn a_trace_shows_the_sessions_pages_and_a_fault_is_new_for_one_tick() {
    use crate::model::pages::PageState;
    use crate::trace::{
        regions::{Origin, TrackedRegion},
        session::{TraceEvent, TracedFault},
    };
    let mut app = App::new(Mode::Trace, String::new());
    let region = region();
    app.handle_event(UiEvent::Trace(Box::new(TraceEvent::RegionStarted(
        TrackedRegion {
            id: 0,
            pid: 1,
            origin: Origin::Mmap,
            region: region.clone(),
            live: true,
        },
    ))));
    let location = region.locate(region.start + 4096).unwrap();
    app.handle_event(UiEvent::Trace(Box::new(TraceEvent::Fault(TracedFault {
        fault: ClassifiedFault {
            fault: Fault {
                timestamp_ns: 1,
                pid: 1,
                tid: 1,
                address: region.start + 4096,
                ip: 0,
                error_code: ErrorCode(6),
                source: FaultSource::User,
            },
            class: FaultClass::Minor,
            timing: None,
        },
        mapping: "[anon]".into(),
        mapping_offset: 4096,
        region: Some((0, region.name.clone(), location)),
        code: crate::output::fixtures::code(),
        stack: None,
        command: None,
    }))));
    let shown = |app: &App| {
        let view = app.region().unwrap();
        (view.pages.state(1), view.recent.contains(&1))
    };
    assert_eq!(shown(&app), (Some(PageState::Untouched), true));
    let mut pages = PageModel::without_origins(5);
    pages.apply_at(&location, Access::Write, 0);
    app.handle_event(UiEvent::Pages(vec![(0, pages)]));
    assert_eq!(shown(&app), (Some(PageState::Resident), true));
    app.handle_event(UiEvent::Tick);
    assert_eq!(shown(&app), (Some(PageState::Resident), false));
}

/// The text inside pane `title` of a rendered screen: the lines between its top border (the
/// one that starts `┌ title `) and its bottom one, without the side borders, trimmed.
fn pane(text: &str, title: &str) -> Vec<String> {
    let lines: Vec<Vec<char>> = text
        .lines()
        .map(|line| line.trim_matches('"').chars().collect())
        .collect();
    let top = format!("┌ {title} ");
    let Some((first, column)) = lines.iter().enumerate().find_map(|(y, line)| {
        let line: String = line.iter().collect();
        line.find(&top)
            .map(|byte| (y, line[..byte].chars().count()))
    }) else {
        panic!("no pane {title}:\n{text}");
    };
    lines[first + 1..]
        .iter()
        .take_while(|line| line.get(column) != Some(&'└'))
        .map(|line| {
            line[column + 1..]
                .iter()
                .take_while(|&&c| c != '│')
                .collect::<String>()
                .trim()
                .to_owned()
        })
        .collect()
}

/// A pane's lines joined into one text, for sentences it wraps.
fn joined(lines: &[String]) -> String {
    lines
        .iter()
        .filter(|line| !line.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A walk step on `region`: its faults, (element, error code) each, applied to `pages` and
/// sent with the kernel's view that they explain; `dropped` pages were taken away first.
fn walk_step(
    app: &mut App,
    region: &Region,
    pages: &mut PageModel,
    (step, action): (u32, &str),
    dropped: bool,
    faults: &[(i64, u64)],
) {
    pages.begin_step();
    if dropped {
        pages.forget(0, region.page_count());
    }
    let faults: Vec<TracedFault> = faults
        .iter()
        .map(|&(index, error_code)| {
            let mut fault = crate::output::fixtures::fault(
                region.start + index as u64 * region.elem_size,
                error_code,
                "[anon]",
                region,
            );
            fault.fault.fault.timestamp_ns = u64::from(step) * 1_000_000;
            let location = fault.location().unwrap();
            pages.apply_at(&location, ErrorCode(error_code).access(), step);
            fault
        })
        .collect();
    let mut report = crate::output::fixtures::step(
        step,
        action,
        pages.clone(),
        KernelView {
            rss_kib: pages.resident_count() * 4,
            resident_pages: pages.resident_pages(),
            zero_pages: pages.zero_pages(),
            ..KernelView::default()
        },
    );
    report.region = region.clone();
    report.faults = faults;
    app.handle_event(UiEvent::Step(Box::new(report)));
}

/// The seed's steps say what they showed and why, as the text report does: the fault and its
/// error code, and why arr[1501] did not fault, never a cryptic `0f`.
#[test]
fn each_step_of_the_seed_walk_says_why_at_80_by_24() {
    let mut app = App::new(Mode::Alloc, "demo alloc mmap".to_owned());
    // Each step's row and its why are in view when it ends, older steps above them.
    let said = |app: &App| {
        let text = screen(app, 80, 24);
        let steps = joined(&pane(&text, "steps"));
        (steps.split_whitespace().collect::<Vec<_>>().join(" "), text)
    };
    feed_walk(&mut app, 1);
    let (steps, text) = said(&app);
    assert!(
        steps.contains("1 arr = mmap(NULL,… RSS 0 KiB no fault in arr"),
        "{text}"
    );
    app = App::new(Mode::Alloc, "demo alloc mmap".to_owned());
    feed_walk(&mut app, 2);
    let (steps, text) = said(&app);
    assert!(
        steps.contains("2 arr[1500] = 2 RSS 4 KiB minor fault: page 1, write, page not present"),
        "{text}"
    );
    app = App::new(Mode::Alloc, "demo alloc mmap".to_owned());
    feed_walk(&mut app, 3);
    let (steps, text) = said(&app);
    assert!(
        steps.contains(
            "3 arr[1501] = 3 RSS 4 KiB no fault: page 1 was already present, since step 2 \
             (arr[1500])"
        ),
        "{text}"
    );
    assert!(!text.contains("0f "), "{text}");
    insta::assert_snapshot!(text);
}

/// A view of `demo alloc malloc` after its first step, in which malloc's `_int_malloc` (libc)
/// wrote the header of the chunk after the array, 8 bytes past its end, on its last page.
fn mallocs_first_step() -> App {
    let mut app = App::new(Mode::Alloc, "demo alloc malloc".to_owned());
    let region = Region {
        start: 0x5555_0000_0e40,
        pages_after: 0,
        ..region()
    };
    app.handle_event(UiEvent::Region(region.clone()));
    let mut pages = PageModel::new(region.page_count() as usize);
    pages.begin_step();
    let mut fault = crate::output::fixtures::fault(region.start + 20008, 6, "[heap]", &region);
    fault.code = crate::output::fixtures::int_malloc();
    let location = fault.location().unwrap();
    pages.apply_at(&location, Access::Write, 1);
    let mut report = crate::output::fixtures::step(
        1,
        "arr = malloc(20000)",
        pages.clone(),
        KernelView {
            rss_kib: 4,
            resident_pages: vec![location.page],
            ..KernelView::default()
        },
    );
    report.region = region.clone();
    report.faults = vec![fault];
    report.allocation = Some(crate::walk::step_report::AllocationFacts {
        allocator: crate::walk::plan::Allocator::Malloc,
        address_check: crate::walk::step_report::AddressCheck::NotFromMmap,
        guard: None,
    });
    app.handle_event(UiEvent::Step(Box::new(report)));
    app
}

/// malloc's first step says that malloc, not the program, faulted the array's last page in,
/// naming malloc's function and its module.
#[test]
fn mallocs_header_write_is_explained_at_80_by_24() {
    let app = mallocs_first_step();
    let text = screen(&app, 80, 24);
    let steps = joined(&pane(&text, "steps"));
    assert!(
        steps.contains(
            "arr[5002] is 8 bytes past arr's end, in the next chunk's header: malloc's \
             _int_malloc (libc.so.6) wrote that chunk's size there"
        ),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

/// The out-of-bounds walk's death: the step and the events say the signal, its si_code and
/// what it means, and where the fault fell, as the text report does.
#[test]
fn a_death_says_its_si_code_and_where_it_fell_at_80_by_24() {
    let mut app = App::new(Mode::Alloc, "demo alloc out-of-bounds".to_owned());
    let region = Region {
        pages_after: 1,
        ..region()
    };
    app.handle_event(UiEvent::Region(region.clone()));
    let address = region.start + 5121 * 4;
    let location = region.locate(address).unwrap();
    let mut fault = crate::output::fixtures::fault(address, 6, "[unmapped]", &region);
    fault.fault.class = FaultClass::Error;
    let mut report =
        crate::output::fixtures::step(7, "arr[5121] = 7", PageModel::new(5), KernelView::default());
    report.scenario = ScenarioName::OutOfBounds;
    report.region = region.clone();
    report.kernel = None;
    report.faults = vec![fault];
    report.signals = vec![crate::output::fixtures::segv()];
    report.death = Some(crate::walk::step_report::Death {
        status: crate::model::signals::ProcessEnd::Killed(libc::SIGSEGV),
        wait_signal: Some(libc::SIGSEGV),
        generated: Some(crate::output::fixtures::segv()),
        fault: Some((address, Some(location))),
        error_code: Some(ErrorCode(6)),
    });
    app.handle_event(UiEvent::Step(Box::new(report)));
    let text = screen(&app, 80, 24);
    let steps = joined(&pane(&text, "steps"));
    let events = joined(&pane(&text, "events"));
    for said in [
        "the child was killed by SIGSEGV",
        "SIGSEGV, si_code SEGV_MAPERR: no mapping at the address",
        "page 5, outside the 5-page array",
    ] {
        assert!(steps.contains(said), "{said} not in the steps:\n{text}");
        assert!(events.contains(said), "{said} not in the events:\n{text}");
    }
    assert!(text.contains("killed by SIGSEGV"), "{text}");
    insta::assert_snapshot!(text);
}

/// The page panel names the code that faulted where it tells something, function+offset and
/// module (malloc's `_int_malloc` in libc), never a raw ip and never demo's own workload code,
/// and at 80x24 it never ends half said, on every page of the seed walk.
#[test]
fn the_page_panel_names_the_code_whole_at_80_by_24() {
    let mut app = App::new(Mode::Alloc, "demo alloc mmap".to_owned());
    feed_walk(&mut app, 5);
    for page in 0..5 {
        let text = screen(&app, 80, 24);
        let panel = pane(&text, "page");
        let said = joined(&panel);
        assert!(!said.contains("ip 0x"), "{text}");
        let last = panel.iter().rev().find(|line| !line.is_empty()).unwrap();
        assert!(
            last != "by" && !last.ends_with(" by"),
            "page {page} ends in {last:?}:\n{text}"
        );
        // The seed's faults are the workload's own writes, in demo's binary: the panel says
        // the step, the access and the class, and names no code.
        for demos in ["(demo)", "perform", "demo::", " by "] {
            assert!(!said.contains(demos), "page {page} says {demos:?}:\n{text}");
        }
        if [0, 1, 2].contains(&page) {
            assert!(said.contains("write minor"), "page {page}:\n{text}");
        }
        if page == 1 {
            assert!(said.contains("step 2 write minor 1.4 µs"), "{text}");
            assert!(
                text.contains("step 5 minor 3.5 µs write arr[3000]"),
                "{text}"
            );
            insta::assert_snapshot!(text);
        }
        app.handle_event(key(KeyCode::Right));
    }
    // malloc's header write, on the array's last page, names libc's function.
    let mut app = mallocs_first_step();
    for _ in 0..5 {
        app.handle_event(key(KeyCode::Right));
    }
    let text = screen(&app, 80, 24);
    let said = joined(&pane(&text, "page"));
    assert!(
        said.contains("step 1 write minor by _int_malloc+0xda9 (libc.so.6)"),
        "{text}"
    );
}

/// `demo alloc dontneed`: page 0 was written in step 2, dropped in step 3, read (the zero
/// page) in step 4 and written again in step 5. Its cell names step 5, the fault that made it
/// what it is, not step 2, the first fault, which MADV_DONTNEED undid.
#[test]
fn a_page_cell_names_the_step_that_made_it_what_it_is() {
    let mut app = App::new(Mode::Alloc, "demo alloc dontneed".to_owned());
    let region = Region {
        len: 4 * 4096,
        ..region()
    };
    app.handle_event(UiEvent::Region(region.clone()));
    let mut pages = PageModel::new(4);
    let pages = &mut pages;
    walk_step(
        &mut app,
        &region,
        pages,
        (1, "arr = mmap(16384)"),
        false,
        &[],
    );
    let all = |error_code| [0, 1024, 2048, 3072].map(|index| (index, error_code));
    walk_step(
        &mut app,
        &region,
        pages,
        (2, "write 4 pages"),
        false,
        &all(6),
    );
    walk_step(
        &mut app,
        &region,
        pages,
        (3, "madvise(DONTNEED)"),
        true,
        &[],
    );
    let made_by = |app: &App, page| app.region().unwrap().made_by(page);
    assert_eq!(made_by(&app, 0), None, "dropped: nothing made it present");
    walk_step(
        &mut app,
        &region,
        pages,
        (4, "read 4 pages"),
        false,
        &all(4),
    );
    assert_eq!(made_by(&app, 0).as_deref(), Some("step 4"));
    walk_step(
        &mut app,
        &region,
        pages,
        (5, "arr[0] = 5"),
        false,
        &[(0, 7)],
    );
    assert_eq!(made_by(&app, 0).as_deref(), Some("step 5"));
    assert_eq!(made_by(&app, 1).as_deref(), Some("step 4"));
    let text = screen(&app, 80, 24);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[3].contains("faulted now") && lines[3].contains("zero page"),
        "{text}"
    );
    assert!(lines[4].trim_matches('"').starts_with("│step 5 "), "{text}");
    insta::assert_snapshot!(text);
}

/// The lab's first screen: before step 1, the whole process as `pmap -x` sums it, from the
/// child's smaps; after step 1 the array's VMA is a row of its own.
#[test]
fn the_first_screen_is_the_process_table_as_pmap_sums_it() {
    let mut app = App::new(Mode::Alloc, "demo alloc mmap".to_owned());
    app.handle_event(UiEvent::Started(lab_smaps(None)));
    let text = screen(&app, 80, 24);
    let table = pane(&text, "process, KiB (smaps, at start)");
    let squeezed: Vec<String> = table
        .iter()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for row in [
        "Mapping Kbytes RSS Dirty",
        "alloc_mmap 20 16 8",
        "[heap] 132 4 4",
        "libc-2.31.so 1976 888 24",
        "[anon] 28 28 28",
        "ld-2.31.so 184 184 8",
        "[stack] 132 16 16",
        "[vdso] 4 4 0",
        "2 more 16 0 0",
        "total 2492 1140 88",
    ] {
        assert!(
            squeezed.iter().any(|line| line == row),
            "{row} missing:\n{text}"
        );
    }
    insta::assert_snapshot!(text);
    feed_walk(&mut app, 2);
    let text = screen(&app, 80, 24);
    let table = pane(&text, "process, KiB (smaps, after step 2)");
    assert!(
        table
            .iter()
            .any(|line| line.split_whitespace().collect::<Vec<_>>()
                == ["arr", "in", "[anon]", "20", "4", "4"]),
        "{text}"
    );
}

/// At 120x40 a region of 400 pages takes 4 rows of a page a cell: the map is those 4 rows
/// high, and the rows it does not need go to the panes below.
#[test]
fn the_page_map_takes_the_rows_its_region_needs_at_120_by_40() {
    use crate::trace::{
        regions::{Origin, TrackedRegion},
        session::TraceEvent,
    };
    let mut app = App::new(Mode::Trace, "demo trace".to_owned());
    let region = Region {
        name: "mmap#1".into(),
        len: 400 * 4096,
        elem_size: 1,
        ..region()
    };
    app.handle_event(UiEvent::Trace(Box::new(TraceEvent::RegionStarted(
        TrackedRegion {
            id: 0,
            pid: 4242,
            origin: Origin::Mmap,
            region: region.clone(),
            live: true,
        },
    ))));
    let mut pages = PageModel::without_origins(400);
    for page in (0..400).step_by(3) {
        pages.apply_at(
            &region.locate(region.start + page * 4096).unwrap(),
            Access::Write,
            0,
        );
    }
    app.handle_event(UiEvent::Pages(vec![(0, pages)]));
    app.handle_event(UiEvent::Resize(ratatui::layout::Rect::new(0, 0, 120, 40)));
    assert_eq!(app.map_geometry(), (110, 1));
    let text = screen(&app, 120, 40);
    let map = pane(&text, "mmap#1 1638400 bytes, 400 pages, 1 page per cell");
    assert_eq!(map.len(), 4, "{text}");
    assert!(map.iter().all(|row| row.contains('█')), "{text}");
    insta::assert_snapshot!(text);
    // Zoomed in, the map takes its whole third of the screen again.
    app.handle_event(key(KeyCode::Char('+')));
    let text = screen(&app, 120, 40);
    assert_eq!(
        pane(&text, "mmap#1 1638400 bytes, 400 pages, 1 page per cell").len(),
        11
    );
}

/// A trace shows its newest region, the program's own rather than those the dynamic loader
/// made before it ran, until Tab chooses one; then a new region leaves the choice alone.
#[test]
fn the_trace_view_follows_the_newest_region_until_tab_chooses_one() {
    use crate::trace::{
        regions::{Origin, TrackedRegion},
        session::TraceEvent,
    };
    let mut app = App::new(Mode::Trace, "demo trace".to_owned());
    let start = |app: &mut App, id: usize| {
        app.handle_event(UiEvent::Trace(Box::new(TraceEvent::RegionStarted(
            TrackedRegion {
                id,
                pid: 4242,
                origin: Origin::Mmap,
                region: Region {
                    name: format!("mmap#{}", id + 1).into(),
                    ..region()
                },
                live: true,
            },
        ))));
    };
    let shown = |app: &App| app.region().unwrap().region.name.to_string();
    for id in 0..3 {
        start(&mut app, id);
    }
    assert_eq!(shown(&app), "mmap#3");
    app.handle_event(key(KeyCode::Right));
    assert_eq!(map(&app).cursor, 1);
    start(&mut app, 3);
    assert_eq!((shown(&app), map(&app).cursor), ("mmap#4".to_owned(), 0));
    app.handle_event(key(KeyCode::Tab));
    assert_eq!(shown(&app), "mmap#1");
    start(&mut app, 4);
    assert_eq!(shown(&app), "mmap#1");
}
