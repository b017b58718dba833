//! Types shared by the eBPF programs and the userspace loader: map and program names and the fixed-size records of the ring buffer.
#![no_std]

/// Hash map of traced thread-group ids (`u32` → `u8` flags, see [`target_flags`]).
pub const TARGETS_MAP: &str = "TARGETS";

/// What a [`TARGETS_MAP`] entry asks of the kernel side.
pub mod target_flags {
    /// Report this process's faults, syscalls, signals and heap calls.
    pub const REPORT: u8 = 1;
    /// When this process forks, add the child, reported.
    pub const FOLLOW: u8 = 2;
    /// Children added through [`FOLLOW`] follow their own children too.
    pub const DESCENDANTS: u8 = 4;
}
/// Array map of one cgroup (`BPF_MAP_TYPE_CGROUP_ARRAY`, slot 0): with `--cgroup`, the loader
/// sets the cgroup v2 directory there, and the programs report only the tasks in it or below it.
pub const CGROUP_SCOPE_MAP: &str = "CGROUP_SCOPE";
/// Read-only global of the eBPF object: 1 when the programs are scoped to the cgroup in
/// [`CGROUP_SCOPE_MAP`], 0 (the default) when they report the processes in [`TARGETS_MAP`]
/// alone. Frozen before the programs load, so without a scope the verifier drops the check.
pub const CGROUP_SCOPED_GLOBAL: &str = "CGROUP_SCOPED";

/// Ring buffer that carries one record per traced fault.
pub const EVENTS_MAP: &str = "EVENTS";
/// Per-CPU array of `u64`: slot `k` counts records of [`RecordKind`] `k` that found the ring
/// buffer full and were lost; slot [`UNTRACED_CHILD_SLOT`] counts followed children that found
/// the target map full, and slot [`UNJOINED_SLOT`] the events of scoped processes that found it
/// full as they joined.
pub const DROPS_MAP: &str = "DROPS";
/// Slots of [`DROPS_MAP`]: one per [`RecordKind`] tag (1 to 16), and the two below.
pub const DROP_SLOTS: u32 = 18;
/// The [`DROPS_MAP`] slot of children that could not be added to the target map.
pub const UNTRACED_CHILD_SLOT: u32 = 0;
/// The [`DROPS_MAP`] slot of events reported, under a cgroup scope, by a process that could not
/// join the target map because it was full: each such event counts once, and is reported all
/// the same, without a [`JoinRecord`]; the process's forks and exit go unreported.
pub const UNJOINED_SLOT: u32 = 17;

/// How many processes can be traced at once.
pub const MAX_TARGETS: u32 = 4096;
/// Default byte size of the ring buffer: room for about 230,000 fault records (72 bytes each
/// with the ring's own header), so a burst of faults between two polls of the reader does not
/// overflow it. 8 MiB kept up with two CPUs faulting at full speed until each fault line grew by
/// its code (symbols); then the bench's all-CPU run lost about 1.5% of 2.1 million faults, and
/// 16 MiB lost none.
pub const DEFAULT_RING_BYTES: u32 = 16 << 20;
/// The ring buffer's default size when faults are timed: each fault then sends a second record,
/// its end (80 bytes with the ring's header). With 16 MiB, two thousand threads writing 64
/// pages each at once, loader and all on two CPUs, lost 82,000 of 256,000 records.
pub const DURATIONS_RING_BYTES: u32 = 32 << 20;
/// The ring buffer's default size when each fault copies its user stack (`--call-graph
/// dwarf`): a record then carries the copy, 8 KiB by default, so 64 MiB holds eight thousand
/// faults while the loader unwinds.
pub const STACK_COPY_RING_BYTES: u32 = 64 << 20;
/// Once this many bytes wait in the ring buffer, the kernel side wakes the reader at once; below it,
/// records are submitted without a wakeup and the reader finds them on its next poll.
pub const WAKEUP_THRESHOLD_BYTES: u64 = 1 << 20;

/// Per CPU and by [`process_drop_key`], the records lost because the ring buffer was full.
pub const PROCESS_DROPS_MAP: &str = "PROCESS_DROPS";

/// How many (process, record kind) pairs [`PROCESS_DROPS_MAP`] keeps.
pub const MAX_PROCESS_DROP_KEYS: u32 = 4096;

/// The key of process `tgid`'s lost records of `kind` in [`PROCESS_DROPS_MAP`].
#[must_use]
pub const fn process_drop_key(tgid: u32, kind: RecordKind) -> u64 {
    ((tgid as u64) << 32) | kind as u64
}

/// Read-only global of the eBPF object: the [`TaskLayout`] of the running kernel, which the
/// loader reads from the kernel's BTF and sets before loading.
pub const TASK_LAYOUT_GLOBAL: &str = "TASK_LAYOUT";

/// Byte offsets of the fields of the kernel's `struct task_struct` that the programs read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskLayout {
    /// `pid_t pid`: the thread id.
    pub pid: u64,
    /// `pid_t tgid`: the process id.
    pub tgid: u64,
    /// `unsigned int flags`: the task's `PF_*` flags.
    pub flags: u64,
    /// `unsigned long min_flt`.
    pub min_flt: u64,
    /// `unsigned long maj_flt`.
    pub maj_flt: u64,
    /// `struct signal_struct *signal`: what the threads of a process share.
    pub signal: u64,
    /// `unsigned long min_flt` of `struct signal_struct`: the minor faults of the process's
    /// threads that are gone.
    pub signal_min_flt: u64,
    /// `unsigned long maj_flt` of `struct signal_struct`.
    pub signal_maj_flt: u64,
    /// `int nr_threads` of `struct signal_struct`: the process's live threads.
    pub signal_nr_threads: u64,
}
/// `PF_EXITING` of `task_struct.flags`: the task began to exit (set before
/// `sched:sched_process_exit` fires, and unchanged since Linux 2.6).
pub const PF_EXITING: u32 = 0x4;

