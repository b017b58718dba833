//! The session fed sequences of records, as the ring buffer would deliver them, against a fake
//! of the system: every event it makes is checked, field by field, as one line each.

use demo_common::{FaultCounters, FaultSource, HeapFunction, Syscall};

use super::*;
use crate::{
    model::{
        access::{Access, ErrorCode},
        classify::FaultClass,
        events::{
            CapturedFile, DeviceNumber, ExecImage, FaultEnd, FaultTiming, HeapEvent, ImageLayout,
            JoinEvent, MappedFile, ProcessEvent, RawStack, SignalEvent, StackCopy, SyscallEvent,
            ThreadSnapshot,
        },
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
        system.map_code(PID, CODE.0, CODE.1, "/bin/app", 0x1000);
        system.map(PID, HEAP.0, HEAP.1, "[heap]", 0);
        let mut session = Session::new(regions, system.view());
        session.add_process(PID, TracedSince::Attach);
        Self {
            system,
            session,
            clock: 0,
            counters: BTreeMap::new(),
        }
    }

    /// Feeds one record of thread `tid`, with the thread's counters as they are now.
    fn feed(&mut self, tid: u32, record: Record, stack: Option<RawStack>) -> Vec<String> {
        self.events(tid, record, stack).iter().map(brief).collect()
    }

    /// Feeds one record as [`Harness::feed`] does, and returns the events themselves.
    fn events(&mut self, tid: u32, record: Record, stack: Option<RawStack>) -> Vec<TraceEvent> {
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
        out
    }

    /// A thread's exit record, with its final counters.
    fn thread_exit(&mut self, pid: u32, tid: u32) -> Vec<String> {
        self.feed(tid, Record::ThreadExit { pid }, None)
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
        h.thread_exit(PID, PID),
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
        h.thread_exit(CHILD, CHILD),
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
    h.system.map_code(CHILD, CODE.0, CODE.1, "/bin/app", 0x1000);
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
        h.thread_exit(CHILD, CHILD),
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
        h.thread_exit(PID, PID),
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
    let signal = segv(&mut h);
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
        h.thread_exit(PID, thread),
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
        h.thread_exit(PID, PID),
        ["minor 100/100 0x90000000 [unknown]@0x90000000 by /bin/app+0x1100"]
    );
    assert_eq!(
        h.session.unknown_mappings(),
        UnknownMappings {
            nothing_mapped: 1,
            process_gone: 0
        }
    );
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
    assert_eq!(
        h.session.unknown_mappings(),
        UnknownMappings {
            nothing_mapped: 0,
            process_gone: 1
        }
    );
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
        h.thread_exit(PID, PID),
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
    h.feed(
        PID,
        Record::Fault(fault),
        Some(RawStack::Frames(vec![IP, CODE.0 + 0x800])),
    );
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

/// The stack the session names for one minor fault at `IP` with `raw` as its stack.
fn stack_of_one_fault(raw: RawStack) -> crate::kernel::symbols::Stack {
    let mut h = Harness::new();
    let fault = h.fault_at(PID, PID, HEAP.0 + 0x3000, IP, 6);
    h.feed(PID, Record::Fault(fault), Some(raw));
    h.completes(PID, PID, false);
    let mut out = Vec::new();
    h.session.finish(&mut out);
    let [TraceEvent::Fault(traced)] = out.as_slice() else {
        panic!("{out:?}");
    };
    traced.stack.clone().expect("a stack")
}

/// A frame-pointer walk through code built without frame pointers reads whatever such code
/// left in rbp's slot: ASCII text (`param_va`, as a Python stack gave), or a pointer to data.
/// The stack ends at the first return address no executable mapping holds, and says where and
/// why; nothing past it is a frame.
#[test]
fn a_stack_ends_at_the_first_address_outside_an_executable_mapping() {
    use crate::kernel::symbols::{EndCause, StackEnd};
    for (walked, kept, end) in [
        (
            vec![IP, CODE.0 + 0x800, 0x6176_5f6d_6172_6170, CODE.0 + 0x900],
            vec![IP, CODE.0 + 0x800],
            StackEnd {
                address: 0x6176_5f6d_6172_6170,
                why: EndCause::NoUserAddress,
            },
        ),
        (
            vec![IP, HEAP.0 + 0x10, CODE.0 + 0x900],
            vec![IP],
            StackEnd {
                address: HEAP.0 + 0x10,
                why: EndCause::NotExecutable,
            },
        ),
    ] {
        let stack = stack_of_one_fault(RawStack::Frames(walked));
        let frames: Vec<u64> = stack.iter().map(|frame| frame.address).collect();
        assert_eq!(frames, kept);
        assert_eq!(stack.end, Some(end));
    }
}

/// `--call-graph dwarf`: a copied stack is unwound with the process's mappings at the fault,
/// its frames named as a walked stack's are, a frame found without unwind tables says so, and
/// a stack whose next caller lies past the copy ends truncated, at that stack address.
#[test]
fn a_copied_stack_is_unwound_and_says_where_the_copy_cut_it() {
    use crate::kernel::symbols::{EndCause, StackEnd};
    let words =
        |addresses: &[u64]| -> Vec<u8> { addresses.iter().flat_map(|a| a.to_ne_bytes()).collect() };
    let regs = demo_common::UserRegs {
        ip: IP,
        sp: 0x7ffe_0000,
        bp: 0,
    };
    for (copied, requested, kept, no_tables, end) in [
        // The whole stack: two callers, then the outermost frame's 0.
        (
            words(&[CODE.0 + 0x800, CODE.0 + 0x980, 0]),
            64,
            vec![IP, CODE.0 + 0x800, CODE.0 + 0x980],
            vec![false, false, true],
            None,
        ),
        // Cut by the copy's length after one caller.
        (
            words(&[CODE.0 + 0x800]),
            8,
            vec![IP, CODE.0 + 0x800],
            vec![false, false],
            Some(StackEnd {
                address: 0x7ffe_0008,
                why: EndCause::Truncated,
            }),
        ),
    ] {
        let copy = StackCopy {
            regs,
            bytes: copied,
            requested,
            skipped: 0,
            at_top: false,
        };
        let stack = stack_of_one_fault(RawStack::Copied(copy));
        let frames: Vec<u64> = stack.iter().map(|frame| frame.address).collect();
        assert_eq!(frames, kept);
        let marked: Vec<bool> = stack.iter().map(|frame| frame.no_unwind_info).collect();
        assert_eq!(marked, no_tables);
        assert_eq!(stack.end, end);
        assert_eq!(stack[1].code.offset, 0x1800, "{:?}", stack[1].code);
    }
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
    // The read that shows it ended is believed at the next call, once the buffer was read.
    h.session.settle_quiet(h.clock + 1, &mut out);
    assert!(out.is_empty());
    h.session.settle_quiet(h.clock + 1, &mut out);
    assert_eq!(
        out.iter().map(brief).collect::<Vec<_>>(),
        ["minor 100/100 0x600000 [heap]@0x0 by /bin/app+0x1100"]
    );
    assert_eq!(h.session.unattributed_faults(), 0);
}

/// The race of a loader that is behind: the quiet timer fires while the thread's later records
/// still wait in the buffer, and /proc already counts their faults. The read must neither
/// class the open fault nor count those faults as unattributed; the records, once read, do.
#[test]
fn records_still_queued_when_the_quiet_timer_fires_settle_their_faults_not_proc() {
    let mut h = Harness::new();
    h.fault(PID, PID, HEAP.0, WRITE);
    // The thread went on: 2,000 more faults completed, their records not read yet.
    let queued: Vec<u64> = (1..=2000)
        .map(|page| HEAP.0 + page * 0x1000 % 0x2_0000)
        .collect();
    for _ in 0..=queued.len() {
        h.completes(PID, PID, false);
    }
    let mut out = Vec::new();
    h.session.settle_quiet(u64::MAX, &mut out);
    assert!(out.is_empty());
    // The reader catches up: each record settles the fault before it.
    for &address in &queued {
        // The counters each record carries are those of its moment, not of the read.
        let moment = h.clock / 1000;
        h.counters.insert(
            PID,
            FaultCounters {
                minor: moment,
                major: 0,
            },
        );
        let settled = h.fault(PID, PID, address, WRITE);
        assert_eq!(settled.len(), 1, "{settled:?}");
        assert!(settled[0].starts_with("minor "), "{settled:?}");
    }
    // The timer fires again: the read made before those records is not believed.
    h.session.settle_quiet(u64::MAX, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(h.session.unattributed_faults(), 0);
    assert_eq!(h.session.totals().minor, 2000);
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

/// Each process is compared with what the kernel counted for it, not with the first one only:
/// a parent that had faulted before the trace began, and a followed child with one fault the
/// kernel took on its behalf (get_user_pages), which no tracepoint sees.
#[test]
fn each_process_is_compared_with_the_kernels_count_for_it() {
    let mut h = Harness::new();
    h.counters.insert(PID, FaultCounters { minor: 7, major: 0 });
    h.system.counters(PID, PID, 7, 0);
    h.session.add_process(PID, TracedSince::Attach);
    h.fault(PID, PID, HEAP.0, WRITE);
    h.completes(PID, PID, false);
    h.process(CHILD, PID, PID, false);
    for page in 0..3 {
        h.fault(CHILD, CHILD, HEAP.0 + page * 0x1000, WRITE_PRESENT);
        h.completes(CHILD, CHILD, false);
    }
    // A fault the kernel took for the child inside a syscall: counted, never traced.
    h.completes(CHILD, CHILD, false);
    h.thread_exit(CHILD, CHILD);
    h.process(CHILD, CHILD, CHILD, true);
    // The parent runs on: nothing of it is compared yet.
    assert_eq!(
        totals(&h),
        [(PID, 1, 7, None, None), (CHILD, 3, 0, Some(4), Some(1))]
    );
    h.thread_exit(PID, PID);
    h.process(PID, PID, PID, true);
    assert_eq!(
        totals(&h),
        [
            (PID, 1, 7, Some(8), Some(0)),
            (CHILD, 3, 0, Some(4), Some(1))
        ]
    );
}

/// A file's capture at its mmap's exit, as the kernel side reports it after the exit record.
fn mapped_file(at: u64, len: u64, path: &str) -> Record {
    Record::MappedFile(MappedFile {
        pid: PID,
        start: at,
        len,
        prot: libc::PROT_READ as u64,
        flags: libc::MAP_PRIVATE as u64,
        offset: 0,
        file: CapturedFile {
            device: DeviceNumber {
                major: 254,
                minor: 1,
            },
            inode: 12,
            path: Some(path.into()),
        },
    })
}

/// An mmap of two pages of file `path` from descriptor `fd` with `flags`, which the kernel
/// places at [`MMAP`]: its entry and exit records, then its capture.
fn map_file(h: &mut Harness, fd: u64, flags: u64, path: &str) {
    // A fixed mapping asks for the address; any other lets the kernel choose.
    let at = if flags & libc::MAP_FIXED_NOREPLACE as u64 != 0 {
        MMAP
    } else {
        0
    };
    let args = [at, 0x2000, libc::PROT_READ as u64, flags, fd, 0];
    h.syscall(PID, PID, Syscall::Mmap, &args, MMAP as i64);
    h.feed(PID, mapped_file(MMAP, 0x2000, path), None);
}

#[test]
fn each_file_mapped_at_one_address_names_its_own_faults_though_proc_knows_the_last() {
    let mut h = Harness::new();
    // /proc, read after the fact, knows only the second file.
    h.system.map(PID, MMAP, MMAP + 0x2000, "/data/b", 0);
    let private = libc::MAP_PRIVATE as u64;
    map_file(&mut h, 3, private, "/data/a");
    let fault = h.fault_at(PID, PID, MMAP + 0x1010, IP, READ);
    h.feed(PID, Record::Fault(fault), None);
    h.completes(PID, PID, false);
    assert_eq!(
        h.syscall(PID, PID, Syscall::Munmap, &[MMAP, 0x2000], 0),
        [
            "minor 100/100 0x7f0000001010 /data/a@0x1010 by /bin/app+0x1100",
            "Munmap 100 = 0x0"
        ]
    );
    let fixed = private | libc::MAP_FIXED_NOREPLACE as u64;
    map_file(&mut h, 4, fixed, "/data/b");
    let fault = h.fault_at(PID, PID, MMAP + 0x1010, IP, READ);
    h.feed(PID, Record::Fault(fault), None);
    h.completes(PID, PID, false);
    assert_eq!(
        h.thread_exit(PID, PID),
        ["minor 100/100 0x7f0000001010 /data/b@0x1010 by /bin/app+0x1100"]
    );
    // Neither fault asked the kernel: the captures held both addresses.
    assert_eq!(h.system.asked(), (0, 1));
}

#[test]
fn a_captured_mapping_is_believed_over_proc_after_a_change_in_its_range() {
    let mut h = Harness::new();
    h.system.map(PID, MMAP, MMAP + 0x2000, "/data/b", 0);
    map_file(&mut h, 3, libc::MAP_PRIVATE as u64, "/data/a");
    // An mprotect marks the range stale; the capture still names it, and /proc is not asked.
    h.syscall(PID, PID, Syscall::Mprotect, &[MMAP, 0x1000, 0], 0);
    let fault = h.fault_at(PID, PID, MMAP + 0x1010, IP, READ);
    h.feed(PID, Record::Fault(fault), None);
    h.completes(PID, PID, false);
    assert_eq!(
        h.thread_exit(PID, PID),
        ["minor 100/100 0x7f0000001010 /data/a@0x1010 by /bin/app+0x1100"]
    );
    assert_eq!(h.system.asked(), (0, 1));
}

#[test]
fn an_exec_names_the_new_binary_from_its_capture_when_proc_is_gone() {
    let mut h = Harness::new();
    assert_eq!(h.feed(PID, Record::Exec(PID), None), [] as [String; 0]);
    let image = new_image(None);
    assert_eq!(
        h.feed(PID, Record::ExecImage(image), None),
        [] as [String; 0]
    );
    // The process is gone before any read of /proc.
    h.system.gone(PID);
    let fault = h.fault_at(PID, PID, 0x50_1010, 0x50_0020, READ);
    h.feed(PID, Record::Fault(fault), None);
    h.completes(PID, PID, true);
    assert_eq!(
        h.thread_exit(PID, PID),
        ["major 100/100 0x501010 /bin/new@0x1010 by /bin/new+0x20"]
    );
    assert_eq!(h.session.command_of(PID), Some("new"));
    // The old image's table is gone with it: nothing of /bin/app names the new image.
    let fault = h.fault_at(PID, PID, IP, IP, READ);
    h.feed(PID, Record::Fault(fault), None);
    h.completes(PID, PID, false);
    assert_eq!(
        h.thread_exit(PID, PID),
        ["minor 100/100 0x400100 [unknown]@0x400100 by 0x400100"]
    );
}

/// The kernel's code: where a kernel-mode fault's instruction is.
const KERNEL_IP: u64 = 0xffff_ffff_8100_0000;

/// A new image `/bin/new` as its exec's capture gives it: code over `0x50_0000..0x50_2000`,
/// and the stack's VMA over `stack`.
fn new_image(stack: Option<(u64, u64)>) -> ExecImage {
    ExecImage {
        pid: PID,
        exe: CapturedFile {
            device: DeviceNumber {
                major: 254,
                minor: 1,
            },
            inode: 7,
            path: Some("/bin/new".into()),
        },
        layout: ImageLayout {
            start_code: 0x50_0000,
            end_code: 0x50_1800,
            start_data: 0x50_3000,
            end_data: 0x50_3100,
            start_brk: 0x51_0000,
            start_stack: 0x7ffc_0001_f000,
        },
        interpreter_base: 0,
        program_headers: 0x50_0040,
        entry: 0x50_0100,
        vdso: 0,
        stack,
        command: "new".to_owned(),
    }
}

#[test]
fn the_kernels_writes_into_a_new_image_are_named_from_it_though_they_come_before_the_exec() {
    let mut h = Harness::new();
    h.mmap(PID, MMAP, 4096);
    // The process is gone before any record is read: nothing but the records says what the
    // new image mapped.
    h.system.gone(PID);
    // execve zeroes the new program's bss and writes the new stack, before its records.
    let bss = h.fault_at(PID, PID, 0x50_1010, KERNEL_IP, WRITE);
    assert_eq!(h.feed(PID, Record::Fault(bss), None), [] as [String; 0]);
    h.completes(PID, PID, false);
    let stack = h.fault_at(PID, PID, 0x7ffc_0001_fff0, KERNEL_IP, WRITE);
    assert_eq!(h.feed(PID, Record::Fault(stack), None), [] as [String; 0]);
    h.completes(PID, PID, false);
    // Both wait for the exec, and so does the end of the old image's region, behind them.
    assert_eq!(h.feed(PID, Record::Exec(PID), None), [] as [String; 0]);
    let image = new_image(Some((0x7ffc_0000_0000, 0x7ffc_0002_0000)));
    assert_eq!(
        h.feed(PID, Record::ExecImage(image), None),
        [
            "minor 100/100 0x501010 /bin/new@0x1010 by [kernel]+0xffffffff81000000",
            "minor 100/100 0x7ffc0001fff0 [stack]@0x1fff0 by [kernel]+0xffffffff81000000",
            "end mmap#1 100",
        ]
    );
    assert_eq!(h.session.unknown_mappings(), UnknownMappings::default());
    // The new image's own faults on its stack are named from the exec's capture too.
    let fault = h.fault_at(PID, PID, 0x7ffc_0000_0008, 0x50_0020, WRITE);
    h.feed(PID, Record::Fault(fault), None);
    h.completes(PID, PID, false);
    assert_eq!(
        h.thread_exit(PID, PID),
        ["minor 100/100 0x7ffc00000008 [stack]@0x8 by /bin/new+0x20"]
    );
}

#[test]
fn a_fault_in_no_mapping_waits_only_for_its_threads_next_record_that_is_no_fault() {
    let mut h = Harness::new();
    h.fault(PID, PID, 0x10, READ);
    // The next fault completes; the first did not. Neither goes out before the thread does
    // something else, and then both go out in order, as the first was named.
    h.fault(PID, PID, HEAP.0, READ);
    h.completes(PID, PID, false);
    let other = h.fault(PID, CHILD, HEAP.0 + 0x1000, READ);
    assert_eq!(other, [] as [String; 0]);
    let signal = segv(&mut h);
    assert_eq!(
        h.feed(PID, Record::Signal(signal), None),
        [
            "error 100/100 0x10 [unknown]@0x10 by /bin/app+0x1100",
            "minor 100/100 0x600000 [heap]@0x0 by /bin/app+0x1100",
            "signal 11 to 100",
        ]
    );
    assert_eq!(
        h.session.unknown_mappings(),
        UnknownMappings {
            nothing_mapped: 1,
            process_gone: 0
        }
    );
}

#[test]
fn a_fault_in_memory_whose_mmap_record_was_lost_is_named_by_the_kernel() {
    let mut h = Harness::new();
    // The kernel mapped it; its mmap's records were dropped.
    h.system.map(PID, MMAP, MMAP + 0x2000, "[anon]", 0);
    h.fault(PID, PID, MMAP + 0x1010, WRITE);
    h.completes(PID, PID, false);
    assert_eq!(
        h.thread_exit(PID, PID),
        ["minor 100/100 0x7f0000001010 [anon]@0x1010 by /bin/app+0x1100"]
    );
    assert_eq!(h.session.unknown_mappings(), UnknownMappings::default());
    assert_eq!(h.system.asked(), (1, 1));
}

#[test]
fn an_exited_process_not_reaped_keeps_what_the_trace_knew_of_its_mappings() {
    let mut h = Harness::new();
    h.system.zombie(PID);
    // A miss asks the kernel, which has no address space for it any more: that is no answer.
    h.fault(PID, PID, 0x9000_0000, WRITE);
    h.fault(PID, PID, HEAP.0, WRITE);
    h.completes(PID, PID, false);
    assert_eq!(
        h.thread_exit(PID, PID),
        [
            "error 100/100 0x90000000 [unknown]@0x90000000 by /bin/app+0x1100",
            "minor 100/100 0x600000 [heap]@0x0 by /bin/app+0x1100",
        ]
    );
    assert_eq!(
        h.session.unknown_mappings(),
        UnknownMappings {
            nothing_mapped: 0,
            process_gone: 1
        }
    );
}

/// The SIGSEGV (SEGV_MAPERR) the kernel sends thread [`PID`] for a fault it could not resolve.
fn segv(h: &mut Harness) -> SignalEvent {
    SignalEvent {
        timestamp_ns: h.now(),
        pid: PID,
        tid: PID,
        target_tid: PID,
        signal: libc::SIGSEGV,
        code: 1,
        errno: 0,
        result: 0,
    }
}

/// Where the kernel maps the page for uprobes in the command's new image.
const UPROBES: u64 = 0x7fff_f000_0000;
/// demo itself: the tracer that the command's ptrace stops signal.
const DEMO: u32 = 50;
/// A user-mode instruction fetch from a page not present.
const FETCH: u64 = 0x14;

/// The SIGCHLD with `code` that a thread of `pid` sends its parent or tracer `to`.
fn sigchld(h: &mut Harness, pid: u32, to: u32, code: i32) -> Record {
    Record::Signal(SignalEvent {
        timestamp_ns: h.now(),
        pid,
        tid: pid,
        target_tid: to,
        signal: libc::SIGCHLD,
        code,
        errno: 0,
        result: 0,
    })
}

/// What demo's own tracing makes the command do is counted apart and never shown as the
/// program's: the command's faults in demo's code between its fork and its exec, its fault on
/// the `[uprobes]` page, and the SIGCHLD (CLD_TRAPPED) its ptrace stop sends demo. Another
/// process's faults meanwhile, the command's own faults after its exec, a CLD_TRAPPED of a
/// process demo does not ptrace and the command's CLD_EXITED stay the program's. The kernel
/// counts demo's faults too, so the command's completions, compared with its counts, hold them.
#[test]
fn demos_own_faults_and_signals_are_counted_apart_from_the_programs() {
    let mut h = Harness::new();
    h.system.process(CHILD, "demo");
    h.system
        .map_code(CHILD, CODE.0, CODE.1, "/usr/local/bin/demo", 0x1000);
    h.system.map(CHILD, HEAP.0, HEAP.1, "[heap]", 0);
    h.session.add_command(CHILD);
    let mut events = h.fault(CHILD, CHILD, HEAP.0, WRITE);
    h.completes(CHILD, CHILD, false);
    events.extend(h.fault(PID, PID, HEAP.0, WRITE));
    h.completes(PID, PID, false);
    events.extend(h.fault(CHILD, CHILD, HEAP.0 + 0x1000, WRITE));
    h.completes(CHILD, CHILD, false);
    // The exec settles the command's last fault in demo's code, before the new image runs.
    h.system.exec(CHILD, "lab");
    h.system.map_code(CHILD, CODE.0, CODE.1, "/bin/lab", 0x1000);
    h.system.map(CHILD, HEAP.0, HEAP.1, "[heap]", 0);
    h.system
        .map_code(CHILD, UPROBES, UPROBES + 0x1000, "[uprobes]", 0);
    events.extend(h.feed(CHILD, Record::Exec(CHILD), None));
    // The first return through the uretprobe trampoline fetches its page.
    let trampoline = h.fault_at(CHILD, CHILD, UPROBES, UPROBES, FETCH);
    events.extend(h.feed(CHILD, Record::Fault(trampoline), None));
    h.completes(CHILD, CHILD, false);
    events.extend(h.fault(CHILD, CHILD, HEAP.0 + 0x2000, WRITE));
    h.completes(CHILD, CHILD, false);
    // The command stops at its exit, for demo to read its records.
    let stop = sigchld(&mut h, CHILD, DEMO, libc::CLD_TRAPPED);
    events.extend(h.feed(CHILD, stop, None));
    let other = sigchld(&mut h, PID, 1, libc::CLD_TRAPPED);
    events.extend(h.feed(PID, other, None));
    let exited = sigchld(&mut h, CHILD, DEMO, libc::CLD_EXITED);
    events.extend(h.feed(CHILD, exited, None));
    events.extend(h.finish());
    assert_eq!(
        events,
        [
            "minor 200/200 0x602000 [heap]@0x2000 by /bin/lab+0x1100",
            "minor 100/100 0x600000 [heap]@0x0 by /bin/app+0x1100",
            "signal 17 to 1",
            "signal 17 to 50",
        ]
    );
    assert_eq!(
        h.session.demo_own(),
        DemoOwn {
            faults_before_exec: 2,
            uprobes_page_faults: 1,
            ptrace_stop_signals: 1,
        }
    );
    let totals = h.session.totals();
    assert_eq!((totals.minor, totals.major, totals.error), (2, 0, 0));
    let (functions, _) = h.session.functions().summary();
    let functions: Vec<(Option<&str>, u64)> = functions
        .iter()
        .map(|row| (row.module.as_deref(), row.faults))
        .collect();
    assert_eq!(functions, [(Some("/bin/app"), 1), (Some("/bin/lab"), 1)]);
    assert_eq!(
        (
            h.session.completions_of(CHILD),
            h.session.completions_of(PID)
        ),
        (4, 1)
    );
}

/// A fault's completion: the kernel counts it (minor or major) and fires its event, whose
/// record closes the fault that began at `start_ns`. Returns the events it made.
fn fault_end(
    h: &mut Harness,
    tid: u32,
    start_ns: u64,
    major: bool,
    timing: FaultTiming,
) -> Vec<TraceEvent> {
    h.completes(PID, tid, major);
    feed_end(h, tid, start_ns, major, timing)
}

/// The record of a completion of class `major` (the counters as they are) for thread `tid`.
fn feed_end(
    h: &mut Harness,
    tid: u32,
    start_ns: u64,
    major: bool,
    timing: FaultTiming,
) -> Vec<TraceEvent> {
    let counters = h.counters.get(&tid).copied().unwrap_or_default();
    let end = FaultEnd {
        timestamp_ns: start_ns + timing.duration_ns,
        pid: PID,
        tid,
        start_ns,
        address: 0,
        class: if major {
            demo_common::CompletedClass::Major
        } else {
            demo_common::CompletedClass::Minor
        },
        timing,
    };
    let mut out = Vec::new();
    h.session.handle(
        Decoded {
            snapshot: ThreadSnapshot { tid, counters },
            record: Record::FaultEnd(end),
            stack: None,
        },
        &mut out,
    );
    out
}

/// A harness whose process wrote to the first page of a new mmap: that fault is open.
fn open_on_mmap() -> (Harness, Fault) {
    let mut h = Harness::new();
    h.mmap(PID, MMAP, 8192);
    let fault = h.fault_at(PID, PID, MMAP, IP, WRITE);
    h.feed(PID, Record::Fault(fault), None);
    (h, fault)
}

/// The class and timing of the one fault among `events`.
fn class_and_timing(events: &[TraceEvent]) -> Vec<(FaultClass, Option<FaultTiming>)> {
    events
        .iter()
        .filter_map(|event| match event {
            TraceEvent::Fault(fault) => Some((fault.fault.class, fault.fault.timing)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_completion_settles_its_fault_at_once_with_the_kernels_class_and_timing() {
    let mut h = Harness::new();
    h.mmap(PID, MMAP, 8192);
    let fault = h.fault_at(PID, PID, MMAP, IP, WRITE);
    assert!(h.feed(PID, Record::Fault(fault), None).is_empty());
    let timing = FaultTiming {
        duration_ns: 1_500_000,
        off_cpu_ns: Some(1_200_000),
        reclaim_ns: 0,
        compaction_ns: 0,
    };
    let out = fault_end(&mut h, PID, fault.timestamp_ns, true, timing);
    assert_eq!(class_and_timing(&out), [(FaultClass::Major, Some(timing))]);
    assert_eq!(timing.on_cpu_ns(), Some(300_000));
    assert_eq!(
        out.iter().map(brief).collect::<Vec<_>>(),
        ["major 100/100 0x7f0000000000 [anon]@0x0 mmap#1[0] page 0 by /bin/app+0x1100"]
    );
    assert!(h.finish().is_empty());
}

#[test]
fn a_completion_of_a_fault_whose_start_was_lost_is_counted_and_settles_by_the_counters() {
    let (mut h, fault) = open_on_mmap();
    // The open fault completes without its event (the record was lost); the next fault's start
    // was lost too, and its completion arrives: it names a start the session never saw.
    let timing = FaultTiming {
        duration_ns: 900,
        ..FaultTiming::default()
    };
    h.completes(PID, PID, false);
    let out = fault_end(&mut h, PID, fault.timestamp_ns + 5_000, false, timing);
    // Two faults counted since the open one began: its own and the lost one.
    assert_eq!(class_and_timing(&out), [(FaultClass::Minor, None)]);
    assert_eq!(h.session.classifier.unmatched_ends(), 1);
    assert_eq!(h.session.classifier.unattributed(), 1);
}

#[test]
fn an_error_fault_has_no_completion_and_no_timing() {
    let mut h = Harness::new();
    let fault = h.fault_at(PID, PID, 0x10, IP, WRITE);
    assert!(h.feed(PID, Record::Fault(fault), None).is_empty());
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
    let mut out = Vec::new();
    h.session.handle(
        Decoded {
            snapshot: ThreadSnapshot {
                tid: PID,
                counters: FaultCounters::default(),
            },
            record: Record::Signal(signal),
            stack: None,
        },
        &mut out,
    );
    assert_eq!(class_and_timing(&out), [(FaultClass::Error, None)]);
}

#[test]
fn completions_of_two_threads_close_each_threads_own_fault() {
    let mut h = Harness::new();
    h.mmap(PID, MMAP, 8192);
    let first = h.fault_at(PID, PID, MMAP, IP, WRITE);
    h.feed(PID, Record::Fault(first), None);
    let second = h.fault_at(PID, PID + 1, MMAP + 4096, IP, WRITE);
    h.feed(PID + 1, Record::Fault(second), None);
    let slow = FaultTiming {
        duration_ns: 7_000,
        off_cpu_ns: Some(5_000),
        ..FaultTiming::default()
    };
    let fast = FaultTiming {
        duration_ns: 600,
        ..FaultTiming::default()
    };
    let out = fault_end(&mut h, PID + 1, second.timestamp_ns, false, fast);
    assert_eq!(class_and_timing(&out), [(FaultClass::Minor, Some(fast))]);
    let out = fault_end(&mut h, PID, first.timestamp_ns, false, slow);
    assert_eq!(class_and_timing(&out), [(FaultClass::Minor, Some(slow))]);
    assert_eq!(h.session.classifier.unmatched_ends(), 0);
    // The counters moved by one minor fault each: they agree with the events.
    assert_eq!(h.session.class_disagreements(), 0);
}

#[test]
fn faults_the_kernel_counts_after_a_completion_without_a_record_are_unattributed() {
    let (mut h, fault) = open_on_mmap();
    let timing = FaultTiming {
        duration_ns: 800,
        off_cpu_ns: Some(0),
        ..FaultTiming::default()
    };
    fault_end(&mut h, PID, fault.timestamp_ns, false, timing);
    assert_eq!(h.session.unattributed_faults(), 0);
    // execve copies its arguments through get_user_pages: two faults counted, no record.
    h.completes(PID, PID, false);
    h.completes(PID, PID, false);
    h.feed(PID, Record::Exec(PID), None);
    assert_eq!(h.session.unattributed_faults(), 2);
    // Counted once: the next record finds nothing new.
    h.munmap(PID, MMAP, 8192);
    assert_eq!(h.session.unattributed_faults(), 2);
}

#[test]
fn a_completion_whose_class_the_counters_do_not_show_is_counted() {
    let (mut h, fault) = open_on_mmap();
    // The event says major while the kernel counted a minor fault (fault_end moves the minor
    // counter when asked for a minor end): the event's class is reported, and the mismatch
    // counted.
    let timing = FaultTiming {
        duration_ns: 2_000,
        off_cpu_ns: Some(0),
        ..FaultTiming::default()
    };
    h.completes(PID, PID, false);
    let out = feed_end(&mut h, PID, fault.timestamp_ns, true, timing);
    assert_eq!(class_and_timing(&out), [(FaultClass::Major, Some(timing))]);
    assert_eq!(h.session.class_disagreements(), 1);
}

/// One process's (pid, traced, counted before the trace, the kernel's count at exit, the
/// difference).
type Totals = (u32, u64, u64, Option<u64>, Option<i64>);

/// Each process's [`Totals`], by pid.
fn totals(h: &Harness) -> Vec<Totals> {
    h.session
        .process_totals()
        .map(|p| {
            let difference = p.difference();
            (
                p.pid,
                p.traced,
                p.before_trace.map_or(0, FaultCounters::total),
                p.kernel.map(FaultCounters::total),
                difference,
            )
        })
        .collect()
}

/// Process [`JOINER`] (`worker`, its code and heap as [`PID`]'s) and its join record, made by
/// its one thread, whose counters are then 40 minor and 1 major; its gone threads had 10.
const JOINER: u32 = 300;

fn joiner(h: &mut Harness, threads: u32) -> Record {
    h.system.process(JOINER, "worker");
    h.system
        .map_code(JOINER, CODE.0, CODE.1, "/bin/worker", 0x1000);
    h.system.map(JOINER, HEAP.0, HEAP.1, "[heap]", 0);
    let counters = FaultCounters {
        minor: 40,
        major: 1,
    };
    h.counters.insert(JOINER, counters);
    h.system.counters(JOINER, JOINER, 40, 1);
    Record::Joined(JoinEvent {
        pid: JOINER,
        counters,
        gone: FaultCounters {
            minor: 10,
            major: 0,
        },
        threads,
    })
}

/// A process that joins is read as one added while it ran: its faults are named from its
/// mappings and command, and what it counted before comes from the join record, its gone
/// threads included, as they are in its count at exit; so the two compare exactly.
#[test]
fn a_process_that_joins_has_its_faults_named_and_its_count_from_its_join() {
    let mut h = Harness::new();
    let join = joiner(&mut h, 1);
    assert_eq!(h.feed(JOINER, join, None), [] as [String; 0]);
    h.fault(JOINER, JOINER, HEAP.0 + 0x2010, WRITE);
    h.completes(JOINER, JOINER, false);
    let events = h.events(JOINER, Record::ThreadExit { pid: JOINER }, None);
    assert_eq!(
        events.iter().map(brief).collect::<Vec<_>>(),
        ["minor 300/300 0x602010 [heap]@0x2010 by /bin/worker+0x1100"]
    );
    let TraceEvent::Fault(fault) = &events[0] else {
        panic!("not a fault: {events:?}");
    };
    assert_eq!(fault.command.as_deref(), Some("worker"));
    h.process(JOINER, JOINER, JOINER, true);
    // Before: 40 + 1 + 10; at exit: 41 + 1 + 10; one traced; nothing unseen.
    assert_eq!(
        totals(&h),
        [(PID, 0, 0, None, None), (JOINER, 1, 51, Some(52), Some(0))]
    );
}

/// The loader adds the processes already in the cgroup as it starts, and the kernel side may
/// join one of them too: the join of a process added changes nothing, nor is it read again.
#[test]
fn a_join_of_a_process_added_already_changes_nothing() {
    let mut h = Harness::new();
    h.counters.insert(PID, FaultCounters { minor: 7, major: 0 });
    h.system.counters(PID, PID, 7, 0);
    h.session.add_process(PID, TracedSince::Attach);
    let asked = h.system.asked();
    let join = Record::Joined(JoinEvent {
        pid: PID,
        counters: FaultCounters { minor: 7, major: 0 },
        gone: FaultCounters {
            minor: 500,
            major: 0,
        },
        threads: 1,
    });
    assert_eq!(h.feed(PID, join, None), [] as [String; 0]);
    assert_eq!(h.system.asked(), asked);
    h.thread_exit(PID, PID);
    h.process(PID, PID, PID, true);
    assert_eq!(totals(&h), [(PID, 0, 7, Some(7), Some(0))]);
}

/// Another thread's event can reach the ring before the join that the first thread made (so
/// the process had two threads, and what came before is not known): the join still adds the
/// process, whose faults are named from its mappings.
#[test]
fn a_join_after_an_event_of_its_process_still_adds_it() {
    let mut h = Harness::new();
    let join = joiner(&mut h, 2);
    let thread = JOINER + 1;
    h.fault(JOINER, thread, HEAP.0, WRITE);
    h.feed(JOINER, join, None);
    h.completes(JOINER, thread, false);
    assert_eq!(
        h.thread_exit(JOINER, thread),
        ["minor 300/301 0x600000 [heap]@0x0 by /bin/worker+0x1100"]
    );
    assert_eq!(h.session.command_of(JOINER), Some("worker"));
    h.thread_exit(JOINER, JOINER);
    h.process(JOINER, JOINER, JOINER, true);
    // At exit: the gone threads' 10, the other thread's 1, the joining thread's 40 + 1.
    assert_eq!(totals(&h)[1], (JOINER, 1, 0, Some(52), None));
}

/// A process that joins with threads besides the joining one counted faults the record does
/// not carry: what came before is not known, so neither is what the trace missed.
#[test]
fn a_process_that_joins_with_other_threads_has_no_difference() {
    let mut h = Harness::new();
    let join = joiner(&mut h, 2);
    h.feed(JOINER, join, None);
    h.fault(JOINER, JOINER, HEAP.0, WRITE);
    h.completes(JOINER, JOINER, false);
    h.thread_exit(JOINER, JOINER);
    h.process(JOINER, JOINER, JOINER, true);
    let joined = h.session.process_totals().nth(1).unwrap();
    assert_eq!(
        (
            joined.pid,
            joined.before_trace.is_some(),
            joined.difference()
        ),
        (JOINER, false, None)
    );
    assert_eq!(
        joined.kernel,
        Some(FaultCounters {
            minor: 51,
            major: 1
        })
    );
}

/// A process whose join record was lost (a full ring) is met first by a fault: the trace
/// names it, but what it counted before is not known, so neither is what the trace missed.
#[test]
fn a_process_whose_join_was_lost_has_no_difference() {
    let mut h = Harness::new();
    joiner(&mut h, 1);
    h.fault(JOINER, JOINER, HEAP.0, WRITE);
    h.completes(JOINER, JOINER, false);
    h.thread_exit(JOINER, JOINER);
    h.process(JOINER, JOINER, JOINER, true);
    let unjoined = h.session.process_totals().nth(1).unwrap();
    assert_eq!(
        (
            unjoined.pid,
            unjoined.traced,
            unjoined.before_trace.is_some(),
            unjoined.difference()
        ),
        (JOINER, 1, false, None)
    );
}

/// Each fault names the command its process had when it faulted: the old one before an exec,
/// the new one after it.
#[test]
fn a_faults_command_follows_an_exec() {
    let mut h = Harness::new();
    h.fault(PID, PID, HEAP.0, WRITE);
    h.completes(PID, PID, false);
    h.system.exec(PID, "new");
    h.system.map(PID, 0x50_0000, 0x50_1000, "/bin/new", 0);
    let mut events = h.events(PID, Record::Exec(PID), None);
    let fault = h.fault_at(PID, PID, 0x50_0010, 0x50_0020, READ);
    h.feed(PID, Record::Fault(fault), None);
    h.completes(PID, PID, true);
    events.extend(h.events(PID, Record::ThreadExit { pid: PID }, None));
    let commands: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            TraceEvent::Fault(fault) => Some((fault.fault.fault.address, fault.command.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        commands,
        [
            (HEAP.0, Some(Arc::from("app"))),
            (0x50_0010, Some(Arc::from("new")))
        ]
    );
}

/// A process that joins with the pid of one that exited is another process: it starts from
/// its own join, the old one keeps its totals in the summary, and the old one's regions end,
/// so the new one's faults at the same addresses are not counted in them.
#[test]
fn a_join_of_a_reused_pid_is_a_new_process_and_the_old_keeps_its_totals() {
    let mut h = Harness::new();
    let join = joiner(&mut h, 1);
    h.feed(JOINER, join, None);
    assert_eq!(
        h.mmap(JOINER, MMAP, 0x3000),
        [
            "Mmap 300 = 0x7f0000000000",
            "start mmap#1 300 0x7f0000000000+12288"
        ]
    );
    h.fault(JOINER, JOINER, MMAP, WRITE);
    h.completes(JOINER, JOINER, false);
    h.thread_exit(JOINER, JOINER);
    h.process(JOINER, JOINER, JOINER, true);
    // The pid is taken again, by `next`, whose one thread counted 5 before it joined.
    h.system.exec(JOINER, "next");
    h.system.map(JOINER, MMAP, MMAP + 0x3000, "[anon]", 0);
    let counters = FaultCounters { minor: 5, major: 0 };
    h.counters.insert(JOINER, counters);
    h.system.counters(JOINER, JOINER, 5, 0);
    let join = Record::Joined(JoinEvent {
        pid: JOINER,
        counters,
        gone: FaultCounters::default(),
        threads: 1,
    });
    assert_eq!(h.feed(JOINER, join, None), ["end mmap#1 300"]);
    h.fault(JOINER, JOINER, MMAP, WRITE);
    h.completes(JOINER, JOINER, false);
    assert_eq!(
        h.thread_exit(JOINER, JOINER),
        ["minor 300/300 0x7f0000000000 [anon]@0x0 by 0x400100"]
    );
    assert_eq!(h.session.command_of(JOINER), Some("next"));
    assert_eq!(
        h.regions(),
        [("mmap#1".to_owned(), JOINER, 1, Some(PageState::Resident))]
    );
    h.process(JOINER, JOINER, JOINER, true);
    // The old one: before 40 + 1 + 10, at exit 41 + 1 + 10. The new one: before 5, at exit 6.
    assert_eq!(
        totals(&h),
        [
            (PID, 0, 0, None, None),
            (JOINER, 1, 51, Some(52), Some(0)),
            (JOINER, 1, 5, Some(6), Some(0))
        ]
    );
    let commands: Vec<_> = h
        .session
        .process_totals()
        .map(|p| p.command.as_deref().map(str::to_owned))
        .collect();
    assert_eq!(
        commands,
        [
            Some("app".to_owned()),
            Some("worker".to_owned()),
            Some("next".to_owned())
        ]
    );
}

/// A followed child forked with the pid of an earlier child that exited starts afresh from
/// its parent, and the earlier child keeps its totals.
#[test]
fn a_fork_of_a_reused_pid_is_a_new_process_and_the_old_keeps_its_totals() {
    let mut h = Harness::new();
    h.process(CHILD, PID, PID, false);
    h.fault(CHILD, CHILD, HEAP.0, WRITE_PRESENT);
    h.completes(CHILD, CHILD, false);
    h.thread_exit(CHILD, CHILD);
    h.process(CHILD, CHILD, CHILD, true);
    h.counters.remove(&CHILD);
    assert_eq!(h.process(CHILD, PID, PID, false), ["fork 200 of 100"]);
    assert!(!h.session.has_exited(CHILD));
    assert_eq!(h.session.completions_of(CHILD), 0);
    assert_eq!(
        totals(&h),
        [
            (PID, 0, 0, None, None),
            (CHILD, 1, 0, Some(1), Some(0)),
            (CHILD, 0, 0, None, None)
        ]
    );
}

/// A process added with the pid of one that exited is another process too.
#[test]
fn a_process_added_with_a_reused_pid_is_a_new_one_and_the_old_keeps_its_totals() {
    let mut h = Harness::new();
    h.fault(PID, PID, HEAP.0, WRITE);
    h.completes(PID, PID, false);
    h.thread_exit(PID, PID);
    h.process(PID, PID, PID, true);
    h.system.counters(PID, PID, 3, 0);
    h.session.add_process(PID, TracedSince::Attach);
    assert!(!h.session.has_exited(PID));
    assert_eq!(
        totals(&h),
        [(PID, 1, 0, Some(1), Some(0)), (PID, 0, 3, None, None)]
    );
}
