//! The line `demo top` writes once per interval.

use schemars::JsonSchema;
use serde::Serialize;

use crate::top::{Interval, PageReport, Row};

/// One process in one interval.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Row")]
struct RowLine<'a> {
    pid: u32,
    comm: &'a str,
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
    /// The process exited during the interval; it is counted now and then forgotten.
    exited: bool,
}

impl<'a> From<&'a Row> for RowLine<'a> {
    fn from(row: &'a Row) -> Self {
        Self {
            pid: row.pid,
            comm: &row.comm,
            faults: row.faults,
            interval_faults: row.interval_faults,
            rate: row.rate,
            minor: row.minor,
            major: row.major,
            write_pct: row.write_pct,
            kernel_pct: row.kernel_pct,
            exited: row.exited,
        }
    }
}

#[derive(Serialize, JsonSchema)]
struct PageLine<'a> {
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    address: u64,
    faults: u64,
    mapping: &'a str,
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
                .pages
                .iter()
                .map(|(address, faults, mapping)| PageLine {
                    address: *address,
                    faults: *faults,
                    mapping,
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
