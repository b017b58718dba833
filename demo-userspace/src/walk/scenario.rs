//! Drives a built-in walk step by step in the workload child, attributes every traced record to
//! the step that caused it, and reads what the kernel reports after each step.

use std::{collections::BTreeMap, process::ExitStatus, sync::Arc};

use anyhow::{Context as _, bail};
use demo_common::Syscall;

use crate::{
    kernel::event_reader::EventReader,
    kernel::mappings::MappingTable,
    kernel::privileges::RunAs,
    kernel::probes::Probes,
    kernel::procmem,
    kernel::system_view::LiveView,
    model::access::Access,
    model::classify::{ClassCounts, FaultClass},
    model::events::{Decoded, SignalEvent},
    model::pages::{Companion, PageModel, PageState},
    model::region::Region,
    model::signals::ProcessEnd,
    model::syscalls::SyscallCall,
    trace::regions::RegionTracker,
    trace::session::{Session, TraceEvent, TracedFault, TracedSince},
    walk::Reporter,
    walk::lessons::{LessonState, stack::STACK_SPAN},
    walk::plan::{Allocator, ELEMENT_SIZE, PlannedStep, ScenarioName, WalkPlan},
    walk::step_report::{
        AddressCheck, AllocationFacts, Death, KernelView, OwnFrame, StepReport, WALK_REGION,
        completed, touch_outcome,
    },
    walk::workload::Command,
    walk::workload::{Reply, Workload},
};

/// Totals of a whole walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub scenario: ScenarioName,
    pub faults_in_region: u64,
    /// Faults of all steps.
    pub faults_total: u64,
    pub minor: u64,
    pub major: u64,
    pub error: u64,
    /// Faults of the child's start-up (exec, dynamic linking), which belong to no step. The child
    /// is traced from just after it is spawned, so this is a lower bound.
    pub faults_startup: u64,
    /// Faults the kernel counted for the child during the steps beyond the traced ones (its
    /// get_user_pages faults, which no tracepoint sees); 0 unless a fault escaped the tracepoints.
    pub unattributed_faults: u64,
    /// Records dropped by the kernel side plus records that did not decode, over the whole run
    /// so far.
    pub lost: u64,
    /// How the child ended, e.g. `exit status: 0` or `signal: 11 (SIGSEGV)`.
    pub child: ProcessEnd,
}

/// One step, reduced to what the comparison of walks shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepDigest {
    pub action: String,
    /// The element the step touched, when it touched one.
    pub element: Option<i64>,
    pub faults_in_region: usize,
    /// In JSON, as strace shows them.
    pub syscalls: Vec<SyscallCall>,
    pub rss_kib: Option<u64>,
}

/// A finished walk, for the comparison table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkResult {
    pub summary: Summary,
    pub page_offset: u64,
    pub vma: Option<String>,
    pub steps: Vec<StepDigest>,
    /// How the child died, when a step killed it.
    pub death: Option<DeathDigest>,
}

/// The fatal access of a walk, for the comparison of SEGV_MAPERR against SEGV_ACCERR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeathDigest {
    pub signal: String,
    pub si_code: Option<String>,
    /// The element the fatal access touched.
    pub element: Option<i64>,
    /// The CPU's error code of the fault that did not complete.
    pub error_code: Option<u64>,
    /// Whether that page was present: a protection fault, not a missing page.
    pub present: Option<bool>,
    /// The VMA that held the address just before (perms and name), or null when none did.
    pub vma: Option<String>,
}

/// How a walk waits before each step.
pub trait Pacer {
    /// Returns when the step may start.
    fn before_step(&mut self, step: u32, action: &str) -> impl Future<Output = anyhow::Result<()>>;
}

/// Runs steps back to back.
pub struct NoPause;

impl Pacer for NoPause {
    async fn before_step(&mut self, _: u32, _: &str) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Waits for Enter on the loader's stdin before each step, as the seed's `getchar()` did.
pub struct EnterPacer {
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>,
}

impl EnterPacer {
    #[expect(
        clippy::new_without_default,
        reason = "it takes over stdin, which a default value should not do unasked"
    )]
    pub fn new() -> Self {
        use tokio::io::AsyncBufReadExt as _;
        Self {
            lines: tokio::io::BufReader::new(tokio::io::stdin()).lines(),
        }
    }
}

