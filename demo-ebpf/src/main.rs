//! eBPF programs of demo: one small function per tracepoint, all feeding the same ring buffer.
#![no_std]
#![no_main]

use core::{
    ffi::c_void,
    ptr::{read_volatile, write_volatile},
    sync::atomic::{Ordering, compiler_fence},
};

use aya_ebpf::{
    EbpfContext,
    bindings::pt_regs,
    bindings::{
        BPF_F_NO_PREALLOC, BPF_F_USER_STACK, BPF_NOEXIST, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP,
    },
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_task_btf, bpf_get_stack, bpf_ktime_get_ns,
        bpf_probe_read_kernel, bpf_task_pt_regs,
    },
    macros::{map, perf_event, raw_tracepoint, tracepoint, uprobe, uretprobe},
    maps::{Array, HashMap, LruPerCpuHashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{
        PerfEventContext, ProbeContext, RawTracePointContext, RetProbeContext, TracePointContext,
    },
};
use aya_log_ebpf::debug;
use demo_common::{
    DEFAULT_RING_BYTES, DROP_SLOTS, ERROR_CODE_UNKNOWN, FaultCounters, FaultRecord, FaultSource,
    FaultStackRecord, HeapFunction, HeapRecord, MAX_STACK_DEPTH, MAX_TARGETS, ProcessRecord,
    RecordHeader, RecordKind, SignalRecord, Syscall, SyscallRecord, TaskLayout,
    UNTRACED_CHILD_SLOT, WAKEUP_THRESHOLD_BYTES, new_task_tracepoint, process_exit_tracepoint,
    signal_tracepoint, syscall_tracepoint, target_flags,
};
use demo_common::{
    ExitCounts, PageKey, RecentFaults, TOP_MAX_PAGES, TOP_MAX_PROCESSES, TopCounts, top_config,
    top_counters, top_flush_result, top_kind,
};

#[map]
static TARGETS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_TARGETS, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROP_SLOTS, 0);

/// Per CPU, where a fault's record and user stack are put together before they are copied
/// into [`EVENTS`] only as long as the frames captured: one slot per fault program, so a
/// kernel-mode fault taken while the user-mode program reads the stack cannot overwrite it.
#[map]
static STACK_SCRATCH: PerCpuArray<FaultStackRecord> = PerCpuArray::with_max_entries(2, 0);

/// Per CPU, 1 while a fault program walks a user stack. A frame pointer that leads nowhere
/// (code built without them) makes the walk itself fault in kernel mode, in the traced task;
/// that fault is the tracer's, not the program's, and is not reported.
#[map]
static STACK_WALKING: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// Per CPU, the records submitted to [`EVENTS`], which paces the looks at its fill level.
#[map]
static SUBMITTED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// Not preallocated: an entry is made once per process, and a preallocated per-CPU map of this
/// size takes the kernel tens of milliseconds to free, on whichever CPU its worker runs.
#[map]
static TOP_COUNTS: PerCpuHashMap<u32, TopCounts> =
    PerCpuHashMap::with_max_entries(TOP_MAX_PROCESSES, BPF_F_NO_PREALLOC);

/// Per-CPU, so counting needs no atomic add (the BPF target has none in `core`).
#[map]
static PAGE_COUNTS: LruPerCpuHashMap<PageKey, u64> =
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

/// A raw tracepoint: the arguments come straight from the call site (address, regs,
/// error_code), with none of a classic tracepoint's record building, which matters at one
/// call per fault on every process.
#[tracepoint]
pub fn sys_enter_mprotect(ctx: TracePointContext) -> u32 {
    record_syscall_enter(&ctx, Syscall::Mprotect);
    0
}

#[tracepoint]
pub fn sys_exit_mprotect(ctx: TracePointContext) -> u32 {
    record_syscall_exit(&ctx, Syscall::Mprotect);
    0
}

#[tracepoint]
pub fn sys_enter_fadvise64(ctx: TracePointContext) -> u32 {
    record_syscall_enter(&ctx, Syscall::Fadvise64);
    0
}

#[tracepoint]
pub fn sys_exit_fadvise64(ctx: TracePointContext) -> u32 {
    record_syscall_exit(&ctx, Syscall::Fadvise64);
    0
}

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

