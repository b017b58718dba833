//! Draws the terminal view from the `App`; it never changes the state.

use std::ops::Range;

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, List, ListItem, Paragraph, Row, Table, Wrap},
};

use super::app::{App, HELP, PageMap, PageNote, ProcessMap, RegionView, TopView, View, WalkView};
use super::{fit, layout, pmap};
use crate::model::{events::FaultTiming, pages::PageState};

/// What one cell of the page map shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    Untouched,
    ZeroPage,
    Resident,
    FaultedNow,
    Major,
    Error,
    /// Past the mapping: no page can be there.
    Outside,
    /// Several pages: how many of them are resident, 0 to 4 quarters.
    Heat(u8),
}

impl Cell {
    /// The state's name and the colours of a wide labelled cell.
    fn label(self) -> (&'static str, Style) {
        let on = |bg| Style::default().bg(bg).fg(Color::Black);
        match self {
            Self::Untouched => ("untouched", on(Color::DarkGray).fg(Color::White)),
            Self::ZeroPage => ("zero page", on(Color::Blue).fg(Color::White)),
            Self::Resident | Self::Heat(_) => ("resident", on(Color::Green)),
            Self::FaultedNow => ("faulted now", on(Color::Yellow)),
            Self::Major => ("major fault", on(Color::Magenta)),
            Self::Error => ("fault failed", on(Color::Red).fg(Color::White)),
            Self::Outside => ("no page", on(Color::Black).fg(Color::DarkGray)),
        }
    }

    fn glyph(self) -> (char, Style) {
        let color = |c| Style::default().fg(c);
        match self {
            Self::Untouched => ('·', color(Color::DarkGray)),
            Self::ZeroPage => ('0', color(Color::Blue)),
            Self::Resident => ('█', color(Color::Green)),
            Self::FaultedNow => ('*', color(Color::Yellow).add_modifier(Modifier::BOLD)),
            Self::Major => ('M', color(Color::Magenta)),
            Self::Error => ('X', color(Color::Red).add_modifier(Modifier::BOLD)),
            Self::Outside => ('×', color(Color::DarkGray)),
            Self::Heat(quarters) => (
                [' ', '░', '▒', '▓', '█'][quarters.min(4) as usize],
                color(Color::Green),
            ),
        }
    }
}

/// The pages with an error and with a major fault, sorted once per drawing, so that a cell asks
/// for the marks in its range in a binary search.
struct Marks {
    errors: Vec<u64>,
    major: Vec<u64>,
}

impl Marks {
    fn of(view: &RegionView) -> Self {
        let sorted = |pages: &[u64]| {
            let mut pages = pages.to_vec();
            pages.sort_unstable();
            pages.dedup();
            pages
        };
        Self {
            errors: sorted(&view.errors),
            major: sorted(&view.major),
        }
    }
}

/// The part of `sorted` that lies in `pages`.
fn marked_in(sorted: &[u64], pages: Range<u64>) -> &[u64] {
    let from = sorted.partition_point(|&p| p < pages.start);
    let to = sorted.partition_point(|&p| p < pages.end);
    &sorted[from..to.max(from)]
}

/// The state of page `page` of `view`.
fn page_cell(view: &RegionView, marks: &Marks, page: u64) -> Cell {
    if marks.errors.binary_search(&page).is_ok() {
        return Cell::Error;
    }
    let Some(state) = view.pages.state(page) else {
        return Cell::Outside;
    };
    if view.recent.contains(&page) {
        Cell::FaultedNow
    } else if marks.major.binary_search(&page).is_ok() {
        Cell::Major
    } else {
        match state {
            PageState::Untouched => Cell::Untouched,
            PageState::ZeroPage => Cell::ZeroPage,
            PageState::Resident => Cell::Resident,
        }
    }
}

/// The pages cell `cell` stands for when each cell holds `per_cell` of `shown` pages: cells
/// take consecutive runs from page 0, so every page is in exactly one cell.
pub fn cell_pages(cell: u64, per_cell: u64, shown: u64) -> Range<u64> {
    let first = cell.saturating_mul(per_cell).min(shown);
    first..first.saturating_add(per_cell).min(shown)
}

