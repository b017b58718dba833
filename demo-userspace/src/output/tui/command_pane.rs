//! The command's pane under `--tui`: the pseudo-terminal a traced command got, drawn from
//! vt100's copy of its screen, and the keys typed into it. Enter always goes to the command,
//! as the lab's `getchar()` wants; F2 gives it every key, and gives them back to the view.

use std::{
    io::{Read as _, Write as _},
    num::NonZeroU16,
    sync::mpsc::Sender,
};

use ratatui::{
    Frame,
    crossterm::event::{KeyCode, KeyEvent, KeyModifiers},
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    widgets::Block,
};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use crate::kernel::pty::{Pty, TermSize};

/// The key that moves every key to the command, and back to the view.
pub const FOCUS_KEY: KeyCode = KeyCode::F(2);

/// How much the pane reads from the pseudo-terminal at once.
const READ_BYTES: usize = 4096;

/// The pane: the command's screen, and the way to its input.
pub struct CommandPane {
    pty: Pty,
    screen: vt100::Parser,
    /// To the thread that writes the keys: a command that does not read its input must not
    /// stop the view.
    input: Sender<Vec<u8>>,
    /// From the thread that reads what the command writes; closed when no process holds the
    /// terminal any more.
    output: UnboundedReceiver<Vec<u8>>,
    /// Every key goes to the command (else only Enter does).
    focused: bool,
    ended: bool,
}

/// The view's area and the pane's, for a terminal of `size`: the pane takes about the bottom
/// quarter, and at least 5 rows (a border and 3 lines of the command), which at 80×24 leaves
/// the view the rows its page map needs for a labelled cell per page.
pub fn split(size: Rect) -> [Rect; 2] {
    let pane = (size.height.saturating_sub(4) / 4).max(5).min(size.height);
    Layout::vertical([Constraint::Min(0), Constraint::Length(pane)]).areas(size)
}

/// The terminal size the command sees in a pane of `area`: inside its border.
pub fn terminal_size(area: Rect) -> TermSize {
    let inner = Block::bordered().inner(area);
    TermSize {
        rows: inner.height.max(1),
        cols: inner.width.max(1),
    }
}

