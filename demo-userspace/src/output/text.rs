//! The text report: each step's action, its faults, a page strip and a pmap-style line, in 80
//! columns. Mapping and module paths are escaped ([`super::escape`]); code is named escaped.

use std::{
    borrow::Cow,
    io::{self, Write},
};

use super::{
    code::{base_name, describe, function},
    escape::escape,
    trace::stack_lines,
};
use crate::model::signals::{ProcessEnd, si_code_meaning, si_code_name};
use crate::walk::Reporter;
use crate::{
    model::pages::{Companion, PageOrigin},
    model::region::Region,
    model::signals::signal_name,
    walk::lessons::LessonFacts,
    walk::plan::{Allocator, ScenarioName},
    walk::scenario::{DeathDigest, Summary, WalkResult},
    walk::step_report::{AddressCheck, StepReport},
};

/// Glyphs of a page strip on one line of the report.
const STRIP_ROW: usize = 64;

/// Writes the report for people and flushes after each step.
pub struct TextReporter<W> {
    out: W,
}

impl<W: Write> TextReporter<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

/// A line of the fault's detail, wrapped at 80 columns under the fault (a symbol may be long).
fn fit(text: &str) -> Vec<String> {
    let options = textwrap::Options::new(80)
        .initial_indent("            ")
        .subsequent_indent("               ");
    textwrap::wrap(text, options)
        .into_iter()
        .map(|line| line.into_owned())
        .collect()
}

/// `, child 123` or `, parent 122` once a walk has forked; empty before.
fn process_of(step: &StepReport, pid: u32) -> String {
    match &step.lesson {
        Some(LessonFacts::Fork { child, .. }) if *child == pid => format!(", child {pid}"),
        Some(LessonFacts::Fork { .. }) => format!(", parent {pid}"),
        _ => String::new(),
    }
}

/// "was killed by SIGSEGV" or "exited with status 0", to follow "the child".
fn child_fate(status: &ProcessEnd) -> String {
    match status {
        ProcessEnd::Killed(_) => format!("was {status}"),
        _ => status.to_string(),
    }
}

