//! Loads the embedded eBPF object, attaches its programs, and owns the maps they share with us.
//! Dropping [`Probes`] detaches every program and closes every map.

use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{HashMap, MapData, MapError, PerCpuArray, RingBuf},
    programs::{ProgramError, TracePoint},
};
use demo_common::{
    DROPS_MAP, EVENTS_MAP, PAGE_FAULT_KERNEL_PROGRAM, PAGE_FAULT_USER_PROGRAM, TARGETS_MAP,
    fault_tracepoint,
};

use crate::tracefs::{self, TracefsError};

/// The eBPF object built by build.rs for the BPF target.
static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/demo"));

/// The tracepoints the fault programs attach to, with the program for each.
const FAULT_TRACEPOINTS: [(&str, &str, &str); 2] = [
    (PAGE_FAULT_USER_PROGRAM, "exceptions", "page_fault_user"),
    (PAGE_FAULT_KERNEL_PROGRAM, "exceptions", "page_fault_kernel"),
];

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
    Missing(&'static str),
    #[error("load program {program}: {source}")]
    LoadProgram {
        program: &'static str,
        source: Box<ProgramError>,
    },
    #[error("attach program {program} to tracepoint {category}:{name}: {source}")]
    Attach {
        program: &'static str,
        category: &'static str,
        name: &'static str,
        source: Box<ProgramError>,
    },
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
        for (_, category, name) in FAULT_TRACEPOINTS {
            tracefs::check_fields(
                &tracing,
                category,
                name,
                &[
                    ("address", fault_tracepoint::ADDRESS),
                    ("ip", fault_tracepoint::IP),
                    ("error_code", fault_tracepoint::ERROR_CODE),
                ],
            )?;
        }
        raise_memlock_limit();

        let mut ebpf = EbpfLoader::new()
            .map_max_entries(EVENTS_MAP, options.ring_bytes)
            .load(EBPF_OBJECT)
            .map_err(|error| ProbeError::Load(Box::new(error)))?;
        // The logger must exist before the programs load, since they reference its map.
        let logger = aya_log::EbpfLogger::init(&mut ebpf).map_err(ProbeError::Logger)?;

        for (program, category, name) in FAULT_TRACEPOINTS {
            let tracepoint: &mut TracePoint = ebpf
                .program_mut(program)
                .ok_or(ProbeError::Missing(program))?
                .try_into()
                .map_err(|source| ProbeError::LoadProgram {
                    program,
                    source: Box::new(source),
                })?;
            tracepoint
                .load()
                .map_err(|source| ProbeError::LoadProgram {
                    program,
                    source: Box::new(source),
                })?;
            tracepoint
                .attach(category, name)
                .map_err(|source| ProbeError::Attach {
                    program,
                    category,
                    name,
                    source: Box::new(source),
                })?;
        }

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

fn take_map<T>(
    ebpf: &mut Ebpf,
    name: &'static str,
    operation: &'static str,
) -> Result<T, ProbeError>
where
    T: TryFrom<aya::maps::Map, Error = MapError>,
{
    let map = ebpf.take_map(name).ok_or(ProbeError::Missing(name))?;
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
