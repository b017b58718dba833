//! Loads the embedded eBPF object, attaches its programs, and owns the maps they share with us.
//! Dropping [`Probes`] detaches every program and closes every map.

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{CgroupArray, HashMap, MapData, MapError, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{
        PerfEvent, ProgramError, RawTracePoint, TracePoint,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
use std::{
    collections::BTreeMap,
    os::fd::{AsRawFd, OwnedFd},
    path::Path,
    sync::Arc,
};

use aya::programs::UProbe;
use demo_common::{
    DROPS_MAP, EVENTS_MAP, NEW_TASK_PROGRAM, PAGE_COUNTS_MAP, PAGE_FAULT_KERNEL_PROGRAM,
    PAGE_FAULT_USER_PROGRAM, PERF_FAULT_PROGRAM, PROCESS_EXEC_PROGRAM, PROCESS_EXIT_PROGRAM,
    RecordKind, SIGNAL_PROGRAM, SYSCALL_TRACEPOINTS, TARGETS_MAP, TASK_LAYOUT_GLOBAL,
    TOP_COUNTS_MAP, TOP_EXITS_MAP, fault_tracepoint, new_task_tracepoint, process_exit_tracepoint,
    signal_tracepoint, syscall_tracepoint,
};

mod completions;
mod heap;
mod run_stats;
mod top;

pub use self::run_stats::ProgramRuns;
pub use self::top::{PageCount, ProcessCounts, TopCounting, TopDrops, TopProbes, command_name};

use crate::{
    kernel::file_layout,
    kernel::raw_tracepoint::{self, RawTracepointError},
    kernel::task_layout::{self, TaskLayoutError},
    kernel::tracefs::{self, TracefsError},
    model::{call_graph::CallGraph, syscalls},
};

/// The eBPF object built by build.rs for the BPF target: every program of the product.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/demo"));

/// The bench's object, built beside it: `top_empty_user` and `top_empty_kernel`, programs that
/// count nothing, loaded only for `demo top --debug-empty-fault-programs`.
static FLOOR_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/demo-floor"));

/// One tracepoint program: where it attaches and the fields (name, offset) it reads. A raw
/// tracepoint reads no field; its tracepoint must only exist, and its arguments are checked
/// against the kernel's BTF instead ([`check_fault_args`]).
struct TracepointProgram {
    program: String,
    category: String,
    name: String,
    fields: Vec<(&'static str, usize)>,
}

/// The fault tracepoint programs, on tracepoints of `category` (normally `exceptions`).
fn fault_tracepoint_programs(category: &str) -> Vec<TracepointProgram> {
    [
        (PAGE_FAULT_USER_PROGRAM, "page_fault_user"),
        (PAGE_FAULT_KERNEL_PROGRAM, "page_fault_kernel"),
    ]
    .into_iter()
    .map(|(program, name)| TracepointProgram {
        program: program.to_owned(),
        category: category.to_owned(),
        name: name.to_owned(),
        fields: Vec::new(),
    })
    .collect()
}

/// Checks that the fault tracepoints pass the arguments the programs read by position
/// ([`fault_tracepoint::ARGS`]) where they read them.
fn check_fault_args(
    btf: &btf_rs::Btf,
    tracepoints: &[TracepointProgram],
) -> Result<(), RawTracepointError> {
    for tracepoint in tracepoints {
        raw_tracepoint::check_args(btf, &tracepoint.name, &fault_tracepoint::ARGS)?;
    }
    Ok(())
}

/// `program` on `sched:sched_process_exit`.
fn process_exit_program(program: &str) -> TracepointProgram {
    TracepointProgram {
        program: program.to_owned(),
        category: "sched".to_owned(),
        name: "sched_process_exit".to_owned(),
        fields: vec![("group_dead", process_exit_tracepoint::GROUP_DEAD)],
    }
}

/// Every other tracepoint program of the object, with what it assumes of its tracepoint's format.
fn tracepoint_programs() -> Vec<TracepointProgram> {
    let mut programs = vec![
        TracepointProgram {
            program: NEW_TASK_PROGRAM.to_owned(),
            category: "task".to_owned(),
            name: "task_newtask".to_owned(),
            fields: vec![
                ("pid", new_task_tracepoint::PID),
                ("clone_flags", new_task_tracepoint::CLONE_FLAGS),
            ],
        },
        process_exit_program(PROCESS_EXIT_PROGRAM),
        TracepointProgram {
            program: PROCESS_EXEC_PROGRAM.to_owned(),
            category: "sched".to_owned(),
            name: "sched_process_exec".to_owned(),
            fields: Vec::new(),
        },
        TracepointProgram {
            program: SIGNAL_PROGRAM.to_owned(),
            category: "signal".to_owned(),
            name: "signal_generate".to_owned(),
            fields: vec![
                ("sig", signal_tracepoint::SIG),
                ("errno", signal_tracepoint::ERRNO),
                ("code", signal_tracepoint::CODE),
                ("pid", signal_tracepoint::PID),
                ("result", signal_tracepoint::RESULT),
            ],
        },
    ];
    for syscall in SYSCALL_TRACEPOINTS {
        let enter = format!("sys_enter_{}", syscall.name());
        let exit = format!("sys_exit_{}", syscall.name());
        programs.push(TracepointProgram {
            program: enter.clone(),
            category: "syscalls".to_owned(),
            name: enter,
            fields: syscalls::arg_names(syscall)
                .iter()
                .zip((syscall_tracepoint::FIRST_ARG..).step_by(8))
                .map(|(&name, offset)| (name, offset))
                .collect(),
        });
        programs.push(TracepointProgram {
            program: exit.clone(),
            category: "syscalls".to_owned(),
            name: exit,
            fields: vec![("ret", syscall_tracepoint::RET)],
        });
    }
    programs
}

/// Failures while loading or talking to the eBPF side.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error(transparent)]
    TaskLayout(#[from] TaskLayoutError),
    #[error(transparent)]
    RawTracepoint(#[from] RawTracepointError),
    #[error("load the eBPF object: {0}")]
    Load(#[source] Box<EbpfError>),
    #[error("set up aya-log for the eBPF programs: {0}")]
    Logger(#[source] aya_log::Error),
    #[error("the eBPF object has no {0}; it does not match this loader")]
    Missing(String),
    #[error("load program {program}: {source}")]
    LoadProgram {
        program: String,
        source: Box<ProgramError>,
    },
    #[error("attach program {program} to {target}: {source}")]
    Attach {
        program: String,
        target: String,
        source: Box<ProgramError>,
    },
    #[error("list the online CPUs: {0}")]
    OnlineCpus(#[source] std::io::Error),
    #[error("flush the fault counts of cpu {cpu}: {source}")]
    Flush { cpu: u32, source: Box<ProgramError> },
    #[error(
        "flush the fault counts of cpu {cpu}: a counting program stayed busy there for {} attempts",
        top::FLUSH_ATTEMPTS
    )]
    FlushBusy { cpu: u32 },
    #[error("{operation}: {source}")]
    Map {
        operation: &'static str,
        source: MapError,
    },
    #[error("parse the embedded eBPF object: {0}")]
    Parse(#[source] aya_obj::ParseError),
}

/// The names of the embedded object's programs and maps, as the kernel shows them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectNames {
    pub programs: Vec<String>,
    pub maps: Vec<String>,
}

/// The kernel keeps at most this many bytes of a program's or map's name.
const KERNEL_NAME_BYTES: usize = 15;

/// Lists the embedded objects' programs and maps (not their data sections) by the names the
/// kernel gives them, so that a check for anything of demo's left loaded knows them all: the
/// product's and the bench's floor programs.
pub fn object_names() -> Result<ObjectNames, ProbeError> {
    let mut names = names_in(EBPF_OBJECT)?;
    let floor = names_in(FLOOR_OBJECT)?;
    names.programs.extend(floor.programs);
    names.maps.extend(floor.maps);
    names.programs.sort();
    names.maps.sort();
    Ok(names)
}

/// The programs and maps of one object, by the names the kernel gives them.
fn names_in(object: &[u8]) -> Result<ObjectNames, ProbeError> {
    let object = aya_obj::Object::parse(object).map_err(ProbeError::Parse)?;
    let kernel_name = |name: &String| name[..name.len().min(KERNEL_NAME_BYTES)].to_owned();
    Ok(ObjectNames {
        programs: object.programs.keys().map(kernel_name).collect(),
        maps: object
            .maps
            .keys()
            .filter(|name| !name.starts_with('.'))
            .map(kernel_name)
            .collect(),
    })
}

/// Where fault records come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceChoice {
    /// The exceptions tracepoints when the kernel has them, else the perf event.
    #[default]
    Auto,
    /// The exceptions:page_fault_user/kernel tracepoints (x86-64).
    Tracepoint,
    /// The PAGE_FAULTS software perf event, on every architecture.
    Perf,
}

/// The fault source in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultSourceInUse {
    Tracepoints,
    /// The perf event, with the reason it was chosen.
    Perf {
        fallback: bool,
    },
}

impl FaultSourceInUse {
    /// The source's name on the command line and in JSON: `tracepoint` or `perf`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tracepoints => "tracepoint",
            Self::Perf { .. } => "perf",
        }
    }

    /// The perf event stands in for tracepoints this kernel does not have.
    pub fn is_fallback(self) -> bool {
        matches!(self, Self::Perf { fallback: true })
    }
}

/// Settings for loading the programs.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Byte size of the event ring buffer (a power of two, at least one page).
    pub ring_bytes: u32,
    pub source: SourceChoice,
    /// The category of the fault tracepoints; only tests change it, to simulate a kernel
    /// without them.
    pub fault_category: String,
    /// User-stack frames to capture per fault (`--stacks`), at most
    /// [`demo_common::MAX_STACK_DEPTH`]; 0 for none. The perf-event source captures none.
    pub stack_depth: u32,
    /// Bytes of user stack to copy per fault, with the user registers, for the loader to
    /// unwind (`--call-graph dwarf`); 0 for none. Taken down to a multiple of 8 and at most
    /// [`demo_common::MAX_STACK_BYTES`]; when set, it takes the place of `stack_depth`. The
    /// perf-event source copies none.
    pub stack_bytes: u32,
    /// Time each fault from its start to its completion, and say where the time went.
    pub durations: bool,
    /// With `--cgroup`: the cgroup v2 directory (opened `O_RDONLY | O_DIRECTORY`) the programs
    /// are scoped to. Only the tasks in it or below it are reported, and each process there
    /// joins the targets at its first event; `None` reports the target map's processes alone.
    pub cgroup: Option<Arc<OwnedFd>>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            ring_bytes: demo_common::DEFAULT_RING_BYTES,
            source: SourceChoice::Auto,
            fault_category: "exceptions".to_owned(),
            stack_depth: 0,
            stack_bytes: 0,
            durations: false,
            cgroup: None,
        }
    }
}