/// Count nothing: with these on the fault tracepoints, the bench measures what the hook alone
/// costs a fault, the floor under `top_fault_*`.
#[raw_tracepoint(tracepoint = "page_fault_user")]
pub fn top_empty_user(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "page_fault_kernel")]
pub fn top_empty_kernel(_ctx: RawTracePointContext) -> i32 {
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

/// Attached to PERF_COUNT_SW_PAGE_FAULTS, which fires at the start of every user-address fault;
/// the fallback where the exceptions tracepoints do not exist.
#[perf_event]
pub fn page_fault_perf(ctx: PerfEventContext) -> u32 {
    record_perf_fault(&ctx);
    0
}

#[tracepoint]
pub fn task_newtask(ctx: TracePointContext) -> u32 {
    follow_new_task(&ctx);
    0
}

#[tracepoint]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    record_exit(&ctx);
    0
}

#[tracepoint]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    record_exec(&ctx);
    0
}

#[uprobe]
pub fn heap_malloc_enter(ctx: ProbeContext) -> u32 {
    record_heap_enter(&ctx, HeapFunction::Malloc, 1);
    0
}

#[uprobe]
pub fn heap_calloc_enter(ctx: ProbeContext) -> u32 {
    record_heap_enter(&ctx, HeapFunction::Calloc, 2);
    0
}

#[uprobe]
pub fn heap_realloc_enter(ctx: ProbeContext) -> u32 {
    record_heap_enter(&ctx, HeapFunction::Realloc, 2);
    0
}

#[uprobe]
pub fn heap_free_enter(ctx: ProbeContext) -> u32 {
    record_heap_enter(&ctx, HeapFunction::Free, 1);
    0
}

#[uretprobe]
pub fn heap_malloc_exit(ctx: RetProbeContext) -> u32 {
    record_heap_exit(&ctx, HeapFunction::Malloc);
    0
}

#[uretprobe]
pub fn heap_calloc_exit(ctx: RetProbeContext) -> u32 {
    record_heap_exit(&ctx, HeapFunction::Calloc);
    0
}

#[uretprobe]
pub fn heap_realloc_exit(ctx: RetProbeContext) -> u32 {
    record_heap_exit(&ctx, HeapFunction::Realloc);
    0
}

#[tracepoint]
pub fn signal_generate(ctx: TracePointContext) -> u32 {
    record_signal(&ctx);
    0
}

#[tracepoint]
pub fn sys_enter_mmap(ctx: TracePointContext) -> u32 {
    record_syscall_enter(&ctx, Syscall::Mmap);
    0
}

#[tracepoint]
pub fn sys_exit_mmap(ctx: TracePointContext) -> u32 {
    record_syscall_exit(&ctx, Syscall::Mmap);
    0
}

#[tracepoint]
pub fn sys_enter_munmap(ctx: TracePointContext) -> u32 {
    record_syscall_enter(&ctx, Syscall::Munmap);
    0
}

#[tracepoint]
pub fn sys_exit_munmap(ctx: TracePointContext) -> u32 {
    record_syscall_exit(&ctx, Syscall::Munmap);
    0
}

#[tracepoint]
pub fn sys_enter_mremap(ctx: TracePointContext) -> u32 {
    record_syscall_enter(&ctx, Syscall::Mremap);
    0
}

#[tracepoint]
pub fn sys_exit_mremap(ctx: TracePointContext) -> u32 {
    record_syscall_exit(&ctx, Syscall::Mremap);
    0
}

#[tracepoint]
pub fn sys_enter_brk(ctx: TracePointContext) -> u32 {
    record_syscall_enter(&ctx, Syscall::Brk);
    0
}

#[tracepoint]
pub fn sys_exit_brk(ctx: TracePointContext) -> u32 {
    record_syscall_exit(&ctx, Syscall::Brk);
    0
}

#[tracepoint]
pub fn sys_enter_madvise(ctx: TracePointContext) -> u32 {
    record_syscall_enter(&ctx, Syscall::Madvise);
    0
}

#[tracepoint]
pub fn sys_exit_madvise(ctx: TracePointContext) -> u32 {
    record_syscall_exit(&ctx, Syscall::Madvise);
    0
}

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

