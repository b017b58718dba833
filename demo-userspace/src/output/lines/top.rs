//! The line `demo top` writes once per interval.

use schemars::JsonSchema;
use serde::Serialize;

use super::code::CodeLine;
use crate::top::{
    Group, Interval, PageReport, Row, Subject,
    fault_time::{Bound, TimeInFaults},
};

/// One process in one interval, or with `--group`, one command or cgroup.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Row")]
struct RowLine<'a> {
    /// The process; left out of a group's row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    /// The process's command, or the command a `--group comm` row sums.
    #[serde(skip_serializing_if = "Option::is_none")]
    comm: Option<&'a str>,
    /// The cgroup v2 path a `--group cgroup` row sums.
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup: Option<&'a str>,
    /// How many processes a group's row sums: those alive and those that exited in the
    /// interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<usize>,
    /// Faults since demo top started (or the process did).
    faults: u64,
    /// Faults in this interval.
    interval_faults: u64,
    /// Faults per second in this interval.
    rate: f64,
    /// The kernel's own minor and major fault counts since demo top started (or the process
    /// did); `None` when they could not be read.
    minor: Option<u64>,
    major: Option<u64>,
    /// Share of writes among all faults, in percent; `None` when only the kernel's counters
    /// were read (`--counters-only`).
    write_pct: Option<f64>,
    /// Share of kernel-mode faults, in percent; `None` likewise.
    kernel_pct: Option<f64>,
    /// The process exited (a group: all its processes did), in this interval, or before with
    /// `--keep-exited`.
    exited: bool,
    /// With `--durations`, its time in faults; left out without.
    #[serde(skip_serializing_if = "Option::is_none")]
    fault_time: Option<TimeInFaultsLine>,
}

/// A row's completed faults, each timed from its start to the kernel's completion event.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TimeInFaults")]
struct TimeInFaultsLine {
    /// Faults timed since demo top started (or the process did), by the class the kernel's
    /// completion event gave.
    minor: u64,
    major: u64,
    /// Their total time.
    total_ns: u64,
    /// Faults timed in this interval, and their time.
    interval_faults: u64,
    interval_ns: u64,
    /// The interval's time in faults per second of it.
    per_second_ns: u64,
    /// The 99th percentile of the interval's faults, as a log2 bucket bounds it; null when no
    /// fault was timed in the interval.
    p99: Option<BoundLine>,
}

/// A duration known only as its bucket's bounds.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Bound")]
enum BoundLine {
    /// At most this: the upper bound of its bucket.
    AtMostNs(u64),
    /// Above this: the last bucket, which has no upper bound.
    AboveNs(u64),
}

impl From<&TimeInFaults> for TimeInFaultsLine {
    fn from(time: &TimeInFaults) -> Self {
        Self {
            minor: time.timed[0],
            major: time.timed[1],
            total_ns: time.total_ns,
            interval_faults: time.interval_timed,
            interval_ns: time.interval_ns,
            per_second_ns: time.per_second_ns,
            p99: time.p99.map(|bound| match bound {
                Bound::AtMost(ns) => BoundLine::AtMostNs(ns),
                Bound::Above(ns) => BoundLine::AboveNs(ns),
            }),
        }
    }
}

impl<'a> From<&'a Row> for RowLine<'a> {
    fn from(row: &'a Row) -> Self {
        let (pid, comm, cgroup, processes) = match &row.subject {
            Subject::Process { pid, comm } => (Some(*pid), Some(comm.as_str()), None, None),
            Subject::Group { group, processes } => match group {
                Group::Command(comm) => (None, Some(comm.as_str()), None, Some(*processes)),
                Group::Cgroup(path) => (None, None, Some(path.as_str()), Some(*processes)),
            },
        };
        Self {
            pid,
            comm,
            cgroup,
            processes,
            faults: row.faults,
            interval_faults: row.interval_faults,
            rate: row.rate,
            minor: row.minor,
            major: row.major,
            write_pct: row.write_pct,
            kernel_pct: row.kernel_pct,
            exited: row.exited,
            fault_time: row.fault_time.as_ref().map(TimeInFaultsLine::from),
        }
    }
}

/// Consecutive pages of one mapping that faulted.
#[derive(Serialize, JsonSchema)]
struct PageLine<'a> {
    /// The first page.
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    address: u64,
    /// How many pages, from `address`.
    pages: u64,
    faults: u64,
    /// The faults on the range's hottest page.
    most: u64,
    /// The mapping the pages were in when they faulted.
    mapping: &'a str,
    /// The code of the last fault on the hottest page on the CPU that faulted there most, when
    /// the kernel side caught it.
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<CodeLine<'a>>,
}

#[derive(Serialize, JsonSchema)]
struct MappingLine<'a> {
    name: &'a str,
    faults: u64,
}

/// Where the process of `--pages` faults: its hottest pages and mappings.
#[derive(Serialize, JsonSchema)]
struct PagesLine<'a> {
    pid: u32,
    pages: Vec<PageLine<'a>>,
    mappings: Vec<MappingLine<'a>>,
    evicted: u64,
}

impl<'a> PagesLine<'a> {
    fn new(report: &'a PageReport, evicted: u64) -> Self {
        Self {
            pid: report.pid,
            pages: report
                .ranges
                .iter()
                .map(|range| PageLine {
                    address: range.start,
                    pages: range.pages,
                    faults: range.faults,
                    most: range.hottest,
                    mapping: &range.mapping,
                    code: range.code.as_deref().map(CodeLine::from),
                })
                .collect(),
            mappings: report
                .mappings
                .iter()
                .map(|(name, faults)| MappingLine {
                    name,
                    faults: *faults,
                })
                .collect(),
            evicted,
        }
    }
}

/// A `top` line: the processes that faulted in one interval.
#[derive(Serialize, JsonSchema)]
pub struct IntervalLine<'a> {
    /// The wall-clock time of the interval's end, RFC 3339 with milliseconds.
    ts: String,
    interval_s: f64,
    processes: Vec<RowLine<'a>>,
    dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<PagesLine<'a>>,
}

impl<'a> IntervalLine<'a> {
    pub fn new(interval: &'a Interval, ts: String) -> Self {
        Self {
            ts,
            interval_s: (interval.seconds * 1000.0).round() / 1000.0,
            processes: interval.rows.iter().map(RowLine::from).collect(),
            dropped: interval.dropped,
            pages: interval
                .pages
                .as_ref()
                .map(|report| PagesLine::new(report, interval.pages_evicted)),
        }
    }
}
