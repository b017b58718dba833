//! Output of `demo top`: a compact table per interval, or one JSON object per interval.

use std::io::{self, Write};

use super::{
    BatchWrite, Format, JsonLines,
    code::describe,
    duration::{at_least, at_most, human},
    escape::escape,
    lines::{IntervalLine, TopLine},
};
use crate::top::{
    GroupBy, Interval, PageReport, Row, Subject, TopOutput,
    fault_time::{Bound, TimeInFaults},
};

/// The text or JSON output of demo top; `group` is what `--group` sums rows by, which names
/// the table's first columns.
pub fn output<'a>(
    format: Format,
    out: impl BatchWrite + 'a,
    group: Option<GroupBy>,
) -> Box<dyn TopOutput + 'a> {
    match format {
        // The command line refuses folded stacks and timelines for top.
        Format::Text | Format::Folded | Format::ChromeTrace | Format::Pprof => {
            Box::new(TextTop { out, group })
        }
        Format::Json => Box::new(JsonTop {
            out: JsonLines::new(out),
        }),
    }
}

/// `--quiet`: no interval is shown (the metrics endpoint is the output).
pub fn silent() -> Box<dyn TopOutput> {
    Box::new(Silent)
}

struct Silent;

impl TopOutput for Silent {
    fn interval(&mut self, _interval: &Interval) -> io::Result<()> {
        Ok(())
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// The columns of the top table, in the text output and the terminal view alike: a process
/// per row, or with `--group`, a command or a cgroup and how many processes it sums; with
/// durations, [`TIME_COLUMNS`] after them.
pub fn columns(group: Option<GroupBy>) -> [&'static str; 8] {
    let (who, name) = match group {
        None => ("PID", "COMMAND"),
        Some(GroupBy::Command) => ("PROCS", "COMMAND"),
        Some(GroupBy::Cgroup) => ("PROCS", "CGROUP"),
    };
    [
        who, name, "FAULTS/S", "TOTAL", "MINOR", "MAJOR", "WRITE%", "KERN%",
    ]
}

/// The columns of a row's time in faults, with durations: the time per second of the interval,
/// and the bound of the interval's 99th percentile.
pub const TIME_COLUMNS: [&str; 2] = ["FLT-TIME/S", "P99"];

/// The cells under [`TIME_COLUMNS`]: `-` for a process not timed in the interval.
pub fn time_cells(time: &TimeInFaults) -> [String; 2] {
    let p99 = match time.p99 {
        Some(Bound::AtMost(ns)) => format!("≤{}", at_most(ns)),
        Some(Bound::Above(ns)) => format!(">{}", at_least(ns)),
        None => "-".to_owned(),
    };
    [human(time.per_second_ns), p99]
}

/// One row's cells under [`columns`]. Any user names a process (and a cgroup), so the name is
/// escaped: a newline in it would forge a row, an escape sequence would reach the terminal.
pub fn cells(row: &Row) -> [String; 8] {
    let who = match &row.subject {
        Subject::Process { pid, .. } => pid.to_string(),
        Subject::Group { processes, .. } => processes.to_string(),
    };
    [
        who,
        escape(row.subject.name()).into_owned(),
        format!("{:.1}", row.rate),
        row.faults.to_string(),
        known(row.minor),
        known(row.major),
        known_percent(row.write_pct),
        known_percent(row.kernel_pct),
    ]
}

struct TextTop<W> {
    out: W,
    group: Option<GroupBy>,
}

impl<W: Write> TopOutput for TextTop<W> {
    fn interval(&mut self, interval: &Interval) -> io::Result<()> {
        writeln!(
            self.out,
            "{}  interval {:.1} s  dropped {}{}",
            now_rfc3339(),
            interval.seconds,
            interval.dropped,
            if interval.pages.is_some() {
                format!("  pages evicted {}", interval.pages_evicted)
            } else {
                String::new()
            }
        )?;
        let timed = interval.rows.iter().any(|row| row.fault_time.is_some());
        let [pid, comm, rate, total, minor, major, write, kern] = columns(self.group);
        let [time, p99] = TIME_COLUMNS;
        write!(
            self.out,
            "{pid:>8} {comm:<16} {rate:>10} {total:>10} {minor:>10} {major:>7} {write:>6} {kern:>6}"
        )?;
        if timed {
            write!(self.out, " {time:>10} {p99:>9}")?;
        }
        writeln!(self.out)?;
        for row in &interval.rows {
            let [pid, comm, rate, total, minor, major, write, kern] = cells(row);
            write!(
                self.out,
                "{pid:>8} {comm:<16} {rate:>10} {total:>10} {minor:>10} {major:>7} {write:>6} {kern:>6}"
            )?;
            if let Some(time) = &row.fault_time {
                let [time, p99] = time_cells(time);
                write!(self.out, " {time:>10} {p99:>9}")?;
            }
            writeln!(self.out, "{}", if row.exited { "  (exited)" } else { "" })?;
        }
        if let Some(pages) = &interval.pages {
            write_pages(&mut self.out, pages)?;
        }
        writeln!(self.out)?;
        self.out.flush()
    }
}

/// The hottest page ranges of `--pages`, each with the mapping its pages faulted in and the
/// code of the last fault on its hottest page, then the faults by mapping.
fn write_pages(out: &mut impl Write, pages: &PageReport) -> io::Result<()> {
    writeln!(out, "hottest pages of pid {}:", pages.pid)?;
    writeln!(
        out,
        "  {:<14} {:<14} {:>6} {:>8} {:>6}  MAPPING, LAST FAULT BY",
        "FROM", "TO", "PAGES", "FAULTS", "MOST"
    )?;
    for range in &pages.ranges {
        write!(
            out,
            "  {:#014x} {:#014x} {:>6} {:>8} {:>6}  {}",
            range.start,
            range.end(),
            range.pages,
            range.faults,
            range.hottest,
            escape(&range.mapping)
        )?;
        match &range.code {
            Some(code) => writeln!(out, ", by {}", describe(code))?,
            None => writeln!(out)?,
        }
    }
    writeln!(out, "by mapping:")?;
    for (mapping, faults) in &pages.mappings {
        writeln!(out, "  {faults:>8}  {}", escape(mapping))?;
    }
    Ok(())
}

struct JsonTop<W: BatchWrite> {
    out: JsonLines<W>,
}

impl<W: BatchWrite> TopOutput for JsonTop<W> {
    fn interval(&mut self, interval: &Interval) -> io::Result<()> {
        let line = TopLine::Top(IntervalLine::new(interval, now_rfc3339()));
        self.out.line(&line)?;
        self.out.flush()
    }
}

/// A count, or `-` when it is not known.
pub fn known(count: Option<u64>) -> String {
    count.map_or_else(|| "-".to_owned(), |count| count.to_string())
}

/// A percentage to one decimal, or `-` when it is not known.
pub fn known_percent(percent: Option<f64>) -> String {
    percent.map_or_else(|| "-".to_owned(), |percent| format!("{percent:.1}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        kernel::symbols::Code,
        top::{Group, PageRange, PageReport},
    };

    fn row(subject: Subject, exited: bool) -> Row {
        Row {
            subject,
            faults: 9,
            interval_faults: 9,
            rate: 9.0,
            minor: Some(9),
            major: Some(0),
            write_pct: Some(100.0),
            kernel_pct: Some(0.0),
            exited,
            fault_time: None,
        }
    }

    fn text(interval: &Interval, group: Option<GroupBy>) -> String {
        let mut out = Vec::new();
        output(Format::Text, &mut out, group)
            .interval(interval)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_hostile_process_name_is_one_escaped_cell_of_one_row() {
        let hostile = Subject::Process {
            pid: 42,
            comm: "a\x1b]2;x\x07\nb".to_owned(),
        };
        let interval = Interval {
            seconds: 1.0,
            rows: vec![row(hostile, false)],
            pages: Some(PageReport {
                pid: 42,
                ranges: vec![PageRange {
                    start: 0x1000,
                    pages: 1,
                    faults: 9,
                    hottest: 9,
                    mapping: "/tmp/\x1b[2Jm\nap".into(),
                    code: None,
                }],
                mappings: vec![("/tmp/\x1b[2Jm\nap".to_owned(), 9)],
            }),
            ..Interval::default()
        };
        let text = text(&interval, None);
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        // The time line, the header, one row, then the pages of pid 42 and a blank line.
        assert_eq!(lines.len(), 9, "{text}");
        assert_eq!(
            lines[2].split_whitespace().take(2).collect::<Vec<_>>(),
            ["42", r"a\e]2;x\x07\nb"],
            "{text}"
        );
        assert!(lines[5].ends_with(r"/tmp/\e[2Jm\nap"), "{text}");
        assert!(lines[7].ends_with(r"/tmp/\e[2Jm\nap"), "{text}");
    }

    #[test]
    fn a_group_row_shows_how_many_processes_it_sums_and_its_name() {
        let cgroup = Subject::Group {
            group: Group::Cgroup("/demo-a".to_owned()),
            processes: 3,
        };
        let interval = Interval {
            seconds: 1.0,
            rows: vec![row(cgroup, true)],
            ..Interval::default()
        };
        let text = text(&interval, Some(GroupBy::Cgroup));
        let lines: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(lines[1][..2], ["PROCS", "CGROUP"], "{text}");
        assert_eq!(lines[2][..2], ["3", "/demo-a"], "{text}");
        assert_eq!(lines[2].last(), Some(&"(exited)"), "{text}");
        assert_eq!(columns(Some(GroupBy::Command))[..2], ["PROCS", "COMMAND"]);
        assert_eq!(
            columns(None),
            [
                "PID", "COMMAND", "FAULTS/S", "TOTAL", "MINOR", "MAJOR", "WRITE%", "KERN%"
            ]
        );
    }

    #[test]
    fn a_page_range_is_one_line_with_its_mapping_and_code() {
        let code = Code {
            module: Some("/usr/bin/touch".to_owned()),
            symbol: Some("touch".to_owned()),
            offset: 0x1a,
            file: Some("touch.c".to_owned()),
            line: Some(12),
            inlined: Vec::new(),
            module_offset: None,
        };
        let interval = Interval {
            seconds: 1.0,
            pages: Some(PageReport {
                pid: 7,
                ranges: vec![PageRange {
                    start: 0x7f00_0000_0000,
                    pages: 16,
                    faults: 40,
                    hottest: 25,
                    mapping: "[anon]".into(),
                    code: Some(Arc::new(code)),
                }],
                mappings: vec![("[anon]".to_owned(), 40)],
            }),
            ..Interval::default()
        };
        let text = text(&interval, None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "hottest pages of pid 7:", "{text}");
        assert_eq!(
            lines[4],
            "  0x7f0000000000 0x7f0000010000     16       40     25  [anon], by touch+0x1a touch.c:12",
            "{text}"
        );
        assert!(lines[4].len() <= 90, "{text}");
    }

    #[test]
    fn with_durations_a_row_shows_its_time_per_second_and_p99_bound() {
        let process = Subject::Process {
            pid: 7,
            comm: "touch".to_owned(),
        };
        let timed = |p99| TimeInFaults {
            timed: [100, 1],
            total_ns: 3_150_000,
            interval_timed: 101,
            interval_ns: 3_150_000,
            per_second_ns: 1_575_000,
            p99,
        };
        let rows = [Some(Bound::AtMost(2048)), Some(Bound::Above(1 << 30)), None].map(|p99| Row {
            fault_time: Some(timed(p99)),
            ..row(process.clone(), false)
        });
        let interval = Interval {
            seconds: 2.0,
            rows: rows.to_vec(),
            ..Interval::default()
        };
        let text = text(&interval, None);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].ends_with(" FLT-TIME/S       P99"), "{text}");
        assert!(lines[2].ends_with("     1.6 ms   ≤2.1 µs"), "{text}");
        assert!(lines[3].ends_with("     1.6 ms    >1.0 s"), "{text}");
        assert!(lines[4].ends_with("     1.6 ms         -"), "{text}");
        // Without durations the table is as it was.
        let plain = Interval {
            seconds: 1.0,
            rows: vec![row(process, false)],
            ..Interval::default()
        };
        assert!(
            self::text(&plain, None)
                .lines()
                .nth(1)
                .unwrap()
                .ends_with(" KERN%")
        );
    }
}
