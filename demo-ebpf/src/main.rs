//! eBPF programs of demo, one module per probe family: `demo trace`'s records of faults,
//! syscalls, signals, processes and heap calls all feed one ring buffer, and `demo top`'s
//! counters feed per-CPU maps. The bench's empty fault programs are in `bin/floor.rs`, an
//! object of their own.
#![no_std]
#![no_main]

mod cgroup;
mod durations;
mod faults;
mod files;
mod heap;
mod mappings;
mod processes;
mod records;
mod signals;
mod stacks;
mod syscalls;
mod task;
mod top;
mod user_stack;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
