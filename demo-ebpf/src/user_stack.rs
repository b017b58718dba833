//! `--call-graph dwarf`: a fault's record with the user registers and the top of the user
//! stack, copied straight into its reserved place in the ring buffer for the loader to unwind.

use core::{ffi::c_void, ptr::read_volatile};

use aya_ebpf::{
    bindings::pt_regs,
    helpers::{bpf_task_pt_regs, generated::bpf_probe_read_user},
    programs::RawTracePointContext,
};
use aya_log_ebpf::debug;
use demo_common::{
    FaultRecord, FaultUserStackRecord, MAX_STACK_BYTES, RecordKind, STACK_COPY_AT_TOP, UserRegs,
};

use crate::{
    files::{layout, offset},
    records::{EVENTS, count_lost, wakeup_flag},
    stacks::Walking,
    task::Task,
};

/// How many bytes of user stack to copy per fault; 0 (no copy) unless the loader sets it before
/// loading. Read-only data is frozen, so the verifier knows the value: it drops the copy when
/// it is 0, and takes it as the constant size of the record to reserve otherwise.
#[unsafe(no_mangle)]
static STACK_BYTES: u32 = 0;

/// The unit the copy reads in: a read that fails leaves nothing in its destination, so a read
/// never spans two pages of which one may be missing.
const PAGE_BYTES: u32 = 4096;

/// The most reads a copy makes: the piece up to the first page boundary, then whole pages.
const MAX_PIECES: usize = MAX_STACK_BYTES / PAGE_BYTES as usize + 1;

/// The most pieces at the start of a copy that it skips when they cannot be read, before it
/// gives up: the piece at the stack pointer and three whole pages. A fault on the stack page
/// itself is the stack growing, and what is missing then is the new frame's pages below the
/// ones already touched: one piece where the compiler probes each page as a frame grows
/// (`-fstack-clash-protection`), up to the whole new frame where it does not, and four pieces
/// hold a frame of 12 KiB written from its low end. Each piece that fails costs a fault taken
/// and fixed up in kernel mode, so the bound is also what a stack pointer into nothing
/// readable costs at most; and a frame larger than the bound holds its callers' frames farther
/// up than the default copy (8 KiB) reaches anyway.
const MAX_SKIPPED_PIECES: u32 = 4;

/// How many bytes of user stack each fault's record carries: 0 for none, else a multiple of 8
/// up to [`MAX_STACK_BYTES`].
#[inline(always)]
pub(crate) fn stack_bytes() -> u32 {
    // SAFETY: a plain load of a global; volatile so that the compiler keeps the load for the
    // verifier to decide, instead of folding the placeholder 0.
    let bytes = unsafe { read_volatile(&STACK_BYTES) };
    bytes.min(MAX_STACK_BYTES as u32) & !7
}