/// The cells `drawn` of the page map for `view`, `per_cell` pages each. A cell of several pages
/// is counted from the model's touched pages and the marks in its range, so drawing costs the
/// cells on screen and the pages touched, never the pages of the region.
pub fn cells(view: &RegionView, per_cell: u64, drawn: Range<u64>) -> Vec<Cell> {
    let shown = view.shown_pages();
    let modelled = view.pages.page_count();
    let marks = Marks::of(view);
    drawn
        .map(|cell| {
            let pages = cell_pages(cell, per_cell, shown);
            if per_cell == 1 {
                return page_cell(view, &marks, pages.start);
            }
            if !marked_in(&marks.errors, pages.clone()).is_empty() {
                return Cell::Error;
            }
            // Pages past the model are outside: not resident, never faulted now.
            let inside = pages.start.min(modelled)..pages.end.min(modelled);
            if view.recent.range(inside.clone()).next().is_some() {
                return Cell::FaultedNow;
            }
            let (resident, _) = view.pages.counts_in(inside.clone());
            // A major fault's page shows as resident whatever the model says of it.
            let major = marked_in(&marks.major, inside)
                .iter()
                .filter(|&&page| view.pages.state(page) != Some(PageState::Resident))
                .count() as u64;
            let len = pages.end - pages.start;
            Cell::Heat(((resident + major) * 4).div_ceil(len.max(1)) as u8)
        })
        .collect()
}

pub fn render(app: &App, frame: &mut Frame) {
    render_in(app, frame, frame.area());
}

/// Draws the view in `area` of the frame (all of it but the command pane's, under `--tui`
/// with a command).
pub fn render_in(app: &App, frame: &mut Frame, area: Rect) {
    let layout::Screen {
        main,
        log: log_pane,
        status,
    } = layout::screen(area, !app.logs.is_empty());
    if !app.logs.is_empty() {
        let lines: Vec<Line> = app
            .logs
            .iter()
            .rev()
            .take(2)
            .rev()
            .map(|line| Line::from(line.as_str()))
            .collect();
        frame.render_widget(
            Paragraph::new(lines).block(Block::default().borders(Borders::TOP).title(" log ")),
            log_pane,
        );
    }
    let (map, walk) = match &app.view {
        View::Top(top) => {
            render_top(top, frame, main);
            (None, None)
        }
        View::Walk(walk) => (Some(&walk.map), Some(walk)),
        View::Trace(map) => (Some(map), None),
    };
    if let Some(map) = map {
        let [map_area, middle] = app.map_and_middle(main);
        render_map(map, frame, map_area);
        let [left, mut events] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(middle);
        let [list, detail] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(left);
        match walk {
            Some(walk) => {
                render_steps(walk, frame, list);
                if let Some(process) = walk.process.as_ref().filter(|p| !p.vmas.is_empty()) {
                    let table;
                    [table, events] = process_and_events(process, map, events);
                    render_process(process, map, frame, table);
                }
            }
            None => render_regions(map, frame, list),
        }
        render_detail(map, frame, detail);
        render_events(app, frame, events);
    }
    render_status(app, frame, status);
    if app.show_help {
        render_help(frame);
    }
}

