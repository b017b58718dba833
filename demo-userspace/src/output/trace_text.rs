//! The text trace's layout: the columns of each event line, at 80 columns (the fixed columns
//! first, the rest wrapped at words under them) or one line per event (`--wide`).

use std::io::{self, Write};

use super::{code::describe, duration::human, escape::escape};
use crate::{
    kernel::symbols::{EndCause, Stack},
    model::access::ErrorCode,
    trace::session::TracedFault,
};

/// How wide the text trace's lines are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LineWidth {
    /// At most 80 columns: a fault's fixed columns on its first line, its region, mapping and
    /// code on the next, and any line too long wrapped at words.
    #[default]
    Columns80,
    /// One line per event, however long (`--wide`).
    Wide,
}

/// The width the text keeps to in [`LineWidth::Columns80`].
pub const COLUMNS: usize = 80;

/// Where a wrapped line goes on: past the time column, so times stay alone in it.
const CONTINUED: &str = "           ";

/// The command each process's faults were last listed under, so that a trace of several
/// processes (`--follow`, `--cgroup`) names the command of each fault's pid: at its first
/// listed fault, and again at the first after an exec renamed it.
#[derive(Debug, Default)]
pub struct ProcessNames {
    named: rustc_hash::FxHashMap<u32, std::sync::Arc<str>>,
}

impl ProcessNames {
    /// The comment that names `traced`'s process (`pid 4242 is cg_touch`), when it is not
    /// named yet by the command it runs now; `None` when it is, or its command is unknown.
    pub fn name(&mut self, traced: &TracedFault) -> Option<String> {
        let command = traced.command.as_ref()?;
        let pid = traced.fault.fault.pid;
        if self.named.get(&pid) == Some(command) {
            return None;
        }
        self.named.insert(pid, std::sync::Arc::clone(command));
        Some(format!("pid {pid} is {}", escape(command)))
    }
}

/// The time column: milliseconds from `start_ns` to `timestamp_ns`.
pub fn time_ms(timestamp_ns: u64, start_ns: u64) -> String {
    let ms = timestamp_ns.saturating_sub(start_ns) as f64 / 1e6;
    format!("{ms:>10.3}")
}

/// The DURATION column: from the fault's start to its completion, or `-` when it was not
/// timed (an error fault never completes).
fn duration(traced: &TracedFault) -> String {
    traced
        .fault
        .timing
        .map_or_else(|| "-".to_owned(), |timing| human(timing.duration_ns))
}

/// `yes` when the fault found its page present (a protection fault: copy on write, a write to
/// a read-only page), `no` for a first touch, `?` when the source gave no error code.
pub fn present(error_code: ErrorCode) -> &'static str {
    match (error_code.known(), error_code.present()) {
        (false, _) => "?",
        (true, true) => "yes",
        (true, false) => "no",
    }
}

impl LineWidth {
    /// The column heads.
    pub fn header(self) -> Vec<String> {
        match self {
            Self::Columns80 => vec![
                format!(
                    "{:>10} {:>7} {:>7} {:<5} {:>8} {:<5} {:<6} {:<7} ADDRESS",
                    "TIME_MS", "PID", "TID", "CLASS", "DURATION", "ACC", "MODE", "PRESENT"
                ),
                format!("{CONTINUED}REGION  MAPPING@OFFSET  CODE"),
            ],
            Self::Wide => vec![format!(
                "{:>10} {:>7} {:>7} {:<5} {:>8} {:<5} {:<6} {:<7} {:<18} {:<24} {:<28} CODE",
                "TIME_MS",
                "PID",
                "TID",
                "CLASS",
                "DURATION",
                "ACC",
                "MODE",
                "PRESENT",
                "ADDRESS",
                "REGION",
                "MAPPING@OFFSET"
            )],
        }
    }

