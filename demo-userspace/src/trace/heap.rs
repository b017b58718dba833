//! Pairs glibc heap-function entries with their returns, per thread, allowing nesting (realloc
//! of NULL calls malloc inside).

use std::collections::HashMap;

use demo_common::HeapFunction;

use super::regions::HeapCall;
use crate::model::events::HeapEvent;

#[derive(Debug, Default)]
pub struct HeapPairer {
    /// Per thread, the entries still waiting for their return, innermost last.
    open: HashMap<u32, Vec<HeapEvent>>,
}

impl HeapPairer {
    /// Takes one entry or return; returns the call once complete (free completes on entry).
    pub fn push(&mut self, event: HeapEvent) -> Option<HeapCall> {
        let call = |args: [u64; 2], ret| HeapCall {
            pid: event.pid,
            tid: event.tid,
            function: event.function,
            args,
            ret,
        };
        match (event.args, event.ret) {
            (Some(args), _) if event.function == HeapFunction::Free => Some(call(args, 0)),
            (Some(_), _) => {
                self.open.entry(event.tid).or_default().push(event);
                None
            }
            (None, Some(ret)) => {
                let open = self.open.get_mut(&event.tid)?;
                let position = open.iter().rposition(|e| e.function == event.function)?;
                let entry = open.remove(position);
                // Entries above it never returned (a longjmp out of malloc); forget them.
                open.truncate(position);
                Some(call(entry.args.unwrap_or_default(), ret))
            }
            (None, None) => None,
        }
    }

    /// True while thread `tid` is inside malloc, calloc or realloc.
    pub fn inside_call(&self, tid: u32) -> bool {
        self.open.get(&tid).is_some_and(|open| !open.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(function: HeapFunction, args: Option<[u64; 2]>, ret: Option<u64>) -> HeapEvent {
        HeapEvent {
            timestamp_ns: 0,
            pid: 1,
            tid: 1,
            function,
            args,
            ret,
        }
    }

    #[test]
    fn nested_calls_pair_innermost_first() {
        let mut pairer = HeapPairer::default();
        assert_eq!(
            pairer.push(event(HeapFunction::Realloc, Some([0, 64]), None)),
            None
        );
        assert_eq!(
            pairer.push(event(HeapFunction::Malloc, Some([64, 0]), None)),
            None
        );
        assert!(pairer.inside_call(1));
        let inner = pairer
            .push(event(HeapFunction::Malloc, None, Some(0x10)))
            .unwrap();
        assert_eq!(
            (inner.function, inner.args[0], inner.ret),
            (HeapFunction::Malloc, 64, 0x10)
        );
        let outer = pairer
            .push(event(HeapFunction::Realloc, None, Some(0x10)))
            .unwrap();
        assert_eq!(
            (outer.function, outer.args),
            (HeapFunction::Realloc, [0, 64])
        );
        assert!(!pairer.inside_call(1));
    }

    #[test]
    fn free_completes_at_once_and_stray_returns_are_ignored() {
        let mut pairer = HeapPairer::default();
        let free = pairer
            .push(event(HeapFunction::Free, Some([0x10, 0]), None))
            .unwrap();
        assert_eq!(free.args[0], 0x10);
        assert_eq!(
            pairer.push(event(HeapFunction::Malloc, None, Some(0x20))),
            None
        );
    }
}