/// Read-only global of the eBPF object: the [`FileLayout`] of the running kernel, which the
/// loader reads from the kernel's BTF and sets before loading.
pub const FILE_LAYOUT_GLOBAL: &str = "FILE_LAYOUT";

/// Byte offsets of the kernel fields the programs follow from a task to a mapped file's
/// identity and path, and to its memory's layout after an exec. Each is a member's offset in
/// its structure, counted through anonymous unions and structures.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileLayout {
    /// `struct files_struct *files` of `task_struct`.
    pub task_files: u64,
    /// `struct mm_struct *mm` of `task_struct`.
    pub task_mm: u64,
    /// `struct fdtable *fdt` of `files_struct`.
    pub files_fdt: u64,
    /// `unsigned int max_fds` of `fdtable`.
    pub fdtable_max_fds: u64,
    /// `struct file **fd` of `fdtable`.
    pub fdtable_fd: u64,
    /// `struct path f_path` of `file`.
    pub file_path: u64,
    /// `struct inode *f_inode` of `file`.
    pub file_inode: u64,
    /// `struct vfsmount *mnt` of `path`.
    pub path_mnt: u64,
    /// `struct dentry *dentry` of `path`.
    pub path_dentry: u64,
    /// `unsigned long i_ino` of `inode`.
    pub inode_ino: u64,
    /// `struct super_block *i_sb` of `inode`.
    pub inode_sb: u64,
    /// `dev_t s_dev` of `super_block`.
    pub super_block_dev: u64,
    /// `struct dentry *d_parent` of `dentry`.
    pub dentry_parent: u64,
    /// `struct qstr d_name` of `dentry`.
    pub dentry_name: u64,
    /// `const unsigned char *name` of `qstr`.
    pub qstr_name: u64,
    /// `struct mount *mnt_parent` of `mount`.
    pub mount_parent: u64,
    /// `struct dentry *mnt_mountpoint` of `mount`.
    pub mount_mountpoint: u64,
    /// `struct vfsmount mnt` of `mount`: a `vfsmount` pointer less this is its `mount`.
    pub mount_mnt: u64,
    /// `struct dentry *mnt_root` of `vfsmount`.
    pub vfsmount_root: u64,
    /// `struct file *exe_file` of `mm_struct`.
    pub mm_exe_file: u64,
    /// `unsigned long start_code, end_code, start_data, end_data, start_brk, start_stack` of
    /// `mm_struct`, in [`ExecImageRecord::layout`]'s order.
    pub mm_layout: [u64; 6],
    /// `unsigned long saved_auxv[]` of `mm_struct`.
    pub mm_saved_auxv: u64,
    /// `unsigned long vm_start, vm_end` of `vm_area_struct`.
    pub vma_bounds: [u64; 2],
}

/// The bytes of a [`CapturedPath`]: its components, leaf first, each ending in a NUL.
pub const PATH_BYTES: usize = 512;
/// The most bytes one component is read with (NAME_MAX and its NUL); a component starts in
/// the first [`PATH_COMPONENT_BYTES`] of the buffer, so it always fits.
pub const PATH_COMPONENT_BYTES: usize = 256;
/// The most steps of a path's walk: one per component, and one per mount crossed.
pub const MAX_PATH_STEPS: usize = 32;
/// The words of `mm_struct.saved_auxv` an [`ExecImageRecord`] copies (the kernel's
/// AT_VECTOR_SIZE on x86-64): (type, value) pairs up to AT_NULL.
pub const AUXV_WORDS: usize = 56;

/// A file as the kernel knows it: its filesystem's device (`s_dev`, the kernel's encoding:
/// major in the bits from 20, minor below) and its inode number.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileIdentity {
    pub device: u32,
    pub _padding: u32,
    pub inode: u64,
}

/// A file's path as the kernel had it, walked from its dentry up to the root of the mount
/// namespace: `len` bytes of components, leaf first, each ending in a NUL. `complete` is 1
/// when the walk reached that root; 0 when it ran out of steps or room, or met a file that
/// no directory holds (a pipe, a memfd), so the components are not the whole path.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapturedPath {
    pub len: u32,
    pub complete: u32,
    pub bytes: [u8; PATH_BYTES],
}

/// Program attached to `signal:signal_generate`.
pub const SIGNAL_PROGRAM: &str = "signal_generate";
/// Program attached to `task:task_newtask`, which adds followed children.
pub const NEW_TASK_PROGRAM: &str = "task_newtask";
/// Program attached to `sched:sched_process_exit`.
pub const PROCESS_EXIT_PROGRAM: &str = "sched_process_exit";
/// The program on `sched:sched_process_exec`.
pub const PROCESS_EXEC_PROGRAM: &str = "sched_process_exec";
/// Program attached to the PAGE_FAULTS software perf event when the exceptions tracepoints are
/// missing or `--source perf` asks for it.
pub const PERF_FAULT_PROGRAM: &str = "page_fault_perf";

/// Per-CPU hash of fault counts per process for `demo top` (`u32` tgid → [`TopCounts`]).
pub const TOP_COUNTS_MAP: &str = "TOP_COUNTS";
/// Per-CPU LRU hash of fault counts per page of one process (`PageKey` → `PageCounts`).
pub const PAGE_COUNTS_MAP: &str = "PAGE_COUNTS";
/// Array of `u32` settings for `demo top`; see [`top_config`].
pub const TOP_CONFIG_MAP: &str = "TOP_CONFIG";
/// Per-CPU array of `u64` counters for `demo top`; see [`top_counters`].
pub const TOP_COUNTERS_MAP: &str = "TOP_COUNTERS";
/// How many processes `demo top` can count at once; more are counted as dropped.
pub const TOP_MAX_PROCESSES: u32 = 16384;
/// How many pages `demo top --pages` keeps counts for; the least recently hit are evicted.
/// Twice what the tests touch: a per-CPU LRU starts evicting from its per-CPU free lists before
/// it is full.
pub const TOP_MAX_PAGES: u32 = 131072;