/// Sends `fault` with the user registers of `task` and `bytes` bytes of its user stack from
/// the stack pointer up, in a record reserved at its full size, or counts it lost. For a
/// user-mode fault the registers are the fault's own; for a kernel-mode one they are where the
/// thread entered the kernel, its syscall, so the loader unwinds the user frames from there.
#[inline(always)]
pub(crate) fn record_fault_user_stack(
    ctx: &RawTracePointContext,
    mut fault: FaultRecord,
    task: Task,
    bytes: u32,
) {
    let header_bytes = size_of::<FaultUserStackRecord>();
    // The size is a constant to the verifier (a frozen global), as reserving requires.
    let Some(mut entry) = EVENTS.reserve_bytes(header_bytes + bytes as usize, 0) else {
        count_lost(RecordKind::FaultUserStack, task.tgid);
        debug!(
            ctx,
            "ring buffer full: dropped a fault user stack of tgid {}", task.tgid
        );
        return;
    };
    // SAFETY: the helper returns the current task's user registers (the ones saved at its
    // entry from user mode), valid for the whole program.
    let regs = unsafe {
        let regs = &*(bpf_task_pt_regs(task.task.cast_mut().cast()) as *const pt_regs);
        UserRegs {
            ip: regs.rip,
            sp: regs.rsp,
            bp: regs.rbp,
        }
    };
    let record = entry.as_mut_ptr();
    let (end, needed) = readable_end(task, regs.sp, bytes);
    let walking = Walking::start();
    // SAFETY: the entry is `header_bytes + bytes` long, and the copy writes only its last
    // `bytes`.
    let (skipped, copied) = unsafe { copy_user(record.add(header_bytes), regs.sp, bytes, end) };
    drop(walking);
    // The loader copies the record's `copied` bytes out of the ring, from another CPU's cache:
    // what lies past the main thread's first frame is never unwound, and is not counted.
    // The top is in the copy only when it lies before the copy's end.
    let at_top = needed < bytes && needed > skipped && copied >= needed;
    let copied = if at_top { needed } else { copied };
    fault.header.kind = RecordKind::FaultUserStack as u32;
    // SAFETY: the entry starts with room for the header, and the ring buffer aligns its
    // records to 8 bytes, the header's alignment.
    unsafe {
        record
            .cast::<FaultUserStackRecord>()
            .write(FaultUserStackRecord {
                fault,
                regs,
                requested: bytes,
                skipped,
                copied,
                flags: if at_top { STACK_COPY_AT_TOP } else { 0 },
            });
    }
    entry.submit(wakeup_flag());
}

/// How many bytes from `sp` up the copy may read, at most `bytes`: on the main thread's stack,
/// up to the end of the page that holds its first frame (`mm->start_stack`, where `argc`
/// is), above which are only the arguments and environment, and then nothing the copy can
/// read. Stopping there spares the copy the read that would fault past the stack's end: a
/// fault taken in kernel mode and fixed up, which costs more than the copy of a page. Any
/// other stack (a thread's) is at least the stack's guard gap (1 MiB) below, farther than
/// any copy. Second, how many of them an unwinder can need: up to `argc` itself, the word at
/// `start_stack` (`_start` is the outermost frame, and its own frame lies below).
#[inline(always)]
fn readable_end(task: Task, sp: u64, bytes: u32) -> (u32, u32) {
    let l = layout();
    // SAFETY: `task.task` is the current task as `bpf_get_current_task_btf` gave it, a typed
    // pointer, and the offsets name its `mm` pointer and that `mm_struct`'s `start_stack`:
    // plain loads the verifier checks against the kernel's types (a null `mm` reads as 0).
    let start_stack = unsafe {
        let mm = *task
            .task
            .add(offset(&l.task_mm) as usize)
            .cast::<*const u8>();
        *mm.add(offset(&l.mm_layout[5]) as usize).cast::<u64>()
    };
    let within = |top: u64| match top.checked_sub(sp) {
        Some(distance) if distance < u64::from(bytes) => distance as u32,
        _ => bytes,
    };
    (
        within((start_stack | u64::from(PAGE_BYTES - 1)).wrapping_add(1)),
        within(start_stack.wrapping_add(8)),
    )
}

