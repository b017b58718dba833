//! Mappings captured as they are made: a traced mmap of a file, at the syscall's exit, and the
//! new image's executable and layout at exec. The loader names faults from these facts, so an
//! address unmapped and reused later keeps each mapping's own name.

use core::{ffi::c_void, ptr::addr_of_mut};

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_comm,
        generated::{bpf_find_vma, bpf_probe_read_kernel},
    },
    macros::map,
    maps::LruHashMap,
};
use demo_common::{AUXV_WORDS, ExecImageRecord, MappedFileRecord, RecordKind, StackVma};

use crate::{
    files::{capture_path, file_of_fd, identity, layout, offset, read},
    records::{header, reported, reserve, wakeup_flag},
    task::{Task, current_task},
};

/// mmap's arguments per thread, from its entry to its exit, for file mappings of traced
/// processes only. An LRU map, so a thread killed inside mmap leaves nothing behind for good.
#[map]
static MMAP_ARGS: LruHashMap<u32, [u64; 6]> = LruHashMap::with_max_entries(1024, 0);

/// MAP_ANONYMOUS on x86-64.
const MAP_ANONYMOUS: u64 = 0x20;

/// Keeps a traced thread's mmap arguments until its exit, when they map a file.
#[inline(always)]
pub(crate) fn mmap_entered<C: EbpfContext>(ctx: &C, args: [u64; 6]) {
    let task = current_task();
    let fd = args[4] as i32;
    if fd < 0 || args[3] & MAP_ANONYMOUS != 0 || !reported(ctx, task) {
        return;
    }
    let _ = MMAP_ARGS.insert(task.tid, args, 0);
}

/// At a traced mmap's exit, reports the file it mapped, where, and the file's identity and
/// path, read through the descriptor it was mapped from.
#[inline(always)]
pub(crate) fn mmap_exited<C: EbpfContext>(ctx: &C, ret: i64) {
    let task = current_task();
    // SAFETY: a copy is taken at once; the entry is this thread's, which no other program
    // changes while the thread is in this syscall.
    let Some(args) = (unsafe { MMAP_ARGS.get(task.tid) }).copied() else {
        return;
    };
    let _ = MMAP_ARGS.remove(task.tid);
    // The kernel returns an error as -errno, in the last page of the address space.
    if (-4095..0).contains(&ret) || !reported(ctx, task) {
        return;
    }
    let [_, len, prot, flags, fd, file_offset] = args;
    let Some(file) = file_of_fd(task.task as u64, fd) else {
        return;
    };
    let Some(mut entry) = reserve::<MappedFileRecord, C>(ctx, RecordKind::MappedFile, task.tgid)
    else {
        return;
    };
    let record = entry.as_mut_ptr();
    // SAFETY: `record` is the reserved record, whole and writable; it is filled field by
    // field, since the record is larger than a program's stack.
    unsafe {
        addr_of_mut!((*record).header).write(header(task, RecordKind::MappedFile, fd as u32));
        addr_of_mut!((*record).start).write(ret as u64);
        addr_of_mut!((*record).len).write(len);
        addr_of_mut!((*record).prot).write(prot);
        addr_of_mut!((*record).flags).write(flags);
        addr_of_mut!((*record).offset).write(file_offset);
        addr_of_mut!((*record).file).write(identity(file));
        capture_path(file, addr_of_mut!((*record).path));
    }
    entry.submit(wakeup_flag());
}

/// At a traced exec, reports what identifies the mappings the kernel made for the new image:
/// the executable's identity and path, where code, data, heap and stack begin, and the
/// auxiliary vector (the interpreter's base, the program headers, the entry point).
#[inline(always)]
pub(crate) fn record_exec_image<C: EbpfContext>(ctx: &C, task: Task) {
    let l = layout();
    let Some(mm) = read::<u64>(task.task as u64 + offset(&l.task_mm)) else {
        return;
    };
    let Some(mut entry) = reserve::<ExecImageRecord, C>(ctx, RecordKind::ExecImage, task.tgid)
    else {
        return;
    };
    let record = entry.as_mut_ptr();
    let exe = read::<u64>(mm + offset(&l.mm_exe_file)).unwrap_or(0);
    // SAFETY: `record` is the reserved record, whole and writable; the auxiliary vector is
    // copied by a helper that fails rather than fault, into exactly its field.
    unsafe {
        addr_of_mut!((*record).header).write(header(task, RecordKind::ExecImage, task.tgid));
        addr_of_mut!((*record).exe).write(identity(exe));
        let fields = addr_of_mut!((*record).layout).cast::<u64>();
        for (i, field) in l.mm_layout.iter().enumerate() {
            fields
                .add(i)
                .write(read::<u64>(mm + offset(field)).unwrap_or(0));
        }
        let auxv = addr_of_mut!((*record).auxv);
        if bpf_probe_read_kernel(
            auxv.cast::<c_void>(),
            (AUXV_WORDS * 8) as u32,
            (mm + offset(&l.mm_saved_auxv)) as *const c_void,
        ) != 0
        {
            auxv.cast::<u64>().write(0);
        }
        addr_of_mut!((*record).comm).write(bpf_get_current_comm().unwrap_or([0; 16]));
        let start_stack = fields.add(5).read();
        addr_of_mut!((*record).stack).write(stack_vma(task, start_stack));
        capture_path(exe, addr_of_mut!((*record).path));
    }
    entry.submit(wakeup_flag());
}

/// The VMA of the current task that holds `address` (the new image's stack), as the kernel
/// has it now; all zero when the kernel finds none or cannot look (its mmap lock is taken).
#[inline(always)]
fn stack_vma(task: Task, address: u64) -> StackVma {
    let mut found = StackVma::default();
    // SAFETY: `task.task` is the current task as `bpf_get_current_task_btf` gave it, the
    // pointer the helper asks for; the callback is a static function of the callback's type,
    // and its context is `found`, on this stack for the whole call.
    unsafe {
        bpf_find_vma(
            task.task.cast_mut().cast(),
            address,
            vma_bounds as *mut c_void,
            addr_of_mut!(found).cast(),
            0,
        );
    }
    found
}

/// `bpf_find_vma`'s callback: copies the VMA's bounds into the [`StackVma`] at
/// `context`. The kernel calls it with the task's mmap lock held, so the VMA cannot change.
#[inline(never)]
extern "C" fn vma_bounds(_task: *mut c_void, vma: *mut c_void, context: *mut c_void) -> i64 {
    let l = layout();
    let vma = vma as u64;
    let found = StackVma {
        start: read::<u64>(vma + offset(&l.vma_bounds[0])).unwrap_or(0),
        end: read::<u64>(vma + offset(&l.vma_bounds[1])).unwrap_or(0),
    };
    // SAFETY: `context` is the `StackVma` that `stack_vma` handed the helper.
    unsafe { context.cast::<StackVma>().write(found) };
    0
}
