//! Classes each traced fault as minor, major or error from its thread's own fault counters: every
//! record carries its thread's counters, so the thread's next record after a fault (or its exit,
//! or a read of /proc) says how the fault ended.

use demo_common::{CompletedClass, FaultCounters};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::model::events::{Fault, FaultEnd, FaultTiming, ThreadSnapshot};

/// How a fault ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FaultClass {
    /// Resolved without I/O.
    Minor,
    /// Needed I/O, or was retried.
    Major,
    /// Never completed: the kernel accounted no minor or major fault, e.g. it ended in SIGSEGV.
    Error,
}

impl FaultClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Minor => "minor",
            Self::Major => "major",
            Self::Error => "error",
        }
    }
}

impl From<CompletedClass> for FaultClass {
    fn from(class: CompletedClass) -> Self {
        match class {
            CompletedClass::Minor => Self::Minor,
            CompletedClass::Major => Self::Major,
        }
    }
}

/// How many faults ended in each class: the one count behind every total demo shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub minor: u64,
    pub major: u64,
    pub error: u64,
}

impl ClassCounts {
    /// The counts of `classes`.
    pub fn of(classes: impl IntoIterator<Item = FaultClass>) -> Self {
        let mut counts = Self::default();
        for class in classes {
            counts.add(class);
        }
        counts
    }

    pub fn add(&mut self, class: FaultClass) {
        match class {
            FaultClass::Minor => self.minor += 1,
            FaultClass::Major => self.major += 1,
            FaultClass::Error => self.error += 1,
        }
    }

    pub fn total(self) -> u64 {
        self.minor + self.major + self.error
    }

    /// The classes that occurred, by name, as the JSON `classes` object has them.
    pub fn by_name(self) -> std::collections::BTreeMap<&'static str, u64> {
        [
            (FaultClass::Minor, self.minor),
            (FaultClass::Major, self.major),
            (FaultClass::Error, self.error),
        ]
        .into_iter()
        .filter(|&(_, count)| count > 0)
        .map(|(class, count)| (class.as_str(), count))
        .collect()
    }
}

/// A fault and, once known, its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassifiedFault {
    pub fault: Fault,
    pub class: FaultClass,
    /// How long it took and where the time went, when the kernel reported its completion
    /// (durations on); `None` for an error fault, which never completes, and without durations.
    pub timing: Option<FaultTiming>,
}

/// Settles faults thread by thread. A thread runs one fault at a time and the kernel counts a
/// fault in the thread's `min_flt` or `maj_flt` when it completes, so between a fault's snapshot
/// and the thread's next one the counters moved by one if it completed, and not at all if it
/// failed. Classed faults come out as soon as their class is known, before the record that
/// settled them is handled, so the order of events stays that of the ring buffer. Each open fault
/// carries a `T` the caller noted when it began, handed back with its class.
#[derive(Debug)]
pub struct Classifier<T = ()> {
    /// Per thread, its open fault. Every record takes one lookup here, so the hash is the cheap
    /// one rustc uses.
    open: FxHashMap<u32, OpenFault<T>>,
    /// Faults the kernel counted for a thread beyond the traced ones: those it takes on a
    /// thread's behalf through get_user_pages, which no tracepoint sees (or faults whose records
    /// were dropped).
    unattributed: u64,
    /// See [`Classifier::unmatched_ends`].
    unmatched_ends: u64,
    /// See [`Classifier::disagreements`].
    disagreements: u64,
    /// Per thread whose last fault completed, its counters then; its next record's show what
    /// the kernel counted since without a traced fault.
    completed: FxHashMap<u32, FaultCounters>,
}

/// A fault whose class is not known yet.
#[derive(Debug)]
struct OpenFault<T> {
    fault: Fault,
    /// The thread's counters as the fault began.
    before: FaultCounters,
    /// The caller's note, handed back with the class.
    note: T,
    /// The thread's counters as /proc showed them after the fault, read by
    /// [`Classifier::settle_quiet`] and not believed until every record the thread made before
    /// that read has been handled.
    read_since: Option<FaultCounters>,
}

impl<T> Default for Classifier<T> {
    fn default() -> Self {
        Self {
            open: FxHashMap::default(),
            unattributed: 0,
            unmatched_ends: 0,
            disagreements: 0,
            completed: FxHashMap::default(),
        }
    }
}

/// A classed fault and the note its caller opened it with.
pub type Settled<T> = (ClassifiedFault, T);

