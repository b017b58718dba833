//! A fault's `time` object: where the time between its start and its completion went.

use schemars::JsonSchema;
use serde::Serialize;

use crate::model::events::FaultTiming;

/// Where a fault's time went: the parts add up to its `duration_ns`. Null in a fault whose
/// split the kernel side could not know (it missed the thread's return to the CPU).
#[derive(Clone, Copy, Serialize, JsonSchema)]
#[schemars(rename = "FaultTime")]
pub struct FaultTimeLine {
    /// On the CPU, outside reclaim and compaction.
    pub(super) on_cpu_ns: u64,
    /// Switched out: waiting for I/O or a lock.
    pub(super) off_cpu_ns: u64,
    /// In direct reclaim, on or off the CPU.
    pub(super) reclaim_ns: u64,
    /// In compaction, on or off the CPU.
    pub(super) compaction_ns: u64,
}

impl FaultTimeLine {
    /// The split of `timing`, when it is known.
    pub(super) fn of(timing: FaultTiming) -> Option<Self> {
        Some(Self {
            on_cpu_ns: timing.on_cpu_ns()?,
            off_cpu_ns: timing.off_cpu_ns?,
            reclaim_ns: timing.reclaim_ns,
            compaction_ns: timing.compaction_ns,
        })
    }
}