fn non_zero(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

impl CommandPane {
    /// A pane over the loader's side of `pty`, whose terminal is `size`; starts the threads
    /// that read and write it.
    pub fn new(pty: Pty, size: TermSize) -> std::io::Result<Self> {
        let mut reader = pty.loader_side()?;
        let mut writer = pty.loader_side()?;
        let (sender, output) = unbounded_channel();
        std::thread::Builder::new()
            .name("command pane reader".to_owned())
            .spawn(move || {
                let mut buffer = vec![0u8; READ_BYTES];
                // Ends at end of file or EIO (no process holds the terminal), or when the
                // view is gone.
                while let Ok(read @ 1..) = reader.read(&mut buffer) {
                    if sender.send(buffer[..read].to_vec()).is_err() {
                        return;
                    }
                }
            })?;
        let (input, keys) = std::sync::mpsc::channel::<Vec<u8>>();
        std::thread::Builder::new()
            .name("command pane writer".to_owned())
            .spawn(move || {
                for bytes in keys {
                    if writer.write_all(&bytes).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Self {
            pty,
            screen: vt100::Parser::new(non_zero(size.rows), non_zero(size.cols), 0),
            input,
            output,
            focused: false,
            ended: false,
        })
    }

    /// What the command wrote next; never, once it and all it started are gone.
    pub async fn output(&mut self) -> Vec<u8> {
        if !self.ended {
            match self.output.recv().await {
                Some(bytes) => return bytes,
                None => self.ended = true,
            }
        }
        std::future::pending().await
    }

    /// Takes what the command wrote onto its screen.
    pub fn show(&mut self, bytes: &[u8]) {
        self.screen.process(bytes);
    }

    /// The command's terminal is now `size`.
    pub fn resize(&mut self, size: TermSize) {
        self.screen
            .set_size(non_zero(size.rows), non_zero(size.cols));
        // A terminal that cannot be resized keeps its size; the pane then shows part of it.
        let _ = self.pty.resize(size);
    }

    /// Takes a key: F2 moves the keys, Enter and (after F2) every key go to the command.
    /// Returns the key when it is the view's: every key, once the command has ended, so that
    /// a command gone after F2 cannot keep `q` and Ctrl-C from the view.
    pub fn key(&mut self, key: KeyEvent) -> Option<KeyEvent> {
        if self.ended {
            return Some(key);
        }
        if key.code == FOCUS_KEY {
            self.focused = !self.focused;
            return None;
        }
        if !self.focused && key.code != KeyCode::Enter {
            return Some(key);
        }
        if let Some(bytes) = key_bytes(key, self.screen.screen().application_cursor()) {
            // A command gone takes no input; the key is dropped, as a closed terminal's.
            let _ = self.input.send(bytes);
        }
        None
    }

    /// Draws the pane: the command's screen in a border that says where the keys go.
    pub fn render(&self, frame: &mut Frame, area: Rect) {
        let title = if self.ended {
            " command ended "
        } else if self.focused {
            " command · every key goes to it · F2: keys back to the view "
        } else {
            " command · Enter goes to it · F2: type to it "
        };
        let border = if self.focused && !self.ended {
            Style::default().fg(Color::Yellow)
        } else {
            Style::default()
        };
        let block = Block::bordered().title(title).border_style(border);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let screen = self.screen.screen();
        let buffer = frame.buffer_mut();
        for row in 0..inner.height {
            for col in 0..inner.width {
                let (Some(cell), Some(drawn)) = (
                    screen.cell(row, col),
                    buffer.cell_mut((inner.x + col, inner.y + row)),
                ) else {
                    continue;
                };
                if cell.is_wide_continuation() {
                    continue;
                }
                let contents = cell.contents();
                drawn.set_symbol(if contents.is_empty() { " " } else { contents });
                drawn.set_style(cell_style(cell));
            }
        }
        if self.focused && !self.ended && !screen.hide_cursor() {
            let (row, col) = screen.cursor_position();
            if row < inner.height && col < inner.width {
                frame.set_cursor_position((inner.x + col, inner.y + row));
            }
        }
    }
}

fn color(color: vt100::Color) -> Color {
    match color {
        vt100::Color::Default => Color::Reset,
        vt100::Color::Idx(index) => Color::Indexed(index),
        vt100::Color::Rgb(red, green, blue) => Color::Rgb(red, green, blue),
    }
}

fn cell_style(cell: &vt100::Cell) -> Style {
    let mut style = Style::default()
        .fg(color(cell.fgcolor()))
        .bg(color(cell.bgcolor()));
    for (on, modifier) in [
        (cell.bold(), Modifier::BOLD),
        (cell.dim(), Modifier::DIM),
        (cell.italic(), Modifier::ITALIC),
        (cell.underline(), Modifier::UNDERLINED),
        (cell.inverse(), Modifier::REVERSED),
    ] {
        if on {
            style = style.add_modifier(modifier);
        }
    }
    style
}

/// The bytes a terminal sends for `key` (xterm's), with the cursor keys in the mode the
/// command asked for; `None` for a key a terminal sends nothing for.
fn key_bytes(key: KeyEvent, application_cursor: bool) -> Option<Vec<u8>> {
    let cursor = |letter: char| {
        let lead = if application_cursor { "\x1bO" } else { "\x1b[" };
        format!("{lead}{letter}").into_bytes()
    };
    let mut bytes = match key.code {
        KeyCode::Char(c) if key.modifiers.contains(KeyModifiers::CONTROL) => {
            vec![match c.to_ascii_lowercase() {
                c @ 'a'..='z' => c as u8 - b'a' + 1,
                ' ' | '@' | '2' => 0,
                '[' | '3' => 0x1b,
                '\\' | '4' => 0x1c,
                ']' | '5' => 0x1d,
                '^' | '6' => 0x1e,
                '_' | '7' | '/' => 0x1f,
                _ => return None,
            }]
        }
        KeyCode::Char(c) => c.to_string().into_bytes(),
        KeyCode::Enter => b"\r".to_vec(),
        KeyCode::Tab => b"\t".to_vec(),
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        KeyCode::Backspace => vec![0x7f],
        KeyCode::Esc => vec![0x1b],
        KeyCode::Up => cursor('A'),
        KeyCode::Down => cursor('B'),
        KeyCode::Right => cursor('C'),
        KeyCode::Left => cursor('D'),
        KeyCode::Home => cursor('H'),
        KeyCode::End => cursor('F'),
        KeyCode::Insert => b"\x1b[2~".to_vec(),
        KeyCode::Delete => b"\x1b[3~".to_vec(),
        KeyCode::PageUp => b"\x1b[5~".to_vec(),
        KeyCode::PageDown => b"\x1b[6~".to_vec(),
        KeyCode::F(n @ 1..=4) => format!("\x1bO{}", char::from(b'P' + n - 1)).into_bytes(),
        KeyCode::F(n @ 5..=12) => {
            let code = [15, 17, 18, 19, 20, 21, 23, 24][usize::from(n - 5)];
            format!("\x1b[{code}~").into_bytes()
        }
        _ => return None,
    };
    if key.modifiers.contains(KeyModifiers::ALT) {
        bytes.insert(0, 0x1b);
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use std::{fs::File, io::Read as _, os::fd::OwnedFd, time::Duration};

    use ratatui::{Terminal, backend::TestBackend};

    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn pane() -> (CommandPane, OwnedFd) {
        let size = TermSize { rows: 3, cols: 30 };
        let (pty, terminal) = Pty::open(size).unwrap();
        (CommandPane::new(pty, size).unwrap(), terminal)
    }

    /// Reads what the terminal side got, up to `len` bytes, within a second.
    fn typed(terminal: OwnedFd, len: usize) -> Vec<u8> {
        let (done, got) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut bytes = vec![0; len];
            File::from(terminal).read_exact(&mut bytes).unwrap();
            let _ = done.send(bytes);
        });
        got.recv_timeout(Duration::from_secs(1)).unwrap()
    }

    #[test]
    fn enter_goes_to_the_command_and_the_other_keys_to_the_view() {
        let (mut pane, terminal) = pane();
        assert_eq!(
            pane.key(key(KeyCode::Char('q'))),
            Some(key(KeyCode::Char('q')))
        );
        assert_eq!(pane.key(key(KeyCode::Tab)), Some(key(KeyCode::Tab)));
        assert_eq!(pane.key(key(KeyCode::Enter)), None);
        // The terminal's line discipline turns Enter's carriage return into a new line.
        assert_eq!(typed(terminal, 1), b"\n");
    }

    #[test]
    fn after_f2_every_key_goes_to_the_command_until_f2_again() {
        let (mut pane, terminal) = pane();
        assert_eq!(pane.key(key(FOCUS_KEY)), None);
        for code in [KeyCode::Char('q'), KeyCode::Char('x'), KeyCode::Enter] {
            assert_eq!(pane.key(key(code)), None);
        }
        assert_eq!(typed(terminal, 3), b"qx\n");
        assert_eq!(pane.key(key(FOCUS_KEY)), None);
        assert_eq!(
            pane.key(key(KeyCode::Char('q'))),
            Some(key(KeyCode::Char('q')))
        );
    }

    /// After F2 the command has every key; once it has ended (no process holds its terminal),
    /// every key is the view's again, so `q` and Ctrl-C quit.
    #[test]
    fn once_the_command_has_ended_every_key_is_the_views_again() {
        let (mut pane, terminal) = pane();
        assert_eq!(pane.key(key(FOCUS_KEY)), None);
        assert_eq!(pane.key(key(KeyCode::Char('q'))), None);
        assert_eq!(pane.key(key(KeyCode::Enter)), None);
        assert_eq!(typed(terminal.try_clone().unwrap(), 2), b"q\n");
        drop(terminal);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // The terminal's echo of the line comes first; then the reader meets EIO, as no
        // process holds the terminal side, and the pane's output waits for ever.
        runtime.block_on(async {
            while tokio::time::timeout(Duration::from_secs(1), pane.output())
                .await
                .is_ok()
            {}
        });
        assert!(pane.ended);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for typed in [
            key(KeyCode::Char('q')),
            ctrl_c,
            key(KeyCode::Enter),
            key(FOCUS_KEY),
        ] {
            assert_eq!(pane.key(typed), Some(typed));
        }
    }

    #[test]
    fn keys_are_sent_as_xterm_sends_them() {
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(key_bytes(ctrl('c'), false), Some(vec![3]));
        assert_eq!(key_bytes(ctrl('D'), false), Some(vec![4]));
        assert_eq!(key_bytes(key(KeyCode::Up), false), Some(b"\x1b[A".to_vec()));
        assert_eq!(key_bytes(key(KeyCode::Up), true), Some(b"\x1bOA".to_vec()));
        assert_eq!(
            key_bytes(key(KeyCode::F(1)), false),
            Some(b"\x1bOP".to_vec())
        );
        assert_eq!(
            key_bytes(key(KeyCode::F(5)), false),
            Some(b"\x1b[15~".to_vec())
        );
        assert_eq!(key_bytes(key(KeyCode::Backspace), false), Some(vec![0x7f]));
        assert_eq!(
            key_bytes(KeyEvent::new(KeyCode::Char('é'), KeyModifiers::ALT), false),
            Some("\x1bé".as_bytes().to_vec())
        );
    }

    #[test]
    fn the_pane_draws_the_commands_screen_inside_a_border_that_says_where_keys_go() {
        let (mut pane, _terminal) = pane();
        pane.show(b"arr = 0x7f00\r\n\x1b[1mtouch\x1b[0m");
        let mut terminal = Terminal::new(TestBackend::new(32, 5)).unwrap();
        terminal
            .draw(|frame| pane.render(frame, frame.area()))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let rows: Vec<String> = (0..5)
            .map(|y| (0..32).map(|x| buffer[(x, y)].symbol()).collect())
            .collect();
        assert_eq!(rows[1], "│arr = 0x7f00                  │");
        assert_eq!(rows[2], "│touch                         │");
        assert!(
            rows[0].starts_with("┌ command · Enter goes to it"),
            "{}",
            rows[0]
        );
        assert!(buffer[(1, 2)].modifier.contains(Modifier::BOLD));
    }

    #[test]
    fn the_pane_takes_about_the_bottom_quarter_and_its_terminal_is_inside_the_border() {
        let [view, pane] = split(Rect::new(0, 0, 100, 40));
        assert_eq!(view, Rect::new(0, 0, 100, 31));
        assert_eq!(pane, Rect::new(0, 31, 100, 9));
        assert_eq!(terminal_size(pane), TermSize { rows: 7, cols: 98 });
        for (height, pane) in [(24, 5), (30, 6), (12, 5)] {
            let [view, drawn] = split(Rect::new(0, 0, 80, height));
            assert_eq!((view.height, drawn.height), (height - pane, pane));
        }
    }
}
