//! The session fed sequences of records, as the ring buffer would deliver them, against a fake
//! of the system: every event it makes is checked, field by field, as one line each.

use demo_common::{FaultCounters, FaultSource, HeapFunction, Syscall};

use super::*;
use crate::{
    model::{
        access::{Access, ErrorCode},
        events::{HeapEvent, ProcessEvent, SyscallEvent, ThreadSnapshot},
        pages::PageState,
    },
    trace::fake_system::FakeSystem,
};

const PID: u32 = 100;
const CHILD: u32 = 200;
/// The program's code: `/bin/app` mapped from file offset 0x1000.
const CODE: (u64, u64) = (0x40_0000, 0x40_2000);
const IP: u64 = 0x40_0100;
const HEAP: (u64, u64) = (0x60_0000, 0x62_1000);
/// Where the fake kernel places anonymous mmaps.
const MMAP: u64 = 0x7f00_0000_0000;
const ANON: u64 = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
const RW: u64 = (libc::PROT_READ | libc::PROT_WRITE) as u64;
/// A user-mode write to a page not present; a write to a present one (copy-on-write); a read.
const WRITE: u64 = 6;
const WRITE_PRESENT: u64 = 7;
const READ: u64 = 4;

/// A session over a fake system that holds process [`PID`] (`app`: its code and heap), and
/// the counters of every thread, moved as the kernel moves them when a fault completes.
struct Harness {
    system: FakeSystem,
    session: Session,
    clock: u64,
    counters: BTreeMap<u32, FaultCounters>,
}

impl Harness {
    fn new() -> Self {
        Self::with_regions(RegionTracker::new(true, 4096, 4, 4096))
    }

    fn with_regions(regions: RegionTracker) -> Self {
        let system = FakeSystem::default();
        system.process(PID, "app");
        system.map(PID, CODE.0, CODE.1, "/bin/app", 0x1000);
        system.map(PID, HEAP.0, HEAP.1, "[heap]", 0);
        let mut session = Session::new(regions, system.view());
        session.add_process(PID);
        Self {
            system,
            session,
            clock: 0,
            counters: BTreeMap::new(),
        }
    }

    /// Feeds one record of thread `tid`, with the thread's counters as they are now.
    fn feed(&mut self, tid: u32, record: Record, stack: Option<Vec<u64>>) -> Vec<String> {
        let counters = self.counters.get(&tid).copied().unwrap_or_default();
        let mut out = Vec::new();
        self.session.handle(
            Decoded {
                snapshot: ThreadSnapshot { tid, counters },
                record,
                stack,
            },
            &mut out,
        );
        out.iter().map(brief).collect()
    }

    /// A thread's exit record, with its final counters.
    fn thread_exit(&mut self, tid: u32) -> Vec<String> {
        self.feed(tid, Record::ThreadExit, None)
    }

    fn now(&mut self) -> u64 {
        self.clock += 1000;
        self.clock
    }

    fn fault_at(&mut self, pid: u32, tid: u32, address: u64, ip: u64, error: u64) -> Fault {
        Fault {
            timestamp_ns: self.now(),
            pid,
            tid,
            address,
            ip,
            error_code: ErrorCode(error),
            source: FaultSource::User,
        }
    }

    /// A user-mode fault of thread `tid` at `address`, made by the code at [`IP`].
    fn fault(&mut self, pid: u32, tid: u32, address: u64, error: u64) -> Vec<String> {
        let fault = self.fault_at(pid, tid, address, IP, error);
        self.feed(tid, Record::Fault(fault), None)
    }

    /// The kernel counts thread `tid`'s fault as it completes: minor, or major.
    fn completes(&mut self, pid: u32, tid: u32, major: bool) {
        let counters = self.counters.entry(tid).or_default();
        if major {
            counters.major += 1;
        } else {
            counters.minor += 1;
        }
        let FaultCounters { minor, major } = *counters;
        self.system.counters(pid, tid, minor, major);
    }

    /// A syscall's entry and exit records.
    fn syscall(
        &mut self,
        pid: u32,
        tid: u32,
        syscall: Syscall,
        args: &[u64],
        ret: i64,
    ) -> Vec<String> {
        let mut all = [0; 6];
        all[..args.len()].copy_from_slice(args);
        let mut event = SyscallEvent {
            timestamp_ns: self.now(),
            pid,
            tid,
            syscall,
            args: Some(all),
            ret: None,
        };
        let mut out = self.feed(tid, Record::Syscall(event), None);
        (event.args, event.ret, event.timestamp_ns) = (None, Some(ret), self.now());
        out.extend(self.feed(tid, Record::Syscall(event), None));
        out
    }

