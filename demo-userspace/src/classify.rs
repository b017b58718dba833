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
/// completion of its thread at the same address; a fault followed by another fault, or still
/// open when the step ends, never completed.
#[derive(Debug, Default)]
pub struct Classifier {
    /// Faults in arrival order, with their class when known.
    faults: Vec<(Fault, Option<FaultClass>)>,
    /// Per thread, the index in `faults` of its open fault.
    open: HashMap<u32, usize>,
    /// Completions that matched no open fault.
    unmatched: u64,
}

impl Classifier {
    pub fn fault(&mut self, fault: Fault) {
        if let Some(previous) = self.open.insert(fault.tid, self.faults.len()) {
            self.faults[previous].1 = Some(FaultClass::Error);
        }
        self.faults.push((fault, None));
    }

    pub fn completion(&mut self, completion: Completion) {
        let class = match completion.class {
            CompletionClass::Minor => FaultClass::Minor,
            CompletionClass::Major => FaultClass::Major,
        };
        match self.open.get(&completion.tid) {
            Some(&index) if self.faults[index].0.address == completion.address => {
                self.faults[index].1 = Some(class);
                self.open.remove(&completion.tid);
            }
            _ => self.unmatched += 1,
        }
    }

    /// Closes the step: faults still open never completed. Returns the step's faults in order.
    pub fn finish(&mut self) -> Vec<ClassifiedFault> {
        self.open.clear();
        self.faults
            .drain(..)
            .map(|(fault, class)| ClassifiedFault {
                fault,
                class: class.unwrap_or(FaultClass::Error),
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

    fn classes(classifier: &mut Classifier) -> Vec<FaultClass> {
        classifier.finish().iter().map(|f| f.class).collect()
    }

    #[test]
    fn completions_class_their_own_threads_faults() {
        let mut classifier = Classifier::default();
        classifier.fault(fault(1, 0x1000));
        classifier.fault(fault(2, 0x2000));
        classifier.completion(done(2, 0x2000, CompletionClass::Major));
        classifier.completion(done(1, 0x1000, CompletionClass::Minor));
        assert_eq!(
            classes(&mut classifier),
            [FaultClass::Minor, FaultClass::Major]
        );
        assert_eq!(classifier.unmatched(), 0);
    }

    #[test]
    fn a_fault_without_completion_is_an_error() {
        let mut classifier = Classifier::default();
        classifier.fault(fault(1, 0x1000));
        classifier.fault(fault(1, 0x3000));
        classifier.completion(done(1, 0x3000, CompletionClass::Minor));
        classifier.fault(fault(1, 0x5000));
        assert_eq!(
            classes(&mut classifier),
            [FaultClass::Error, FaultClass::Minor, FaultClass::Error]
        );
    }

    #[test]
    fn a_completion_for_another_address_does_not_match() {
        let mut classifier = Classifier::default();
        classifier.fault(fault(1, 0x1000));
        classifier.completion(done(1, 0x9000, CompletionClass::Minor));
        assert_eq!(classifier.unmatched(), 1);
        assert_eq!(classes(&mut classifier), [FaultClass::Error]);
    }
}
