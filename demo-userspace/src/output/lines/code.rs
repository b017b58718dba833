//! The code a fault ran, as JSON writes it: a `code` object, its inlined calls, and the frames
//! of a `--stacks` stack, each borrowed from the symbolizer's answer.

use schemars::JsonSchema;
use serde::{Serialize, Serializer};

use crate::kernel::symbols::{Code, EndCause, InlinedCall, StackEnd, StackFrame};

/// The code at one address: `symbol+offset` in `module`, with the source line when there is
/// debug information.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Code")]
pub(super) struct CodeLine<'a> {
    /// The executable or library as a path, a memory mapping's name such as `[vdso]`, or
    /// `[kernel]`; null when no mapping holds the address.
    module: Option<&'a str>,
    /// The function; null when the module has no symbol for the address (stripped).
    symbol: Option<&'a str>,
    /// Bytes from the function's start; from the module's start (a file offset) when there is
    /// no symbol; the address itself when there is no module either.
    offset: u64,
    /// The source file's name, when the module has line information.
    file: Option<&'a str>,
    /// The line in `file`: where the address is, or, when the compiler inlined a call there,
    /// the line of that call (the first of `inlined`).
    line: Option<u32>,
    /// Calls inlined at the address, outermost first; the last one holds the address itself.
    /// Left out when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    inlined: Vec<InlinedCallLine<'a>>,
}

impl<'a> From<&'a Code> for CodeLine<'a> {
    fn from(code: &'a Code) -> Self {
        Self {
            module: code.module.as_deref(),
            symbol: code.symbol.as_deref(),
            offset: code.offset,
            file: code.file.as_deref(),
            line: code.line,
            inlined: code.inlined.iter().map(InlinedCallLine::from).collect(),
        }
    }
}

/// One function the compiler inlined where the address is.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "InlinedCall")]
struct InlinedCallLine<'a> {
    symbol: &'a str,
    /// Where in it the address, or the next inlined call, is.
    file: Option<&'a str>,
    line: Option<u32>,
}

impl<'a> From<&'a InlinedCall> for InlinedCallLine<'a> {
    fn from(call: &'a InlinedCall) -> Self {
        Self {
            symbol: &call.symbol,
            file: call.file.as_deref(),
            line: call.line,
        }
    }
}

/// One frame of a user stack: its address and the code there.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "StackFrame")]
pub(super) struct StackFrameLine<'a> {
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    address: u64,
    #[serde(flatten)]
    code: CodeLine<'a>,
    /// `--call-graph dwarf`: the frame's module has no unwind tables, so its caller (the next
    /// frame) was found by frame pointer and may be wrong. Left out when it had them.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    no_unwind_info: bool,
}

impl<'a> From<&'a StackFrame> for StackFrameLine<'a> {
    fn from(frame: &'a StackFrame) -> Self {
        Self {
            address: frame.address,
            code: CodeLine::from(&*frame.code),
            no_unwind_info: frame.no_unwind_info,
        }
    }
}

/// Where and why a stack was cut short.
#[derive(Clone, Copy, Serialize, JsonSchema)]
#[schemars(rename = "StackEnd")]
pub(super) struct StackEndLine {
    /// The first return address read outside code; for a stack the copy cut, the stack address
    /// the unwinder needed and did not have; at the depth limit, the first frame left out.
    #[serde(serialize_with = "crate::model::hex::hex")]
    #[schemars(with = "crate::model::hex::Hex")]
    pub(super) address: u64,
    pub(super) why: StackEndWhy,
}

impl From<StackEnd> for StackEndLine {
    fn from(end: StackEnd) -> Self {
        Self {
            address: end.address,
            why: StackEndWhy(end.why),
        }
    }
}

/// Why a stack ends: `not_executable`, `no_user_address` or `mapping_unknown` (a frame-pointer
/// walk left code), `truncated` (the next caller lies past the stack copied: raise
/// `--stack-bytes`), `unreadable` (in stack memory that could not be read) or `depth_limit`
/// (deeper than the unwinder's 127 frames).
#[derive(Clone, Copy)]
pub(super) struct StackEndWhy(pub(super) EndCause);

impl Serialize for StackEndWhy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl JsonSchema for StackEndWhy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StackEndWhy".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": ["not_executable", "no_user_address", "mapping_unknown", "truncated", "unreadable", "depth_limit"]
        })
    }
}

/// Writes a fault's code as a [`CodeLine`]. The fault line keeps the shared code itself, which
/// its hand-written bytes cache by address, and builds the line only when serde writes it.
pub(super) fn code<S: Serializer>(code: &Code, serializer: S) -> Result<S::Ok, S::Error> {
    CodeLine::from(code).serialize(serializer)
}

/// Writes a fault's stack, when it has one, frame by frame as [`StackFrameLine`]s.
pub(super) fn stack<S: Serializer>(
    stack: &Option<&[StackFrame]>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match stack {
        Some(frames) => serializer.collect_seq(frames.iter().map(StackFrameLine::from)),
        None => serializer.serialize_none(),
    }
}