/// The loaded and attached programs plus typed handles on their maps.
pub struct Probes {
    // Owns the programs and their links: dropping it detaches them.
    ebpf: Ebpf,
    source: FaultSourceInUse,
    logger: aya_log::EbpfLogger<&'static dyn log::Log>,
    targets: HashMap<MapData, u32, u8>,
    drops: PerCpuArray<MapData, u64>,
    /// The records lost by process and kind, keyed by `demo_common::process_drop_key`.
    process_drops: PerCpuHashMap<MapData, u64, u64>,
    events: Option<RingBuf<MapData>>,
    heap: heap::HeapLinks,
    /// The completion events of traced threads, with durations on; `None` without.
    completions: Option<completions::Completions>,
    /// How the loaded programs capture each fault's stack; `None` when they capture none.
    call_graph: Option<CallGraph>,
}

impl Probes {
    /// Mounts tracefs if needed, checks the tracepoints, loads the object and attaches the programs.
    pub fn load(options: &ProbeOptions) -> Result<Self, ProbeError> {
        let tracing = tracefs::ensure_mounted()?;
        let fault_tracepoints = fault_tracepoint_programs(&options.fault_category);
        let source = match options.source {
            SourceChoice::Perf => FaultSourceInUse::Perf { fallback: false },
            SourceChoice::Tracepoint => {
                check_formats(&tracing, &fault_tracepoints)?;
                FaultSourceInUse::Tracepoints
            }
            SourceChoice::Auto => match check_formats(&tracing, &fault_tracepoints) {
                Ok(()) => FaultSourceInUse::Tracepoints,
                Err(TracefsError::MissingTracepoint { category, name, .. }) => {
                    log::info!("no tracepoint {category}:{name}; faults come from the perf event");
                    FaultSourceInUse::Perf { fallback: true }
                }
                Err(other) => return Err(other.into()),
            },
        };
        let tracepoints = tracepoint_programs();
        check_formats(&tracing, &tracepoints)?;
        let btf = task_layout::running_kernel_btf()?;
        if source == FaultSourceInUse::Tracepoints {
            check_fault_args(&btf, &fault_tracepoints)?;
        }
        let (stack_depth, stack_bytes) = (
            options.stack_depth.min(demo_common::MAX_STACK_DEPTH as u32),
            stack_bytes(options.stack_bytes),
        );
        // The perf-event program captures no stacks, whatever the globals say.
        let call_graph = (source == FaultSourceInUse::Tracepoints)
            .then_some(match (stack_bytes, stack_depth) {
                (0, 0) => None,
                (0, depth) => Some(CallGraph::FramePointers { depth }),
                (stack_bytes, _) => Some(CallGraph::Dwarf { stack_bytes }),
            })
            .flatten();
        let (mut ebpf, logger) = open_object(
            &btf,
            ObjectUse::Trace {
                ring_bytes: options.ring_bytes,
                stack_depth,
                stack_bytes,
                durations: options.durations,
            },
            options.cgroup.as_deref(),
        )?;
        if options.durations {
            completions::load(&mut ebpf, &btf)?;
        }
        attach_tracepoints(&mut ebpf, &tracepoints, Attach::Classic)?;
        if source == FaultSourceInUse::Tracepoints {
            attach_tracepoints(&mut ebpf, &fault_tracepoints, Attach::Raw)?;
        }
        if let FaultSourceInUse::Perf { .. } = source {
            attach_per_cpu(
                &mut ebpf,
                &[(PERF_FAULT_PROGRAM, SoftwareEvent::PageFaults)],
            )?;
        }

        let targets = take_map(&mut ebpf, TARGETS_MAP, "open the target map")?;
        let drops = take_map(&mut ebpf, DROPS_MAP, "open the drop counter")?;
        let process_drops = take_map(
            &mut ebpf,
            demo_common::PROCESS_DROPS_MAP,
            "open the drop counter by process",
        )?;
        let events = take_map(&mut ebpf, EVENTS_MAP, "open the event ring buffer")?;
        Ok(Self {
            ebpf,
            source,
            logger,
            targets,
            drops,
            process_drops,
            events: Some(events),
            heap: heap::HeapLinks::default(),
            completions: options.durations.then(completions::Completions::default),
            call_graph,
        })
    }

