//! The text report: each step's action, its faults with their class and duration, the step's
//! time in faults, a page strip and a pmap-style line, in 80 columns wrapped at words
//! ([`crate::walk::wrap`]). A run of like faults on consecutive pages is one line, with their
//! total time and range; code is named only where it is not the workload's own (demo's
//! binary), and then escaped, as are mapping and module paths ([`super::escape`]).

use std::io::{self, Write};

use super::{code::describe, duration::human, escape::escape, trace_text::frame_lines};
use crate::walk::Reporter;
use crate::{
    kernel::symbols::Stack,
    model::classify::{ClassifiedFault, FaultClass},
    model::region::{Location, Region},
    trace::session::TracedFault,
    walk::fault_time::FaultTime,
    walk::lessons::LessonFacts,
    walk::plan::{Allocator, ScenarioName},
    walk::scenario::{DeathDigest, Summary, WalkResult},
    walk::step_report::{AddressCheck, StepReport},
    walk::wrap::{COLUMNS, wrap as wrap_words},
};

/// Glyphs of a page strip on one line of the report.
const STRIP_ROW: usize = 64;
/// Fewer like faults than this are written one by one; this many or more, as one run.
const RUN: usize = 3;
/// Where a fault's detail starts, under its head line.
const DETAIL: &str = "            ";

/// Writes the report for people and flushes after each step.
pub struct TextReporter<W> {
    out: W,
    /// The VMA (start, KiB) the walk's `note` last said holds the array in a larger VMA, so
    /// the note is said once, and again only when the VMA changes.
    noted_vma: Option<(u64, u64)>,
}

impl<W: Write> TextReporter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            noted_vma: None,
        }
    }
}

/// A line of the fault's detail, wrapped under the fault (a symbol may be long).
fn fit(text: &str) -> Vec<String> {
    wrap_words(text, COLUMNS, DETAIL, "               ")
}

/// The index range the report prints beside an element on `location`'s page: the array's
/// indices on that page, or, for an element outside the array, every index the page holds, so
/// the range always holds the element shown.
fn indices_beside(region: &Region, location: &Location) -> (i64, i64) {
    if location.in_bounds {
        return region.index_range_of_page(location.page);
    }
    let elem = region.elem_size as i64;
    let page_start = (region.first_page_base() + location.page * region.page_size) as i64;
    let first = page_start - region.start as i64;
    let last = first + region.page_size as i64 - 1;
    (
        first.div_euclid(elem) + i64::from(first.rem_euclid(elem) != 0),
        last.div_euclid(elem),
    )
}

/// Where a fault in the array is, as its head line says it: `arr[1500] (+6000) on page 1 =
/// arr[1024..2047]`.
fn place(region: &Region, location: &Location) -> String {
    let name = &region.name;
    let page = if location.page < region.page_count() {
        let (first, last) = indices_beside(region, location);
        format!("page {} = {name}[{first}..{last}]", location.page)
    } else {
        format!("page {}, past the array", location.page)
    };
    format!(
        "{name}[{}] ({:+}) on {page}",
        location.index, location.offset
    )
}

/// A fault in the array as the report writes it: where it fell, and the code and frames worth
/// naming (none of the workload's own).
struct Shown<'a> {
    fault: &'a TracedFault,
    location: Location,
    code: Option<String>,
    frames: Vec<String>,
}

impl<'a> Shown<'a> {
    fn new(step: &StepReport, fault: &'a TracedFault, location: Location) -> Self {
        // Where the stack ends is said under the frames told, when they are all of it: a
        // stack of the workload's frames only says nothing, and an end past the workload's
        // frames is not where the frames told end.
        let frames = step.told_frames(fault);
        let stack = Stack {
            end: (fault.stack.as_ref())
                .filter(|stack| !frames.is_empty() && frames.len() == stack.len())
                .and_then(|stack| stack.end),
            frames,
        };
        Self {
            fault,
            location,
            code: step.told_code(fault).map(describe),
            frames: frame_lines(Some(&stack))
                .into_iter()
                .map(|(head, text)| format!("{head}{text}"))
                .collect(),
        }
    }

