//! The `fault` line written straight into a byte buffer. A trace writes one per fault, and
//! serde_json's escaping of every key and value was a fifth of the loader's time per event;
//! this writes the same bytes (a property test holds it to serde_json's output) with the keys
//! as constants and only names from outside escaped.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::{fault_time::FaultTimeLine, walk::FaultLine};
use crate::kernel::symbols::Code;

/// The `code` objects already written, by the shared code they stand for: most faults of a
/// trace come from a few instructions, whose names need escaping only once.
#[derive(Debug, Default)]
pub struct CodeJson {
    written: FxHashMap<usize, (Arc<Code>, Vec<u8>)>,
}

/// How many `code` objects [`CodeJson`] keeps before it starts again.
const KEPT_CODE_JSON: usize = 4096;

impl CodeJson {
    fn write(&mut self, out: &mut Vec<u8>, code: &Arc<Code>) {
        let key = Arc::as_ptr(code) as usize;
        if let Some((_, bytes)) = self.written.get(&key) {
            out.extend_from_slice(bytes);
            return;
        }
        if self.written.len() >= KEPT_CODE_JSON {
            self.written.clear();
        }
        let mut bytes = Vec::new();
        code_fields(&mut bytes, code);
        out.extend_from_slice(&bytes);
        // The entry holds the code, so its address names it for as long as the entry lives.
        self.written.insert(key, (Arc::clone(code), bytes));
    }
}

impl FaultLine<'_> {
    /// Appends the line's JSON object, byte for byte what serde_json makes of it.
    pub fn write_json(&self, out: &mut Vec<u8>, codes: &mut CodeJson) {
        out.extend_from_slice(b"{\"kind\":\"fault\",\"scenario\":");
        string(out, self.scenario);
        out.extend_from_slice(b",\"step\":");
        option(out, self.step, integer);
        out.extend_from_slice(b",\"pid\":");
        integer(out, self.pid);
        out.extend_from_slice(b",\"tid\":");
        integer(out, self.tid);
        out.extend_from_slice(b",\"comm\":");
        option(out, self.comm, string);
        out.extend_from_slice(b",\"timestamp_ns\":");
        integer(out, self.timestamp_ns);
        out.extend_from_slice(b",\"address\":");
        hex(out, self.address);
        out.extend_from_slice(b",\"ip\":");
        hex(out, self.ip);
        out.extend_from_slice(b",\"error_code\":");
        option(out, self.error_code, integer);
        out.extend_from_slice(b",\"access\":\"");
        out.extend_from_slice(self.access.as_str().as_bytes());
        out.extend_from_slice(b"\",\"present\":");
        option(out, self.present, boolean);
        out.extend_from_slice(b",\"mode\":\"");
        out.extend_from_slice(self.mode.as_str().as_bytes());
        out.extend_from_slice(b"\",\"class\":\"");
        out.extend_from_slice(self.class.as_str().as_bytes());
        out.extend_from_slice(b"\",\"duration_ns\":");
        option(out, self.duration_ns, integer);
        out.extend_from_slice(b",\"time\":");
        option(out, self.time, time);
        out.extend_from_slice(b",\"region\":");
        option(out, self.region, string);
        out.extend_from_slice(b",\"offset\":");
        option(out, self.offset, integer);
        out.extend_from_slice(b",\"index\":");
        option(out, self.index, integer);
        out.extend_from_slice(b",\"page\":");
        option(out, self.page, integer);
        out.extend_from_slice(b",\"in_bounds\":");
        option(out, self.in_bounds, boolean);
        out.extend_from_slice(b",\"mapping\":");
        string(out, self.mapping);
        if let Some(offset) = self.mapping_offset {
            out.extend_from_slice(b",\"mapping_offset\":");
            hex(out, offset);
        }
        out.extend_from_slice(b",\"code\":{");
        codes.write(out, self.code);
        out.push(b'}');
        if let Some(stack) = self.stack {
            out.extend_from_slice(b",\"stack\":[");
            for (depth, frame) in stack.iter().enumerate() {
                if depth > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"address\":");
                hex(out, frame.address);
                out.push(b',');
                codes.write(out, &frame.code);
                if frame.no_unwind_info {
                    out.extend_from_slice(b",\"no_unwind_info\":true");
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        if let Some(end) = self.stack_end {
            out.extend_from_slice(b",\"stack_end\":{\"address\":");
            hex(out, end.address);
            out.extend_from_slice(b",\"why\":\"");
            out.extend_from_slice(end.why.0.as_str().as_bytes());
            out.extend_from_slice(b"\"}");
        }
        out.push(b'}');
    }
}

/// The members of a [`Code`] object, without its braces (a stack frame adds its address).
fn code_fields(out: &mut Vec<u8>, code: &Code) {
    out.extend_from_slice(b"\"module\":");
    option(out, code.module.as_deref(), string);
    out.extend_from_slice(b",\"symbol\":");
    option(out, code.symbol.as_deref(), string);
    out.extend_from_slice(b",\"offset\":");
    integer(out, code.offset);
    out.extend_from_slice(b",\"file\":");
    option(out, code.file.as_deref(), string);
    out.extend_from_slice(b",\"line\":");
    option(out, code.line, integer);
    if code.inlined.is_empty() {
        return;
    }
    out.extend_from_slice(b",\"inlined\":[");
    for (n, call) in code.inlined.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"symbol\":");
        string(out, &call.symbol);
        out.extend_from_slice(b",\"file\":");
        option(out, call.file.as_deref(), string);
        out.extend_from_slice(b",\"line\":");
        option(out, call.line, integer);
        out.push(b'}');
    }
    out.push(b']');
}

