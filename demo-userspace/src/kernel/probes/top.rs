//! The programs and maps of `demo top`: per-process counts in the kernel, no event per fault.

use std::{collections::HashMap as StdHashMap, os::fd::OwnedFd, sync::Arc};

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, PerCpuArray, PerCpuHashMap, PerCpuValues},
    programs::{
        ProgramError, RawTracePoint, RawTracePointRunOptions, TestRun as _,
        perf_event::SoftwareEvent,
    },
};
use demo_common::{
    ExitCounts, FaultCounters, PAGE_COUNTS_MAP, PageCounts, PageKey, TOP_CONFIG_MAP,
    TOP_COUNTERS_MAP, TOP_COUNTS_MAP, TOP_EMPTY_KERNEL_PROGRAM, TOP_EMPTY_USER_PROGRAM,
    TOP_EXIT_PROGRAM, TOP_EXITS_MAP, TOP_FAULT_DONE_MAJOR_PROGRAM, TOP_FAULT_DONE_MINOR_PROGRAM,
    TOP_FAULT_KERNEL_PROGRAM, TOP_FAULT_USER_PROGRAM, TOP_FLUSH_PROGRAM, TOP_TIMES_MAP, TopCounts,
    TopTimes, top_counters, top_flush_result,
};

use super::ProgramRuns;
use super::{
    Attach, ObjectUse, ProbeError, attach_per_cpu, attach_tracepoints, check_fault_args,
    check_formats, fault_tracepoint_programs, loaded, open_floor_object, open_object,
    process_exit_program, take_map, unless_missing,
};
use crate::kernel::{task_layout, tracefs};

/// What `demo top` counts in the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopCounting {
    /// Every fault, by programs on the fault tracepoints (read, write or exec; user or kernel
    /// mode); with `pages`, one process's faults per page too; with `durations`, each
    /// completed fault's time, by programs on the fault completion events of every CPU.
    PerFault { pages: bool, durations: bool },
    /// No program per fault: the kernel's own per-process counters, read from /proc, and kept
    /// by the exit program for processes that exit. `empty_fault_programs` attaches programs
    /// that count nothing to the fault tracepoints, from the bench's own object, which measures
    /// what the hook alone costs.
    KernelCounters { empty_fault_programs: bool },
}

/// How often [`TopProbes::flush_recent`] runs the flush on a CPU whose counts stay busy.
pub(super) const FLUSH_ATTEMPTS: u32 = 1000;

/// The programs and maps of `demo top`: per-process counters, no per-fault events.
pub struct TopProbes {
    // Owns the programs and their links: dropping it detaches them.
    ebpf: Ebpf,
    /// The bench's empty fault programs and their links, with `empty_fault_programs`.
    floor: Option<Ebpf>,
    _logger: aya_log::EbpfLogger<&'static dyn log::Log>,
    counts: PerCpuHashMap<MapData, u32, TopCounts>,
    pages: PerCpuHashMap<MapData, PageKey, PageCounts>,
    config: Array<MapData, u32>,
    counters: PerCpuArray<MapData, u64>,
    exits: HashMap<MapData, u32, ExitCounts>,
    /// With durations: each process's timed faults.
    times: Option<PerCpuHashMap<MapData, u32, TopTimes>>,
}

/// One process's counts, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    pub counts: TopCounts,
    /// The counts split read/write/exec and user/kernel mode are known (counted per fault);
    /// with the kernel's counters only, `counts` has the total alone.
    pub split: bool,
    pub comm: String,
    /// The kernel's own minor and major fault counts of the process since demo top started,
    /// when known.
    pub accounted: Option<FaultCounters>,
    /// With durations, its completed faults timed so far, summed over CPUs.
    pub times: Option<TopTimes>,
}

