//! What a trace's faults cost in time, for its summary: a latency histogram per class, the
//! slowest faults, and the CPU and wall time they are a share of. Every fault the session
//! resolves goes through [`FaultDurations::record`], whether an output lists it or not.

use crate::model::{classify::FaultClass, latency::LatencyHistogram};

use super::session::TracedFault;

/// How many of the slowest faults the summary keeps.
pub const SLOWEST: usize = 10;

/// The durations of a trace's faults, gathered as they are resolved.
#[derive(Debug, Default)]
pub struct FaultDurations {
    minor: LatencyHistogram,
    major: LatencyHistogram,
    /// The slowest timed faults, slowest first; of equal ones, the earlier first.
    slowest: Vec<TracedFault>,
}

impl FaultDurations {
    /// Counts `traced` when the kernel timed it (a fault that completed, with durations on).
    pub fn record(&mut self, traced: &TracedFault) {
        let Some(timing) = traced.fault.timing else {
            return;
        };
        let ns = timing.duration_ns;
        match traced.fault.class {
            FaultClass::Minor => self.minor.record(ns),
            FaultClass::Major => self.major.record(ns),
            // An error fault never completes, so it is never timed.
            FaultClass::Error => return,
        }
        let at = self.slowest.partition_point(|kept| duration_of(kept) >= ns);
        if at < SLOWEST {
            self.slowest.insert(at, traced.clone());
            self.slowest.truncate(SLOWEST);
        }
    }

    /// The summary of what was recorded, against the traced processes' CPU time and the
    /// trace's wall time.
    pub fn summary(&self, cpu: CpuTime, wall_ns: u64) -> DurationSummary {
        DurationSummary {
            minor: self.minor.clone(),
            major: self.major.clone(),
            cpu,
            wall_ns,
            slowest: self.slowest.clone(),
        }
    }
}

fn duration_of(traced: &TracedFault) -> u64 {
    traced.fault.timing.map_or(0, |timing| timing.duration_ns)
}

/// The CPU time of what was traced, which the time in faults is a share of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuTime {
    /// The command's user and system time, from its rusage (wait4): its own, and that of the
    /// children it waited for.
    Command { user_ns: u64, system_ns: u64 },
    /// The traced process `pid`'s user and system time while it was traced, from
    /// /proc/PID/stat (in clock ticks).
    Process { pid: u32, ns: u64 },
    /// Not known, and why.
    Unknown(CpuUnknown),
}

/// Why the CPU time of what was traced is not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuUnknown {
    /// The process ended before demo could read its CPU time at the end of the trace.
    ProcessGone,
    /// The trace followed other processes, whose CPU time demo does not read.
    Followed,
    /// A cgroup's trace: demo reads only the CPU time of each process still running at the
    /// end (in the summary's processes), not that of those that exited.
    Cgroup,
    /// The command was not reaped.
    NotReaped,
}

impl CpuTime {
    pub fn ns(self) -> Option<u64> {
        match self {
            Self::Command { user_ns, system_ns } => Some(user_ns + system_ns),
            Self::Process { ns, .. } => Some(ns),
            Self::Unknown(_) => None,
        }
    }
}

/// The durations in a trace's summary.
#[derive(Clone, Debug)]
pub struct DurationSummary {
    pub minor: LatencyHistogram,
    pub major: LatencyHistogram,
    pub cpu: CpuTime,
    /// The trace's wall time, from its start to its summary.
    pub wall_ns: u64,
    /// The [`SLOWEST`] slowest faults, slowest first.
    pub slowest: Vec<TracedFault>,
}

impl DurationSummary {
    /// Faults with a duration: the completed ones whose completion the trace saw.
    pub fn timed_faults(&self) -> u64 {
        self.minor.count() + self.major.count()
    }

    /// The time in faults, from each one's start to its completion, waits off the CPU included.
    pub fn total_ns(&self) -> u64 {
        u64::try_from(self.minor.total_ns() + self.major.total_ns()).unwrap_or(u64::MAX)
    }

    /// The time in faults over the CPU time; above 1 when faults waited off the CPU long.
    pub fn share_of_cpu(&self) -> Option<f64> {
        let cpu = self.cpu.ns()?;
        (cpu > 0).then(|| self.total_ns() as f64 / cpu as f64)
    }

