//! What every tracing program shares: the target map, the ring buffer, the drop counters, and
//! the helpers that check a process is reported (joining it to the targets under a cgroup
//! scope), reserve a record and submit it.

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_NOEXIST, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::bpf_ktime_get_ns,
    macros::map,
    maps::{HashMap, LruPerCpuHashMap, PerCpuArray, RingBuf, ring_buf::RingBufEntry},
};
use aya_log_ebpf::debug;
use demo_common::{
    DEFAULT_RING_BYTES, DROP_SLOTS, JoinRecord, MAX_PROCESS_DROP_KEYS, MAX_TARGETS, RecordHeader,
    RecordKind, UNJOINED_SLOT, WAKEUP_THRESHOLD_BYTES, process_drop_key, target_flags,
};

use crate::{
    cgroup::{in_cgroup, scoped},
    task::{Task, current_task},
};

#[map]
pub(crate) static TARGETS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_TARGETS, 0);

#[map]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(DROP_SLOTS, 0);

/// Per CPU, the records lost by process and kind (see [`process_drop_key`]), so the summary can
/// name who lost what. Least recently used keys go first when it is full: a drop is rare, and
/// the totals in [`DROPS`] stay whole.
#[map]
static PROCESS_DROPS: LruPerCpuHashMap<u64, u64> =
    LruPerCpuHashMap::with_max_entries(MAX_PROCESS_DROP_KEYS, 0);

/// Per CPU, the records submitted to [`EVENTS`], which paces the looks at its fill level.
#[map]
static SUBMITTED: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// How many records a CPU submits between two looks at the ring buffer's fill level.
const WAKEUP_CHECK_EVERY: u64 = 64;

/// The target flags of `tgid`, 0 when it is not in the map.
#[inline(always)]
pub(crate) fn flags_of(tgid: u32) -> u8 {
    // SAFETY: a hash value stays valid memory for the whole program, even if userspace or another
    // CPU deletes the entry meanwhile (the kernel frees it after an RCU grace period); it is one
    // byte, so a concurrent update can only show the old value or the new one.
    TARGETS.get_ptr(tgid).map_or(0, |flags| unsafe { *flags })
}

/// True when `tgid` is in the target map to be reported: one lookup, whatever the scope. It
/// decides for the current task's events without a scope (through [`reported`]), and for a
/// process that is not the current one (a signal's receiver). The current task's events ask
/// [`reported`], and its exit asks [`flags_of`], to forget a process that is a follower only.
#[inline(always)]
pub(crate) fn is_target(tgid: u32) -> bool {
    flags_of(tgid) & target_flags::REPORT != 0
}

/// The flags a process gets when it joins under a cgroup scope: reported, and its children
/// followed, as `--pid` with `--follow` does.
const JOINED: u8 = target_flags::REPORT | target_flags::FOLLOW | target_flags::DESCENDANTS;

/// The error a `BPF_NOEXIST` insert returns when the key is there already (-EEXIST).
const EXISTS: i32 = -17;

/// True when the current task's events are reported. Without a cgroup scope, when its process
/// is a target: one lookup, the whole cost for any other process. With a scope, when the task
/// is in the cgroup: one helper call for a task outside, which is never looked up; a process
/// inside that is not a target yet joins the targets here, and its [`JoinRecord`] goes out
/// before the event that joined it. An exiting task never joins: its exit took its process out
/// of the map, and its last faults and the SIGCHLD to its parent, after that, would put it back
/// for good. The verifier drops the scoped branch when it is off.
#[inline(always)]
pub(crate) fn reported<C: EbpfContext>(ctx: &C, task: Task) -> bool {
    if !scoped() {
        return is_target(task.tgid);
    }
    if !in_cgroup() {
        return false;
    }
    match flags_of(task.tgid) {
        0 if task.exiting() => false,
        0 => {
            join(ctx, task);
            true
        }
        flags => flags & target_flags::REPORT != 0,
    }
}