    /// Where fault records come from.
    pub fn fault_source(&self) -> FaultSourceInUse {
        self.source
    }

    /// How each fault's stack is captured, as the programs were loaded; `None` without stacks
    /// (the perf-event source captures none).
    pub fn call_graph(&self) -> Option<CallGraph> {
        self.call_graph
    }

    /// Starts tracing process `pid` as `flags` (see `demo_common::target_flags`) ask.
    pub fn add_target(&mut self, pid: u32, flags: u8) -> Result<(), ProbeError> {
        self.targets
            .insert(pid, flags, 0)
            .map_err(|source| ProbeError::Map {
                operation: "add a target process",
                source,
            })
    }

    /// Starts tracing process `pid` as `flags` ask, unless it is a target already: true when it
    /// was added, false when it was there (under a cgroup scope, the kernel side may have joined
    /// it first, and its join record tells the trace).
    pub fn add_target_if_absent(&mut self, pid: u32, flags: u8) -> Result<bool, ProbeError> {
        match self
            .targets
            .insert(pid, flags, u64::from(aya_obj::generated::BPF_NOEXIST))
        {
            Ok(()) => Ok(true),
            Err(MapError::SyscallError(error))
                if error.io_error.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(false)
            }
            Err(source) => Err(ProbeError::Map {
                operation: "add a target process",
                source,
            }),
        }
    }

    /// The flags of `pid` in the target map, `None` when it is not there.
    pub fn target_flags(&self, pid: u32) -> Result<Option<u8>, ProbeError> {
        unless_missing(self.targets.get(&pid, 0), "read the target map")
    }

    /// Stops reporting faults of process `pid`.
    pub fn remove_target(&mut self, pid: u32) -> Result<(), ProbeError> {
        // The kernel side forgets a process when it exits.
        unless_missing(self.targets.remove(&pid), "remove a target process").map(drop)
    }

    /// Attaches the heap uprobes to `libc` for process `pid` only (see [`heap::HeapLinks`]).
    pub fn attach_heap_probes(&mut self, libc: &Path, pid: u32) -> Result<(), ProbeError> {
        self.heap.attach(&mut self.ebpf, libc, pid)
    }

    /// Times the faults of every thread of process `pid`, and of the threads and children it
    /// starts later, when durations are on; nothing otherwise.
    pub fn time_faults_of(&mut self, pid: u32) -> Result<(), ProbeError> {
        match &mut self.completions {
            Some(completions) => completions.attach(&mut self.ebpf, pid),
            None => Ok(()),
        }
    }

    /// True when faults are timed.
    pub fn durations(&self) -> bool {
        self.completions.is_some()
    }

    /// Detaches the heap uprobes of process `pid`, once it exited.
    pub fn detach_heap_probes(&mut self, pid: u32) {
        self.heap.detach(&mut self.ebpf, pid);
    }

    /// Hands the event ring buffer to its reader; `None` after the first call.
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }

    /// Everything the kernel side lost: records that found the ring buffer full, and followed
    /// children that found the target map full. The events of processes that could not join
    /// (`demo_common::UNJOINED_SLOT`) were reported, so they are not counted here.
    pub fn dropped(&self) -> Result<u64, ProbeError> {
        Ok(self
            .drops_by_slot()?
            .iter()
            .enumerate()
            .filter(|&(slot, _)| slot != demo_common::UNJOINED_SLOT as usize)
            .map(|(_, &count)| count)
            .sum())
    }

    /// Under `--cgroup`, the events reported by processes that could not join the target map
    /// because it was full (`demo_common::UNJOINED_SLOT`), summed over CPUs: each counts once.
    /// Those processes' forks and exits went unreported, and the trace has no join for them.
    pub fn unjoined(&self) -> Result<u64, ProbeError> {
        self.drop_count(demo_common::UNJOINED_SLOT)
    }

    /// The drop counters, summed over CPUs: slot k holds records of kind k, slot 0 untraced
    /// children, and `demo_common::UNJOINED_SLOT` the events of scoped processes that found the
    /// target map full as they joined.
    pub fn drops_by_slot(&self) -> Result<Vec<u64>, ProbeError> {
        (0..demo_common::DROP_SLOTS)
            .map(|slot| self.drop_count(slot))
            .collect()
    }

    /// Drop counter `slot`, summed over CPUs.
    fn drop_count(&self, slot: u32) -> Result<u64, ProbeError> {
        let per_cpu = self.drops.get(&slot, 0).map_err(|source| ProbeError::Map {
            operation: "read the drop counters",
            source,
        })?;
        Ok(per_cpu.iter().sum())
    }

    /// The records lost so far by each process that lost any, by kind, summed over CPUs.
    pub fn drops_by_process(&self) -> Result<BTreeMap<u32, BTreeMap<RecordKind, u64>>, ProbeError> {
        let mut by_process: BTreeMap<u32, BTreeMap<RecordKind, u64>> = BTreeMap::new();
        for entry in self.process_drops.iter() {
            let (key, per_cpu) = entry.map_err(|source| ProbeError::Map {
                operation: "read the drop counters by process",
                source,
            })?;
            // Every key the programs write names a known kind; one that does not is skipped.
            let Some(kind) = RecordKind::from_tag(key as u32) else {
                continue;
            };
            let lost: u64 = per_cpu.iter().sum();
            if lost > 0 {
                *by_process
                    .entry((key >> 32) as u32)
                    .or_default()
                    .entry(kind)
                    .or_default() += lost;
            }
        }
        Ok(by_process)
    }

    /// What each program that ran cost in the kernel so far, when `bpf_stats` is on.
    pub fn program_runs(&self) -> Option<Vec<ProgramRuns>> {
        run_stats::program_runs(&[&self.ebpf])
    }

    /// Forwards pending aya-log messages of the programs to the `log` crate.
    pub fn flush_log(&mut self) {
        self.logger.flush();
    }
}

