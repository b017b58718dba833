//! The terminal view's state and how each event changes it. Rendering is elsewhere and only
//! reads this state.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ratatui::{
    crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
    layout::Rect,
};

use super::layout;

use crate::{
    kernel::procmem::{PagePresence, VmaUsage},
    model::classify::{ClassCounts, ClassifiedFault, FaultClass},
    model::events::FaultTiming,
    model::pages::{PageModel, PageOrigin, PageState},
    model::region::{Location, Region},
    model::signals::{si_code_meaning, si_code_name, signal_name},
    output::explain,
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
    /// `demo alloc`: the workload child's mappings (smaps) once it started, before step 1.
    Started(Vec<VmaUsage>),
    /// `demo trace`: an event of the trace.
    Trace(Box<TraceEvent>),
    /// `demo trace`: the session's page states of the regions that changed, by region id.
    Pages(Vec<(usize, PageModel)>),
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
    /// How long it took and where the time went; `None` when it was not timed.
    pub timing: Option<FaultTiming>,
    pub step: Option<u32>,
    /// The code that faulted, when it tells something: in a walk, `None` for the workload's
    /// own code in demo's binary, which is demo's machinery, not the lesson's
    /// ([`StepReport::told_code`]).
    pub code: Option<std::sync::Arc<crate::kernel::symbols::Code>>,
}

