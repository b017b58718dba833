//! The terminal view's state and how each event changes it. Rendering is elsewhere and only
//! reads this state.

use std::collections::{BTreeMap, VecDeque};

use ratatui::{
    crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
    layout::Rect,
};

use super::layout;

use crate::{
    kernel::procmem::PagePresence,
    model::classify::{ClassCounts, ClassifiedFault, FaultClass},
    model::pages::PageModel,
    model::region::{Location, Region},
    model::signals::signal_name,
    top::{Interval, SortKey},
    trace::session::TraceEvent,
    walk::step_report::StepReport,
};

/// Everything the view can be told.
#[derive(Debug)]
pub enum UiEvent {
    Key(KeyEvent),
    /// Time passes: rates are recomputed.
    Tick,
    /// The terminal's size, at the start and whenever it changes; the next draw adapts.
    Resize(Rect),
    /// `demo alloc`: the array is known.
    Region(Region),
    /// `demo alloc`: a step finished.
    Step(Box<StepReport>),
    /// `demo trace`: an event of the trace.
    Trace(Box<TraceEvent>),
    /// `demo top`: an interval's counts.
    Top(Box<Interval>),
    /// The run behind the view ended, with a line saying how.
    Finished(String),
    /// A log message, for the log pane.
    Log(String),
}

/// What the view asks of the run behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Run the next step of the walk.
    NextStep,
    /// Open `demo trace --pid` on this process.
    TracePid(u32),
    Quit,
}

/// Which command the view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Alloc,
    Trace,
    Top,
}

/// One fault that hit a page, for the detail panel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageNote {
    pub timestamp_ns: u64,
    pub tid: u32,
    pub ip: u64,
    pub access: &'static str,
    pub class: FaultClass,
    pub step: Option<u32>,
}

/// A region on the page map, with what is known of each page.
#[derive(Clone, Debug)]
pub struct RegionView {
    pub region: Region,
    pub pages: PageModel,
    /// Per page: the faults that hit it.
    pub notes: BTreeMap<u64, Vec<PageNote>>,
    /// Pages with a major fault.
    pub major: Vec<u64>,
    /// Pages with a fault that never completed (e.g. SIGSEGV), including pages past the end.
    pub errors: Vec<u64>,
    /// What pagemap said at the last look, per page (alloc).
    pub kernel: Vec<Option<PagePresence>>,
}

impl RegionView {
    pub fn new(region: Region) -> Self {
        Self {
            pages: PageModel::without_origins(region.page_count() as usize),
            region,
            notes: BTreeMap::new(),
            major: Vec::new(),
            errors: Vec::new(),
            kernel: Vec::new(),
        }
    }

    /// Pages shown: the region's own, plus those after it where faults can land.
    pub fn shown_pages(&self) -> u64 {
        self.region.page_count() + self.region.pages_after
    }

    fn note(&mut self, location: Location, fault: &ClassifiedFault, step: Option<u32>) {
        let raw = &fault.fault;
        self.notes.entry(location.page).or_default().push(PageNote {
            timestamp_ns: raw.timestamp_ns,
            tid: raw.tid,
            ip: raw.ip,
            access: raw.error_code.access().as_str(),
            class: fault.class,
            step,
        });
        let list = match fault.class {
            FaultClass::Major => &mut self.major,
            FaultClass::Error => &mut self.errors,
            FaultClass::Minor => return,
        };
        if !list.contains(&location.page) {
            list.push(location.page);
        }
    }
}

/// One row of the step list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRow {
    pub step: u32,
    pub action: String,
    pub faults_in_region: usize,
    pub rss_kib: Option<u64>,
}

/// Totals for the status line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    pub classes: ClassCounts,
    pub lost: u64,
    /// Faults per second over the last tick.
    pub rate: f64,
    /// The target's state: running, exited, killed by a signal.
    pub target: String,
}

/// How many lines the event list keeps.
const EVENT_LINES: usize = 2000;

