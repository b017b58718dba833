//! Fault durations: a traced fault is opened at its start, timed off the CPU and in reclaim or
//! compaction while it runs, and closed by the software perf event the kernel fires when it
//! completes (`mm_account_fault()`), which sends a [`FaultEndRecord`] with its class.

use core::ptr::read_volatile;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::{map, perf_event, raw_tracepoint},
    maps::{Array, LruHashMap, PerCpuArray},
    programs::{PerfEventContext, RawTracePointContext},
};
use demo_common::{
    CompletedClass, FaultEndRecord, MAX_OPEN_FAULTS, OFF_CPU_SLOTS, OFF_CPU_UNKNOWN, OpenFault,
    RecordKind, sched_switch_tracepoint,
};

use crate::{
    records::{count_lost, header, reserve, wakeup_flag},
    task::{current_task, tid_of},
};

/// 1 when the loader asked for durations, else 0; read-only data, so the verifier drops the
/// branch not taken and a trace without durations pays nothing for them.
#[unsafe(no_mangle)]
static DURATIONS: u32 = 0;

/// Per traced thread, its open fault (see [`OpenFault`]). Only a fault program inserts, in the
/// thread's own context; the others only look up and write in place.
#[map]
static OPEN_FAULTS: LruHashMap<u32, OpenFault> = LruHashMap::with_max_entries(MAX_OPEN_FAULTS, 0);

/// Per CPU, the traced thread running there inside a fault (0 for none): set when a fault
/// starts or its thread comes back to the CPU, cleared when it completes or its thread leaves.
/// `sched_switch` looks up the leaving thread's fault only when it is this one, so a switch of
/// any other thread costs one per-CPU load here.
#[map]
static IN_FAULT_HERE: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// A filter in front of [`OPEN_FAULTS`] for the thread arriving on a CPU: slot `tid %
/// OFF_CPU_SLOTS` counts the traced threads with those low bits that are off the CPU inside a
/// fault, so a switch to any other thread costs one array load, and a lookup happens only on a
/// hit. The BPF instruction set this build targets has no atomic add, so two such threads
/// leaving two CPUs at the same instant can lose a count; their return is then missed, which
/// the completion sees (the fault is still marked off the CPU) and counts.
#[map]
static OFF_CPU: Array<u32> = Array::with_max_entries(OFF_CPU_SLOTS, 0);

/// The [`OFF_CPU`] count of `tid`'s slot, to read or change.
#[inline(always)]
fn off_cpu_slot(tid: u32) -> Option<*mut u32> {
    OFF_CPU.get_ptr_mut(tid % OFF_CPU_SLOTS)
}

/// Notes that `tid` runs in a fault on this CPU (0: none does).
#[inline(always)]
fn set_in_fault_here(tid: u32) {
    if let Some(slot) = IN_FAULT_HERE.get_ptr_mut(0) {
        // SAFETY: this CPU's slot of a per-CPU array, valid for the whole program, written only
        // by programs on this CPU; a nested program (a kernel-mode fault's) writes the same
        // thread's id or 0 for a fault that completed.
        unsafe { *slot = tid };
    }
}

/// The traced thread that runs in a fault on this CPU, 0 for none.
#[inline(always)]
fn in_fault_here() -> u32 {
    // SAFETY: as in `set_in_fault_here`.
    IN_FAULT_HERE
        .get_ptr(0)
        .map_or(0, |slot| unsafe { read_volatile(slot) })
}

/// True when durations are on.
#[inline(always)]
pub(crate) fn durations_on() -> bool {
    // SAFETY: a plain load of a global; volatile so that the compiler keeps the load for the
    // verifier to decide, instead of folding the placeholder 0.
    unsafe { read_volatile(&DURATIONS) != 0 }
}

/// Opens the fault of traced thread `tid` that began at `start_ns` (its record's timestamp).
/// A fault still open here never completed (it failed); the new one replaces it.
#[inline(always)]
pub(crate) fn open_fault(tgid: u32, tid: u32, start_ns: u64, address: u64) {
    if !durations_on() {
        return;
    }
    let fresh = OpenFault {
        start_ns,
        address,
        ..OpenFault::default()
    };
    set_in_fault_here(tid);
    match OPEN_FAULTS.get_ptr_mut(tid) {
        // SAFETY: an entry of a hash map stays valid memory for the whole program even if it is
        // evicted meanwhile (it is freed after an RCU grace period). Only programs running in
        // this thread's context write it (this one, the completion, reclaim and compaction), or
        // `sched_switch` while the thread is switched out or in, which it is not now.
        Some(open) => unsafe { *open = fresh },
        None => {
            if OPEN_FAULTS.insert(tid, fresh, 0).is_err() {
                // The completion will find nothing to close: its record is lost, and counted.
                count_lost(RecordKind::FaultEnd, tgid);
            }
        }
    }
}

/// Forgets the open fault of thread `tid`, which exits.
#[inline(always)]
pub(crate) fn forget_thread(tid: u32) {
    if durations_on() {
        let _ = OPEN_FAULTS.remove(tid);
    }
}

/// The open fault of thread `tid`, if it has one under way.
#[inline(always)]
fn open_of(tid: u32) -> Option<&'static mut OpenFault> {
    let open = OPEN_FAULTS.get_ptr_mut(tid)?;
    // SAFETY: see `open_fault`: valid for the program, and written only in the thread's own
    // context or while it is off the CPU, never by two programs at once.
    let open = unsafe { &mut *open };
    (open.start_ns != 0).then_some(open)
}