impl Pacer for EnterPacer {
    async fn before_step(&mut self, step: u32, action: &str) -> anyhow::Result<()> {
        // Wrapped at words two columns short, so the cursor after it stays on the last line.
        let prompt = crate::walk::wrap::wrap(
            &format!("press Enter for step {step}: {action}"),
            crate::walk::wrap::COLUMNS - 2,
            "",
            "  ",
        );
        eprint!("{} ", prompt.join("\n"));
        // End of input means nobody will press Enter again; the walk then runs on.
        self.lines
            .next_line()
            .await
            .context("read Enter from stdin")?;
        Ok(())
    }
}

/// Everything a walk needs from the loader.
pub struct Tracing<'a> {
    pub probes: &'a mut Probes,
    pub reader: &'a mut EventReader,
    pub run_as: Option<RunAs>,
}

/// Runs `plan` in a fresh workload child, reporting each step as soon as it is complete.
pub async fn run_walk(
    plan: &WalkPlan,
    tracing: Tracing<'_>,
    pacer: &mut impl Pacer,
    reporter: &mut dyn Reporter,
) -> anyhow::Result<WalkResult> {
    let Tracing {
        probes,
        reader,
        run_as,
    } = tracing;
    // The title first, so an interactive walk shows it before its first prompt.
    reporter.walk_started(plan.scenario)?;
    // The workload child runs this same executable (`/proc/self/exe`).
    let workload_binary: Arc<str> = std::env::current_exe()
        .context("find demo's own executable, which the workload runs")?
        .to_string_lossy()
        .into();
    let mut workload = Workload::spawn(run_as)?;
    let pid = workload.pid();
    // FOLLOW: a child the walk forks (fork-cow) is traced from its first instruction.
    probes
        .add_target(
            pid,
            demo_common::target_flags::REPORT | demo_common::target_flags::FOLLOW,
        )
        .context("trace the workload child")?;
    probes
        .time_faults_of(pid)
        .context("time the workload child's faults")?;
    let mut walker = Walker {
        plan,
        pid,
        collector: Collector::new(pid),
        state: None,
        digests: Vec::new(),
        vma_name: None,
        maps: MappingTable::default(),
        unattributed_at_start: 0,
        lesson: LessonState::default(),
        death: None,
        workload_binary,
        own_frames: BTreeMap::new(),
    };
    let walked = walker
        .walk(&mut workload, probes, reader, pacer, reporter)
        .await;
    probes
        .remove_target(pid)
        .context("stop tracing the workload child")?;
    if let Some(path) = &walker.lesson.file {
        // The child made it; it may not have got that far.
        let _ = std::fs::remove_file(path);
    }
    let (startup, died) = walked?;
    let status = match died {
        Some(status) => status,
        None => workload.finish().await?,
    };
    if died.is_none() && !status.success() {
        bail!("the workload child ended badly: {status}");
    }
    let classes = walker.collector.class_totals;
    let summary = Summary {
        scenario: plan.scenario,
        faults_in_region: walker.collector.in_region,
        faults_total: classes.total(),
        minor: classes.minor,
        major: classes.major,
        error: classes.error,
        faults_startup: startup,
        unattributed_faults: walker.collector.session.unattributed_faults()
            - walker.unattributed_at_start,
        lost: probes.dropped()? + reader.malformed(),
        child: ProcessEnd::from(status),
    };
    reporter.summary(&summary)?;
    let region = walker.state.as_ref().map(|(region, _)| region);
    Ok(WalkResult {
        page_offset: region.map_or(0, |region| region.start % region.page_size),
        vma: walker.vma_name,
        steps: walker.digests,
        death: walker.death,
        summary,
    })
}

/// Collects the records of one step: the session resolves every record as it arrives, as it
/// does in a trace, and a step is the slice of its events up to the child's reply.
struct Collector {
    session: Session,
    /// The events since the last step ended.
    events: Vec<TraceEvent>,
    in_region: u64,
    class_totals: ClassCounts,
}

/// What the session made of one step's records.
#[derive(Default)]
struct StepEvents {
    /// The step's faults, in the order their class became known.
    faults: Vec<TracedFault>,
    syscalls: Vec<SyscallCall>,
    signals: Vec<SignalEvent>,
}

