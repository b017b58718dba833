//! Output of `demo top`: a compact table per interval, or one JSON object per interval.

use std::io::{self, Write};

use super::{
    Format, JsonLines,
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

/// One process's cells under [`COLUMNS`].
pub fn cells(row: &Row) -> [String; 8] {
    [
        row.pid.to_string(),
        row.comm.clone(),
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
                writeln!(self.out, "  {page:#018x} {faults:>8}  {mapping}")?;
            }
            writeln!(self.out, "by mapping:")?;
            for (mapping, faults) in &pages.mappings {
                writeln!(self.out, "  {faults:>8}  {mapping}")?;
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
