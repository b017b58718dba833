//! Tests of what a trace under way decides for a cgroup's processes: which to seed, and
//! which to attach the per-process probes to.

use demo_common::{FaultCounters, FaultSource};

use super::*;
use crate::model::{
    access::ErrorCode,
    events::{Fault, JoinEvent, ProcessEvent, ThreadSnapshot},
};

fn decoded(record: Record) -> Decoded {
    Decoded {
        snapshot: ThreadSnapshot {
            tid: 1,
            counters: FaultCounters::default(),
        },
        record,
        stack: None,
    }
}

fn fault(pid: u32) -> Decoded {
    decoded(Record::Fault(Fault {
        timestamp_ns: 1,
        pid,
        tid: pid,
        address: 0x7f00_0000_0000,
        ip: 0x40_0100,
        error_code: ErrorCode(6),
        source: FaultSource::User,
    }))
}

fn fork(parent: u32, pid: u32) -> Decoded {
    decoded(Record::Process(ProcessEvent {
        timestamp_ns: 1,
        pid,
        parent,
        tid: parent,
        exited: false,
    }))
}

fn joined(pid: u32) -> Decoded {
    decoded(Record::Joined(JoinEvent {
        pid,
        counters: FaultCounters::default(),
        gone: FaultCounters::default(),
        threads: 1,
    }))
}

/// A process whose join record the ring dropped is attached at its first fault in the scope;
/// a joined one once, however often it faults; a child forked by an attached one never (it
/// inherits); one outside the scope never, and is not asked about again.
#[test]
fn a_process_is_attached_once_at_its_join_or_at_its_first_fault_in_the_scope() {
    let mut attached = HashSet::from([10]);
    let asked = std::cell::RefCell::new(Vec::new());
    let in_scope = |pid| {
        asked.borrow_mut().push(pid);
        pid != 99
    };
    let records = [
        fault(10),
        fork(10, 11),
        fault(11),
        joined(20),
        fault(20),
        fault(30),
        fault(30),
        fault(99),
        fault(99),
    ];
    assert_eq!(unattached(&mut attached, &records, in_scope), [20, 30]);
    assert_eq!(*asked.borrow(), [30, 99]);
    assert_eq!(
        unattached(&mut attached, &[fault(30), joined(20)], in_scope),
        [0; 0]
    );
    let mut attached: Vec<u32> = attached.into_iter().collect();
    attached.sort_unstable();
    assert_eq!(attached, [10, 11, 20, 30, 99]);
}

/// A cgroup's count before the trace is the sum of its processes' only while each is known;
/// one process's unknown count makes it unknown. `--pid`'s is its own process's alone.
#[test]
fn the_count_before_the_trace_is_unknown_once_one_process_count_is() {
    let process = |pid, minor, before_trace_known: bool| ProcessSummary {
        totals: crate::trace::session::ProcessTotals {
            pid,
            command: None,
            traced: 0,
            before_trace: before_trace_known.then_some(FaultCounters { minor, major: 0 }),
            kernel: None,
        },
        lost: std::collections::BTreeMap::new(),
        at_end: None,
    };
    let known = [process(1, 5, true), process(2, 7, true)];
    assert_eq!(before_trace(&known, None), Some(12));
    let one_unknown = [process(1, 5, true), process(2, 7, false)];
    assert_eq!(before_trace(&one_unknown, None), None);
    assert_eq!(before_trace(&one_unknown, Some(1)), Some(5));
    assert_eq!(before_trace(&[], None), Some(0));
}
