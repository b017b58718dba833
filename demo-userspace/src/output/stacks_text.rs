//! What the text trace says at its start of how stacks are captured.

use crate::model::call_graph::CallGraph;

/// The start's line on how each fault's stack is captured.
pub fn call_graph_says(graph: CallGraph) -> String {
    match graph {
        CallGraph::FramePointers { depth } => format!(
            "stacks by frame pointers (--call-graph fp), up to {depth} frames: a function built \
             without them hides its caller; --call-graph dwarf unwinds with the unwind tables"
        ),
        CallGraph::Dwarf { stack_bytes } => format!(
            "stacks unwound with each module's unwind tables (--call-graph dwarf) from {stack_bytes} \
             bytes of user stack copied at each fault (--stack-bytes)"
        ),
    }
}