/// Which programs a run needs; the maps only the others use are made as small as they can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ObjectUse {
    /// Per-event tracing, with a ring buffer of this many bytes, this many user-stack frames
    /// or bytes of user stack per fault, and fault durations or not.
    Trace {
        ring_bytes: u32,
        stack_depth: u32,
        stack_bytes: u32,
        durations: bool,
    },
    /// `demo top`'s counters.
    Top(TopCounting),
}

/// The bytes of user stack the programs copy per fault when `requested` are asked for: at most
/// [`demo_common::MAX_STACK_BYTES`], and a multiple of 8, the unit of the stack's words.
fn stack_bytes(requested: u32) -> u32 {
    requested.min(demo_common::MAX_STACK_BYTES as u32) & !7
}

/// Loads the embedded object, with the task layout of the kernel whose BTF is `btf` and the
/// cgroup scope `cgroup` if any, and starts its logger.
fn open_object(
    btf: &btf_rs::Btf,
    purpose: ObjectUse,
    cgroup: Option<&OwnedFd>,
) -> Result<(Ebpf, aya_log::EbpfLogger<&'static dyn log::Log>), ProbeError> {
    raise_memlock_limit();
    let layout = task_layout::of_kernel(btf)?;
    let mut loader = EbpfLoader::new();
    loader.override_global(TASK_LAYOUT_GLOBAL, &layout, true);
    let file_layout = file_layout::of_kernel(btf)?;
    loader.override_global(demo_common::FILE_LAYOUT_GLOBAL, &file_layout, true);
    let (stack_depth, stack_bytes, durations) = match purpose {
        ObjectUse::Trace {
            stack_depth,
            stack_bytes,
            durations,
            ..
        } => (stack_depth, stack_bytes, durations),
        ObjectUse::Top(_) => (0, 0, false),
    };
    loader.override_global(demo_common::STACK_DEPTH_GLOBAL, &stack_depth, true);
    loader.override_global(demo_common::STACK_BYTES_GLOBAL, &stack_bytes, true);
    // Off, the verifier drops the scope's check from every program.
    let scoped = u32::from(cgroup.is_some());
    loader.override_global(demo_common::CGROUP_SCOPED_GLOBAL, &scoped, true);
    let durations_flag = u32::from(durations);
    loader.override_global(demo_common::DURATIONS_GLOBAL, &durations_flag, true);
    if !durations {
        loader
            .map_max_entries(demo_common::OPEN_FAULTS_MAP, 1)
            .map_max_entries(demo_common::OFF_CPU_MAP, 1);
    }
    // demo top's own timing, with its maps shrunk when it is off.
    let top_durations = matches!(
        purpose,
        ObjectUse::Top(TopCounting::PerFault {
            durations: true,
            ..
        })
    );
    let top_durations_flag = u32::from(top_durations);
    loader.override_global(demo_common::TOP_DURATIONS_GLOBAL, &top_durations_flag, true);
    if !top_durations {
        loader
            .map_max_entries(demo_common::TOP_FAULT_STARTS_MAP, 1)
            .map_max_entries(demo_common::TOP_TIMES_MAP, 1);
    }
    match purpose {
        ObjectUse::Trace { ring_bytes, .. } => {
            loader
                .map_max_entries(EVENTS_MAP, ring_bytes)
                .map_max_entries(TOP_COUNTS_MAP, 1)
                .map_max_entries(TOP_EXITS_MAP, 1)
                .map_max_entries(PAGE_COUNTS_MAP, 1);
        }
        ObjectUse::Top(counting) => {
            loader
                .map_max_entries(EVENTS_MAP, procfs::page_size() as u32)
                .map_max_entries(demo_common::PROCESS_DROPS_MAP, 1);
            // The page map is preallocated; at full size the kernel takes tens of milliseconds
            // to set it up and free it, which a run without --pages need not pay.
            if !matches!(counting, TopCounting::PerFault { pages: true, .. }) {
                loader.map_max_entries(PAGE_COUNTS_MAP, 1);
            }
            if matches!(counting, TopCounting::KernelCounters { .. }) {
                loader.map_max_entries(TOP_COUNTS_MAP, 1);
            }
        }
    }
    let mut ebpf = loader
        .load(EBPF_OBJECT)
        .map_err(|error| ProbeError::Load(Box::new(error)))?;
    // Before any program is attached; until then a scoped program would find the slot empty,
    // which reports nothing.
    if let Some(cgroup) = cgroup {
        set_scope(&mut ebpf, cgroup)?;
    }
    // The logger must exist before the programs load, since they reference its map.
    let logger = aya_log::EbpfLogger::init(&mut ebpf).map_err(ProbeError::Logger)?;
    Ok((ebpf, logger))
}

