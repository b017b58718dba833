//! How a trace captured its stacks, on its start line, and what they were like, on its summary
//! line.

use schemars::JsonSchema;
use serde::Serialize;

use crate::{model::call_graph::CallGraph, trace::stacks::StackTotals};

/// How each fault's stack is captured: `fp` walks `depth` frames by frame pointer in the
/// kernel; `dwarf` copies `stack_bytes` of the user stack and unwinds it with the unwind
/// tables.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "CallGraph")]
pub struct CallGraphLine {
    mode: CallGraphMode,
    /// `fp`: frames walked per fault at most; null with `dwarf`.
    depth: Option<u32>,
    /// `dwarf`: bytes of user stack copied per fault; null with `fp`.
    stack_bytes: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum CallGraphMode {
    Fp,
    Dwarf,
}

impl From<CallGraph> for CallGraphLine {
    fn from(graph: CallGraph) -> Self {
        match graph {
            CallGraph::FramePointers { depth } => Self {
                mode: CallGraphMode::Fp,
                depth: Some(depth),
                stack_bytes: None,
            },
            CallGraph::Dwarf { stack_bytes } => Self {
                mode: CallGraphMode::Dwarf,
                depth: None,
                stack_bytes: Some(stack_bytes),
            },
        }
    }
}

/// The trace's stacks, counted: how many faults had one, and with `dwarf` how many a copy too
/// short truncated (raise `--stack-bytes` when they are many), how many met stack memory that
/// could not be read, and how many have a frame whose caller was found without unwind tables.
/// A frame-pointer walk knows none of these: they are null with `fp`.
#[derive(Serialize, JsonSchema)]
#[schemars(rename = "Stacks")]
pub struct StacksLine {
    call_graph: CallGraphLine,
    stacks: u64,
    truncated: Option<u64>,
    /// `truncated` in percent of `stacks`; null without stacks.
    truncated_percent: Option<f64>,
    unreadable: Option<u64>,
    without_unwind_info: Option<u64>,
}

impl From<(CallGraph, StackTotals)> for StacksLine {
    fn from((graph, totals): (CallGraph, StackTotals)) -> Self {
        let unwound = matches!(graph, CallGraph::Dwarf { .. });
        let known = |count: u64| unwound.then_some(count);
        Self {
            call_graph: graph.into(),
            stacks: totals.stacks,
            truncated: known(totals.truncated),
            truncated_percent: totals.truncated_percent().filter(|_| unwound),
            unreadable: known(totals.unreadable),
            without_unwind_info: known(totals.without_unwind_info),
        }
    }
}
