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

/// The tag at the start of every ring-buffer record, saying which record type follows.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A [`FaultRecord`].
    Fault = 1,
}

impl RecordKind {
    /// Returns the kind with this tag, or `None` for a tag this build does not know.
    pub const fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            1 => Some(Self::Fault),
            _ => None,
        }
    }
}

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

#[cfg(feature = "user")]
// SAFETY: `FaultRecord` is `repr(C)`, made only of integers, and has no padding.
unsafe impl aya::Pod for FaultRecord {}
