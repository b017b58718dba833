//! The one way demo starts a process, for a traced command and the workload child alike: fork,
//! tie the child to the loader, drop to the invoking user, set up its stdio (or a terminal of
//! its own), optionally hold it on a pipe until the loader lets it go (so it is traced from its
//! first instruction), exec.

use std::{
    ffi::{CString, OsString},
    io,
    os::{
        fd::{AsRawFd as _, BorrowedFd, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::PathBuf,
};

use nix::{
    fcntl::OFlag,
    sys::signal::{Signal, kill},
    unistd::{ForkResult, Pid, fork, pipe2},
};

use crate::kernel::privileges::RunAs;

/// Why a command could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("command `{0}` was not found in PATH or is not executable")]
    NotFound(String),
    #[error("an argument of the command contains a NUL byte")]
    NulByte,
    #[error("no command was given; use `demo trace -- CMD ARGS…`")]
    Empty,
    #[error("create the start pipe: {0}")]
    Pipe(nix::Error),
    #[error("fork the command: {0}")]
    Fork(nix::Error),
    #[error("create the pipes to the child: {0}")]
    Pipes(nix::Error),
}

/// Where the child's stdin, stdout and stderr go.
#[derive(Clone, Copy, Debug)]
pub enum ChildIo<'a> {
    /// The loader's own.
    Inherit,
    /// Stdin and stdout are pipes to the loader ([`Spawned::pipes`]); stderr is the loader's.
    Pipes,
    /// The terminal side of a pseudo-terminal ([`super::pty::Pty`]), all three, and the
    /// child's controlling terminal in a session of its own, as a shell would start it: its
    /// Ctrl-C and window size are that terminal's.
    Terminal(BorrowedFd<'a>),
}

/// What to start, and how.
#[derive(Clone, Copy, Debug)]
pub struct ChildSpec<'a> {
    /// The program, resolved as execvp would (a path is taken as it is).
    pub program: &'a std::ffi::OsStr,
    /// Its argv, `argv[0]` included.
    pub argv: &'a [OsString],
    /// The user it runs as; the loader's own (root) when `None`.
    pub run_as: Option<RunAs>,
    pub io: ChildIo<'a>,
    /// The child waits before its exec until [`Spawned::release`].
    pub held: bool,
}

/// A forked child: held before its exec until released, or already running.
#[derive(Debug)]
pub struct Spawned {
    pub pid: u32,
    go: Option<OwnedFd>,
    /// The loader's ends of the child's stdin and stdout, with [`ChildIo::Pipes`].
    pipes: Option<(OwnedFd, OwnedFd)>,
}

/// Finds the program like execvp would, so a missing command is reported before anything runs.
pub fn resolve(program: &std::ffi::OsStr) -> Result<PathBuf, SpawnError> {
    which::which(program).map_err(|_| SpawnError::NotFound(program.to_string_lossy().into_owned()))
}

fn c_string(bytes: &[u8]) -> Result<CString, SpawnError> {
    CString::new(bytes).map_err(|_| SpawnError::NulByte)
}

/// Forks a child as `spec` says. It dies with the loader (`PR_SET_PDEATHSIG`, and exits at
/// once if the loader died before that took hold).
pub fn spawn(spec: ChildSpec<'_>) -> Result<Spawned, SpawnError> {
    let path = c_string(resolve(spec.program)?.as_os_str().as_bytes())?;
    let args: Vec<CString> = spec
        .argv
        .iter()
        .map(|arg| c_string(arg.as_bytes()))
        .collect::<Result<_, _>>()?;
    if args.is_empty() {
        return Err(SpawnError::Empty);
    }
    let env: Vec<CString> = std::env::vars_os()
        .map(|(key, value)| {
            let mut pair = key.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend(value.as_bytes());
            c_string(&pair)
        })
        .collect::<Result<_, _>>()?;
    let mut arg_pointers: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_pointers.push(std::ptr::null());
    let mut env_pointers: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    env_pointers.push(std::ptr::null());
    // Every pipe end is close-on-exec: the child's copies are the ones dup2 puts on 0 and 1.
    let (wait_end, go_end) = pipe2(OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;
    let pipes = match spec.io {
        ChildIo::Pipes => {
            let (child_stdin, loader_stdin) = pipe2(OFlag::O_CLOEXEC).map_err(SpawnError::Pipes)?;
            let (loader_stdout, child_stdout) =
                pipe2(OFlag::O_CLOEXEC).map_err(SpawnError::Pipes)?;
            Some(((child_stdin, child_stdout), (loader_stdin, loader_stdout)))
        }
        ChildIo::Inherit | ChildIo::Terminal(_) => None,
    };
    // The child's stdin, stdout and stderr, when they are not the loader's.
    let stdio: Option<[libc::c_int; 3]> = match (&pipes, spec.io) {
        (Some(((stdin, stdout), _)), _) => Some([stdin.as_raw_fd(), stdout.as_raw_fd(), 2]),
        (None, ChildIo::Terminal(terminal)) => Some([terminal.as_raw_fd(); 3]),
        (None, _) => None,
    };
    let terminal = match spec.io {
        ChildIo::Terminal(terminal) => Some(terminal.as_raw_fd()),
        _ => None,
    };
    let parent = std::process::id() as libc::pid_t;

    // SAFETY: the child only makes async-signal-safe calls (prctl, getppid, setsid, ioctl,
    // setgroups, setgid, setuid, dup2, read, execve, _exit) on memory prepared before the fork.
    match unsafe { fork() }.map_err(SpawnError::Fork)? {
        ForkResult::Child => unsafe {
            if !crate::kernel::process::tie_to_parent(parent) {
                libc::_exit(125);
            }
            // A session of its own, with the terminal as its controlling terminal: the child's
            // process group is the terminal's foreground group, so its Ctrl-C reaches it.
            if let Some(terminal) = terminal
                && (libc::setsid() < 0 || libc::ioctl(terminal, libc::TIOCSCTTY, 0) < 0)
            {
                libc::_exit(125);
            }
            if let Some(user) = spec.run_as
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(user.gid.as_raw()) != 0
                    || libc::setuid(user.uid.as_raw()) != 0)
            {
                libc::_exit(126);
            }
            if let Some(fds) = stdio {
                for (target, fd) in fds.into_iter().enumerate() {
                    if fd != target as libc::c_int && libc::dup2(fd, target as libc::c_int) < 0 {
                        libc::_exit(125);
                    }
                }
            }
            if spec.held {
                let mut byte = 0u8;
                loop {
                    match libc::read(wait_end.as_raw_fd(), (&raw mut byte).cast(), 1) {
                        1 => break,
                        -1 if *libc::__errno_location() == libc::EINTR => continue,
                        // The loader dropped the command without releasing it.
                        _ => libc::_exit(125),
                    }
                }
            }
            libc::execve(path.as_ptr(), arg_pointers.as_ptr(), env_pointers.as_ptr());
            libc::_exit(127)
        },
        ForkResult::Parent { child } => {
            drop(wait_end);
            Ok(Spawned {
                pid: child.as_raw() as u32,
                go: spec.held.then_some(go_end),
                pipes: pipes.map(|(_, loader)| loader),
            })
        }
    }
}

