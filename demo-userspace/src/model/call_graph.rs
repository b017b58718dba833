//! How `--stacks` finds a fault's callers, as perf's `--call-graph fp|dwarf` names the two ways.

/// User-stack bytes `--call-graph dwarf` copies per fault unless `--stack-bytes` says, as perf's
/// `--call-graph dwarf` does.
pub const DEFAULT_STACK_BYTES: u32 = 8192;

/// Frames `--call-graph fp` walks per fault unless `--stack-depth` says.
pub const DEFAULT_STACK_DEPTH: u32 = 32;

/// The way a fault's user stack is captured and its callers found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallGraph {
    /// The kernel follows frame pointers (`bpf_get_stack`), up to `depth` frames. Cheap, but a
    /// function built without frame pointers hides its caller.
    FramePointers { depth: u32 },
    /// The kernel copies the user registers and `stack_bytes` of the user stack; the loader
    /// unwinds them with each module's unwind tables, as `perf --call-graph dwarf` does.
    Dwarf { stack_bytes: u32 },
}

impl CallGraph {
    /// The name `--call-graph` takes and the outputs show: `fp` or `dwarf`.
    pub fn name(self) -> &'static str {
        match self {
            Self::FramePointers { .. } => "fp",
            Self::Dwarf { .. } => "dwarf",
        }
    }

    /// Frames the kernel walks per fault: 0 unless frame pointers are followed.
    pub fn stack_depth(self) -> u32 {
        match self {
            Self::FramePointers { depth } => depth,
            Self::Dwarf { .. } => 0,
        }
    }

    /// User-stack bytes the kernel copies per fault: 0 unless the loader unwinds.
    pub fn stack_bytes(self) -> u32 {
        match self {
            Self::FramePointers { .. } => 0,
            Self::Dwarf { stack_bytes } => stack_bytes,
        }
    }
}