/// The whole state of the view.
pub struct App {
    pub mode: Mode,
    pub title: String,
    pub regions: Vec<RegionView>,
    pub selected_region: usize,
    /// The page under the cursor, in the selected region.
    pub cursor: u64,
    /// Pages per cell; 0 means "fit the region to the map".
    pub zoom: u64,
    pub steps: Vec<StepRow>,
    /// The walk waits for Enter before its next step.
    pub awaiting_step: bool,
    pub events: VecDeque<String>,
    /// Lines scrolled up from the newest event.
    pub events_scroll: usize,
    pub status: Status,
    faults_at_last_tick: u64,
    pub paused: bool,
    pub show_help: bool,
    pub finished: Option<String>,
    pub top_rows: Vec<crate::top::Row>,
    pub top_sort: SortKey,
    pub top_selected: usize,
    /// `-n`: how many rows of `demo top` are shown.
    pub top_count: usize,
    /// The terminal's size, for the keys that move by the drawn rows.
    pub size: Rect,
    /// Log messages, newest last.
    pub logs: VecDeque<String>,
}

impl App {
    pub fn new(mode: Mode, title: String) -> Self {
        Self {
            mode,
            title,
            regions: Vec::new(),
            selected_region: 0,
            cursor: 0,
            zoom: 0,
            steps: Vec::new(),
            awaiting_step: mode == Mode::Alloc,
            events: VecDeque::new(),
            events_scroll: 0,
            status: Status {
                target: "running".to_owned(),
                ..Status::default()
            },
            faults_at_last_tick: 0,
            paused: false,
            show_help: false,
            finished: None,
            top_rows: Vec::new(),
            top_sort: SortKey::Rate,
            top_selected: 0,
            top_count: usize::MAX,
            size: Rect::new(0, 0, 80, 24),
            logs: VecDeque::new(),
        }
    }

    /// Adds a log message to the log pane.
    fn push_log(&mut self, line: String) {
        self.logs.push_back(line);
        if self.logs.len() > 100 {
            self.logs.pop_front();
        }
    }

    /// For `demo top`: how many rows to show, and the key they are sorted by at first.
    pub fn with_top(mut self, count: usize, sort: SortKey) -> Self {
        self.top_count = count;
        self.top_sort = sort;
        self
    }

    /// The rows of `demo top` on screen: every process sorted by the current key, cut to `-n`.
    pub fn shown_top_rows(&self) -> &[crate::top::Row] {
        &self.top_rows[..self.top_rows.len().min(self.top_count)]
    }

    /// The page map as drawn at the current size: cells per row, and pages per cell.
    pub fn map_geometry(&self) -> (u64, u64) {
        let screen = layout::screen(self.size, !self.logs.is_empty());
        let [map, _] = layout::map_and_middle(screen.main);
        let (row_cells, rows) = layout::map_grid(map);
        let shown = self.region().map_or(0, RegionView::shown_pages);
        (
            row_cells,
            layout::pages_per_cell(self.zoom, shown, row_cells * rows),
        )
    }

    pub fn region(&self) -> Option<&RegionView> {
        self.regions.get(self.selected_region)
    }

    /// Applies one event; returns what the run behind the view should do, if anything.
    pub fn handle_event(&mut self, event: UiEvent) -> Option<Request> {
        match event {
            UiEvent::Key(key) => return self.handle_key(key),
            UiEvent::Tick => {
                // In a trace, "faulted now" means within the last tick.
                if self.mode == Mode::Trace && !self.paused {
                    for view in &mut self.regions {
                        view.pages.begin_step();
                    }
                }
                let faults = self.status.classes.total();
                self.status.rate =
                    (faults - self.faults_at_last_tick) as f64 / super::TICK.as_secs_f64();
                self.faults_at_last_tick = faults;
            }
            UiEvent::Resize(size) => self.size = size,
            UiEvent::Region(region) => self.regions.push(RegionView::new(region)),
            UiEvent::Step(step) => self.apply_step(*step),
            UiEvent::Trace(event) => self.apply_trace(*event),
            UiEvent::Top(interval) => {
                if !self.paused {
                    self.top_rows = interval.rows;
                    crate::top::sort_rows(&mut self.top_rows, self.top_sort);
                    self.status.lost = interval.dropped;
                    self.top_selected = self
                        .top_selected
                        .min(self.shown_top_rows().len().saturating_sub(1));
                }
            }
            UiEvent::Log(line) => self.push_log(line),
            UiEvent::Finished(how) => {
                self.status.target = how.clone();
                self.awaiting_step = false;
                self.finished = Some(how);
            }
        }
        None
    }