impl Collector {
    /// A session for the workload child `pid`. It tracks no region of its own: the walk's one
    /// array is known only when the step that made it has ended.
    fn new(pid: u32) -> Self {
        let regions = RegionTracker::new(false, u64::MAX, ELEMENT_SIZE, procfs::page_size());
        let mut session = Session::new(regions, Box::new(LiveView::default()));
        // The child ran before it entered the target map: what it counted then came before.
        session.add_process(pid, TracedSince::Attach);
        Self {
            session,
            events: Vec::new(),
            in_region: 0,
            class_totals: ClassCounts::default(),
        }
    }

    fn push(&mut self, decoded: Decoded) {
        self.session.handle(decoded, &mut self.events);
    }

    /// Ends the step: the child waits for its next command (or is gone), so its counters as
    /// /proc shows them now settle its last fault.
    fn take_step(&mut self) -> StepEvents {
        self.session.finish(&mut self.events);
        let mut step = StepEvents::default();
        for event in self.events.drain(..) {
            match event {
                TraceEvent::Fault(fault) => step.faults.push(fault),
                TraceEvent::Syscall(call) => step.syscalls.push(call),
                TraceEvent::Signal(signal) => step.signals.push(signal),
                // The walk's region is its own, and the child's forks and exits show in its
                // replies.
                TraceEvent::RegionStarted(_)
                | TraceEvent::RegionEnded(_)
                | TraceEvent::ProcessForked { .. }
                | TraceEvent::ProcessExited { .. } => {}
            }
        }
        step
    }
}

/// The state of one walk between its steps.
struct Walker<'a> {
    plan: &'a WalkPlan,
    pid: u32,
    collector: Collector,
    state: Option<(Region, PageModel)>,
    digests: Vec<StepDigest>,
    vma_name: Option<String>,
    /// The child's mappings at the end of the last step it survived.
    maps: MappingTable,
    /// Unattributed faults of the start-up, before the first step.
    unattributed_at_start: u64,
    /// What a lesson learned in its earlier steps.
    lesson: LessonState,
    /// How the child died, once it has.
    death: Option<DeathDigest>,
    /// demo's own executable, which the workload child runs.
    workload_binary: Arc<str>,
    /// The pages a write gave a frame of their own after they were present (copies on write),
    /// by page: the page model keeps only what first made a page present.
    own_frames: BTreeMap<u64, OwnFrame>,
}

