//! Checks of a process by its pid, read from /proc: whether it is there, and whether it has user
//! memory to fault on.

use procfs::process::{Process, StatFlags};

/// A pid that names no process demo can watch; the user's input rather than demo's fault.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("no process has pid {0}; check it with `ps -p {0}`")]
    NoSuchPid(u32),
    #[error(
        "process {pid} ({name}) is a kernel thread: it has no user memory, so it takes no page faults to trace"
    )]
    KernelThread { pid: u32, name: String },
}

/// True while `pid` is a live process (not a zombie).
pub fn exists(pid: u32) -> bool {
    Process::new(pid as i32).is_ok_and(|process| process.is_alive())
}

/// Checks that `pid` is a live process, or says there is none.
pub fn check_exists(pid: u32) -> Result<(), ProcessError> {
    if exists(pid) {
        Ok(())
    } else {
        Err(ProcessError::NoSuchPid(pid))
    }
}

/// Checks that `pid` is a live process with user memory.
pub fn check_user_process(pid: u32) -> Result<(), ProcessError> {
    let stat = Process::new(pid as i32)
        .and_then(|process| process.stat())
        .map_err(|_| ProcessError::NoSuchPid(pid))?;
    if stat.state == 'Z' || stat.state == 'X' {
        return Err(ProcessError::NoSuchPid(pid));
    }
    if stat
        .flags()
        .is_ok_and(|flags| flags.contains(StatFlags::PF_KTHREAD))
    {
        return Err(ProcessError::KernelThread {
            pid,
            name: stat.comm,
        });
    }
    Ok(())
}

/// For a child between fork and exec: asks the kernel to kill it when demo dies, then checks
/// that demo did not die before the request took hold (it would then never fire). Makes only
/// async-signal-safe calls. False when the child must not go on.
///
/// # Safety
/// Call it only in a freshly forked child, before exec, with `parent` read before the fork.
pub unsafe fn tie_to_parent(parent: libc::pid_t) -> bool {
    // SAFETY: prctl and getppid are async-signal-safe and touch no memory.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 && libc::getppid() == parent }
}

/// CLOCK_MONOTONIC now, the clock of the records' timestamps (`bpf_ktime_get_ns`).
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
    })
}