/// Indices of [`TOP_CONFIG_MAP`].
pub mod top_config {
    /// The process whose faults are counted per page; 0 for none.
    pub const PAGES_PID: u32 = 0;
    pub const LEN: u32 = 1;
}

/// Indices of [`TOP_COUNTERS_MAP`].
pub mod top_counters {
    /// Faults of processes that found the process map full, so they went uncounted.
    pub const PROCESSES_DROPPED: u32 = 0;
    /// Pages that entered the page map; those not in it any more were evicted.
    pub const PAGES_INSERTED: u32 = 1;
    /// Faults that began while another counting program was changing the same CPU's recent
    /// counts (a kernel-mode fault inside one), so they went uncounted.
    pub const NESTED_DROPPED: u32 = 2;
    /// Exits whose counters found the exit map full, so they went unkept.
    pub const EXITS_DROPPED: u32 = 3;
    /// With durations: completed faults whose time went uncounted (the time map was full, the
    /// completion came inside another counting program on its CPU, or the start could not be
    /// stored). The start map is an LRU map, so a full one evicts the least recently faulting
    /// thread's start instead: that thread's fault then completes untimed without a count here,
    /// as does one that began before top attached.
    pub const TIMES_DROPPED: u32 = 4;
    pub const LEN: u32 = 5;
}

/// What [`TOP_FLUSH_PROGRAM`] returns.
pub mod top_flush_result {
    /// The CPU's recent counts were added to the process map.
    pub const FLUSHED: u32 = 0;
    /// A program was changing them when the flush ran; run it again.
    pub const BUSY: u32 = 1;
}

/// Program `demo top` never attaches: it runs it on each CPU (`BPF_PROG_TEST_RUN` with
/// `BPF_F_TEST_RUN_ON_CPU`) to add that CPU's [`RecentFaults`] into the process map before it
/// reads the map, so what it reads is exact.
pub const TOP_FLUSH_PROGRAM: &str = "top_flush";

/// Program counting `exceptions:page_fault_user` for `demo top`.
pub const TOP_FAULT_USER_PROGRAM: &str = "top_fault_user";
/// Program counting `exceptions:page_fault_kernel` for `demo top`.
pub const TOP_FAULT_KERNEL_PROGRAM: &str = "top_fault_kernel";
/// Programs that count nothing, on the same tracepoints: the bench measures with them what the
/// hook alone costs a fault. They are in an object of their own, demo-ebpf's `demo-floor`.
pub const TOP_EMPTY_USER_PROGRAM: &str = "top_empty_user";
pub const TOP_EMPTY_KERNEL_PROGRAM: &str = "top_empty_kernel";
/// Program attached to `sched:sched_process_exit` for `demo top`: keeps an exiting process's
/// final fault counters, which /proc no longer shows.
pub const TOP_EXIT_PROGRAM: &str = "top_process_exit";
/// Hash of the final fault counters of processes that exited (`u32` tgid → [`ExitCounts`]),
/// for `demo top`; it reads and clears them every interval.
pub const TOP_EXITS_MAP: &str = "TOP_EXITS";

/// Read-only global of demo-ebpf's `top` module: 1 when `demo top --durations` times faults.
pub const TOP_DURATIONS_GLOBAL: &str = "TOP_DURATIONS";
/// LRU hash of when each thread's fault under way began (`u32` tid → `u64` ns, 0 for none),
/// written by the top fault programs; sized 1 without durations.
pub const TOP_FAULT_STARTS_MAP: &str = "TOP_FAULT_STARTS";
/// How many threads `demo top --durations` times at once; past it the least recently faulting
/// thread's start is evicted.
pub const TOP_MAX_THREADS: u32 = 32768;
/// Per-CPU hash of fault durations per process (`u32` tgid → [`TopTimes`]); sized 1 without
/// durations.
pub const TOP_TIMES_MAP: &str = "TOP_TIMES";
/// Programs on the PAGE_FAULTS_MIN and PAGE_FAULTS_MAJ software perf events, opened per CPU
/// for every process, which time `demo top`'s faults as they complete.
pub const TOP_FAULT_DONE_MINOR_PROGRAM: &str = "top_fault_done_minor";
pub const TOP_FAULT_DONE_MAJOR_PROGRAM: &str = "top_fault_done_major";

/// `demo top`'s duration buckets: log2, bucket `i` holding the durations above bucket `i - 1`'s
/// bound up to `2^(FIRST_BOUND_LOG2 + i)` ns (1.024 µs, 2.048 µs, … 1.07 s), and a last one
/// above 1.07 s. Bounded, so that a Prometheus histogram has the same series whatever happens.
pub mod top_time {
    /// log2 of the first bucket's upper bound in nanoseconds: 1,024 ns.
    pub const FIRST_BOUND_LOG2: u32 = 10;
    /// log2 of the last bound: 2^30 ns, 1.07 s.
    pub const LAST_BOUND_LOG2: u32 = 30;
    /// The buckets with a bound, and the last one without.
    pub const BUCKETS: usize = (LAST_BOUND_LOG2 - FIRST_BOUND_LOG2) as usize + 2;

    /// The bucket of a duration of `ns` nanoseconds.
    #[inline(always)]
    pub fn bucket_of(ns: u64) -> usize {
        if ns <= 1 << FIRST_BOUND_LOG2 {
            return 0;
        }
        // The bits of ns - 1: the smallest power of two at least ns is 2^bits.
        let bits = 64 - (ns - 1).leading_zeros();
        ((bits - FIRST_BOUND_LOG2) as usize).min(BUCKETS - 1)
    }

