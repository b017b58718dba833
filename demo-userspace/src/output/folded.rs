//! The folded-stacks sink (`--format folded`): weighs each distinct stack and writes, at the
//! end of a trace or walk, one line per stack, `command;root;...;leaf weight`, the format of
//! FlameGraph's stackcollapse scripts and inferno. The weight is the number of faults, or with
//! `trace --weight time` their total duration in nanoseconds (a flame graph of the time stalled
//! in faults). Without `--stacks` a fault's stack is its faulting function alone. Every name is
//! escaped ([`super::code::folded_name`]), so a line is one stack whatever a process or symbol
//! is named.

use std::{
    collections::BTreeMap,
    io::{self, Write},
    sync::Arc,
};

use rustc_hash::FxHashMap;

use super::code::{folded_frames, folded_name};
use crate::{
    kernel::symbols::{Code, EndCause, Stack},
    model::{classify::ClassifiedFault, region::Region},
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

/// What a stack's number counts (`demo trace --weight`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Weight {
    /// The faults that ended in the stack.
    #[default]
    Faults,
    /// The faults' total duration in nanoseconds, from each one's start to its completion. A
    /// fault that was not timed (an error fault never completes) adds nothing.
    Time,
}

/// A process and its stack, as the addresses of each frame's shared code, and whether the
/// stack was cut before its outermost frame.
type StackKey = (u32, Option<&'static str>, Vec<usize>);

/// Weights per (process, stack), with the code of each frame.
#[derive(Debug, Default)]
struct StackCounts {
    weight: Weight,
    counts: FxHashMap<StackKey, (Vec<Arc<Code>>, u64)>,
    /// Under [`Weight::Time`], the faults weighed and those that had no duration to weigh.
    timed: u64,
    untimed: u64,
}

impl StackCounts {
    fn new(weight: Weight) -> Self {
        Self {
            weight,
            ..Self::default()
        }
    }

    fn add(&mut self, fault: &ClassifiedFault, code: &Arc<Code>, stack: Option<&Stack>) {
        let weight = match (self.weight, fault.timing) {
            (Weight::Faults, _) => 1,
            (Weight::Time, Some(timing)) => {
                self.timed += 1;
                timing.duration_ns
            }
            (Weight::Time, None) => {
                self.untimed += 1;
                return;
            }
        };
        let frames = frames_of(code, stack);
        // Every fault at one address shares its code, so the addresses of the codes name the
        // stack without hashing their text.
        let key = (
            fault.fault.pid,
            stack.and_then(cut_root),
            frames.iter().map(|c| Arc::as_ptr(c) as usize).collect(),
        );
        self.counts.entry(key).or_insert((frames, 0)).1 += weight;
    }

    /// Writes one line per distinct folded stack of positive weight, in name order, and forgets
    /// the counts. Under [`Weight::Time`] the log says what the lines weigh in all and how many
    /// faults weighed nothing, since the format has no line for it.
    fn write(&mut self, out: &mut impl Write, command: impl Fn(u32) -> String) -> io::Result<()> {
        let mut lines: BTreeMap<String, u64> = BTreeMap::new();
        for ((pid, cut, _), (frames, count)) in self.counts.drain() {
            // A process names itself, so its name is escaped like a frame's: a newline in it
            // would start a line of its own, read as a stack with the count it chose.
            let mut names = vec![folded_name(&command(pid))];
            names.extend(cut.map(str::to_owned));
            // Innermost first in the stack; root first in the line.
            for code in frames.iter().rev() {
                folded_frames(code, &mut names);
            }
            *lines.entry(names.join(";")).or_default() += count;
        }
        let mut total: u64 = 0;
        for (line, count) in lines.into_iter().filter(|(_, count)| *count > 0) {
            total += count;
            writeln!(out, "{line} {count}")?;
        }
        if self.weight == Weight::Time {
            let (timed, untimed) = (self.timed, self.untimed);
            let said = format!(
                "folded --weight time: {total} ns in {timed} timed faults; {untimed} faults not timed (an error fault never completes) weigh nothing"
            );
            if untimed > 0 {
                log::warn!("{said}");
            } else {
                log::info!("{said}");
            }
        }
        out.flush()
    }
}

/// A fault's frames as a profile counts them, innermost first: the code of each frame of its
/// stack, or without `--stacks` (or with a stack of no frame) its faulting function alone.
pub(super) fn frames_of(code: &Arc<Code>, stack: Option<&Stack>) -> Vec<Arc<Code>> {
    match stack {
        Some(stack) if !stack.is_empty() => {
            stack.iter().map(|frame| Arc::clone(&frame.code)).collect()
        }
        _ => vec![Arc::clone(code)],
    }
}

/// The root a stack cut before its outermost frame gets in a flame graph, in place of the
/// callers it lacks: `[truncated]` where the copy was too short (`--stack-bytes`),
/// `[unreadable]` where the stack could not be read, `[deeper]` past the unwinder's depth. So such stacks stand apart and are not
/// counted as called from their outermost known frame.
pub(super) fn cut_root(stack: &Stack) -> Option<&'static str> {
    match stack.end?.why {
        EndCause::Truncated => Some("[truncated]"),
        EndCause::Unreadable => Some("[unreadable]"),
        EndCause::DepthLimit => Some("[deeper]"),
        EndCause::NotExecutable | EndCause::NoUserAddress | EndCause::MappingUnknown => None,
    }
}

