//! Types shared by the eBPF programs and the userspace loader: map and program names and the fixed-size records of the ring buffer.
#![no_std]

/// Hash map of traced thread-group ids (`u32` → `u8`); the kernel side reports only faults of these.
pub const TARGETS_MAP: &str = "TARGETS";
/// Ring buffer that carries one record per traced fault.
pub const EVENTS_MAP: &str = "EVENTS";
/// Per-CPU array with one `u64`: ring-buffer reservations that failed, so records that were lost.
pub const DROPS_MAP: &str = "DROPS";

/// How many processes can be traced at once.
pub const MAX_TARGETS: u32 = 4096;
/// Default byte size of the ring buffer: room for about 170,000 fault records, so a burst of faults
/// between two polls of the reader does not overflow it.
pub const DEFAULT_RING_BYTES: u32 = 8 << 20;
/// Once this many bytes wait in the ring buffer, the kernel side wakes the reader at once; below it,
/// records are submitted without a wakeup and the reader finds them on its next poll.
pub const WAKEUP_THRESHOLD_BYTES: u64 = 1 << 20;

/// Program attached to the PAGE_FAULTS_MIN software perf event on every CPU.
pub const MINOR_COMPLETION_PROGRAM: &str = "fault_completed_minor";
/// Program attached to the PAGE_FAULTS_MAJ software perf event on every CPU.
pub const MAJOR_COMPLETION_PROGRAM: &str = "fault_completed_major";
/// Program attached to `signal:signal_generate`.
pub const SIGNAL_PROGRAM: &str = "signal_generate";

/// Program attached to `exceptions:page_fault_user`.
pub const PAGE_FAULT_USER_PROGRAM: &str = "page_fault_user";
/// Program attached to `exceptions:page_fault_kernel`.
pub const PAGE_FAULT_KERNEL_PROGRAM: &str = "page_fault_kernel";

/// Byte offsets of the fields of the `exceptions:page_fault_*` tracepoints on x86-64; the loader
/// checks them against the tracepoint's format file before it attaches.
pub mod fault_tracepoint {
    /// Offset of `unsigned long address`.
    pub const ADDRESS: usize = 8;
    /// Offset of `unsigned long ip`.
    pub const IP: usize = 16;
    /// Offset of `unsigned long error_code`.
    pub const ERROR_CODE: usize = 24;
}

/// Byte offsets of the fields of `signal:signal_generate`.
pub mod signal_tracepoint {
    /// Offset of `int sig`.
    pub const SIG: usize = 8;
    /// Offset of `int errno`.
    pub const ERRNO: usize = 12;
    /// Offset of `int code` (the si_code).
    pub const CODE: usize = 16;
    /// Offset of `pid_t pid`: the receiving thread.
    pub const PID: usize = 36;
    /// Offset of `int result`.
    pub const RESULT: usize = 44;
}

/// Byte offsets of the fields of the `syscalls:sys_enter_*` and `sys_exit_*` tracepoints.
pub mod syscall_tracepoint {
    /// Offset of the first argument; each argument takes 8 bytes.
    pub const FIRST_ARG: usize = 16;
    /// Offset of `long ret` in `sys_exit_*`.
    pub const RET: usize = 16;
}

/// The tag at the start of every ring-buffer record, saying which record type follows.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A [`FaultRecord`].
    Fault = 1,
    /// A [`CompletionRecord`].
    Completion = 2,
    /// A [`SyscallRecord`] for a syscall's entry: the arguments are set.
    SyscallEnter = 3,
    /// A [`SyscallRecord`] for a syscall's exit: the return value is set.
    SyscallExit = 4,
    /// A [`SignalRecord`].
    Signal = 5,
}

impl RecordKind {
    /// Returns the kind with this tag, or `None` for a tag this build does not know.
    pub const fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            1 => Some(Self::Fault),
            2 => Some(Self::Completion),
            3 => Some(Self::SyscallEnter),
            4 => Some(Self::SyscallExit),
            5 => Some(Self::Signal),
            _ => None,
        }
    }
}

/// How a fault completed, from the software perf event that counted it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionClass {
    /// PERF_COUNT_SW_PAGE_FAULTS_MIN: resolved without I/O.
    Minor = 1,
    /// PERF_COUNT_SW_PAGE_FAULTS_MAJ: needed I/O (or was retried).
    Major = 2,
}