fn render_map(map: &PageMap, frame: &mut Frame, area: Rect) {
    let Some(view) = map.region() else {
        frame.render_widget(
            Paragraph::new("waiting for the first region…")
                .block(Block::bordered().title(" pages ")),
            area,
        );
        return;
    };
    let region = &view.region;
    if map.zoom == 0 && layout::labelled_cell_width(area, view.shown_pages()).is_some() {
        return render_labelled_pages(map.cursor, view, frame, area);
    }
    let (row_cells, rows) = layout::map_grid(area);
    let shown = view.shown_pages();
    let per_cell = layout::pages_per_cell(map.zoom, shown, row_cells * rows);
    let cursor_cell = map.cursor / per_cell;
    // Zoomed in, the region takes more rows than the map has: the rows scroll to keep the
    // cursor's row in view (fitted, every row is in view and the first row is row 0).
    let first_row = (cursor_cell / row_cells).saturating_sub(rows - 1);
    let first_cell = first_row * row_cells;
    let drawn = first_cell..shown.div_ceil(per_cell).min(first_cell + row_cells * rows);
    let cells = cells(view, per_cell, drawn);
    let lines: Vec<Line> = cells
        .chunks(row_cells as usize)
        .enumerate()
        .map(|(row, chunk)| {
            let row = first_row + row as u64;
            let first_page = row * row_cells * per_cell;
            let (first_index, _) =
                region.index_range_of_page(first_page.min(region.page_count().saturating_sub(1)));
            // The index column is 7 wide, whatever the index: a wider label would push the
            // row's last cells past the border, and their pages would never be drawn.
            let mut spans = vec![Span::styled(
                format!("{:>7} ", fit::number(first_index, INDEX_COLUMNS)),
                Style::default().fg(Color::DarkGray),
            )];
            spans.extend(chunk.iter().enumerate().map(|(column, cell)| {
                let (glyph, style) = cell.glyph();
                let index = row * row_cells + column as u64;
                let style = highlighted(style, index == cursor_cell);
                Span::styled(glyph.to_string(), style)
            }));
            Line::from(spans)
        })
        .collect();
    // Titles sit on the border, two columns in from each corner.
    let room = usize::from(area.width.saturating_sub(4));
    let title = fit::words(
        &format!(
            "{} {} bytes, {} pages, {} per cell",
            region.name,
            region.len,
            region.page_count(),
            if per_cell == 1 {
                "1 page".to_owned()
            } else {
                format!("{per_cell} pages")
            }
        ),
        room.saturating_sub(2),
    );
    let legend = fit::parts(
        &LEGEND.map(str::to_owned),
        "  ",
        room.saturating_sub(2),
        &[0, 1, 2, 3, 4, 5],
    );
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(format!(" {title} "))
                .title_bottom(format!(" {legend} ")),
        ),
        area,
    );
}

/// The width of the page map's index column, before its space (`layout::map_grid` leaves 8).
pub(super) const INDEX_COLUMNS: usize = 7;

