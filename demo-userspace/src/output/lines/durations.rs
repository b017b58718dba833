//! The trace summary's `durations`: a latency histogram per class, the share of the CPU and
//! wall time, the slowest faults.

use schemars::JsonSchema;
use serde::Serialize;

use super::{trace::SCENARIO, walk::FaultLine};
use crate::{
    model::latency::{LatencyHistogram, Log2Bucket},
    trace::durations::DurationSummary,
};

/// The summary's `durations`: what the trace's faults cost in time.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "FaultDurations")]
pub struct DurationsLine<'a> {
    /// Faults with a duration: the completed ones whose completion the trace saw.
    timed_faults: u64,
    /// Their time, from each one's start to its completion, waits off the CPU included.
    total_ns: u64,
    by_class: ByClassLine,
    /// The CPU time of what was traced: the command's user and system time from its rusage
    /// (the children it waited for included), or a `--pid` process's while traced from
    /// /proc/PID/stat; null when unknown.
    cpu_ns: Option<u64>,
    /// `total_ns` over `cpu_ns`; above 1 when faults waited off the CPU; null when unknown.
    share_of_cpu: Option<f64>,
    /// The trace's wall time, from its start to its summary.
    wall_ns: u64,
    /// `total_ns` over `wall_ns`; above 1 when threads faulted at once.
    share_of_wall: f64,
    /// The slowest faults (at most 10), slowest first, as their `fault` lines have them.
    slowest: Vec<FaultLine<'a>>,
}

impl<'a> DurationsLine<'a> {
    pub fn new(durations: &'a DurationSummary) -> Self {
        Self {
            timed_faults: durations.timed_faults(),
            total_ns: durations.total_ns(),
            by_class: ByClassLine {
                minor: (&durations.minor).into(),
                major: (&durations.major).into(),
            },
            cpu_ns: durations.cpu.ns(),
            share_of_cpu: durations.share_of_cpu(),
            wall_ns: durations.wall_ns,
            share_of_wall: durations.share_of_wall(),
            slowest: durations
                .slowest
                .iter()
                .map(|traced| FaultLine::of_traced(SCENARIO, traced))
                .collect(),
        }
    }
}

/// A histogram per class; error faults never complete, so they have none.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "DurationsByClass")]
struct ByClassLine {
    minor: HistogramLine,
    major: HistogramLine,
}

/// The durations of one class of faults.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "LatencyHistogram")]
struct HistogramLine {
    count: u64,
    total_ns: u64,
    /// At most this: the upper end of the bucket that holds the median (buckets are an eighth
    /// of a power of two wide), never above `max_ns`; null without faults. So are p90 and p99.
    p50_ns: Option<u64>,
    p90_ns: Option<u64>,
    p99_ns: Option<u64>,
    /// The longest, exactly; null without faults.
    max_ns: Option<u64>,
    /// The counts by power of two, from the lowest bucket with a fault to the highest.
    log2_buckets: Vec<Log2BucketLine>,
}

impl From<&LatencyHistogram> for HistogramLine {
    fn from(histogram: &LatencyHistogram) -> Self {
        Self {
            count: histogram.count(),
            total_ns: u64::try_from(histogram.total_ns()).unwrap_or(u64::MAX),
            p50_ns: histogram.percentile_ns(0.5),
            p90_ns: histogram.percentile_ns(0.9),
            p99_ns: histogram.percentile_ns(0.99),
            max_ns: (histogram.count() > 0).then(|| histogram.max_ns()),
            log2_buckets: histogram
                .log2_buckets()
                .into_iter()
                .map(Log2BucketLine::from)
                .collect(),
        }
    }
}

/// The faults that took from `from_ns` up to, not including, `to_ns`.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Log2Bucket")]
struct Log2BucketLine {
    from_ns: u64,
    /// Null for the last bucket, which has no upper bound.
    to_ns: Option<u64>,
    count: u64,
}

impl From<Log2Bucket> for Log2BucketLine {
    fn from(bucket: Log2Bucket) -> Self {
        Self {
            from_ns: bucket.from_ns,
            to_ns: bucket.to_ns,
            count: bucket.count,
        }
    }
}