impl TopProbes {
    /// Attaches the counting programs to the fault tracepoints, and the program that keeps the
    /// fault counters of exiting processes.
    /// With [`TopCounting::KernelCounters`], only the exit program. With `cgroup` (a cgroup v2
    /// directory, opened `O_RDONLY | O_DIRECTORY`), the programs count and keep only the
    /// processes in it or below it.
    pub fn load(
        fault_category: &str,
        counting: TopCounting,
        cgroup: Option<Arc<OwnedFd>>,
    ) -> Result<Self, ProbeError> {
        let tracing = tracefs::ensure_mounted()?;
        let fault_programs = match counting {
            TopCounting::PerFault { .. } => {
                Some([TOP_FAULT_USER_PROGRAM, TOP_FAULT_KERNEL_PROGRAM])
            }
            TopCounting::KernelCounters {
                empty_fault_programs: true,
            } => Some([TOP_EMPTY_USER_PROGRAM, TOP_EMPTY_KERNEL_PROGRAM]),
            TopCounting::KernelCounters {
                empty_fault_programs: false,
            } => None,
        };
        let mut tracepoints = Vec::new();
        if let Some(programs) = fault_programs {
            tracepoints = fault_tracepoint_programs(fault_category);
            for (tracepoint, program) in tracepoints.iter_mut().zip(programs) {
                tracepoint.program = program.to_owned();
            }
        }
        // The raw tracepoints need no format, but the tracepoints must exist.
        check_formats(&tracing, &tracepoints)?;
        let exit = [process_exit_program(TOP_EXIT_PROGRAM)];
        check_formats(&tracing, &exit)?;
        let btf = task_layout::running_kernel_btf()?;
        let counts_faults = matches!(counting, TopCounting::PerFault { .. });
        // The empty programs read no argument; the counting ones read the address and the
        // error code.
        if counts_faults {
            check_fault_args(&btf, &tracepoints)?;
        }
        let (mut ebpf, logger) = open_object(&btf, ObjectUse::Top(counting), cgroup.as_deref())?;
        let mut floor = None;
        let durations = matches!(
            counting,
            TopCounting::PerFault {
                durations: true,
                ..
            }
        );
        if durations {
            // Before the starts: a start with no completion yet is overwritten by the next.
            attach_per_cpu(
                &mut ebpf,
                &[
                    (TOP_FAULT_DONE_MINOR_PROGRAM, SoftwareEvent::PageFaultsMin),
                    (TOP_FAULT_DONE_MAJOR_PROGRAM, SoftwareEvent::PageFaultsMaj),
                ],
            )?;
        }
        if counts_faults {
            attach_tracepoints(&mut ebpf, &tracepoints, Attach::Raw)?;
            loaded::<RawTracePoint>(&mut ebpf, TOP_FLUSH_PROGRAM)?;
        } else if !tracepoints.is_empty() {
            attach_tracepoints(
                floor.insert(open_floor_object()?),
                &tracepoints,
                Attach::Raw,
            )?;
        }
        attach_tracepoints(&mut ebpf, &exit, Attach::Classic)?;
        Ok(Self {
            floor,
            exits: take_map(&mut ebpf, TOP_EXITS_MAP, "open the exit counters")?,
            counts: take_map(&mut ebpf, TOP_COUNTS_MAP, "open the process counters")?,
            pages: take_map(&mut ebpf, PAGE_COUNTS_MAP, "open the page counters")?,
            config: take_map(&mut ebpf, TOP_CONFIG_MAP, "open the top settings")?,
            counters: take_map(&mut ebpf, TOP_COUNTERS_MAP, "open the drop counters")?,
            times: if durations {
                Some(take_map(
                    &mut ebpf,
                    TOP_TIMES_MAP,
                    "open the fault durations",
                )?)
            } else {
                None
            },
            ebpf,
            _logger: logger,
        })
    }