impl<T> Classifier<T> {
    /// Takes the snapshot of a record's thread, which settles the thread's open fault if it
    /// has one. Every record goes through here before it is handled.
    pub fn observe(&mut self, snapshot: ThreadSnapshot) -> Option<Settled<T>> {
        // Faults the kernel counted since the thread's last completion, with no record: those
        // it took on the thread's behalf through get_user_pages (execve copying its arguments).
        if let Some(completed) = self.completed.remove(&snapshot.tid) {
            self.unattributed += counted_between(completed, snapshot.counters);
        }
        let open = self.open.remove(&snapshot.tid)?;
        let class = self.settle_with(open.fault, open.before, snapshot.counters);
        Some((class, open.note))
    }

    /// Takes a fault's completion, whose snapshot already counts the fault. When it ends the
    /// thread's open fault (the same start), that fault is settled with the kernel's class and
    /// the measured timing; otherwise the completion is of a fault whose record was lost, and the
    /// snapshot settles the open fault from the counters as any record's would.
    pub fn complete(&mut self, snapshot: ThreadSnapshot, end: &FaultEnd) -> Option<Settled<T>> {
        // One lookup on the common path, where the end matches; the rare other is put back.
        let open = match self.open.remove(&snapshot.tid) {
            Some(open) if open.fault.timestamp_ns == end.start_ns => open,
            other => {
                if let Some(open) = other {
                    self.open.insert(snapshot.tid, open);
                }
                self.unmatched_ends += 1;
                return self.observe(snapshot);
            }
        };
        self.unattributed += counted_between(open.before, snapshot.counters).saturating_sub(1);
        self.completed.insert(snapshot.tid, snapshot.counters);
        let class = FaultClass::from(end.class);
        // The kernel counts the fault in the thread's counters just before it fires the event,
        // so the counters must show it in the same class.
        let by_counters = Self::class_by_counters(open.before, snapshot.counters);
        if by_counters != class {
            self.disagreements += 1;
        }
        let classified = ClassifiedFault {
            fault: open.fault,
            class,
            timing: Some(end.timing),
        };
        Some((classified, open.note))
    }

    /// Completed faults whose class by the thread's counters is not the completion event's:
    /// none, as long as the kernel counts a fault where it fires its event.
    pub fn disagreements(&self) -> u64 {
        self.disagreements
    }

    /// Completions that ended no open fault: their fault's record was lost, or began before the
    /// trace did.
    pub fn unmatched_ends(&self) -> u64 {
        self.unmatched_ends
    }

    /// Opens a fault whose record carried `counters` (observed first), with the caller's note.
    pub fn open(&mut self, fault: Fault, counters: FaultCounters, note: T) {
        self.open.insert(
            fault.tid,
            OpenFault {
                fault,
                before: counters,
                note,
                read_since: None,
            },
        );
    }

    /// Settles quiet threads' faults from /proc in two steps, so that a read never races the
    /// thread's own records. The counters /proc shows count every fault the thread made before
    /// the read, and the records of those faults may still wait in the ring buffer, unread: a
    /// loader that is behind would class the open fault with thousands of later ones. So this
    /// call first settles the faults read by the call before, if their thread made no record
    /// since (the caller has read the buffer in between, so every record made before that read
    /// was handled and would have settled the fault), and only where the counters moved (else
    /// the fault may still be under way). Then it reads the counters, through `read` by (pid,
    /// tid), of the open faults that `quiet` picks, for the next call to judge. Returns the
    /// settled faults oldest first.
    pub fn settle_quiet(
        &mut self,
        quiet: impl Fn(&Fault) -> bool,
        read: impl Fn(u32, u32) -> Option<FaultCounters>,
    ) -> Vec<Settled<T>> {
        let mut ready: Vec<(u64, ThreadSnapshot)> = Vec::new();
        for open in self.open.values_mut() {
            match open.read_since.take() {
                Some(counters) if counters != open.before => ready.push((
                    open.fault.timestamp_ns,
                    ThreadSnapshot {
                        tid: open.fault.tid,
                        counters,
                    },
                )),
                _ => {
                    if quiet(&open.fault) {
                        open.read_since = read(open.fault.pid, open.fault.tid);
                    }
                }
            }
        }
        self.settle_snapshots(ready)
    }

