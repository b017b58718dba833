//! What a trace's stacks were like: how many were captured, how many the copy cut short or
//! could not read to their end, and how many have a frame found without unwind tables; so a
//! user knows when to raise `--stack-bytes`, and which callers to doubt.

use crate::kernel::symbols::{EndCause, Stack};

/// The stacks of a trace's faults, counted as they were named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackTotals {
    /// Faults with a stack.
    pub stacks: u64,
    /// Stacks whose next caller lay past the copy (`--stack-bytes`).
    pub truncated: u64,
    /// Stacks whose next caller lay in stack memory the kernel side could not read.
    pub unreadable: u64,
    /// Stacks with a frame whose module has no unwind tables, whose caller was found by frame
    /// pointer.
    pub without_unwind_info: u64,
}

impl StackTotals {
    /// Counts one fault's stack.
    pub fn add(&mut self, stack: &Stack) {
        self.stacks += 1;
        match stack.end.map(|end| end.why) {
            Some(EndCause::Truncated) => self.truncated += 1,
            Some(EndCause::Unreadable) => self.unreadable += 1,
            _ => {}
        }
        if stack.iter().any(|frame| frame.no_unwind_info) {
            self.without_unwind_info += 1;
        }
    }

    /// The share of stacks the copy truncated, in percent; `None` without stacks.
    pub fn truncated_percent(&self) -> Option<f64> {
        (self.stacks > 0).then(|| self.truncated as f64 * 100.0 / self.stacks as f64)
    }
}
