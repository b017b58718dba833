//! What demo's own tracing makes a traced process do, told apart from the program's own work:
//! the command's faults in demo's code between its fork and its exec, faults on the page the
//! kernel maps for uprobes, and the SIGCHLD each ptrace stop of the command sends demo.

use crate::model::events::SignalEvent;

/// The name the kernel gives the page it maps into a process for its uprobes (the "execute out
/// of line" area: the return trampoline of uretprobes, and slots where probed instructions are
/// single-stepped).
pub const UPROBES_MAPPING: &str = "[uprobes]";

/// Why an event is demo's rather than the program's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoCause {
    /// A fault of the command demo forked, before its exec: demo's own code (its fork, its
    /// `tie_to_parent`, its wait on the pipe that holds the command back).
    BeforeExec,
    /// A fault on the page the kernel maps for uprobes, which demo's heap probes are: the
    /// first return through the uretprobe trampoline there faults it in.
    UprobesPage,
    /// The SIGCHLD with CLD_TRAPPED that a ptrace stop of the command sends demo, its tracer
    /// (demo stops it at its exit until its records are read).
    PtraceStop,
}

/// Events of [`DemoCause`]s, counted and left out of the trace's lines, totals and function
/// tables; the summary names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemoOwn {
    /// Faults of the command before its exec, all classes.
    pub faults_before_exec: u64,
    /// Faults on the `[uprobes]` page.
    pub uprobes_page_faults: u64,
    /// SIGCHLDs of the command's ptrace stops.
    pub ptrace_stop_signals: u64,
}

impl DemoOwn {
    pub fn count(&mut self, cause: DemoCause) {
        match cause {
            DemoCause::BeforeExec => self.faults_before_exec += 1,
            DemoCause::UprobesPage => self.uprobes_page_faults += 1,
            DemoCause::PtraceStop => self.ptrace_stop_signals += 1,
        }
    }

    /// Every event counted.
    pub fn total(&self) -> u64 {
        self.faults_before_exec + self.uprobes_page_faults + self.ptrace_stop_signals
    }
}

/// Why a fault that hit `mapping` is demo's, if it is: `before_exec` is true while its process
/// is the command demo forked and has not exec'd yet.
pub fn fault_cause(mapping: &str, before_exec: bool) -> Option<DemoCause> {
    if before_exec {
        Some(DemoCause::BeforeExec)
    } else if mapping == UPROBES_MAPPING {
        Some(DemoCause::UprobesPage)
    } else {
        None
    }
}

/// Whether `signal` is a ptrace stop's SIGCHLD to demo: a CLD_TRAPPED the command demo
/// ptraces (`ptraced`) generated, which goes to its tracer alone.
pub fn is_ptrace_stop(signal: &SignalEvent, ptraced: Option<u32>) -> bool {
    signal.signal == libc::SIGCHLD
        && signal.code == libc::CLD_TRAPPED
        && ptraced == Some(signal.pid)
}
