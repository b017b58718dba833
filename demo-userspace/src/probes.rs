//! Loads the embedded eBPF object, attaches its programs, and owns the maps they share with us.
//! Dropping [`Probes`] detaches every program and closes every map.

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{HashMap, MapData, MapError, PerCpuArray, RingBuf},
    programs::{
        PerfEvent, ProgramError, TracePoint,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
use demo_common::{
    DROPS_MAP, EVENTS_MAP, MAJOR_COMPLETION_PROGRAM, MINOR_COMPLETION_PROGRAM,
    PAGE_FAULT_KERNEL_PROGRAM, PAGE_FAULT_USER_PROGRAM, SIGNAL_PROGRAM, SYSCALL_TRACEPOINTS,
    TARGETS_MAP, fault_tracepoint, signal_tracepoint, syscall_tracepoint,
};

use crate::{
    syscalls,
    tracefs::{self, TracefsError},
};

/// The eBPF object built by build.rs for the BPF target.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/demo"));

/// One tracepoint program: where it attaches and the fields (name, offset) it reads.
struct TracepointProgram {
    program: String,
    category: &'static str,
    name: String,
    fields: Vec<(&'static str, usize)>,
}

/// Every tracepoint program of the object, with what it assumes of its tracepoint's format.
fn tracepoint_programs() -> Vec<TracepointProgram> {
    let fault_fields = vec![
        ("address", fault_tracepoint::ADDRESS),
        ("ip", fault_tracepoint::IP),
        ("error_code", fault_tracepoint::ERROR_CODE),
    ];
    let mut programs = vec![
        TracepointProgram {
            program: PAGE_FAULT_USER_PROGRAM.to_owned(),
            category: "exceptions",
            name: "page_fault_user".to_owned(),
            fields: fault_fields.clone(),
        },
        TracepointProgram {
            program: PAGE_FAULT_KERNEL_PROGRAM.to_owned(),
            category: "exceptions",
            name: "page_fault_kernel".to_owned(),
            fields: fault_fields,
        },
        TracepointProgram {
            program: SIGNAL_PROGRAM.to_owned(),
            category: "signal",
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
            category: "syscalls",
            name: enter,
            fields: syscalls::arg_names(syscall)
                .iter()
                .zip((syscall_tracepoint::FIRST_ARG..).step_by(8))
                .map(|(&name, offset)| (name, offset))
                .collect(),
        });
        programs.push(TracepointProgram {
            program: exit.clone(),
            category: "syscalls",
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
    #[error("{operation}: {source}")]
    Map {
        operation: &'static str,
        source: MapError,
    },
}

/// Settings for loading the programs.
#[derive(Clone, Copy, Debug)]
pub struct ProbeOptions {
    /// Byte size of the event ring buffer (a power of two, at least one page).
    pub ring_bytes: u32,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            ring_bytes: demo_common::DEFAULT_RING_BYTES,
        }
    }
}

/// The loaded and attached programs plus typed handles on their maps.
pub struct Probes {
    // Owns the programs and their links: dropping it detaches them.
    _ebpf: Ebpf,
    logger: aya_log::EbpfLogger<&'static dyn log::Log>,
    targets: HashMap<MapData, u32, u8>,
    drops: PerCpuArray<MapData, u64>,
    events: Option<RingBuf<MapData>>,
}

impl Probes {
    /// Mounts tracefs if needed, checks the tracepoints, loads the object and attaches the programs.
    pub fn load(options: ProbeOptions) -> Result<Self, ProbeError> {
        let tracing = tracefs::ensure_mounted()?;
        let tracepoints = tracepoint_programs();
        for tracepoint in &tracepoints {
            tracefs::check_fields(
                &tracing,
                tracepoint.category,
                &tracepoint.name,
                &tracepoint.fields,
            )?;
        }
        raise_memlock_limit();

        let mut ebpf = EbpfLoader::new()
            .map_max_entries(EVENTS_MAP, options.ring_bytes)
            .load(EBPF_OBJECT)
            .map_err(|error| ProbeError::Load(Box::new(error)))?;
        // The logger must exist before the programs load, since they reference its map.
        let logger = aya_log::EbpfLogger::init(&mut ebpf).map_err(ProbeError::Logger)?;

        for tracepoint in &tracepoints {
            let program: &mut TracePoint = loaded(&mut ebpf, &tracepoint.program)?;
            program
                .attach(tracepoint.category, &tracepoint.name)
                .map_err(|source| ProbeError::Attach {
                    program: tracepoint.program.clone(),
                    target: format!("tracepoint {}:{}", tracepoint.category, tracepoint.name),
                    source: Box::new(source),
                })?;
        }
        attach_completion_events(&mut ebpf)?;

        let targets = take_map(&mut ebpf, TARGETS_MAP, "open the target map")?;
        let drops = take_map(&mut ebpf, DROPS_MAP, "open the drop counter")?;
        let events = take_map(&mut ebpf, EVENTS_MAP, "open the event ring buffer")?;
        Ok(Self {
            _ebpf: ebpf,
            logger,
            targets,
            drops,
            events: Some(events),
        })
    }

    /// Starts reporting faults of process `pid`.
    pub fn add_target(&mut self, pid: u32) -> Result<(), ProbeError> {
        self.targets
            .insert(pid, 1, 0)
            .map_err(|source| ProbeError::Map {
                operation: "add a target process",
                source,
            })
    }

    /// Stops reporting faults of process `pid`.
    pub fn remove_target(&mut self, pid: u32) -> Result<(), ProbeError> {
        match self.targets.remove(&pid) {
            Ok(()) | Err(MapError::KeyNotFound) => Ok(()),
            Err(source) => Err(ProbeError::Map {
                operation: "remove a target process",
                source,
            }),
        }
    }

    /// Hands the event ring buffer to its reader; `None` after the first call.
    pub fn take_events(&mut self) -> Option<RingBuf<MapData>> {
        self.events.take()
    }

    /// Fault records the kernel side could not reserve room for, summed over CPUs.
    pub fn dropped(&self) -> Result<u64, ProbeError> {
        let per_cpu = self.drops.get(&0, 0).map_err(|source| ProbeError::Map {
            operation: "read the drop counter",
            source,
        })?;
        Ok(per_cpu.iter().sum())
    }

    /// Forwards pending aya-log messages of the programs to the `log` crate.
    pub fn flush_log(&mut self) {
        self.logger.flush();
    }
}

/// Loads program `name` of the expected type into the kernel and returns it for attaching.
fn loaded<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut P, ProbeError>
where
    P: 'a + ProgramLoad,
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    let load_error = |source| ProbeError::LoadProgram {
        program: name.to_owned(),
        source: Box::new(source),
    };
    let program: &mut P = ebpf
        .program_mut(name)
        .ok_or_else(|| ProbeError::Missing(format!("program {name}")))?
        .try_into()
        .map_err(load_error)?;
    program.load_into_kernel().map_err(load_error)?;
    Ok(program)
}

/// The `load` method every program type has, under one name.
trait ProgramLoad {
    fn load_into_kernel(&mut self) -> Result<(), ProgramError>;
}

impl ProgramLoad for TracePoint {
    fn load_into_kernel(&mut self) -> Result<(), ProgramError> {
        self.load()
    }
}

impl ProgramLoad for PerfEvent {
    fn load_into_kernel(&mut self) -> Result<(), ProgramError> {
        self.load()
    }
}

/// Attaches the minor and major completion programs to the page-fault software perf events of
/// every CPU, sampling every event. Per-CPU events see every process, so targets added later
/// (children, other pids) are covered; the programs filter by the target map.
fn attach_completion_events(ebpf: &mut Ebpf) -> Result<(), ProbeError> {
    let cpus = aya::util::online_cpus().map_err(|(_, error)| ProbeError::OnlineCpus(error))?;
    for (name, event) in [
        (MINOR_COMPLETION_PROGRAM, SoftwareEvent::PageFaultsMin),
        (MAJOR_COMPLETION_PROGRAM, SoftwareEvent::PageFaultsMaj),
    ] {
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
