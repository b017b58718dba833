//! What the step driver learns of a lesson between its steps, for the lesson's facts of later
//! steps: from the child's replies (the forked pid, the shared mapping, the frame size and the
//! limit it set), and what each step's faults took.

use std::path::PathBuf;

use crate::walk::{
    fault_time::StepFaults,
    workload::{Command, Reply, protocol::reply_address},
};

/// What the step driver knows of a lesson between its steps.
#[derive(Debug, Default)]
pub struct LessonState {
    /// The child fork-cow's fork made.
    pub forked: Option<u32>,
    /// The address of the file lesson's MAP_SHARED mapping.
    pub shared_mapping: Option<u64>,
    /// The stack's bottom and top when the stack lesson began.
    pub stack: Option<(u64, u64)>,
    /// The frame size the stack lesson's recursion reported.
    pub frame_bytes: Option<u64>,
    /// The RLIMIT_STACK the stack lesson set, for the step in which the child dies of it.
    pub stack_limit: Option<u64>,
    /// The file the file lesson's child was asked to create.
    pub file: Option<PathBuf>,
    /// What the faults in the region of each step so far took, in step order: a lesson compares
    /// a step's faults with an earlier step's (a major fault with minor ones, a huge page's
    /// fault with 512 small ones).
    pub earlier: Vec<StepFaults>,
}

impl LessonState {
    /// Keeps what a finished step's faults in the region took, for the steps after it.
    pub fn remember(&mut self, step: StepFaults) {
        self.earlier.push(step);
    }

    /// Learns what a command's reply says that later steps need.
    pub fn learn(&mut self, command: &Command, reply: &Reply) {
        match (command, reply) {
            (Command::LimitStack { bytes }, Reply::Done(_)) => self.stack_limit = Some(*bytes),
            // Asked for, even if it failed: whatever the child made is removed at the end.
            (Command::CreateFile { path, .. }, _) => self.file = Some(path.clone()),
            _ => {}
        }
        let Reply::Done(Some(detail)) = reply else {
            return;
        };
        let mut words = detail.split_whitespace();
        match command {
            Command::Fork => self.forked = words.next().and_then(|pid| pid.parse().ok()),
            Command::MapFile { shared: true, .. } => {
                self.shared_mapping = words.next().and_then(|address| reply_address(address).ok());
            }
            Command::Recurse { .. } => {
                self.frame_bytes = words.nth(1).and_then(|bytes| bytes.parse().ok());
            }
            _ => {}
        }
    }
}