/// The completion programs, one per software event, which differ only in the class they send.
macro_rules! completion_programs {
    ($($name:ident => $class:expr),+ $(,)?) => {
        $(
            #[perf_event]
            pub fn $name(ctx: PerfEventContext) -> u32 {
                close_fault(&ctx, $class);
                0
            }
        )+
    };
}

completion_programs! {
    fault_done_minor => CompletedClass::Minor,
    fault_done_major => CompletedClass::Major,
}

/// Sends the end of the current thread's open fault, which the kernel just accounted as
/// `class`. The events are opened on traced processes only, and a thread with no open fault
/// (its start was not seen) sends nothing.
#[inline(always)]
fn close_fault(ctx: &PerfEventContext, class: CompletedClass) {
    let task = current_task();
    let Some(open) = open_of(task.tid) else {
        return;
    };
    // SAFETY: the kernel passes a valid bpf_perf_event_data.
    let data = unsafe { &*ctx.ctx };
    if open.off_since != 0 {
        // The thread runs, so it came back to the CPU, but the filter missed it: the time since
        // it left is not known to be off the CPU. The split says so; the duration stands.
        open.off_since = 0;
        open.off_cpu_ns = OFF_CPU_UNKNOWN;
    }
    let end = FaultEndRecord {
        header: header(task, RecordKind::FaultEnd, class as u32),
        start_ns: open.start_ns,
        address: data.addr,
        off_cpu_ns: open.off_cpu_ns,
        reclaim_ns: open.reclaim_ns,
        compaction_ns: open.compaction_ns,
    };
    open.start_ns = 0;
    set_in_fault_here(0);
    let Some(mut entry) = reserve::<FaultEndRecord, _>(ctx, RecordKind::FaultEnd, task.tgid) else {
        return;
    };
    entry.write(end);
    entry.submit(wakeup_flag());
}

/// On every context switch of every process: a traced thread that leaves the CPU inside a
/// fault starts its off-CPU time, and one that comes back ends it (outside reclaim and
/// compaction, which are timed whole). Any other switch costs a per-CPU load and a global load, and a
/// lookup of the arriving thread only while some traced fault waits off the CPU.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn fault_sched_switch(ctx: RawTracePointContext) -> i32 {
    // The tracepoint fires before the switch, in the task that leaves: the current one.
    let here = in_fault_here();
    if here != 0 && here == bpf_get_current_pid_tgid() as u32 {
        set_in_fault_here(0);
        // Marked even inside reclaim or compaction, so that its return is seen and the fault
        // is followed again; the time off the CPU inside a stall is the stall's.
        if let Some(open) = open_of(here)
            && open.off_since == 0
        {
            // SAFETY: the helper has no preconditions.
            open.off_since = unsafe { bpf_ktime_get_ns() };
            if let Some(slot) = off_cpu_slot(here) {
                // SAFETY: an array element, valid and aligned for the whole program; see
                // `OFF_CPU` for what a concurrent change of the same slot can lose.
                unsafe { *slot = (*slot).saturating_add(1) };
            }
        }
    }
    let next_tid = tid_of(ctx.arg(sched_switch_tracepoint::NEXT));
    let Some(slot) = off_cpu_slot(next_tid) else {
        return 0;
    };
    // SAFETY: as above.
    if unsafe { read_volatile(slot) } == 0 {
        return 0;
    }
    if let Some(open) = open_of(next_tid)
        && open.off_since != 0
    {
        // SAFETY: the helper has no preconditions.
        let now = unsafe { bpf_ktime_get_ns() };
        // A stall begins and ends on the CPU, so one under way now was under way when the
        // thread left: the whole time away is inside it, and counted there.
        if open.reclaim_since == 0 && open.compaction_since == 0 {
            open.off_cpu_ns += now.saturating_sub(open.off_since);
        }
        open.off_since = 0;
        // SAFETY: as above.
        unsafe { *slot = (*slot).saturating_sub(1) };
        set_in_fault_here(next_tid);
    }
    0
}

/// Which stall of a fault a begin or end program times.
#[derive(Clone, Copy)]
enum Stall {
    Reclaim,
    Compaction,
}

/// The begin and end programs of direct reclaim (global and memory cgroup) and compaction.
/// They fire in the allocating task, so a traced thread's open fault is the one stalled.
macro_rules! stall_programs {
    ($($name:ident => $stall:expr, $begin:literal),+ $(,)?) => {
        $(
            #[raw_tracepoint]
            pub fn $name(_ctx: RawTracePointContext) -> i32 {
                if durations_on() {
                    time_stall($stall, $begin);
                }
                0
            }
        )+
    };
}

stall_programs! {
    reclaim_begin => Stall::Reclaim, true,
    reclaim_end => Stall::Reclaim, false,
    memcg_reclaim_begin => Stall::Reclaim, true,
    memcg_reclaim_end => Stall::Reclaim, false,
    compaction_begin => Stall::Compaction, true,
    compaction_end => Stall::Compaction, false,
}

/// Starts (`begin`) or ends a stall of the current thread's open fault.
#[inline(always)]
fn time_stall(stall: Stall, begin: bool) {
    let Some(open) = open_of(bpf_get_current_pid_tgid() as u32) else {
        return;
    };
    // SAFETY: the helper has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let (since, total) = match stall {
        Stall::Reclaim => (&mut open.reclaim_since, &mut open.reclaim_ns),
        Stall::Compaction => (&mut open.compaction_since, &mut open.compaction_ns),
    };
    if begin {
        *since = now;
    } else if *since != 0 {
        *total += now.saturating_sub(*since);
        *since = 0;
    }
}
