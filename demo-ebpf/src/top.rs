//! `demo top`'s counting: faults per process and per page counted in per-CPU maps, with no
//! event per fault, and the final counters of processes that exit.

use core::{
    ffi::c_void,
    ptr::{read_volatile, write_volatile},
    sync::atomic::{Ordering, compiler_fence},
};

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST, pt_regs},
    helpers::{bpf_get_current_cgroup_id, bpf_probe_read_kernel},
    macros::{map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, LruPerCpuHashMap, PerCpuArray, PerCpuHashMap},
    programs::{RawTracePointContext, TracePointContext},
};
use demo_common::{
    ExitCounts, FaultCounters, PageCounts, PageKey, RecentFaults, TOP_MAX_PAGES, TOP_MAX_PROCESSES,
    TopCounts, fault_tracepoint, process_exit_tracepoint, top_config, top_counters,
    top_flush_result, top_kind,
};

use crate::task::current_task;

/// Not preallocated: an entry is made once per process, and a preallocated per-CPU map of this
/// size takes the kernel tens of milliseconds to free, on whichever CPU its worker runs.
#[map]
static TOP_COUNTS: PerCpuHashMap<u32, TopCounts> =
    PerCpuHashMap::with_max_entries(TOP_MAX_PROCESSES, BPF_F_NO_PREALLOC);

/// Per-CPU, so counting needs no atomic add (the BPF target has none in `core`).
#[map]
static PAGE_COUNTS: LruPerCpuHashMap<PageKey, PageCounts> =
    LruPerCpuHashMap::with_max_entries(TOP_MAX_PAGES, 0);

#[map]
static TOP_EXITS: HashMap<u32, ExitCounts> =
    HashMap::with_max_entries(TOP_MAX_PROCESSES, BPF_F_NO_PREALLOC);

/// Per CPU, the counts of the process that faulted there last. A process faults in runs, so
/// most faults cost a few adds here; the hash lookup in [`TOP_COUNTS`] happens only when another
/// process faults on the CPU, or when `demo top` flushes before it reads.
#[map]
static TOP_RECENT: PerCpuArray<RecentFaults> = PerCpuArray::with_max_entries(1, 0);

#[map]
static TOP_CONFIG: Array<u32> = Array::with_max_entries(top_config::LEN, 0);

#[map]
static TOP_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(top_counters::LEN, 0);

/// What a BPF_NOEXIST insert returns when the key is already there.
const EEXIST_ERROR: i32 = -17;

#[raw_tracepoint(tracepoint = "page_fault_user")]
pub fn top_fault_user(ctx: RawTracePointContext) -> i32 {
    count_fault(&ctx);
    0
}

#[raw_tracepoint(tracepoint = "page_fault_kernel")]
pub fn top_fault_kernel(ctx: RawTracePointContext) -> i32 {
    count_fault(&ctx);
    0
}

/// Never attached: `demo top` runs it on each CPU before it reads the process map. Written out
/// rather than with `#[raw_tracepoint]`, whose wrapper drops the return value, which here tells
/// a flush from a busy entry.
#[unsafe(no_mangle)]
#[unsafe(link_section = "raw_tp")]
pub fn top_flush(_ctx: *mut c_void) -> u32 {
    let flushed = change_recent(|recent| {
        flush_recent(recent);
        recent.tgid = 0;
        recent.counts = TopCounts::default();
    });
    match flushed {
        Some(()) => top_flush_result::FLUSHED,
        None => top_flush_result::BUSY,
    }
}

#[tracepoint]
pub fn top_process_exit(ctx: TracePointContext) -> u32 {
    keep_exit_counters(&ctx);
    0
}

