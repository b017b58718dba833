//! The command line: clap definitions of every command and option, and (in `invocation`) what
//! they ask the library to run.

mod invocation;

use std::ffi::OsString;

use clap::{ArgGroup, CommandFactory as _, Parser, Subcommand, ValueEnum};

use demo::{
    kernel::probes::SourceChoice,
    output::{Format, folded::Weight},
    top::{GroupBy, SortKey},
    walk::{
        lessons,
        plan::{Allocator, ScenarioName, WalkOptions},
    },
};

pub use self::invocation::Request;

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
    #[arg(long, value_enum, default_value_t = FormatArg::Text, global = true)]
    pub format: FormatArg,

    /// Write the report to this file instead of stdout. A JSON or folded trace of a command
    /// demo starts (`trace -- CMD`) needs it, since the command's own output would mix into
    /// stdout. Started through sudo, the file belongs to the user who ran sudo.
    #[arg(long, short, value_name = "FILE", global = true)]
    pub output: Option<std::path::PathBuf>,

    /// Where faults come from: the exceptions tracepoints (x86-64), or the PAGE_FAULTS perf
    /// event, which every architecture has. `auto` falls back to perf when the tracepoints are
    /// missing, and says so.
    #[arg(long, value_enum, default_value_t = SourceArg::Auto, global = true)]
    pub source: SourceArg,

    /// A full-screen live view instead of the report (alloc, trace and top): the pages filling
    /// in, the steps, the events, and the page under the cursor. `?` lists the keys. A command
    /// `trace` starts gets a terminal pane: Enter goes to it, and F2 gives it every key.
    #[arg(long, global = true)]
    pub tui: bool,

    /// Run workloads and traced commands as root even when demo was started through sudo
    /// (by default they run as the user who ran sudo: SUDO_UID and SUDO_GID).
    #[arg(long, global = true)]
    pub as_root: bool,

    /// Size of the event ring buffer in KiB (a power of two, at least 4): 16384, or 32768 when
    /// faults are timed, which sends a second record per fault. Records that find it full are
    /// counted and reported as lost; a tiny one lets the tests prove that.
    #[arg(long, value_name = "KIB", global = true, value_parser = ring_kib)]
    pub ring_buffer_kib: Option<u32>,

    /// Capture each fault's user stack (alloc and trace), innermost frame first, named function
    /// by function; how, --call-graph says (dwarf unless it says fp).
    #[arg(long, global = true)]
    pub stacks: bool,

    /// How --stacks finds the callers, as perf's option of the name: dwarf copies the user
    /// registers and the top of the user stack at each fault and unwinds them with each
    /// module's unwind tables (.eh_frame, .debug_frame), so code built without frame pointers
    /// (glibc, Debian's packages, most -O2 builds) still shows its callers; fp follows frame
    /// pointers in the kernel, cheaper, but such code hides its callers. Implies --stacks.
    #[arg(long, value_name = "MODE", global = true, value_enum)]
    pub call_graph: Option<CallGraphArg>,

    /// How many bytes of user stack --call-graph dwarf copies per fault, 8 to 65536 (rounded
    /// up to a multiple of 8); 8192 by default, as perf. A stack deeper than the copy is
    /// marked truncated. Implies --stacks --call-graph dwarf.
    #[arg(long, value_name = "BYTES", global = true, value_parser = stack_bytes)]
    pub stack_bytes: Option<u32>,

    /// How many frames --call-graph fp walks per fault, 1 to 127 (32 by default). Implies
    /// --stacks --call-graph fp.
    #[arg(long, value_name = "FRAMES", global = true,
          value_parser = clap::value_parser!(u32).range(1..=demo_common::MAX_STACK_DEPTH as i64))]
    pub stack_depth: Option<u32>,

    /// Tracepoint category of the fault tracepoints; tests use it to simulate a kernel
    /// without them.
    #[arg(long, global = true, hide = true, default_value = "exceptions")]
    pub debug_fault_category: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a built-in allocation walk in a child process and trace its faults.
    ///
    /// `mmap` is the seed's alloc_mmap: `arr = mmap(NULL, 20000, ...)` as an int array, then
    /// writes to arr[1500], arr[1501], arr[0] and arr[3000], one step each. `malloc` is the
    /// seed's alloc: the same walk on `malloc(20000)`. `out-of-bounds` is alloc_out: the walk,
    /// then arr[5001] (past the array, inside its last page) and arr[5121] (past the mapping,
    /// which is made sure to be unmapped), which dies of SIGSEGV. The other walks are the
    /// course's other lessons (copy on write after fork, file mappings, mprotect, the stack,
    /// huge pages, MADV_DONTNEED, a large malloc), each with fixed steps; `all` runs every walk.
    ///
    /// Each step shows its faults (index, page, access, minor/major/error), the memory syscalls
    /// it made, the array's pages, and the pmap line of its VMA; a lesson's step also says what
    /// the kernel's facts show (pagemap, kpageflags, smaps, the page cache).
    #[command(
        after_help = "Examples:\n  sudo demo alloc mmap\n  sudo demo alloc malloc --format json | jq 'select(.kind==\"fault\")'\n  sudo demo alloc mmap --read --then-write\n  sudo demo alloc out-of-bounds --via malloc\n  sudo demo alloc mmap --bytes 65536 --touch 0,4096,8192\n  demo alloc --list\n  sudo demo alloc fork-cow\n  sudo demo alloc all --format json"
    )]
    Alloc {
        /// Which walk to run (`all` runs every one; --list says what each teaches).
        #[arg(value_enum, required_unless_present = "list")]
        scenario: Option<ScenarioArg>,

        /// Print every walk with one line on what it teaches, and exit.
        #[arg(long, conflicts_with = "scenario")]
        list: bool,

        #[command(flatten)]
        walk: WalkArgs,

        /// Wait for Enter before each step, as the seed's getchar() does.
        #[arg(long)]
        interactive: bool,
    },

    /// Trace any process: a command demo starts, a running one, or every process of a cgroup.
    ///
    /// Every fault of the target is shown as it happens: class (minor, major, error), access,
    /// mode, address, the mapping and offset it hit (like perf trace's dso@offset), and the
    /// region, index and page when it hit one. Regions are found by themselves: each anonymous
    /// mmap, and each heap block of at least --min-block bytes (from uprobes on malloc, calloc,
    /// realloc and free in the target's libc), named by how it was made (mmap#3, malloc#2).
    /// The trace ends when the target exits, on Ctrl-C, or after --duration.
    #[command(
        after_help = "Examples:\n  sudo demo trace --elem-size 4 -- ./alloc_mmap < steps.txt\n  sudo demo trace --pid 1234 --follow --duration 10\n  sudo demo trace --cgroup /system.slice/nginx.service --duration 10\n  sudo demo trace --region 0x7f0000000000:20000 --elem-size 4 --pid 1234\n  sudo demo trace --format json -o trace.json -- ./prog && jq 'select(.kind==\"fault\" and .region)' trace.json",
        group(ArgGroup::new("target").required(true).args(["pid", "cgroup", "command"]))
    )]
    Trace(TraceArgs),

    /// Which processes fault most, system-wide, at almost no cost.
    ///
    /// Faults are counted in the kernel per process and CPU (no event per fault), split into
    /// read, write and exec, user and kernel mode (from the exceptions tracepoints); minor and
    /// major are the kernel's own counters of each process (/proc, or kept in the kernel when it
    /// exits), since demo top started. Every --interval the top -n processes are shown. A
    /// process that exits is shown in the interval it ran in, below the living, named by the
    /// command the kernel captured, and then leaves the table (unless --keep-exited). --pid
    /// shows one process; --group sums the processes of each command or cgroup into one row.
    /// With --pid PID --pages, the faults of that process are also counted per page, and its
    /// hottest page ranges and mappings are shown.
    #[command(
        after_help = "Examples:\n  sudo demo top\n  sudo demo top --duration 5 --format json\n  sudo demo top --sort major -n 5\n  sudo demo top --pid 1234\n  sudo demo top --pid 1234 --pages\n  sudo demo top --group cgroup\n  sudo demo top --cgroup /system.slice/nginx.service\n  sudo demo top --listen 127.0.0.1:9464 --quiet"
    )]
    Top(TopArgs),

    /// Print a shell's completion script for demo (bash, zsh, fish, elvish or powershell).
    #[command(
        after_help = "Examples:\n  demo completions bash > /usr/share/bash-completion/completions/demo\n  demo completions zsh > ~/.zfunc/_demo"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print demo's man page (roff), generated from these definitions, or with a command's
    /// name, that command's page (demo-alloc(1), …).
    #[command(hide = true, name = "__man")]
    Man {
        /// The command whose page to print.
        command: Option<String>,
    },
}

