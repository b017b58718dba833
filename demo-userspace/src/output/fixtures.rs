//! Fixed values for the sinks' tests: the seed's region, its faults and steps, a summary; the
//! text report's and the JSON lines' snapshots are built from them.

use demo_common::{FaultSource, Syscall};

use crate::{
    kernel::procmem::VmaUsage,
    kernel::symbols::{Code, EndCause, Stack, StackEnd, StackFrame},
    model::access::{Access, ErrorCode},
    model::classify::{ClassifiedFault, FaultClass},
    model::events::{Fault, FaultTiming, SignalEvent},
    model::pages::{PageModel, PageOrigin},
    model::region::Region,
    model::signals::ProcessEnd,
    model::syscalls::SyscallCall,
    trace::durations::{CpuTime, DurationSummary, FaultDurations},
    trace::session::TracedFault,
    walk::plan::ScenarioName,
    walk::plan::Touch,
    walk::scenario::Summary,
    walk::step_report::{KernelView, StepReport, TouchOutcome, WALK_REGION},
};

/// The code of the workload child's write, as the symbolizer names it.
pub fn code() -> std::sync::Arc<Code> {
    std::sync::Arc::new(Code {
        module: Some("/usr/local/bin/demo".to_owned()),
        symbol: Some("demo::walk::workload::child::State::perform".to_owned()),
        offset: 0x2a,
        file: Some("child.rs".to_owned()),
        line: Some(88),
        inlined: Vec::new(),
        module_offset: Some(0x9_c02a),
    })
}

/// The code of malloc's write of the next chunk's header, as the symbolizer names it in libc.
pub fn int_malloc() -> std::sync::Arc<Code> {
    std::sync::Arc::new(Code {
        module: Some("/usr/lib/x86_64-linux-gnu/libc.so.6".to_owned()),
        symbol: Some("_int_malloc".to_owned()),
        offset: 0xda9,
        file: Some("malloc.c".to_owned()),
        line: Some(4378),
        inlined: Vec::new(),
        module_offset: Some(0xa_4da9),
    })
}

/// A `--call-graph dwarf` stack: the child's write, then a caller in a library without unwind
/// tables, then the copy ends before the next caller.
pub fn unwound_stack() -> Stack {
    let frame = |address, code, no_unwind_info| StackFrame {
        address,
        code,
        no_unwind_info,
    };
    Stack {
        frames: vec![
            frame(0x5555_0000_1000, code(), false),
            frame(0x7f00_0000_2a10, int_malloc(), true),
        ],
        end: Some(StackEnd {
            address: 0x7ffe_0000_2000,
            why: EndCause::Truncated,
        }),
    }
}

pub fn region() -> Region {
    Region::seed_array()
}

/// A minor fault of the child (pid 100) at `address` with the CPU's `error_code`.
pub fn classified(address: u64, error_code: u64) -> ClassifiedFault {
    ClassifiedFault {
        fault: Fault {
            timestamp_ns: 1,
            pid: 100,
            tid: 100,
            address,
            ip: 0x5555_0000_1000,
            error_code: ErrorCode(error_code),
            source: FaultSource::User,
        },
        class: FaultClass::Minor,
        timing: None,
    }
}

pub fn fault(address: u64, error_code: u64, mapping: &str, region: &Region) -> TracedFault {
    let mut fault = TracedFault {
        fault: classified(address, error_code),
        mapping: mapping.into(),
        mapping_offset: 0,
        region: None,
        code: code(),
        stack: None,
        command: None,
    };
    fault.place_in(WALK_REGION, region);
    fault
}

/// `fault`, timed by the kernel: `duration_ns` from its start to its completion, `off_cpu_ns`
/// of it off the CPU, the rest on it.
pub fn timed(mut fault: TracedFault, duration_ns: u64, off_cpu_ns: u64) -> TracedFault {
    fault.fault.timing = Some(FaultTiming {
        duration_ns,
        off_cpu_ns: Some(off_cpu_ns),
        reclaim_ns: 0,
        compaction_ns: 0,
    });
    fault
}

