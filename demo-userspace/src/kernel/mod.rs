//! The kernel-facing layer: loading and attaching the eBPF programs, the ring buffer and its
//! decoder, tracefs, BTF, /proc reads, privileges, signals, and starting processes.

pub mod build_id;
pub mod cgroup;
pub mod descendants;
pub mod event_reader;
pub mod exec_image;
pub mod executable;
pub mod file_layout;
pub mod mappings;
pub mod pagecache;
pub mod privileges;
pub mod probes;
pub mod process;
pub mod procmap_query;
pub mod procmem;
pub mod pty;
pub mod raw_tracepoint;
pub mod records;
pub mod shutdown;
pub mod spawn;
pub mod stack_end;
pub mod symbols;
pub mod system_view;
pub mod task_layout;
pub mod tracefs;
pub mod unwind;