/// Writes `shell`'s completion script for the whole command line to `out`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "demo", out);
}

/// A man page that `demo __man` was asked for and does not have.
#[derive(Debug, thiserror::Error)]
pub enum ManError {
    #[error("demo has no command `{0}` to write a man page for")]
    NoSuchCommand(String),
    #[error("write the man page: {0}")]
    Write(#[from] std::io::Error),
}

/// Writes the man page demo(1), or with `command`, demo-COMMAND(1), to `out`.
pub fn write_man(command: Option<&str>, out: &mut dyn std::io::Write) -> Result<(), ManError> {
    Ok(clap_mangen::Man::new(man_page(command)?).render(out)?)
}

/// The definitions a man page is made from: demo's, or a command's with the global options it
/// accepts copied in. The command is built first because clap copies the global options into
/// each command only then, and clap_mangen renders just what it is given: unbuilt, a command's
/// page would leave out --format, -o, --stacks, --tui and --source.
fn man_page(command: Option<&str>) -> Result<clap::Command, ManError> {
    let mut top = Cli::command();
    top.build();
    Ok(match command {
        None => top,
        Some(name) => {
            let sub = top
                .find_subcommand(name)
                .filter(|sub| !sub.is_hide_set())
                .ok_or_else(|| ManError::NoSuchCommand(name.to_owned()))?;
            sub.clone()
                .display_name(format!("demo-{name}"))
                .bin_name(format!("demo {name}"))
        }
    })
}

/// The options of `demo top`.
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECS", default_value_t = 1.0, value_parser = positive_seconds)]
    pub interval: f64,

