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
    model::access::{Access, ErrorCode},
    model::classify::{ClassifiedFault, FaultClass},
    model::events::Fault,
    model::pages::{PageModel, PageOrigin},
    model::region::Region,
    top::{Interval, Row, SortKey},
    trace::session::TracedFault,
    walk::plan::ScenarioName,
    walk::step_report::{KernelView, StepReport, WALK_REGION},
};

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

/// Feeds the first `steps` steps of the recorded seed walk to `app`.
fn feed_walk(app: &mut App, steps: usize) {
    let region = region();
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
                },
                mapping: "[anon]".into(),
                mapping_offset: 0,
                region: Some((WALK_REGION, std::sync::Arc::clone(&region.name), location)),
                code: crate::output::fixtures::code(),
                stack: None,
            });
        }
        let resident = pages.resident_pages();
        app.handle_event(UiEvent::Step(Box::new(StepReport {
            scenario: ScenarioName::Mmap,
            step,
            pid: 100,
            started_ns: 0,
            ended_ns: 0,
            action: action.to_owned(),
            region: region.clone(),
            faults,
            syscalls: Vec::new(),
            signals: Vec::new(),
            allocation: None,
            touch: None,
            death: None,
            pages: pages.clone(),
            kernel: Some(KernelView {
                rss_kib: resident.len() as u64 * 4,
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
        pid,
        comm: format!("p{pid}"),
        faults,
        interval_faults: rate,
        rate: rate as f64,
        minor: Some(faults),
        major: Some(0),
        write_pct: Some(100.0),
        kernel_pct: Some(0.0),
        exited: false,
    };
    app.handle_event(UiEvent::Top(Box::new(Interval {
        seconds: 1.0,
        rows: vec![row(10, 500, 600), row(20, 50, 700), row(30, 5, 5000)],
        dropped: 0,
        pages_evicted: 0,
        pages: None,
    })));
    let pids = |app: &App| top(app).shown().iter().map(|r| r.pid).collect::<Vec<_>>();
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

/// With `--counters-only` the shares are unknown, and show as `-`; a process that exited is
/// marked in its last interval.
#[test]
fn the_top_screen_without_the_per_fault_split() {
    let mut app = App::new(Mode::Top, "demo top".to_owned());
    let row = |pid, comm: &str, faults, exited| Row {
        pid,
        comm: comm.to_owned(),
        faults,
        interval_faults: faults / 2,
        rate: (faults / 2) as f64,
        minor: Some(faults - 1),
        major: Some(1),
        write_pct: None,
        kernel_pct: None,
        exited,
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

/// A trace at 80x24: the legend, the events and the end of the target are whole.
#[test]
fn the_trace_screen_at_80_by_24() {
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
            },
            mapping: "[anon]".into(),
            mapping_offset: index * 4,
            region: Some((0, "mmap#4".into(), location)),
            code: crate::output::fixtures::code(),
            stack: None,
        }))));
    }
    app.handle_event(UiEvent::Pages(vec![(0, pages)]));
    app.handle_event(UiEvent::Finished("pid 4242 killed by SIGSEGV".to_owned()));
    let text = screen(&app, 80, 24);
    for whole in [
        "minor write mmap#4[3000] page 2",
        "[4096..4999]",
        "faulted now",
        "pid 4242 killed by SIGSEGV",
    ] {
        assert!(text.contains(whole), "{whole} cut:\n{text}");
    }
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
        },
        mapping: "[anon]".into(),
        mapping_offset: 4096,
        region: Some((0, region.name.clone(), location)),
        code: crate::output::fixtures::code(),
        stack: None,
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
