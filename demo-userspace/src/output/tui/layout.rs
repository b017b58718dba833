//! Where each pane of the terminal view goes for a given terminal size: one function for the
//! drawing and for the keys, so that a move by a row of the page map is the row that is drawn.

use ratatui::layout::{Constraint, Layout, Rect};

/// The panes of one screen.
pub struct Screen {
    pub main: Rect,
    pub log: Rect,
    pub status: Rect,
}

/// Splits the terminal: the main area, the log pane when there are log lines, the status line.
pub fn screen(size: Rect, with_log: bool) -> Screen {
    let [main, log, status] = Layout::vertical([
        Constraint::Min(10),
        Constraint::Length(if with_log { 3 } else { 0 }),
        Constraint::Length(1),
    ])
    .areas(size);
    Screen { main, log, status }
}

/// Splits the main area of a walk or a trace: the page map on top, the rest below.
pub fn map_and_middle(main: Rect) -> [Rect; 2] {
    let map_height = (main.height / 3).max(5);
    Layout::vertical([Constraint::Length(map_height), Constraint::Min(5)]).areas(main)
}

/// The page map's grid inside its pane: cells per row and rows, after the border and the
/// index column.
pub fn map_grid(map: Rect) -> (u64, u64) {
    let row_cells = u64::from(map.width.saturating_sub(2 + 8)).max(1);
    let rows = u64::from(map.height.saturating_sub(2)).max(1);
    (row_cells, rows)
}

/// Pages per cell: the zoom chosen, or the smallest that fits `shown_pages` into `cells`.
pub fn pages_per_cell(zoom: u64, shown_pages: u64, cells: u64) -> u64 {
    if zoom > 0 {
        return zoom;
    }
    shown_pages.div_ceil(cells.max(1)).max(1)
}

/// The narrowest a labelled page cell may be: "[1024..2047]" and a gap.
const LABELLED_CELL_COLUMNS: u16 = 13;

/// With few enough pages, each page gets a wide labelled cell: its width, or `None` when the
/// pages do not fit so (then the map draws one glyph per page or per run of pages).
pub fn labelled_cell_width(map: Rect, pages: u64) -> Option<u16> {
    let inner = map.width.saturating_sub(2);
    let pages = u16::try_from(pages).ok().filter(|&p| p > 0)?;
    let width = (inner + 1) / pages;
    (width >= LABELLED_CELL_COLUMNS && map.height >= 6).then(|| width - 1)
}