/// Puts the cgroup directory `cgroup` in slot 0 of the scope map; the map holds a reference to
/// the cgroup from then on.
fn set_scope(ebpf: &mut Ebpf, cgroup: &OwnedFd) -> Result<(), ProbeError> {
    let map = ebpf
        .map_mut(demo_common::CGROUP_SCOPE_MAP)
        .ok_or_else(|| ProbeError::Missing(format!("map {}", demo_common::CGROUP_SCOPE_MAP)))?;
    let operation = "set the cgroup to trace in the scope map";
    let mut scope =
        CgroupArray::try_from(map).map_err(|source| ProbeError::Map { operation, source })?;
    scope
        .set(0, cgroup.as_raw_fd(), 0)
        .map_err(|source| ProbeError::Map { operation, source })
}

/// Loads the bench's floor object, whose programs count nothing and use no map.
fn open_floor_object() -> Result<Ebpf, ProbeError> {
    Ebpf::load(FLOOR_OBJECT).map_err(|error| ProbeError::Load(Box::new(error)))
}

/// How a tracepoint program attaches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Attach {
    /// Through tracefs, reading the fields of the record the tracepoint builds.
    Classic,
    /// As a raw tracepoint: the program takes the call site's arguments directly, without the
    /// record a classic tracepoint builds, which matters at one call per fault. The fault
    /// programs attach this way; their tracepoints were checked (they exist, with the
    /// documented fields) beforehand.
    Raw,
}

