//! The command line: clap definitions of every command and option.

use clap::{Parser, Subcommand};

use crate::{
    report::Format,
    walk_plan::{Allocator, ScenarioName, WalkOptions},
};

/// The hidden subcommand that turns the binary into a workload child.
pub const WORKLOAD_SUBCOMMAND: &str = "__workload";

/// Watch demand paging from inside the kernel.
///
/// demo runs the classic allocation walks of an operating-systems course in a child process,
/// traces every page fault of that child with eBPF, and shows which array access faulted, on
/// which page, and what the kernel reports afterwards (pagemap and smaps).
///
/// With no command, demo runs the mmap, malloc and out-of-bounds walks in turn and compares mmap
/// with malloc.
///
/// Needs root (or CAP_BPF and CAP_PERFMON, plus CAP_SYS_ADMIN when tracefs must be mounted).
#[derive(Debug, Parser)]
#[command(
    name = "demo",
    version,
    after_help = "Examples:\n  sudo demo\n  sudo demo alloc mmap\n  sudo demo alloc mmap --format json"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a built-in allocation walk in a child process and trace its faults.
    ///
    /// `mmap` is the seed's alloc_mmap: `arr = mmap(NULL, 20000, ...)` as an int array, then
    /// writes to arr[1500], arr[1501], arr[0] and arr[3000], one step each. `malloc` is the
    /// seed's alloc: the same walk on `malloc(20000)`. `out-of-bounds` is alloc_out: the walk,
    /// then arr[5001] (past the array, inside its last page) and arr[5121] (past the mapping,
    /// which is made sure to be unmapped), which dies of SIGSEGV.
    ///
    /// Each step shows its faults (index, page, access, minor/major/error), the memory syscalls
    /// it made, the array's pages, and the pmap line of its VMA.
    #[command(
        after_help = "Examples:\n  sudo demo alloc mmap\n  sudo demo alloc malloc --format json | jq 'select(.kind==\"fault\")'\n  sudo demo alloc mmap --read --then-write\n  sudo demo alloc out-of-bounds --via malloc\n  sudo demo alloc mmap --bytes 65536 --touch 0,4096,8192"
    )]
    Alloc {
        /// Which walk to run.
        #[arg(value_enum)]
        scenario: ScenarioName,

        #[command(flatten)]
        walk: WalkArgs,

        /// Wait for Enter before each step, as the seed's getchar() does.
        #[arg(long)]
        interactive: bool,
    },

    /// Serve workload commands on stdin (used internally by `demo alloc`).
    #[command(name = WORKLOAD_SUBCOMMAND, hide = true)]
    Workload,
}

/// Options that shape a walk.
#[derive(Debug, Default, clap::Args)]
pub struct WalkArgs {
    /// Size of the array in bytes (default 20000, as in the seed).
    #[arg(long, value_name = "N")]
    pub bytes: Option<u64>,

    /// Indices to touch, in order (default 1500,1501,0,3000; out-of-bounds adds 5001,5121).
    #[arg(
        long,
        value_name = "I,J,...",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub touch: Option<Vec<i64>>,

    /// Read the elements instead of writing them.
    #[arg(long)]
    pub read: bool,

    /// After reading (--read), write the same indices: each write takes a copy-on-write fault.
    #[arg(long, requires = "read")]
    pub then_write: bool,

    /// out-of-bounds only: where the array comes from.
    #[arg(long, value_enum)]
    pub via: Option<Allocator>,

    /// Touch through read(2)/write(2), so the faults happen in kernel mode.
    #[arg(long)]
    pub via_syscall: bool,
}

impl WalkArgs {
    pub fn options(&self) -> WalkOptions {
        WalkOptions {
            bytes: self.bytes,
            touch: self.touch.clone(),
            read: self.read,
            then_write: self.then_write,
            via: self.via,
            via_syscall: self.via_syscall,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn alloc_mmap_parses_with_json_after_the_scenario() {
        let cli = Cli::try_parse_from(["demo", "alloc", "mmap", "--format", "json"]).unwrap();
        assert_eq!(cli.format, Format::Json);
        assert!(matches!(
            cli.command,
            Some(Command::Alloc {
                scenario: ScenarioName::Mmap,
                ..
            })
        ));
    }

    #[test]
    fn walk_options_parse() {
        let cli = Cli::try_parse_from([
            "demo",
            "alloc",
            "out-of-bounds",
            "--touch",
            "0,-4,5121",
            "--via",
            "malloc",
            "--read",
            "--then-write",
            "--bytes",
            "4096",
        ])
        .unwrap();
        let Some(Command::Alloc { walk, .. }) = cli.command else {
            panic!("not alloc");
        };
        let options = walk.options();
        assert_eq!(options.touch, Some(vec![0, -4, 5121]));
        assert_eq!(options.via, Some(Allocator::Malloc));
        assert_eq!(options.bytes, Some(4096));
        assert!(options.read && options.then_write);
    }

    #[test]
    fn then_write_requires_read() {
        let error = Cli::try_parse_from(["demo", "alloc", "mmap", "--then-write"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn an_unknown_scenario_is_a_usage_error() {
        let error = Cli::try_parse_from(["demo", "alloc", "sbrk"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }
}