/// Moves one CPU's recent counts into the process map, after any that failed to move before.
/// Counts that cannot move now wait in the CPU's pending slot; only when that slot already holds
/// another process's are they dropped, and counted.
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
    // SAFETY: this CPU's value of the entry; the callers keep other programs on this CPU off it.
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

/// What a BPF_NOEXIST insert returns when the key is already there.
const EEXIST_ERROR: i32 = -17;

#[inline(always)]
fn add_counter(index: u32, amount: u64) {
    if let Some(counter) = TOP_COUNTERS.get_ptr_mut(index) {
        // SAFETY: this CPU's slot; programs on one CPU do not nest.
        unsafe { *counter += amount };
    }
}

/// Counts one fault of the current process for `demo top`, and its page when it is the
/// process watched with `--pages`. Raw arguments: 0 address, 1 regs, 2 error_code.
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
        count_into(&mut recent.counts, ctx.arg(2));
    });
    if counted.is_none() {
        return add_counter(top_counters::NESTED_DROPPED, 1);
    }
    let watched = TOP_CONFIG.get(top_config::PAGES_PID).copied().unwrap_or(0);
    if watched != 0 && watched == tgid {
        count_page(tgid, ctx.arg(0));
    }
}

/// Runs `change` on this CPU's recent counts, unless a program it interrupted is changing them
/// (then `None`). The fault tracepoints fire with interrupts off, so the flush (an IPI) should
/// never land inside a counting program; but a kernel-mode fault inside one, or a fault in an
/// NMI, can run another program on the same CPU halfway through a change. `busy`, set around
/// every change, costs two stores and makes the interrupting program leave the entry alone.
#[inline(always)]
fn change_recent<R>(change: impl FnOnce(&mut RecentFaults) -> R) -> Option<R> {
    let recent = TOP_RECENT.get_ptr_mut(0)?;
    // SAFETY: this CPU's entry; `busy` keeps the programs on this CPU off it one at a time, and
    // the fences keep the compiler from moving the change outside the flag.
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
fn count_page(tgid: u32, address: u64) {
    let key = PageKey {
        tgid,
        _padding: 0,
        page: address & !0xfff,
    };
    if let Some(count) = PAGE_COUNTS.get_ptr_mut(key) {
        // SAFETY: this CPU's value; programs on one CPU do not nest.
        unsafe { *count += 1 };
    } else if PAGE_COUNTS.insert(key, 1, BPF_NOEXIST as u64).is_ok() {
        add_counter(top_counters::PAGES_INSERTED, 1);
    }
}

/// When a process's last thread exits, keeps the process's fault counters (those of its gone
/// threads plus this one's), for `demo top` to read once /proc no longer has them.
#[inline(always)]
fn keep_exit_counters(ctx: &TracePointContext) {
    // SAFETY: offset from the tracepoint's format, checked by the loader.
    let group_dead = unsafe { ctx.read_at::<u8>(process_exit_tracepoint::GROUP_DEAD) }.unwrap_or(0);
    if group_dead == 0 {
        return;
    }
    let task = current_task();
    let own = task.fault_counters();
    // SAFETY: `signal` is a pointer field of the task, and the other two offsets are fields of
    // the `signal_struct` it points at.
    let (gone_minor, gone_major) = unsafe {
        let signal = field::<*const u8>(task.task, &TASK_LAYOUT.signal);
        (
            field::<u64>(signal, &TASK_LAYOUT.signal_min_flt),
            field::<u64>(signal, &TASK_LAYOUT.signal_maj_flt),
        )
    };
    let process = ExitCounts {
        counters: FaultCounters {
            minor: own.minor + gone_minor,
            major: own.major + gone_major,
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

/// The target flags of `tgid`, 0 when it is not in the map.
#[inline(always)]
fn flags_of(tgid: u32) -> u8 {
    // SAFETY: the value is a plain byte; a concurrent update can only yield an old or new value.
    TARGETS.get_ptr(tgid).map_or(0, |flags| unsafe { *flags })
}

/// True when `tgid`'s events are reported.
#[inline(always)]
fn is_target(tgid: u32) -> bool {
    flags_of(tgid) & target_flags::REPORT != 0
}

/// Reserves room for one record, or counts the drop. The caller must fill and submit it.
#[inline(always)]
fn reserve<T: 'static, C: EbpfContext>(
    ctx: &C,
    kind: RecordKind,
    tgid: u32,
) -> Option<aya_ebpf::maps::ring_buf::RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        count_drop(kind as u32);
        debug!(ctx, "ring buffer full: dropped a record of tgid {}", tgid);
    }
    entry
}

/// Where the running kernel keeps the task fields the programs read; the loader sets it from the
/// kernel's BTF. Read-only data is frozen before the programs load, so the verifier knows the
/// offsets and checks each access against the kernel's type information.
#[unsafe(no_mangle)]
static TASK_LAYOUT: TaskLayout = TaskLayout {
    pid: 0,
    tgid: 0,
    min_flt: 0,
    maj_flt: 0,
    signal: 0,
    signal_min_flt: 0,
    signal_maj_flt: 0,
};

/// The current task: its ids, and the kernel's task to read its fault counters from.
#[derive(Clone, Copy)]
struct Task {
    tgid: u32,
    tid: u32,
    task: *const u8,
}

impl Task {
    /// The thread's own minor and major fault counters now.
    #[inline(always)]
    fn fault_counters(self) -> FaultCounters {
        // SAFETY: see `field`.
        unsafe {
            FaultCounters {
                minor: field::<u64>(self.task, &TASK_LAYOUT.min_flt),
                major: field::<u64>(self.task, &TASK_LAYOUT.maj_flt),
            }
        }
    }
}

/// Reads the `T` at byte `*offset` of a kernel structure. Plain loads through a typed kernel
/// pointer, not helper calls, which matters once per fault.
///
/// # Safety
/// `base` is a typed kernel pointer (from `bpf_get_current_task_btf`, or read through one), and
/// `*offset` is a field of [`TASK_LAYOUT`] naming a field of type `T` of the structure it points
/// at (the verifier rejects the program otherwise).
#[inline(always)]
unsafe fn field<T: Copy>(base: *const u8, offset: &'static u64) -> T {
    // The volatile read keeps the offset a load from read-only data, whose value the verifier
    // knows, instead of the zero the compiler would fold in from the initializer.
    let offset = unsafe { core::ptr::read_volatile(offset) };
    unsafe { *base.add(offset as usize).cast::<T>() }
}

/// Asks the kernel for the current task once per event, and reads the ids from it.
#[inline(always)]
fn current_task() -> Task {
    // SAFETY: the helper has no preconditions and returns the current task, valid for the whole
    // program; `pid` and `tgid` are its `pid_t` fields.
    unsafe {
        let task = bpf_get_current_task_btf().cast::<u8>().cast_const();
        Task {
            tgid: field::<i32>(task, &TASK_LAYOUT.tgid) as u32,
            tid: field::<i32>(task, &TASK_LAYOUT.pid) as u32,
            task,
        }
    }
}

/// The header of a record about `task`.
#[inline(always)]
fn header(task: Task, kind: RecordKind, detail: u32) -> RecordHeader {
    RecordHeader {
        kind: kind as u32,
        detail,
        // SAFETY: the helper has no preconditions.
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        tgid: task.tgid,
        tid: task.tid,
        counters: task.fault_counters(),
    }
}

/// For a traced process's event: the task and a reserved record to fill, or `None` when the
/// process is not traced or the buffer is full (then the drop is counted).
#[inline(always)]
fn traced_record<T: 'static, C: EbpfContext>(
    ctx: &C,
    kind: RecordKind,
) -> Option<(Task, aya_ebpf::maps::ring_buf::RingBufEntry<T>)> {
    let task = current_task();
    if !is_target(task.tgid) {
        return None;
    }
    Some((task, reserve::<T, C>(ctx, kind, task.tgid)?))
}