    /// Adds every CPU's recent counts into the process map, so that reading it is exact: runs
    /// the flush program on each online CPU, again while it finds a counting program busy there
    /// (which lasts nanoseconds).
    pub fn flush_recent(&self) -> Result<(), ProbeError> {
        let program: &RawTracePoint = self
            .ebpf
            .program(TOP_FLUSH_PROGRAM)
            .and_then(|program| program.try_into().ok())
            .ok_or_else(|| ProbeError::Missing(format!("program {TOP_FLUSH_PROGRAM}")))?;
        let cpus = aya::util::online_cpus().map_err(|(_, error)| ProbeError::OnlineCpus(error))?;
        for cpu in cpus {
            let mut attempts = 0;
            loop {
                let mut options = RawTracePointRunOptions::new();
                options.cpu = Some(cpu);
                let run = match program.test_run(options) {
                    Ok(run) => run,
                    // The CPU went offline since the list was read; its counts wait there
                    // until it is back.
                    Err(ProgramError::SyscallError(error))
                        if error.io_error.raw_os_error() == Some(libc::ENXIO) =>
                    {
                        break;
                    }
                    Err(source) => {
                        return Err(ProbeError::Flush {
                            cpu,
                            source: Box::new(source),
                        });
                    }
                };
                if run.return_value != top_flush_result::BUSY {
                    break;
                }
                attempts += 1;
                if attempts == FLUSH_ATTEMPTS {
                    return Err(ProbeError::FlushBusy { cpu });
                }
                std::thread::yield_now();
            }
        }
        Ok(())
    }

    /// Counts the faults of `pid` per page from now on.
    pub fn watch_pages(&mut self, pid: u32) -> Result<(), ProbeError> {
        self.config
            .set(demo_common::top_config::PAGES_PID, pid, 0)
            .map_err(|source| ProbeError::Map {
                operation: "set the process to count pages of",
                source,
            })
    }

    /// Every counted process with its counts summed over CPUs, flushed first.
    pub fn processes(&self) -> Result<Vec<(u32, ProcessCounts)>, ProbeError> {
        self.flush_recent()?;
        let map_error = |source| ProbeError::Map {
            operation: "read the process counters",
            source,
        };
        // Read after the counts: a fault timed between the two reads is one the counts hold.
        let mut processes: Vec<(u32, ProcessCounts)> = self
            .counts
            .iter()
            .map(|entry| {
                let (pid, per_cpu) = entry.map_err(map_error)?;
                Ok((pid, sum_counts(&per_cpu)))
            })
            .collect::<Result<_, ProbeError>>()?;
        if let Some(times) = &self.times {
            let mut timed: StdHashMap<u32, TopTimes> = times
                .iter()
                .map(|entry| {
                    let (pid, per_cpu) = entry.map_err(|source| ProbeError::Map {
                        operation: "read the fault durations",
                        source,
                    })?;
                    Ok((pid, sum_times(&per_cpu)))
                })
                .collect::<Result<_, ProbeError>>()?;
            for (pid, process) in &mut processes {
                process.times = Some(timed.remove(pid).unwrap_or_default());
            }
        }
        Ok(processes)
    }

    /// The counts of one process summed over CPUs as of the last flush; `None` when it has none.
    pub fn process(&self, pid: u32) -> Result<Option<ProcessCounts>, ProbeError> {
        let per_cpu = unless_missing(self.counts.get(&pid, 0), "read the process counters")?;
        let Some(mut process) = per_cpu.map(|per_cpu| sum_counts(&per_cpu)) else {
            return Ok(None);
        };
        if let Some(times) = &self.times {
            let per_cpu = unless_missing(times.get(&pid, 0), "read the fault durations")?;
            process.times = Some(
                per_cpu
                    .map(|per_cpu| sum_times(&per_cpu))
                    .unwrap_or_default(),
            );
        }
        Ok(Some(process))
    }

    /// Forgets a process (after it exited and was reported).
    pub fn forget(&mut self, pid: u32) -> Result<(), ProbeError> {
        if let Some(times) = &mut self.times {
            unless_missing(times.remove(&pid), "remove an exited process's durations")?;
        }
        unless_missing(self.counts.remove(&pid), "remove an exited process").map(drop)
    }

    /// Takes the final fault counters and commands of the processes that exited since the last
    /// call.
    pub fn take_exits(&mut self) -> Result<Vec<(u32, ExitCounts)>, ProbeError> {
        let exits: Vec<(u32, ExitCounts)> =
            self.exits
                .iter()
                .collect::<Result<_, _>>()
                .map_err(|source| ProbeError::Map {
                    operation: "read the exit counters",
                    source,
                })?;
        for (pid, _) in &exits {
            unless_missing(self.exits.remove(pid), "clear the exit counters")?;
        }
        Ok(exits)
    }

