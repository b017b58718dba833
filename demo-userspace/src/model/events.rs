//! The typed events that the kernel side reports about a traced process: faults, syscalls,
//! signals, forks and exits, heap calls, and the mappings captured as they were made. The
//! kernel layer decodes them from ring-buffer records.

use std::sync::Arc;

use demo_common::{CompletedClass, FaultCounters, FaultSource, HeapFunction, Syscall};

use crate::model::access::ErrorCode;

/// One page fault of a traced process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// CLOCK_MONOTONIC nanoseconds at the fault.
    pub timestamp_ns: u64,
    /// Process id (thread-group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Faulting virtual address.
    pub address: u64,
    /// Instruction pointer at the fault.
    pub ip: u64,
    /// The CPU's page-fault error code.
    pub error_code: ErrorCode,
    /// Which tracepoint saw it.
    pub source: FaultSource,
}

/// Where a completed fault's time went, measured in the kernel between the fault's start and
/// its completion. Reclaim and compaction are timed whole, on or off the CPU; off-CPU time is
/// the rest of the time the thread was switched out; so the parts add up to the duration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultTiming {
    pub duration_ns: u64,
    /// `None` when the kernel side missed the thread's return to the CPU (a rare race it
    /// detects): then the split is not known, only the duration.
    pub off_cpu_ns: Option<u64>,
    pub reclaim_ns: u64,
    pub compaction_ns: u64,
}

impl FaultTiming {
    /// The time the fault ran on the CPU outside reclaim and compaction, when the split is known.
    pub fn on_cpu_ns(self) -> Option<u64> {
        let off_cpu_ns = self.off_cpu_ns?;
        Some(
            self.duration_ns
                .saturating_sub(off_cpu_ns)
                .saturating_sub(self.reclaim_ns)
                .saturating_sub(self.compaction_ns),
        )
    }
}

/// A traced fault completed: the kernel fired its minor or major software event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultEnd {
    /// CLOCK_MONOTONIC nanoseconds at the completion.
    pub timestamp_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// The start timestamp of the fault this ends: its [`Fault::timestamp_ns`].
    pub start_ns: u64,
    /// The faulting address the completion event saw.
    pub address: u64,
    /// Which event the kernel fired: PAGE_FAULTS_MIN or PAGE_FAULTS_MAJ.
    pub class: CompletedClass,
    pub timing: FaultTiming,
}

/// The thread a record is about, with its fault counters at that moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadSnapshot {
    pub tid: u32,
    pub counters: FaultCounters,
}

/// A decoded record and the snapshot of its thread that every record carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub snapshot: ThreadSnapshot,
    pub record: Record,
    /// A fault's user stack (`--stacks`) as the kernel gave it; `None` for a fault without one
    /// and every other record.
    pub stack: Option<RawStack>,
}

/// A fault's user stack as the kernel side captured it, before the loader names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawStack {
    /// `--call-graph fp`: the addresses a frame-pointer walk read in the kernel, innermost
    /// first: the faulting instruction, then return addresses.
    Frames(Vec<u64>),
    /// `--call-graph dwarf`: the user registers and the top of the user stack, for the loader
    /// to unwind with each module's unwind tables.
    Copied(StackCopy),
}

/// The user registers at a fault (or at its syscall's entry, for a kernel-mode fault) and the
/// user stack from `regs.sp` up, as far as the kernel side could read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StackCopy {
    pub regs: demo_common::UserRegs,
    /// The user memory at `regs.sp ..`, byte `i` at `regs.sp + i`, from `skipped` on: at most
    /// `requested` bytes, fewer where the kernel met memory it could not read.
    pub bytes: Vec<u8>,
    /// How many bytes the copy asked for (`--stack-bytes`).
    pub requested: u32,
    /// How many of `bytes`, at their start, the kernel could not read and holds no memory:
    /// the pages at the stack pointer that were not present yet, as when the fault is the
    /// stack growing onto them. They keep their place so that offsets stay `address - sp`.
    pub skipped: u32,
    /// The copy stopped at the top of the main thread's stack, past which nothing is a frame.
    pub at_top: bool,
}

impl StackCopy {
    /// The copy stopped before its length: at memory it could not read, or at the top of the
    /// main thread's stack, above which are only its arguments and environment.
    pub fn short(&self) -> bool {
        self.bytes.len() < self.requested as usize
    }

    /// The 8 bytes at `address`, when they are memory the kernel read.
    pub fn word_at(&self, address: u64) -> Option<u64> {
        let offset = usize::try_from(address.checked_sub(self.regs.sp)?).ok()?;
        if offset < self.skipped as usize {
            return None;
        }
        let bytes = self.bytes.get(offset..offset.checked_add(8)?)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }
}

/// A traced process entered or left a memory syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallEvent {
    pub timestamp_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub syscall: Syscall,
    /// On entry: the arguments (unused ones 0). On exit: `None`.
    pub args: Option<[u64; 6]>,
    /// On exit: the return value. On entry: `None`.
    pub ret: Option<i64>,
}