/// A region on the page map, with what is known of each page.
#[derive(Clone, Debug)]
pub struct RegionView {
    pub region: Region,
    /// The page states: a walk's step report's, or the trace session's latest.
    pub pages: PageModel,
    /// Pages that faulted now: in the last step of a walk, since the last tick in a trace.
    pub recent: BTreeSet<u64>,
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
    fn new(region: Region) -> Self {
        Self {
            // Untouched until the walk's step or the trace session says otherwise.
            pages: PageModel::without_origins(region.page_count() as usize),
            region,
            recent: BTreeSet::new(),
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

    /// What made `page` what it is now: the last fault that completed on it (its step in a
    /// walk, its thread in a trace), or, in a walk, what the page model says put it there
    /// without a fault of its own. `None` for a page not present now: a page MADV_DONTNEED or
    /// munmap took away keeps its faults in the notes, but none of them made it what it is.
    pub fn made_by(&self, page: u64) -> Option<String> {
        if self
            .pages
            .state(page)
            .is_none_or(|state| state == PageState::Untouched)
        {
            return None;
        }
        let last = self
            .notes
            .get(&page)
            .and_then(|notes| notes.iter().rev().find(|n| n.class != FaultClass::Error));
        let by_note = |note: &PageNote| match note.step {
            Some(step) => format!("step {step}"),
            None => format!("tid {}", note.tid),
        };
        match (self.pages.origin(page), last) {
            // Present with no fault of its own since: the model's origin says how.
            (Some(PageOrigin::BeforeWalk), None) => Some("before the walk".to_owned()),
            (Some(PageOrigin::WithFault { step, how }), last)
                if last.is_none_or(|note| note.step < Some(step)) =>
            {
                Some(match how {
                    crate::model::pages::Companion::FaultAround => {
                        format!("step {step} fault-around")
                    }
                    crate::model::pages::Companion::HugePage => format!("step {step} huge page"),
                })
            }
            (_, Some(note)) => Some(by_note(note)),
            (_, None) => None,
        }
    }

    fn note(
        &mut self,
        location: Location,
        fault: &ClassifiedFault,
        code: Option<&std::sync::Arc<crate::kernel::symbols::Code>>,
        step: Option<u32>,
    ) {
        let raw = &fault.fault;
        self.recent.insert(location.page);
        self.notes.entry(location.page).or_default().push(PageNote {
            timestamp_ns: raw.timestamp_ns,
            tid: raw.tid,
            ip: raw.ip,
            access: raw.error_code.access().as_str(),
            class: fault.class,
            timing: fault.timing,
            step,
            code: code.map(std::sync::Arc::clone),
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

/// A fault's class with its duration when it was timed, as the view shows it: `minor 1.4 µs`,
/// or `error` alone (an error fault never completes).
pub fn class_and_time(class: FaultClass, timing: Option<FaultTiming>) -> String {
    match timing {
        Some(timing) => format!(
            "{} {}",
            class.as_str(),
            crate::output::duration::human(timing.duration_ns)
        ),
        None => class.as_str().to_owned(),
    }
}

/// The page map of a walk or a trace: its regions, the one shown, the cursor and the zoom.
#[derive(Clone, Debug, Default)]
pub struct PageMap {
    pub regions: Vec<RegionView>,
    pub selected: usize,
    /// The page under the cursor, in the selected region.
    pub cursor: u64,
    /// Pages per cell; 0 means "fit the region to the map".
    pub zoom: u64,
    /// The user chose the region with Tab. Until then a trace shows its newest region: the
    /// program's own, not those the dynamic loader made before the program ran.
    pub chosen: bool,
}

impl PageMap {
    pub fn region(&self) -> Option<&RegionView> {
        self.regions.get(self.selected)
    }
}

/// One row of the step list, with what the step showed and why, in the text report's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRow {
    pub step: u32,
    pub action: String,
    pub rss_kib: Option<u64>,
    /// Sentences under the row: its faults in the array or why there was none, malloc's
    /// header write, an access past the array, the child's death.
    pub why: Vec<String>,
}

/// The workload child's mappings as smaps showed them, and after which step (`None`: before
/// the first, when it had started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessMap {
    pub vmas: Vec<VmaUsage>,
    pub after_step: Option<u32>,
    /// The child is gone: these are the mappings at the last step it survived.
    pub gone: bool,
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

/// A walk's own state: the steps so far, and whether it waits for Enter.
#[derive(Clone, Debug)]
pub struct WalkView {
    pub map: PageMap,
    pub steps: Vec<StepRow>,
    pub awaiting_step: bool,
    /// The whole process, as `pmap -x` would sum it; `None` until smaps was read.
    pub process: Option<ProcessMap>,
}

/// `demo top`'s own state: every process of the last interval, sorted, and the highlighted one.
#[derive(Clone, Debug)]
pub struct TopView {
    /// Every process, sorted by `sort`; the first `count` are shown.
    pub rows: Vec<crate::top::Row>,
    pub sort: SortKey,
    /// The highlighted row, among those shown.
    pub selected: usize,
    /// `-n`: how many rows are shown.
    pub count: usize,
}

impl TopView {
    /// The rows on screen: every process sorted by the current key, cut to `-n`.
    pub fn shown(&self) -> &[crate::top::Row] {
        &self.rows[..self.rows.len().min(self.count)]
    }
}

/// What the view shows, with the state only that command has.
#[derive(Clone, Debug)]
pub enum View {
    Walk(WalkView),
    /// A trace: its page map, which the session's page states fill.
    Trace(PageMap),
    Top(TopView),
}

/// The whole state of the view. Only [`App::handle_event`] changes it.
pub struct App {
    pub(super) title: String,
    pub(super) view: View,
    pub(super) events: VecDeque<String>,
    /// Lines scrolled up from the newest event.
    pub(super) events_scroll: usize,
    pub(super) status: Status,
    faults_at_last_tick: u64,
    pub(super) paused: bool,
    pub(super) show_help: bool,
    pub(super) finished: Option<String>,
    /// The terminal's size, for the keys that move by the drawn rows.
    pub(super) size: Rect,
    /// Log messages, newest last.
    pub(super) logs: VecDeque<String>,
}

impl App {
    pub fn new(mode: Mode, title: String) -> Self {
        let view = match mode {
            Mode::Alloc => View::Walk(WalkView {
                map: PageMap::default(),
                steps: Vec::new(),
                awaiting_step: true,
                process: None,
            }),
            Mode::Trace => View::Trace(PageMap::default()),
            Mode::Top => View::Top(TopView {
                rows: Vec::new(),
                sort: SortKey::Rate,
                selected: 0,
                count: usize::MAX,
            }),
        };
        Self {
            title,
            view,
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
            size: Rect::new(0, 0, 80, 24),
            logs: VecDeque::new(),
        }
    }

    /// For `demo top`: how many rows to show, and the key they are sorted by at first.
    pub fn with_top(mut self, count: usize, sort: SortKey) -> Self {
        if let View::Top(top) = &mut self.view {
            top.count = count;
            top.sort = sort;
        }
        self
    }

    /// The page map of a walk or a trace.
    pub fn map(&self) -> Option<&PageMap> {
        match &self.view {
            View::Walk(walk) => Some(&walk.map),
            View::Trace(map) => Some(map),
            View::Top(_) => None,
        }
    }

    fn map_mut(&mut self) -> Option<&mut PageMap> {
        match &mut self.view {
            View::Walk(walk) => Some(&mut walk.map),
            View::Trace(map) => Some(map),
            View::Top(_) => None,
        }
    }

    /// The region shown on the page map.
    pub fn region(&self) -> Option<&RegionView> {
        self.map()?.region()
    }

    /// The walk waits for Enter before its next step.
    pub fn awaiting_step(&self) -> bool {
        matches!(&self.view, View::Walk(walk) if walk.awaiting_step)
    }

    /// The main area split into the page map and the panes below, as drawn and as the keys
    /// move: the map takes the rows its region needs.
    pub(super) fn map_and_middle(&self, main: Rect) -> [Rect; 2] {
        layout::map_and_middle(
            main,
            self.region().map(RegionView::shown_pages),
            self.map().map_or(0, |map| map.zoom),
        )
    }

    /// The page map as drawn at the current size: cells per row, and pages per cell.
    pub fn map_geometry(&self) -> (u64, u64) {
        let screen = layout::screen(self.size, !self.logs.is_empty());
        let [map, _] = self.map_and_middle(screen.main);
        let (row_cells, rows) = layout::map_grid(map);
        let shown = self.region().map_or(0, RegionView::shown_pages);
        let zoom = self.map().map_or(0, |map| map.zoom);
        (
            row_cells,
            layout::pages_per_cell(zoom, shown, row_cells * rows),
        )
    }

    /// Applies one event; returns what the run behind the view should do, if anything.
    pub fn handle_event(&mut self, event: UiEvent) -> Option<Request> {
        match event {
            UiEvent::Key(key) => return self.handle_key(key),
            UiEvent::Tick => {
                // In a trace, "faulted now" means within the last tick.
                if let View::Trace(map) = &mut self.view
                    && !self.paused
                {
                    map.regions.iter_mut().for_each(|view| view.recent.clear());
                }
                let faults = self.status.classes.total();
                self.status.rate =
                    (faults - self.faults_at_last_tick) as f64 / super::TICK.as_secs_f64();
                self.faults_at_last_tick = faults;
            }
            UiEvent::Resize(size) => self.size = size,
            UiEvent::Region(region) => {
                if let Some(map) = self.map_mut() {
                    map.regions.push(RegionView::new(region));
                }
            }
            UiEvent::Step(step) => self.apply_step(*step),
            UiEvent::Started(vmas) => {
                if let View::Walk(walk) = &mut self.view {
                    walk.process = Some(ProcessMap {
                        vmas,
                        after_step: None,
                        gone: false,
                    });
                }
            }
            UiEvent::Trace(event) => self.apply_trace(*event),
            UiEvent::Pages(pages) => {
                if let View::Trace(map) = &mut self.view {
                    for (id, pages) in pages {
                        if let Some(view) = map.regions.get_mut(id) {
                            view.pages = pages;
                        }
                    }
                }
            }
            UiEvent::Top(interval) => {
                self.status.lost = interval.dropped;
                if let View::Top(top) = &mut self.view
                    && !self.paused
                {
                    top.rows = interval.rows;
                    crate::top::sort_rows(&mut top.rows, top.sort);
                    top.selected = top.selected.min(top.shown().len().saturating_sub(1));
                }
            }
            UiEvent::Log(line) => {
                self.logs.push_back(line);
                if self.logs.len() > 100 {
                    self.logs.pop_front();
                }
            }
            UiEvent::Finished(how) => {
                self.status.target = how.clone();
                if let View::Walk(walk) = &mut self.view {
                    walk.awaiting_step = false;
                }
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
        match key.code {
            KeyCode::Char('q') => return Some(Request::Quit),
            KeyCode::Char('?') => self.show_help = true,
            KeyCode::Char('p') => self.paused = !self.paused,
            KeyCode::PageUp => {
                self.events_scroll = (self.events_scroll + 10).min(self.events.len())
            }
            KeyCode::PageDown => self.events_scroll = self.events_scroll.saturating_sub(10),
            code => {
                let geometry = self.map_geometry();
                let finished = self.finished.is_some();
                return match &mut self.view {
                    View::Top(top) => top_key(top, code),
                    View::Walk(walk) => {
                        if matches!(code, KeyCode::Enter | KeyCode::Char(' '))
                            && walk.awaiting_step
                            && !finished
                        {
                            walk.awaiting_step = false;
                            return Some(Request::NextStep);
                        }
                        map_key(&mut walk.map, code, geometry);
                        None
                    }
                    View::Trace(map) => {
                        map_key(map, code, geometry);
                        None
                    }
                };
            }
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

    fn apply_step(&mut self, step: StepReport) {
        for fault in &step.faults {
            self.status.classes.add(fault.fault.class);
            if let Some(location) = fault.location() {
                self.push_event(format!(
                    "step {} {} {} arr[{}] page {}",
                    step.step,
                    class_and_time(fault.fault.class, fault.fault.timing),
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
        for sentence in crate::output::explain::explain(&step) {
            self.push_event(format!("step {} {sentence}", step.step));
        }
        if let Some(words) = explain::death(&step) {
            if let Some(death) = &step.death {
                self.status.target = death.status.to_string();
            }
            for sentence in [Some(words.fate), words.signal, words.place]
                .into_iter()
                .flatten()
            {
                self.push_event(format!("step {} {sentence}", step.step));
            }
        }
        let View::Walk(walk) = &mut self.view else {
            return;
        };
        if let Some(view) = walk.map.regions.first_mut() {
            view.recent.clear();
            view.pages = step.pages.clone();
            for fault in &step.faults {
                if let Some(location) = fault.location() {
                    // Only code outside demo's binary, as the text report names it.
                    let code = step.told_code(fault).is_some().then_some(&fault.code);
                    view.note(location, &fault.fault, code, Some(step.step));
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
                            file: kernel.file_pages.contains(&page),
                            huge: kernel.huge_pages.contains(&page),
                        })
                    })
                    .collect();
            }
        }
        walk.steps.push(StepRow {
            step: step.step,
            action: step.action.clone(),
            rss_kib: step.kernel.as_ref().map(|k| k.rss_kib),
            why: step_why(&step),
        });
        match (&step.kernel, &mut walk.process) {
            (Some(kernel), _) => {
                walk.process = Some(ProcessMap {
                    vmas: kernel.process.clone(),
                    after_step: Some(step.step),
                    gone: false,
                });
            }
            (None, Some(process)) => process.gone = true,
            (None, None) => {}
        }
        walk.awaiting_step = step.death.is_none();
    }

    fn apply_trace(&mut self, event: TraceEvent) {
        let line = match event {
            TraceEvent::Fault(traced) => {
                self.status.classes.add(traced.fault.class);
                let raw = traced.fault.fault;
                // The page's state is the session's, which arrives as UiEvent::Pages; the view
                // keeps only which faults hit it, and when.
                if let View::Trace(map) = &mut self.view
                    && let Some((id, _, location)) = &traced.region
                    && let Some(view) = map.regions.get_mut(*id)
                    && !self.paused
                {
                    view.note(*location, &traced.fault, Some(&traced.code), None);
                }
                let place = traced
                    .region_place()
                    .unwrap_or_else(|| traced.mapping_place());
                let (symbol, _, _) = traced.code.innermost();
                format!(
                    "{} {} {} {place} by {}",
                    raw.tid,
                    class_and_time(traced.fault.class, traced.fault.timing),
                    raw.error_code.access().as_str(),
                    crate::output::code::function(symbol, traced.code.module.as_deref())
                )
            }
            TraceEvent::RegionStarted(tracked) => {
                // Regions are numbered by the session in creation order, like this list.
                let line = format!(
                    "region {} {} bytes ({})",
                    tracked.region.name,
                    tracked.region.len,
                    tracked.origin.as_str()
                );
                if let Some(map) = self.map_mut() {
                    map.regions.push(RegionView::new(tracked.region));
                    if !map.chosen {
                        map.selected = map.regions.len() - 1;
                        map.cursor = 0;
                        map.zoom = 0;
                    }
                }
                line
            }
            TraceEvent::RegionEnded(tracked) => format!("region {} ended", tracked.region.name),
            TraceEvent::Syscall(call) => format!("{} {}", call.tid, call.describe()),
            TraceEvent::Signal(signal) => format!(
                "{} signal {} si_code {} ({}) to tid {}",
                signal.tid,
                signal_name(signal.signal),
                si_code_name(signal.signal, signal.code),
                si_code_meaning(signal.signal, signal.code),
                signal.target_tid
            ),
            TraceEvent::ProcessForked { pid, parent } => format!("{parent} forked {pid}"),
            TraceEvent::ProcessExited { pid } => format!("{pid} exited"),
        };
        self.push_event(line);
    }
}

/// What a step showed and why, in the text report's words (`output::explain`): its faults in
/// the array, or why its access did not fault; malloc's header write; an access past the array
/// that did not die; the child's death with the signal's si_code and where it fell.
fn step_why(step: &StepReport) -> Vec<String> {
    let name = &step.region.name;
    let header = explain::chunk_header(step);
    // malloc's header write is the header sentence's to explain.
    let header_write = step.next_chunk_header_write().map(|(fault, _)| fault);
    // A fault that did not complete is the death's to explain, where it fell.
    let died = step.death.is_some();
    let faults: Vec<_> = step
        .faults_in_region()
        .filter(|(fault, _)| !header_write.is_some_and(|header| std::ptr::eq(header, *fault)))
        .filter(|(fault, _)| !(died && fault.fault.class == FaultClass::Error))
        .collect();
    let mut why = Vec::new();
    match faults.as_slice() {
        [] if header.is_some() || died => {}
        [] => why.push(explain::no_fault(step).unwrap_or_else(|| format!("no fault in {name}"))),
        [(fault, location)] => {
            let code = fault.fault.fault.error_code;
            let what = if !code.known() {
                "access unknown".to_owned()
            } else if code.present() {
                format!("{}, page present", code.access().as_str())
            } else {
                format!("{}, page not present", code.access().as_str())
            };
            why.push(format!(
                "{} fault: page {}, {what}",
                fault.fault.class.as_str(),
                location.page
            ));
        }
        many => {
            let mut pages: Vec<u64> = many.iter().map(|(_, location)| location.page).collect();
            pages.sort_unstable();
            pages.dedup();
            why.push(format!(
                "{} faults in {name}: {}",
                many.len(),
                explain::pages(&pages)
            ));
        }
    }
    why.extend(header);
    why.extend(explain::past_the_array(step).map(|lines| lines.join(" ")));
    if let Some(words) = explain::death(step) {
        why.extend(
            [Some(words.fate), words.signal, words.place]
                .into_iter()
                .flatten(),
        );
    }
    why
}

/// A key in `demo top`: move, re-sort, or trace the highlighted process.
fn top_key(top: &mut TopView, code: KeyCode) -> Option<Request> {
    match code {
        KeyCode::Enter => {
            return top
                .shown()
                .get(top.selected)
                // An exited row's pid may belong to another process by now.
                .filter(|row| !row.exited)
                .and_then(crate::top::Row::pid)
                .map(Request::TracePid);
        }
        KeyCode::Char('s') => {
            let timed = top.rows.iter().any(|row| row.fault_time.is_some());
            top.sort = match top.sort {
                SortKey::Rate => SortKey::Total,
                SortKey::Total => SortKey::Major,
                SortKey::Major if timed => SortKey::FaultTime,
                SortKey::Major | SortKey::FaultTime => SortKey::Rate,
            };
            // All processes, not only those shown: the highlighted row is the one at the
            // same place in the new order, and Enter traces it.
            crate::top::sort_rows(&mut top.rows, top.sort);
        }
        KeyCode::Down | KeyCode::Char('j') => {
            top.selected = (top.selected + 1).min(top.shown().len().saturating_sub(1));
        }
        KeyCode::Up | KeyCode::Char('k') => top.selected = top.selected.saturating_sub(1),
        _ => {}
    }
    None
}

/// A key on the page map: move the cursor by drawn cells and rows, zoom, change region.
/// `(row_cells, per_cell)` is the map as drawn.
fn map_key(map: &mut PageMap, code: KeyCode, (row_cells, per_cell): (u64, u64)) {
    let shown = map.region().map_or(0, RegionView::shown_pages);
    let last = shown.saturating_sub(1);
    match code {
        KeyCode::Right | KeyCode::Char('l') => map.cursor = (map.cursor + per_cell).min(last),
        KeyCode::Left | KeyCode::Char('h') => map.cursor = map.cursor.saturating_sub(per_cell),
        KeyCode::Down | KeyCode::Char('j') => {
            map.cursor = (map.cursor + per_cell * row_cells).min(last);
        }
        KeyCode::Up | KeyCode::Char('k') => {
            map.cursor = map.cursor.saturating_sub(per_cell * row_cells);
        }
        KeyCode::Char('+') => map.zoom = (map.zoom / 2).max(1),
        KeyCode::Char('-') => map.zoom = (map.zoom.max(1) * 2).min(shown.max(1)),
        KeyCode::Tab if !map.regions.is_empty() => {
            map.selected = (map.selected + 1) % map.regions.len();
            map.cursor = 0;
            map.zoom = 0;
            map.chosen = true;
        }
        _ => {}
    }
}

/// Every key, for the help screen.
pub const HELP: &[(&str, &str)] = &[
    ("Enter, space", "next step (alloc); trace the process (top)"),
    ("arrows, h j k l", "move over pages (over processes in top)"),
    ("+ / -", "zoom in / out: fewer / more pages per cell"),
    ("Tab", "next region"),
    ("Enter (trace)", "to the command, in its pane at the bottom"),
    (
        "F2 (trace)",
        "every key to the command, or back to the view",
    ),
    ("PgUp / PgDn", "scroll the event list"),
    ("s", "next sort key (top)"),
    ("p", "pause the display (the trace goes on)"),
    ("?", "this help; any key closes it"),
    ("q, Ctrl-C", "quit"),
];