    /// The per-page counts of `pid`, summed over CPUs.
    pub fn pages_of(&self, pid: u32) -> Result<Vec<PageCount>, ProbeError> {
        let map_error = |source| ProbeError::Map {
            operation: "read the page counters",
            source,
        };
        let mut pages = Vec::new();
        for entry in self.pages.iter() {
            let (key, per_cpu) = entry.map_err(map_error)?;
            if key.tgid == pid {
                // The instruction from the CPU that faulted there most: one that faulted there.
                let busiest = per_cpu.iter().max_by_key(|counts| counts.faults);
                pages.push(PageCount {
                    page: key.page,
                    faults: per_cpu.iter().map(|counts| counts.faults).sum(),
                    ip: busiest.map(|counts| counts.ip).filter(|&ip| ip != 0),
                });
            }
        }
        Ok(pages)
    }

    /// What went uncounted so far, by reason, and the pages evicted from the page map (entered
    /// minus still there).
    pub fn drops(&self) -> Result<TopDrops, ProbeError> {
        let counter = |index| -> Result<u64, ProbeError> {
            Ok(self
                .counters
                .get(&index, 0)
                .map_err(|source| ProbeError::Map {
                    operation: "read the drop counters",
                    source,
                })?
                .iter()
                .sum())
        };
        let inserted = counter(top_counters::PAGES_INSERTED)?;
        let present = self.pages.keys().filter(Result::is_ok).count() as u64;
        Ok(TopDrops {
            process_map_full: counter(top_counters::PROCESSES_DROPPED)?,
            nested: counter(top_counters::NESTED_DROPPED)?,
            exit_map_full: counter(top_counters::EXITS_DROPPED)?,
            times: counter(top_counters::TIMES_DROPPED)?,
            pages_evicted: inserted.saturating_sub(present),
        })
    }

    /// What each program of demo top that ran cost in the kernel so far, when `bpf_stats` is on.
    pub fn program_runs(&self) -> Option<Vec<ProgramRuns>> {
        let objects: Vec<&Ebpf> = std::iter::once(&self.ebpf).chain(&self.floor).collect();
        super::run_stats::program_runs(&objects)
    }
}

/// One page of the process `--pages` watches: its faults summed over CPUs, and an instruction
/// that faulted there last (on the CPU that faulted there most), when known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCount {
    pub page: u64,
    pub faults: u64,
    pub ip: Option<u64>,
}

/// What `demo top`'s programs could not count, since they were loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopDrops {
    /// Faults of processes that found the process map full.
    pub process_map_full: u64,
    /// Faults that began while another counting program changed the same CPU's counts.
    pub nested: u64,
    /// Exits whose final counters found the exit map full.
    pub exit_map_full: u64,
    /// With durations, completed faults whose time went uncounted (a full map, or a completion
    /// inside another counting program).
    pub times: u64,
    /// Pages evicted from the `--pages` map (not a loss of faults: their counts are gone).
    pub pages_evicted: u64,
}

impl TopDrops {
    /// Faults that went uncounted.
    pub fn faults(&self) -> u64 {
        self.process_map_full + self.nested
    }
}

fn sum_counts(per_cpu: &PerCpuValues<TopCounts>) -> ProcessCounts {
    let mut total = TopCounts::default();
    for counts in per_cpu.iter() {
        total.faults += counts.faults;
        for (total, counts) in total.by_kind.iter_mut().zip(&counts.by_kind) {
            for (total, count) in total.iter_mut().zip(counts) {
                *total += count;
            }
        }
        // Each CPU that saw the process holds a copy of its command; any non-empty one will do.
        if total.comm[0] == 0 {
            total.comm = counts.comm;
        }
    }
    ProcessCounts {
        comm: command_name(&total.comm),
        counts: total,
        split: true,
        accounted: None,
        times: None,
    }
}

fn sum_times(per_cpu: &PerCpuValues<TopTimes>) -> TopTimes {
    let mut total = TopTimes::default();
    for times in per_cpu.iter() {
        total.add(times);
    }
    total
}

/// A command the kernel captured (NUL-padded `comm`), as text.
pub fn command_name(comm: &[u8; 16]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}