    /// Settles every open fault from its counters as `read` gets them now, for a caller that
    /// knows no record of any thread is left unread (the threads are stopped or gone, and the
    /// buffer was read after that). Returns them oldest first.
    fn settle_now(&mut self, read: impl Fn(u32, u32) -> Option<FaultCounters>) -> Vec<Settled<T>> {
        let ready = self
            .open
            .values()
            .filter_map(|open| {
                let counters = read(open.fault.pid, open.fault.tid)?;
                Some((
                    open.fault.timestamp_ns,
                    ThreadSnapshot {
                        tid: open.fault.tid,
                        counters,
                    },
                ))
            })
            .collect();
        self.settle_snapshots(ready)
    }

    /// Settles the faults of `ready`'s threads with its snapshots, oldest fault first.
    fn settle_snapshots(&mut self, mut ready: Vec<(u64, ThreadSnapshot)>) -> Vec<Settled<T>> {
        ready.sort_by_key(|(timestamp_ns, _)| *timestamp_ns);
        ready
            .into_iter()
            .filter_map(|(_, snapshot)| self.observe(snapshot))
            .collect()
    }

    /// Settles every open fault with its thread's counters as `read` gets them now, oldest
    /// first; the faults of threads it cannot read any more (gone without an exit record) close
    /// as errors, since nothing shows they completed.
    pub fn settle_all(
        &mut self,
        read: impl Fn(u32, u32) -> Option<FaultCounters>,
    ) -> Vec<Settled<T>> {
        let mut settled = self.settle_now(read);
        settled.extend(self.close_all());
        settled
    }

    /// Closes every open fault as an error, oldest first.
    fn close_all(&mut self) -> Vec<Settled<T>> {
        let mut open: Vec<(Fault, T)> = self
            .open
            .drain()
            .map(|(_, open)| (open.fault, open.note))
            .collect();
        open.sort_by_key(|(fault, _)| fault.timestamp_ns);
        open.into_iter()
            .map(|(fault, note)| {
                let class = FaultClass::Error;
                let timing = None;
                (
                    ClassifiedFault {
                        fault,
                        class,
                        timing,
                    },
                    note,
                )
            })
            .collect()
    }

    /// Faults the kernel counted beyond the traced ones (see the field).
    pub fn unattributed(&self) -> u64 {
        self.unattributed
    }

    /// The class the counters show between `before` and `after` a fault. More than one count
    /// means other faults were counted in between; a retried or I/O fault is rare enough that a
    /// major count is taken to be the traced fault's own.
    fn class_by_counters(before: FaultCounters, after: FaultCounters) -> FaultClass {
        if after.major > before.major {
            FaultClass::Major
        } else if after.minor > before.minor {
            FaultClass::Minor
        } else {
            FaultClass::Error
        }
    }

    fn settle_with(
        &mut self,
        fault: Fault,
        before: FaultCounters,
        after: FaultCounters,
    ) -> ClassifiedFault {
        let class = Self::class_by_counters(before, after);
        self.unattributed += counted_between(before, after).saturating_sub(1);
        let timing = None;
        ClassifiedFault {
            fault,
            class,
            timing,
        }
    }
}

/// The faults the kernel counted between two snapshots of one thread.
fn counted_between(before: FaultCounters, after: FaultCounters) -> u64 {
    after.minor.saturating_sub(before.minor) + after.major.saturating_sub(before.major)
}

#[cfg(test)]
mod tests {
    use demo_common::FaultSource;

    use super::*;

    #[test]
    fn class_counts_total_and_name_only_the_classes_seen() {
        let counts = ClassCounts::of([FaultClass::Minor, FaultClass::Error, FaultClass::Minor]);
        assert_eq!((counts.minor, counts.major, counts.error), (2, 0, 1));
        assert_eq!(counts.total(), 3);
        let named: Vec<_> = counts.by_name().into_iter().collect();
        assert_eq!(named, [("error", 1), ("minor", 2)]);
    }
    use crate::model::access::ErrorCode;

    fn snapshot(tid: u32, minor: u64, major: u64) -> ThreadSnapshot {
        ThreadSnapshot {
            tid,
            counters: FaultCounters { minor, major },
        }
    }

    /// Feeds a fault record of thread `tid` at `address` with the thread's counters; returns
    /// what its snapshot settled.
    fn fault(
        classifier: &mut Classifier,
        tid: u32,
        address: u64,
        minor: u64,
        major: u64,
    ) -> Option<(u64, FaultClass)> {
        let settled = classifier.observe(snapshot(tid, minor, major));
        let fault = Fault {
            timestamp_ns: address,
            pid: 1,
            tid,
            address,
            ip: 0,
            error_code: ErrorCode(6),
            source: FaultSource::User,
        };
        classifier.open(fault, FaultCounters { minor, major }, ());
        class_of(settled)
    }