/// Counts one fault of the current process for `demo top`, and its page when it is the
/// process watched with `--pages`.
#[inline(always)]
fn count_fault(ctx: &RawTracePointContext) {
    let tgid = current_task().tgid;
    if tgid == 0 {
        return;
    }
    let counted = change_recent(|recent| {
        if recent.tgid != tgid {
            flush_recent(recent);
            recent.tgid = tgid;
            recent.counts = TopCounts {
                comm: ctx.command().unwrap_or_default(),
                ..TopCounts::default()
            };
        }
        count_into(&mut recent.counts, ctx.arg(fault_tracepoint::ERROR_CODE));
    });
    if counted.is_none() {
        return add_counter(top_counters::NESTED_DROPPED, 1);
    }
    let watched = TOP_CONFIG.get(top_config::PAGES_PID).copied().unwrap_or(0);
    if watched != 0 && watched == tgid {
        let regs: *const pt_regs = ctx.arg(fault_tracepoint::REGS);
        // SAFETY: `bpf_probe_read_kernel` checks the address itself and fails rather than
        // fault; a failed read gives 0, an unknown instruction.
        let ip = unsafe { bpf_probe_read_kernel(&raw const (*regs).rip) }.unwrap_or(0);
        count_page(tgid, ctx.arg(fault_tracepoint::ADDRESS), ip);
    }
}

/// Runs `change` on this CPU's recent counts, unless a program it interrupted is changing them
/// (then `None`). Programs on one CPU do nest: the fault tracepoints fire with interrupts off,
/// so the flush (an IPI) should never land inside a counting program, but a kernel-mode fault
/// inside one, or a fault in an NMI, can run another program on the same CPU halfway through a
/// change. `busy`, set around every change, costs two stores and makes the interrupting
/// program leave the entry alone.
#[inline(always)]
fn change_recent<R>(change: impl FnOnce(&mut RecentFaults) -> R) -> Option<R> {
    let recent = TOP_RECENT.get_ptr_mut(0)?;
    // SAFETY: this CPU's entry of a per-CPU array, valid and aligned for the whole program and
    // written by no other CPU. Of the programs on this CPU, only the one that found `busy` clear
    // and set it changes the entry; the volatile accesses and the fences keep the compiler from
    // moving the change outside the flag, and one that interrupts sees the flag and leaves.
    unsafe {
        if read_volatile(&(*recent).busy) != 0 {
            return None;
        }
        write_volatile(&mut (*recent).busy, 1);
        compiler_fence(Ordering::SeqCst);
        let result = change(&mut *recent);
        compiler_fence(Ordering::SeqCst);
        write_volatile(&mut (*recent).busy, 0);
        Some(result)
    }
}

/// Moves one CPU's recent counts into the process map, after any that failed to move before.
/// Counts that cannot move now wait in the CPU's pending slot; only when that slot already holds
/// another process's are they dropped, and counted. Runs inside [`change_recent`] only.
#[inline(always)]
fn flush_recent(recent: &mut RecentFaults) {
    if recent.pending_tgid != 0 && add_to_process(recent.pending_tgid, &recent.pending) {
        recent.pending_tgid = 0;
        recent.pending = TopCounts::default();
    }
    if recent.tgid == 0 || recent.counts.faults == 0 || add_to_process(recent.tgid, &recent.counts)
    {
        return;
    }
    if recent.pending_tgid == 0 {
        recent.pending_tgid = recent.tgid;
        recent.pending = recent.counts;
    } else if recent.pending_tgid == recent.tgid {
        add_counts(&mut recent.pending, &recent.counts);
    } else {
        add_counter(top_counters::PROCESSES_DROPPED, recent.counts.faults);
    }
}

/// Adds `counts` into `tgid`'s entry, creating it (with its command) on the first flush. False
/// when the entry could not be made (the map is full, or the kernel could not allocate it).
/// Runs inside [`change_recent`] only.
#[inline(always)]
fn add_to_process(tgid: u32, counts: &TopCounts) -> bool {
    let total = match TOP_COUNTS.get_ptr_mut(tgid) {
        Some(total) => total,
        None => match TOP_COUNTS.insert(tgid, *counts, BPF_NOEXIST as u64) {
            Ok(()) => return true,
            // Another CPU created it meanwhile (with zeros for this CPU), which is fine.
            Err(EEXIST_ERROR) => match TOP_COUNTS.get_ptr_mut(tgid) {
                Some(total) => total,
                None => return false,
            },
            Err(_) => return false,
        },
    };
    // SAFETY: this CPU's value of the entry, valid memory for the whole program even if the
    // loader deletes the entry meanwhile (the kernel frees it after an RCU grace period), and
    // written by no other CPU. The only writers on this CPU are the counting programs and the
    // flush, all inside `change_recent`, whose `busy` flag admits one at a time.
    add_counts(unsafe { &mut *total }, counts);
    true
}