    /// The upper bound of bucket `bucket` in nanoseconds (inclusive); `None` for the last.
    pub fn bound_ns(bucket: usize) -> Option<u64> {
        (bucket + 1 < BUCKETS).then(|| 1 << (FIRST_BOUND_LOG2 as usize + bucket))
    }
}

/// Program attached to `exceptions:page_fault_user`.
pub const PAGE_FAULT_USER_PROGRAM: &str = "page_fault_user";
/// Program attached to `exceptions:page_fault_kernel`.
pub const PAGE_FAULT_KERNEL_PROGRAM: &str = "page_fault_kernel";

/// The arguments of the `exceptions:page_fault_user` and `page_fault_kernel` tracepoints on
/// x86-64, by position: the fault programs attach as raw tracepoints and read argument `n` of
/// the call site with `ctx.arg(n)`. The loader checks [`ARGS`](fault_tracepoint::ARGS) against
/// the tracepoint's prototype in the kernel's BTF, so a kernel that reordered them is refused
/// with a clear message rather than misread.
pub mod fault_tracepoint {
    /// `unsigned long address`: the faulting address.
    pub const ADDRESS: usize = 0;
    /// `struct pt_regs *regs`: the registers at the fault.
    pub const REGS: usize = 1;
    /// `unsigned long error_code`: the x86 page-fault error code.
    pub const ERROR_CODE: usize = 2;
    /// Each argument's name in the kernel's prototype, with the position the programs read it
    /// at (not counting the tracepoint's own leading `void *` data).
    pub const ARGS: [(&str, usize); 3] = [
        ("address", ADDRESS),
        ("regs", REGS),
        ("error_code", ERROR_CODE),
    ];
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

/// Byte offsets of the fields of `task:task_newtask`.
pub mod new_task_tracepoint {
    /// Offset of `pid_t pid`: the new task.
    pub const PID: usize = 8;
    /// Offset of `u64 clone_flags`.
    pub const CLONE_FLAGS: usize = 32;
    /// CLONE_THREAD: the new task is a thread of its parent's process, not a new process.
    pub const CLONE_THREAD: u64 = 0x0001_0000;
}

/// Byte offsets of the fields of `sched:sched_process_exit`.
pub mod process_exit_tracepoint {
    /// Offset of `bool group_dead`: the last thread of the process is exiting.
    pub const GROUP_DEAD: usize = 32;
}

/// Byte offsets of the fields of the `syscalls:sys_enter_*` and `sys_exit_*` tracepoints.
pub mod syscall_tracepoint {
    /// Offset of the first argument; each argument takes 8 bytes.
    pub const FIRST_ARG: usize = 16;
    /// Offset of `long ret` in `sys_exit_*`.
    pub const RET: usize = 16;
}

/// Set in a [`FaultRecord`]'s `error_code` when the source could not see the CPU's error code
/// (the perf-event source); then only the user-mode bit (bit 2) is meaningful.
pub const ERROR_CODE_UNKNOWN: u64 = 1 << 63;

/// The tag at the start of every ring-buffer record, saying which record type follows.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKind {
    /// A [`FaultRecord`].
    Fault = 1,
    /// A [`ProcessRecord`]: a thread of a traced process exited. Detail: 1 when it was the
    /// process's last thread. Its header's counters are the thread's final ones.
    ThreadExit = 2,
    /// A [`SyscallRecord`] for a syscall's entry: the arguments are set.
    SyscallEnter = 3,
    /// A [`SyscallRecord`] for a syscall's exit: the return value is set.
    SyscallExit = 4,
    /// A [`SignalRecord`].
    Signal = 5,
    /// A [`ProcessRecord`]: a followed process forked a child, now traced.
    Fork = 6,
    /// A [`ProcessRecord`]: the last thread of a traced process exited.
    Exit = 7,
    /// A [`HeapRecord`] for a heap function's entry.
    HeapEnter = 8,
    /// A [`HeapRecord`] for a heap function's return.
    HeapExit = 9,
    /// A [`ProcessRecord`]: a traced process replaced its image with execve; its mappings are
    /// new from here on.
    Exec = 10,
    /// A [`FaultStackRecord`]: a fault with its user stack (`--stacks`).
    FaultStack = 11,
    /// A [`MappedFileRecord`]: a traced mmap of a file succeeded. It follows that mmap's exit.
    MappedFile = 12,
    /// An [`ExecImageRecord`]: what the kernel mapped for a new image. It follows the
    /// [`RecordKind::Exec`] record of the same exec.
    ExecImage = 13,
    /// A [`FaultEndRecord`]: a traced fault completed. Detail: its [`CompletedClass`].
    FaultEnd = 14,
    /// A [`FaultUserStackRecord`]: a fault with the user registers and the top of the user
    /// stack, for the loader to unwind (`--call-graph dwarf`). Detail: the [`FaultSource`].
    FaultUserStack = 15,
    /// A [`JoinRecord`]: under a cgroup scope, a process in the cgroup that was not traced yet
    /// made its first event, and is traced from here on. Detail: its pid.
    Join = 16,
}

impl RecordKind {
    /// Every kind, in tag order.
    pub const ALL: [Self; 16] = [
        Self::Fault,
        Self::ThreadExit,
        Self::SyscallEnter,
        Self::SyscallExit,
        Self::Signal,
        Self::Fork,
        Self::Exit,
        Self::HeapEnter,
        Self::HeapExit,
        Self::Exec,
        Self::FaultStack,
        Self::MappedFile,
        Self::ExecImage,
        Self::FaultEnd,
        Self::FaultUserStack,
        Self::Join,
    ];