/// How many user-stack frames to capture per fault; 0 (no stacks) unless the loader sets it
/// before loading. Read-only data is frozen, so the verifier knows the value and drops the
/// branch not taken.
#[unsafe(no_mangle)]
static STACK_DEPTH: u32 = 0;

/// Copies one fault of a traced process into the ring buffer, or counts it as dropped. The
/// raw tracepoint's arguments are those of the call site: address, regs, error_code.
#[inline(always)]
fn record_fault(ctx: &RawTracePointContext, source: FaultSource) {
    // SAFETY: a plain load of a global; volatile so that the compiler keeps the load for the
    // verifier to decide, instead of folding the placeholder 0.
    let depth = unsafe { read_volatile(&STACK_DEPTH) };
    if depth != 0 && source == FaultSource::Kernel && walking_stack() {
        return;
    }
    let task = current_task();
    if !is_target(task.tgid) {
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
            let regs: *const pt_regs = ctx.arg(1);
            // SAFETY: regs points at the faulting context's saved registers; a failed read
            // gives 0.
            unsafe { bpf_probe_read_kernel(&raw const (*regs).rip) }.unwrap_or(0)
        }
    };
    let fault = FaultRecord {
        header: header(task, RecordKind::Fault, source as u32),
        address: ctx.arg(0),
        ip,
        error_code: ctx.arg(2),
    };
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