impl Walker<'_> {
    /// The steps, after the child reports it has started. Returns the number of start-up
    /// faults and, if the child died, its status.
    async fn walk(
        &mut self,
        workload: &mut Workload,
        probes: &mut Probes,
        reader: &mut EventReader,
        pacer: &mut impl Pacer,
        reporter: &mut dyn Reporter,
    ) -> anyhow::Result<(u64, Option<ExitStatus>)> {
        let ready = self.await_reply(workload, reader, probes).await?;
        if let Reply::Died(status) = ready {
            bail!("the workload child died while starting: {status}");
        }
        let startup = self.collector.take_step().faults.len() as u64;
        self.unattributed_at_start = self.collector.session.unattributed_faults();
        // The lab's first screen: the whole process before the array exists.
        reporter.started(&procmem::process_vma_usage(self.pid as i32)?)?;
        for (planned, step) in self.plan.steps().into_iter().zip(1u32..) {
            pacer.before_step(step, &planned.action).await?;
            let started_ns = crate::kernel::process::monotonic_ns();
            let mut reply = Reply::Done(None);
            for command in &planned.commands {
                workload.send(command.clone()).await?;
                reply = self.await_reply(workload, reader, probes).await?;
                if let Reply::Died(_) = reply {
                    break;
                }
                self.lesson.learn(command, &reply);
            }
            let span = (started_ns, crate::kernel::process::monotonic_ns());
            let report = self.step_report(step, planned, &reply, span, reporter)?;
            self.record_digest(&report);
            self.lesson.remember(report.region_faults_cost());
            reporter.step(&report)?;
            if let Reply::Died(status) = reply {
                return Ok((startup, Some(status)));
            }
        }
        Ok((startup, None))
    }

    /// Waits for the child's next reply while draining the ring buffer. Every record of the
    /// child's work before the reply was written before the reply, so one last drain after it
    /// makes the step's records exact.
    async fn await_reply(
        &mut self,
        workload: &mut Workload,
        reader: &mut EventReader,
        probes: &mut Probes,
    ) -> anyhow::Result<Reply> {
        let collector = &mut self.collector;
        let reply = loop {
            tokio::select! {
                reply = workload.reply() => break reply?,
                waited = reader.wait() => {
                    waited.context("wait for fault events")?;
                    reader.drain(|record| collector.push(record));
                }
            }
        };
        reader.drain(|record| collector.push(record));
        probes.flush_log();
        Ok(reply)
    }

    fn step_report(
        &mut self,
        step: u32,
        planned: PlannedStep,
        reply: &Reply,
        (started_ns, ended_ns): (u64, u64),
        reporter: &mut dyn Reporter,
    ) -> anyhow::Result<StepReport> {
        let StepEvents {
            mut faults,
            syscalls,
            mut signals,
        } = self.collector.take_step();
        // Signals the child sends (SIGCHLD to the loader when it dies) are the loader's business;
        // the report is about what the child receives.
        signals.retain(|signal| signal.target_tid == self.pid);
        let alive = matches!(reply, Reply::Done(_));

        let mut allocation = None;
        if self.state.is_none() {
            let Reply::Done(Some(detail)) = reply else {
                bail!("the workload did not report the array's address: {reply:?}");
            };
            let (region, facts) = if self.plan.allocator == Allocator::Stack {
                self.stack_region(detail)?
            } else {
                self.allocated(detail, &syscalls)?
            };
            reporter.region(self.plan.scenario, self.plan.allocator, &region)?;
            allocation = Some(facts);
            let pages = PageModel::new(region.page_count() as usize)
                .file_backed(self.plan.allocator == Allocator::File);
            self.state = Some((region, pages));
        }
        let Some((region, pages)) = &mut self.state else {
            bail!("step {step} ran before the array was allocated");
        };

        pages.begin_step();
        // Once the child is gone its maps are too; the last snapshot still names its mappings.
        if alive {
            self.maps = MappingTable::read(self.pid as i32)?;
        }
        let maps = &self.maps;
        for fault in &mut faults {
            fault.place_in(WALK_REGION, region);
        }
        for page in forget_dropped_pages(pages, region, &syscalls) {
            self.own_frames.remove(&page);
        }
        for resolved in faults.iter().filter(|fault| completed(fault)) {
            if let Some(location) = resolved.location() {
                let code = resolved.fault.fault.error_code;
                let before = pages.state(location.page);
                if code.access() == Access::Write
                    && code.present()
                    && matches!(before, Some(PageState::ZeroPage | PageState::Resident))
                {
                    self.own_frames.insert(
                        location.page,
                        OwnFrame {
                            step,
                            index: location.index,
                            from_zero_page: before == Some(PageState::ZeroPage),
                        },
                    );
                }
                pages.apply_at(&location, code.access(), step);
            }
        }
        let kernel = if alive {
            let view = kernel_view(self.pid as i32, region)?;
            if allocation.is_some() {
                pages.adopt_present(&view.resident_pages, &view.zero_pages);
            } else {
                adopt_companions(pages, &view, step);
            }
            Some(view)
        } else {
            None
        };
        let below_stack = self.lesson.stack.map_or(0, |(bottom, _)| {
            faults
                .iter()
                .filter(|fault| {
                    let address = fault.fault.fault.address;
                    address < bottom && address >= region.start
                })
                .count() as u64
        });
        let lesson = self.lesson.facts(
            self.plan.scenario,
            self.pid as i32,
            region,
            kernel.as_ref(),
            below_stack,
        )?;
        let values = match (planned.commands.last(), reply) {
            (Some(command), Reply::Done(Some(detail))) if reads(command) => Some(
                detail
                    .split_whitespace()
                    .map(str::parse)
                    .collect::<Result<Vec<i32>, _>>()
                    .with_context(|| format!("read the values the workload read: {detail}"))?,
            ),
            _ => None,
        };
        if let (Some(facts), true) = (allocation.as_mut(), self.plan.guard_page) {
            let after = region.first_page_base() + region.page_count() * region.page_size;
            facts.guard = Some((after, maps.find(after).is_none()));
        }

        let collector = &mut self.collector;
        collector.in_region += faults.iter().filter(|f| f.region.is_some()).count() as u64;
        for fault in &faults {
            collector.class_totals.add(fault.fault.class);
        }
        let death = match reply {
            Reply::Died(status) => Some(death(status, &faults, &signals)),
            Reply::Done(_) => None,
        };
        Ok(StepReport {
            scenario: self.plan.scenario,
            step,
            pid: self.pid,
            started_ns,
            ended_ns,
            action: planned.action,
            touch: planned
                .touch
                .map(|touch| touch_outcome(touch, region, &faults, pages, maps, &self.own_frames)),
            workload_binary: Arc::clone(&self.workload_binary),
            region: region.clone(),
            faults,
            syscalls,
            signals,
            allocation,
            death,
            pages: pages.clone(),
            kernel,
            values,
            lesson,
        })
    }

    /// The stack lesson's region: the span below the top of [stack] that it may grow into,
    /// from the VMA as it is at the first step.
    fn stack_region(&mut self, detail: &str) -> anyhow::Result<(Region, AllocationFacts)> {
        let sp = crate::walk::workload::protocol::reply_address(detail)?;
        let vma = procmem::named_vma_usage(self.pid as i32, "[stack]")?
            .context("find the workload's [stack] in its smaps")?;
        self.lesson.stack = Some((vma.start, vma.end));
        let region = Region {
            name: "stack".into(),
            start: vma.end - STACK_SPAN,
            len: STACK_SPAN,
            elem_size: ELEMENT_SIZE,
            page_size: procfs::page_size(),
            pages_after: 0,
        };
        Ok((
            region,
            AllocationFacts {
                allocator: Allocator::Stack,
                address_check: AddressCheck::StackPointer { sp },
                guard: None,
            },
        ))
    }

    /// Builds the region from the child's reply and, for mmap, the kernel's own mmap return.
    fn allocated(
        &self,
        detail: &str,
        syscalls: &[SyscallCall],
    ) -> anyhow::Result<(Region, AllocationFacts)> {
        let reported = crate::walk::workload::protocol::reply_address(detail)?;
        let kernel_mmap = syscalls
            .iter()
            .find(|call| {
                call.syscall == Syscall::Mmap && !call.failed() && call.args[1] >= self.plan.bytes
            })
            .map(|call| (call.ret as u64, call.args[1]));
        let mapped_by_child = matches!(self.plan.allocator, Allocator::Mmap | Allocator::File);
        let (start, address_check) = match kernel_mmap {
            Some((kernel, _)) if kernel == reported => (kernel, AddressCheck::Matches),
            Some((kernel, len)) if (kernel..kernel + len).contains(&reported) => (
                reported,
                AddressCheck::Inside {
                    kernel,
                    offset: reported - kernel,
                },
            ),
            // The kernel's word wins: it is what the MMU uses.
            Some((kernel, _)) if mapped_by_child => (kernel, AddressCheck::Differs { kernel }),
            _ => (reported, AddressCheck::NotFromMmap),
        };
        let region = Region {
            name: "arr".into(),
            start,
            len: self.plan.bytes,
            elem_size: ELEMENT_SIZE,
            page_size: procfs::page_size(),
            pages_after: self.plan.pages_after(),
        };
        Ok((
            region,
            AllocationFacts {
                allocator: self.plan.allocator,
                address_check,
                guard: None,
            },
        ))
    }

    fn record_digest(&mut self, report: &StepReport) {
        if let Some(death) = &report.death {
            let address = death.fault.map(|(address, _)| address);
            self.death = Some(DeathDigest {
                signal: death
                    .wait_signal
                    .map(crate::model::signals::signal_name)
                    .unwrap_or_default(),
                si_code: death
                    .generated
                    .map(|signal| crate::model::signals::si_code_name(signal.signal, signal.code)),
                element: report.touch.as_ref().map(|touch| touch.touch.index),
                error_code: death.error_code.map(|code| code.0),
                present: death.error_code.map(|code| code.present()),
                // The maps are those of the last step the child survived.
                vma: address
                    .and_then(|address| self.maps.find(address))
                    .map(|mapping| format!("{} {}", mapping.perms, mapping.name)),
            });
        }
        if let Some(vma) = report.kernel.as_ref().and_then(|k| k.vma.as_ref()) {
            self.vma_name = Some(format!("{} {} KiB {}", vma.name, vma.size_kib, vma.perms));
        }
        self.digests.push(StepDigest {
            action: report.action.clone(),
            faults_in_region: report.faults_in_region().count(),
            element: report.touch.as_ref().map(|touch| touch.touch.index),
            syscalls: report.syscalls.clone(),
            rss_kib: report.kernel.as_ref().map(|kernel| kernel.rss_kib),
        });
    }
}