/// A region of a few pages, as the seed's: one wide cell per page, readable from the back of a
/// classroom, with its number, its index range, its state and what made it resident.
fn render_labelled_pages(cursor: u64, view: &RegionView, frame: &mut Frame, area: Rect) {
    let region = &view.region;
    let shown = view.shown_pages();
    let marks = Marks::of(view);
    let block = Block::bordered().title(format!(
        " {} ",
        fit::words(
            &format!(
                "{} {} bytes, {} pages",
                region.name,
                region.len,
                region.page_count()
            ),
            usize::from(area.width.saturating_sub(6)),
        )
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let columns = Layout::horizontal((0..shown).map(|_| Constraint::Fill(1)))
        .spacing(1)
        .split(inner);
    for (page, &column) in (0..shown).zip(columns.iter()) {
        let cell = page_cell(view, &marks, page);
        let (state, style) = cell.label();
        let range = if page < region.page_count() {
            let (first, last) = region.index_range_of_page(page);
            format!("[{first}..{last}]")
        } else {
            "past the end".to_owned()
        };
        // What made it what it is now: the last fault that completed on it, not the first,
        // which a MADV_DONTNEED may have undone since.
        let made_by = view.made_by(page).unwrap_or_default();
        let marker = if page == cursor { "▶ " } else { "" };
        let width = usize::from(column.width);
        let lines: Vec<Line> = [
            format!("{marker}page {page}"),
            range,
            state.to_owned(),
            made_by,
        ]
        .iter()
        .map(|text| Line::from(fit::words(text, width)))
        .collect();
        frame.render_widget(Paragraph::new(lines).style(style), column);
    }
}

/// What the page map's glyphs mean, most needed first.
pub(super) const LEGEND: [&str; 6] = [
    "* now",
    "█ resident",
    "0 zero page",
    "· untouched",
    "M major",
    "X error",
];

fn render_steps(walk: &WalkView, frame: &mut Frame, area: Rect) {
    let width = usize::from(area.width.saturating_sub(2));
    // "RSS 12345 KiB" keeps its 13 columns; the action is shortened at a word, never the RSS.
    let action_width = width.saturating_sub(3 + 1 + RSS_COLUMNS).max(8);
    let current = walk.steps.last().map(|s| s.step);
    let mut lines: Vec<Line> = Vec::new();
    // Where each step's row is: the pane starts at a row, the earliest that lets the rest fit,
    // and at the newest step's row at the latest, with as much of its why as fits.
    let mut rows_at = Vec::new();
    for step in &walk.steps {
        let rss = step
            .rss_kib
            .map_or_else(|| "gone".to_owned(), |kib| format!("RSS {kib} KiB"));
        let style = if Some(step.step) == current {
            Style::default()
                .add_modifier(Modifier::BOLD)
                .fg(Color::Yellow)
        } else {
            Style::default()
        };
        rows_at.push(lines.len());
        lines.push(Line::styled(
            format!(
                "{:>2} {:<action_width$} {rss:>RSS_COLUMNS$}",
                step.step,
                fit::words(&step.action, action_width),
            ),
            style,
        ));
        // Each sentence wrapped at words under the action.
        for sentence in &step.why {
            lines.extend(
                fit::wrapped(sentence, width.saturating_sub(3))
                    .into_iter()
                    .map(|line| {
                        Line::styled(format!("   {line}"), Style::default().fg(Color::Gray))
                    }),
            );
        }
    }
    if walk.awaiting_step {
        lines.push(
            Line::from("   press Enter for the next step").style(Style::default().fg(Color::Cyan)),
        );
    }
    let rows = usize::from(area.height.saturating_sub(2));
    let skip = rows_at
        .iter()
        .copied()
        .find(|&row| lines.len() - row <= rows)
        .or(rows_at.last().copied())
        .unwrap_or(0);
    frame.render_widget(
        Paragraph::new(lines.into_iter().skip(skip).collect::<Vec<_>>())
            .block(Block::bordered().title(" steps ")),
        area,
    );
}

/// The width of a step row's RSS column: "RSS 12345 KiB".
const RSS_COLUMNS: usize = 13;

/// Splits the right-hand column of a walk: the process table on top, with the rows it needs,
/// and the events below, which keep at least half the column less two rows, and six rows.
fn process_and_events(process: &ProcessMap, map: &PageMap, area: Rect) -> [Rect; 2] {
    let region = map.region().map(|view| &view.region);
    let needed = pmap::summed(&process.vmas, region).rows.len() as u16 + 4;
    let events = (area.height / 2).saturating_sub(2).max(6);
    let table = needed.min(area.height.saturating_sub(events));
    Layout::vertical([Constraint::Length(table), Constraint::Min(0)]).areas(area)
}

/// The whole process as `pmap -x` sums it, a row per mapping name, the array's row marked:
/// the lab's first screen.
fn render_process(process: &ProcessMap, map: &PageMap, frame: &mut Frame, area: Rect) {
    let region = map.region().map(|view| &view.region);
    let table = pmap::summed(&process.vmas, region);
    // The header and the total take two rows of those inside the border.
    let room = usize::from(area.height.saturating_sub(4));
    let number = |kib: u64| fit::number(i64::try_from(kib).unwrap_or(i64::MAX), 7);
    // Three number columns of 7 and their gaps; the name has the rest.
    let name_width = usize::from(area.width.saturating_sub(2 + 3 * 8));
    let row = |row: &pmap::PmapRow, style: Style| {
        Row::new([
            Line::from(fit::clipped(&row.name, name_width)),
            Line::from(number(row.size_kib)).right_aligned(),
            Line::from(number(row.rss_kib)).right_aligned(),
            Line::from(number(row.dirty_kib)).right_aligned(),
        ])
        .style(style)
    };
    let mut rows: Vec<Row> = table
        .fitted(room)
        .iter()
        .map(|shown| {
            let style = if shown.array {
                Style::default()
                    .add_modifier(Modifier::BOLD)
                    .fg(Color::Yellow)
            } else {
                Style::default()
            };
            row(shown, style)
        })
        .collect();
    rows.push(row(
        &table.total,
        Style::default().add_modifier(Modifier::BOLD),
    ));
    let when = match (process.after_step, process.gone) {
        (_, true) => "before it died".to_owned(),
        (None, false) => "at start".to_owned(),
        (Some(step), false) => format!("after step {step}"),
    };
    let title = fit::words(
        &format!("process, KiB (smaps, {when})"),
        usize::from(area.width.saturating_sub(6)),
    );
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(7),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(
                Row::new([
                    Line::from("Mapping"),
                    Line::from("Kbytes").right_aligned(),
                    Line::from("RSS").right_aligned(),
                    Line::from("Dirty").right_aligned(),
                ])
                .style(Style::default().add_modifier(Modifier::BOLD)),
            )
            .block(Block::bordered().title(format!(" {title} "))),
        area,
    );
}

fn render_regions(map: &PageMap, frame: &mut Frame, area: Rect) {
    let items: Vec<ListItem> = map
        .regions
        .iter()
        .enumerate()
        .map(|(index, view)| {
            let resident = view.pages.resident_count();
            let text = fit::words(
                &format!(
                    "{:<8} {:>8} B {:>3}/{} resident",
                    view.region.name,
                    view.region.len,
                    resident,
                    view.region.page_count()
                ),
                usize::from(area.width.saturating_sub(2)),
            );
            ListItem::new(text).style(highlighted(Style::default(), index == map.selected))
        })
        .collect();
    let skip = map
        .selected
        .saturating_sub(area.height.saturating_sub(3) as usize);
    let items: Vec<ListItem> = items.into_iter().skip(skip).collect();
    frame.render_widget(
        List::new(items).block(Block::bordered().title(" regions (Tab) ")),
        area,
    );
}

fn render_detail(map: &PageMap, frame: &mut Frame, area: Rect) {
    let Some(view) = map.region() else {
        frame.render_widget(Block::bordered().title(" page "), area);
        return;
    };
    let region = &view.region;
    let page = map.cursor;
    let start = region.first_page_base() + page * region.page_size;
    let mut head = vec![format!(
        "page {page}: {start:#x}..{:#x}",
        start + region.page_size
    )];
    // The index range and what pagemap says share a line, which wraps at a word when narrow.
    let mut place = if page < region.page_count() {
        let (first, last) = region.index_range_of_page(page);
        format!("{}[{first}..{last}]", region.name)
    } else {
        "past the mapping".to_owned()
    };
    if let Some(Some(presence)) = view.kernel.get(page as usize) {
        let state = match (presence.present, presence.zero) {
            (true, true) => "present: the zero page",
            (true, false) => "present",
            (false, _) => "not present",
        };
        place.push_str(&format!(", pagemap: {state}"));
    }
    head.push(place);
    let notes = view.notes.get(&page).map_or(&[][..], Vec::as_slice);
    if notes.is_empty() {
        head.push("no fault on this page".to_owned());
    }
    let width = usize::from(area.width.saturating_sub(2));
    let rows = usize::from(area.height.saturating_sub(2));
    let lines = detail_lines(&head, notes, width, rows);
    frame.render_widget(
        Paragraph::new(lines.into_iter().map(Line::from).collect::<Vec<_>>())
            .block(Block::bordered().title(" page ")),
        area,
    );
}

/// One fault on a page, as the page panel says it: when, the access, class and duration, where
/// the time went when the fault waited or reclaimed, and the code with its module where the
/// text report names it (never a walk's own workload code).
fn note_text(note: &PageNote) -> String {
    let when = note.step.map_or_else(
        || format!("{:.3} s tid {}", note.timestamp_ns as f64 / 1e9, note.tid),
        |step| format!("step {step}"),
    );
    let mut text = format!(
        "{when} {} {}",
        note.access,
        super::app::class_and_time(note.class, note.timing)
    );
    if let Some(split) = note.timing.and_then(time_split) {
        text.push_str(&format!(" ({split})"));
    }
    if let Some(code) = &note.code {
        text.push_str(&format!(" by {}", crate::output::code::in_module(code)));
    }
    text
}

/// Where a fault's time went besides running on the CPU, `1.8 ms off CPU, 20 µs in reclaim`;
/// `None` when it all ran on the CPU.
fn time_split(timing: FaultTiming) -> Option<String> {
    let parts = crate::output::duration::away_from_cpu(timing);
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The page panel's lines in `rows` of `width`: the page's own lines, then its newest faults
/// whole, wrapped at words, with how many earlier ones did not fit. A fault that fits only in
/// part ends at a word with `…`, so no line ends the panel half said (a bare `by`).
fn detail_lines(head: &[String], notes: &[PageNote], width: usize, rows: usize) -> Vec<String> {
    let mut lines: Vec<String> = head
        .iter()
        .flat_map(|line| fit::wrapped(line, width))
        .collect();
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut left = rows.saturating_sub(lines.len());
    for (index, note) in notes.iter().enumerate().rev() {
        let block = fit::wrapped(&note_text(note), width);
        // Room for this fault, and for the line that counts the faults before it, if any.
        if block.len() + usize::from(index > 0) <= left {
            left -= block.len();
            blocks.push(block);
            continue;
        }
        if blocks.is_empty() && left > 0 {
            // Not even the newest fault fits: its first lines, the last ending at a word.
            let mut cut: Vec<String> = block.into_iter().take(left).collect();
            if let Some(last) = cut.last_mut() {
                *last = fit::words(&format!("{last} …"), width);
            }
            left = 0;
            blocks.push(cut);
        }
        break;
    }
    let earlier = notes.len() - blocks.len();
    if earlier > 0 && left > 0 {
        lines.push(format!(
            "{earlier} earlier {}",
            if earlier == 1 { "fault" } else { "faults" }
        ));
    }
    lines.extend(blocks.into_iter().rev().flatten());
    lines
}

fn render_events(app: &App, frame: &mut Frame, area: Rect) {
    let visible = area.height.saturating_sub(2) as usize;
    let width = usize::from(area.width.saturating_sub(2));
    let end = app.events.len().saturating_sub(app.events_scroll);
    let start = end.saturating_sub(visible);
    // Long events wrap at words; the newest lines stay in view.
    let lines: Vec<String> = app
        .events
        .range(start..end)
        .flat_map(|line| fit::wrapped(line, width))
        .collect();
    let items: Vec<ListItem> = lines
        .into_iter()
        .rev()
        .take(visible)
        .rev()
        .map(ListItem::new)
        .collect();
    let title = if app.paused {
        " events (paused) "
    } else {
        " events "
    };
    frame.render_widget(List::new(items).block(Block::bordered().title(title)), area);
}

fn render_top(top: &TopView, frame: &mut Frame, area: Rect) {
    // With durations, two more columns: time in faults per second and its p99.
    let timed = top.rows.iter().any(|row| row.fault_time.is_some());
    let mut header: Vec<&str> =
        crate::output::top::columns(top.rows.first().and_then(|row| row.subject.group_by()))
            .to_vec();
    if timed {
        header.extend(crate::output::top::TIME_COLUMNS);
    }
    let header = Row::new(header).style(Style::default().add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = top
        .shown()
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let mut style = highlighted(Style::default(), index == top.selected);
            let mut cells = crate::output::top::cells(row).to_vec();
            // Shown once, in the interval it exited in, as the text output does.
            if row.exited {
                style = style.add_modifier(Modifier::DIM);
                cells[1].push_str(" (exited)");
            }
            if let Some(time) = &row.fault_time {
                cells.extend(crate::output::top::time_cells(time));
            }
            Row::new(cells).style(style)
        })
        .collect();
    // 69 columns and 7 gaps fit an 80-column terminal, with room for "(exited)" after a
    // short command.
    let mut widths = vec![
        Constraint::Length(7),
        Constraint::Length(16),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    if timed {
        widths.extend([Constraint::Length(10), Constraint::Length(9)]);
    }
    let title = format!(
        " demo top, sorted by {:?} (s: sort, Enter: trace it) ",
        top.sort
    )
    .to_lowercase();
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(title)),
        area,
    );
}