    /// An anonymous private mmap of `len` bytes that the kernel places at `at`.
    fn mmap(&mut self, pid: u32, at: u64, len: u64) -> Vec<String> {
        self.system.map(pid, at, at + len, "[anon]", 0);
        self.syscall(
            pid,
            pid,
            Syscall::Mmap,
            &[0, len, RW, ANON, u64::MAX, 0],
            at as i64,
        )
    }

    fn munmap(&mut self, pid: u32, at: u64, len: u64) -> Vec<String> {
        self.system.unmap(pid, at, at + len);
        self.syscall(pid, pid, Syscall::Munmap, &[at, len], 0)
    }

    /// A heap function's entry (`args`) or return (`ret`).
    fn heap_record(
        &mut self,
        function: HeapFunction,
        args: Option<[u64; 2]>,
        ret: Option<u64>,
    ) -> Vec<String> {
        let event = HeapEvent {
            timestamp_ns: self.now(),
            pid: PID,
            tid: PID,
            function,
            args,
            ret,
        };
        self.feed(PID, Record::Heap(event), None)
    }

    /// A heap call's entry and return.
    fn heap(&mut self, function: HeapFunction, args: [u64; 2], ret: u64) -> Vec<String> {
        let mut out = self.heap_record(function, Some(args), None);
        out.extend(self.heap_record(function, None, Some(ret)));
        out
    }

    fn process(&mut self, pid: u32, parent: u32, tid: u32, exited: bool) -> Vec<String> {
        let event = ProcessEvent {
            timestamp_ns: self.now(),
            pid,
            parent,
            tid,
            exited,
        };
        self.feed(tid, Record::Process(event), None)
    }

    fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        self.session.finish(&mut out);
        out.iter().map(brief).collect()
    }

    /// (faults, first page's state) of each region, in creation order.
    fn regions(&self) -> Vec<(String, u32, u64, Option<PageState>)> {
        self.session
            .region_states()
            .map(|(tracked, pages, faults)| {
                (
                    tracked.region.name.to_string(),
                    tracked.pid,
                    faults,
                    pages.state(0),
                )
            })
            .collect()
    }
}

/// One event as a line: what a test expects, exactly.
fn brief(event: &TraceEvent) -> String {
    match event {
        TraceEvent::Fault(fault) => {
            let raw = fault.fault.fault;
            let code = match &fault.code.module {
                Some(module) => format!("{module}+{:#x}", fault.code.offset),
                None => format!("{:#x}", fault.code.offset),
            };
            let region = fault
                .region_place()
                .map_or_else(String::new, |place| format!(" {place}"));
            format!(
                "{} {}/{} {:#x} {}{region} by {code}",
                fault.fault.class.as_str(),
                raw.pid,
                raw.tid,
                raw.address,
                fault.mapping_place(),
            )
        }
        TraceEvent::Syscall(call) => format!("{:?} {} = {:#x}", call.syscall, call.pid, call.ret),
        TraceEvent::Signal(signal) => format!("signal {} to {}", signal.signal, signal.target_tid),
        TraceEvent::RegionStarted(tracked) => format!(
            "start {} {} {:#x}+{}",
            tracked.region.name, tracked.pid, tracked.region.start, tracked.region.len
        ),
        TraceEvent::RegionEnded(tracked) => format!("end {} {}", tracked.region.name, tracked.pid),
        TraceEvent::ProcessForked { pid, parent } => format!("fork {pid} of {parent}"),
        TraceEvent::ProcessExited { pid } => format!("exit {pid}"),
    }
}