    /// The time in faults over the trace's wall time; above 1 when threads faulted at once.
    pub fn share_of_wall(&self) -> f64 {
        self.total_ns() as f64 / self.wall_ns.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use demo_common::FaultSource;

    use super::*;
    use crate::{
        kernel::symbols::Code,
        model::{
            access::ErrorCode,
            classify::{ClassCounts, ClassifiedFault},
            events::{Fault, FaultTiming},
        },
    };

    /// A fault of `class` at `timestamp_ns`, which took `duration_ns` when there is one.
    fn fault(class: FaultClass, timestamp_ns: u64, duration_ns: Option<u64>) -> TracedFault {
        TracedFault {
            fault: ClassifiedFault {
                fault: Fault {
                    timestamp_ns,
                    pid: 100,
                    tid: 100,
                    address: 0x7f00_0000_0000 + timestamp_ns * 4096,
                    ip: 0x40_0100,
                    error_code: ErrorCode(6),
                    source: FaultSource::User,
                },
                class,
                timing: duration_ns.map(|duration_ns| FaultTiming {
                    duration_ns,
                    off_cpu_ns: Some(0),
                    reclaim_ns: 0,
                    compaction_ns: 0,
                }),
            },
            mapping: Arc::from("[anon]"),
            mapping_offset: 0,
            region: None,
            code: Arc::new(Code::default()),
            stack: None,
            command: None,
        }
    }

    fn summary_of(faults: &[TracedFault]) -> DurationSummary {
        let mut durations = FaultDurations::default();
        for traced in faults {
            durations.record(traced);
        }
        durations.summary(
            CpuTime::Process {
                pid: 100,
                ns: 4_000_000,
            },
            8_000_000,
        )
    }

    /// 90 minor faults of 1 µs, 9 of 100 µs and one major of 5 ms, with 3 error faults.
    fn faults() -> Vec<TracedFault> {
        let minor = |at, ns| fault(FaultClass::Minor, at, Some(ns));
        (0..90)
            .map(|at| minor(at, 1_000))
            .chain((90..99).map(|at| minor(at, 100_000)))
            .chain([fault(FaultClass::Major, 99, Some(5_000_000))])
            .chain((100..103).map(|at| fault(FaultClass::Error, at, None)))
            .collect()
    }

    #[test]
    fn the_histograms_count_every_completed_fault_of_their_class() {
        let faults = faults();
        let summary = summary_of(&faults);
        let counts = ClassCounts::of(faults.iter().map(|traced| traced.fault.class));
        assert_eq!(summary.minor.count(), counts.minor);
        assert_eq!(summary.major.count(), counts.major);
        assert_eq!(summary.timed_faults(), counts.minor + counts.major);
        let in_buckets = |histogram: &LatencyHistogram| -> u64 {
            histogram
                .log2_buckets()
                .iter()
                .map(|bucket| bucket.count)
                .sum()
        };
        assert_eq!(in_buckets(&summary.minor), 99);
        assert_eq!(in_buckets(&summary.major), 1);
        assert_eq!(summary.total_ns(), 90 * 1_000 + 9 * 100_000 + 5_000_000);
        assert_eq!(summary.share_of_cpu(), Some(5_990_000.0 / 4_000_000.0));
        assert_eq!(summary.share_of_wall(), 5_990_000.0 / 8_000_000.0);
    }

    /// Each percentile is the upper end of the bucket that holds it (1 µs is in [960, 1023])
    /// and never above the maximum: of 99 minor faults, the 90th is one of the 90 of 1 µs, the
    /// 99th the slowest.
    #[test]
    fn percentiles_are_bounds_of_the_bucket_that_holds_them() {
        let summary = summary_of(&faults());
        let minor = &summary.minor;
        assert_eq!(minor.percentile_ns(0.5), Some(1_023));
        assert_eq!(minor.percentile_ns(0.9), Some(1_023));
        assert_eq!(minor.percentile_ns(0.99), Some(100_000));
        assert_eq!(minor.max_ns(), 100_000);
        assert_eq!(summary.major.percentile_ns(0.5), Some(5_000_000));
    }

    /// The ten slowest, slowest first; of equal ones the earlier first; untimed ones never.
    #[test]
    fn the_slowest_are_kept_slowest_first_and_the_earlier_of_equals_first() {
        let durations = [7, 3, 12, 12, 1, 9, 15, 2, 8, 12, 4, 6, 11, 5, 10];
        let mut faults: Vec<TracedFault> = (0..)
            .zip(durations)
            .map(|(at, ns)| fault(FaultClass::Minor, at, Some(ns * 1_000)))
            .collect();
        faults.push(fault(FaultClass::Error, 99, None));
        let summary = summary_of(&faults);
        let kept: Vec<(u64, u64)> = (summary.slowest.iter())
            .map(|traced| {
                let ns = traced.fault.timing.unwrap().duration_ns / 1_000;
                (ns, traced.fault.fault.timestamp_ns)
            })
            .collect();
        assert_eq!(
            kept,
            [
                (15, 6),
                (12, 2),
                (12, 3),
                (12, 9),
                (11, 12),
                (10, 14),
                (9, 5),
                (8, 8),
                (7, 0),
                (6, 11)
            ]
        );
    }
}
