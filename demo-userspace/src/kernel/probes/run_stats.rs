//! What the programs cost in the kernel: run count and run time per program, which the kernel
//! keeps while `kernel.bpf_stats_enabled` is 1 and shows in each program fd's fdinfo.

use std::os::fd::{AsFd as _, AsRawFd as _};

use aya::Ebpf;

/// One program's runs and the time they took, since it was loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramRuns {
    pub program: String,
    pub runs: u64,
    pub run_time_ns: u64,
}

impl ProgramRuns {
    /// Nanoseconds per run, when it ran.
    pub fn ns_per_run(&self) -> Option<f64> {
        (self.runs > 0).then(|| self.run_time_ns as f64 / self.runs as f64)
    }
}

/// True when the kernel counts program run time (`sysctl kernel.bpf_stats_enabled=1`).
fn stats_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").is_ok_and(|v| v.trim() == "1")
}

/// The runs of every loaded program of `objects` that ran, or `None` when the kernel does not
/// count them.
pub fn program_runs(objects: &[&Ebpf]) -> Option<Vec<ProgramRuns>> {
    if !stats_enabled() {
        return None;
    }
    let mut runs: Vec<ProgramRuns> = objects
        .iter()
        .flat_map(|ebpf| ebpf.programs())
        .filter_map(|(name, program)| {
            let fd = program.fd().ok()?.as_fd().as_raw_fd();
            let fdinfo = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
            let (runs, run_time_ns) = parse_fdinfo(&fdinfo)?;
            (runs > 0).then(|| ProgramRuns {
                program: name.to_owned(),
                runs,
                run_time_ns,
            })
        })
        .collect();
    runs.sort_by(|a, b| a.program.cmp(&b.program));
    Some(runs)
}

/// `run_cnt` and `run_time_ns` of a program fd's fdinfo.
fn parse_fdinfo(fdinfo: &str) -> Option<(u64, u64)> {
    let field = |key: &str| {
        fdinfo.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            (name.trim() == key).then(|| value.trim().parse::<u64>().ok())?
        })
    };
    Some((field("run_cnt")?, field("run_time_ns")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_runs_and_time_from_fdinfo() {
        let fdinfo = "pos:\t0\nflags:\t02000002\nprog_type:\t17\nprog_jited:\t1\nprog_tag:\tab\nmemlock:\t4096\nprog_id:\t91\nrun_time_ns:\t121000\nrun_cnt:\t1000\nrecursion_misses:\t0\n";
        assert_eq!(parse_fdinfo(fdinfo), Some((1000, 121_000)));
        assert_eq!(parse_fdinfo("pos:\t0\n"), None);
        let runs = ProgramRuns {
            program: "page_fault_user".to_owned(),
            runs: 1000,
            run_time_ns: 121_000,
        };
        assert_eq!(runs.ns_per_run(), Some(121.0));
    }
}