/// A signal was generated by or for a traced process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalEvent {
    pub timestamp_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub target_tid: u32,
    pub signal: i32,
    pub code: i32,
    pub errno: i32,
    pub result: i32,
}

/// A followed process forked, or a traced process exited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessEvent {
    pub timestamp_ns: u64,
    /// The new child (fork) or the exited process (exit).
    pub pid: u32,
    /// The forking or exiting thread's process.
    pub parent: u32,
    pub tid: u32,
    pub exited: bool,
}

/// Under a cgroup scope, a process in the cgroup that was not traced yet joined the targets at
/// its first event, which follows. What it counted before is `counters` plus `gone`, exactly
/// when `threads` is 1: other live threads' counters are not in the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinEvent {
    pub pid: u32,
    /// The joining thread's counters, before its event.
    pub counters: FaultCounters,
    /// The final counters of the process's threads that were gone by then.
    pub gone: FaultCounters,
    /// The process's live threads then, the joining one included.
    pub threads: u32,
}

impl JoinEvent {
    /// What the process's threads had counted before it joined, when that is known: when the
    /// joining thread was its only live one.
    pub fn before(&self) -> Option<FaultCounters> {
        (self.threads == 1).then(|| self.counters.plus(self.gone))
    }
}

/// A traced process entered or returned from a glibc heap function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapEvent {
    pub timestamp_ns: u64,
    pub pid: u32,
    pub tid: u32,
    pub function: HeapFunction,
    /// On entry: the arguments. On return: `None`.
    pub args: Option<[u64; 2]>,
    /// On return: the pointer. On entry: `None`.
    pub ret: Option<u64>,
}

/// A file as the kernel identified it when it was mapped: its filesystem's device and its
/// inode, and its path, which is `None` when the kernel's walk could not make it whole (too
/// deep, too long, or a file no directory holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapturedFile {
    pub device: DeviceNumber,
    pub inode: u64,
    pub path: Option<Arc<str>>,
}

/// A device number, as major and minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceNumber {
    pub major: u32,
    pub minor: u32,
}

/// A traced mmap of a file succeeded: where the mapping landed, what was asked, and the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappedFile {
    pub pid: u32,
    pub start: u64,
    pub len: u64,
    pub prot: u64,
    pub flags: u64,
    /// The offset in the file, in bytes.
    pub offset: u64,
    pub file: CapturedFile,
}

/// What identifies the mappings a traced exec made: the executable, and the addresses the
/// kernel chose for the new image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecImage {
    pub pid: u32,
    pub exe: CapturedFile,
    pub layout: ImageLayout,
    /// The interpreter's load address (AT_BASE; 0 without one).
    pub interpreter_base: u64,
    /// The program headers' address (AT_PHDR).
    pub program_headers: u64,
    /// The entry point (AT_ENTRY).
    pub entry: u64,
    /// Where the kernel mapped the vDSO (AT_SYSINFO_EHDR; 0 without one).
    pub vdso: u64,
    /// The stack's VMA (the one that holds `start_stack`, which /proc names `[stack]`) as the
    /// kernel had it at the exec, start and end; `None` where the kernel did not say.
    pub stack: Option<(u64, u64)>,
    /// The new command name.
    pub command: String,
}

/// Where the kernel placed a new image's code, data, heap and stack (`mm_struct`'s fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageLayout {
    pub start_code: u64,
    pub end_code: u64,
    pub start_data: u64,
    pub end_data: u64,
    pub start_brk: u64,
    pub start_stack: u64,
}

impl From<[u64; 6]> for ImageLayout {
    /// The fields in the kernel's order, as the exec's record carries them.
    fn from(fields: [u64; 6]) -> Self {
        let [
            start_code,
            end_code,
            start_data,
            end_data,
            start_brk,
            start_stack,
        ] = fields;
        Self {
            start_code,
            end_code,
            start_data,
            end_data,
            start_brk,
            start_stack,
        }
    }
}

/// A decoded ring-buffer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A page fault, as the tracepoint saw it at its start.
    Fault(Fault),
    /// A thread of process `pid` exited; its snapshot has its final counters.
    ThreadExit { pid: u32 },
    /// A memory syscall's entry or exit.
    Syscall(SyscallEvent),
    /// A signal.
    Signal(SignalEvent),
    /// A fork of a followed process, or an exit of a traced one.
    Process(ProcessEvent),
    /// A heap function's entry or return.
    Heap(HeapEvent),
    /// This traced process exec'd: a new image, with new mappings.
    Exec(u32),
    /// A traced process mapped a file.
    MappedFile(MappedFile),
    /// What the kernel mapped for a traced process's new image; follows its [`Record::Exec`].
    ExecImage(ExecImage),
    /// A traced fault completed (durations on).
    FaultEnd(FaultEnd),
    /// A process in the scoped cgroup joined the targets (`--cgroup`).
    Joined(JoinEvent),
}
