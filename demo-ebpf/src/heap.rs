//! The glibc heap uprobes of `demo trace`: a record per call of malloc, calloc, realloc and free
//! and per return, in the processes the loader attached them to.

use aya_ebpf::{
    EbpfContext,
    macros::{uprobe, uretprobe},
    programs::{ProbeContext, RetProbeContext},
};
use demo_common::{HeapFunction, HeapRecord, RecordKind};

use crate::records::{header, traced_record, wakeup_flag};

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