impl CompletionClass {
    pub const fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            1 => Some(Self::Minor),
            2 => Some(Self::Major),
            _ => None,
        }
    }
}

/// The memory syscalls that are traced, in the order of [`SYSCALL_TRACEPOINTS`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syscall {
    Mmap = 0,
    Munmap = 1,
    Mremap = 2,
    Brk = 3,
    Madvise = 4,
}

impl Syscall {
    pub const fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            0 => Some(Self::Mmap),
            1 => Some(Self::Munmap),
            2 => Some(Self::Mremap),
            3 => Some(Self::Brk),
            4 => Some(Self::Madvise),
            _ => None,
        }
    }

    /// The syscall's name, which is also the suffix of its tracepoints.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Mmap => "mmap",
            Self::Munmap => "munmap",
            Self::Mremap => "mremap",
            Self::Brk => "brk",
            Self::Madvise => "madvise",
        }
    }

    /// How many arguments the syscall takes (and its enter tracepoint records).
    pub const fn arg_count(self) -> usize {
        match self {
            Self::Mmap => 6,
            Self::Munmap => 2,
            Self::Mremap => 5,
            Self::Brk => 1,
            Self::Madvise => 3,
        }
    }
}

/// Every traced syscall; the programs are named `sys_enter_NAME` and `sys_exit_NAME`.
pub const SYSCALL_TRACEPOINTS: [Syscall; 5] = [
    Syscall::Mmap,
    Syscall::Munmap,
    Syscall::Mremap,
    Syscall::Brk,
    Syscall::Madvise,
];

/// Which tracepoint reported a fault.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultSource {
    /// `exceptions:page_fault_user`: the CPU was in user mode.
    User = 0,
    /// `exceptions:page_fault_kernel`: the CPU was in kernel mode, e.g. copying to a user buffer.
    Kernel = 1,
}

impl FaultSource {
    /// Returns the source with this tag, or `None` for an unknown one.
    pub const fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            0 => Some(Self::User),
            1 => Some(Self::Kernel),
            _ => None,
        }
    }
}

/// One page fault of a traced process, as the tracepoint saw it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    /// Always [`RecordKind::Fault`] as `u32`.
    pub kind: u32,
    /// A [`FaultSource`] as `u32`.
    pub source: u32,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub timestamp_ns: u64,
    /// Thread-group id (the process id).
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    /// The faulting virtual address.
    pub address: u64,
    /// The instruction pointer at the fault.
    pub ip: u64,
    /// The x86 page-fault error code.
    pub error_code: u64,
}

/// A traced process's fault completed: the software perf event for minor or major faults fired.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletionRecord {
    /// Always [`RecordKind::Completion`] as `u32`.
    pub kind: u32,
    /// A [`CompletionClass`] as `u32`.
    pub class: u32,
    pub timestamp_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    /// The faulting address, from the perf sample.
    pub address: u64,
}

/// Entry to or exit from a traced memory syscall.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallRecord {
    /// [`RecordKind::SyscallEnter`] or [`RecordKind::SyscallExit`] as `u32`.
    pub kind: u32,
    /// A [`Syscall`] as `u32`.
    pub syscall: u32,
    pub timestamp_ns: u64,
    pub tgid: u32,
    pub tid: u32,
    /// The arguments, on entry; unused ones are 0.
    pub args: [u64; 6],
    /// The return value, on exit.
    pub ret: i64,
}

/// A signal generated for a traced process (or by one).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalRecord {
    /// Always [`RecordKind::Signal`] as `u32`.
    pub kind: u32,
    /// The signal number.
    pub signal: i32,
    pub timestamp_ns: u64,
    /// The thread group of the task that generated it (for SIGSEGV, the faulting one).
    pub tgid: u32,
    pub tid: u32,
    /// The receiving thread.
    pub target_tid: u32,
    /// The si_code, e.g. SEGV_MAPERR.
    pub code: i32,
    pub errno: i32,
    /// The tracepoint's `result`: 0 delivered, 1 ignored, 2 already pending, …
    pub result: i32,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY (all four): `repr(C)`, made only of integers, laid out without padding.
    unsafe impl aya::Pod for super::FaultRecord {}
    unsafe impl aya::Pod for super::CompletionRecord {}
    unsafe impl aya::Pod for super::SyscallRecord {}
    unsafe impl aya::Pod for super::SignalRecord {}
}