    /// How many processes to show.
    #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub count: u64,

    /// What to sort by.
    #[arg(long, value_enum, default_value_t = SortArg::Rate)]
    pub sort: SortArg,

    /// Stop after this many seconds (one line per interval until then).
    #[arg(long, value_name = "SECS", value_parser = positive_seconds)]
    pub duration: Option<f64>,

    /// Show this process alone (with --pages, count its faults per page too); demo top ends
    /// when it exits.
    #[arg(long, short, conflicts_with = "group")]
    pub pid: Option<u32>,

    /// Show only the processes in this cgroup v2 and the cgroups below it (PATH under the
    /// cgroup v2 mount, or in full): the kernel counts no fault of another process. demo top
    /// ends when the cgroup is removed.
    #[arg(long, value_name = "PATH", conflicts_with = "pid")]
    pub cgroup: Option<String>,

    /// Count the faults of --pid per page, and show its hottest ranges of consecutive pages,
    /// each with the mapping its pages faulted in and the code of the last fault on its hottest
    /// page, on the CPU that faulted there most.
    #[arg(long, requires = "pid")]
    pub pages: bool,

    /// One row per command or per cgroup v2, the sum of its processes: the living, and those
    /// that exited in the interval.
    #[arg(long, value_enum, value_name = "comm|cgroup")]
    pub group: Option<GroupArg>,

    /// Keep the rows of processes that exited (or groups whose every process did) after the
    /// interval they exited in, below the living, with their last counts; at most 1000.
    #[arg(long)]
    pub keep_exited: bool,

    /// Run no program per fault: read only the kernel's own per-process counters, so the
    /// faulting processes pay nothing. TOTAL is then minor + major, and WRITE% and KERN% are
    /// unknown ("-", null in JSON).
    #[arg(long, conflicts_with = "pages")]
    pub counters_only: bool,

