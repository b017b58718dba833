//! `--stacks`: a fault's record followed by its user stack, put together per CPU and copied
//! into the ring buffer only as long as the frames captured.

use core::ptr::{read_volatile, write_volatile};

use aya_ebpf::{
    EbpfContext as _, bindings::BPF_F_USER_STACK, helpers::bpf_get_stack, macros::map,
    maps::PerCpuArray, programs::RawTracePointContext,
};
use aya_log_ebpf::debug;
use demo_common::{FaultRecord, FaultStackRecord, MAX_STACK_DEPTH, RecordKind};

use crate::records::{EVENTS, count_lost, wakeup_flag};

/// Per CPU, where a fault's record and user stack are put together before they are copied
/// into [`EVENTS`] only as long as the frames captured: one slot per fault program, so a
/// kernel-mode fault taken while the user-mode program reads the stack cannot overwrite it.
#[map]
static STACK_SCRATCH: PerCpuArray<FaultStackRecord> = PerCpuArray::with_max_entries(2, 0);

/// Per CPU, 1 while a fault program walks a user stack or copies it (`user_stack.rs`). A frame
/// pointer that leads nowhere (code built without them), or a copy that reaches memory that is
/// not there, makes the program itself fault in kernel mode, in the traced task; that fault is
/// the tracer's, not the program's, and is not reported.
#[map]
static STACK_WALKING: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

/// True while this CPU walks or copies a user stack for a fault record: the program that calls
/// this one interrupted that walk.
#[inline(always)]
pub(crate) fn walking_stack() -> bool {
    // SAFETY: this CPU's slot of a per-CPU array, valid and aligned for the whole program; the
    // volatile load sees the flag as the interrupted program left it.
    STACK_WALKING
        .get_ptr(0)
        .is_some_and(|walking| unsafe { read_volatile(walking) } != 0)
}

/// While it lives, this CPU's [`STACK_WALKING`] flag is set, so that a kernel-mode fault the
/// program takes in the traced task (a read of user memory that is not there) is known for the
/// tracer's own and not reported. A guard rather than a closure: a closure called from both
/// fault programs becomes a function of its own, where the verifier no longer sees the
/// program's constants.
pub(crate) struct Walking(Option<*mut u32>);

impl Walking {
    #[inline(always)]
    pub(crate) fn start() -> Self {
        let walking = STACK_WALKING.get_ptr_mut(0);
        if let Some(walking) = walking {
            // SAFETY: this CPU's slot of a per-CPU array, valid and aligned for the whole
            // program; a program nested on this CPU only reads it.
            unsafe { write_volatile(walking, 1) };
        }
        Self(walking)
    }
}

impl Drop for Walking {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(walking) = self.0 {
            // SAFETY: as in `start`.
            unsafe { write_volatile(walking, 0) };
        }
    }
}

/// Sends `fault` with up to `depth` frames of the user stack (frame pointers), innermost
/// first, in a record only as long as the frames captured. `slot` is the fault program's own
/// scratch slot.
#[inline(always)]
pub(crate) fn record_fault_stack(
    ctx: &RawTracePointContext,
    mut fault: FaultRecord,
    depth: u32,
    slot: u32,
) {
    let Some(scratch) = STACK_SCRATCH.get_ptr_mut(slot) else {
        return;
    };
    fault.header.kind = RecordKind::FaultStack as u32;
    let bytes = depth.min(MAX_STACK_DEPTH as u32) * 8;
    // SAFETY: this CPU's slot of a per-CPU array, valid for the whole program, and the helper
    // writes at most `bytes` into frames. Only this fault program uses its scratch slot on this
    // CPU: the other one has its own, and the kernel does not start a raw-tracepoint program
    // again on a CPU where it is already running (it counts a miss instead).
    let captured = unsafe {
        (*scratch).fault = fault;
        let _walking = Walking::start();
        bpf_get_stack(
            ctx.as_ptr(),
            (*scratch).frames.as_mut_ptr().cast(),
            bytes,
            BPF_F_USER_STACK as u64,
        )
    };
    // A failed walk still reports the fault, with no frames. The mask keeps the length in
    // bounds for the verifier as well as in fact.
    let frame_bytes = if captured > 0 { captured as usize } else { 0 } & 0x3f8;
    let len = size_of::<FaultRecord>() + frame_bytes.min(MAX_STACK_DEPTH * 8);
    // SAFETY: `len` is at most the slot's size, and the slot is not written again before the
    // copy below.
    let record = unsafe { core::slice::from_raw_parts(scratch.cast::<u8>().cast_const(), len) };
    if EVENTS.output::<[u8]>(record, wakeup_flag()).is_err() {
        count_lost(RecordKind::FaultStack, fault.header.tgid);
        debug!(
            ctx,
            "ring buffer full: dropped a fault stack of tgid {}", fault.header.tgid
        );
    }
}
