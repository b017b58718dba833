//! `demo top`'s counting: faults per process and per page counted in per-CPU maps, with no
//! event per fault, and the final counters of processes that exit; with durations, each fault
//! timed from its start to the software perf event of its completion, into per-process
//! histograms kept the same way.

use core::{
    ffi::c_void,
    ptr::{read_volatile, write_volatile},
    sync::atomic::{Ordering, compiler_fence},
};

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST, pt_regs},
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_ktime_get_ns,
        bpf_probe_read_kernel,
    },
    macros::{map, perf_event, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArray, PerCpuHashMap},
    programs::{PerfEventContext, RawTracePointContext, TracePointContext},
};
use demo_common::{
    CompletedClass, ExitCounts, FaultCounters, PageCounts, PageKey, Recent, RecentFaults,
    RecentTimes, TOP_MAX_PAGES, TOP_MAX_PROCESSES, TOP_MAX_THREADS, TopCounts, TopTimes,
    fault_tracepoint, process_exit_tracepoint, top_config, top_counters, top_flush_result,
    top_kind, top_time,
};

use crate::{cgroup::in_scope, task::current_task};

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

/// 1 when the loader asked for durations, else 0; read-only data, so the verifier drops the
/// timing from the fault programs when it is off, and top without durations pays nothing.
#[unsafe(no_mangle)]
static TOP_DURATIONS: u32 = 0;

/// Per thread, when its fault under way began, 0 when none is. A thread's first fault inserts
/// its entry (preallocated, so the insert allocates nothing); every later one writes it in
/// place. Per thread, not per CPU: a major fault sleeps, and meanwhile other threads fault on
/// its CPU. Entries of exited threads are removed; the LRU evicts what is left of the rest.
#[map]
static TOP_FAULT_STARTS: LruHashMap<u32, u64> = LruHashMap::with_max_entries(TOP_MAX_THREADS, 0);

/// Per-CPU, like [`TOP_COUNTS`], the timed faults of each process.
#[map]
static TOP_TIMES: PerCpuHashMap<u32, TopTimes> =
    PerCpuHashMap::with_max_entries(TOP_MAX_PROCESSES, BPF_F_NO_PREALLOC);

/// Per CPU, the timed faults of the process that completed a fault there last, moved into
/// [`TOP_TIMES`] as [`TOP_RECENT`] moves into [`TOP_COUNTS`].
#[map]
static TOP_RECENT_TIMES: PerCpuArray<RecentTimes> = PerCpuArray::with_max_entries(1, 0);

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

/// On PAGE_FAULTS_MIN, which the kernel fires in the faulting thread as a fault completes.
#[perf_event]
pub fn top_fault_done_minor(_ctx: PerfEventContext) -> u32 {
    time_fault(CompletedClass::Minor);
    0
}

/// On PAGE_FAULTS_MAJ, likewise.
#[perf_event]
pub fn top_fault_done_major(_ctx: PerfEventContext) -> u32 {
    time_fault(CompletedClass::Major);
    0
}

/// Never attached: `demo top` runs it on each CPU before it reads the process map. Written out
/// rather than with `#[raw_tracepoint]`, whose wrapper drops the return value, which here tells
/// a flush from a busy entry.
#[unsafe(no_mangle)]
#[unsafe(link_section = "raw_tp")]
pub fn top_flush(_ctx: *mut c_void) -> u32 {
    let flushed = change_recent(&TOP_RECENT, |recent| {
        flush_recent(recent, &TOP_COUNTS);
        recent.tgid = 0;
        recent.counts = TopCounts::default();
    });
    // A busy entry of either kind makes the loader run the flush again, which moves nothing
    // twice: a flushed entry is empty.
    let timed = if durations_on() {
        change_recent(&TOP_RECENT_TIMES, |recent| {
            flush_recent(recent, &TOP_TIMES);
            recent.tgid = 0;
            recent.counts = TopTimes::default();
        })
    } else {
        Some(())
    };
    match (flushed, timed) {
        (Some(()), Some(())) => top_flush_result::FLUSHED,
        _ => top_flush_result::BUSY,
    }
}