    /// A short name for reports, e.g. `fault`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Fault => "fault",
            Self::ThreadExit => "thread_exit",
            Self::SyscallEnter => "syscall_enter",
            Self::SyscallExit => "syscall_exit",
            Self::Signal => "signal",
            Self::Fork => "fork",
            Self::Exit => "exit",
            Self::HeapEnter => "heap_enter",
            Self::HeapExit => "heap_exit",
            Self::Exec => "exec",
            Self::FaultStack => "fault_stack",
            Self::MappedFile => "mapped_file",
            Self::ExecImage => "exec_image",
            Self::FaultEnd => "fault_end",
            Self::FaultUserStack => "fault_user_stack",
            Self::Join => "join",
        }
    }

    /// Returns the kind with this tag, or `None` for a tag this build does not know.
    pub const fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            1 => Some(Self::Fault),
            2 => Some(Self::ThreadExit),
            3 => Some(Self::SyscallEnter),
            4 => Some(Self::SyscallExit),
            5 => Some(Self::Signal),
            6 => Some(Self::Fork),
            7 => Some(Self::Exit),
            8 => Some(Self::HeapEnter),
            9 => Some(Self::HeapExit),
            10 => Some(Self::Exec),
            11 => Some(Self::FaultStack),
            12 => Some(Self::MappedFile),
            13 => Some(Self::ExecImage),
            14 => Some(Self::FaultEnd),
            15 => Some(Self::FaultUserStack),
            16 => Some(Self::Join),
            _ => None,
        }
    }
}

/// A thread's own fault counters, as the kernel keeps them in its `task_struct` (`min_flt`,
/// `maj_flt`; /proc/PID/task/TID/stat shows them). The kernel adds one when a fault completes,
/// the same moment the PAGE_FAULTS_MIN/MAJ software perf events fire, so the change between
/// two snapshots says how the faults between them ended.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounters {
    pub minor: u64,
    pub major: u64,
}

impl FaultCounters {
    /// The counts of both, added class by class (wrapping, as the kernel's counters do).
    #[must_use]
    pub const fn plus(self, other: Self) -> Self {
        Self {
            minor: self.minor.wrapping_add(other.minor),
            major: self.major.wrapping_add(other.major),
        }
    }

    /// Minor and major together: the faults that completed.
    #[must_use]
    pub const fn total(self) -> u64 {
        self.minor.wrapping_add(self.major)
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
    Mprotect = 5,
    Fadvise64 = 6,
}

impl Syscall {
    pub const fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            0 => Some(Self::Mmap),
            1 => Some(Self::Munmap),
            2 => Some(Self::Mremap),
            3 => Some(Self::Brk),
            4 => Some(Self::Madvise),
            5 => Some(Self::Mprotect),
            6 => Some(Self::Fadvise64),
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
            Self::Mprotect => "mprotect",
            Self::Fadvise64 => "fadvise64",
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
            Self::Mprotect => 3,
            Self::Fadvise64 => 4,
        }
    }
}

/// Every traced syscall; the programs are named `sys_enter_NAME` and `sys_exit_NAME`.
pub const SYSCALL_TRACEPOINTS: [Syscall; 7] = [
    Syscall::Mmap,
    Syscall::Munmap,
    Syscall::Mremap,
    Syscall::Brk,
    Syscall::Madvise,
    Syscall::Mprotect,
    Syscall::Fadvise64,
];

/// Which tracepoint reported a fault.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultSource {
    /// `exceptions:page_fault_user`: the CPU was in user mode.
    User = 0,
    /// `exceptions:page_fault_kernel`: the CPU was in kernel mode, e.g. copying to a user buffer.
    Kernel = 1,
    /// The PAGE_FAULTS software perf event, used where the exceptions tracepoints do not exist.
    Perf = 2,
}

impl FaultSource {
    /// Returns the source with this tag, or `None` for an unknown one.
    pub const fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            0 => Some(Self::User),
            1 => Some(Self::Kernel),
            2 => Some(Self::Perf),
            _ => None,
        }
    }
}

/// The glibc heap functions whose calls are traced with uprobes.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeapFunction {
    Malloc = 0,
    Calloc = 1,
    Realloc = 2,
    Free = 3,
}

impl HeapFunction {
    pub const fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            0 => Some(Self::Malloc),
            1 => Some(Self::Calloc),
            2 => Some(Self::Realloc),
            3 => Some(Self::Free),
            _ => None,
        }
    }

    /// The libc symbol.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Malloc => "malloc",
            Self::Calloc => "calloc",
            Self::Realloc => "realloc",
            Self::Free => "free",
        }
    }
}

/// The first 40 bytes of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// A [`RecordKind`] as `u32`: which record this is.
    pub kind: u32,
    /// The kind's own detail: a [`FaultSource`], [`Syscall`] or [`HeapFunction`] tag, a signal
    /// number, a pid (fork: the child; exit: the process), or whether a thread was the last.
    pub detail: u32,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC nanoseconds.
    pub timestamp_ns: u64,
    /// Thread-group id (the process id) of the task the event happened in.
    pub tgid: u32,
    /// Thread id of that task.
    pub tid: u32,
    /// That thread's fault counters at the event. A fault record's do not count the fault yet;
    /// the thread's next record of any kind shows whether it completed.
    pub counters: FaultCounters,
}

/// One page fault of a traced process, as it began. Detail: its [`FaultSource`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultRecord {
    pub header: RecordHeader,
    /// The faulting virtual address.
    pub address: u64,
    /// The instruction pointer at the fault.
    pub ip: u64,
    /// The x86 page-fault error code, or [`ERROR_CODE_UNKNOWN`] with the mode bit.
    pub error_code: u64,
}

