//! The folded-stacks sink (`--format folded`): counts faults per distinct stack and writes, at
//! the end of a trace or walk, one line per stack, `command;root;...;leaf count`, the format of
//! FlameGraph's stackcollapse scripts and inferno. Without `--stacks` a fault's stack is its
//! faulting function alone. Every name is escaped ([`super::code::folded_name`]), so a line is
//! one stack whatever a process or symbol is named.

use std::{
    collections::BTreeMap,
    io::{self, Write},
    sync::Arc,
};

use rustc_hash::FxHashMap;

use super::code::{folded_frames, folded_name};
use crate::{
    kernel::symbols::{Code, StackFrame},
    model::region::Region,
    trace::{
        TraceOutput, TraceStart, TraceSummary,
        session::{Session, TraceEvent},
    },
    walk::{
        Reporter,
        plan::{Allocator, ScenarioName},
        scenario::{Summary, WalkResult},
        step_report::StepReport,
    },
};

/// A process and its stack, as the addresses of each frame's shared code.
type StackKey = (u32, Vec<usize>);

/// Fault counts per (process, stack), with the code of each frame.
#[derive(Debug, Default)]
struct StackCounts {
    counts: FxHashMap<StackKey, (Vec<Arc<Code>>, u64)>,
}

impl StackCounts {
    fn add(&mut self, pid: u32, code: &Arc<Code>, stack: Option<&[StackFrame]>) {
        let frames: Vec<Arc<Code>> = match stack {
            Some(stack) if !stack.is_empty() => {
                stack.iter().map(|frame| Arc::clone(&frame.code)).collect()
            }
            _ => vec![Arc::clone(code)],
        };
        // Every fault at one address shares its code, so the addresses of the codes name the
        // stack without hashing their text.
        let key = (
            pid,
            frames.iter().map(|c| Arc::as_ptr(c) as usize).collect(),
        );
        self.counts.entry(key).or_insert((frames, 0)).1 += 1;
    }

    /// Writes one line per distinct folded stack, in name order, and forgets the counts.
    fn write(&mut self, out: &mut impl Write, command: impl Fn(u32) -> String) -> io::Result<()> {
        let mut lines: BTreeMap<String, u64> = BTreeMap::new();
        for ((pid, _), (frames, count)) in self.counts.drain() {
            // A process names itself, so its name is escaped like a frame's: a newline in it
            // would start a line of its own, read as a stack with the count it chose.
            let mut names = vec![folded_name(&command(pid))];
            // Innermost first in the stack; root first in the line.
            for code in frames.iter().rev() {
                folded_frames(code, &mut names);
            }
            *lines.entry(names.join(";")).or_default() += count;
        }
        for (line, count) in lines {
            writeln!(out, "{line} {count}")?;
        }
        out.flush()
    }
}

/// `demo trace --format folded`.
pub struct FoldedTrace<W> {
    out: W,
    stacks: StackCounts,
}

impl<W: Write> FoldedTrace<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            stacks: StackCounts::default(),
        }
    }
}

impl<W: Write> TraceOutput for FoldedTrace<W> {
    fn started(&mut self, _start: &TraceStart) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        if let TraceEvent::Fault(traced) = event {
            self.stacks.add(
                traced.fault.fault.pid,
                &traced.code,
                traced.stack.as_deref(),
            );
        }
        Ok(())
    }

    fn summary(&mut self, _summary: &TraceSummary, session: &Session) -> io::Result<()> {
        self.stacks.write(&mut self.out, |pid| {
            session
                .command_of(pid)
                .map_or_else(|| pid.to_string(), str::to_owned)
        })
    }
}

/// `demo alloc --format folded`: a walk's stacks under the command that ran it, e.g.
/// `demo alloc malloc`.
pub struct FoldedReporter<W> {
    out: W,
    stacks: StackCounts,
}

impl<W: Write> FoldedReporter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            stacks: StackCounts::default(),
        }
    }
}

impl<W: Write> Reporter for FoldedReporter<W> {
    fn region(&mut self, _: ScenarioName, _: Allocator, _: &Region) -> io::Result<()> {
        Ok(())
    }

    fn step(&mut self, step: &StepReport) -> io::Result<()> {
        for fault in &step.faults {
            self.stacks
                .add(fault.fault.fault.pid, &fault.code, fault.stack.as_deref());
        }
        Ok(())
    }

    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        let command = format!("demo alloc {}", summary.scenario.as_str());
        self.stacks.write(&mut self.out, |_| command.clone())
    }

    fn comparison(&mut self, _walks: &[WalkResult]) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses a folded line as flamegraph.pl does: the count is the last space-separated field.
    fn parse(line: &str) -> (Vec<&str>, u64) {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        (stack.split(';').collect(), count.parse().unwrap())
    }

    #[test]
    fn a_hostile_process_name_or_symbol_stays_one_frame_of_one_line() {
        let code = Arc::new(Code {
            module: Some("/tmp/a.out".to_owned()),
            symbol: Some("main\nfake;f 7".to_owned()),
            ..Code::default()
        });
        let mut stacks = StackCounts::default();
        for _ in 0..3 {
            stacks.add(1, &code, None);
        }
        let mut out = Vec::new();
        stacks
            .write(&mut out, |_| "ev il;x 99\nfake\x1b]2;t\x07".to_owned())
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "ev il:x 99\\nfake\\e]2:t\\x07;main\\nfake:f 7 3\n");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(
            parse(lines[0]),
            (vec![r"ev il:x 99\nfake\e]2:t\x07", r"main\nfake:f 7"], 3)
        );
    }
}
