//! The current task as the programs see it: its ids and its fault counters, read with plain loads
//! at offsets the loader takes from the kernel's BTF.

use aya_ebpf::helpers::{bpf_get_current_task_btf, bpf_probe_read_kernel};
use demo_common::{FaultCounters, PF_EXITING, TaskLayout};

/// Where the running kernel keeps the task fields the programs read; the loader sets it from the
/// kernel's BTF. Read-only data is frozen before the programs load, so the verifier knows the
/// offsets and checks each access against the kernel's type information.
#[unsafe(no_mangle)]
static TASK_LAYOUT: TaskLayout = TaskLayout {
    pid: 0,
    tgid: 0,
    flags: 0,
    min_flt: 0,
    maj_flt: 0,
    signal: 0,
    signal_min_flt: 0,
    signal_maj_flt: 0,
    signal_nr_threads: 0,
};

/// The current task: its ids, and the kernel's task to read its fault counters from.
#[derive(Clone, Copy)]
pub(crate) struct Task {
    pub(crate) tgid: u32,
    pub(crate) tid: u32,
    pub(crate) task: *const u8,
}

impl Task {
    /// The thread's own minor and major fault counters now.
    #[inline(always)]
    pub(crate) fn fault_counters(self) -> FaultCounters {
        // SAFETY: `task` came from `bpf_get_current_task_btf`, and both offsets name `unsigned
        // long` fields of `task_struct`.
        unsafe {
            FaultCounters {
                minor: field::<u64>(self.task, &TASK_LAYOUT.min_flt),
                major: field::<u64>(self.task, &TASK_LAYOUT.maj_flt),
            }
        }
    }

    /// The minor and major faults of the task's process's threads that are gone, which the
    /// kernel keeps in the process's `signal_struct`.
    #[inline(always)]
    pub(crate) fn gone_threads_counters(self) -> FaultCounters {
        // SAFETY: `signal` is a pointer field of the task, and the other two offsets are
        // `unsigned long` fields of the `signal_struct` it points at.
        unsafe {
            let signal = field::<*const u8>(self.task, &TASK_LAYOUT.signal);
            FaultCounters {
                minor: field::<u64>(signal, &TASK_LAYOUT.signal_min_flt),
                major: field::<u64>(signal, &TASK_LAYOUT.signal_maj_flt),
            }
        }
    }

    /// True once the task began to exit: past `sched:sched_process_exit`, it still faults (on
    /// its clear_child_tid) and signals its parent.
    #[inline(always)]
    pub(crate) fn exiting(self) -> bool {
        // SAFETY: `flags` is an `unsigned int` field of `task_struct`.
        unsafe { field::<u32>(self.task, &TASK_LAYOUT.flags) & PF_EXITING != 0 }
    }

    /// How many live threads the task's process has (`signal->nr_threads`), the task included.
    #[inline(always)]
    pub(crate) fn threads(self) -> u32 {
        // SAFETY: `signal` is a pointer field of the task, and `signal_nr_threads` an `int`
        // field of the `signal_struct` it points at.
        unsafe {
            let signal = field::<*const u8>(self.task, &TASK_LAYOUT.signal);
            // Volatile, unlike `field`, so that the compiler keeps the load where the caller
            // put it: a join reads the count before the gone threads' counters.
            let offset = core::ptr::read_volatile(&TASK_LAYOUT.signal_nr_threads);
            core::ptr::read_volatile(signal.add(offset as usize).cast::<i32>()) as u32
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
pub(crate) fn current_task() -> Task {
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

/// The thread id of `task`, a kernel pointer that is not typed for the verifier (a raw
/// tracepoint's argument), or 0 when it cannot be read.
#[inline(always)]
pub(crate) fn tid_of(task: *const u8) -> u32 {
    // SAFETY: a volatile load of read-only data, as in `field`; then `bpf_probe_read_kernel`
    // checks the address itself and fails rather than fault.
    unsafe {
        let offset = core::ptr::read_volatile(&TASK_LAYOUT.pid);
        bpf_probe_read_kernel(task.add(offset as usize).cast::<i32>()).map_or(0, |pid| pid as u32)
    }
}