/// True while this CPU walks a user stack for a fault record.
#[inline(always)]
fn walking_stack() -> bool {
    // SAFETY: this CPU's slot, read as the nested program it interrupted left it.
    STACK_WALKING
        .get_ptr(0)
        .is_some_and(|walking| unsafe { read_volatile(walking) } != 0)
}

/// Sends `fault` with up to `depth` frames of the user stack (frame pointers), innermost
/// first, in a record only as long as the frames captured.
#[inline(always)]
fn record_fault_stack(ctx: &RawTracePointContext, mut fault: FaultRecord, depth: u32, slot: u32) {
    let Some(scratch) = STACK_SCRATCH.get_ptr_mut(slot) else {
        return;
    };
    fault.header.kind = RecordKind::FaultStack as u32;
    let bytes = depth.min(MAX_STACK_DEPTH as u32) * 8;
    let walking = STACK_WALKING.get_ptr_mut(0);
    // SAFETY: this CPU's slots; the helper writes at most `bytes` into frames.
    let captured = unsafe {
        (*scratch).fault = fault;
        if let Some(walking) = walking {
            write_volatile(walking, 1);
        }
        let captured = bpf_get_stack(
            ctx.as_ptr(),
            (*scratch).frames.as_mut_ptr().cast(),
            bytes,
            BPF_F_USER_STACK as u64,
        );
        if let Some(walking) = walking {
            write_volatile(walking, 0);
        }
        captured
    };
    // A failed walk still reports the fault, with no frames. The mask keeps the length in
    // bounds for the verifier as well as in fact.
    let frame_bytes = if captured > 0 { captured as usize } else { 0 } & 0x3f8;
    let len = size_of::<FaultRecord>() + frame_bytes.min(MAX_STACK_DEPTH * 8);
    // SAFETY: `len` is at most the slot's size.
    let record = unsafe { core::slice::from_raw_parts(scratch.cast::<u8>().cast_const(), len) };
    if EVENTS.output::<[u8]>(record, wakeup_flag()).is_err() {
        count_drop(RecordKind::FaultStack as u32);
        debug!(
            ctx,
            "ring buffer full: dropped a fault stack of tgid {}", fault.header.tgid
        );
    }
}

/// Reports a fault from the PAGE_FAULTS perf event. The sample carries the address and the
/// faulting registers, but not the CPU's error code (the exception entry sets `orig_rax` to -1),
/// so only the mode is known: from the code segment's privilege level.
#[inline(always)]
fn record_perf_fault(ctx: &PerfEventContext) {
    let Some((task, mut entry)) = traced_record::<FaultRecord, _>(ctx, RecordKind::Fault) else {
        return;
    };
    // SAFETY: the kernel passes a valid bpf_perf_event_data.
    let data = unsafe { &*ctx.ctx };
    entry.write(FaultRecord {
        header: header(task, RecordKind::Fault, FaultSource::Perf as u32),
        address: data.addr,
        ip: data.regs.rip,
        error_code: ERROR_CODE_UNKNOWN | if data.regs.cs & 3 == 3 { 1 << 2 } else { 0 },
    });
    entry.submit(wakeup_flag());
}