/// `1 fault`, `2 faults`.
fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("{count} {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Joins `parts` with ", " after `head`, breaking lines before `width` and indenting
/// continuation lines under the first part.
fn wrap(head: &str, parts: &[String], width: usize) -> Vec<String> {
    let indent = " ".repeat(head.chars().count());
    let mut lines = vec![head.to_owned()];
    for (i, part) in parts.iter().enumerate() {
        let separator = if i + 1 < parts.len() { "," } else { "" };
        let current = lines.last_mut().expect("lines starts non-empty");
        let fresh = current.chars().count() == head.chars().count() || current.trim().is_empty();
        if !fresh && current.chars().count() + 1 + part.chars().count() + separator.len() > width {
            lines.push(format!("{indent}{part}{separator}"));
        } else {
            if !fresh {
                current.push(' ');
            }
            current.push_str(part);
            current.push_str(separator);
        }
    }
    lines
}

impl<W: Write> TextReporter<W> {
    fn write_allocation(&mut self, step: &StepReport) -> io::Result<()> {
        let Some(facts) = &step.allocation else {
            for call in &step.syscalls {
                writeln!(self.out, "  syscall   {}", call.describe())?;
            }
            return Ok(());
        };
        let region = &step.region;
        for call in &step.syscalls {
            writeln!(self.out, "  syscall   {}", call.describe())?;
        }
        if step.syscalls.is_empty() && facts.allocator == Allocator::Malloc {
            writeln!(
                self.out,
                "  syscall   none: malloc served arr from memory the heap already had"
            )?;
        }
        match facts.address_check {
            AddressCheck::Matches => writeln!(
                self.out,
                "  address   {:#x} from the kernel's mmap return; the child agrees",
                region.start
            )?,
            AddressCheck::Differs { kernel } => writeln!(
                self.out,
                "  address   MISMATCH: the kernel's mmap returned {kernel:#x}, the child says otherwise"
            )?,
            AddressCheck::NotFromMmap => writeln!(
                self.out,
                "  address   {:#x}, {} bytes into its page: not page-aligned",
                region.start,
                region.start % region.page_size
            )?,
            AddressCheck::Inside { kernel, offset } => self.paragraph(
                "  address   ",
                &format!(
                    "{:#x}, {offset} bytes into the kernel's mmap return {kernel:#x}",
                    region.start
                ),
            )?,
            AddressCheck::StackPointer { sp } => writeln!(
                self.out,
                "  address   {:#x}, 1 MiB below the top of [stack]; sp {sp:#x}",
                region.start
            )?,
        }
        if let Some((address, unmapped)) = facts.guard {
            writeln!(
                self.out,
                "  guard     {address:#x} (page {}) is",
                region.page_count()
            )?;
            let verdict = if unmapped {
                "unmapped: munmap'd, so no neighbour was merged there"
            } else {
                "STILL MAPPED: an access there will not fault"
            };
            writeln!(self.out, "            {verdict}")?;
        }
        Ok(())
    }

    fn write_faults(&mut self, step: &StepReport) -> io::Result<()> {
        let name = &step.region.name;
        let mut any = false;
        for (resolved, location) in step.faults_in_region() {
            any = true;
            let (first, last) = step.region.index_range_of_page(location.page);
            let code = resolved.fault.fault.error_code;
            let page = if location.page < step.region.page_count() {
                format!("page {} = {name}[{first}..{last}]", location.page)
            } else {
                format!("page {}, past the array", location.page)
            };
            writeln!(
                self.out,
                "  fault     {name}[{}] ({:+}) on {page}  {}{}",
                location.index,
                location.offset,
                resolved.fault.class.as_str(),
                process_of(step, resolved.fault.fault.pid)
            )?;
            writeln!(
                self.out,
                "            {} (error code {:#x})",
                code.describe(),
                code.0
            )?;
            for line in fit(&format!("by {}", describe(&resolved.code))) {
                writeln!(self.out, "{line}")?;
            }
            // Frames are wrapped like the rest, so a long C++ or Rust symbol stays in 80 columns.
            for frame in stack_lines(resolved.stack.as_deref()) {
                for line in fit(&frame) {
                    writeln!(self.out, "{line}")?;
                }
            }
        }
        if !any {
            writeln!(self.out, "  fault     none in {name}")?;
        }
        if let Some((fault, past_end)) = step.next_chunk_header_write() {
            let (symbol, _, _) = fault.code.innermost();
            let function = function(symbol, fault.code.module.as_deref());
            let module = escape(fault.code.module.as_deref().map_or("-", base_name));
            let index = fault.location().map_or(0, |location| location.index);
            writeln!(
                self.out,
                "  why       {name}[{index}] is {past_end} bytes past {name}'s end, in the next chunk's"
            )?;
            writeln!(
                self.out,
                "            header: malloc's {function} ({module}) wrote that chunk's size"
            )?;
            writeln!(
                self.out,
                "            there, so malloc, not the program, faulted the last page in"
            )?;
        }
        let elsewhere = step.elsewhere();
        let count: u64 = elsewhere.values().sum();
        if count > 0 {
            let parts: Vec<String> = elsewhere
                .iter()
                .map(|(mapping, n)| format!("{} {n}", escape(mapping)))
                .collect();
            let head = format!("  elsewhere {}: ", plural(count, "fault"));
            for line in wrap(&head, &parts, 80) {
                writeln!(self.out, "{line}")?;
            }
        }
        Ok(())
    }

    fn write_touch(&mut self, step: &StepReport) -> io::Result<()> {
        let Some(outcome) = &step.touch else {
            return Ok(());
        };
        let name = &step.region.name;
        let index = outcome.touch.index;
        let Some(location) = outcome.location else {
            return Ok(());
        };
        if !location.in_bounds && step.death.is_none() {
            writeln!(
                self.out,
                "  bounds    {name}[{index}] is past the array, yet {} maps it: the MMU checks",
                if outcome.mapping.is_empty() {
                    Cow::Borrowed("a VMA")
                } else {
                    escape(&outcome.mapping)
                }
            )?;
            writeln!(
                self.out,
                "            whole mappings, never arrays, so there is no SIGSEGV"
            )?;
        }
        if outcome.faulted {
            return Ok(());
        }
        let why = match outcome.resident_since {
            Some(PageOrigin::Fault {
                step: 0..=1,
                offset,
                index: first,
            }) if offset < 0 => {
                format!("since step 1 ({name}[{first}], {offset} bytes: malloc's chunk header)")
            }
            Some(PageOrigin::Fault {
                step, index: first, ..
            }) => {
                format!("since step {step} ({name}[{first}])")
            }
            Some(PageOrigin::BeforeWalk) => "before the walk began".to_owned(),
            Some(PageOrigin::WithFault { step, how }) => match how {
                Companion::FaultAround => format!("mapped by fault-around in step {step}"),
                Companion::HugePage => format!("part of the huge page step {step} mapped"),
            },
            None => return Ok(()),
        };
        self.paragraph(
            "  why       ",
            &format!(
                "no fault: page {} was already present, {why}",
                location.page
            ),
        )
    }

    fn write_death(&mut self, step: &StepReport) -> io::Result<()> {
        let Some(death) = &step.death else {
            return Ok(());
        };
        let name = &step.region.name;
        writeln!(
            self.out,
            "  died      the child {}",
            child_fate(&death.status)
        )?;
        if let Some(signal) = death.generated {
            writeln!(
                self.out,
                "            {}, si_code {}: {}",
                signal_name(signal.signal),
                si_code_name(signal.signal, signal.code),
                si_code_meaning(signal.signal, signal.code)
            )?;
            writeln!(
                self.out,
                "            (seen by signal:signal_generate and in the wait status)"
            )?;
        }
        if let Some((address, location)) = death.fault {
            match location {
                Some(location) => self.paragraph(
                    "            ",
                    &format!(
                        "at {address:#x} = {name}[{}], page {}, {} the {}-page array",
                        location.index,
                        location.page,
                        if location.page < step.region.page_count() {
                            "inside"
                        } else {
                            "outside"
                        },
                        step.region.page_count()
                    ),
                )?,
                None => writeln!(self.out, "            at {address:#x}, outside the array")?,
            }
        }
        Ok(())
    }

    /// `text` after `head`, wrapped at 80 columns under the text's start.
    fn paragraph(&mut self, head: &str, text: &str) -> io::Result<()> {
        let indent = " ".repeat(head.chars().count());
        let options = textwrap::Options::new(80)
            .initial_indent(head)
            .subsequent_indent(&indent);
        for line in textwrap::wrap(text, options) {
            writeln!(self.out, "{line}")?;
        }
        Ok(())
    }

    /// A lesson's explanation, a paragraph per sentence under the step.
    fn write_lesson(&mut self, step: &StepReport) -> io::Result<()> {
        for sentence in super::explain::explain(step) {
            self.paragraph("  lesson    ", &sentence)?;
        }
        Ok(())
    }

    /// The page strip, then `after` on the same line; a strip of more than 64 pages is written
    /// 64 a line, and `after` on a line of its own.
    fn write_strip(&mut self, step: &StepReport, after: &str) -> io::Result<()> {
        let strip: Vec<char> = step.pages.strip().chars().collect();
        if strip.len() <= STRIP_ROW {
            let strip: String = strip.into_iter().collect();
            return writeln!(self.out, "  pages     [{strip}]  {after}");
        }
        for (row, glyphs) in strip.chunks(STRIP_ROW).enumerate() {
            let head = if row == 0 {
                "  pages     ["
            } else {
                "             "
            };
            let glyphs: String = glyphs.iter().collect();
            let end = if (row + 1) * STRIP_ROW >= strip.len() {
                "]"
            } else {
                ""
            };
            writeln!(self.out, "{head}{glyphs}{end}")?;
        }
        writeln!(self.out, "            {after}")
    }

    fn write_kernel(&mut self, step: &StepReport) -> io::Result<()> {
        let region = &step.region;
        let Some(kernel) = &step.kernel else {
            return self.write_strip(step, "the process is gone");
        };
        let zero = if kernel.zero_pages.is_empty() {
            String::new()
        } else {
            format!(", {} on the zero page", kernel.zero_pages.len())
        };
        self.write_strip(
            step,
            &format!(
                "{} of {} resident, {} KiB{zero}",
                kernel.resident_pages.len(),
                region.page_count(),
                kernel.rss_kib
            ),
        )?;
        match &kernel.vma {
            Some(vma) => self.paragraph(
                "  pmap      ",
                &format!(
                    "{:016x}  {} KiB  RSS {} KiB  Dirty {} KiB  {}  {}",
                    vma.start,
                    vma.size_kib,
                    vma.rss_kib,
                    vma.dirty_kib,
                    vma.perms,
                    escape(&vma.name)
                ),
            )?,
            None => writeln!(self.out, "  pmap      no VMA holds {}", region.name)?,
        }
        if step.vma_is_larger()
            && let Some(vma) = &kernel.vma
        {
            writeln!(
                self.out,
                "  note      {} lies in a larger VMA ({} KiB) than its own {} KiB of pages",
                region.name,
                vma.size_kib,
                region.page_count() * region.page_size / 1024
            )?;
        }
        let mut shown = format!("{} resident", super::explain::pages(&kernel.resident_pages));
        if !kernel.zero_pages.is_empty() {
            shown += &format!(", {} zero", super::explain::pages(&kernel.zero_pages));
        }
        if step.agrees_with_kernel() == Some(true) {
            self.paragraph(
                "  kernel    ",
                &format!("pagemap: {shown}, as the faults say"),
            )?;
        } else {
            self.paragraph(
                "  kernel    ",
                &format!(
                    "DISAGREES: pagemap: {shown}, but the faults explain {} resident, {} zero",
                    super::explain::pages(&step.pages.resident_pages()),
                    super::explain::pages(&step.pages.zero_pages())
                ),
            )?;
        }
        Ok(())
    }
}

impl<W: Write> Reporter for TextReporter<W> {
    fn region(&mut self, scenario: ScenarioName, _: Allocator, region: &Region) -> io::Result<()> {
        writeln!(self.out, "== {} ==", scenario.as_str())?;
        writeln!(
            self.out,
            "{} = {:#x}: {} bytes = int[{}] on {} of {} KiB",
            region.name,
            region.start,
            region.len,
            region.element_count(),
            plural(region.page_count(), "page"),
            region.page_size / 1024,
        )?;
        writeln!(
            self.out,
            "pages: * faulted in this step  # resident  0 zero page  . not in memory"
        )
    }

    fn step(&mut self, step: &StepReport) -> io::Result<()> {
        writeln!(self.out)?;
        self.paragraph(&format!("step {}  ", step.step), &step.action)?;
        self.write_allocation(step)?;
        self.write_faults(step)?;
        self.write_touch(step)?;
        self.write_death(step)?;
        self.write_kernel(step)?;
        self.write_lesson(step)?;
        self.out.flush()
    }

    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        writeln!(
            self.out,
            "\nsummary: {} in the array, {} in all steps ({} minor, {} major, {} error)",
            plural(summary.faults_in_region, "fault"),
            summary.faults_total,
            summary.minor,
            summary.major,
            summary.error
        )?;
        writeln!(
            self.out,
            "         {} lost, {} more in the child's start-up",
            summary.lost, summary.faults_startup
        )?;
        writeln!(
            self.out,
            "         the child {}\n",
            child_fate(&summary.child)
        )?;
        self.out.flush()
    }

    fn comparison(&mut self, walks: &[WalkResult]) -> io::Result<()> {
        let find = |scenario| walks.iter().find(|walk| walk.summary.scenario == scenario);
        for (left, right) in [
            (ScenarioName::Mmap, ScenarioName::Malloc),
            (ScenarioName::Malloc, ScenarioName::MallocMmap),
        ] {
            if let (Some(left), Some(right)) = (find(left), find(right)) {
                self.allocation_table(left, right)?;
            }
        }
        if let (Some(left), Some(right)) = (
            find(ScenarioName::OutOfBounds),
            find(ScenarioName::Mprotect),
        ) {
            self.death_table(left, right)?;
        }
        self.out.flush()
    }
}

