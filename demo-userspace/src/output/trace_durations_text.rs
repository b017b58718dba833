//! The text summary's fault durations: the time in faults against the CPU and wall time, a
//! latency histogram per class drawn as bpftrace's `hist()` draws one, and the slowest faults
//! with where their time went.

use std::{
    io::{self, Write},
    time::Duration,
};

use super::{
    code::describe,
    duration::{at_most, human},
    escape::escape,
    trace_text::{LineWidth, time_ms, write_lines},
};
use crate::{
    model::{
        events::FaultTiming,
        latency::{LatencyHistogram, Log2Bucket},
    },
    trace::{
        TraceSummary,
        durations::{CpuTime, CpuUnknown, DurationSummary},
    },
};

/// The width of a histogram's bar at its longest bucket, as bpftrace draws it.
const BAR: usize = 52;

/// What the durations section needs from the trace's start.
#[derive(Clone, Copy, Debug, Default)]
pub struct Listed {
    /// CLOCK_MONOTONIC ns at the start, which the slowest faults' times are relative to.
    pub start_ns: u64,
    /// `--min-duration`: faults below it were not listed.
    pub min_duration: Option<Duration>,
}

/// Writes the durations section of a trace's summary.
pub fn write_durations(
    out: &mut dyn Write,
    width: LineWidth,
    summary: &TraceSummary,
    listed: Listed,
) -> io::Result<()> {
    let paragraph =
        |out: &mut dyn Write, text: &str| write_lines(out, &width.wrap_under("", "  ", text));
    writeln!(out)?;
    let Some(durations) = &summary.durations else {
        return paragraph(out, "fault durations: not measured (--no-durations)");
    };
    block(out, width, &time_in_faults(durations))?;
    let mut legend = "DURATION runs from a fault's start to its completion; - marks a fault \
                      without one: an error fault (SIGSEGV, SIGBUS, a kernel fixup) never \
                      completes"
        .to_owned();
    let untimed = (summary.minor + summary.major).saturating_sub(durations.timed_faults());
    if untimed > 0 {
        legend += &format!(
            ", and {untimed} completed {} no completion the trace saw",
            if untimed == 1 {
                "fault had"
            } else {
                "faults had"
            }
        );
    }
    paragraph(out, &legend)?;
    if summary.completions_without_start > 0 {
        paragraph(
            out,
            &format!(
                "{} without a start: their fault's record was lost, or the fault began before \
                 the trace",
                match summary.completions_without_start {
                    1 => "1 completion".to_owned(),
                    n => format!("{n} completions"),
                }
            ),
        )?;
    }
    if summary.class_disagreements > 0 {
        paragraph(
            out,
            &format!(
                "{} the completion event classed otherwise than the thread's own counters \
                 (the kernel counts a fault as it fires the event, so this should not happen)",
                match summary.class_disagreements {
                    1 => "1 fault".to_owned(),
                    n => format!("{n} faults"),
                }
            ),
        )?;
    }
    if let Some(min) = listed.min_duration {
        paragraph(
            out,
            &format!(
                "faults under {} are not listed above (--min-duration); every fault is \
                 counted here",
                human(u64::try_from(min.as_nanos()).unwrap_or(u64::MAX))
            ),
        )?;
    }
    for (class, histogram) in [("minor", &durations.minor), ("major", &durations.major)] {
        block(out, width, &class_lines(class, histogram))?;
        write_lines(out, &histogram_rows(&histogram.log2_buckets()))?;
    }
    write_slowest(out, width, durations, listed.start_ns)
}

/// A heading, wrapped as a paragraph, and the lines under it indented.
fn block(out: &mut dyn Write, width: LineWidth, lines: &[String]) -> io::Result<()> {
    for (n, line) in lines.iter().enumerate() {
        let head = if n == 0 { "" } else { "  " };
        write_lines(out, &width.wrap_under(head, &format!("{head}  "), line))?;
    }
    Ok(())
}

/// The total time in faults, then its share of the CPU time and of the wall time, a line each.
fn time_in_faults(durations: &DurationSummary) -> Vec<String> {
    let share = |share: f64| format!("{:.1}%", share * 100.0);
    let timed = durations.timed_faults();
    let mut lines = vec![format!(
        "time in faults: {} in {timed} timed {}",
        human(durations.total_ns()),
        if timed == 1 { "fault" } else { "faults" },
    )];
    lines.push(match (durations.cpu, durations.share_of_cpu()) {
        (CpuTime::Command { user_ns, system_ns }, Some(of)) => format!(
            "of the command's CPU time ({} user + {} system, rusage): {}",
            human(user_ns),
            human(system_ns),
            share(of)
        ),
        (CpuTime::Process { pid, ns }, Some(of)) => format!(
            "of pid {pid}'s CPU time while traced ({}, /proc/{pid}/stat): {}",
            human(ns),
            share(of)
        ),
        (CpuTime::Unknown(why), _) => format!(
            "of the CPU time: unknown, {}",
            match why {
                CpuUnknown::ProcessGone => "the process ended before demo read its CPU time",
                CpuUnknown::Followed =>
                    "the trace followed other processes, whose CPU time demo does not read",
                CpuUnknown::Cgroup =>
                    "a cgroup's processes: demo reads each one's CPU time only if it still \
                     runs at the end (listed with it), not for those that exited",
                CpuUnknown::NotReaped => "the command was not reaped",
            }
        ),
        (_, None) => "of the CPU time: unknown, the CPU time read was 0 (the kernel counts it \
                      in clock ticks)"
            .to_owned(),
    });
    lines.push(format!(
        "of the trace's wall time ({}): {}",
        human(durations.wall_ns),
        share(durations.share_of_wall())
    ));
    let past_whole = |share: Option<f64>| share.is_some_and(|share| share > 1.0);
    if past_whole(durations.share_of_cpu()) || past_whole(Some(durations.share_of_wall())) {
        lines.push(
            "(a fault's time counts its waits off the CPU, and threads fault at once, so a \
             share can pass 100%)"
                .to_owned(),
        );
    }
    lines
}