/// Adds a followed process's new child (not a new thread) to the targets, and reports it.
#[inline(always)]
fn follow_new_task(ctx: &TracePointContext) {
    let task = current_task();
    let parent = flags_of(task.tgid);
    if parent & target_flags::FOLLOW == 0 {
        return;
    }
    // SAFETY (both reads): offsets from the tracepoint's format, checked by the loader.
    let clone_flags = unsafe { ctx.read_at::<u64>(new_task_tracepoint::CLONE_FLAGS) }.unwrap_or(0);
    if clone_flags & new_task_tracepoint::CLONE_THREAD != 0 {
        return;
    }
    let Ok(child) = (unsafe { ctx.read_at::<i32>(new_task_tracepoint::PID) }) else {
        return;
    };
    let child = child as u32;
    let child_flags = if parent & target_flags::DESCENDANTS != 0 {
        target_flags::REPORT | target_flags::FOLLOW | target_flags::DESCENDANTS
    } else {
        target_flags::REPORT
    };
    if TARGETS.insert(child, child_flags, 0).is_err() {
        // The map is full: the child goes untraced, which must not go unnoticed.
        count_drop(UNTRACED_CHILD_SLOT);
        return;
    }
    if parent & target_flags::REPORT != 0 {
        record_process(ctx, task, RecordKind::Fork, child);
    }
}

/// Reports each exiting thread of a traced process with its final fault counters, which settle
/// its last fault; when the process's last thread exits, forgets the process and reports that.
#[inline(always)]
fn record_exit(ctx: &TracePointContext) {
    let task = current_task();
    let tgid = task.tgid;
    let flags = flags_of(tgid);
    if flags == 0 {
        return;
    }
    // SAFETY: offset from the tracepoint's format, checked by the loader.
    let group_dead = unsafe { ctx.read_at::<u8>(process_exit_tracepoint::GROUP_DEAD) }.unwrap_or(0);
    let reported = flags & target_flags::REPORT != 0;
    if reported {
        record_process(
            ctx,
            task,
            RecordKind::ThreadExit,
            u32::from(group_dead != 0),
        );
    }
    if group_dead == 0 {
        return;
    }
    let _ = TARGETS.remove(tgid);
    if reported {
        record_process(ctx, task, RecordKind::Exit, tgid);
    }
}

/// Reports that a traced process exec'd: the mappings the loader knows of it are gone, and
/// records after this one are of the new image. It runs once the new image is in place.
#[inline(always)]
fn record_exec(ctx: &TracePointContext) {
    let task = current_task();
    if flags_of(task.tgid) & target_flags::REPORT != 0 {
        record_process(ctx, task, RecordKind::Exec, task.tgid);
    }
}

#[inline(always)]
fn record_process(ctx: &TracePointContext, task: Task, kind: RecordKind, detail: u32) {
    let Some(mut entry) = reserve::<ProcessRecord, _>(ctx, kind, task.tgid) else {
        return;
    };
    entry.write(ProcessRecord {
        header: header(task, kind, detail),
    });
    // A fork wakes the loader at once: it attaches the child's heap uprobes, and every heap
    // call the child makes before that goes unseen.
    let flag = match kind {
        RecordKind::Fork => BPF_RB_FORCE_WAKEUP as u64,
        _ => wakeup_flag(),
    };
    entry.submit(flag);
}

/// Records a call of a heap function with its first `arg_count` arguments.
#[inline(always)]
fn record_heap_enter(ctx: &ProbeContext, function: HeapFunction, arg_count: usize) {
    let mut args = [0u64; 2];
    for (i, arg) in args.iter_mut().enumerate().take(arg_count) {
        *arg = ctx.arg::<u64>(i).unwrap_or(0);
    }
    record_heap(ctx, RecordKind::HeapEnter, function, args, 0);
}

/// Records the pointer a heap function returned.
#[inline(always)]
fn record_heap_exit(ctx: &RetProbeContext, function: HeapFunction) {
    let ret = ctx.ret::<u64>();
    record_heap(ctx, RecordKind::HeapExit, function, [0; 2], ret);
}

#[inline(always)]
fn record_heap<C: EbpfContext>(
    ctx: &C,
    kind: RecordKind,
    function: HeapFunction,
    args: [u64; 2],
    ret: u64,
) {
    let Some((task, mut entry)) = traced_record::<HeapRecord, _>(ctx, kind) else {
        return;
    };
    entry.write(HeapRecord {
        header: header(task, kind, function as u32),
        args,
        ret,
    });
    entry.submit(wakeup_flag());
}