/// How a traced fault completed, from the software perf event the kernel fired for it: the
/// detail of a [`FaultEndRecord`]. A fault that failed fires none.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CompletedClass {
    /// PERF_COUNT_SW_PAGE_FAULTS_MIN fired: resolved without I/O.
    Minor = 0,
    /// PERF_COUNT_SW_PAGE_FAULTS_MAJ fired: it needed I/O, or was retried.
    Major = 1,
}

impl CompletedClass {
    /// Returns the class with this tag, or `None` for a tag this build does not know.
    pub const fn from_tag(tag: u32) -> Option<Self> {
        match tag {
            0 => Some(Self::Minor),
            1 => Some(Self::Major),
            _ => None,
        }
    }
}

/// A traced fault completed. Its header's timestamp is the completion, and its counters
/// already count the fault (the kernel bumps them just before it fires the event). Detail:
/// the [`CompletedClass`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultEndRecord {
    pub header: RecordHeader,
    /// The timestamp of the fault's own [`FaultRecord`]: which fault this ends.
    pub start_ns: u64,
    /// The faulting address, as the completion event saw it.
    pub address: u64,
    /// Time the thread spent off the CPU during the fault (sleeping on I/O or a lock, or
    /// preempted), outside reclaim and compaction; [`OFF_CPU_UNKNOWN`] when not known.
    pub off_cpu_ns: u64,
    /// Time in direct reclaim (global or memory cgroup) during the fault, on or off CPU.
    pub reclaim_ns: u64,
    /// Time in direct compaction during the fault, on or off CPU.
    pub compaction_ns: u64,
}

/// What the kernel side keeps for a traced thread's fault between its start and its completion
/// (the value of [`OPEN_FAULTS_MAP`]). `start_ns` is 0 when no fault is open.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFault {
    /// The fault record's timestamp; 0 once the fault completed.
    pub start_ns: u64,
    /// The faulting address.
    pub address: u64,
    /// When the thread last left the CPU during the fault, or 0 while it runs.
    pub off_since: u64,
    pub off_cpu_ns: u64,
    /// When direct reclaim began, or 0 outside it.
    pub reclaim_since: u64,
    pub reclaim_ns: u64,
    /// When direct compaction began, or 0 outside it.
    pub compaction_since: u64,
    pub compaction_ns: u64,
}

/// Array of `u32`: the kernel side's filter of threads off the CPU inside a fault, by thread id.
pub const OFF_CPU_MAP: &str = "OFF_CPU";
/// Slots of [`OFF_CPU_MAP`].
pub const OFF_CPU_SLOTS: u32 = 65536;
/// A [`FaultEndRecord`]'s `off_cpu_ns` when the thread's return to the CPU was missed (see the
/// kernel side's `OFF_CPU` filter): its time off the CPU is not known.
pub const OFF_CPU_UNKNOWN: u64 = u64::MAX;

/// LRU hash of the open fault of each traced thread (`u32` tid → [`OpenFault`]), written at a
/// fault's start and closed at its completion, when durations are on.
pub const OPEN_FAULTS_MAP: &str = "OPEN_FAULTS";
/// How many threads [`OPEN_FAULTS_MAP`] keeps; the least recently faulting go first.
pub const MAX_OPEN_FAULTS: u32 = 16384;
/// The name of the eBPF global that says whether the fault programs open a fault for its
/// completion (1) or not (0): durations cost a map update per fault, paid only when asked.
pub const DURATIONS_GLOBAL: &str = "DURATIONS";
/// The programs on the PAGE_FAULTS_MIN and PAGE_FAULTS_MAJ software perf events, attached per
/// traced process and inherited by its threads and children.
pub const FAULT_DONE_MINOR_PROGRAM: &str = "fault_done_minor";
pub const FAULT_DONE_MAJOR_PROGRAM: &str = "fault_done_major";
/// The raw tracepoint program on `sched_switch` that times a fault's thread off the CPU.
pub const SCHED_SWITCH_PROGRAM: &str = "fault_sched_switch";
/// The raw tracepoint programs that time direct reclaim and compaction inside a fault, with
/// the tracepoint each attaches to.
pub const FAULT_STALL_PROGRAMS: [(&str, &str); 6] = [
    ("reclaim_begin", "mm_vmscan_direct_reclaim_begin"),
    ("reclaim_end", "mm_vmscan_direct_reclaim_end"),
    ("memcg_reclaim_begin", "mm_vmscan_memcg_reclaim_begin"),
    ("memcg_reclaim_end", "mm_vmscan_memcg_reclaim_end"),
    ("compaction_begin", "mm_compaction_begin"),
    ("compaction_end", "mm_compaction_end"),
];

/// The arguments of `sched_switch` the off-CPU program reads, by position (checked against
/// the kernel's BTF like [`fault_tracepoint::ARGS`]).
pub mod sched_switch_tracepoint {
    /// `struct task_struct *prev`: the task leaving the CPU (the current one).
    pub const PREV: usize = 1;
    /// `struct task_struct *next`: the task about to run.
    pub const NEXT: usize = 2;
    pub const ARGS: [(&str, usize); 2] = [("prev", PREV), ("next", NEXT)];
}

/// The most user-stack frames a [`FaultStackRecord`] holds (`--stack-depth`'s limit, the
/// kernel's own `sysctl kernel.perf_event_max_stack` default).
pub const MAX_STACK_DEPTH: usize = 127;

/// The name of the eBPF global that holds how many frames to capture per fault: 0 for none
/// (plain [`FaultRecord`]s), else at most [`MAX_STACK_DEPTH`].
pub const STACK_DEPTH_GLOBAL: &str = "STACK_DEPTH";

/// The most bytes of user stack `--call-graph dwarf` copies per fault (`--stack-bytes`), as
/// perf's `--call-graph dwarf,SIZE` allows.
pub const MAX_STACK_BYTES: usize = 65536;

