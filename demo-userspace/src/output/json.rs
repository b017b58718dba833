//! JSON Lines output: one object per region, fault, syscall, signal, step, summary and
//! comparison, with stable field names.

use std::io;

use super::{
    BatchWrite, JsonLines,
    lines::{ComparisonLine, FaultLine, RegionLine, SignalLine, StepLine, SyscallLine, WalkLine},
};
use crate::{
    model::region::Region,
    walk::Reporter,
    walk::plan::{Allocator, ScenarioName},
    walk::scenario::{Summary, WalkResult},
    walk::step_report::StepReport,
};

/// Writes one JSON object per line and flushes after each step.
pub struct JsonReporter<W: BatchWrite> {
    out: JsonLines<W>,
}

impl<W: BatchWrite> JsonReporter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: JsonLines::new(out),
        }
    }
}

impl<W: BatchWrite> JsonReporter<W> {
    fn faults(&mut self, step: &StepReport) -> io::Result<()> {
        let scenario = step.scenario.as_str();
        for resolved in &step.faults {
            self.out.line(&WalkLine::Fault(FaultLine::new(
                scenario,
                Some(step.step),
                (&resolved.fault, &resolved.code, resolved.stack.as_ref()),
                resolved.location().map(|l| (&*step.region.name, l)),
                &resolved.mapping,
                None,
            )))?;
        }
        Ok(())
    }

    fn syscalls(&mut self, step: &StepReport) -> io::Result<()> {
        for call in &step.syscalls {
            self.out.line(&WalkLine::Syscall(SyscallLine::new(
                step.scenario.as_str(),
                Some(step.step),
                call,
            )))?;
        }
        Ok(())
    }

    fn signals(&mut self, step: &StepReport) -> io::Result<()> {
        let fatal = step.death.as_ref().and_then(|death| death.generated);
        for signal in step.signals.iter().filter(|&&signal| Some(signal) != fatal) {
            self.out.line(&WalkLine::Signal(SignalLine::generated(
                step.scenario.as_str(),
                Some(step.step),
                signal,
            )))?;
        }
        match SignalLine::death(step) {
            Some(line) => self.out.line(&WalkLine::Signal(line)),
            None => Ok(()),
        }
    }
}

impl<W: BatchWrite> Reporter for JsonReporter<W> {
    fn region(
        &mut self,
        scenario: ScenarioName,
        allocator: Allocator,
        region: &Region,
    ) -> io::Result<()> {
        self.out.line(&WalkLine::Region(RegionLine::new(
            scenario.as_str(),
            None,
            region,
            allocator.as_str(),
        )))
    }

    fn step(&mut self, step: &StepReport) -> io::Result<()> {
        self.faults(step)?;
        self.syscalls(step)?;
        self.signals(step)?;
        self.out
            .line(&WalkLine::Step(Box::new(StepLine::new(step))))?;
        self.out.flush()
    }

    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        self.out.line(&WalkLine::Summary(summary.into()))?;
        self.out.flush()
    }

    fn comparison(&mut self, walks: &[WalkResult]) -> io::Result<()> {
        self.out
            .line(&WalkLine::Comparison(ComparisonLine::new(walks)))?;
        self.out.flush()
    }
}