    /// Time every completed fault, from its start to the kernel's completion event, by programs
    /// on every CPU's minor-faults and major-faults software events: each row's time in faults
    /// per second and its p99, and with --listen the demo_fault_duration_seconds histogram.
    #[arg(
        long,
        overrides_with = "no_durations",
        conflicts_with = "counters_only"
    )]
    pub durations: bool,

    /// Do not time faults (the default).
    #[arg(long, overrides_with = "durations")]
    pub no_durations: bool,

    /// With --counters-only: attach programs that count nothing to the fault tracepoints, to
    /// measure what the hook alone costs (cargo xtask bench).
    #[arg(long, hide = true, requires = "counters_only")]
    pub debug_empty_fault_programs: bool,

    /// Serve the counters at http://ADDR:PORT/metrics in the Prometheus text format, read from
    /// the kernel at each scrape: demo_faults_total by comm, cgroup, access and mode,
    /// demo_minor_faults_total and demo_major_faults_total by comm and cgroup, and more (see
    /// the README). Port 0 takes a free port; the address is printed on stderr.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,

    /// With --listen: a series per process (a pid label), bounded by --max-series.
    #[arg(long, requires = "listen")]
    pub per_pid: bool,

    /// With --listen: the most series any one metric has. Past it, new series fold into the
    /// one labelled comm="other" (cgroup and pid "other" too), and demo_series_folded_total
    /// counts the processes folded.
    #[arg(long, value_name = "N", requires = "listen", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(demo::top::ledger::MIN_SERIES as u64..=1_000_000))]
    pub max_series: u64,

    /// With --listen: show no intervals, only serve the metrics (as a service does).
    #[arg(long, requires = "listen")]
    pub quiet: bool,

    /// Output format: the table, or one JSON object per interval.
    #[arg(long, default_value = "text", value_parser = top_formats())]
    pub format: FormatArg,

    // demo's global options that top has no use for, under the same ids, so that top's help
    // does not offer them while top still reads them to refuse them in a sentence of its own.
    #[arg(long, hide = true)]
    pub stacks: bool,

    #[arg(long, hide = true, value_parser = clap::value_parser!(u32).range(1..=demo_common::MAX_STACK_DEPTH as i64))]
    pub stack_depth: Option<u32>,

    #[arg(long, hide = true, value_enum)]
    pub call_graph: Option<CallGraphArg>,

    #[arg(long, hide = true, value_parser = stack_bytes)]
    pub stack_bytes: Option<u32>,

    #[arg(long, hide = true, value_enum)]
    pub source: Option<SourceArg>,

    #[arg(long, hide = true, value_parser = ring_kib)]
    pub ring_buffer_kib: Option<u32>,

    #[arg(long, hide = true)]
    pub as_root: bool,
}

/// `--format` as demo top offers it: text and json. folded and chrome-trace are still read, and
/// refused in top's own sentence, but not offered.
fn top_formats() -> impl clap::builder::TypedValueParser<Value = FormatArg> {
    use clap::builder::TypedValueParser as _;
    let values = FormatArg::value_variants().iter().filter_map(|format| {
        let value = format.to_possible_value()?;
        Some(match format {
            FormatArg::Text | FormatArg::Json => value,
            FormatArg::Folded | FormatArg::ChromeTrace | FormatArg::Pprof => value.hide(true),
        })
    });
    clap::builder::PossibleValuesParser::new(values)
        .try_map(|name| FormatArg::from_str(&name, false))
}

/// `--group`: the command line's names for [`GroupBy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GroupArg {
    /// One row per command (comm).
    Comm,
    /// One row per cgroup v2 (its path).
    Cgroup,
}

impl From<GroupArg> for GroupBy {
    fn from(group: GroupArg) -> Self {
        match group {
            GroupArg::Comm => Self::Command,
            GroupArg::Cgroup => Self::Cgroup,
        }
    }
}