    /// A fault's lines.
    pub fn fault(self, time: &str, traced: &TracedFault) -> Vec<String> {
        let raw = &traced.fault.fault;
        let fixed = format!(
            "{time} {:>7} {:>7} {:<5} {:>8} {:<5} {:<6} {:<7}",
            raw.pid,
            raw.tid,
            traced.fault.class.as_str(),
            duration(traced),
            raw.error_code.access().as_str(),
            raw.error_code.mode().as_str(),
            present(raw.error_code),
        );
        // The mapping's name is a path any user chooses, and so may a region's be (`--region`):
        // both are escaped, like the code.
        let region = traced.region.as_ref().map_or_else(
            || "-".to_owned(),
            |(_, name, location)| {
                format!(
                    "{}[{}] page {}",
                    escape(name),
                    location.index,
                    location.page
                )
            },
        );
        let mapping = format!("{}@{:#x}", escape(&traced.mapping), traced.mapping_offset);
        let code = describe(&traced.code);
        match self {
            Self::Columns80 => {
                // A kernel address is too long to fit beside the columns: it goes under them.
                let address = format!("{:#x}", raw.address);
                let mut lines = if fixed.chars().count() + 1 + address.len() <= COLUMNS {
                    vec![format!("{fixed} {address}")]
                } else {
                    vec![fixed, format!("{CONTINUED}{address}")]
                };
                lines.extend(self.wrap(CONTINUED, &format!("{region}  {mapping}  {code}")));
                lines
            }
            Self::Wide => vec![format!(
                "{fixed} {:#018x} {region:<24} {mapping:<28} {code}",
                raw.address
            )],
        }
    }

    /// `head` then `text`, wrapped at words at 80 columns with continuation lines under
    /// [`CONTINUED`], or whole on one line when wide.
    pub fn wrap(self, head: &str, text: &str) -> Vec<String> {
        self.wrap_under(head, CONTINUED, text)
    }

    /// Like [`Self::wrap`], continuation lines starting with `indent`.
    pub fn wrap_under(self, head: &str, indent: &str, text: &str) -> Vec<String> {
        match self {
            Self::Wide => vec![format!("{head}{text}")],
            Self::Columns80 => {
                let options = textwrap::Options::new(COLUMNS)
                    .initial_indent(head)
                    .subsequent_indent(indent)
                    .break_words(false)
                    .word_splitter(textwrap::WordSplitter::NoHyphenation);
                let mut lines = Vec::new();
                for line in textwrap::wrap(text, options) {
                    let mut line = line.into_owned();
                    // Only a word longer than a whole line is cut: a path at a `/`, a Rust
                    // symbol at a `::`, anything else at the edge.
                    while line.chars().count() > COLUMNS {
                        let rest = line.split_off(cut(&line, indent.len()));
                        lines.push(line);
                        line = format!("{indent}{rest}");
                    }
                    lines.push(line);
                }
                lines
            }
        }
    }

    /// A fault's stack, one frame a line under it: `#N   0x…  code`; where the frame-pointer
    /// walk left code, the address it read there, marked as no code.
    pub fn stack(self, stack: Option<&Stack>) -> Vec<String> {
        let indent = match self {
            Self::Columns80 => CONTINUED,
            Self::Wide => "            ",
        };
        let deeper = format!("{indent}{:5}", "");
        frame_lines(stack)
            .iter()
            .flat_map(|(head, text)| self.wrap_under(&format!("{indent}{head}"), &deeper, text))
            .collect()
    }
}

/// A stack's lines without indentation, each as its head (`#N   0x…`) and what is there: the
/// one printer of stacks in text, for the trace and the walks alike.
pub fn frame_lines(stack: Option<&Stack>) -> Vec<(String, String)> {
    let Some(stack) = stack else {
        return Vec::new();
    };
    let mut lines: Vec<(String, String)> = (0..)
        .zip(stack.frames.iter())
        .map(|(depth, frame): (usize, _)| {
            let code = describe(&frame.code);
            let text = if frame.no_unwind_info {
                format!("{code} (no unwind info: its caller found by frame pointer)")
            } else {
                code
            };
            (format!("#{depth:<3} {:#018x} ", frame.address), text)
        })
        .collect();
    if let Some(end) = stack.end {
        lines.push((
            format!("#{:<3} {:#018x} ", stack.frames.len(), end.address),
            format!("({})", end_cause(end.why)),
        ));
    }
    lines
}

/// What is known of where a stack ended: not code, or not known, where a return address
/// read leads nowhere; a stack copy too short, or unreadable, or the depth limit, for an
/// unwound one.
fn end_cause(why: EndCause) -> &'static str {
    match why {
        EndCause::NotExecutable => "not code: its mapping is not executable; the stack stops here",
        EndCause::NoUserAddress => {
            "not code: no process can map this address; the stack stops here"
        }
        EndCause::MappingUnknown => {
            "mapping unknown: no mapping demo knows of holds it; the stack stops here"
        }
        EndCause::Truncated => {
            "truncated: the next caller is past the stack copied; raise --stack-bytes"
        }
        EndCause::Unreadable => "the stack could not be read further at this address",
        EndCause::DepthLimit => "deeper: the unwinder stops at 127 frames",
    }
}

