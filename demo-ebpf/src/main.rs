//! eBPF programs of demo: one small function per tracepoint, all feeding the same ring buffer.
#![no_std]
#![no_main]

use aya_ebpf::{
    EbpfContext as _,
    bindings::{BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::bpf_ktime_get_ns,
    macros::{map, tracepoint},
    maps::{HashMap, PerCpuArray, RingBuf},
    programs::TracePointContext,
};
use aya_log_ebpf::debug;
use demo_common::{
    DEFAULT_RING_BYTES, FaultRecord, FaultSource, MAX_TARGETS, RecordKind, WAKEUP_THRESHOLD_BYTES,
    fault_tracepoint,
};

#[map]
static TARGETS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_TARGETS, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[tracepoint]
pub fn page_fault_user(ctx: TracePointContext) -> u32 {
    record_fault(&ctx, FaultSource::User);
    0
}

#[tracepoint]
pub fn page_fault_kernel(ctx: TracePointContext) -> u32 {
    record_fault(&ctx, FaultSource::Kernel);
    0
}

/// Copies one fault of a traced process into the ring buffer, or counts it as dropped.
#[inline(always)]
fn record_fault(ctx: &TracePointContext, source: FaultSource) {
    let tgid = ctx.tgid();
    if TARGETS.get_ptr(tgid).is_none() {
        return;
    }
    let Some(mut entry) = EVENTS.reserve::<FaultRecord>(0) else {
        count_drop();
        debug!(ctx, "ring buffer full: dropped a fault of tgid {}", tgid);
        return;
    };
    // SAFETY: the offsets are those of the tracepoint's format file, which the loader checks
    // before attaching; a failed read leaves 0, which userspace shows as such.
    let (address, ip, error_code) = unsafe {
        (
            ctx.read_at::<u64>(fault_tracepoint::ADDRESS).unwrap_or(0),
            ctx.read_at::<u64>(fault_tracepoint::IP).unwrap_or(0),
            ctx.read_at::<u64>(fault_tracepoint::ERROR_CODE)
                .unwrap_or(0),
        )
    };
    entry.write(FaultRecord {
        kind: RecordKind::Fault as u32,
        source: source as u32,
        // SAFETY: the helper has no preconditions.
        timestamp_ns: unsafe { bpf_ktime_get_ns() },
        tgid,
        tid: ctx.pid(),
        address,
        ip,
        error_code,
    });
    entry.submit(wakeup_flag());
}

/// Wakes the reader only when the buffer is filling up; otherwise its periodic poll finds the
/// record, which spares the traced process a wakeup per fault.
#[inline(always)]
fn wakeup_flag() -> u64 {
    if EVENTS.query(aya_ebpf::bindings::BPF_RB_AVAIL_DATA as u64) >= WAKEUP_THRESHOLD_BYTES {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    }
}

#[inline(always)]
fn count_drop() {
    if let Some(counter) = DROPS.get_ptr_mut(0) {
        // SAFETY: the pointer is this CPU's slot, and programs on one CPU do not run concurrently.
        unsafe { *counter += 1 };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
