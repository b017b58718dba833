//! Nothing a traced command starts outlives the trace: demo is the subreaper of what it starts,
//! so the command's orphans become demo's children instead of init's, and when the trace ends
//! the command and every process descended from it are killed and reaped.

use std::{
    collections::HashMap,
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    time::{Duration, Instant},
};

use nix::{
    sys::{
        signal::{Signal, kill},
        wait::{WaitPidFlag, waitpid},
    },
    unistd::Pid,
};

/// Makes demo the subreaper of every process it starts from now on: a descendant whose parent
/// dies (a shell's `sleep 7 &`, a daemon that double-forks) is reparented to demo, not to init,
/// so demo can still find and end it.
pub fn adopt_orphans() -> io::Result<()> {
    // SAFETY: prctl with integer arguments touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// How long ending a command and its descendants may take before demo gives up on them.
const END_WITHIN: Duration = Duration::from_secs(1);

/// A command demo started, ended with all its descendants when dropped (or by [`Self::end`]):
/// on every path out of a trace, an error and a dropped view included.
#[derive(Debug)]
pub struct CommandGuard {
    pid: u32,
    /// A pidfd of the command, taken while it could not yet be reaped, so that a signal never
    /// reaches another process that took its pid after it was reaped elsewhere.
    pidfd: Option<OwnedFd>,
    ended: bool,
}

impl CommandGuard {
    /// Guards `pid`, a child of demo not yet reaped.
    pub fn new(pid: u32) -> Self {
        // SAFETY: pidfd_open takes integers and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        let pidfd = (fd >= 0).then(|| {
            // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
            unsafe { OwnedFd::from_raw_fd(fd as i32) }
        });
        Self {
            pid,
            pidfd,
            ended: false,
        }
    }

    /// Kills the command (unless it already ended) and every process descended from it or
    /// adopted by demo, and reaps those demo adopted; the command itself is reaped by whoever
    /// waits for it. Returns how many processes it killed, the command included.
    pub fn end(&mut self) -> usize {
        if self.ended {
            return 0;
        }
        self.ended = true;
        let mut killed = 0;
        if let Some(pidfd) = &self.pidfd {
            // SAFETY: integers and a null siginfo; the pidfd is ours.
            let sent = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            killed += usize::from(sent == 0);
        }
        killed + end_descendants(self.pid, Instant::now() + END_WITHIN)
    }
}

impl Drop for CommandGuard {
    fn drop(&mut self) {
        self.end();
    }
}

/// Kills every process below demo in the process tree (the command's descendants, and the
/// orphans demo adopted) until none is left or `deadline` passes, reaping demo's own children
/// except `command`.
fn end_descendants(command: u32, deadline: Instant) -> usize {
    let me = std::process::id();
    let mut killed = 0;
    loop {
        let below = processes_below(me);
        let mut left = 0;
        for &pid in &below {
            if pid == command {
                continue;
            }
            left += 1;
            if kill(Pid::from_raw(pid as i32), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        reap_adopted(command);
        if left == 0 || Instant::now() >= deadline {
            return killed;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reaps every child of demo that has ended, except `command` (its waiter reaps it).
fn reap_adopted(command: u32) {
    for pid in children_of(std::process::id()) {
        if pid != command {
            let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Every live process (zombies excluded) whose chain of parents reaches `root`.
fn processes_below(root: u32) -> Vec<u32> {
    let parents = parent_map();
    let mut below = Vec::new();
    for (&pid, &(_, zombie)) in &parents {
        if zombie {
            continue;
        }
        let mut at = pid;
        // Bounded: a chain longer than the number of processes is a snapshot torn by races.
        for _ in 0..parents.len() {
            match parents.get(&at) {
                Some(&(parent, _)) if parent == root => {
                    below.push(pid);
                    break;
                }
                Some(&(parent, _)) if parent > 1 => at = parent,
                _ => break,
            }
        }
    }
    below
}

fn children_of(parent: u32) -> Vec<u32> {
    parent_map()
        .into_iter()
        .filter(|&(_, (ppid, _))| ppid == parent)
        .map(|(pid, _)| pid)
        .collect()
}

/// Each process's parent, and whether it is a zombie, from /proc.
fn parent_map() -> HashMap<u32, (u32, bool)> {
    let Ok(all) = procfs::process::all_processes() else {
        return HashMap::new();
    };
    all.filter_map(|process| process.ok()?.stat().ok())
        .map(|stat| {
            (
                stat.pid as u32,
                (stat.ppid as u32, matches!(stat.state, 'Z' | 'X')),
            )
        })
        .collect()
}