/// Where to cut `line`, longer than [`COLUMNS`] although wrapped at words: after the last
/// `::` or `/` that leaves something on the line past `indent`, or at the edge.
fn cut(line: &str, indent: usize) -> usize {
    let edge = line
        .char_indices()
        .nth(COLUMNS)
        .map_or(line.len(), |(at, _)| at);
    let within = &line[..edge];
    let after = |separator: &str| {
        within
            .rfind(separator)
            .map(|at| at + separator.len())
            .filter(|&at| at > indent + 1 && at < edge)
    };
    after("::").or_else(|| after("/")).unwrap_or(edge)
}

/// Writes `lines`, one a line.
pub fn write_lines(out: &mut dyn Write, lines: &[String]) -> io::Result<()> {
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::kernel::symbols::{Code, StackEnd, StackFrame};

    /// A stack whose frame 0 is `ip` in `module`, ending at 0x7f0000001000 for `why`.
    fn stack(ip: u64, module: &str, why: EndCause) -> Stack {
        Stack {
            frames: vec![StackFrame {
                address: ip,
                code: Arc::new(Code {
                    module: Some(module.to_owned()),
                    offset: ip - 0x60_0000,
                    ..Code::default()
                }),
                no_unwind_info: false,
            }],
            end: Some(StackEnd {
                address: 0x7f00_0000_1000,
                why,
            }),
        }
    }

    /// An address in no known mapping is said to be unknown, not data; and an instruction
    /// fetch from the heap keeps its frame 0 line, the one that says where the program went.
    #[test]
    fn a_stack_keeps_its_first_frame_and_says_what_is_known_where_it_ends() {
        let lines = |stack: &Stack| -> Vec<String> {
            frame_lines(Some(stack))
                .into_iter()
                .map(|(head, text)| format!("{head}{text}"))
                .collect()
        };
        assert_eq!(
            lines(&stack(0x60_0010, "[heap]", EndCause::MappingUnknown)),
            [
                "#0   0x0000000000600010 [heap]+0x10",
                "#1   0x00007f0000001000 (mapping unknown: no mapping demo knows of holds it; \
                 the stack stops here)",
            ]
        );
        assert_eq!(
            lines(&stack(0x60_0010, "[heap]", EndCause::NotExecutable))[1],
            "#1   0x00007f0000001000 (not code: its mapping is not executable; the stack \
             stops here)"
        );
        assert_eq!(
            lines(&stack(0x60_0010, "[heap]", EndCause::NoUserAddress))[1],
            "#1   0x00007f0000001000 (not code: no process can map this address; the \
             stack stops here)"
        );
        assert_eq!(
            lines(&stack(0x60_0010, "[heap]", EndCause::Truncated))[1],
            "#1   0x00007f0000001000 (truncated: the next caller is past the stack copied; \
             raise --stack-bytes)"
        );
        assert!(frame_lines(None).is_empty());
    }

    /// A process is named at its first fault, not again while its command stays, and anew
    /// once an exec renames it; a fault whose command is unknown names nothing, and a
    /// process's name is escaped.
    #[test]
    fn each_process_is_named_once_per_command() {
        let region = crate::output::fixtures::region();
        let fault_of = |pid: u32, command: Option<&str>| {
            let mut fault = crate::output::fixtures::fault(region.start, 6, "[anon]", &region);
            fault.fault.fault.pid = pid;
            fault.command = command.map(Arc::from);
            fault
        };
        let mut names = ProcessNames::default();
        let said: Vec<Option<String>> = [
            fault_of(7, Some("sh")),
            fault_of(7, Some("sh")),
            fault_of(8, None),
            fault_of(8, Some("a\nb")),
            fault_of(7, Some("cg_touch")),
            fault_of(7, Some("cg_touch")),
        ]
        .iter()
        .map(|fault| names.name(fault))
        .collect();
        assert_eq!(
            said,
            [
                Some("pid 7 is sh".to_owned()),
                None,
                None,
                Some("pid 8 is a\\nb".to_owned()),
                Some("pid 7 is cg_touch".to_owned()),
                None,
            ]
        );
    }
}