#[tracepoint]
pub fn top_process_exit(ctx: TracePointContext) -> u32 {
    keep_exit_counters(&ctx);
    0
}

/// Counts one fault of the current process for `demo top`, and its page when it is the
/// process watched with `--pages`. Under a cgroup scope, a fault outside it costs one helper
/// call and counts nothing.
#[inline(always)]
fn count_fault(ctx: &RawTracePointContext) {
    if !in_scope() {
        return;
    }
    // Read first, so that the counting below is part of the fault's time, as it is of the
    // fault handler's; without durations the verifier drops the read.
    let start_ns = if durations_on() {
        // SAFETY: the helper has no preconditions.
        unsafe { bpf_ktime_get_ns() }
    } else {
        0
    };
    let task = current_task();
    let tgid = task.tgid;
    if tgid == 0 {
        return;
    }
    let counted = change_recent(&TOP_RECENT, |recent| {
        if recent.tgid != tgid {
            flush_recent(recent, &TOP_COUNTS);
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
    if durations_on() {
        open_fault(task.tid, start_ns);
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
fn change_recent<T, R>(
    map: &PerCpuArray<Recent<T>>,
    change: impl FnOnce(&mut Recent<T>) -> R,
) -> Option<R> {
    let recent = map.get_ptr_mut(0)?;
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

/// What a CPU's recent entry counts: fault counts, or fault durations.
trait Tally: Copy + Default {
    /// The [`top_counters`] index that counts the faults dropped when a move fails twice.
    const DROPPED: u32;
    /// The faults these counts hold.
    fn faults(&self) -> u64;
    fn add(&mut self, other: &Self);
}

impl Tally for TopCounts {
    const DROPPED: u32 = top_counters::PROCESSES_DROPPED;

    #[inline(always)]
    fn faults(&self) -> u64 {
        self.faults
    }

    #[inline(always)]
    fn add(&mut self, counts: &Self) {
        self.faults += counts.faults;
        for (total, counts) in self.by_kind.iter_mut().zip(&counts.by_kind) {
            for (total, count) in total.iter_mut().zip(counts) {
                *total += count;
            }
        }
        self.comm = counts.comm;
    }
}

impl Tally for TopTimes {
    const DROPPED: u32 = top_counters::TIMES_DROPPED;

    #[inline(always)]
    fn faults(&self) -> u64 {
        self.timed()
    }

    #[inline(always)]
    fn add(&mut self, times: &Self) {
        TopTimes::add(self, times);
    }
}

/// Moves one CPU's recent counts into the process map, after any that failed to move before.
/// Counts that cannot move now wait in the CPU's pending slot; only when that slot already holds
/// another process's are they dropped, and counted. Runs inside [`change_recent`] only.
#[inline(always)]
fn flush_recent<T: Tally>(recent: &mut Recent<T>, processes: &PerCpuHashMap<u32, T>) {
    if recent.pending_tgid != 0 && add_to_process(processes, recent.pending_tgid, &recent.pending) {
        recent.pending_tgid = 0;
        recent.pending = T::default();
    }
    if recent.tgid == 0
        || recent.counts.faults() == 0
        || add_to_process(processes, recent.tgid, &recent.counts)
    {
        return;
    }
    if recent.pending_tgid == 0 {
        recent.pending_tgid = recent.tgid;
        recent.pending = recent.counts;
    } else if recent.pending_tgid == recent.tgid {
        recent.pending.add(&recent.counts);
    } else {
        add_counter(T::DROPPED, recent.counts.faults());
    }
}

/// Adds `counts` into `tgid`'s entry, creating it (with its command) on the first flush. False
/// when the entry could not be made (the map is full, or the kernel could not allocate it).
/// Runs inside [`change_recent`] only.
#[inline(always)]
fn add_to_process<T: Tally>(processes: &PerCpuHashMap<u32, T>, tgid: u32, counts: &T) -> bool {
    let total = match processes.get_ptr_mut(tgid) {
        Some(total) => total,
        None => match processes.insert(tgid, counts, BPF_NOEXIST as u64) {
            Ok(()) => return true,
            // Another CPU created it meanwhile (with zeros for this CPU), which is fine.
            Err(EEXIST_ERROR) => match processes.get_ptr_mut(tgid) {
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
    unsafe { &mut *total }.add(counts);
    true
}

/// True when durations are on.
#[inline(always)]
fn durations_on() -> bool {
    // SAFETY: a plain load of a global; volatile so that the compiler keeps the load for the
    // verifier to decide, instead of folding the placeholder 0.
    unsafe { read_volatile(&TOP_DURATIONS) != 0 }
}

/// Notes that thread `tid`'s fault began at `start_ns`. A start still there never completed
/// (the fault failed); this one replaces it.
#[inline(always)]
fn open_fault(tid: u32, start_ns: u64) {
    match TOP_FAULT_STARTS.get_ptr_mut(tid) {
        // SAFETY: an entry of a hash map stays valid memory for the whole program even if it is
        // evicted meanwhile (it is freed after an RCU grace period). Only programs running in
        // this thread's context write it: this one at a fault's start, the completion at its
        // end, and the exit program; a thread runs one of them at a time.
        Some(start) => unsafe { *start = start_ns },
        None => {
            if TOP_FAULT_STARTS.insert(tid, start_ns, 0).is_err() {
                add_counter(top_counters::TIMES_DROPPED, 1);
            }
        }
    }
}

/// Times the current thread's fault, which the kernel just accounted as `class`, into its
/// process's recent durations on this CPU. A thread with no start noted (its fault began before
/// demo top, or inside another counting program) is not timed.
#[inline(always)]
fn time_fault(class: CompletedClass) {
    if !durations_on() {
        return;
    }
    // SAFETY: the helper has no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    let ids = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((ids >> 32) as u32, ids as u32);
    let Some(start) = TOP_FAULT_STARTS.get_ptr_mut(tid) else {
        return;
    };
    // SAFETY: see `open_fault`: valid for the program, written only in this thread's context.
    let start_ns = unsafe { core::mem::replace(&mut *start, 0) };
    if start_ns == 0 {
        return;
    }
    let ns = now.saturating_sub(start_ns);
    let class = class as usize;
    let bucket = top_time::bucket_of(ns);
    let timed = change_recent(&TOP_RECENT_TIMES, |recent| {
        if recent.tgid != tgid {
            flush_recent(recent, &TOP_TIMES);
            recent.tgid = tgid;
            recent.counts = TopTimes::default();
        }
        let times = &mut recent.counts;
        if let (Some(faults), Some(total_ns), Some(buckets)) = (
            times.faults.get_mut(class),
            times.total_ns.get_mut(class),
            times.buckets.get_mut(class),
        ) {
            *faults += 1;
            *total_ns += ns;
            if let Some(count) = buckets.get_mut(bucket) {
                *count += 1;
            }
        }
    });
    if timed.is_none() {
        add_counter(top_counters::TIMES_DROPPED, 1);
    }
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
/// threads plus this one's), for `demo top` to read once /proc no longer has them; under a
/// cgroup scope, only for a process in the cgroup.
#[inline(always)]
fn keep_exit_counters(ctx: &TracePointContext) {
    // SAFETY: `read_at` copies with `bpf_probe_read_kernel`, which fails rather than fault; the
    // offset is the one the loader checked in the tracepoint's format.
    let group_dead = unsafe { ctx.read_at::<u8>(process_exit_tracepoint::GROUP_DEAD) }.unwrap_or(0);
    let task = current_task();
    if durations_on() {
        let _ = TOP_FAULT_STARTS.remove(task.tid);
    }
    // Under a cgroup scope, the exits of processes outside it would only fill the map.
    if group_dead == 0 || !in_scope() {
        return;
    }
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