#[test]
fn a_fault_on_a_new_mmap_then_munmap_then_reuse_of_the_address_is_a_new_region() {
    let mut h = Harness::new();
    assert_eq!(
        h.mmap(PID, MMAP, 8192),
        [
            "Mmap 100 = 0x7f0000000000",
            "start mmap#1 100 0x7f0000000000+8192"
        ]
    );
    assert_eq!(h.fault(PID, PID, MMAP + 0x1010, WRITE), [] as [String; 0]);
    h.completes(PID, PID, false);
    // The munmap's entry settles the fault, which was resolved when its record came.
    assert_eq!(
        h.munmap(PID, MMAP, 8192),
        [
            "minor 100/100 0x7f0000001010 [anon]@0x1010 mmap#1[1028] page 1 by /bin/app+0x1100",
            "Munmap 100 = 0x0",
            "end mmap#1 100",
        ]
    );
    assert_eq!(
        h.mmap(PID, MMAP, 4096),
        [
            "Mmap 100 = 0x7f0000000000",
            "start mmap#2 100 0x7f0000000000+4096"
        ]
    );
    h.fault(PID, PID, MMAP + 8, WRITE);
    h.completes(PID, PID, false);
    assert_eq!(
        h.thread_exit(PID),
        ["minor 100/100 0x7f0000000008 [anon]@0x8 mmap#2[2] page 0 by /bin/app+0x1100"]
    );
    assert_eq!(
        h.regions(),
        [
            ("mmap#1".to_owned(), PID, 1, Some(PageState::Untouched)),
            ("mmap#2".to_owned(), PID, 1, Some(PageState::Resident)),
        ]
    );
}

#[test]
fn a_forked_child_inherits_mappings_and_regions_and_its_write_copies_the_page() {
    let mut h = Harness::new();
    h.mmap(PID, MMAP, 4096);
    h.fault(PID, PID, MMAP, WRITE);
    h.completes(PID, PID, false);
    assert_eq!(
        h.process(CHILD, PID, PID, false),
        [
            "minor 100/100 0x7f0000000000 [anon]@0x0 mmap#1[0] page 0 by /bin/app+0x1100",
            "fork 200 of 100",
            "start mmap#1 200 0x7f0000000000+4096",
        ]
    );
    // The child is gone before /proc could be read: what it inherited names its faults.
    h.system.gone(CHILD);
    h.fault(CHILD, CHILD, MMAP + 4, WRITE_PRESENT);
    h.completes(CHILD, CHILD, false);
    assert_eq!(
        h.thread_exit(CHILD),
        ["minor 200/200 0x7f0000000004 [anon]@0x4 mmap#1[1] page 0 by /bin/app+0x1100"]
    );
    assert_eq!(h.session.command_of(CHILD), Some("app"));
    assert_eq!(
        h.regions(),
        [
            ("mmap#1".to_owned(), PID, 1, Some(PageState::Resident)),
            ("mmap#1".to_owned(), CHILD, 1, Some(PageState::Resident)),
        ]
    );
}

#[test]
fn a_followed_childs_regions_are_its_own() {
    let mut h = Harness::new();
    h.process(CHILD, PID, PID, false);
    h.system.process(CHILD, "app");
    h.system.map(CHILD, CODE.0, CODE.1, "/bin/app", 0x1000);
    // Parent and child map at the same address: two regions, one per process.
    h.mmap(PID, MMAP, 4096);
    assert_eq!(
        h.mmap(CHILD, MMAP, 4096),
        [
            "Mmap 200 = 0x7f0000000000",
            "start mmap#2 200 0x7f0000000000+4096"
        ]
    );
    h.fault(CHILD, CHILD, MMAP, READ);
    h.completes(CHILD, CHILD, false);
    assert_eq!(
        h.munmap(PID, MMAP, 4096),
        ["Munmap 100 = 0x0", "end mmap#1 100"]
    );
    assert_eq!(
        h.thread_exit(CHILD),
        ["minor 200/200 0x7f0000000000 [anon]@0x0 mmap#2[0] page 0 by /bin/app+0x1100"]
    );
    assert_eq!(
        h.regions(),
        [
            ("mmap#1".to_owned(), PID, 0, Some(PageState::Untouched)),
            ("mmap#2".to_owned(), CHILD, 1, Some(PageState::ZeroPage)),
        ]
    );
}

#[test]
fn exec_ends_the_old_images_regions_and_names_the_new_one() {
    let mut h = Harness::new();
    h.mmap(PID, MMAP, 4096);
    h.system.exec(PID, "new");
    h.system.map(PID, 0x50_0000, 0x50_1000, "/bin/new", 0);
    assert_eq!(h.feed(PID, Record::Exec(PID), None), ["end mmap#1 100"]);
    assert_eq!(h.system.ended(), [PID]);
    let fault = h.fault_at(PID, PID, 0x50_0010, 0x50_0020, READ);
    h.feed(PID, Record::Fault(fault), None);
    h.completes(PID, PID, true);
    assert_eq!(
        h.thread_exit(PID),
        ["major 100/100 0x500010 /bin/new@0x10 by /bin/new+0x20"]
    );
    // The exec's maps are read whole, with the new name.
    assert_eq!(h.session.command_of(PID), Some("new"));
    assert_eq!(h.system.asked(), (0, 2));
}