/// The options of `demo trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    /// Attach to this running process (all its threads).
    #[arg(long, short)]
    pub pid: Option<u32>,

    /// Trace every process in this cgroup v2 and the cgroups below it: those there at the
    /// start, and those that enter later (forked inside, or moved in). PATH is the cgroup's
    /// path under the cgroup v2 mount (`/system.slice/nginx.service`), or its full path. The
    /// kernel filters by the faulting task's cgroup, so nothing is sent for other processes.
    /// The trace ends on Ctrl-C, after --duration, or when the cgroup is removed.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,

    /// Also trace the target's children, and theirs: the kernel adds each at fork, before it
    /// runs, so none of their first faults are missed.
    #[arg(long)]
    pub follow: bool,

    /// Regions to resolve faults in: `auto` (the default: anonymous mmaps and heap blocks),
    /// `none`, or `ADDR:LEN` by hand (repeatable; with only hand-given ones, auto is off).
    #[arg(long = "region", value_name = "auto|none|ADDR:LEN")]
    pub regions: Vec<String>,

    /// Find heap blocks through uprobes on the target's malloc, calloc, realloc and free. Each
    /// of those calls then traps into the kernel (a few microseconds), in the traced processes
    /// only. On by default for a command demo starts; off for --pid, so a running service's
    /// malloc is not slowed unless asked.
    #[arg(long, overrides_with = "no_heap")]
    pub heap: bool,

    /// Do not uprobe the heap functions (heap blocks are not found as regions).
    #[arg(long, overrides_with = "heap")]
    pub no_heap: bool,

    /// Smallest heap block that becomes a region, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub min_block: u64,

    /// Bytes per element, to turn offsets into indices (4 for a C int array).
    #[arg(long, value_name = "BYTES", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub elem_size: u64,

    /// Stop after this many seconds.
    #[arg(long, value_name = "SECS", value_parser = positive_seconds)]
    pub duration: Option<f64>,

    /// Time each fault from its start to its completion, and split the time into on the CPU,
    /// off it (waiting for I/O or a lock) and in reclaim or compaction. On by default for a
    /// command demo starts; off for --pid, since it costs the traced process about a third more
    /// per fault (cargo xtask bench).
    #[arg(long, overrides_with = "no_durations")]
    pub durations: bool,

    /// Do not time faults: a fault's class then comes from its thread's counters.
    #[arg(long, overrides_with = "durations")]
    pub no_durations: bool,

    /// List only the faults that took at least TIME (`1ms`, `500us`, `2.5ms`), in the text and
    /// JSON lines; a fault without a duration (an error fault never completes) is not listed.
    /// The summary still counts every fault.
    #[arg(long, value_name = "TIME", value_parser = min_duration)]
    pub min_duration: Option<std::time::Duration>,

    /// Write each event of the text report on one line, however long, with whole paths; by
    /// default lines fit 80 columns, a fault's region, mapping and code on the line under it.
    #[arg(long)]
    pub wide: bool,

    /// With --format folded: what each stack's number is, the faults in it (the default), or
    /// their total duration in nanoseconds, a flame graph of the time stalled in faults. A
    /// fault that was not timed (an error fault never completes) adds nothing to `time`; the
    /// log says how many there were.
    #[arg(long, value_enum, value_name = "faults|time")]
    pub weight: Option<WeightArg>,

    /// The command to start and trace, after `--`.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

fn ring_kib(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(kib) if kib >= 4 && kib.is_power_of_two() && kib <= 1 << 20 => Ok(kib),
        _ => Err("must be a power of two from 4 to 1048576".to_owned()),
    }
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        Ok(_) => Err("must be more than 0".to_owned()),
        Err(_) => Err("must be a number of seconds".to_owned()),
    }
}

/// `--min-duration`: a time and its unit, `ns`, `us` (or `µs`), `ms` or `s`: `2.5ms`.
fn min_duration(text: &str) -> Result<std::time::Duration, String> {
    const UNITS: [(&str, f64); 5] = [
        ("ns", 1.0),
        ("us", 1e3),
        ("µs", 1e3),
        ("ms", 1e6),
        ("s", 1e9),
    ];
    let bad = || "must be a time with its unit, such as 1ms, 500us or 2.5ms".to_owned();
    // "s" comes last: every other unit ends with it too.
    let (number, scale) = UNITS
        .iter()
        .find_map(|&(unit, scale)| Some((text.trim().strip_suffix(unit)?, scale)))
        .ok_or_else(bad)?;
    match number.trim().parse::<f64>() {
        Ok(number) if number > 0.0 && (number * scale).is_finite() => Ok(
            std::time::Duration::from_nanos((number * scale).round() as u64),
        ),
        Ok(number) if number <= 0.0 => Err("must be more than 0".to_owned()),
        _ => Err(bad()),
    }
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
    pub via: Option<AllocatorArg>,

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
            via: self.via.map(Allocator::from),
            via_syscall: self.via_syscall,
        }
    }
}

/// Parses the process's arguments; on bad input clap prints usage and exits with status 2.
pub fn parse() -> Cli {
    Cli::parse()
}

/// `--format`: the command line's names for [`Format`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A report for people, 80 columns wide.
    Text,
    /// JSON Lines: one object per line, with a `kind` field.
    Json,
    /// At the end of an alloc or trace, one line per distinct stack (command;root;...;leaf
    /// count), for flamegraph.pl and inferno; the faulting function alone without --stacks.
    Folded,
    /// A timeline of an alloc or trace in the Trace Event Format, which ui.perfetto.dev,
    /// chrome://tracing and the Firefox Profiler open: a track per thread, a slice per fault
    /// as long as it took (an instant when not timed), syscalls, a counter of each region's
    /// resident pages, steps as slices.
    ChromeTrace,
    /// At the end of an alloc or trace, a gzipped pprof profile (needs --output): the faults
    /// and with durations their time, by stack, with function, file and line, labelled by
    /// pid, comm, class, access and region; for go tool pprof, Pyroscope and Parca.
    Pprof,
}