/// The name of the eBPF global that holds how many bytes of user stack to copy per fault: 0
/// for none, else a multiple of 8 up to [`MAX_STACK_BYTES`]. The loader sets it before
/// loading; the programs read it as a constant.
pub const STACK_BYTES_GLOBAL: &str = "STACK_BYTES";

/// The user registers an unwinder starts from: where the thread was in user space when it
/// faulted (a user-mode fault), or when it entered the kernel (a kernel-mode fault: the
/// syscall's return address and stack).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
}

/// Set in a [`FaultUserStackRecord`]'s `flags` when the copy stopped at the top of the main
/// thread's stack, just past `argc`: nothing above it is a frame, so an unwinder that asks for
/// more went astray, and the stack is not cut there.
pub const STACK_COPY_AT_TOP: u32 = 1;

/// A fault with the user registers and the top of its user stack, for `--call-graph dwarf`.
/// The record is this header followed by `requested` bytes: byte `i` is the user memory at
/// `regs.sp + i` for `skipped <= i < copied`, and meaningless elsewhere (zeroes where a read
/// failed, and whatever the ring buffer held before past `copied`: nothing reads them).
/// Detail: the [`FaultSource`].
///
/// `skipped` is how many bytes at the start could not be read: the pages at the stack pointer
/// that are not present yet, as when the fault is the stack growing onto them (a frame just
/// made and written from its low end), at most a few pages. `copied` is where the copy
/// stopped, counted from the start, the skipped bytes included, so `skipped <= copied <=
/// requested`; when nothing could be read, both are 0. `copied < requested` means the copy
/// stopped early: at the top of the main thread's stack (just past `argc`, at its
/// `start_stack`: above are only its arguments and environment, nothing an unwinder reads), or
/// at memory it could not read (the top of any other stack, or a page not present above the
/// stack pointer).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultUserStackRecord {
    pub fault: FaultRecord,
    pub regs: UserRegs,
    pub requested: u32,
    pub skipped: u32,
    pub copied: u32,
    /// [`STACK_COPY_AT_TOP`] when the copy stopped at the main thread's first frame.
    pub flags: u32,
}

/// A fault with its user stack, innermost frame first. The record is only as long as the
/// frames captured: a [`FaultRecord`], then as many `u64` return addresses as fit in the
/// rest of the record's length. Detail: the [`FaultSource`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultStackRecord {
    pub fault: FaultRecord,
    pub frames: [u64; MAX_STACK_DEPTH],
}

/// Entry to ([`RecordKind::SyscallEnter`]) or exit from ([`RecordKind::SyscallExit`]) a traced
/// memory syscall. Detail: the [`Syscall`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallRecord {
    pub header: RecordHeader,
    /// The arguments, on entry; unused ones are 0.
    pub args: [u64; 6],
    /// The return value, on exit.
    pub ret: i64,
}

/// A signal generated for a traced process (or by one). Detail: the signal number.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalRecord {
    pub header: RecordHeader,
    /// The receiving thread.
    pub target_tid: u32,
    /// The si_code, e.g. SEGV_MAPERR.
    pub code: i32,
    pub errno: i32,
    /// The tracepoint's `result`: 0 delivered, 1 ignored, 2 already pending, …
    pub result: i32,
}

/// A followed process forked ([`RecordKind::Fork`]; detail: the child, now traced), a
/// traced process's last thread exited ([`RecordKind::Exit`]; detail: its pid), or a traced
/// process exec'd ([`RecordKind::Exec`]; detail: its pid).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessRecord {
    pub header: RecordHeader,
}

/// A file a traced process mapped, captured at mmap's exit: where it landed, what was asked,
/// and the file's identity and path. Detail: the file descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedFileRecord {
    pub header: RecordHeader,
    /// The mapping's start: mmap's return value.
    pub start: u64,
    /// mmap's `len`, `prot`, `flags` and `offset` (in bytes) arguments.
    pub len: u64,
    pub prot: u64,
    pub flags: u64,
    pub offset: u64,
    pub file: FileIdentity,
    pub path: CapturedPath,
}

/// What identifies the mappings a traced exec made, read at `sched:sched_process_exec` from
/// the new `mm_struct`. Detail: the pid.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecImageRecord {
    pub header: RecordHeader,
    /// The executable (`mm->exe_file`).
    pub exe: FileIdentity,
    /// `start_code`, `end_code`, `start_data`, `end_data`, `start_brk`, `start_stack`.
    pub layout: [u64; 6],
    /// The new image's auxiliary vector (`mm->saved_auxv`), (type, value) pairs to AT_NULL.
    pub auxv: [u64; AUXV_WORDS],
    /// The new command name (`task->comm`), NUL-padded.
    pub comm: [u8; 16],
    /// The VMA that holds `start_stack`, as the kernel had it at the exec: the one /proc names
    /// `[stack]`.
    pub stack: StackVma,
    pub path: CapturedPath,
}

/// A VMA's bounds (`vm_start`, `vm_end`), both 0 when it was not found.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StackVma {
    pub start: u64,
    pub end: u64,
}

/// A process in the scoped cgroup joined the targets at its first event, which follows this
/// record. Its header carries the joining thread's counters; with the gone threads' and the
/// count of live threads, they say what the process counted before the trace saw it: exactly
/// when the joining thread is its only one. Detail: the pid.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinRecord {
    pub header: RecordHeader,
    /// The final counters of the process's threads that are gone (`signal_struct`'s).
    pub gone_threads: FaultCounters,
    /// The process's live threads (`signal->nr_threads`), the joining one included.
    pub threads: u32,
    pub _padding: u32,
}

/// Entry to ([`RecordKind::HeapEnter`]) or return from ([`RecordKind::HeapExit`]) a glibc heap
/// function of a traced process. Detail: the [`HeapFunction`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapRecord {
    pub header: RecordHeader,
    /// On entry: malloc(size), calloc(nmemb, size), realloc(ptr, size), free(ptr).
    pub args: [u64; 2],
    /// On return: the returned pointer.
    pub ret: u64,
}