#[inline(always)]
fn add_counts(total: &mut TopCounts, counts: &TopCounts) {
    total.faults += counts.faults;
    for (total, counts) in total.by_kind.iter_mut().zip(&counts.by_kind) {
        for (total, count) in total.iter_mut().zip(counts) {
            *total += count;
        }
    }
    total.comm = counts.comm;
}

#[inline(always)]
fn add_counter(index: u32, amount: u64) {
    if let Some(counter) = TOP_COUNTERS.get_ptr_mut(index) {
        // SAFETY: this CPU's slot of a per-CPU array, valid and aligned for the whole program,
        // and written by no other CPU. A counting program that interrupts this one on the CPU
        // (a kernel-mode fault, an NMI) can add to the same counter between the load and the
        // store; one of the two adds is then lost, never an access.
        unsafe { *counter += amount };
    }
}

/// Adds one fault with x86 error code `error_code` to `counts`: the total, and its mode and
/// access. Constant indices, so there is no bounds check for the verifier to follow.
#[inline(always)]
fn count_into(counts: &mut TopCounts, error_code: u64) {
    counts.faults += 1;
    let by_access = if error_code & (1 << 2) != 0 {
        &mut counts.by_kind[top_kind::USER]
    } else {
        &mut counts.by_kind[top_kind::KERNEL]
    };
    let count = if error_code & (1 << 4) != 0 {
        &mut by_access[top_kind::EXEC]
    } else if error_code & (1 << 1) != 0 {
        &mut by_access[top_kind::WRITE]
    } else {
        &mut by_access[top_kind::READ]
    };
    *count += 1;
}

#[inline(always)]
fn count_page(tgid: u32, address: u64, ip: u64) {
    let key = PageKey {
        tgid,
        _padding: 0,
        page: address & !0xfff,
    };
    if let Some(count) = PAGE_COUNTS.get_ptr_mut(key) {
        // SAFETY: this CPU's value of a preallocated LRU entry: valid memory for the whole
        // program even if another CPU's insert evicts and reuses the entry meanwhile (the count
        // then lands in the reused entry), and written by no other CPU. A counting program that
        // interrupts this one on the CPU (a kernel-mode fault, an NMI) can add to the same page
        // between the load and the store; one of the two adds is then lost, never an access.
        unsafe {
            (*count).faults += 1;
            (*count).ip = ip;
        }
    } else if PAGE_COUNTS
        .insert(key, PageCounts { faults: 1, ip }, BPF_NOEXIST as u64)
        .is_ok()
    {
        add_counter(top_counters::PAGES_INSERTED, 1);
    }
}

/// When a process's last thread exits, keeps the process's fault counters (those of its gone
/// threads plus this one's), for `demo top` to read once /proc no longer has them.
#[inline(always)]
fn keep_exit_counters(ctx: &TracePointContext) {
    // SAFETY: `read_at` copies with `bpf_probe_read_kernel`, which fails rather than fault; the
    // offset is the one the loader checked in the tracepoint's format.
    let group_dead = unsafe { ctx.read_at::<u8>(process_exit_tracepoint::GROUP_DEAD) }.unwrap_or(0);
    if group_dead == 0 {
        return;
    }
    let task = current_task();
    let own = task.fault_counters();
    let gone = task.gone_threads_counters();
    let process = ExitCounts {
        counters: FaultCounters {
            minor: own.minor + gone.minor,
            major: own.major + gone.major,
        },
        comm: ctx.command().unwrap_or_default(),
        // SAFETY: a helper without arguments, allowed in tracepoint programs.
        cgroup: unsafe { bpf_get_current_cgroup_id() },
    };
    // A full map (more exits in one interval than it holds) leaves the process's counters
    // unknown, which top shows as such, and counts the loss.
    if TOP_EXITS.insert(task.tgid, process, 0).is_err() {
        add_counter(top_counters::EXITS_DROPPED, 1);
    }
}