    fn handle_key(&mut self, key: KeyEvent) -> Option<Request> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Some(Request::Quit);
        }
        if self.show_help {
            // Any key closes the help, as pagemon's pop-ups close.
            self.show_help = false;
            return None;
        }
        let shown = self.region().map_or(0, RegionView::shown_pages);
        let (row_cells, per_cell) = self.map_geometry();
        let step = per_cell;
        match key.code {
            KeyCode::Char('q') => return Some(Request::Quit),
            KeyCode::Char('?') => self.show_help = true,
            KeyCode::Char('p') => self.paused = !self.paused,
            KeyCode::Enter | KeyCode::Char(' ')
                if self.mode == Mode::Alloc && self.awaiting_step && self.finished.is_none() =>
            {
                self.awaiting_step = false;
                return Some(Request::NextStep);
            }
            KeyCode::Enter if self.mode == Mode::Top => {
                return self
                    .shown_top_rows()
                    .get(self.top_selected)
                    .map(|row| Request::TracePid(row.pid));
            }
            KeyCode::Char('s') if self.mode == Mode::Top => {
                self.top_sort = match self.top_sort {
                    SortKey::Rate => SortKey::Total,
                    SortKey::Total => SortKey::Major,
                    SortKey::Major => SortKey::Rate,
                };
                // All processes, not only those shown: the highlighted row is the one at the
                // same place in the new order, and Enter traces it.
                crate::top::sort_rows(&mut self.top_rows, self.top_sort);
            }
            KeyCode::Down | KeyCode::Char('j') if self.mode == Mode::Top => {
                self.top_selected =
                    (self.top_selected + 1).min(self.shown_top_rows().len().saturating_sub(1));
            }
            KeyCode::Up | KeyCode::Char('k') if self.mode == Mode::Top => {
                self.top_selected = self.top_selected.saturating_sub(1);
            }
            KeyCode::Right | KeyCode::Char('l') => {
                self.cursor = (self.cursor + step).min(shown.saturating_sub(1))
            }
            KeyCode::Left | KeyCode::Char('h') => self.cursor = self.cursor.saturating_sub(step),
            KeyCode::Down | KeyCode::Char('j') => {
                self.cursor = (self.cursor + step * row_cells).min(shown.saturating_sub(1));
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.cursor = self.cursor.saturating_sub(step * row_cells);
            }
            KeyCode::PageUp => {
                self.events_scroll = (self.events_scroll + 10).min(self.events.len())
            }
            KeyCode::PageDown => self.events_scroll = self.events_scroll.saturating_sub(10),
            KeyCode::Char('+') => self.zoom = (self.zoom / 2).max(1),
            KeyCode::Char('-') => self.zoom = (self.zoom.max(1) * 2).min(shown.max(1)),
            KeyCode::Tab if !self.regions.is_empty() => {
                self.selected_region = (self.selected_region + 1) % self.regions.len();
                self.cursor = 0;
                self.zoom = 0;
            }
            _ => {}
        }
        None
    }

    fn push_event(&mut self, line: String) {
        if self.paused {
            return;
        }
        self.events.push_back(line);
        if self.events.len() > EVENT_LINES {
            self.events.pop_front();
        }
    }

    fn count(&mut self, class: FaultClass) {
        self.status.classes.add(class);
    }

    fn apply_step(&mut self, step: StepReport) {
        for fault in &step.faults {
            self.count(fault.fault.class);
            if let Some(location) = fault.location {
                self.push_event(format!(
                    "step {} {} {} arr[{}] page {}",
                    step.step,
                    fault.fault.class.as_str(),
                    fault.fault.fault.error_code.access().as_str(),
                    location.index,
                    location.page,
                ));
            }
        }
        let elsewhere: u64 = step.elsewhere().values().sum();
        if elsewhere > 0 {
            self.push_event(format!(
                "step {} {elsewhere} fault(s) outside arr",
                step.step
            ));
        }
        for call in &step.syscalls {
            self.push_event(format!("step {} {}", step.step, call.describe()));
        }
        if let Some(death) = &step.death {
            self.status.target = death.status.to_string();
            let signal = death.wait_signal.map(signal_name).unwrap_or_default();
            self.push_event(format!(
                "step {} {signal}: the child {}",
                step.step, death.status
            ));
        }
        if let Some(view) = self.regions.first_mut() {
            view.pages = step.pages.clone();
            for fault in &step.faults {
                if let Some(location) = fault.location {
                    view.note(location, &fault.fault, Some(step.step));
                }
            }
            if let Some(kernel) = &step.kernel {
                view.kernel = (0..view.region.page_count())
                    .map(|page| {
                        Some(PagePresence {
                            present: kernel.resident_pages.contains(&page)
                                || kernel.zero_pages.contains(&page),
                            pfn: 0,
                            zero: kernel.zero_pages.contains(&page),
                        })
                    })
                    .collect();
            }
        }
        self.steps.push(StepRow {
            step: step.step,
            action: step.action.clone(),
            faults_in_region: step.faults_in_region().count(),
            rss_kib: step.kernel.as_ref().map(|k| k.rss_kib),
        });
        self.awaiting_step = step.death.is_none();
    }

    fn apply_trace(&mut self, event: TraceEvent) {
        match event {
            TraceEvent::Fault(traced) => {
                self.count(traced.fault.class);
                let raw = traced.fault.fault;
                if let Some((id, _, location)) = &traced.region
                    && let Some(view) = self.regions.get_mut(*id)
                {
                    if traced.fault.class != FaultClass::Error {
                        view.pages.apply_at(location, raw.error_code.access(), 0);
                    }
                    view.note(*location, &traced.fault, None);
                }
                let place = traced
                    .region_place()
                    .unwrap_or_else(|| traced.mapping_place());
                self.push_event(format!(
                    "{} {} {} {place}",
                    raw.tid,
                    traced.fault.class.as_str(),
                    raw.error_code.access().as_str()
                ));
            }
            TraceEvent::RegionStarted(tracked) => {
                self.push_event(format!(
                    "region {} {} bytes ({})",
                    tracked.region.name,
                    tracked.region.len,
                    tracked.origin.as_str()
                ));
                // Regions are numbered by the session in creation order, like this list.
                self.regions.push(RegionView::new(tracked.region));
            }
            TraceEvent::RegionEnded(tracked) => {
                self.push_event(format!("region {} ended", tracked.region.name));
            }
            TraceEvent::Syscall(call) => {
                self.push_event(format!("{} {}", call.tid, call.describe()))
            }
            TraceEvent::Signal(signal) => self.push_event(format!(
                "{} signal {} to tid {}",
                signal.tid,
                signal_name(signal.signal),
                signal.target_tid
            )),
            TraceEvent::ProcessForked { pid, parent } => {
                self.push_event(format!("{parent} forked {pid}"));
            }
            TraceEvent::ProcessExited { pid } => self.push_event(format!("{pid} exited")),
        }
    }
}

/// Every key, for the help screen.
pub const HELP: &[(&str, &str)] = &[
    ("Enter, space", "next step (alloc); trace the process (top)"),
    ("arrows, h j k l", "move over pages (over processes in top)"),
    ("+ / -", "zoom in / out: fewer / more pages per cell"),
    ("Tab", "next region"),
    ("PgUp / PgDn", "scroll the event list"),
    ("s", "next sort key (top)"),
    ("p", "pause the display (the trace goes on)"),
    ("?", "this help; any key closes it"),
    ("q, Ctrl-C", "quit"),
];