/// A class's count, total and maximum, then its percentiles: `minor faults: 3 timed, total
/// 16 µs, max 12 µs`; `p50, p90, p99 at most: 2.4 µs, 13 µs, 13 µs`.
fn class_lines(class: &str, histogram: &LatencyHistogram) -> Vec<String> {
    if histogram.count() == 0 {
        return vec![format!("{class} faults: none timed")];
    }
    let percentile = |fraction| {
        histogram
            .percentile_ns(fraction)
            .map_or_else(String::new, at_most)
    };
    vec![
        format!(
            "{class} faults: {} timed, total {}, max {}",
            histogram.count(),
            human(u64::try_from(histogram.total_ns()).unwrap_or(u64::MAX)),
            human(histogram.max_ns())
        ),
        format!(
            "p50, p90, p99 at most: {}, {}, {}",
            percentile(0.5),
            percentile(0.9),
            percentile(0.99)
        ),
        format!("{:<13}{:>9}", "ns (K = 1024)", "count"),
    ]
}

/// One row per log2 bucket, as bpftrace's `hist()`: `[1K, 2K)   200 |@@@@@…|`, the bar of the
/// fullest bucket [`BAR`] wide. 79 columns.
fn histogram_rows(buckets: &[Log2Bucket]) -> Vec<String> {
    let most = buckets.iter().map(|bucket| bucket.count).max().unwrap_or(0);
    buckets
        .iter()
        .map(|bucket| {
            let bar = if most == 0 {
                0
            } else {
                (bucket.count as u128 * BAR as u128 / most as u128) as usize
            };
            format!(
                "  {:<13}{:>9} |{:<BAR$}|",
                bucket_label(bucket),
                bucket.count,
                "@".repeat(bar)
            )
        })
        .collect()
}

/// bpftrace's name of a log2 bucket: `[0]`, `[1]`, `[2, 4)`, `[512, 1K)`, `[1M, 2M)`.
fn bucket_label(bucket: &Log2Bucket) -> String {
    match (bucket.from_ns, bucket.to_ns) {
        (0, _) => "[0]".to_owned(),
        (1, _) => "[1]".to_owned(),
        (from, Some(to)) => format!("[{}, {})", power_of_1024(from), power_of_1024(to)),
        (from, None) => format!("[{}, ...)", power_of_1024(from)),
    }
}

/// A power of two with bpftrace's suffix of powers of 1024: `512`, `1K`, `16M`, `8E`.
fn power_of_1024(value: u64) -> String {
    let (mut value, mut suffix) = (value, 0);
    while value >= 1024 && value % 1024 == 0 {
        value /= 1024;
        suffix += 1;
    }
    format!("{value}{}", ["", "K", "M", "G", "T", "P", "E"][suffix])
}

/// The slowest faults, slowest first, each with its code, its data and where its time went:
///
/// ```text
///     1.9 ms  major read by pid 100 tid 100 at 2.800 ms, 0x7f4a2c000000
///             code main+0x2a prog.c:12
///             data /data/input.bin@0x0
///             150 µs on CPU, 1.8 ms off CPU
/// ```
fn write_slowest(
    out: &mut dyn Write,
    width: LineWidth,
    durations: &DurationSummary,
    start_ns: u64,
) -> io::Result<()> {
    if durations.slowest.is_empty() {
        return Ok(());
    }
    writeln!(out, "the {} slowest faults:", durations.slowest.len())?;
    let indent = " ".repeat(12);
    for traced in &durations.slowest {
        let Some(timing) = traced.fault.timing else {
            continue;
        };
        let raw = &traced.fault.fault;
        let head = format!("  {:>8}  ", human(timing.duration_ns));
        let what = format!(
            "{} {} by pid {} tid {} at {} ms, {:#x}",
            traced.fault.class.as_str(),
            raw.error_code.access().as_str(),
            raw.pid,
            raw.tid,
            time_ms(raw.timestamp_ns, start_ns).trim_start(),
            raw.address
        );
        // The mapping's and region's names are any user's choice: escaped, like the code.
        let data = match traced.region_place() {
            Some(region) => format!("{}, {}", escape(&region), escape(&traced.mapping_place())),
            None => escape(&traced.mapping_place()).into_owned(),
        };
        for (head, text) in [
            (head.as_str(), what),
            (indent.as_str(), format!("code {}", describe(&traced.code))),
            (indent.as_str(), format!("data {data}")),
            (indent.as_str(), split(timing)),
        ] {
            write_lines(out, &width.wrap_under(head, &indent, &text))?;
        }
    }
    Ok(())
}

/// Where a fault's time went: `80 µs on CPU, 1.8 ms off CPU`, with reclaim and compaction
/// when there was any.
fn split(timing: FaultTiming) -> String {
    let (Some(on_cpu), Some(off_cpu)) = (timing.on_cpu_ns(), timing.off_cpu_ns) else {
        return "where its time went is not known: the kernel side missed the thread's \
                return to the CPU"
            .to_owned();
    };
    // Off-CPU time is said even when 0 here: the line answers where the time went.
    let mut parts = vec![format!("{} on CPU", human(on_cpu))];
    if off_cpu == 0 {
        parts.push("none off CPU".to_owned());
    }
    parts.extend(crate::output::duration::away_from_cpu(timing));
    parts.join(", ")
}