/// Reports a signal generated by a traced process or sent to one of its threads (tracked by
/// tgid, which equals the tid of a main thread).
#[inline(always)]
fn record_signal(ctx: &TracePointContext) {
    // SAFETY (all reads): offsets from the tracepoint's format, checked by the loader.
    let target_tid = unsafe { ctx.read_at::<i32>(signal_tracepoint::PID) }.unwrap_or(0) as u32;
    let task = current_task();
    if !is_target(task.tgid) && !is_target(target_tid) {
        return;
    }
    let Some(mut entry) = reserve::<SignalRecord, _>(ctx, RecordKind::Signal, task.tgid) else {
        return;
    };
    let field = |offset| unsafe { ctx.read_at::<i32>(offset) }.unwrap_or(0);
    entry.write(SignalRecord {
        header: header(
            task,
            RecordKind::Signal,
            field(signal_tracepoint::SIG) as u32,
        ),
        target_tid,
        code: field(signal_tracepoint::CODE),
        errno: field(signal_tracepoint::ERRNO),
        result: field(signal_tracepoint::RESULT),
    });
    entry.submit(wakeup_flag());
}

/// Records a traced process entering a memory syscall, with its arguments.
#[inline(always)]
fn record_syscall_enter(ctx: &TracePointContext, syscall: Syscall) {
    let mut args = [0u64; 6];
    for (i, arg) in args.iter_mut().enumerate().take(syscall.arg_count()) {
        // SAFETY: argument i of this syscall's enter tracepoint is at FIRST_ARG + 8 * i.
        *arg = unsafe { ctx.read_at::<u64>(syscall_tracepoint::FIRST_ARG + 8 * i) }.unwrap_or(0);
    }
    record_syscall(ctx, RecordKind::SyscallEnter, syscall, args, 0);
}

/// Records a traced process leaving a memory syscall, with its return value.
#[inline(always)]
fn record_syscall_exit(ctx: &TracePointContext, syscall: Syscall) {
    // SAFETY: `ret` is at RET in every sys_exit tracepoint.
    let ret = unsafe { ctx.read_at::<i64>(syscall_tracepoint::RET) }.unwrap_or(0);
    record_syscall(ctx, RecordKind::SyscallExit, syscall, [0; 6], ret);
}

#[inline(always)]
fn record_syscall(
    ctx: &TracePointContext,
    kind: RecordKind,
    syscall: Syscall,
    args: [u64; 6],
    ret: i64,
) {
    let Some((task, mut entry)) = traced_record::<SyscallRecord, _>(ctx, kind) else {
        return;
    };
    entry.write(SyscallRecord {
        header: header(task, kind, syscall as u32),
        args,
        ret,
    });
    entry.submit(wakeup_flag());
}

/// Wakes the reader only when the buffer is filling up; otherwise its periodic poll finds the
/// record, which spares the traced process a wakeup per fault. The fill level is asked for on
/// every [`WAKEUP_CHECK_EVERY`]th record of a CPU only: a helper call per record costs more than
/// the check is worth, and a few records more past the threshold change nothing.
#[inline(always)]
fn wakeup_flag() -> u64 {
    let Some(submitted) = SUBMITTED.get_ptr_mut(0) else {
        return BPF_RB_NO_WAKEUP as u64;
    };
    // SAFETY: this CPU's slot; programs on one CPU do not nest.
    let submitted = unsafe {
        *submitted += 1;
        *submitted
    };
    if submitted % WAKEUP_CHECK_EVERY == 0
        && EVENTS.query(aya_ebpf::bindings::BPF_RB_AVAIL_DATA as u64) >= WAKEUP_THRESHOLD_BYTES
    {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

/// How many records a CPU submits between two looks at the ring buffer's fill level.
const WAKEUP_CHECK_EVERY: u64 = 64;

#[inline(always)]
fn count_drop(slot: u32) {
    if let Some(counter) = DROPS.get_ptr_mut(slot) {
        // SAFETY: the pointer is this CPU's slot, and programs on one CPU do not run concurrently.
        unsafe { *counter += 1 };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