    fn class_of(settled: Option<Settled<()>>) -> Option<(u64, FaultClass)> {
        settled.map(|(c, ())| (c.fault.address, c.class))
    }

    fn classes(settled: Vec<Settled<()>>) -> Vec<(u64, FaultClass)> {
        settled
            .into_iter()
            .map(|(c, ())| (c.fault.address, c.class))
            .collect()
    }

    #[test]
    fn the_next_record_of_the_same_thread_classes_a_fault() {
        let mut c = Classifier::default();
        assert_eq!(fault(&mut c, 1, 0x1000, 10, 0), None);
        assert_eq!(fault(&mut c, 2, 0x2000, 50, 7), None);
        assert_eq!(
            fault(&mut c, 1, 0x3000, 11, 0),
            Some((0x1000, FaultClass::Minor))
        );
        assert_eq!(
            fault(&mut c, 2, 0x4000, 50, 8),
            Some((0x2000, FaultClass::Major))
        );
        assert_eq!(
            fault(&mut c, 1, 0x5000, 11, 0),
            Some((0x3000, FaultClass::Error))
        );
        // A record of another kind (a syscall, a signal, an exit) settles just as well.
        assert_eq!(
            class_of(c.observe(snapshot(1, 12, 0))),
            Some((0x5000, FaultClass::Minor))
        );
        assert_eq!(c.observe(snapshot(1, 12, 0)), None);
        assert_eq!(c.unattributed(), 0);
    }

    #[test]
    fn counts_beyond_the_traced_fault_are_unattributed() {
        let mut c = Classifier::default();
        fault(&mut c, 1, 0x1000, 10, 0);
        // Two more minor faults counted: the traced one and one that no tracepoint saw.
        assert_eq!(
            class_of(c.observe(snapshot(1, 12, 0))),
            Some((0x1000, FaultClass::Minor))
        );
        assert_eq!(c.unattributed(), 1);
    }

    #[test]
    fn settling_from_proc_keeps_faults_whose_counters_did_not_move_when_asked() {
        let mut c = Classifier::default();
        fault(&mut c, 1, 0x1000, 10, 0);
        fault(&mut c, 2, 0x2000, 20, 0);
        let now = |_pid: u32, tid: u32| {
            Some(match tid {
                1 => FaultCounters {
                    minor: 11,
                    major: 0,
                },
                _ => FaultCounters {
                    minor: 20,
                    major: 0,
                },
            })
        };
        // The first call only reads; the second believes the read, where the counters moved.
        assert!(c.settle_quiet(|_| true, now).is_empty());
        assert_eq!(
            classes(c.settle_quiet(|_| true, now)),
            [(0x1000, FaultClass::Minor)]
        );
        assert_eq!(classes(c.settle_all(now)), [(0x2000, FaultClass::Error)]);
        assert!(c.settle_all(now).is_empty());
        assert_eq!(c.unattributed(), 0);
    }

    /// The race a loader that is behind met: the thread faulted thousands of times more after
    /// its open fault, /proc counts them all, and their records are still in the buffer when the
    /// quiet timer fires. The read must not class the open fault; the records that follow do.
    #[test]
    fn a_read_of_proc_is_not_believed_over_records_still_queued() {
        let mut c = Classifier::default();
        fault(&mut c, 1, 0x1000, 10, 0);
        let later = |_pid: u32, _tid: u32| {
            Some(FaultCounters {
                minor: 5010,
                major: 0,
            })
        };
        assert!(c.settle_quiet(|_| true, later).is_empty());
        // The queued records arrive: the thread's next fault settles the open one.
        assert_eq!(
            fault(&mut c, 1, 0x2000, 11, 0),
            Some((0x1000, FaultClass::Minor))
        );
        // The read made before that record is not used for the new open fault.
        assert!(c.settle_quiet(|_| false, later).is_empty());
        assert_eq!(
            class_of(c.observe(snapshot(1, 12, 0))),
            Some((0x2000, FaultClass::Minor))
        );
        assert_eq!(c.unattributed(), 0);
    }

    #[test]
    fn faults_whose_thread_cannot_be_read_close_as_errors_oldest_first() {
        let mut c = Classifier::default();
        fault(&mut c, 2, 0x2000, 0, 0);
        fault(&mut c, 1, 0x1000, 0, 0);
        assert_eq!(
            classes(c.settle_all(|_, _| None)),
            [(0x1000, FaultClass::Error), (0x2000, FaultClass::Error)]
        );
    }
}