impl FormatArg {
    /// The name the command line gives it.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    }
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Self {
        match format {
            FormatArg::Text => Self::Text,
            FormatArg::Json => Self::Json,
            FormatArg::Folded => Self::Folded,
            FormatArg::ChromeTrace => Self::ChromeTrace,
            FormatArg::Pprof => Self::Pprof,
        }
    }
}

/// `--call-graph`: the command line's names for [`CallGraph`]'s two ways.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CallGraphArg {
    /// Follow frame pointers in the kernel.
    Fp,
    /// Copy the stack and unwind it with the unwind tables.
    Dwarf,
}

fn stack_bytes(text: &str) -> Result<u32, String> {
    let most = demo_common::MAX_STACK_BYTES as u32;
    match text.parse::<u32>() {
        Ok(bytes) if (8..=most).contains(&bytes) => Ok(bytes.next_multiple_of(8)),
        _ => Err(format!("must be a number of bytes from 8 to {most}")),
    }
}

/// `--source`: the command line's names for [`SourceChoice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// The exceptions tracepoints when the kernel has them, else the perf event.
    Auto,
    /// The exceptions:page_fault_user/kernel tracepoints (x86-64).
    Tracepoint,
    /// The PAGE_FAULTS software perf event, on every architecture.
    Perf,
}

impl From<SourceArg> for SourceChoice {
    fn from(source: SourceArg) -> Self {
        match source {
            SourceArg::Auto => Self::Auto,
            SourceArg::Tracepoint => Self::Tracepoint,
            SourceArg::Perf => Self::Perf,
        }
    }
}

/// `demo alloc WALK`: a walk by the name [`ScenarioName`] gives it, or `all`. Its help is
/// the walk's own line of `--list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioArg {
    One(ScenarioName),
    /// Every walk, one after the other.
    All,
}

impl ScenarioArg {
    /// Every walk, then `all`.
    const VARIANTS: [Self; ScenarioName::ALL.len() + 1] = {
        let mut variants = [Self::All; ScenarioName::ALL.len() + 1];
        let mut i = 0;
        while i < ScenarioName::ALL.len() {
            variants[i] = Self::One(ScenarioName::ALL[i]);
            i += 1;
        }
        variants
    };

    /// The walks this name runs.
    pub fn scenarios(self) -> Vec<ScenarioName> {
        match self {
            Self::One(scenario) => vec![scenario],
            Self::All => ScenarioName::ALL.to_vec(),
        }
    }
}

impl ValueEnum for ScenarioArg {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::VARIANTS
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            Self::One(scenario) => {
                PossibleValue::new(scenario.as_str()).help(lessons::lesson(*scenario).teaches())
            }
            Self::All => PossibleValue::new("all").help("every walk, one after the other"),
        })
    }
}

/// `--sort`: the command line's names for [`SortKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SortArg {
    /// Faults per second in the last interval.
    Rate,
    /// Faults since demo top started.
    Total,
    /// Major faults since demo top started.
    Major,
    /// Time in faults in the last interval (with --durations).
    FaultTime,
}

impl From<SortArg> for SortKey {
    fn from(sort: SortArg) -> Self {
        match sort {
            SortArg::Rate => Self::Rate,
            SortArg::Total => Self::Total,
            SortArg::Major => Self::Major,
            SortArg::FaultTime => Self::FaultTime,
        }
    }
}

/// `--weight`: the command line's names for [`Weight`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WeightArg {
    /// Each stack's number of faults.
    Faults,
    /// Each stack's time in faults, in nanoseconds.
    Time,
}

impl From<WeightArg> for Weight {
    fn from(weight: WeightArg) -> Self {
        match weight {
            WeightArg::Faults => Self::Faults,
            WeightArg::Time => Self::Time,
        }
    }
}

/// `--via`: the command line's names for [`Allocator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AllocatorArg {
    Mmap,
    Malloc,
}