/// Where a fault's time went, as its `time` object.
fn time(out: &mut Vec<u8>, time: FaultTimeLine) {
    out.extend_from_slice(b"{\"on_cpu_ns\":");
    integer(out, time.on_cpu_ns);
    out.extend_from_slice(b",\"off_cpu_ns\":");
    integer(out, time.off_cpu_ns);
    out.extend_from_slice(b",\"reclaim_ns\":");
    integer(out, time.reclaim_ns);
    out.extend_from_slice(b",\"compaction_ns\":");
    integer(out, time.compaction_ns);
    out.push(b'}');
}

fn option<T>(out: &mut Vec<u8>, value: Option<T>, write: fn(&mut Vec<u8>, T)) {
    match value {
        Some(value) => write(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

fn integer(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

fn boolean(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

fn hex(out: &mut Vec<u8>, value: u64) {
    let mut buffer = [0; 18];
    out.push(b'"');
    out.extend_from_slice(crate::model::hex::hex_digits(value, &mut buffer).as_bytes());
    out.push(b'"');
}

/// A name from outside (a path, a region name): escaped as serde_json escapes it.
fn string(out: &mut Vec<u8>, value: &str) {
    // Writing to a Vec cannot fail, and a str always serializes.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use demo_common::FaultSource;
    use proptest::prelude::*;

    use super::*;
    use crate::{
        kernel::symbols::{EndCause, InlinedCall, Stack, StackEnd, StackFrame},
        model::access::ErrorCode,
        model::classify::{ClassifiedFault, FaultClass},
        model::events::{Fault, FaultTiming},
        model::region::Location,
    };

    fn name() -> impl Strategy<Value = String> {
        "[/a-z._+\"\\\\\u{1}é]{0,12}"
    }

    fn code() -> impl Strategy<Value = Code> {
        let call = (name(), proptest::option::of(name()), any::<Option<u32>>())
            .prop_map(|(symbol, file, line)| InlinedCall { symbol, file, line });
        (
            proptest::option::of(name()),
            proptest::option::of(name()),
            any::<u64>(),
            proptest::option::of(name()),
            any::<Option<u32>>(),
            proptest::collection::vec(call, 0..3),
        )
            .prop_map(|(module, symbol, offset, file, line, inlined)| Code {
                module,
                symbol,
                offset,
                file,
                line,
                inlined,
                module_offset: None,
            })
    }

    fn class(n: u8) -> FaultClass {
        [FaultClass::Minor, FaultClass::Major, FaultClass::Error][n as usize % 3]
    }

    proptest! {
        #[test]
        fn the_fault_line_is_what_serde_json_writes(
            pid: u32, tid: u32, timestamp_ns: u64, address: u64, ip: u64,
            error_code in prop_oneof![0u64..128, Just(u64::MAX)],
            class_tag: u8, step: Option<u32>,
            location: Option<(i64, i64, u64, bool)>,
            region in "[a-z#0-9\"\\\\\u{1}é]{0,12}",
            mapping in "[/a-z._\\[\\]\" \\\\\u{7f}]{0,24}",
            mapping_offset: Option<u64>,
            perf: bool,
            timing: Option<(u64, Option<u64>, u64, u64)>,
            code in code(),
            stack in proptest::option::of(
                proptest::collection::vec((any::<u64>(), code(), any::<bool>()), 0..3)
            ),
            end: Option<(u64, u8)>,
            comm in proptest::option::of("[a-z\"\\\u{1b}é /]{0,16}"),
        ) {
            let fault = ClassifiedFault {
                fault: Fault {
                    timestamp_ns,
                    pid,
                    tid,
                    address,
                    ip,
                    error_code: ErrorCode(error_code),
                    source: if perf { FaultSource::Perf } else { FaultSource::User },
                },
                class: class(class_tag),
                timing: timing.map(|(duration_ns, off_cpu_ns, reclaim_ns, compaction_ns)| {
                    FaultTiming { duration_ns, off_cpu_ns, reclaim_ns, compaction_ns }
                }),
            };
            let hit = location.map(|(offset, index, page, in_bounds)| {
                (region.as_str(), Location { offset, index, page, in_bounds })
            });
            let causes = [
                EndCause::NotExecutable,
                EndCause::NoUserAddress,
                EndCause::MappingUnknown,
                EndCause::Truncated,
                EndCause::Unreadable,
            ];
            let stack = stack.map(|frames| Stack {
                frames: frames
                    .into_iter()
                    .map(|(address, code, no_unwind_info)| StackFrame {
                        address,
                        code: Arc::new(code),
                        no_unwind_info,
                    })
                    .collect(),
                end: end.map(|(address, cause)| StackEnd {
                    address,
                    why: causes[usize::from(cause) % causes.len()],
                }),
            });
            let code = Arc::new(code);
            let line = FaultLine::new(
                "trace",
                step,
                (&fault, &code, stack.as_ref()),
                hit,
                &mapping,
                mapping_offset,
            )
            .with_comm(comm.as_deref());
            // Twice through one cache: the second line reuses the first one's code object.
            let mut codes = CodeJson::default();
            let (mut first, mut second) = (Vec::new(), Vec::new());
            line.write_json(&mut first, &mut codes);
            line.write_json(&mut second, &mut codes);
            prop_assert_eq!(&first, &second);
            prop_assert_eq!(
                String::from_utf8(first).unwrap(),
                serde_json::to_string(&super::super::TraceLine::Fault(line)).unwrap()
            );
        }
    }
}
