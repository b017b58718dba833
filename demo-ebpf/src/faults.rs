//! The fault programs of `demo trace`: a record per fault of a traced process, from the
//! `exceptions:page_fault_*` raw tracepoints or, where they do not exist, the PAGE_FAULTS perf
//! event.

use core::ptr::read_volatile;

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{bpf_probe_read_kernel, bpf_task_pt_regs},
    macros::{perf_event, raw_tracepoint},
    programs::{PerfEventContext, RawTracePointContext},
};
use demo_common::{ERROR_CODE_UNKNOWN, FaultRecord, FaultSource, RecordKind, fault_tracepoint};

use crate::{
    durations::open_fault,
    records::{header, reported, reserve, wakeup_flag},
    stacks::{record_fault_stack, walking_stack},
    task::current_task,
    user_stack::{record_fault_user_stack, stack_bytes},
};

/// How many user-stack frames to capture per fault; 0 (no stacks) unless the loader sets it
/// before loading. Read-only data is frozen, so the verifier knows the value and drops the
/// branch not taken.
#[unsafe(no_mangle)]
static STACK_DEPTH: u32 = 0;

/// A raw tracepoint: the arguments come straight from the call site, with none of a classic
/// tracepoint's record building, which matters at one call per fault on every process. The
/// loader checks their order against the kernel's BTF before it attaches.
#[raw_tracepoint(tracepoint = "page_fault_user")]
pub fn page_fault_user(ctx: RawTracePointContext) -> i32 {
    record_fault(&ctx, FaultSource::User);
    0
}

#[raw_tracepoint(tracepoint = "page_fault_kernel")]
pub fn page_fault_kernel(ctx: RawTracePointContext) -> i32 {
    record_fault(&ctx, FaultSource::Kernel);
    0
}

/// Attached to PERF_COUNT_SW_PAGE_FAULTS, which fires at the start of every user-address fault;
/// the fallback where the exceptions tracepoints do not exist.
#[perf_event]
pub fn page_fault_perf(ctx: PerfEventContext) -> u32 {
    record_perf_fault(&ctx);
    0
}

/// Copies one fault of a traced process into the ring buffer, or counts it as dropped. The
/// arguments are read at the positions [`fault_tracepoint`] names.
#[inline(always)]
fn record_fault(ctx: &RawTracePointContext, source: FaultSource) {
    // SAFETY: a plain load of a global; volatile so that the compiler keeps the load for the
    // verifier to decide, instead of folding the placeholder 0.
    let depth = unsafe { read_volatile(&STACK_DEPTH) };
    // Bytes of user stack to copy (`--call-graph dwarf`); when set, it takes the place of the
    // frame-pointer walk.
    let stack_bytes = stack_bytes();
    if (depth != 0 || stack_bytes != 0) && source == FaultSource::Kernel && walking_stack() {
        return;
    }
    let task = current_task();
    if !reported(ctx, task) {
        return;
    }
    let ip = match source {
        // A fault from user mode saved the user registers where every entry from user mode
        // does, which the kernel's typed helper points at: a plain load, no copy.
        // SAFETY: the helper returns the current task's user registers, valid for the program.
        FaultSource::User => unsafe {
            (*(bpf_task_pt_regs(task.task.cast_mut().cast()) as *const pt_regs)).rip
        },
        _ => {
            let regs: *const pt_regs = ctx.arg(fault_tracepoint::REGS);
            // SAFETY: `bpf_probe_read_kernel` checks the address itself and fails rather than
            // fault; a failed read gives 0.
            unsafe { bpf_probe_read_kernel(&raw const (*regs).rip) }.unwrap_or(0)
        }
    };
    let fault = FaultRecord {
        header: header(task, RecordKind::Fault, source as u32),
        address: ctx.arg(fault_tracepoint::ADDRESS),
        ip,
        error_code: ctx.arg(fault_tracepoint::ERROR_CODE),
    };
    open_fault(
        task.tgid,
        task.tid,
        fault.header.timestamp_ns,
        fault.address,
    );
    if stack_bytes != 0 {
        record_fault_user_stack(ctx, fault, task, stack_bytes);
        return;
    }
    if depth != 0 {
        record_fault_stack(ctx, fault, depth, source as u32 & 1);
        return;
    }
    let Some(mut entry) = reserve::<FaultRecord, _>(ctx, RecordKind::Fault, task.tgid) else {
        return;
    };
    entry.write(fault);
    entry.submit(wakeup_flag());
}

/// Reports a fault from the PAGE_FAULTS perf event. The sample carries the address and the
/// faulting registers, but not the CPU's error code (the exception entry sets `orig_rax` to -1),
/// so only the mode is known: from the code segment's privilege level.
#[inline(always)]
fn record_perf_fault(ctx: &PerfEventContext) {
    let task = current_task();
    if !reported(ctx, task) {
        return;
    }
    // SAFETY: the kernel passes a valid bpf_perf_event_data.
    let data = unsafe { &*ctx.ctx };
    let fault = FaultRecord {
        header: header(task, RecordKind::Fault, FaultSource::Perf as u32),
        address: data.addr,
        ip: data.regs.rip,
        error_code: ERROR_CODE_UNKNOWN | if data.regs.cs & 3 == 3 { 1 << 2 } else { 0 },
    };
    // Opened whether or not its record finds room: a fault left open from before (one that
    // failed) must not take this one's completion.
    open_fault(
        task.tgid,
        task.tid,
        fault.header.timestamp_ns,
        fault.address,
    );
    let Some(mut entry) = reserve::<FaultRecord, _>(ctx, RecordKind::Fault, task.tgid) else {
        return;
    };
    entry.write(fault);
    entry.submit(wakeup_flag());
}