/// Adds the current task's process to the targets and reports that it joined, with what its
/// threads counted before. `BPF_NOEXIST` makes one CPU the joiner when threads of the process
/// race here: the others find it there and report nothing. A full map leaves the process out:
/// its event is still reported, and counted in [`UNJOINED_SLOT`].
#[inline(always)]
fn join<C: EbpfContext>(ctx: &C, task: Task) {
    match TARGETS.insert(task.tgid, JOINED, BPF_NOEXIST as u64) {
        Ok(()) => {}
        Err(EXISTS) => return,
        Err(_) => return count_drop(UNJOINED_SLOT),
    }
    let Some(mut entry) = reserve::<JoinRecord, C>(ctx, RecordKind::Join, task.tgid) else {
        return;
    };
    // The thread count first (a volatile load, which the compiler keeps before the counters'
    // loads): a thread that finishes `__exit_signal` between the two reads adds its counters
    // to the gone threads' before it leaves the count, so when the count read first says the
    // joining thread is alone, the counters read after hold every other thread's. In the other
    // order, such a thread's faults could be in neither, and the join would claim an exact
    // count that misses them.
    let threads = task.threads();
    entry.write(JoinRecord {
        header: header(task, RecordKind::Join, task.tgid),
        gone_threads: task.gone_threads_counters(),
        threads,
        _padding: 0,
    });
    // A join wakes the loader at once, as a fork does: it attaches the process's heap uprobes
    // and completion events, and what the process does before that goes unseen.
    entry.submit(BPF_RB_FORCE_WAKEUP as u64);
}

/// The header of a record about `task`.
#[inline(always)]
pub(crate) fn header(task: Task, kind: RecordKind, detail: u32) -> RecordHeader {
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
pub(crate) fn traced_record<T: 'static, C: EbpfContext>(
    ctx: &C,
    kind: RecordKind,
) -> Option<(Task, RingBufEntry<T>)> {
    let task = current_task();
    if !reported(ctx, task) {
        return None;
    }
    Some((task, reserve::<T, C>(ctx, kind, task.tgid)?))
}

/// Reserves room for one record, or counts the drop. The caller must fill and submit it.
#[inline(always)]
pub(crate) fn reserve<T: 'static, C: EbpfContext>(
    ctx: &C,
    kind: RecordKind,
    tgid: u32,
) -> Option<RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        count_lost(kind, tgid);
        debug!(ctx, "ring buffer full: dropped a record of tgid {}", tgid);
    }
    entry
}

/// Wakes the reader only when the buffer is filling up; otherwise its periodic poll finds the
/// record, which spares the traced process a wakeup per fault. The fill level is asked for on
/// every [`WAKEUP_CHECK_EVERY`]th record of a CPU only: a helper call per record costs more than
/// the check is worth, and a few records more past the threshold change nothing.
#[inline(always)]
pub(crate) fn wakeup_flag() -> u64 {
    let Some(submitted) = SUBMITTED.get_ptr_mut(0) else {
        return BPF_RB_NO_WAKEUP as u64;
    };
    // SAFETY: this CPU's slot of a per-CPU array, valid and aligned for the whole program, and
    // written by no other CPU. A program that interrupts this one on the CPU (a fault program
    // run by a kernel-mode fault or an NMI) can add between the load and the store, which at
    // worst loses one count of the pacing, never an access.
    let submitted = unsafe {
        *submitted += 1;
        *submitted
    };
    if submitted % WAKEUP_CHECK_EVERY == 0
        && EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= WAKEUP_THRESHOLD_BYTES
    {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

/// Counts one lost record of `kind`, made by process `tgid`: in the totals, and by process.
#[inline(always)]
pub(crate) fn count_lost(kind: RecordKind, tgid: u32) {
    count_drop(kind as u32);
    let key = process_drop_key(tgid, kind);
    match PROCESS_DROPS.get_ptr_mut(key) {
        // SAFETY: this CPU's value of a per-CPU hash entry, valid and aligned for the whole
        // program even if the entry is evicted meanwhile (it is freed after an RCU grace
        // period), and written by no other CPU; a nested drop on this CPU may lose one count,
        // as in `count_drop`.
        Some(counter) => unsafe { *counter += 1 },
        // A failed insert (the map is being evicted from by another CPU) loses this count only.
        None => {
            let _ = PROCESS_DROPS.insert(key, 1, 0);
        }
    }
}

/// Counts one lost record of kind `slot`, or one untraced child.
#[inline(always)]
pub(crate) fn count_drop(slot: u32) {
    if let Some(counter) = DROPS.get_ptr_mut(slot) {
        // SAFETY: this CPU's slot of a per-CPU array, valid and aligned for the whole program,
        // and written by no other CPU. A program that interrupts this one on the CPU (a
        // kernel-mode fault, an NMI) and drops a record too can add between the load and the
        // store; one of the two drops then goes uncounted, which needs a full ring buffer and
        // a nested drop at the same instant.
        unsafe { *counter += 1 };
    }
}