    /// True when `next` says the same as this fault but for its page: the same process, class,
    /// error code and code.
    fn like(&self, next: &Self) -> bool {
        let (one, other) = (&self.fault.fault, &next.fault.fault);
        one.fault.pid == other.fault.pid
            && one.class == other.class
            && one.fault.error_code == other.fault.error_code
            && self.location.in_bounds == next.location.in_bounds
            && self.code == next.code
            && self.frames == next.frames
    }
}

/// The length of the run of like faults on consecutive pages (up or down) that starts
/// `shown`; 1 when the next fault is not part of one.
fn run_length(shown: &[Shown<'_>]) -> usize {
    let [first, second, ..] = shown else {
        return shown.len();
    };
    let direction = second.location.page as i64 - first.location.page as i64;
    if direction.abs() != 1 {
        return 1;
    }
    1 + shown
        .windows(2)
        .take_while(|pair| {
            pair[0].like(&pair[1])
                && pair[1].location.page as i64 - pair[0].location.page as i64 == direction
        })
        .count()
}

/// A fault's class and what it took: `minor, 1.4 µs`, `major, 1.9 ms (1.7 ms off CPU)`; a fault
/// without a measured duration says why it has none.
fn class_and_time(fault: &ClassifiedFault) -> String {
    let class = fault.class.as_str();
    let Some(timing) = fault.timing else {
        return if fault.class == FaultClass::Error {
            format!("{class}, no duration: it never completed")
        } else {
            format!("{class}, duration not measured")
        };
    };
    let parts = crate::output::duration::away_from_cpu(timing);
    if parts.is_empty() {
        format!("{class}, {}", human(timing.duration_ns))
    } else {
        format!(
            "{class}, {} ({})",
            human(timing.duration_ns),
            parts.join(", ")
        )
    }
}

/// A run's class and what its faults took: `minor, 610 µs in all (812 ns to 12 µs each)`,
/// with the faults that have no measured duration counted apart.
fn run_class_and_time(class: FaultClass, time: FaultTime) -> String {
    let class = class.as_str();
    let (Some(shortest), Some(longest)) = (time.shortest_ns, time.longest_ns) else {
        return if time.errors == time.faults {
            format!("{class}, no durations: they never completed")
        } else {
            format!("{class}, durations not measured")
        };
    };
    let each = if human(shortest) == human(longest) {
        format!("{} each", human(longest))
    } else {
        format!("{} to {} each", human(shortest), human(longest))
    };
    let mut said = format!("{class}, {} in all ({each})", human(time.total_ns));
    if time.timed < time.faults {
        said += &format!(", {} not measured", time.faults - time.timed);
    }
    said
}

/// `, child 123` or `, parent 122` once a walk has forked; empty before.
fn process_of(step: &StepReport, pid: u32) -> String {
    match &step.lesson {
        Some(LessonFacts::Fork { child, .. }) if *child == pid => format!(", child {pid}"),
        Some(LessonFacts::Fork { .. }) => format!(", parent {pid}"),
        _ => String::new(),
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
            let verdict = if unmapped {
                "unmapped: munmap'd, so no neighbour was merged there"
            } else {
                "STILL MAPPED: an access there will not fault"
            };
            self.paragraph(
                "  guard     ",
                &format!("{address:#x} (page {}) is {verdict}", region.page_count()),
            )?;
        }
        Ok(())
    }

    fn write_faults(&mut self, step: &StepReport) -> io::Result<()> {
        let name = &step.region.name;
        let header = step.next_chunk_header_write().map(|(fault, _)| fault);
        let shown: Vec<Shown<'_>> = step
            .faults_in_region()
            .map(|(fault, location)| Shown::new(step, fault, location))
            .collect();
        if shown.is_empty() {
            writeln!(self.out, "  fault     none in {name}")?;
        }
        let mut at = 0;
        while at < shown.len() {
            // malloc's header write has a `why` of its own, so it is never folded into a run.
            let length = match run_length(&shown[at..]) {
                length
                    if length >= RUN
                        && !shown[at..at + length].iter().any(|one| {
                            header.is_some_and(|header| std::ptr::eq(header, one.fault))
                        }) =>
                {
                    length
                }
                _ => 1,
            };
            if length == 1 {
                self.write_fault(step, &shown[at])?;
            } else {
                self.write_run(step, &shown[at..at + length])?;
            }
            at += length;
        }
        if let Some(why) = super::explain::chunk_header(step) {
            self.paragraph("  why       ", &why)?;
        }
        self.write_elsewhere(step)?;
        self.write_time(step)
    }

    /// The step's time in faults, in the array and elsewhere: what the measured ones took in
    /// all, and how much of it their threads were off the CPU; the faults without a measured
    /// duration are counted apart, never guessed.
    fn write_time(&mut self, step: &StepReport) -> io::Result<()> {
        let time = step.fault_time();
        if time.faults == 0 {
            return Ok(());
        }
        let mut parts = Vec::new();
        if time.timed > 0 {
            let mut took = format!(
                "{} took {}",
                plural(time.timed, "fault"),
                human(time.total_ns)
            );
            if time.timed > 1 {
                took += " in all";
            }
            if time.off_cpu_ns > 0 {
                took += &format!(", {} of it off CPU", human(time.off_cpu_ns));
            }
            if time.off_cpu_unknown > 0 {
                took += &format!(" ({} with time off CPU not known)", time.off_cpu_unknown);
            }
            parts.push(took);
        }
        match time.errors {
            0 => {}
            1 => parts.push("1 error fault never completed: no duration".to_owned()),
            errors => parts.push(format!(
                "{errors} error faults never completed: no duration"
            )),
        }
        if time.unmeasured() > 0 {
            parts.push(format!(
                "{} not measured",
                plural(time.unmeasured(), "fault")
            ));
        }
        self.paragraph("  time      ", &parts.join("; "))
    }

    /// One fault in the array: where it fell, its class, its error code, and the code worth
    /// naming.
    fn write_fault(&mut self, step: &StepReport, shown: &Shown<'_>) -> io::Result<()> {
        let fault = &shown.fault.fault;
        self.paragraph(
            "  fault     ",
            &format!(
                "{}  {}{}",
                place(&step.region, &shown.location),
                class_and_time(fault),
                process_of(step, fault.fault.pid)
            ),
        )?;
        self.write_detail(shown)
    }

    /// A run of like faults on consecutive pages, as one line: `8 on pages 0→7, one per page`.
    fn write_run(&mut self, step: &StepReport, run: &[Shown<'_>]) -> io::Result<()> {
        let (first, last) = (&run[0], &run[run.len() - 1]);
        let fault = &first.fault.fault;
        self.paragraph(
            "  faults    ",
            &format!(
                "{} on pages {}→{}, one per page  {}{}",
                run.len(),
                first.location.page,
                last.location.page,
                run_class_and_time(fault.class, FaultTime::of(run.iter().map(|one| one.fault))),
                process_of(step, fault.fault.pid)
            ),
        )?;
        self.write_detail(first)
    }

    /// Under a fault or a run: the error code read out, then the code and frames worth naming.
    fn write_detail(&mut self, shown: &Shown<'_>) -> io::Result<()> {
        let code = shown.fault.fault.fault.error_code;
        writeln!(
            self.out,
            "{DETAIL}{} (error code {:#x})",
            code.describe(),
            code.0
        )?;
        if let Some(named) = &shown.code {
            for line in fit(&format!("by {named}")) {
                writeln!(self.out, "{line}")?;
            }
        }
        // Frames are wrapped like the rest, so a long C++ or Rust symbol stays in 80 columns.
        for frame in &shown.frames {
            for line in fit(frame) {
                writeln!(self.out, "{line}")?;
            }
        }
        Ok(())
    }

    /// The step's faults outside the array, by mapping; those on demo's own binary are the
    /// workload's, named as such rather than by the binary's path.
    fn write_elsewhere(&mut self, step: &StepReport) -> io::Result<()> {
        let elsewhere = step.elsewhere();
        let count: u64 = elsewhere.values().sum();
        if count == 0 {
            return Ok(());
        }
        let (own, others): (Vec<_>, Vec<_>) = elsewhere
            .iter()
            .partition(|(mapping, _)| step.is_workload_binary(mapping));
        let parts: Vec<String> = own
            .iter()
            .map(|(_, n)| format!("{n} in the workload (demo's binary)"))
            .chain(
                others
                    .iter()
                    .map(|(mapping, n)| format!("{n} in {}", escape(mapping))),
            )
            .collect();
        let head = format!("  elsewhere {}: ", plural(count, "fault"));
        for line in wrap(&head, &parts, COLUMNS) {
            writeln!(self.out, "{line}")?;
        }
        Ok(())
    }

    fn write_touch(&mut self, step: &StepReport) -> io::Result<()> {
        if let Some([first, second]) = super::explain::past_the_array(step) {
            // One paragraph, so a long mapping's name wraps at words too.
            self.paragraph("  bounds    ", &format!("{first} {second}"))?;
        }
        match super::explain::no_fault(step) {
            Some(why) => self.paragraph("  why       ", &why),
            None => Ok(()),
        }
    }

    fn write_death(&mut self, step: &StepReport) -> io::Result<()> {
        let Some(words) = super::explain::death(step) else {
            return Ok(());
        };
        writeln!(self.out, "  died      {}", words.fate)?;
        if let Some(signal) = &words.signal {
            writeln!(self.out, "{DETAIL}{signal}")?;
            writeln!(
                self.out,
                "{DETAIL}(seen by signal:signal_generate and in the wait status)"
            )?;
        }
        if let Some(place) = &words.place {
            self.paragraph(DETAIL, place)?;
        }
        Ok(())
    }

    /// `text` after `head`, wrapped at words in 80 columns under the text's start.
    fn paragraph(&mut self, head: &str, text: &str) -> io::Result<()> {
        let indent = " ".repeat(head.chars().count());
        for line in wrap_words(text, COLUMNS, head, &indent) {
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
        // Said once, and again only when the VMA changes.
        if step.vma_is_larger()
            && let Some(vma) = &kernel.vma
            && self.noted_vma != Some((vma.start, vma.size_kib))
        {
            self.noted_vma = Some((vma.start, vma.size_kib));
            self.paragraph(
                "  note      ",
                &format!(
                    "{} lies in a larger VMA ({} KiB) than its own {} KiB of pages; the pmap \
                     line is the VMA's",
                    region.name,
                    vma.size_kib,
                    region.page_count() * region.page_size / 1024
                ),
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
    /// The walk's title, before its first step, so `--interactive` shows it before the first
    /// Enter.
    fn walk_started(&mut self, scenario: ScenarioName) -> io::Result<()> {
        self.noted_vma = None;
        writeln!(self.out, "== {} ==", scenario.as_str())?;
        self.out.flush()
    }

    fn region(&mut self, _: ScenarioName, _: Allocator, region: &Region) -> io::Result<()> {
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
            super::explain::child_fate(&summary.child)
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
        model::events::FaultTiming,
        model::signals::ProcessEnd,
        output::fixtures::{
            fault, page_1_written_in_step_2, region, step, summary, vma, write_touch,
        },
        walk::step_report::KernelView,
        walk::step_report::OwnFrame,
    };

    fn render(steps: &[StepReport], summary: &Summary) -> String {
        let mut out = Vec::new();
        let mut reporter = TextReporter::new(&mut out);
        reporter.walk_started(steps[0].scenario).unwrap();
        reporter
            .region(steps[0].scenario, Allocator::Mmap, &steps[0].region)
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
            timed(
                fault(region.start + 6000, 6, "[anon]", &region),
                1_449,
                Some(0),
            ),
            timed(fault(0x7ffe_0000_0000, 6, "[stack]", &region), 812, Some(0)),
            timed(
                fault(0x7f10_0000_0000, 4, "libc.so.6", &region),
                12_400,
                Some(0),
            ),
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

    /// The steps alone, without the title and summary around them.
    fn steps_only(steps: &[StepReport]) -> String {
        let mut out = Vec::new();
        let mut reporter = TextReporter::new(&mut out);
        for step in steps {
            reporter.step(step).unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines().all(|line| line.chars().count() <= COLUMNS),
            "{text}"
        );
        text
    }

    /// `text` with each wrapped paragraph joined into one line, to check a sentence whole.
    fn joined(text: &str) -> String {
        text.replace("\n            ", " ")
    }

    /// A step of the seed's array (5 pages) with `faults` and no kernel surprise.
    fn step_with(number: u32, faults: Vec<TracedFault>) -> StepReport {
        let region = region();
        let mut pages = crate::model::pages::PageModel::new(5);
        for fault in &faults {
            if let Some(location) = fault.location() {
                pages.apply_at(&location, fault.fault.fault.error_code.access(), number);
            }
        }
        let resident = pages.resident_pages();
        let mut report = step(
            number,
            "write pages",
            pages,
            KernelView {
                rss_kib: resident.len() as u64 * 4,
                resident_pages: resident,
                vma: Some(vma(region.start, 20, 4)),
                ..KernelView::default()
            },
        );
        report.faults = faults;
        report
    }

    #[test]
    fn the_range_beside_an_element_always_holds_it() {
        let guarded = Region {
            pages_after: 1,
            ..region()
        };
        let at = |region: &Region, offset: i64| {
            place(
                region,
                &region
                    .locate((region.start as i64 + offset) as u64)
                    .unwrap(),
            )
        };
        // Page 4 holds arr[4096..5119]; the array's own end, arr[4999], is on it too.
        assert_eq!(
            at(&guarded, 5001 * 4),
            "arr[5001] (+20004) on page 4 = arr[4096..5119]"
        );
        assert_eq!(
            at(&guarded, 4500 * 4),
            "arr[4500] (+18000) on page 4 = arr[4096..4999]"
        );
        assert_eq!(
            at(&guarded, 5121 * 4),
            "arr[5121] (+20484) on page 5, past the array"
        );
        // malloc's header, 16 bytes before an array 16 bytes into its page.
        let malloced = Region {
            start: region().start + 16,
            len: 262_144,
            ..region()
        };
        assert_eq!(
            at(&malloced, -16),
            "arr[-4] (-16) on page 0 = arr[-4..1019]"
        );
        assert_eq!(at(&malloced, 0), "arr[0] (+0) on page 0 = arr[0..1019]");
        // Past the end of an array that ends inside its last page, 3648 bytes into a page.
        let heap = Region {
            start: region().start + 3648,
            ..region()
        };
        assert_eq!(
            at(&heap, 5002 * 4),
            "arr[5002] (+20008) on page 5 = arr[4208..5231]"
        );
    }

    /// `fault` as the kernel measured it: `duration_ns` long, `off_cpu_ns` of it off the CPU.
    fn timed(mut fault: TracedFault, duration_ns: u64, off_cpu_ns: Option<u64>) -> TracedFault {
        fault.fault.timing = Some(FaultTiming {
            duration_ns,
            off_cpu_ns,
            ..FaultTiming::default()
        });
        fault
    }

    #[test]
    fn each_fault_line_shows_its_class_and_duration_and_the_step_sums_them() {
        let region = region();
        let mut major = timed(
            fault(region.start, 4, "[anon]", &region),
            1_900_000,
            Some(1_700_000),
        );
        major.fault.class = FaultClass::Major;
        let minor = timed(
            fault(region.start + 2 * 4096, 6, "[anon]", &region),
            1_449,
            Some(0),
        );
        let mut error = fault(region.start + 4 * 4096, 7, "[anon]", &region);
        error.fault.class = FaultClass::Error;
        let elsewhere = timed(fault(0x7ffe_0000_0000, 6, "[stack]", &region), 2_551, None);
        let text = steps_only(&[step_with(2, vec![major, minor, error, elsewhere])]);
        for line in [
            "  fault     arr[0] (+0) on page 0 = arr[0..1023]  major, 1.9 ms (1.7 ms off CPU)\n",
            "  fault     arr[2048] (+8192) on page 2 = arr[2048..3071]  minor, 1.4 µs\n",
            "  fault     arr[4096] (+16384) on page 4 = arr[4096..4999]  error, no duration:\n\
             \x20           it never completed\n",
            "  time      3 faults took 1.9 ms in all, 1.7 ms of it off CPU (1 with time off\n\
             \x20           CPU not known); 1 error fault never completed: no duration\n",
        ] {
            assert!(text.contains(line), "{line}\nnot in\n{text}");
        }
        // A step without faults has no time line.
        assert!(!steps_only(&[step_with(3, Vec::new())]).contains("  time "));
    }

    #[test]
    fn a_run_of_like_faults_on_consecutive_pages_is_one_line() {
        let region = region();
        let faults: Vec<TracedFault> = (0..5)
            .map(|page| {
                let at = fault(region.start + page * 4096, 6, "[anon]", &region);
                timed(at, 1_000 + page * 2_000, Some(0))
            })
            .collect();
        let text = steps_only(&[step_with(2, faults)]);
        assert!(
            text.contains(
                "  faults    5 on pages 0→4, one per page  minor, 25 µs in all (1.0 µs to\n\
                 \x20           9.0 µs each)\n            write, page not present, user mode \
                 (error code 0x6)\n  time      5 faults took 25 µs in all\n  pages"
            ),
            "{text}"
        );
        // Untimed faults of a run are counted apart; error faults never have a duration.
        let mut partly: Vec<TracedFault> = (0..3)
            .map(|page| fault(region.start + page * 4096, 6, "[anon]", &region))
            .collect();
        partly[0] = timed(partly[0].clone(), 2_000, Some(0));
        partly[1] = timed(partly[1].clone(), 2_000, Some(0));
        assert!(steps_only(&[step_with(2, partly)]).contains(
            "  faults    3 on pages 0→2, one per page  minor, 4.0 µs in all (2.0 µs each), 1\n\
                 \x20           not measured\n"
        ));
        let errors: Vec<TracedFault> = (0..3)
            .map(|page| {
                let mut at = fault(region.start + page * 4096, 6, "[anon]", &region);
                at.fault.class = FaultClass::Error;
                at
            })
            .collect();
        let text = joined(&steps_only(&[step_with(2, errors)]));
        assert!(
            text.contains("  faults    3 on pages 0→2, one per page  error, no durations: they never completed "),
            "{text}"
        );
        assert!(
            text.contains("  time      3 error faults never completed: no duration\n"),
            "{text}"
        );
        // Two faults are no run; nor are faults of different error codes, or far apart.
        let two = (0..2)
            .map(|page| fault(region.start + page * 4096, 6, "[anon]", &region))
            .collect();
        assert_eq!(
            steps_only(&[step_with(2, two)])
                .matches("  fault  ")
                .count(),
            2
        );
        let mixed = vec![
            fault(region.start, 6, "[anon]", &region),
            fault(region.start + 4096, 7, "[anon]", &region),
            fault(region.start + 2 * 4096, 6, "[anon]", &region),
        ];
        assert_eq!(
            steps_only(&[step_with(2, mixed)])
                .matches("  fault  ")
                .count(),
            3
        );
        let apart = [0, 2, 4]
            .into_iter()
            .map(|page| fault(region.start + page * 4096, 6, "[anon]", &region))
            .collect();
        assert_eq!(
            steps_only(&[step_with(2, apart)])
                .matches("  fault  ")
                .count(),
            3
        );
        // Down the pages, as a stack grows.
        let down = (0..4)
            .rev()
            .map(|page| fault(region.start + page * 4096 + 8, 6, "[anon]", &region))
            .collect();
        let text = steps_only(&[step_with(2, down)]);
        assert!(
            text.contains(
                "  faults    4 on pages 3→0, one per page  minor, durations not measured\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn code_is_named_only_outside_the_workloads_own_binary() {
        let region = region();
        let mut faults = vec![fault(region.start, 6, "[anon]", &region)];
        let mut malloc = fault(region.start + 4096, 6, "[anon]", &region);
        malloc.code = crate::output::fixtures::int_malloc();
        faults.push(malloc);
        faults.push(fault(0x5555_0000_2000, 6, "/usr/local/bin/demo", &region));
        faults.push(fault(0x7ffe_0000_0000, 6, "[stack]", &region));
        let text = steps_only(&[step_with(2, faults)]);
        assert!(!text.contains("State::perform"), "{text}");
        assert!(!text.contains("/usr/local/bin/demo"), "{text}");
        assert!(
            text.contains("            by _int_malloc+0xda9 malloc.c:4378\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "  elsewhere 2 faults: 1 in the workload (demo's binary), 1 in [stack]\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_larger_vma_is_noted_once_and_again_when_it_changes() {
        let larger = |number, kib| {
            let mut report = step_with(number, Vec::new());
            report.kernel.as_mut().unwrap().vma = Some(vma(region().start, kib, 4));
            report
        };
        let text = steps_only(&[
            larger(1, 140),
            larger(2, 140),
            larger(3, 144),
            larger(4, 144),
        ]);
        assert_eq!(
            text.matches("  note      arr lies in a larger VMA (140 KiB) than its own 20 KiB")
                .count(),
            1,
            "{text}"
        );
        assert_eq!(text.matches("a larger VMA (144 KiB)").count(), 1, "{text}");
    }

    #[test]
    fn a_write_after_a_copy_on_write_says_the_copy_made_the_page_writable() {
        let region = region();
        let (pages, origin) = page_1_written_in_step_2();
        let mut report = step_with(7, Vec::new());
        report.pages = pages;
        let mut touch = write_touch(&region, 1501, false, Some(origin));
        touch.own_frame_since = Some(OwnFrame {
            step: 6,
            index: 1500,
            from_zero_page: true,
        });
        report.touch = Some(touch);
        let text = steps_only(&[report]);
        assert!(
            joined(&text).contains(
                "  why       no fault: page 1 was already present and writable: step 2 \
                 (arr[1500]) mapped the shared zero page there, and step 6's write \
                 (arr[1500]) gave it a copy of its own\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_stack_lessons_death_names_its_region_not_an_array() {
        let region = Region {
            name: "stack".into(),
            len: 1 << 20,
            ..region()
        };
        let mut report = step_with(4, Vec::new());
        report.scenario = ScenarioName::Stack;
        report.region = region.clone();
        report.kernel = None;
        let address = region.start + 127 * 4096 + 8;
        report.death = Some(crate::walk::step_report::Death {
            status: ProcessEnd::Killed(libc::SIGSEGV),
            wait_signal: Some(libc::SIGSEGV),
            generated: Some(crate::output::fixtures::segv()),
            fault: Some((address, region.locate(address))),
            error_code: None,
        });
        let text = steps_only(&[report]);
        assert!(
            joined(&text).contains(
                " at 0x7f000007f008 = stack[130050], page 127, inside the 256-page region \
                 below the top of [stack]\n"
            ),
            "{text}"
        );
        assert!(!text.contains("array"), "{text}");
    }

    #[test]
    fn the_guard_line_wraps_at_words_and_keeps_its_page_with_it() {
        let mut report = step_with(1, Vec::new());
        report.allocation = Some(crate::walk::step_report::AllocationFacts {
            allocator: Allocator::Mmap,
            address_check: AddressCheck::Matches,
            guard: Some((0x7fec_5d72_0000, true)),
        });
        let text = steps_only(&[report]);
        assert!(
            text.contains(
                "  guard     0x7fec5d720000 (page 5) is unmapped: munmap'd, so no neighbour \
                 was\n            merged there\n"
            ),
            "{text}"
        );
    }
}
