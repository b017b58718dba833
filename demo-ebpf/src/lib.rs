//! Library target of the eBPF crate; it exists so that demo-userspace can name the crate as a build dependency and be rebuilt when it changes.
#![no_std]
