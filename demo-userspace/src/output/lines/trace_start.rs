//! The `trace` line, a trace's first: what is traced, from where faults come, and what demo's
//! probes do not reach.

use schemars::JsonSchema;
use serde::{Serialize, ser::SerializeStruct as _};

use super::stacks::CallGraphLine;
use crate::{kernel::executable::Unseen, kernel::probes::FaultSourceInUse, trace::TraceStart};

/// What the trace watches, said once at the start.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "TraceStart")]
pub struct TraceStartLine<'a> {
    /// The one process traced (the command, or `--pid`); null for a cgroup.
    pid: Option<u32>,
    /// `--cgroup`: the cgroup traced with those below it, its path as /proc/PID/cgroup shows
    /// it; null otherwise.
    cgroup: Option<&'a str>,
    command: Option<&'a str>,
    /// Where faults come from; in JSON, `source` and `fallback`.
    #[serde(flatten)]
    source: FaultSourceLine,
    /// The libc whose malloc/calloc/realloc/free are probed, if any.
    heap_probes: Option<&'a str>,
    follow: bool,
    /// What demo's probes do not reach in the target's program.
    unseen: Vec<UnseenLine>,
    /// How each fault's stack is captured (`--stacks`); null without stacks.
    call_graph: Option<CallGraphLine>,
}

impl<'a> From<&'a TraceStart> for TraceStartLine<'a> {
    fn from(start: &'a TraceStart) -> Self {
        Self {
            pid: start.pid,
            cgroup: start.cgroup.as_deref(),
            command: start.command.as_deref(),
            source: FaultSourceLine(start.source),
            heap_probes: start.heap_probes.as_deref(),
            follow: start.follow,
            unseen: start.unseen.iter().copied().map(UnseenLine::from).collect(),
            call_graph: start.call_graph.map(CallGraphLine::from),
        }
    }
}

/// The fault source in use, as the two fields every JSON start line has: `source` and
/// `fallback`.
struct FaultSourceLine(FaultSourceInUse);

impl Serialize for FaultSourceLine {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut fields = serializer.serialize_struct("FaultSourceInUse", 2)?;
        fields.serialize_field("source", self.0.name())?;
        fields.serialize_field("fallback", &self.0.is_fallback())?;
        fields.end()
    }
}

/// The schema of the two fields, for the start line's schema.
impl JsonSchema for FaultSourceLine {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FaultSourceInUse".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "properties": {
                "source": {
                    "description": "Where faults come from.",
                    "enum": ["tracepoint", "perf"]
                },
                "fallback": {
                    "description": "The perf event stands in for tracepoints this kernel lacks.",
                    "type": "boolean"
                }
            },
            "required": ["source", "fallback"]
        })
    }
}

/// A part of a program's behaviour that demo's probes do not reach.
#[derive(Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Unseen")]
enum UnseenLine {
    /// A static binary's malloc is its own copy, not libc.so's, so heap blocks are not found.
    StaticHeap,
    /// A 32-bit program's mmap2, munmap, brk, mremap and madvise are compat syscalls, which
    /// raise no `syscalls:` tracepoint: its memory syscalls and mmap regions are not seen.
    CompatSyscalls,
}

impl From<Unseen> for UnseenLine {
    fn from(unseen: Unseen) -> Self {
        match unseen {
            Unseen::StaticHeap => Self::StaticHeap,
            Unseen::CompatSyscalls => Self::CompatSyscalls,
        }
    }
}