/// The durations a trace's summary makes of `faults`, for a command that used `cpu_ns` of
/// CPU time (a third of it in the kernel) in a trace of `wall_ns`.
pub fn durations_of(faults: &[TracedFault], cpu_ns: u64, wall_ns: u64) -> DurationSummary {
    let mut durations = FaultDurations::default();
    for fault in faults {
        durations.record(fault);
    }
    durations.summary(
        CpuTime::Command {
            user_ns: cpu_ns - cpu_ns / 3,
            system_ns: cpu_ns / 3,
        },
        wall_ns,
    )
}

pub fn vma(start: u64, size_kib: u64, rss_kib: u64) -> VmaUsage {
    VmaUsage {
        start,
        end: start + size_kib * 1024,
        size_kib,
        rss_kib,
        dirty_kib: rss_kib,
        private_dirty_kib: rss_kib,
        anonymous_kib: rss_kib,
        perms: "rw-p".to_owned(),
        name: "[anon]".to_owned(),
        ..VmaUsage::default()
    }
}

pub fn step(number: u32, action: &str, pages: PageModel, kernel: KernelView) -> StepReport {
    StepReport {
        scenario: ScenarioName::Mmap,
        step: number,
        pid: 100,
        workload_binary: "/usr/local/bin/demo".into(),
        started_ns: u64::from(number) * 1_000_000,
        ended_ns: u64::from(number) * 1_000_000 + 500_000,
        action: action.to_owned(),
        region: region(),
        faults: Vec::new(),
        syscalls: Vec::new(),
        signals: Vec::new(),
        allocation: None,
        touch: None,
        death: None,
        pages,
        kernel: Some(kernel),
        values: None,
        lesson: None,
    }
}

pub fn summary(in_region: u64, total: u64, lost: u64) -> Summary {
    Summary {
        scenario: ScenarioName::Mmap,
        faults_in_region: in_region,
        faults_total: total,
        minor: total,
        major: 0,
        error: 0,
        faults_startup: 150,
        unattributed_faults: 0,
        lost,
        child: ProcessEnd::Exited(0),
    }
}

/// Five pages, of which page 1 was written by arr[1500] in step 2.
pub fn page_1_written_in_step_2() -> (PageModel, PageOrigin) {
    let mut pages = PageModel::new(5);
    let origin = PageOrigin::Fault {
        step: 2,
        offset: 6000,
        index: 1500,
    };
    pages.apply_fault(1, Access::Write, origin);
    (pages, origin)
}

/// The seed's mmap of 20000 bytes, which returned `region`'s address.
pub fn mmap_call(region: &Region) -> SyscallCall {
    SyscallCall {
        pid: 100,
        tid: 100,
        syscall: Syscall::Mmap,
        args: [0, 20000, 3, 0x22, u64::MAX, 0],
        ret: region.start as i64,
        timestamp_ns: 1,
        duration_ns: 0,
    }
}

/// The SIGSEGV with SEGV_MAPERR the kernel sends the child (pid 100).
pub fn segv() -> SignalEvent {
    SignalEvent {
        timestamp_ns: 2,
        pid: 100,
        tid: 100,
        target_tid: 100,
        signal: libc::SIGSEGV,
        code: 1,
        errno: 0,
        result: 0,
    }
}

/// A write of `arr[index]` in the `[anon]` array, which faulted or was already present since
/// `resident_since`.
pub fn write_touch(
    region: &Region,
    index: i64,
    faulted: bool,
    resident_since: Option<PageOrigin>,
) -> TouchOutcome {
    TouchOutcome {
        touch: Touch {
            index,
            access: Access::Write,
        },
        location: region.locate(region.start + index as u64 * region.elem_size),
        faulted,
        mapping: "[anon]".to_owned(),
        resident_since,
        own_frame_since: None,
    }
}
