//! The pure model: access decoding, regions, page states, fault classes, syscalls and the
//! events the kernel reports. No I/O, no tokio, nothing of the kernel layer.

pub mod access;
pub mod call_graph;
pub mod classify;
pub mod events;
pub mod hex;
pub mod latency;
pub mod pages;
pub mod region;
pub mod signals;
pub mod syscalls;