#[test]
fn an_error_fault_is_settled_by_the_signal_that_follows() {
    let mut h = Harness::new();
    h.fault(PID, PID, 0x10, READ);
    let signal = SignalEvent {
        timestamp_ns: h.now(),
        pid: PID,
        tid: PID,
        target_tid: PID,
        signal: libc::SIGSEGV,
        code: 1,
        errno: 0,
        result: 0,
    };
    // The counters did not move: the fault never completed.
    assert_eq!(
        h.feed(PID, Record::Signal(signal), None),
        [
            "error 100/100 0x10 [unknown]@0x10 by /bin/app+0x1100",
            "signal 11 to 100"
        ]
    );
    let totals = h.session.totals();
    assert_eq!((totals.minor, totals.major, totals.error), (0, 0, 1));
    assert_eq!(h.session.completions_of(PID), 0);
}

#[test]
fn a_threads_last_fault_is_settled_by_its_exit_and_another_threads_records_do_not() {
    let mut h = Harness::new();
    let thread = PID + 1;
    h.fault(PID, thread, HEAP.0 + 0x2000, WRITE);
    h.completes(PID, thread, false);
    assert_eq!(h.fault(PID, PID, HEAP.0, WRITE), [] as [String; 0]);
    assert_eq!(
        h.thread_exit(thread),
        ["minor 100/101 0x602000 [heap]@0x2000 by /bin/app+0x1100"]
    );
    h.completes(PID, PID, false);
    assert_eq!(
        h.process(PID, PID, PID, true),
        [
            "minor 100/100 0x600000 [heap]@0x0 by /bin/app+0x1100",
            "exit 100"
        ]
    );
    assert!(h.session.has_exited(PID));
    assert_eq!(h.session.completions_of(PID), 2);
    assert_eq!(h.system.ended(), [PID]);
}

#[test]
fn a_lost_fault_record_leaves_its_count_unattributed() {
    let mut h = Harness::new();
    h.fault(PID, PID, HEAP.0, WRITE);
    h.completes(PID, PID, false);
    // The next fault's record was dropped: the kernel counted it all the same.
    h.completes(PID, PID, false);
    assert_eq!(
        h.fault(PID, PID, HEAP.0 + 0x1000, WRITE),
        ["minor 100/100 0x600000 [heap]@0x0 by /bin/app+0x1100"]
    );
    assert_eq!(h.session.unattributed_faults(), 1);
}

#[test]
fn a_syscall_whose_entry_was_lost_changes_nothing() {
    let mut h = Harness::new();
    h.mmap(PID, MMAP, 4096);
    h.system.unmap(PID, MMAP, MMAP + 4096);
    let exit = SyscallEvent {
        timestamp_ns: h.now(),
        pid: PID,
        tid: PID,
        syscall: Syscall::Munmap,
        args: None,
        ret: Some(0),
    };
    assert_eq!(h.feed(PID, Record::Syscall(exit), None), [] as [String; 0]);
    // The region lives on, and the table still names the memory the munmap took away.
    h.fault(PID, PID, MMAP, WRITE);
    assert_eq!(
        h.finish(),
        ["error 100/100 0x7f0000000000 [anon]@0x0 mmap#1[0] page 0 by /bin/app+0x1100"]
    );
}

#[test]
fn a_heap_blocks_life_is_a_region_from_mallocs_return_to_free() {
    let mut h = Harness::new();
    let block = HEAP.0 + 0x10;
    // malloc's own mmap, inside the call, makes no region of its own.
    let malloc = HeapFunction::Malloc;
    assert_eq!(
        h.heap_record(malloc, Some([8192, 0]), None),
        [] as [String; 0]
    );
    assert_eq!(h.mmap(PID, MMAP, 0x10_0000), ["Mmap 100 = 0x7f0000000000"]);
    assert_eq!(
        h.heap_record(malloc, None, Some(block)),
        ["start malloc#1 100 0x600010+8192"]
    );
    h.fault(PID, PID, block + 4096, WRITE);
    h.completes(PID, PID, false);
    assert_eq!(
        h.heap_record(HeapFunction::Free, Some([block, 0]), None),
        [
            "minor 100/100 0x601010 [heap]@0x1010 malloc#1[1024] page 1 by /bin/app+0x1100",
            "end malloc#1 100",
        ]
    );
    // A block below --min-block is no region.
    assert_eq!(h.heap(malloc, [16, 0], block), [] as [String; 0]);
}

