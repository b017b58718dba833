//! The command line: clap definitions of every command and option.

use clap::{Parser, Subcommand};

use crate::{report::Format, scenario::ScenarioName};

/// The hidden subcommand that turns the binary into a workload child.
pub const WORKLOAD_SUBCOMMAND: &str = "__workload";

/// Watch demand paging from inside the kernel.
///
/// demo runs the classic allocation walks of an operating-systems course in a child process,
/// traces every page fault of that child with eBPF, and shows which array access faulted, on
/// which page, and what the kernel reports afterwards (pagemap and smaps).
///
/// With no command, demo runs every built-in scenario in turn.
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
    /// writes to arr[1500], arr[1501], arr[0] and arr[3000], one step each. Each step shows its
    /// faults (index, page, access), the array's pages, and the pmap line of its VMA.
    #[command(
        after_help = "Examples:\n  sudo demo alloc mmap\n  sudo demo alloc mmap --format json | jq 'select(.kind==\"fault\")'"
    )]
    Alloc {
        /// Which walk to run.
        #[arg(value_enum)]
        scenario: ScenarioName,
    },

    /// Serve workload commands on stdin (used internally by `demo alloc`).
    #[command(name = WORKLOAD_SUBCOMMAND, hide = true)]
    Workload,
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
                scenario: ScenarioName::Mmap
            })
        ));
    }

    #[test]
    fn an_unknown_scenario_is_a_usage_error() {
        let error = Cli::try_parse_from(["demo", "alloc", "sbrk"]).unwrap_err();
        assert_eq!(error.exit_code(), 2);
    }
}
