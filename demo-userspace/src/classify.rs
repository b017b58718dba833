//! Classes each traced fault as minor, major or error by pairing the tracepoint's record (the
//! fault began) with the perf event's record (the fault completed) of the same thread.

use std::collections::HashMap;

use demo_common::CompletionClass;
use serde::Serialize;

use crate::records::{Completion, Fault};

/// How a fault ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

/// A fault and, once known, its class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassifiedFault {
    pub fault: Fault,
    pub class: FaultClass,
}

/// Pairs faults with completions, thread by thread. A thread runs one fault at a time, and the
/// ring buffer keeps each thread's records in order, so a fault's completion is the next
/// completion of its thread at the same address; a fault followed by another fault of its
/// thread, or still open at the end, never completed. Classed faults come out as soon as their
/// class is known.
#[derive(Debug, Default)]
pub struct Classifier {
    /// Per thread, its open fault.
    open: HashMap<u32, Fault>,
    /// Completions that matched no open fault.
    unmatched: u64,
}

impl Classifier {
    /// Opens a fault; returns the thread's previous open fault, which never completed.
    pub fn fault(&mut self, fault: Fault) -> Option<ClassifiedFault> {
        self.open
            .insert(fault.tid, fault)
            .map(|previous| ClassifiedFault {
                fault: previous,
                class: FaultClass::Error,
            })
    }

    /// Completes the thread's open fault, if this completion is its.
    pub fn completion(&mut self, completion: Completion) -> Option<ClassifiedFault> {
        let class = match completion.class {
            CompletionClass::Minor => FaultClass::Minor,
            CompletionClass::Major => FaultClass::Major,
        };
        match self.open.get(&completion.tid) {
            Some(open) if open.address == completion.address => {
                let fault = self.open.remove(&completion.tid)?;
                Some(ClassifiedFault { fault, class })
            }
            _ => {
                self.unmatched += 1;
                None
            }
        }
    }

    /// Closes every open fault as an error, oldest first: nothing more will complete them.
    pub fn close_all(&mut self) -> Vec<ClassifiedFault> {
        let mut open: Vec<Fault> = self.open.drain().map(|(_, fault)| fault).collect();
        open.sort_by_key(|fault| fault.timestamp_ns);
        open.into_iter()
            .map(|fault| ClassifiedFault {
                fault,
                class: FaultClass::Error,
            })
            .collect()
    }

    /// Completions that matched no fault (a fault that began before tracing did).
    pub fn unmatched(&self) -> u64 {
        self.unmatched
    }
}

#[cfg(test)]
mod tests {
    use demo_common::FaultSource;

    use super::*;
    use crate::access::ErrorCode;

    fn fault(tid: u32, address: u64) -> Fault {
        Fault {
            timestamp_ns: 0,
            pid: 1,
            tid,
            address,
            ip: 0,
            error_code: ErrorCode(6),
            source: FaultSource::User,
        }
    }

    fn done(tid: u32, address: u64, class: CompletionClass) -> Completion {
        Completion {
            timestamp_ns: 0,
            pid: 1,
            tid,
            address,
            class,
        }
    }

    fn class_of(classified: Option<ClassifiedFault>) -> Option<(u64, FaultClass)> {
        classified.map(|c| (c.fault.address, c.class))
    }

    #[test]
    fn completions_class_their_own_threads_faults() {
        let mut classifier = Classifier::default();
        assert_eq!(classifier.fault(fault(1, 0x1000)), None);
        assert_eq!(classifier.fault(fault(2, 0x2000)), None);
        assert_eq!(
            class_of(classifier.completion(done(2, 0x2000, CompletionClass::Major))),
            Some((0x2000, FaultClass::Major))
        );
        assert_eq!(
            class_of(classifier.completion(done(1, 0x1000, CompletionClass::Minor))),
            Some((0x1000, FaultClass::Minor))
        );
        assert_eq!(classifier.unmatched(), 0);
        assert!(classifier.close_all().is_empty());
    }

    #[test]
    fn a_fault_without_completion_is_an_error() {
        let mut classifier = Classifier::default();
        classifier.fault(fault(1, 0x1000));
        assert_eq!(
            class_of(classifier.fault(fault(1, 0x3000))),
            Some((0x1000, FaultClass::Error))
        );
        classifier.completion(done(1, 0x3000, CompletionClass::Minor));
        classifier.fault(fault(1, 0x5000));
        let closed: Vec<_> = classifier
            .close_all()
            .into_iter()
            .map(|c| (c.fault.address, c.class))
            .collect();
        assert_eq!(closed, [(0x5000, FaultClass::Error)]);
    }

    #[test]
    fn a_completion_for_another_address_does_not_match() {
        let mut classifier = Classifier::default();
        classifier.fault(fault(1, 0x1000));
        assert_eq!(
            classifier.completion(done(1, 0x9000, CompletionClass::Minor)),
            None
        );
        assert_eq!(classifier.unmatched(), 1);
        assert_eq!(classifier.close_all().len(), 1);
    }
}