#[test]
fn a_mapping_unknown_at_the_time_of_the_fault_is_unknown_and_counted() {
    let mut h = Harness::new();
    h.fault(PID, PID, 0x9000_0000, WRITE);
    // Mapped later: too late for the fault, which was resolved as its record came.
    h.system.map(PID, 0x9000_0000, 0x9000_1000, "[anon]", 0);
    h.completes(PID, PID, false);
    assert_eq!(
        h.thread_exit(PID),
        ["minor 100/100 0x90000000 [unknown]@0x90000000 by /bin/app+0x1100"]
    );
    assert_eq!(h.session.unknown_mappings(), 1);
    // One query of the one VMA there; no whole read beyond the first.
    assert_eq!(h.system.asked(), (1, 1));
}

#[test]
fn a_gone_process_has_its_heap_named_from_its_brk_calls() {
    let mut h = Harness::new();
    h.syscall(PID, PID, Syscall::Brk, &[0], HEAP.1 as i64);
    h.syscall(
        PID,
        PID,
        Syscall::Brk,
        &[HEAP.1 + 0x1000],
        (HEAP.1 + 0x1000) as i64,
    );
    h.system.gone(PID);
    // Past the heap's end as the first read saw it: the brk calls moved it.
    let mut events = h.fault(PID, PID, HEAP.1 + 8, WRITE);
    events.extend(h.fault(PID, PID, 0x9000_0000, WRITE));
    events.extend(h.finish());
    assert_eq!(
        events,
        [
            "error 100/100 0x621008 [heap]@0x8 by /bin/app+0x1100",
            "error 100/100 0x90000000 [unknown]@0x90000000 by /bin/app+0x1100",
        ]
    );
    assert_eq!(h.session.unknown_mappings(), 1);
}

#[test]
fn classes_come_from_the_threads_counters() {
    let mut h = Harness::new();
    h.fault(PID, PID, HEAP.0, READ);
    h.completes(PID, PID, true);
    assert_eq!(
        h.fault(PID, PID, HEAP.0 + 0x1000, WRITE),
        ["major 100/100 0x600000 [heap]@0x0 by /bin/app+0x1100"]
    );
    h.completes(PID, PID, false);
    assert_eq!(
        h.fault(PID, PID, HEAP.0 + 0x2000, WRITE),
        ["minor 100/100 0x601000 [heap]@0x1000 by /bin/app+0x1100"]
    );
    assert_eq!(
        h.thread_exit(PID),
        ["error 100/100 0x602000 [heap]@0x2000 by /bin/app+0x1100"]
    );
    let totals = h.session.totals();
    assert_eq!((totals.minor, totals.major, totals.error), (1, 1, 1));
}

#[test]
fn a_kernel_mode_fault_is_named_by_the_kernel_code_and_the_user_memory() {
    let mut h = Harness::new();
    let kernel_ip = 0xffff_ffff_8100_0000;
    let mut fault = h.fault_at(PID, PID, HEAP.0 + 0x3000, kernel_ip, 2);
    fault.source = FaultSource::Kernel;
    h.feed(PID, Record::Fault(fault), Some(vec![IP, CODE.0 + 0x800]));
    h.completes(PID, PID, false);
    let mut out = Vec::new();
    h.session.finish(&mut out);
    let [TraceEvent::Fault(traced)] = out.as_slice() else {
        panic!("{out:?}");
    };
    assert_eq!(
        brief(&out[0]),
        "minor 100/100 0x603000 [heap]@0x3000 by [kernel]+0xffffffff81000000"
    );
    assert_eq!(traced.fault.fault.error_code.access(), Access::Write);
    let frames: Vec<_> = traced
        .stack
        .iter()
        .flatten()
        .map(|frame| {
            (
                frame.address,
                frame.code.module.as_deref(),
                frame.code.offset,
            )
        })
        .collect();
    assert_eq!(
        frames,
        [
            (IP, Some("/bin/app"), 0x1100),
            (CODE.0 + 0x800, Some("/bin/app"), 0x1800)
        ]
    );
}

