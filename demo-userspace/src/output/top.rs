//! Output of `demo top`: a compact table per interval, or one JSON object per interval.

use std::io::{self, Write};

use super::{
    Format, JsonLines,
    escape::escape,
    lines::{IntervalLine, TopLine},
};
use crate::top::{Interval, Row, TopOutput};

pub fn output<'a>(format: Format, out: impl Write + 'a) -> Box<dyn TopOutput + 'a> {
    match format {
        // The command line refuses folded stacks for top, which has none.
        // The command line refuses folded stacks and timelines for top.
        Format::Text | Format::Folded | Format::ChromeTrace => Box::new(TextTop { out }),
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

/// The columns of the top table, in the text output and the terminal view alike.
pub const COLUMNS: [&str; 8] = [
    "PID", "COMMAND", "FAULTS/S", "TOTAL", "MINOR", "MAJOR", "WRITE%", "KERN%",
];

/// One process's cells under [`COLUMNS`]. Any user names a process, so its name is escaped:
/// a newline in it would forge a row, an escape sequence would reach the terminal.
pub fn cells(row: &Row) -> [String; 8] {
    [
        row.pid.to_string(),
        escape(&row.comm).into_owned(),
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
        let [pid, comm, rate, total, minor, major, write, kern] = COLUMNS;
        writeln!(
            self.out,
            "{pid:>8} {comm:<16} {rate:>10} {total:>10} {minor:>10} {major:>7} {write:>6} {kern:>6}"
        )?;
        for row in &interval.rows {
            let [pid, comm, rate, total, minor, major, write, kern] = cells(row);
            writeln!(
                self.out,
                "{pid:>8} {comm:<16} {rate:>10} {total:>10} {minor:>10} {major:>7} {write:>6} {kern:>6}{}",
                if row.exited { "  (exited)" } else { "" }
            )?;
        }
        if let Some(pages) = &interval.pages {
            writeln!(self.out, "hottest pages of pid {}:", pages.pid)?;
            for (page, faults, mapping) in &pages.pages {
                writeln!(self.out, "  {page:#018x} {faults:>8}  {}", escape(mapping))?;
            }
            writeln!(self.out, "by mapping:")?;
            for (mapping, faults) in &pages.mappings {
                writeln!(self.out, "  {faults:>8}  {}", escape(mapping))?;
            }
        }
        writeln!(self.out)?;
        self.out.flush()
    }
}

struct JsonTop<W: Write> {
    out: JsonLines<W>,
}

impl<W: Write> TopOutput for JsonTop<W> {
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
    use super::*;
    use crate::top::PageReport;

    #[test]
    fn a_hostile_process_name_is_one_escaped_cell_of_one_row() {
        let row = Row {
            pid: 42,
            comm: "a\x1b]2;x\x07\nb".to_owned(),
            faults: 9,
            interval_faults: 9,
            rate: 9.0,
            minor: Some(9),
            major: Some(0),
            write_pct: Some(100.0),
            kernel_pct: Some(0.0),
            exited: false,
        };
        let interval = Interval {
            seconds: 1.0,
            rows: vec![row],
            dropped: 0,
            pages_evicted: 0,
            pages: Some(PageReport {
                pid: 42,
                pages: vec![(0x1000, 9, "/tmp/\x1b[2Jm\nap".to_owned())],
                mappings: vec![("/tmp/\x1b[2Jm\nap".to_owned(), 9)],
            }),
        };
        let mut out = Vec::new();
        output(Format::Text, &mut out).interval(&interval).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        // The time line, the header, one row, then the pages of pid 42 and a blank line.
        assert_eq!(lines.len(), 8, "{text}");
        assert_eq!(
            lines[2].split_whitespace().take(2).collect::<Vec<_>>(),
            ["42", r"a\e]2;x\x07\nb"],
            "{text}"
        );
        assert!(lines[4].ends_with(r"/tmp/\e[2Jm\nap"), "{text}");
        assert!(lines[6].ends_with(r"/tmp/\e[2Jm\nap"), "{text}");
    }
}
