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

/// Splits the main area of a walk or a trace: the page map on top, the rest below. The map
/// takes at most a third of the area, and only the rows its region needs when the region,
/// fitted (`zoom` 0) at a page a cell or as labelled cells, needs fewer: the rows it leaves
/// go to the panes below. `shown` is the region's pages shown, `None` before a region.
pub fn map_and_middle(main: Rect, shown: Option<u64>, zoom: u64) -> [Rect; 2] {
    let most = (main.height / 3).max(5);
    let height = match shown {
        Some(shown) if zoom == 0 => {
            let full = Rect {
                height: most,
                ..main
            };
            if labelled_cell_width(full, shown).is_some() {
                LABELLED_MAP_HEIGHT
            } else {
                let (row_cells, rows) = map_grid(full);
                let per_cell = pages_per_cell(0, shown, row_cells * rows);
                let needed = shown.div_ceil(per_cell).div_ceil(row_cells).max(1);
                // Two rows of border around the drawn rows.
                u16::try_from(needed).map_or(most, |needed| (needed + 2).min(most))
            }
        }
        Some(_) => most,
        // Before the first region, one line says so: the rest is the process table's.
        None => 3,
    };
    Layout::vertical([Constraint::Length(height), Constraint::Min(5)]).areas(main)
}

/// A labelled map's height: a border, then a cell's four lines (page, index range, state,
/// what made it so), and the bottom border.
const LABELLED_MAP_HEIGHT: u16 = 6;

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
    (width >= LABELLED_CELL_COLUMNS && map.height >= LABELLED_MAP_HEIGHT).then(|| width - 1)
}