#[test]
fn a_quiet_thread_is_settled_from_its_counters_only_once_they_moved() {
    let mut h = Harness::new();
    h.system.counters(PID, PID, 0, 0);
    h.fault(PID, PID, HEAP.0, WRITE);
    let mut out = Vec::new();
    // Not quiet long enough yet.
    h.session.settle_quiet(h.clock, &mut out);
    assert!(out.is_empty());
    // Quiet, but the fault is still under way: the counters did not move.
    h.session.settle_quiet(h.clock + 1, &mut out);
    assert!(out.is_empty());
    h.completes(PID, PID, false);
    h.session.settle_quiet(h.clock + 1, &mut out);
    assert_eq!(
        out.iter().map(brief).collect::<Vec<_>>(),
        ["minor 100/100 0x600000 [heap]@0x0 by /bin/app+0x1100"]
    );
}

#[test]
fn the_end_settles_live_threads_from_their_counters_and_gone_ones_as_errors() {
    let mut h = Harness::new();
    let gone = PID + 1;
    h.fault(PID, gone, HEAP.0 + 0x1000, WRITE);
    h.fault(PID, PID, HEAP.0, WRITE);
    h.completes(PID, PID, false);
    assert_eq!(
        h.finish(),
        [
            "minor 100/100 0x600000 [heap]@0x0 by /bin/app+0x1100",
            "error 100/101 0x601000 [heap]@0x1000 by /bin/app+0x1100",
        ]
    );
}

#[test]
fn regions_are_named_by_origin_and_count() {
    let mut h = Harness::new();
    let mut out = Vec::new();
    h.session.add_manual_region(PID, 0x9000_0000, 64, &mut out);
    assert_eq!(
        out.iter().map(brief).collect::<Vec<_>>(),
        ["start manual#1 100 0x90000000+64"]
    );
    h.mmap(PID, MMAP, 4096);
    h.mmap(PID, MMAP + 0x10_0000, 4096);
    h.heap(HeapFunction::Calloc, [2, 4096], HEAP.0 + 0x10);
    h.heap(HeapFunction::Malloc, [4096, 0], HEAP.0 + 0x3000);
    h.heap(
        HeapFunction::Realloc,
        [HEAP.0 + 0x3000, 8192],
        HEAP.0 + 0x5000,
    );
    let names: Vec<_> = h.regions().into_iter().map(|(name, ..)| name).collect();
    assert_eq!(
        names,
        [
            "manual#1",
            "mmap#1",
            "mmap#2",
            "calloc#1",
            "malloc#1",
            "realloc#1"
        ]
    );
}

#[test]
fn only_the_last_ended_regions_keep_their_pages() {
    let mut h = Harness::new();
    let count = KEPT_ENDED_REGIONS as u64 + 3;
    for _ in 0..count {
        h.mmap(PID, MMAP, 4096);
        h.munmap(PID, MMAP, 4096);
    }
    assert_eq!(h.session.forgotten_regions(), 3);
    let names: Vec<_> = h.regions().into_iter().map(|(name, ..)| name).collect();
    assert_eq!(names.len(), KEPT_ENDED_REGIONS);
    assert_eq!(names[0], "mmap#4");
}

#[test]
fn a_changed_range_is_asked_for_its_one_vma_and_an_unchanged_one_is_not() {
    let mut h = Harness::new();
    h.mmap(PID, MMAP, 8192);
    // The kernel merged the new mapping with one below it: the offset counts from there.
    h.system.map(PID, MMAP - 4096, MMAP + 8192, "[anon]", 0);
    let mut events = h.fault(PID, PID, MMAP, WRITE);
    h.completes(PID, PID, false);
    events.extend(h.fault(PID, PID, MMAP + 4096, WRITE));
    h.completes(PID, PID, false);
    events.extend(h.fault(PID, PID, HEAP.0, WRITE));
    h.completes(PID, PID, false);
    events.extend(h.finish());
    assert_eq!(
        events,
        [
            "minor 100/100 0x7f0000000000 [anon]@0x1000 mmap#1[0] page 0 by /bin/app+0x1100",
            "minor 100/100 0x7f0000001000 [anon]@0x2000 mmap#1[1024] page 1 by /bin/app+0x1100",
            "minor 100/100 0x600000 [heap]@0x0 by /bin/app+0x1100",
        ]
    );
    assert_eq!(h.system.asked(), (1, 1));
    let mut out = Vec::new();
    h.session.finish(&mut out);
    assert!(out.is_empty());
}
