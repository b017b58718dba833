//! Draws the terminal view from the `App`; it never changes the state.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, List, ListItem, Paragraph, Row, Table, Wrap},
};

use super::app::{App, HELP, Mode, RegionView};
use super::layout;
use crate::model::pages::PageState;

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
    if view.pages.faulted_now(page) {
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
    if app.mode == Mode::Top {
        render_top(app, frame, main);
    } else {
        let [map, middle] = layout::map_and_middle(main);
        render_map(app, frame, map);
        let [left, events] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(middle);
        let [list, detail] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(left);
        match app.mode {
            Mode::Alloc => render_steps(app, frame, list),
            _ => render_regions(app, frame, list),
        }
        render_detail(app, frame, detail);
        render_events(app, frame, events);
    }
    render_status(app, frame, status);
    if app.show_help {
        render_help(frame);
    }
}

fn render_map(app: &App, frame: &mut Frame, area: Rect) {
    let Some(view) = app.region() else {
        frame.render_widget(
            Paragraph::new("waiting for the first region…")
                .block(Block::bordered().title(" pages ")),
            area,
        );
        return;
    };
    let region = &view.region;
    let (row_cells, rows) = layout::map_grid(area);
    let per_cell = layout::pages_per_cell(app.zoom, view.shown_pages(), row_cells * rows);
    let cells = cells(view, per_cell);
    let cursor_cell = app.cursor / per_cell;
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
    let title = format!(
        " {} {} bytes, {} pages, {} per cell  (* now  █ resident  0 zero page  M major  X error  · untouched) ",
        region.name,
        region.len,
        region.page_count(),
        if per_cell == 1 {
            "1 page".to_owned()
        } else {
            format!("{per_cell} pages")
        }
    );
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        area,
    );
}

fn render_steps(app: &App, frame: &mut Frame, area: Rect) {
    let current = app.steps.last().map(|s| s.step);
    let mut items: Vec<ListItem> = app
        .steps
        .iter()
        .map(|step| {
            let rss = step
                .rss_kib
                .map_or_else(|| "gone".to_owned(), |kib| format!("RSS {kib} KiB"));
            // Narrow enough for half of an 80-column screen: the action is cut, never the RSS.
            let text = format!(
                "{:>2} {:<16.16} {:>2}f {rss}",
                step.step, step.action, step.faults_in_region
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
    if app.awaiting_step {
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

fn render_regions(app: &App, frame: &mut Frame, area: Rect) {
    let items: Vec<ListItem> = app
        .regions
        .iter()
        .enumerate()
        .map(|(index, view)| {
            let resident = view.pages.resident_pages().len();
            let text = format!(
                "{:<10} {:>9} B {:>5}/{} resident",
                view.region.name,
                view.region.len,
                resident,
                view.region.page_count()
            );
            ListItem::new(text).style(highlighted(Style::default(), index == app.selected_region))
        })
        .collect();
    let skip = app
        .selected_region
        .saturating_sub(area.height.saturating_sub(3) as usize);
    let items: Vec<ListItem> = items.into_iter().skip(skip).collect();
    frame.render_widget(
        List::new(items).block(Block::bordered().title(" regions (Tab) ")),
        area,
    );
}

fn render_detail(app: &App, frame: &mut Frame, area: Rect) {
    let Some(view) = app.region() else {
        frame.render_widget(Block::bordered().title(" page "), area);
        return;
    };
    let region = &view.region;
    let page = app.cursor;
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
    let end = app.events.len().saturating_sub(app.events_scroll);
    let start = end.saturating_sub(visible);
    let items: Vec<ListItem> = app
        .events
        .range(start..end)
        .map(|line| ListItem::new(line.as_str()))
        .collect();
    let title = if app.paused {
        " events (paused) "
    } else {
        " events "
    };
    frame.render_widget(List::new(items).block(Block::bordered().title(title)), area);
}

fn render_top(app: &App, frame: &mut Frame, area: Rect) {
    let header =
        Row::new(crate::output::top::COLUMNS).style(Style::default().add_modifier(Modifier::BOLD));
    let rows: Vec<Row> = app
        .shown_top_rows()
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let mut style = highlighted(Style::default(), index == app.top_selected);
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
        app.top_sort
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
    let text = format!(
        " {} | {:.0}/s | {} faults ({} min {} maj {} err) | lost {} | {} | ? help q quit",
        app.title,
        status.rate,
        status.classes.total(),
        status.classes.minor,
        status.classes.major,
        status.classes.error,
        status.lost,
        status.target
    );
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
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
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
