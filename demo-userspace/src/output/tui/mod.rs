//! `--tui`: a full-screen live view of pages, steps, events and status (ratatui + crossterm).
//! Kernel events, keys and ticks arrive through one channel; `App::handle_event` changes the
//! state and `render::render` draws it.

pub mod app;
pub mod command_pane;
mod fit;
mod layout;
mod logs;
mod pmap;
pub mod render;
#[cfg(test)]
mod tests;

use std::{
    collections::BTreeSet,
    future::Future,
    io,
    io::IsTerminal as _,
    time::{Duration, Instant},
};

use ratatui::layout::Rect;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use self::app::{App, Mode, Request, UiEvent};
use self::command_pane::CommandPane;
pub use self::logs::TuiLogger;
use crate::{
    model::region::Region,
    top::{Interval, TopOutput},
    trace::{
        TraceOutput, TraceStart, TraceSummary,
        session::{Session, TraceEvent},
    },
    walk::Reporter,
    walk::plan::{Allocator, ScenarioName},
    walk::scenario::{Pacer, Summary, WalkResult},
    walk::step_report::StepReport,
};

/// How often the view redraws and recomputes rates.
pub const TICK: Duration = Duration::from_millis(100);

/// Refuses `--tui` when stdout is not a terminal.
pub fn check_terminal() -> Result<(), NotATerminal> {
    if io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(NotATerminal)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("--tui needs a terminal on stdout; run it in a terminal, or drop --tui for a report")]
pub struct NotATerminal;

/// Restores the terminal however the view ends; ratatui's panic hook covers panics.
struct RestoreOnDrop;

