//! Draws the terminal view from the `App`; it never changes the state.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, List, ListItem, Paragraph, Row, Table, Wrap},
};

use super::app::{App, HELP, PageMap, RegionView, TopView, View, WalkView};
use super::{fit, layout};
use crate::model::{classify::FaultClass, pages::PageState};

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

/// The state of page `page` of `view`.
fn page_cell(view: &RegionView, page: u64) -> Cell {
    if view.errors.contains(&page) {
        return Cell::Error;
    }
    let Some(state) = view.pages.state(page) else {
        return Cell::Outside;
    };
    if view.recent.contains(&page) {
        Cell::FaultedNow
    } else if view.major.contains(&page) {
        Cell::Major
    } else {
        match state {
            PageState::Untouched => Cell::Untouched,
            PageState::ZeroPage => Cell::ZeroPage,
            PageState::Resident => Cell::Resident,
        }
    }
}

/// The cells of the page map for `view`, `per_cell` pages each.
pub fn cells(view: &RegionView, per_cell: u64) -> Vec<Cell> {
    let shown = view.shown_pages();
    (0..shown.div_ceil(per_cell))
        .map(|cell| {
            let first = cell * per_cell;
            let pages = first..(first + per_cell).min(shown);
            if per_cell == 1 {
                return page_cell(view, first);
            }
            let states: Vec<Cell> = pages.map(|p| page_cell(view, p)).collect();
            if states.contains(&Cell::Error) {
                Cell::Error
            } else if states.contains(&Cell::FaultedNow) {
                Cell::FaultedNow
            } else {
                let resident = states
                    .iter()
                    .filter(|c| matches!(c, Cell::Resident | Cell::Major))
                    .count();
                Cell::Heat(((resident * 4).div_ceil(states.len())) as u8)
            }
        })
        .collect()
}