fn render_status(app: &App, frame: &mut Frame, area: Rect) {
    let status = &app.status;
    let parts = [
        app.title.clone(),
        format!("{:.0}/s", status.rate),
        format!(
            "{} faults ({} min {} maj {} err)",
            status.classes.total(),
            status.classes.minor,
            status.classes.major,
            status.classes.error
        ),
        format!("lost {}", status.lost),
        status.target.clone(),
        "? help q quit".to_owned(),
    ];
    // Whole parts only: the target's state and the counts go first, the title last.
    let width = usize::from(area.width).saturating_sub(1);
    let text = format!(" {}", fit::parts(&parts, " | ", width, &[4, 2, 3, 5, 1, 0]));
    frame.render_widget(
        Paragraph::new(text).style(Style::default().bg(Color::Blue).fg(Color::White)),
        area,
    );
}

fn render_help(frame: &mut Frame) {
    let area = frame.area();
    let width = area.width.min(70);
    let height = (HELP.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(
                    format!("{key:<18}"),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}

/// `style`, reversed when it is the selected cell, region or row.
fn highlighted(style: Style, selected: bool) -> Style {
    if selected {
        style.add_modifier(Modifier::REVERSED)
    } else {
        style
    }
}

#[cfg(test)]
mod tests {
    use ratatui::{Terminal, backend::TestBackend, buffer::Buffer, layout::Rect};

    use super::*;
    use crate::{
        model::{access::Access, pages::PageModel, region::Region},
        output::tui::app::{Mode, UiEvent},
        trace::{
            regions::{Origin, TrackedRegion},
            session::TraceEvent,
        },
    };

    const GIB: u64 = 1 << 30;

    /// A trace's view of one anonymous region of `len` bytes with `touched` pages written, as
    /// the session sends it.
    fn trace_of(len: u64, touched: &[u64]) -> App {
        let mut app = App::new(Mode::Trace, "demo trace".to_owned());
        let region = Region {
            name: "mmap#1".into(),
            start: 0x7f00_0000_0000,
            len,
            elem_size: 1,
            page_size: 4096,
            pages_after: 0,
        };
        let mut pages = PageModel::without_origins(region.page_count() as usize);
        for &page in touched {
            let location = region.locate(region.start + page * 4096).unwrap();
            pages.apply_at(&location, Access::Write, 0);
        }
        app.handle_event(UiEvent::Trace(Box::new(TraceEvent::RegionStarted(
            TrackedRegion {
                id: 0,
                pid: 4242,
                origin: Origin::Mmap,
                region,
                live: true,
            },
        ))));
        app.handle_event(UiEvent::Pages(vec![(0, pages)]));
        app.handle_event(UiEvent::Resize(Rect::new(0, 0, 80, 24)));
        app
    }

    fn draw(app: &App) -> Buffer {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal.draw(|frame| render(app, frame)).unwrap();
        terminal.backend().buffer().clone()
    }

    /// The page map's pane of `app` at 80x24, as `render` places it.
    fn map_area(app: &App) -> Rect {
        let screen = layout::screen(Rect::new(0, 0, 80, 24), false);
        app.map_and_middle(screen.main)[0]
    }

    /// The symbols of row `y` of `buffer` from column `x` for `width` columns.
    fn symbols(buffer: &Buffer, x: u16, y: u16, width: u16) -> String {
        (x..x + width).map(|x| buffer[(x, y)].symbol()).collect()
    }

    /// A 16 GiB region at 80x24: the map's 5 rows of 70 cells are all drawn, whatever the width
    /// of their index labels, and the 350 cells take every one of its 4 Mi pages exactly once.
    #[test]
    fn every_cell_of_a_16_gib_region_is_drawn_at_80_by_24() {
        let pages = 16 * GIB / 4096;
        // The first and last page, and one at the start of each row's last cell.
        let mut touched: Vec<u64> = (0..5).map(|row| (row * 70 + 69) * 11984).collect();
        touched.extend([0, pages - 1]);
        let app = trace_of(16 * GIB, &touched);
        let view = app.region().unwrap();
        let area = map_area(&app);
        let (row_cells, rows) = layout::map_grid(area);
        let (_, per_cell) = app.map_geometry();
        assert_eq!((row_cells, rows, per_cell), (70, 5, 11984));
        let total = pages.div_ceil(per_cell);
        assert_eq!(total, row_cells * rows, "the cells fill every row");
        // Each cell is a run of pages that starts where the one before ends: together they
        // take every page, none twice.
        let mut next = 0;
        for cell in 0..total {
            let range = cell_pages(cell, per_cell, pages);
            assert_eq!(range.start, next, "cell {cell}");
            assert!(range.end > range.start, "cell {cell} is empty");
            next = range.end;
        }
        assert_eq!(next, pages, "the last cell ends at the last page");
        let expected = cells(view, per_cell, 0..total);
        let buffer = draw(&app);
        for row in 0..rows {
            let y = area.y + 1 + row as u16;
            let label = symbols(&buffer, area.x + 1, y, 8);
            assert!(
                label.ends_with(' ') && !label.trim().is_empty(),
                "row {row}: the index label {label:?} keeps to its 8 columns"
            );
            let drawn = symbols(&buffer, area.x + 9, y, row_cells as u16);
            let want: String = expected[(row * row_cells) as usize..][..row_cells as usize]
                .iter()
                .map(|cell| cell.glyph().0)
                .collect();
            assert_eq!(drawn, want, "row {row} draws its {row_cells} cells");
            assert_eq!(
                buffer[(area.x + area.width - 1, y)].symbol(),
                "│",
                "row {row} ends at the border"
            );
        }
        // The touched pages' cells show them: each row's last cell has a written page.
        for row in 0..rows {
            let last = expected[(row * row_cells + row_cells - 1) as usize];
            assert!(
                matches!(last, Cell::Heat(1..)),
                "row {row}'s last cell {last:?}"
            );
        }
    }

    /// Zoomed in to a page a cell, a 16 GiB region takes far more rows than the map has: the
    /// rows follow the cursor down, and drawing costs the cells on screen.
    #[test]
    fn zoomed_in_the_map_scrolls_to_the_cursor() {
        use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
        let mut app = trace_of(16 * GIB, &[70 * 12]);
        let key = |code| UiEvent::Key(KeyEvent::new(code, KeyModifiers::NONE));
        app.handle_event(key(KeyCode::Char('+')));
        assert_eq!(app.map_geometry(), (70, 1));
        for _ in 0..12 {
            app.handle_event(key(KeyCode::Char('j')));
        }
        assert_eq!(app.map().unwrap().cursor, 70 * 12);
        let buffer = draw(&app);
        let area = map_area(&app);
        // Row 12 of the region is the map's last row, its first cell the cursor's.
        let y = area.y + 5;
        assert_eq!(symbols(&buffer, area.x + 1, y, 8), "3440640 ");
        let cursor = &buffer[(area.x + 9, y)];
        assert!(cursor.modifier.contains(Modifier::REVERSED), "{cursor:?}");
        assert_eq!(cursor.symbol(), "█", "the written page");
    }
}
