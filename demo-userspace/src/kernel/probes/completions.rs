//! Fault durations: the completion programs on the PAGE_FAULTS_MIN and PAGE_FAULTS_MAJ software
//! perf events, opened on each thread of a traced process and inherited by the threads and
//! children it makes later, so no other process pays for them; and the programs that time a
//! fault off the CPU (`sched_switch`) and in direct reclaim and compaction.

use std::collections::HashSet;

use aya::{
    Ebpf,
    programs::{
        PerfEvent, RawTracePoint,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
use demo_common::{
    FAULT_DONE_MAJOR_PROGRAM, FAULT_DONE_MINOR_PROGRAM, FAULT_STALL_PROGRAMS, SCHED_SWITCH_PROGRAM,
    sched_switch_tracepoint,
};

use super::{ProbeError, loaded, program};
use crate::kernel::raw_tracepoint;

/// The completion programs and the software event each closes faults on.
const COMPLETIONS: [(&str, SoftwareEvent); 2] = [
    (FAULT_DONE_MINOR_PROGRAM, SoftwareEvent::PageFaultsMin),
    (FAULT_DONE_MAJOR_PROGRAM, SoftwareEvent::PageFaultsMaj),
];

/// The threads whose completion events are open. The events stay open until the programs are
/// dropped: closing a thread's event would also close the events its children inherited, and
/// a followed child may outlive its parent.
#[derive(Default)]
pub(super) struct Completions {
    threads: HashSet<u32>,
}

/// Loads the completion programs and attaches the off-CPU and stall programs, after checking
/// that `sched_switch` passes `next` where the program reads it. A kernel without a reclaim or
/// compaction tracepoint (built without memory cgroups or compaction) still times faults: the
/// warning says which stall goes untimed, and where the kernel has no such stall there is
/// nothing to time.
pub(super) fn load(ebpf: &mut Ebpf, btf: &btf_rs::Btf) -> Result<(), ProbeError> {
    raw_tracepoint::check_args(btf, "sched_switch", &sched_switch_tracepoint::ARGS)?;
    for (name, _) in COMPLETIONS {
        loaded::<PerfEvent>(ebpf, name)?;
    }
    attach_raw(ebpf, SCHED_SWITCH_PROGRAM, "sched_switch")?;
    for (name, tracepoint) in FAULT_STALL_PROGRAMS {
        if let Err(error) = attach_raw(ebpf, name, tracepoint) {
            log::warn!("{error}: time in it is not split out of fault durations");
        }
    }
    raise_open_files_limit();
    Ok(())
}

/// Loads program `name` and attaches it to raw tracepoint `tracepoint`.
fn attach_raw(ebpf: &mut Ebpf, name: &str, tracepoint: &str) -> Result<(), ProbeError> {
    loaded::<RawTracePoint>(ebpf, name)?
        .attach(tracepoint)
        .map(drop)
        .map_err(|source| ProbeError::Attach {
            program: name.to_owned(),
            target: format!("raw tracepoint {tracepoint}"),
            source: Box::new(source),
        })
}

/// Raises the soft limit on open files to the hard one: every traced thread takes two perf
/// event descriptors, and a process of a few hundred threads would pass the usual 1024.
fn raise_open_files_limit() {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(error) = nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                hard,
                hard,
            ) {
                log::debug!("raise the open-files limit to {hard}: {error}");
            }
        }
        Ok(_) => {}
        Err(error) => log::debug!("read the open-files limit: {error}"),
    }
}

impl Completions {
    /// Opens the completion events on every thread of process `pid`, each inherited by what
    /// the thread starts later. Threads that appear while this runs were started by a thread
    /// already covered, or are found by the next pass; threads that exit meanwhile are skipped.
    pub(super) fn attach(&mut self, ebpf: &mut Ebpf, pid: u32) -> Result<(), ProbeError> {
        loop {
            let fresh: Vec<u32> = threads_of(pid)
                .into_iter()
                .filter(|tid| !self.threads.contains(tid))
                .collect();
            if fresh.is_empty() {
                return Ok(());
            }
            for tid in fresh {
                self.attach_thread(ebpf, tid)?;
                self.threads.insert(tid);
            }
        }
    }

    fn attach_thread(&mut self, ebpf: &mut Ebpf, tid: u32) -> Result<(), ProbeError> {
        for (name, event) in COMPLETIONS {
            let attached = program::<PerfEvent>(ebpf, name)?.attach(
                PerfEventConfig::Software(event),
                PerfEventScope::OneProcess {
                    pid: tid,
                    cpu: None,
                },
                SamplePolicy::Period(1),
                true,
            );
            match attached {
                Ok(_) => {}
                // The thread exited since it was listed: nothing of it is left to time.
                Err(aya::programs::ProgramError::SyscallError(error))
                    if error.io_error.raw_os_error() == Some(libc::ESRCH) =>
                {
                    return Ok(());
                }
                Err(source) => {
                    return Err(ProbeError::Attach {
                        program: name.to_owned(),
                        target: format!("software perf event {event:?} of thread {tid}"),
                        source: Box::new(source),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The thread ids of process `pid` now; none when it is gone.
fn threads_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| task.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}
