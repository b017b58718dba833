//! What a trace's session reads of the system, through one narrow interface: a process's
//! mappings, its command name, a thread's fault counters, the code at an address, and the
//! mappings a captured exec made. The
//! live view reads /proc and symbolizes with blazesym; the session's tests give it a fake.

use std::sync::Arc;

use demo_common::FaultCounters;

use super::{
    exec_image,
    mappings::{Mapping, MappingSource, MappingTable, Query},
    procmap_query::ProcMaps,
    procmem,
    symbols::{Code, Stack, Symbols},
    unwind::Unwinder,
};
use crate::model::events::{ExecImage, RawStack};

/// Everything the session asks of the system. Its mappings come through [`MappingSource`].
pub trait SystemView: MappingSource {
    /// The command name of process `pid` now, or `None` once it is gone.
    fn command_name(&mut self, pid: u32) -> Option<String>;
    /// Thread `tid` of process `pid`'s own fault counters now, or `None` once it is gone.
    fn thread_fault_counters(&self, pid: u32, tid: u32) -> Option<FaultCounters>;
    /// The sum of the fault counters of process `pid`'s live threads now, or `None` once it is
    /// gone: what its threads had counted before a trace of it began.
    fn live_threads_fault_counters(&self, pid: u32) -> Option<FaultCounters>;
    /// The code of a fault of process `pid` at `ip` and, with `--stacks`, of each frame of its
    /// stack (walked in the kernel, or unwound here from a copy), named from `maps`, the
    /// process's mappings when it faulted (see [`Symbols::fault_code`]).
    fn fault_code(
        &mut self,
        pid: u32,
        ip: u64,
        stack: Option<&RawStack>,
        maps: &MappingTable,
    ) -> (Arc<Code>, Option<Stack>);
    /// The file mappings the kernel made for a new image, rebuilt from what was captured at
    /// its exec (see [`exec_image::image_mappings`]).
    fn image_mappings(&mut self, image: &ExecImage) -> Vec<Mapping>;
}

/// The system as it is: /proc, the PROCMAP_QUERY ioctl, and the modules' symbols.
#[derive(Debug, Default)]
pub struct LiveView {
    maps: ProcMaps,
    symbols: Symbols,
    unwinder: Unwinder,
}

impl MappingSource for LiveView {
    fn query_mapping(&mut self, pid: u32, address: u64) -> Query {
        self.maps.query_mapping(pid, address)
    }

    fn read_mappings(&mut self, pid: u32) -> Option<MappingTable> {
        self.maps.read_mappings(pid)
    }

    fn address_space_ended(&mut self, pid: u32) {
        self.maps.address_space_ended(pid);
        self.unwinder.forget_process(pid);
    }
}

impl SystemView for LiveView {
    fn command_name(&mut self, pid: u32) -> Option<String> {
        procmem::command_name(pid as i32)
    }

    fn thread_fault_counters(&self, pid: u32, tid: u32) -> Option<FaultCounters> {
        procmem::thread_fault_counters(pid, tid)
    }

    fn live_threads_fault_counters(&self, pid: u32) -> Option<FaultCounters> {
        procmem::live_threads_fault_counters(pid)
    }

    fn fault_code(
        &mut self,
        pid: u32,
        ip: u64,
        stack: Option<&RawStack>,
        maps: &MappingTable,
    ) -> (Arc<Code>, Option<Stack>) {
        match stack {
            Some(RawStack::Copied(copy)) => {
                let unwound = self.unwinder.unwind(pid, copy, maps);
                self.symbols.unwound_fault_code(ip, &unwound, maps)
            }
            Some(RawStack::Frames(frames)) => self.symbols.fault_code(ip, Some(frames), maps),
            None => self.symbols.fault_code(ip, None, maps),
        }
    }

    fn image_mappings(&mut self, image: &ExecImage) -> Vec<Mapping> {
        exec_image::image_mappings(image)
    }
}