impl Drop for RestoreOnDrop {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the view over `work` until the user quits. Returns the request that ended it.
pub async fn run_view<W>(
    app: App,
    sender: UnboundedSender<UiEvent>,
    events: UnboundedReceiver<UiEvent>,
    requests: Option<UnboundedSender<Request>>,
    work: W,
) -> anyhow::Result<Request>
where
    W: Future<Output = anyhow::Result<()>>,
{
    view_loop(app, sender, events, requests, None, work).await
}

/// Runs the view over `work`, a trace of a command whose terminal is `pane`, at the bottom of
/// the screen: Enter goes to the command, and every key after F2 (see [`CommandPane::key`]).
pub async fn run_view_with_command<W>(
    app: App,
    sender: UnboundedSender<UiEvent>,
    events: UnboundedReceiver<UiEvent>,
    pane: CommandPane,
    work: W,
) -> anyhow::Result<Request>
where
    W: Future<Output = anyhow::Result<()>>,
{
    view_loop(app, sender, events, None, Some(pane), work).await
}

/// The terminal's size now, for a command pane made before the view starts.
pub fn terminal_size() -> io::Result<Rect> {
    let (width, height) = ratatui::crossterm::terminal::size()?;
    Ok(Rect::new(0, 0, width, height))
}

/// The view's own area of a terminal of `size`: all of it, less the command pane's, which
/// takes the new size.
fn view_area(size: Rect, pane: Option<&mut CommandPane>) -> Rect {
    match pane {
        Some(pane) => {
            let [view, pane_area] = command_pane::split(size);
            pane.resize(command_pane::terminal_size(pane_area));
            view
        }
        None => size,
    }
}

fn draw(
    terminal: &mut ratatui::DefaultTerminal,
    app: &App,
    pane: Option<&CommandPane>,
) -> io::Result<()> {
    terminal.draw(|frame| render_with(app, pane, frame))?;
    Ok(())
}

/// Draws the view, and under it the command's pane when there is one.
fn render_with(app: &App, pane: Option<&CommandPane>, frame: &mut ratatui::Frame) {
    match pane {
        Some(pane) => {
            let [view, pane_area] = command_pane::split(frame.area());
            render::render_in(app, frame, view);
            pane.render(frame, pane_area);
        }
        None => render::render(app, frame),
    }
}

async fn view_loop<W>(
    mut app: App,
    sender: UnboundedSender<UiEvent>,
    mut events: UnboundedReceiver<UiEvent>,
    requests: Option<UnboundedSender<Request>>,
    mut pane: Option<CommandPane>,
    work: W,
) -> anyhow::Result<Request>
where
    W: Future<Output = anyhow::Result<()>>,
{
    let mut terminal = ratatui::try_init()?;
    let _restore = RestoreOnDrop;
    // The keys move over the page map by its drawn rows, which depend on the terminal's size.
    let size = terminal.size()?;
    let size = Rect::new(0, 0, size.width, size.height);
    app.handle_event(UiEvent::Resize(view_area(size, pane.as_mut())));
    // Keys are read on a thread of their own: crossterm's reader blocks.
    std::thread::spawn(move || {
        use ratatui::crossterm::event::{Event, KeyEventKind, read};
        loop {
            let event = match read() {
                Ok(Event::Key(key)) if key.kind == KeyEventKind::Press => UiEvent::Key(key),
                Ok(Event::Resize(width, height)) => UiEvent::Resize(Rect::new(0, 0, width, height)),
                Ok(_) => continue,
                Err(_) => return,
            };
            if sender.send(event).is_err() {
                return;
            }
        }
    });
    let mut ticks = tokio::time::interval(TICK);
    let shutdown = crate::kernel::shutdown::requested();
    tokio::pin!(shutdown, work);
    let mut working = true;
    loop {
        tokio::select! {
            Some(event) = events.recv() => {
                // The pane takes its keys first, and the terminal's size less its own.
                let event = match (event, pane.as_mut()) {
                    (UiEvent::Key(key), Some(command)) => match command.key(key) {
                        Some(key) => UiEvent::Key(key),
                        None => {
                            draw(&mut terminal, &app, pane.as_ref())?;
                            continue;
                        }
                    },
                    (UiEvent::Resize(size), Some(command)) => {
                        UiEvent::Resize(view_area(size, Some(command)))
                    }
                    (event, _) => event,
                };
                let redraw = matches!(
                    event,
                    UiEvent::Key(_) | UiEvent::Resize(_) | UiEvent::Step(_) | UiEvent::Started(_)
                );
                match app.handle_event(event) {
                    Some(Request::NextStep) => {
                        if let Some(requests) = &requests {
                            let _ = requests.send(Request::NextStep);
                        }
                    }
                    // A process that exited since its row was drawn has nothing to trace: the
                    // view stays, and says so.
                    Some(Request::TracePid(pid)) if !crate::kernel::process::exists(pid) => {
                        app.handle_event(UiEvent::Log(format!(
                            "pid {pid} has exited: nothing to trace"
                        )));
                    }
                    Some(done) => return Ok(done),
                    None => {}
                }
                if redraw {
                    draw(&mut terminal, &app, pane.as_ref())?;
                }
            }
            // What the command writes shows at the next tick, like the pages.
            bytes = async { match pane.as_mut() {
                Some(command) => command.output().await,
                None => std::future::pending().await,
            } } => {
                if let Some(command) = pane.as_mut() {
                    command.show(&bytes);
                }
            }
            _ = ticks.tick() => {
                for line in logs::take() {
                    app.handle_event(UiEvent::Log(line));
                }
                app.handle_event(UiEvent::Tick);
                draw(&mut terminal, &app, pane.as_ref())?;
            }
            result = &mut work, if working => {
                working = false;
                if let Err(error) = result {
                    app.handle_event(UiEvent::Finished(format!("error: {error:#}")));
                }
            }
            () = &mut shutdown => return Ok(Request::Quit),
        }
    }
}

/// A channel pair for a view: the sender for the run, the receiver for the view.
pub fn channel() -> (UnboundedSender<UiEvent>, UnboundedReceiver<UiEvent>) {
    unbounded_channel()
}

/// Feeds `demo alloc`'s results to the view.
pub struct ViewReporter(pub UnboundedSender<UiEvent>);

impl Reporter for ViewReporter {
    fn started(&mut self, mappings: &[crate::kernel::procmem::VmaUsage]) -> io::Result<()> {
        let _ = self.0.send(UiEvent::Started(mappings.to_vec()));
        Ok(())
    }