/// Copies the `total` bytes of user memory at `sp` into `dst`, page by page, and returns how
/// many bytes at the start it skipped and where it stopped (see [`FaultUserStackRecord`]):
/// pieces at the start that cannot be read are skipped, up to [`MAX_SKIPPED_PIECES`]; then
/// the copy goes on to the end, to `end` (a page boundary past which the copy need not read),
/// or to the first page after those that could not be read. Every read is at an offset and of
/// a length the verifier can bound by `total` alone: the first piece starts at 0, each whole
/// page ends at most at `total`, and the last piece, shorter than a page, is read as the
/// constant last page of the copy, again over bytes already read, or, when that page starts
/// among skipped bytes, by [`read_rest`].
///
/// # Safety
///
/// `dst` must be valid for `total` bytes of writes.
#[inline(always)]
unsafe fn copy_user(dst: *mut u8, sp: u64, total: u32, end: u32) -> (u32, u32) {
    // SAFETY (every read below): `offset + len <= total`, which the caller guarantees `dst`
    // holds.
    let read = |offset: u32, len: u32| unsafe { read_user(dst, sp, offset, len) };
    let first = (PAGE_BYTES - (sp as u32 & (PAGE_BYTES - 1))).min(total);
    // The bytes skipped so far, and in how many pieces.
    let (mut skipped, mut skipped_pieces) = (0, 0);
    if !read(0, first) {
        (skipped, skipped_pieces) = (first, 1);
    }
    let mut done = first;
    // Where the last page of the copy starts: a whole page read there ends at `total`.
    let last_page = total.saturating_sub(PAGE_BYTES);
    for _ in 0..MAX_PIECES {
        // The bounds are checked on the very register the read then uses: left to itself,
        // the compiler rebuilds the offset as a sum of other registers, and the verifier,
        // which does not relate registers, cannot bound the sum.
        let copied = opaque(done);
        if copied >= total || copied >= end {
            break;
        }
        // Nothing was read yet: a piece that fails is skipped, while the bound allows.
        let nothing_read = skipped == copied;
        if copied <= last_page {
            if read(copied, PAGE_BYTES) {
                done = copied + PAGE_BYTES;
            } else if nothing_read && skipped_pieces < MAX_SKIPPED_PIECES {
                done = copied + PAGE_BYTES;
                (skipped, skipped_pieces) = (done, skipped_pieces + 1);
            } else {
                break;
            }
        } else if skipped > last_page {
            // The rest is shorter than a page, and the copy's last page starts among the
            // skipped bytes, so a read of that whole page would fail: the rest is read alone.
            done = read_rest(&read, copied, total);
            break;
        } else {
            // The rest is shorter than a page: read the copy's last page (or all of it, when
            // it is shorter than a page), which spans the rest and bytes already read. A
            // failed read zeroed those, so they are read again; they were read once, so that
            // fails only if the memory went away in between, and then they are given up.
            if read(last_page, total - last_page) {
                done = total;
            } else if !read(last_page, copied - last_page) {
                done = last_page;
            }
            break;
        }
    }
    if done <= skipped {
        (0, 0)
    } else {
        (skipped, done)
    }
}

/// Reads the copy's bytes from `from` to `total`, fewer than a page and all in one page of
/// user memory, in reads of constant lengths, halving (2 KiB, 1 KiB, …, 1 byte), each at an
/// offset checked against `total` less its length, which the verifier can bound; returns
/// where reading stopped. It costs up to 12 reads where the copy's last page cannot be read
/// whole, which happens only after skipped pages.
#[inline(always)]
fn read_rest(read: &impl Fn(u32, u32) -> bool, from: u32, total: u32) -> u32 {
    let mut done = from;
    for shift in (0..PAGE_BYTES.trailing_zeros()).rev() {
        let len = 1 << shift;
        let at = opaque(done);
        if total >= len && at <= total - len {
            if !read(at, len) {
                break;
            }
            done = at + len;
        }
    }
    done
}

/// `value`, through a store and a load that the compiler must keep, so that it knows nothing
/// of the result and computes with that register alone.
#[inline(always)]
fn opaque(value: u32) -> u32 {
    let slot = value;
    // SAFETY: a local, valid and aligned.
    unsafe { read_volatile(&slot) }
}

/// Reads the `len` bytes of user memory at `sp + offset` into `dst + offset`; false when the
/// helper could not (it checks the user address itself and fails rather than fault, and
/// zeroes its destination then).
///
/// # Safety
///
/// `dst` must be valid for `offset + len` bytes of writes.
#[inline(always)]
unsafe fn read_user(dst: *mut u8, sp: u64, offset: u32, len: u32) -> bool {
    // SAFETY: as the caller guarantees.
    unsafe {
        bpf_probe_read_user(
            dst.add(offset as usize).cast::<c_void>(),
            len,
            sp.wrapping_add(u64::from(offset)) as *const c_void,
        ) == 0
    }
}
