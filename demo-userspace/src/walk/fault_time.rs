//! What faults cost, summed as the kernel measured them: a step's time in faults, a run's total
//! and range, and what an earlier step's faults took, for a lesson that compares a later step
//! with it.

use crate::{model::classify::FaultClass, model::events::FaultTiming, trace::session::TracedFault};

/// The time a set of faults took, from their measured durations. A fault without one (an error
/// fault, which never completes, or one whose completion was not seen) is counted, and adds
/// nothing: its time is unknown, never guessed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultTime {
    /// The faults summed over, timed or not.
    pub faults: u64,
    /// Of them, those whose duration the kernel measured.
    pub timed: u64,
    /// Of the faults without a duration, the error faults, which never complete.
    pub errors: u64,
    /// The measured durations, added up.
    pub total_ns: u64,
    /// Of that, the time the faulting threads were off the CPU, in the faults whose split is
    /// known.
    pub off_cpu_ns: u64,
    /// Timed faults whose off-CPU time is not known (the kernel missed the thread's return to
    /// the CPU), so [`FaultTime::off_cpu_ns`] leaves them out.
    pub off_cpu_unknown: u64,
    /// The shortest and the longest measured duration; `None` without one.
    pub shortest_ns: Option<u64>,
    pub longest_ns: Option<u64>,
}

impl FaultTime {
    /// The time `faults` took.
    pub fn of<'a>(faults: impl IntoIterator<Item = &'a TracedFault>) -> Self {
        faults.into_iter().fold(Self::default(), |sum, fault| {
            sum.with(fault.fault.class, fault.fault.timing)
        })
    }

    fn with(mut self, class: FaultClass, timing: Option<FaultTiming>) -> Self {
        self.faults += 1;
        match timing {
            Some(timing) => {
                self.timed += 1;
                self.total_ns += timing.duration_ns;
                match timing.off_cpu_ns {
                    Some(ns) => self.off_cpu_ns += ns,
                    None => self.off_cpu_unknown += 1,
                }
                self.shortest_ns = Some(
                    self.shortest_ns
                        .map_or(timing.duration_ns, |ns| ns.min(timing.duration_ns)),
                );
                self.longest_ns = Some(
                    self.longest_ns
                        .map_or(timing.duration_ns, |ns| ns.max(timing.duration_ns)),
                );
            }
            None if class == FaultClass::Error => self.errors += 1,
            None => {}
        }
        self
    }

    /// The faults without a measured duration that are not errors: their completion was not
    /// seen (its record lost).
    pub fn unmeasured(self) -> u64 {
        self.faults - self.timed - self.errors
    }

    /// The time of both sets of faults.
    pub fn plus(self, other: Self) -> Self {
        let pick = |one: Option<u64>, two: Option<u64>, keep: fn(u64, u64) -> u64| match (one, two)
        {
            (Some(one), Some(two)) => Some(keep(one, two)),
            (one, two) => one.or(two),
        };
        Self {
            faults: self.faults + other.faults,
            timed: self.timed + other.timed,
            errors: self.errors + other.errors,
            total_ns: self.total_ns + other.total_ns,
            off_cpu_ns: self.off_cpu_ns + other.off_cpu_ns,
            off_cpu_unknown: self.off_cpu_unknown + other.off_cpu_unknown,
            shortest_ns: pick(self.shortest_ns, other.shortest_ns, u64::min),
            longest_ns: pick(self.longest_ns, other.longest_ns, u64::max),
        }
    }
}

/// What one step's faults in the region took, by class, kept for the lessons' later steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepFaults {
    pub step: u32,
    pub minor: FaultTime,
    pub major: FaultTime,
    /// Pages of the region in transparent huge pages after the step (kpageflags THP).
    pub huge_pages: u64,
}

impl StepFaults {
    /// The time of the step's faults in the region, of any class.
    pub fn all(&self) -> FaultTime {
        self.minor.plus(self.major)
    }
}

#[cfg(test)]
mod tests {
    use demo_common::FaultSource;

    use super::*;
    use crate::{model::access::ErrorCode, model::classify::ClassifiedFault, model::events::Fault};

    fn timed(duration_ns: u64, off_cpu_ns: Option<u64>, class: FaultClass) -> TracedFault {
        TracedFault {
            fault: ClassifiedFault {
                fault: Fault {
                    timestamp_ns: 1,
                    pid: 100,
                    tid: 100,
                    address: 0x7f00_0000_0000,
                    ip: 0x5555_0000_1000,
                    error_code: ErrorCode(6),
                    source: FaultSource::User,
                },
                class,
                timing: (class != FaultClass::Error).then_some(FaultTiming {
                    duration_ns,
                    off_cpu_ns,
                    ..FaultTiming::default()
                }),
            },
            mapping: "[anon]".into(),
            mapping_offset: 0,
            region: None,
            code: std::sync::Arc::default(),
            stack: None,
            command: None,
        }
    }

    #[test]
    fn the_measured_faults_are_summed_and_the_others_counted_apart() {
        let mut lost = timed(0, None, FaultClass::Minor);
        lost.fault.timing = None;
        let faults = [
            timed(2_000, Some(0), FaultClass::Minor),
            timed(1_900_000, Some(1_700_000), FaultClass::Major),
            timed(900, None, FaultClass::Minor),
            timed(0, None, FaultClass::Error),
            lost,
        ];
        let time = FaultTime::of(&faults);
        assert_eq!(
            time,
            FaultTime {
                faults: 5,
                timed: 3,
                errors: 1,
                total_ns: 1_902_900,
                off_cpu_ns: 1_700_000,
                off_cpu_unknown: 1,
                shortest_ns: Some(900),
                longest_ns: Some(1_900_000),
            }
        );
        assert_eq!(time.unmeasured(), 1);
        assert_eq!(
            FaultTime::of(&faults[..2]).plus(FaultTime::of(&faults[2..])),
            time
        );
        assert_eq!(FaultTime::default().plus(time), time);
    }
}
