//! What the step driver learns of a lesson between its steps (the forked pid, the shared
//! mapping, the stack's first bounds and the limit it set), and the kernel reads that give a
//! step its [`LessonFacts`].

use std::path::PathBuf;

use crate::{
    kernel::pagecache,
    kernel::procmem,
    model::region::Region,
    walk::lesson_facts::{LessonFacts, StackFacts},
    walk::lessons::FILE_PAGES,
    walk::plan::ScenarioName,
    walk::step_report::KernelView,
    walk::workload::{Command, Reply, protocol::reply_address},
};

/// What the step driver knows of a lesson between its steps.
#[derive(Debug, Default)]
pub struct LessonState {
    /// The child fork-cow's fork made.
    pub forked: Option<u32>,
    /// The address of the file lesson's MAP_SHARED mapping.
    pub shared_mapping: Option<u64>,
    /// The stack's bottom and top when the stack lesson began.
    pub stack: Option<(u64, u64)>,
    /// The frame size the stack lesson's recursion reported.
    pub frame_bytes: Option<u64>,
    /// The RLIMIT_STACK the stack lesson set, for the step in which the child dies of it.
    pub stack_limit: Option<u64>,
    /// The file the file lesson's child was asked to create.
    pub file: Option<PathBuf>,
}

impl LessonState {
    /// Learns what a command's reply says that later steps need.
    pub fn learn(&mut self, command: &Command, reply: &Reply) {
        match (command, reply) {
            (Command::LimitStack { bytes }, Reply::Done(_)) => self.stack_limit = Some(*bytes),
            // Asked for, even if it failed: whatever the child made is removed at the end.
            (Command::CreateFile { path, .. }, _) => self.file = Some(path.clone()),
            _ => {}
        }
        let Reply::Done(Some(detail)) = reply else {
            return;
        };
        let mut words = detail.split_whitespace();
        match command {
            Command::Fork => self.forked = words.next().and_then(|pid| pid.parse().ok()),
            Command::MapFile { shared: true, .. } => {
                self.shared_mapping = words.next().and_then(|address| reply_address(address).ok());
            }
            Command::Recurse { .. } => {
                self.frame_bytes = words.nth(1).and_then(|bytes| bytes.parse().ok());
            }
            _ => {}
        }
    }

    /// Reads the facts of a step of `scenario` in process `pid`, whose region is `region`;
    /// `kernel` is the step's view of it, `None` once the child is gone, and `faults_below`
    /// this step's faults below the stack's first bottom.
    pub fn facts(
        &self,
        scenario: ScenarioName,
        pid: i32,
        region: &Region,
        kernel: Option<&KernelView>,
        faults_below: u64,
    ) -> anyhow::Result<Option<LessonFacts>> {
        Ok(match scenario {
            ScenarioName::ForkCow => match (self.forked, kernel) {
                (Some(child), Some(kernel)) => Some(self.fork_facts(child, region, kernel)?),
                _ => None,
            },
            ScenarioName::File => {
                let Some(path) = &self.file else {
                    return Ok(None);
                };
                let directory = path.parent().unwrap_or(path);
                Some(LessonFacts::File {
                    filesystem: pagecache::filesystem_of(directory)?,
                    cached_pages: pagecache::cached_pages(path, FILE_PAGES)?,
                    shared_vma: match (self.shared_mapping, kernel) {
                        (Some(address), Some(_)) => procmem::vma_usage(pid, address)?,
                        _ => None,
                    },
                    path: path.display().to_string(),
                })
            }
            ScenarioName::Stack => self.stack.map(|(original_start, top)| {
                // Once the child is gone, the limit it set is the one it died of.
                let limit = match kernel {
                    Some(_) => procmem::stack_limit(pid),
                    None => self.stack_limit,
                };
                LessonFacts::Stack(StackFacts {
                    original_start,
                    top,
                    // The step's own view already holds [stack]: the region's VMA.
                    vma: kernel.and_then(|kernel| kernel.vma.clone()),
                    faults_below_original: faults_below,
                    limit,
                    lowest_allowed: limit.map(|limit| top.saturating_sub(limit)),
                    frame_bytes: self.frame_bytes,
                })
            }),
            ScenarioName::Thp => Some(LessonFacts::Thp {
                enabled: pagecache::thp_setting("enabled"),
                defrag: pagecache::thp_setting("defrag"),
                anon_huge_kib: kernel
                    .and_then(|kernel| kernel.vma.as_ref())
                    .map_or(0, |vma| vma.anon_huge_kib),
            }),
            _ => None,
        })
    }

    fn fork_facts(
        &self,
        child: u32,
        region: &Region,
        kernel: &KernelView,
    ) -> anyhow::Result<LessonFacts> {
        let child_pages = procmem::page_presence(
            child as i32,
            region.first_page_base(),
            region.page_size,
            region.page_count(),
        )?;
        let (mut same_frames, mut own_frames) = (Vec::new(), Vec::new());
        for ((page, parent), child) in (0u64..).zip(&kernel.frames).zip(&child_pages) {
            if *parent == 0 || child.pfn == 0 {
                continue;
            }
            if *parent == child.pfn {
                same_frames.push(page);
            } else {
                own_frames.push(page);
            }
        }
        Ok(LessonFacts::Fork {
            child,
            same_frames,
            own_frames,
            child_vma: procmem::vma_usage(child as i32, region.start)?,
        })
    }
}
