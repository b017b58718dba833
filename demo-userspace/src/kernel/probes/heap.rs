//! The heap-function uprobes of `demo trace`, attached per traced process: the kernel plants a
//! pid-scoped uprobe's breakpoints only in that process's memory, so no other process traps.

use std::{collections::HashMap, num::NonZeroU32, path::Path};

use aya::{
    Ebpf,
    programs::{UProbe, uprobe::UProbeLinkId, uprobe::UProbeScope},
};
use demo_common::HeapFunction;

use super::{ProbeError, loaded, program};

/// Each heap program and the libc function it probes (entry, or return for `_exit`).
const HEAP_PROGRAMS: [(&str, HeapFunction); 7] = [
    ("heap_malloc_enter", HeapFunction::Malloc),
    ("heap_calloc_enter", HeapFunction::Calloc),
    ("heap_realloc_enter", HeapFunction::Realloc),
    ("heap_free_enter", HeapFunction::Free),
    ("heap_malloc_exit", HeapFunction::Malloc),
    ("heap_calloc_exit", HeapFunction::Calloc),
    ("heap_realloc_exit", HeapFunction::Realloc),
];

/// The links of the heap uprobes, per process they are scoped to.
#[derive(Default)]
pub(super) struct HeapLinks {
    loaded: bool,
    by_pid: HashMap<u32, Vec<(&'static str, UProbeLinkId)>>,
}

impl HeapLinks {
    /// Attaches every heap program to `libc` for process `pid` alone. A pid-scoped uprobe
    /// matches on the process's address space, so every thread of `pid`, including threads
    /// started later, is covered; a child after fork has its own and needs its own attach.
    pub(super) fn attach(
        &mut self,
        ebpf: &mut Ebpf,
        libc: &Path,
        pid: u32,
    ) -> Result<(), ProbeError> {
        if self.by_pid.contains_key(&pid) {
            return Ok(());
        }
        let scope = UProbeScope::OneProcess(
            NonZeroU32::new(pid)
                .ok_or_else(|| ProbeError::Missing("a process with pid 0".to_owned()))?,
        );
        if !self.loaded {
            for (program, _) in HEAP_PROGRAMS {
                loaded::<UProbe>(ebpf, program)?;
            }
            self.loaded = true;
        }
        let mut links = Vec::with_capacity(HEAP_PROGRAMS.len());
        for (program, function) in HEAP_PROGRAMS {
            let attached = uprobe(ebpf, program)?.attach(function.name(), libc, scope);
            match attached {
                Ok(link) => links.push((program, link)),
                Err(source) => {
                    // Half an attach is no use: take back what this pid got so far.
                    for (program, link) in links {
                        let _ = uprobe(ebpf, program).map(|probe| probe.detach(link));
                    }
                    return Err(ProbeError::Attach {
                        program: program.to_owned(),
                        target: format!("{} in {} for pid {pid}", function.name(), libc.display()),
                        source: Box::new(source),
                    });
                }
            }
        }
        self.by_pid.insert(pid, links);
        Ok(())
    }

    /// Detaches the heap programs of process `pid`, which exited: its perf events would
    /// otherwise stay open until the trace ends.
    pub(super) fn detach(&mut self, ebpf: &mut Ebpf, pid: u32) {
        for (program, link) in self.by_pid.remove(&pid).unwrap_or_default() {
            if let Ok(probe) = uprobe(ebpf, program)
                && let Err(error) = probe.detach(link)
            {
                log::debug!("detach {program} of pid {pid}: {error}");
            }
        }
    }
}

fn uprobe<'a>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut UProbe, ProbeError> {
    program(ebpf, name)
}