pub fn render(app: &App, frame: &mut Frame) {
    let layout::Screen {
        main,
        log: log_pane,
        status,
    } = layout::screen(frame.area(), !app.logs.is_empty());
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
        let [map_area, middle] = layout::map_and_middle(main);
        render_map(map, frame, map_area);
        let [left, events] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(middle);
        let [list, detail] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(left);
        match walk {
            Some(walk) => render_steps(walk, frame, list),
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
    let per_cell = layout::pages_per_cell(map.zoom, view.shown_pages(), row_cells * rows);
    let cells = cells(view, per_cell);
    let cursor_cell = map.cursor / per_cell;
    let lines: Vec<Line> = cells
        .chunks(row_cells as usize)
        .enumerate()
        .take(rows as usize)
        .map(|(row, chunk)| {
            let first_page = row as u64 * row_cells * per_cell;
            let (first_index, _) =
                region.index_range_of_page(first_page.min(region.page_count().saturating_sub(1)));
            let mut spans = vec![Span::styled(
                format!("{first_index:>7} "),
                Style::default().fg(Color::DarkGray),
            )];
            spans.extend(chunk.iter().enumerate().map(|(column, cell)| {
                let (glyph, style) = cell.glyph();
                let index = row as u64 * row_cells + column as u64;
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

/// A region of a few pages, as the seed's: one wide cell per page, readable from the back of a
/// classroom, with its number, its index range, its state and what made it resident.
fn render_labelled_pages(cursor: u64, view: &RegionView, frame: &mut Frame, area: Rect) {
    let region = &view.region;
    let shown = view.shown_pages();
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
        let cell = page_cell(view, page);
        let (state, style) = cell.label();
        let range = if page < region.page_count() {
            let (first, last) = region.index_range_of_page(page);
            format!("[{first}..{last}]")
        } else {
            "past the end".to_owned()
        };
        // What made it resident: the first completed fault on it, and its step in a walk.
        let made_by = view
            .notes
            .get(&page)
            .and_then(|notes| notes.iter().find(|n| n.class != FaultClass::Error))
            .map(|note| match note.step {
                Some(step) => format!("step {step}"),
                None => format!("tid {}", note.tid),
            })
            .unwrap_or_default();
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
    // The step number, the fault count and "RSS 12345 KiB" take 20 columns; the action the rest.
    let action_width = usize::from(area.width.saturating_sub(2 + 20)).max(8);
    let current = walk.steps.last().map(|s| s.step);
    let mut items: Vec<ListItem> = walk
        .steps
        .iter()
        .map(|step| {
            let rss = step
                .rss_kib
                .map_or_else(|| "gone".to_owned(), |kib| format!("RSS {kib} KiB"));
            // Narrow enough for half of an 80-column screen: the action is shortened at a word,
            // never the RSS.
            let text = format!(
                "{:>2} {:<action_width$} {:>2}f {rss}",
                step.step,
                fit::words(&step.action, action_width),
                step.faults_in_region
            );
            let style = if Some(step.step) == current {
                Style::default()
                    .add_modifier(Modifier::BOLD)
                    .fg(Color::Yellow)
            } else {
                Style::default()
            };
            ListItem::new(text).style(style)
        })
        .collect();
    if walk.awaiting_step {
        items.push(
            ListItem::new("   press Enter for the next step")
                .style(Style::default().fg(Color::Cyan)),
        );
    }
    let skip = items
        .len()
        .saturating_sub(area.height.saturating_sub(2) as usize);
    let items: Vec<ListItem> = items.into_iter().skip(skip).collect();
    frame.render_widget(
        List::new(items).block(Block::bordered().title(" steps ")),
        area,
    );
}

fn render_regions(map: &PageMap, frame: &mut Frame, area: Rect) {
    let items: Vec<ListItem> = map
        .regions
        .iter()
        .enumerate()
        .map(|(index, view)| {
            let resident = view.pages.resident_pages().len();
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
    let mut lines = vec![Line::from(format!(
        "page {page}: {start:#x}..{:#x}",
        start + region.page_size
    ))];
    if page < region.page_count() {
        let (first, last) = region.index_range_of_page(page);
        lines.push(Line::from(format!("{}[{first}..{last}]", region.name)));
    } else {
        lines.push(Line::from("past the mapping"));
    }
    if let Some(Some(presence)) = view.kernel.get(page as usize) {
        let state = match (presence.present, presence.zero) {
            (true, true) => "present: the zero page",
            (true, false) => "present",
            (false, _) => "not present",
        };
        lines.push(Line::from(format!("pagemap: {state}")));
    }
    for note in view.notes.get(&page).into_iter().flatten() {
        let when = note.step.map_or_else(
            || format!("{:.3} s", note.timestamp_ns as f64 / 1e9),
            |step| format!("step {step}"),
        );
        lines.push(Line::from(format!(
            "{when} tid {} ip {:#x} {} {}",
            note.tid,
            note.ip,
            note.access,
            note.class.as_str()
        )));
        lines.push(Line::from(format!(
            "  by {}",
            crate::output::code::describe(&note.code)
        )));
    }
    if view.notes.get(&page).is_none_or(Vec::is_empty) {
        lines.push(Line::from("no fault on this page"));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" page ")),
        area,
    );
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
    let header =
        Row::new(crate::output::top::COLUMNS).style(Style::default().add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = top
        .shown()
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let mut style = highlighted(Style::default(), index == top.selected);
            let mut cells = crate::output::top::cells(row);
            // Shown once, in the interval it exited in, as the text output does.
            if row.exited {
                style = style.add_modifier(Modifier::DIM);
                cells[1].push_str(" (exited)");
            }
            Row::new(cells).style(style)
        })
        .collect();
    // 69 columns and 7 gaps fit an 80-column terminal, with room for "(exited)" after a
    // short command.
    let widths = [
        Constraint::Length(7),
        Constraint::Length(16),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
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
