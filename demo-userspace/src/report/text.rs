//! The text report: each step's action, its faults, a page strip and a pmap-style line, in 80
//! columns.

use std::io::{self, Write};

use super::Reporter;
use crate::{
    region::Region,
    scenario::{ScenarioName, StepReport, Summary},
};

/// Writes the report for people and flushes after each step.
pub struct TextReporter<W> {
    out: W,
}

impl<W: Write> TextReporter<W> {
    pub fn new(out: W) -> Self {
        Self { out }
    }
}

/// Formats a page list as `page 1` or `pages 0, 1 and 2`, or `no page`.
fn page_list(pages: &[u64]) -> String {
    match pages {
        [] => "no page".to_owned(),
        [one] => format!("page {one}"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(u64::to_string).collect();
            format!("pages {} and {last}", init.join(", "))
        }
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
    fn write_faults(&mut self, step: &StepReport) -> io::Result<()> {
        let name = &step.region.name;
        let mut any = false;
        for (resolved, location) in step.faults_in_region() {
            any = true;
            let (first, last) = step.region.index_range_of_page(location.page);
            let code = resolved.fault.error_code;
            writeln!(
                self.out,
                "  fault     {name}[{}] (+{}) on page {} = {name}[{first}..{last}]",
                location.index, location.offset, location.page
            )?;
            writeln!(
                self.out,
                "            {} (error code {:#x})",
                code.describe(),
                code.0
            )?;
        }
        if !any {
            writeln!(self.out, "  fault     none in {name}")?;
        }
        let elsewhere = step.elsewhere();
        let count: u64 = elsewhere.values().sum();
        if count > 0 {
            let parts: Vec<String> = elsewhere
                .iter()
                .map(|(mapping, n)| format!("{mapping} {n}"))
                .collect();
            let head = format!("  elsewhere {}: ", plural(count, "fault"));
            for line in wrap(&head, &parts, 80) {
                writeln!(self.out, "{line}")?;
            }
        }
        Ok(())
    }

    fn write_kernel(&mut self, step: &StepReport) -> io::Result<()> {
        let region = &step.region;
        let kernel = &step.kernel;
        writeln!(
            self.out,
            "  pages     [{}]  {} of {} resident, {} KiB",
            step.pages.strip(),
            kernel.present_pages.len(),
            region.page_count(),
            kernel.rss_kib
        )?;
        match &kernel.vma {
            Some(vma) => writeln!(
                self.out,
                "  pmap      {:016x}  {} KiB  RSS {} KiB  Dirty {} KiB  {}  {}",
                vma.start, vma.size_kib, vma.rss_kib, vma.dirty_kib, vma.perms, vma.name
            )?,
            None => writeln!(self.out, "  pmap      no VMA holds {}", region.name)?,
        }
        if step.vma_is_merged()
            && let Some(vma) = &kernel.vma
        {
            writeln!(
                self.out,
                "  note      the kernel merged {} with a neighbour: VMA {} KiB, {} {} KiB",
                region.name,
                vma.size_kib,
                region.name,
                region.page_count() * region.page_size / 1024
            )?;
        }
        let shown = page_list(&kernel.present_pages);
        if step.agrees_with_kernel() {
            writeln!(
                self.out,
                "  kernel    pagemap shows {shown} present, as the faults say"
            )?;
        } else {
            writeln!(
                self.out,
                "  kernel    DISAGREES: pagemap shows {shown} present, faults explain {}",
                page_list(&step.pages.mapped_pages())
            )?;
        }
        Ok(())
    }
}

impl<W: Write> Reporter for TextReporter<W> {
    fn region(&mut self, scenario: ScenarioName, region: &Region) -> io::Result<()> {
        writeln!(
            self.out,
            "{} = {:#x}: {} bytes = int[{}] on {} pages of {} KiB ({})",
            region.name,
            region.start,
            region.len,
            region.element_count(),
            region.page_count(),
            region.page_size / 1024,
            scenario.as_str()
        )?;
        writeln!(
            self.out,
            "pages: * faulted in this step  # resident  0 zero page  . not in memory"
        )
    }

    fn step(&mut self, step: &StepReport) -> io::Result<()> {
        writeln!(self.out, "\nstep {}  {}", step.step, step.action)?;
        self.write_faults(step)?;
        self.write_kernel(step)?;
        self.out.flush()
    }

    fn summary(&mut self, summary: &Summary) -> io::Result<()> {
        writeln!(
            self.out,
            "\nsummary: {} in the array, {} in all steps, {} lost",
            plural(summary.faults_in_region, "fault"),
            summary.faults_total,
            summary.lost
        )?;
        writeln!(
            self.out,
            "         {} more in the child's start-up, before step 1",
            summary.faults_startup
        )?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use demo_common::FaultSource;

    use super::*;
    use crate::{
        access::ErrorCode,
        pages::PageModel,
        procmem::VmaUsage,
        records::Fault,
        scenario::{KernelView, ResolvedFault},
    };

    fn region() -> Region {
        Region {
            name: "arr".to_owned(),
            start: 0x7f00_0000_0000,
            len: 20000,
            elem_size: 4,
            page_size: 4096,
            pages_after: 0,
        }
    }

    fn fault(address: u64, error_code: u64) -> Fault {
        Fault {
            timestamp_ns: 1,
            pid: 100,
            tid: 100,
            address,
            ip: 0x5555_0000_1000,
            error_code: ErrorCode(error_code),
            source: FaultSource::User,
        }
    }

    fn render(steps: &[StepReport], summary: Summary) -> String {
        let mut out = Vec::new();
        let mut reporter = TextReporter::new(&mut out);
        reporter
            .region(ScenarioName::Mmap, &steps[0].region)
            .unwrap();
        for step in steps {
            reporter.step(step).unwrap();
        }
        reporter.summary(&summary).unwrap();
        String::from_utf8(out).unwrap()
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
        let mut pages = PageModel::new(5);
        pages.apply_fault(1, crate::access::Access::Write);
        let step = StepReport {
            scenario: ScenarioName::Mmap,
            step: 2,
            action: "arr[1500] = 2".to_owned(),
            faults: vec![
                ResolvedFault {
                    fault: fault(region.start + 6000, 6),
                    location: region.locate(region.start + 6000),
                    mapping: "[anon]".to_owned(),
                },
                ResolvedFault {
                    fault: fault(0x7ffe_0000_0000, 6),
                    location: None,
                    mapping: "[stack]".to_owned(),
                },
                ResolvedFault {
                    fault: fault(0x7f10_0000_0000, 4),
                    location: None,
                    mapping: "libc.so.6".to_owned(),
                },
            ],
            pages,
            kernel: KernelView {
                present_pages: vec![1],
                rss_kib: 4,
                vma: Some(VmaUsage {
                    start: region.start,
                    end: region.start + 20480,
                    size_kib: 20,
                    rss_kib: 4,
                    dirty_kib: 4,
                    perms: "rw-p".to_owned(),
                    name: "[anon]".to_owned(),
                }),
            },
            region,
        };
        let text = render(
            &[step],
            Summary {
                scenario: ScenarioName::Mmap,
                faults_in_region: 1,
                faults_total: 3,
                faults_startup: 150,
                lost: 0,
            },
        );
        assert!(
            text.lines().all(|line| line.chars().count() <= 80),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }

    #[test]
    fn merged_vma_and_disagreement_are_called_out() {
        let region = region();
        let step = StepReport {
            scenario: ScenarioName::Mmap,
            step: 1,
            action: "arr = mmap(NULL, 20000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)"
                .to_owned(),
            faults: Vec::new(),
            pages: PageModel::new(5),
            kernel: KernelView {
                present_pages: vec![4],
                rss_kib: 4,
                vma: Some(VmaUsage {
                    start: region.start - 8192,
                    end: region.start + 20480,
                    size_kib: 28,
                    rss_kib: 12,
                    dirty_kib: 12,
                    perms: "rw-p".to_owned(),
                    name: "[anon]".to_owned(),
                }),
            },
            region,
        };
        let text = render(
            &[step],
            Summary {
                scenario: ScenarioName::Mmap,
                faults_in_region: 0,
                faults_total: 0,
                faults_startup: 0,
                lost: 2,
            },
        );
        assert!(
            text.lines().all(|line| line.chars().count() <= 80),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }
}
