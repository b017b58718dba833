//! The line `demo top` writes once per interval.

use schemars::JsonSchema;
use serde::Serialize;

use crate::top::{Interval, PageReport, Row};

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
    processes: &'a [Row],
    dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pages: Option<PagesLine<'a>>,
}

impl<'a> IntervalLine<'a> {
    pub fn new(interval: &'a Interval, ts: String) -> Self {
        Self {
            ts,
            interval_s: (interval.seconds * 1000.0).round() / 1000.0,
            processes: &interval.rows,
            dropped: interval.dropped,
            pages: interval
                .pages
                .as_ref()
                .map(|report| PagesLine::new(report, interval.pages_evicted)),
        }
    }
}