/// `demo trace --format folded`.
pub struct FoldedTrace<W> {
    out: W,
    stacks: StackCounts,
}

impl<W: Write> FoldedTrace<W> {
    /// Stacks weighed as `weight` says.
    pub fn weighted(out: W, weight: Weight) -> Self {
        Self {
            out,
            stacks: StackCounts::new(weight),
        }
    }
}

impl<W: Write> TraceOutput for FoldedTrace<W> {
    fn started(&mut self, _start: &TraceStart) -> io::Result<()> {
        Ok(())
    }

    fn event(&mut self, event: &TraceEvent) -> io::Result<()> {
        if let TraceEvent::Fault(traced) = event {
            self.stacks
                .add(&traced.fault, &traced.code, traced.stack.as_ref());
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
                .add(&fault.fault, &fault.code, fault.stack.as_ref());
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
        let mut fault = crate::output::fixtures::classified(0x1000, 6);
        fault.fault.pid = 1;
        for _ in 0..3 {
            stacks.add(&fault, &code, None);
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

    /// A stack the copy cut short stands apart under a `[truncated]` root, not counted as
    /// called from its outermost known frame; the same frames unwound whole have a line of
    /// their own.
    #[test]
    fn a_truncated_stack_has_a_root_of_its_own() {
        let fault = crate::output::fixtures::classified(0x1000, 6);
        let whole = crate::kernel::symbols::Stack {
            end: None,
            ..crate::output::fixtures::unwound_stack()
        };
        let cut = crate::output::fixtures::unwound_stack();
        let mut stacks = StackCounts::default();
        for stack in [&whole, &cut, &cut] {
            stacks.add(&fault, &crate::output::fixtures::code(), Some(stack));
        }
        let mut out = Vec::new();
        stacks.write(&mut out, |_| "prog".to_owned()).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "prog;[truncated];_int_malloc;demo::walk::workload::child::State::perform 2\n\
             prog;_int_malloc;demo::walk::workload::child::State::perform 1\n"
        );
    }

    /// Under `--weight time` a stack weighs its faults' nanoseconds; an untimed fault weighs
    /// nothing and is counted as such, and a stack with no timed fault has no line (a weight of
    /// 0 draws nothing and is not a positive count). Under `faults` each fault weighs one.
    #[test]
    fn time_weighs_each_stack_by_its_faults_durations() {
        use crate::model::{classify::FaultClass, events::FaultTiming};
        let named = |symbol: &str| {
            Arc::new(Code {
                module: Some("/tmp/prog".to_owned()),
                symbol: Some(symbol.to_owned()),
                ..Code::default()
            })
        };
        let (fill, main) = (named("fill"), named("main"));
        let timed = |ns| {
            let mut fault = crate::output::fixtures::classified(0x1000, 6);
            fault.timing = Some(FaultTiming {
                duration_ns: ns,
                off_cpu_ns: Some(0),
                reclaim_ns: 0,
                compaction_ns: 0,
            });
            fault
        };
        let mut error = crate::output::fixtures::classified(0x9000, 6);
        error.class = FaultClass::Error;
        let faults = [
            (timed(1_000), &fill),
            (timed(2_500), &fill),
            (error, &fill),
            (error, &main),
        ];
        let folded = |weight| {
            let mut stacks = StackCounts::new(weight);
            for (fault, code) in &faults {
                stacks.add(fault, code, None);
            }
            let mut out = Vec::new();
            stacks.write(&mut out, |_| "prog".to_owned()).unwrap();
            (
                String::from_utf8(out).unwrap(),
                stacks.timed,
                stacks.untimed,
            )
        };
        assert_eq!(folded(Weight::Time), ("prog;fill 3500\n".to_owned(), 2, 2));
        assert_eq!(
            folded(Weight::Faults),
            ("prog;fill 3\nprog;main 1\n".to_owned(), 0, 0)
        );
    }
}