impl From<AllocatorArg> for Allocator {
    fn from(allocator: AllocatorArg) -> Self {
        match allocator {
            AllocatorArg::Mmap => Self::Mmap,
            AllocatorArg::Malloc => Self::Malloc,
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

    /// The options a man page lists: the `--long` names on its `.TP` lines, roff's `\-`
    /// read as `-`.
    fn man_options(command: Option<&str>) -> std::collections::BTreeSet<String> {
        let mut page = Vec::new();
        write_man(command, &mut page).unwrap();
        let mut page = String::from_utf8(page).unwrap().replace("\\-", "-");
        for font in ["\\fB", "\\fI", "\\fR"] {
            page = page.replace(font, " ");
        }
        let lines: Vec<&str> = page.lines().collect();
        lines
            .windows(2)
            .filter(|pair| pair[0] == ".TP")
            .flat_map(|pair| {
                pair[1]
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .filter(|word| word.starts_with("--") && word.len() > 2)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every option clap accepts for each command, and only those, are in its man page. The
    /// global options (--format, -o, --stacks, --tui, --source, --wide) are checked by name too,
    /// since they are defined on demo and reach a command's page only when it is built.
    #[test]
    fn every_man_page_lists_every_option_of_its_command() {
        let mut cli = Cli::command();
        cli.build();
        let commands = std::iter::once(None).chain(
            cli.get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .map(|sub| Some(sub.get_name().to_owned())),
        );
        for name in commands {
            let command = match &name {
                None => &cli,
                Some(name) => cli.find_subcommand(name).unwrap(),
            };
            let defined: std::collections::BTreeSet<String> = command
                .get_arguments()
                .filter(|arg| !arg.is_hide_set())
                .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
                .collect();
            assert_eq!(man_options(name.as_deref()), defined, "demo {name:?}");
        }
        let trace = man_options(Some("trace"));
        for global in [
            "--format", "--output", "--stacks", "--tui", "--source", "--wide",
        ] {
            assert!(trace.contains(global), "{global}: {trace:?}");
        }
    }

    #[test]
    fn alloc_mmap_parses_with_json_after_the_scenario() {
        let cli = Cli::try_parse_from(["demo", "alloc", "mmap", "--format", "json"]).unwrap();
        assert_eq!(Format::from(cli.format), Format::Json);
        assert!(matches!(
            cli.command,
            Some(Command::Alloc {
                scenario: Some(ScenarioArg::One(ScenarioName::Mmap)),
                ..
            })
        ));
    }

    #[test]
    fn list_needs_no_walk_and_all_names_every_walk() {
        let cli = Cli::try_parse_from(["demo", "alloc", "--list"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Alloc {
                list: true,
                scenario: None,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["demo", "alloc"]).is_err());
        assert!(Cli::try_parse_from(["demo", "alloc", "mmap", "--list"]).is_err());
        assert_eq!(ScenarioArg::All.scenarios(), ScenarioName::ALL);
        assert_eq!(
            ScenarioArg::One(ScenarioName::Thp).scenarios(),
            [ScenarioName::Thp]
        );
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
    fn trace_needs_a_pid_or_a_command_and_checks_numbers() {
        let cli = Cli::try_parse_from(["demo", "trace", "--elem-size", "4", "--", "./prog", "-x"])
            .unwrap();
        let Some(Command::Trace(args)) = cli.command else {
            panic!("not trace");
        };
        assert_eq!(args.command, ["./prog", "-x"]);
        assert_eq!(args.elem_size, 4);
        for bad in [
            &["demo", "trace"][..],
            &["demo", "trace", "--pid", "1", "--", "ls"][..],
            &["demo", "trace", "--elem-size", "0", "--pid", "1"][..],
            &["demo", "trace", "--duration", "0", "--pid", "1"][..],
            &["demo", "trace", "--duration", "soon", "--pid", "1"][..],
        ] {
            let error = Cli::try_parse_from(bad).unwrap_err();
            assert_eq!(error.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn min_duration_is_a_time_with_its_unit() {
        let nanos = |text| min_duration(text).map(|time| time.as_nanos());
        assert_eq!(nanos("2.5ms"), Ok(2_500_000));
        assert_eq!(nanos("500us"), Ok(500_000));
        assert_eq!(nanos("500µs"), Ok(500_000));
        assert_eq!(nanos("1s"), Ok(1_000_000_000));
        assert_eq!(nanos("800ns"), Ok(800));
        for bad in ["1", "ms", "1 fortnight", "0ms", "-1ms", "infs"] {
            assert!(nanos(bad).is_err(), "{bad}");
        }
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