/// A row of a two-walk comparison table.
fn row(out: &mut impl Write, label: &str, left: &str, right: &str) -> io::Result<()> {
    writeln!(out, "{label:<30}{left:<25}{right}")
}

impl<W: Write> TextReporter<W> {
    /// Two walks' allocations and touches side by side: their syscalls, offsets, faults per
    /// step, RSS and VMA.
    fn allocation_table(&mut self, left: &WalkResult, right: &WalkResult) -> io::Result<()> {
        let (left_name, right_name) = (
            left.summary.scenario.as_str(),
            right.summary.scenario.as_str(),
        );
        writeln!(self.out, "== {left_name} against {right_name} ==")?;
        row(&mut self.out, "", left_name, right_name)?;
        let served = |walk: &WalkResult| {
            walk.steps.first().map_or_else(String::new, |step| {
                if step.syscalls.is_empty() {
                    "no syscall (heap room)".to_owned()
                } else {
                    step.syscalls
                        .iter()
                        .map(|call| call.syscall.name().to_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            })
        };
        row(
            &mut self.out,
            "allocation syscalls",
            &served(left),
            &served(right),
        )?;
        row(
            &mut self.out,
            "offset of arr in its page",
            &left.page_offset.to_string(),
            &right.page_offset.to_string(),
        )?;
        for (number, (one, other)) in left.steps.iter().zip(&right.steps).enumerate() {
            // Step 1 allocates; the others are the touches, named by their element.
            let label = match number {
                0 => "faults in arr: allocation".to_owned(),
                _ => match one.element {
                    Some(index) => format!("faults in arr: arr[{index}]"),
                    None => format!("faults in arr: {}", one.action),
                },
            };
            row(
                &mut self.out,
                &label,
                &one.faults_in_region.to_string(),
                &other.faults_in_region.to_string(),
            )?;
        }
        let rss = |walk: &WalkResult| {
            walk.steps
                .last()
                .and_then(|step| step.rss_kib)
                .map_or_else(|| "-".to_owned(), |kib| format!("{kib} KiB"))
        };
        row(
            &mut self.out,
            "arr's RSS at the end",
            &rss(left),
            &rss(right),
        )?;
        let vma = |walk: &WalkResult| walk.vma.clone().unwrap_or_default();
        row(&mut self.out, "VMA holding arr", &vma(left), &vma(right))?;
        writeln!(self.out)
    }

    /// Two walks that die of SIGSEGV side by side: what the fatal access found.
    fn death_table(&mut self, left: &WalkResult, right: &WalkResult) -> io::Result<()> {
        let (Some(one), Some(other)) = (&left.death, &right.death) else {
            return Ok(());
        };
        let (left_name, right_name) = (
            left.summary.scenario.as_str(),
            right.summary.scenario.as_str(),
        );
        writeln!(self.out, "== {left_name} against {right_name} ==")?;
        row(&mut self.out, "", left_name, right_name)?;
        let element = |death: &DeathDigest| {
            death
                .element
                .map_or_else(|| "-".to_owned(), |index| format!("arr[{index}]"))
        };
        row(
            &mut self.out,
            "fatal access",
            &element(one),
            &element(other),
        )?;
        let code = |death: &DeathDigest| {
            death
                .error_code
                .map_or_else(|| "-".to_owned(), |code| format!("{code:#x}"))
        };
        row(&mut self.out, "error code", &code(one), &code(other))?;
        let present = |death: &DeathDigest| match death.present {
            Some(true) => "yes (protection)".to_owned(),
            Some(false) => "no".to_owned(),
            None => "-".to_owned(),
        };
        row(
            &mut self.out,
            "page present",
            &present(one),
            &present(other),
        )?;
        let vma = |death: &DeathDigest| death.vma.clone().unwrap_or_else(|| "none".to_owned());
        row(&mut self.out, "VMA at the address", &vma(one), &vma(other))?;
        let signal = |death: &DeathDigest| {
            format!(
                "{} {}",
                death.signal,
                death.si_code.as_deref().unwrap_or("-")
            )
        };
        row(&mut self.out, "signal", &signal(one), &signal(other))?;
        writeln!(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        output::fixtures::{
            fault, page_1_written_in_step_2, region, step, summary, vma, write_touch,
        },
        walk::step_report::KernelView,
    };

    fn render(steps: &[StepReport], summary: &Summary) -> String {
        let mut out = Vec::new();
        let mut reporter = TextReporter::new(&mut out);
        reporter
            .region(ScenarioName::Mmap, Allocator::Mmap, &steps[0].region)
            .unwrap();
        for step in steps {
            reporter.step(step).unwrap();
        }
        reporter.summary(summary).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines().all(|line| line.chars().count() <= 80),
            "{text}"
        );
        text
    }

    #[test]
    fn wrap_breaks_long_lists_under_the_first_item() {
        let parts: Vec<String> = (0..12).map(|i| format!("mapping-{i} {i}")).collect();
        let lines = wrap("  elsewhere 66 faults: ", &parts, 80);
        assert!(lines.len() > 1);
        assert!(
            lines.iter().all(|line| line.chars().count() <= 80),
            "{lines:#?}"
        );
        assert!(lines[1].starts_with("                       mapping-"));
        assert_eq!(lines.join(" ").matches("mapping-").count(), 12);
    }

    #[test]
    fn a_step_with_one_fault_in_the_array_and_two_elsewhere() {
        let region = region();
        let (pages, _) = page_1_written_in_step_2();
        let mut report = step(
            2,
            "arr[1500] = 2",
            pages,
            KernelView {
                resident_pages: vec![1],
                zero_pages: Vec::new(),
                rss_kib: 4,
                vma: Some(vma(region.start, 20, 4)),
                ..KernelView::default()
            },
        );
        report.faults = vec![
            fault(region.start + 6000, 6, "[anon]", &region),
            fault(0x7ffe_0000_0000, 6, "[stack]", &region),
            fault(0x7f10_0000_0000, 4, "libc.so.6", &region),
        ];
        insta::assert_snapshot!(render(&[report], &summary(1, 3, 0)));
    }

    #[test]
    fn a_touch_without_fault_says_why() {
        let region = region();
        let (mut pages, origin) = page_1_written_in_step_2();
        pages.begin_step();
        let mut report = step(
            3,
            "arr[1501] = 3",
            pages,
            // What the kernel would say after step 2: page 1 resident, nothing else.
            KernelView {
                resident_pages: vec![1],
                zero_pages: vec![],
                rss_kib: 4,
                vma: Some(vma(region.start - 8192, 28, 12)),
                ..KernelView::default()
            },
        );
        report.touch = Some(write_touch(&region, 1501, false, Some(origin)));
        insta::assert_snapshot!(render(&[report], &summary(0, 0, 2)));
    }
}