/// One process's fault counts on one CPU, for `demo top`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopCounts {
    /// Faults begun (tracepoint), any outcome.
    pub faults: u64,
    /// The same faults by mode ([`top_kind::USER`], [`top_kind::KERNEL`]: kernel mode is e.g.
    /// copy_to_user into an untouched page) and access ([`top_kind::READ`], [`top_kind::WRITE`],
    /// [`top_kind::EXEC`]), one add per fault.
    pub by_kind: [[u64; 3]; 2],
    /// The task's command when it last began faulting on a CPU, so that a process gone before
    /// demo read /proc, with its exit record lost, still has a name.
    pub comm: [u8; 16],
}

impl TopCounts {
    /// Faults of `access` (a [`top_kind`] access index), in both modes.
    pub fn of_access(&self, access: usize) -> u64 {
        self.by_kind[top_kind::USER][access] + self.by_kind[top_kind::KERNEL][access]
    }

    /// Faults taken in kernel mode.
    pub fn kernel_mode(&self) -> u64 {
        self.by_kind[top_kind::KERNEL].iter().sum()
    }
}

/// The indices of [`TopCounts::by_kind`]: first the mode, then the access.
pub mod top_kind {
    pub const USER: usize = 0;
    pub const KERNEL: usize = 1;
    pub const READ: usize = 0;
    pub const WRITE: usize = 1;
    pub const EXEC: usize = 2;
}

/// The counts of the process that faulted last on one CPU, kept apart from the process map so
/// that a run of faults of one process costs plain adds rather than a hash lookup each.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recent<T> {
    /// The process; 0 for none.
    pub tgid: u32,
    /// Nonzero while a program on this CPU changes the entry; one that interrupts it (a
    /// kernel-mode fault or an NMI) must then leave the entry alone.
    pub busy: u32,
    pub counts: T,
    /// Counts whose move into the process map failed (the kernel could not allocate the entry
    /// just then); every later flush on this CPU tries them again first. 0 for none.
    pub pending_tgid: u32,
    pub pending: T,
}

/// The recent fault counts of one CPU.
pub type RecentFaults = Recent<TopCounts>;
/// The recent fault durations of one CPU, with `demo top --durations`.
pub type RecentTimes = Recent<TopTimes>;

/// One process's completed faults timed on one CPU, for `demo top --durations`, by class
/// (indexed by [`CompletedClass`]): how many, their total time, and how many in each
/// [`top_time`] bucket.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopTimes {
    pub faults: [u64; 2],
    pub total_ns: [u64; 2],
    pub buckets: [[u64; top_time::BUCKETS]; 2],
}

impl TopTimes {
    /// Timed faults of both classes.
    #[inline(always)]
    pub fn timed(&self) -> u64 {
        self.faults[0] + self.faults[1]
    }

    /// Adds `other`'s faults to these.
    #[inline(always)]
    pub fn add(&mut self, other: &Self) {
        for class in 0..2 {
            self.faults[class] += other.faults[class];
            self.total_ns[class] += other.total_ns[class];
            for (total, count) in self.buckets[class].iter_mut().zip(&other.buckets[class]) {
                *total += count;
            }
        }
    }
}

/// A process's final fault counters and command, kept by `demo top`'s exit program.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitCounts {
    pub counters: FaultCounters,
    /// The command of its last thread, so a process that lived between two refreshes is named.
    pub comm: [u8; 16],
    /// Its cgroup v2 id (the inode of the cgroup's directory), so that a process gone before it
    /// was read is placed in its cgroup.
    pub cgroup: u64,
}

/// A page of one process, for `demo top --pages`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PageKey {
    pub tgid: u32,
    pub _padding: u32,
    /// The page's address (the faulting address with the low 12 bits cleared).
    pub page: u64,
}

/// One page's faults on one CPU, for `demo top --pages`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageCounts {
    pub faults: u64,
    /// The faulting instruction of the last of them (a kernel address for a kernel-mode fault),
    /// so the report can name the code; 0 when the registers could not be read.
    pub ip: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY (all): `repr(C)`, made only of integers, laid out without padding.
    unsafe impl aya::Pod for super::RecordHeader {}
    unsafe impl aya::Pod for super::TopCounts {}
    unsafe impl aya::Pod for super::TopTimes {}
    unsafe impl aya::Pod for super::PageKey {}
    unsafe impl aya::Pod for super::PageCounts {}
    unsafe impl aya::Pod for super::FaultRecord {}
    unsafe impl aya::Pod for super::FaultStackRecord {}
    unsafe impl aya::Pod for super::FaultUserStackRecord {}
    unsafe impl aya::Pod for super::UserRegs {}
    unsafe impl aya::Pod for super::FaultEndRecord {}
    unsafe impl aya::Pod for super::OpenFault {}
    unsafe impl aya::Pod for super::FaultCounters {}
    unsafe impl aya::Pod for super::ExitCounts {}
    unsafe impl aya::Pod for super::TaskLayout {}
    unsafe impl aya::Pod for super::SyscallRecord {}
    unsafe impl aya::Pod for super::SignalRecord {}
    unsafe impl aya::Pod for super::ProcessRecord {}
    unsafe impl aya::Pod for super::JoinRecord {}
    unsafe impl aya::Pod for super::HeapRecord {}
    unsafe impl aya::Pod for super::FileLayout {}
    unsafe impl aya::Pod for super::FileIdentity {}
    unsafe impl aya::Pod for super::CapturedPath {}
    unsafe impl aya::Pod for super::MappedFileRecord {}
    unsafe impl aya::Pod for super::ExecImageRecord {}
    unsafe impl aya::Pod for super::StackVma {}
}
