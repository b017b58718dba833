//! Where and why a fault's stack ends before its outermost frame: a walk that left code, a copy
//! too short or unreadable, or the unwinder's depth limit.

/// Where a stack ends before its outermost frame. For a frame-pointer walk (or an unwinder
/// gone astray), the first return address read that no executable mapping demo knows of
/// holds: most often not a return address but what a function built without frame pointers
/// left where its frame pointer would be (ASCII text, a pointer to data such as
/// `_PyRuntime+0x289b8`); neither it nor anything read past it is a frame. For an unwound
/// stack cut by its copy, the stack address the unwinder needed; at the depth limit, the
/// return address of the first frame left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StackEnd {
    pub address: u64,
    pub why: EndCause,
}

/// Why a stack ends at an address: what is known of the memory there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndCause {
    /// A mapping holds it, and that mapping is not executable: it is data, not code.
    NotExecutable,
    /// It is above every address a process can map (ASCII text read as a pointer): not code.
    NoUserAddress,
    /// No mapping demo knows of holds it: the process was gone, or its mappings could not be
    /// read, when the address was looked up, or nothing was mapped there. Whether it was code
    /// is not known.
    MappingUnknown,
    /// `--call-graph dwarf`: the next caller is found in stack memory past the copy's length
    /// (`--stack-bytes`), at this stack address. The stack is truncated: a longer copy shows
    /// more.
    Truncated,
    /// `--call-graph dwarf`: the next caller is found in stack memory the kernel side could not
    /// read, at this stack address.
    Unreadable,
    /// `--call-graph dwarf`: the stack goes on past the unwinder's limit of
    /// [`demo_common::MAX_STACK_DEPTH`] frames, as the kernel's frame-pointer walk stops.
    DepthLimit,
}

impl EndCause {
    /// The name of the cause in the JSON output and the summary.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotExecutable => "not_executable",
            Self::NoUserAddress => "no_user_address",
            Self::MappingUnknown => "mapping_unknown",
            Self::Truncated => "truncated",
            Self::Unreadable => "unreadable",
            Self::DepthLimit => "depth_limit",
        }
    }
}