/// Loads each program and attaches it to its tracepoint, the way `attach` says.
fn attach_tracepoints(
    ebpf: &mut Ebpf,
    tracepoints: &[TracepointProgram],
    attach: Attach,
) -> Result<(), ProbeError> {
    for tracepoint in tracepoints {
        let (attached, target) = match attach {
            Attach::Classic => (
                loaded::<TracePoint>(ebpf, &tracepoint.program)?
                    .attach(&tracepoint.category, &tracepoint.name)
                    .map(drop),
                format!("tracepoint {}:{}", tracepoint.category, tracepoint.name),
            ),
            Attach::Raw => (
                loaded::<RawTracePoint>(ebpf, &tracepoint.program)?
                    .attach(&tracepoint.name)
                    .map(drop),
                format!("raw tracepoint {}", tracepoint.name),
            ),
        };
        attached.map_err(|source| ProbeError::Attach {
            program: tracepoint.program.clone(),
            target,
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// Loads program `name` of the expected type into the kernel and returns it for attaching.
fn loaded<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, ProbeError>
where
    P: 'a + ProgramLoad,
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let program: &mut P = program(ebpf, name)?;
    program
        .load_into_kernel()
        .map_err(|source| load_error(name, source))?;
    Ok(program)
}

/// Program `name` of the expected type, loaded or not.
fn program<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, ProbeError>
where
    P: 'a,
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| ProbeError::Missing(format!("program {name}")))?
        .try_into()
        .map_err(|source| load_error(name, source))
}

fn load_error(program: &str, source: ProgramError) -> ProbeError {
    ProbeError::LoadProgram {
        program: program.to_owned(),
        source: Box::new(source),
    }
}

/// The `load` method every program type has, under one name.
trait ProgramLoad {
    fn load_into_kernel(&mut self) -> Result<(), ProgramError>;
}

/// Each program type has its own inherent `load`; this forwards to it.
macro_rules! program_load {
    ($($program:ty),+) => {
        $(impl ProgramLoad for $program {
            fn load_into_kernel(&mut self) -> Result<(), ProgramError> {
                self.load()
            }
        })+
    };
}

program_load!(TracePoint, RawTracePoint, UProbe, PerfEvent);

fn check_formats(tracing: &Path, tracepoints: &[TracepointProgram]) -> Result<(), TracefsError> {
    for tracepoint in tracepoints {
        tracefs::check_fields(
            tracing,
            &tracepoint.category,
            &tracepoint.name,
            &tracepoint.fields,
        )?;
    }
    Ok(())
}

/// Attaches each program to its software perf event on every CPU, sampling every event.
/// Per-CPU events see every process, so targets added later (children, other pids) are covered;
/// the programs filter by the target map.
fn attach_per_cpu(
    ebpf: &mut Ebpf,
    events: &[(&'static str, SoftwareEvent)],
) -> Result<(), ProbeError> {
    let cpus = aya::util::online_cpus().map_err(|(_, error)| ProbeError::OnlineCpus(error))?;
    for &(name, event) in events {
        let program: &mut PerfEvent = loaded(ebpf, name)?;
        for &cpu in &cpus {
            program
                .attach(
                    PerfEventConfig::Software(event),
                    PerfEventScope::AllProcessesOneCpu { cpu },
                    SamplePolicy::Period(1),
                    false,
                )
                .map_err(|source| ProbeError::Attach {
                    program: name.to_owned(),
                    target: format!("software perf event {event:?} on CPU {cpu}"),
                    source: Box::new(source),
                })?;
        }
    }
    Ok(())
}

/// True when a map operation failed only because the key was not there.
fn is_missing_key(error: &MapError) -> bool {
    match error {
        MapError::KeyNotFound => true,
        MapError::SyscallError(syscall) => syscall.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

/// The value of a map operation on one key, `None` when the key was not there.
fn unless_missing<T>(
    result: Result<T, MapError>,
    operation: &'static str,
) -> Result<Option<T>, ProbeError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if is_missing_key(&error) => Ok(None),
        Err(source) => Err(ProbeError::Map { operation, source }),
    }
}

fn take_map<T>(
    ebpf: &mut Ebpf,
    name: &'static str,
    operation: &'static str,
) -> Result<T, ProbeError>
where
    T: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf
        .take_map(name)
        .ok_or_else(|| ProbeError::Missing(format!("map {name}")))?;
    T::try_from(map).map_err(|source| ProbeError::Map { operation, source })
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones charge the memory cgroup,
/// so a failure here only matters on old kernels and is logged, never fatal.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads the struct we pass and has no other effect on memory.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        log::debug!(
            "raise RLIMIT_MEMLOCK: {} (harmless on kernels since 5.11)",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod object_tests {
    use super::*;
    use demo_common::{TOP_EMPTY_KERNEL_PROGRAM, TOP_EMPTY_USER_PROGRAM, TOP_FLUSH_PROGRAM};

    /// The names come from the objects themselves: a program or map added later is in the list,
    /// and the kernel's 15-byte limit is applied as it is to loaded programs.
    #[test]
    fn the_object_names_its_programs_and_maps_as_the_kernel_does() {
        let names = object_names().unwrap();
        for program in [
            "page_fault_user",
            "top_flush",
            "task_newtask",
            "top_empty_user",
        ] {
            assert!(names.programs.iter().any(|p| p == program), "{names:?}");
        }
        for map in ["TARGETS", "EVENTS", "DROPS", "TOP_COUNTS", "AYA_LOGS"] {
            assert!(names.maps.iter().any(|m| m == map), "{names:?}");
        }
    }

    /// The programs reserve the record at the size the loader sets, which they take as given:
    /// the loader hands them only whole words, and never more than the limit.
    #[test]
    fn the_stack_copy_is_whole_words_up_to_the_limit() {
        for (requested, copied) in [
            (0, 0),
            (7, 0),
            (8, 8),
            (8199, 8192),
            (65536, 65536),
            (65544, 65536),
            (u32::MAX, 65536),
        ] {
            assert_eq!(stack_bytes(requested), copied, "{requested}");
        }
    }

    /// The product's object has every program the loader attaches and not the bench's empty
    /// ones, which are in the floor object alone.
    #[test]
    fn the_bench_programs_are_in_their_own_object() {
        let product = names_in(EBPF_OBJECT).unwrap();
        let mut expected = vec![
            PAGE_FAULT_USER_PROGRAM.to_owned(),
            PAGE_FAULT_KERNEL_PROGRAM.to_owned(),
            PERF_FAULT_PROGRAM.to_owned(),
            TOP_FLUSH_PROGRAM.to_owned(),
        ];
        expected.extend(tracepoint_programs().into_iter().map(|t| t.program));
        for program in expected {
            let kernel_name = &program[..program.len().min(KERNEL_NAME_BYTES)];
            assert!(
                product.programs.iter().any(|p| p == kernel_name),
                "{program}: {product:?}"
            );
        }
        assert!(
            !product.programs.iter().any(|p| p.starts_with("top_empty")),
            "{product:?}"
        );
        let mut floor = names_in(FLOOR_OBJECT).unwrap();
        floor.programs.sort();
        assert_eq!(
            floor,
            ObjectNames {
                programs: [TOP_EMPTY_KERNEL_PROGRAM, TOP_EMPTY_USER_PROGRAM]
                    .map(|p| p[..p.len().min(KERNEL_NAME_BYTES)].to_owned())
                    .to_vec(),
                maps: Vec::new(),
            }
        );
    }
}