impl Spawned {
    /// The loader's ends of the child's stdin and stdout, once, with [`ChildIo::Pipes`].
    pub fn pipes(&mut self) -> Option<(OwnedFd, OwnedFd)> {
        self.pipes.take()
    }

    /// Lets a held child exec its command.
    pub fn release(&mut self) -> io::Result<()> {
        let Some(go) = self.go.take() else {
            return Ok(());
        };
        let byte = [1u8];
        // SAFETY: writes one byte from a local buffer to a pipe we own.
        if unsafe { libc::write(go.as_raw_fd(), byte.as_ptr().cast(), 1) } != 1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Spawned {
    /// A child never released must not linger: closing the pipe makes it exit, and it is killed
    /// in case it is somewhere else.
    fn drop(&mut self) {
        if self.go.take().is_some() {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(self.pid as i32), None);
        }
    }
}

/// How a reaped command ended, with its own fault counts and CPU time (its rusage: its own,
/// and that of the children it waited for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaped {
    pub status: std::process::ExitStatus,
    pub minflt: u64,
    pub majflt: u64,
    pub user_ns: u64,
    pub system_ns: u64,
}

/// Waits for `pid` to end and returns its status and rusage. Blocks: run it off the runtime.
pub fn wait_with_rusage(pid: u32) -> io::Result<Reaped> {
    wait_through_stops(pid, || {})
}

/// Has the kernel stop our child `pid` at its exit, while its memory is still mapped, until
/// [`wait_through_stops`] lets it go on; with the loader gone it is killed (`PTRACE_O_EXITKILL`).
/// It stops at nothing else than its exit, its signals, and a stop signal. Call both from the
/// same thread: the kernel takes ptrace requests only from the thread that attached.
pub fn stop_at_exit(pid: u32) -> nix::Result<()> {
    use nix::sys::ptrace::{Options, seize};
    seize(
        Pid::from_raw(pid as i32),
        Options::PTRACE_O_TRACEEXIT | Options::PTRACE_O_EXITKILL,
    )
}

/// Waits for our child `pid` to end and returns its status and rusage, letting it on at each
/// stop of [`stop_at_exit`]: at its exit stop after `at_exit` returns, at a signal with the
/// signal, at a stop signal by listening (it stays stopped until SIGCONT, as without demo).
/// Blocks: run it off the runtime.
pub fn wait_through_stops(pid: u32, mut at_exit: impl FnMut()) -> io::Result<Reaped> {
    use std::os::unix::process::ExitStatusExt as _;
    let child = Pid::from_raw(pid as i32);
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pointers to locals; pid is our own child.
        let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if reaped != pid as libc::pid_t {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if !libc::WIFSTOPPED(status) {
            break;
        }
        let signal = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        // A child killed meanwhile is no longer stopped; the next wait reaps it.
        let _ = match event {
            libc::PTRACE_EVENT_EXIT => {
                at_exit();
                nix::sys::ptrace::cont(child, None)
            }
            libc::PTRACE_EVENT_STOP
                if matches!(
                    signal,
                    libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
                ) =>
            {
                // SAFETY: PTRACE_LISTEN takes no pointers.
                let listened = unsafe {
                    libc::ptrace(libc::PTRACE_LISTEN, pid as libc::pid_t, 0usize, 0usize)
                };
                if listened == 0 {
                    Ok(())
                } else {
                    Err(nix::Error::last())
                }
            }
            libc::PTRACE_EVENT_STOP => nix::sys::ptrace::cont(child, None),
            // A signal on its way to the child: it gets it, as it would without demo.
            _ => nix::sys::ptrace::cont(child, Signal::try_from(signal).ok()),
        };
    }
    Ok(Reaped {
        status: std::process::ExitStatus::from_raw(status),
        minflt: usage.ru_minflt as u64,
        majflt: usage.ru_majflt as u64,
        user_ns: timeval_ns(usage.ru_utime),
        system_ns: timeval_ns(usage.ru_stime),
    })
}

fn timeval_ns(time: libc::timeval) -> u64 {
    time.tv_sec as u64 * 1_000_000_000 + time.tv_usec as u64 * 1_000
}