/// True for the commands whose reply is the values they read.
fn reads(command: &Command) -> bool {
    match command {
        Command::Read { .. } | Command::ReadPages { .. } => true,
        Command::InChild(command) => reads(command),
        _ => false,
    }
}

/// Forgets the pages of `region` that a successful `madvise(MADV_DONTNEED)` or `munmap` took
/// away in the step, and returns them.
fn forget_dropped_pages(
    pages: &mut PageModel,
    region: &Region,
    syscalls: &[SyscallCall],
) -> Vec<u64> {
    let mut dropped_pages = Vec::new();
    for call in syscalls.iter().filter(|call| !call.failed()) {
        let dropped = match call.syscall {
            Syscall::Madvise => call.args[2] == libc::MADV_DONTNEED as u64,
            Syscall::Munmap => true,
            _ => false,
        };
        let base = region.first_page_base();
        let end = base + region.page_count() * region.page_size;
        let (from, to) = (
            call.args[0].max(base),
            (call.args[0] + call.args[1]).min(end),
        );
        if dropped && from < to {
            let first = (from - base) / region.page_size;
            let count = (to - from).div_ceil(region.page_size);
            pages.forget(first, count);
            dropped_pages.extend(first..first + count);
        }
    }
    dropped_pages
}

/// Takes on the pages the kernel mapped beside a fault of `step` without a fault of their own:
/// the rest of a transparent huge page, or file pages fault-around mapped. Any other page the
/// faults do not explain stays unexplained, and the report says the kernel disagrees.
fn adopt_companions(pages: &mut PageModel, view: &KernelView, step: u32) {
    // Only untouched pages are taken, and a huge page's first, so the file's pages left are
    // fault-around's.
    pages.adopt_with_fault(&view.huge_pages, step, Companion::HugePage);
    pages.adopt_with_fault(&view.file_pages, step, Companion::FaultAround);
}