    fn region(&mut self, _: ScenarioName, _: Allocator, region: &Region) -> io::Result<()> {
        let _ = self.0.send(UiEvent::Region(region.clone()));
        Ok(())
    }

    fn step(&mut self, step: &StepReport) -> io::Result<()> {
        let _ = self.0.send(UiEvent::Step(Box::new(step.clone())));
        Ok(())
    }

    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        let _ = self
            .0
            .send(UiEvent::Finished(format!("the child {}", summary.child)));
        Ok(())
    }

    fn comparison(&mut self, _: &[WalkResult]) -> io::Result<()> {
        Ok(())
    }
}

/// Runs the walk's next step when the view asks (Enter), as the seed's getchar() did.
pub struct ViewPacer(pub UnboundedReceiver<Request>);

impl Pacer for ViewPacer {
    async fn before_step(&mut self, _: u32, _: &str) -> anyhow::Result<()> {
        while let Some(request) = self.0.recv().await {
            if request == Request::NextStep {
                return Ok(());
            }
        }
        anyhow::bail!("the view closed")
    }
}

/// Feeds `demo trace`'s events to the view, and the session's page states of the regions that
/// changed, at most once a tick: the view keeps no page model of its own.
pub struct ViewTrace {
    sender: UnboundedSender<UiEvent>,
    /// Regions hit by a fault since their pages were last sent.
    changed: BTreeSet<usize>,
    sent: Option<Instant>,
}

impl ViewTrace {
    pub fn new(sender: UnboundedSender<UiEvent>) -> Self {
        Self {
            sender,
            changed: BTreeSet::new(),
            sent: None,
        }
    }

    fn send_pages(&mut self, session: &Session) {
        let pages = std::mem::take(&mut self.changed)
            .into_iter()
            .filter_map(|id| Some((id, session.pages_of(id)?.clone())))
            .collect();
        let _ = self.sender.send(UiEvent::Pages(pages));
        self.sent = Some(Instant::now());
    }
}

impl TraceOutput for ViewTrace {
    fn started(&mut self, _: &TraceStart) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        if let TraceEvent::Fault(traced) = event
            && let Some((id, _, _)) = traced.region
        {
            self.changed.insert(id);
        }
        let _ = self.sender.send(UiEvent::Trace(Box::new(event.clone())));
        Ok(())
    }

    fn pages(&mut self, session: &Session) -> io::Result<()> {
        // A copy of a large region's states costs; once a tick is what the view draws anyway.
        if !self.changed.is_empty() && self.sent.is_none_or(|sent| sent.elapsed() >= TICK) {
            self.send_pages(session);
        }
        Ok(())
    }

    fn summary(&mut self, summary: &TraceSummary, session: &Session) -> io::Result<()> {
        self.send_pages(session);
        let how = summary.child.as_ref().map_or_else(
            || format!("trace ended by {}", summary.ended_by),
            ToString::to_string,
        );
        let _ = self.sender.send(UiEvent::Finished(how));
        Ok(())
    }
}

/// Feeds `demo top`'s intervals to the view.
pub struct ViewTop(pub UnboundedSender<UiEvent>);

impl TopOutput for ViewTop {
    fn interval(&mut self, interval: &Interval) -> io::Result<()> {
        let _ = self.0.send(UiEvent::Top(Box::new(interval.clone())));
        Ok(())
    }
}

/// A fresh view for `mode`.
pub fn app(mode: Mode, title: &str) -> App {
    App::new(mode, title.to_owned())
}
