//! Under `--tui`, log messages (aya-log's and demo's warnings) go to the view's log pane, never
//! over the screen: this logger keeps them until the view takes them.

use std::{
    collections::VecDeque,
    sync::{Mutex, PoisonError},
};

/// Lines logged and not yet shown; bounded, so a flood cannot grow without limit.
static PENDING: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
const PENDING_MAX: usize = 1000;

pub struct TuiLogger;

impl TuiLogger {
    /// Installs the logger at `warn` level, or as RUST_LOG says.
    pub fn install() {
        let level = std::env::var("RUST_LOG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(log::LevelFilter::Warn);
        if log::set_logger(&TuiLogger).is_ok() {
            log::set_max_level(level);
        }
    }
}

impl log::Log for TuiLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let mut pending = PENDING.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() == PENDING_MAX {
            pending.pop_front();
        }
        pending.push_back(format!("{} {}", record.level(), record.args()));
    }

    fn flush(&self) {}
}

/// The lines logged since the last call.
pub fn take() -> Vec<String> {
    PENDING
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .collect()
}
