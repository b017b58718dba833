//! The bench's floor: programs on the fault tracepoints that count nothing, so that `cargo xtask
//! bench` measures what the hook alone costs a fault, the floor under `top_fault_*`. They are an
//! object of their own, which demo loads only for the hidden `--debug-empty-fault-programs`, so
//! the product's object does not carry them.
#![no_std]
#![no_main]

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};

#[raw_tracepoint(tracepoint = "page_fault_user")]
pub fn top_empty_user(_ctx: RawTracePointContext) -> i32 {
    0
}

#[raw_tracepoint(tracepoint = "page_fault_kernel")]
pub fn top_empty_kernel(_ctx: RawTracePointContext) -> i32 {
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