/// Explains a death: the wait status, the kernel's signal record, and the fault before it.
fn death(status: &ExitStatus, faults: &[TracedFault], signals: &[SignalEvent]) -> Death {
    use std::os::unix::process::ExitStatusExt as _;
    let wait_signal = status.signal();
    let failed = faults
        .iter()
        .rev()
        .find(|fault| fault.fault.class == FaultClass::Error);
    Death {
        status: ProcessEnd::from(*status),
        wait_signal,
        generated: signals
            .iter()
            .rev()
            .find(|signal| Some(signal.signal) == wait_signal)
            .copied(),
        fault: failed.map(|fault| (fault.fault.fault.address, fault.location())),
        error_code: failed.map(|fault| fault.fault.fault.error_code),
    }
}

fn kernel_view(pid: i32, region: &Region) -> anyhow::Result<KernelView> {
    // One read of smaps gives the region's VMA and the whole process.
    let process = procmem::process_vma_usage(pid)?;
    let presence = procmem::page_presence(
        pid,
        region.first_page_base(),
        region.page_size,
        region.page_count(),
    )?;
    let pages_where = |keep: &dyn Fn(&procmem::PagePresence) -> bool| -> Vec<u64> {
        (0u64..)
            .zip(&presence)
            .filter(|(_, page)| keep(page))
            .map(|(page, _)| page)
            .collect()
    };
    let resident_pages = pages_where(&|page| page.present && !page.zero);
    Ok(KernelView {
        rss_kib: resident_pages.len() as u64 * region.page_size / 1024,
        resident_pages,
        zero_pages: pages_where(&|page| page.present && page.zero),
        file_pages: pages_where(&|page| page.present && page.file),
        huge_pages: pages_where(&|page| page.present && page.huge),
        frames: presence
            .iter()
            .map(|page| if page.present { page.pfn } else { 0 })
            .collect(),
        vma: procmem::region_vma(&process, region.start, region.start + region.len - 1).cloned(),
        process,
    })
}
