//! Starts a command held back before its exec, so that it is traced from its first instruction:
//! the child is forked, waits on a pipe, and execs only when the loader lets it go.

use std::{
    ffi::{CString, OsString},
    io,
    os::{
        fd::{AsRawFd as _, OwnedFd},
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
    #[error("open /dev/null for the command: {0}")]
    Null(io::Error),
}

/// A forked child waiting to exec the command.
#[derive(Debug)]
pub struct HeldCommand {
    pub pid: u32,
    go: Option<OwnedFd>,
}

/// Finds the program like execvp would, so a missing command is reported before anything runs.
pub fn resolve(program: &OsString) -> Result<PathBuf, SpawnError> {
    which::which(program).map_err(|_| SpawnError::NotFound(program.to_string_lossy().into_owned()))
}

fn c_string(bytes: &[u8]) -> Result<CString, SpawnError> {
    CString::new(bytes).map_err(|_| SpawnError::NulByte)
}

/// Forks a child that will exec `argv` as `run_as` once released, and dies with the loader.
/// With `quiet`, its stdin, stdout and stderr are /dev/null (the terminal belongs to --tui).
pub fn spawn_held(
    argv: &[OsString],
    run_as: Option<RunAs>,
    quiet: bool,
) -> Result<HeldCommand, SpawnError> {
    let program = argv.first().ok_or(SpawnError::Empty)?;
    let path = c_string(resolve(program)?.as_os_str().as_bytes())?;
    let args: Vec<CString> = argv
        .iter()
        .map(|arg| c_string(arg.as_bytes()))
        .collect::<Result<_, _>>()?;
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
    let (wait_end, go_end) = pipe2(OFlag::O_CLOEXEC).map_err(SpawnError::Pipe)?;
    let null = if quiet {
        Some(
            std::fs::File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(SpawnError::Null)?,
        )
    } else {
        None
    };
    let parent = std::process::id() as libc::pid_t;

    // SAFETY: the child only makes async-signal-safe calls (prctl, getppid, setgroups, setgid,
    // setuid, read, execve, _exit) on memory prepared before the fork.
    match unsafe { fork() }.map_err(SpawnError::Fork)? {
        ForkResult::Child => unsafe {
            if !crate::kernel::process::tie_to_parent(parent) {
                libc::_exit(125);
            }
            if let Some(user) = run_as
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(user.gid.as_raw()) != 0
                    || libc::setuid(user.uid.as_raw()) != 0)
            {
                libc::_exit(126);
            }
            if let Some(null) = &null {
                for fd in 0..3 {
                    if libc::dup2(null.as_raw_fd(), fd) < 0 {
                        libc::_exit(125);
                    }
                }
            }
            let mut byte = 0u8;
            loop {
                match libc::read(wait_end.as_raw_fd(), (&raw mut byte).cast(), 1) {
                    1 => break,
                    -1 if *libc::__errno_location() == libc::EINTR => continue,
                    // The loader dropped the command without releasing it.
                    _ => libc::_exit(125),
                }
            }
            libc::execve(path.as_ptr(), arg_pointers.as_ptr(), env_pointers.as_ptr());
            libc::_exit(127)
        },
        ForkResult::Parent { child } => {
            drop(wait_end);
            Ok(HeldCommand {
                pid: child.as_raw() as u32,
                go: Some(go_end),
            })
        }
    }
}

impl HeldCommand {
    /// Lets the child exec the command.
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

impl Drop for HeldCommand {
    /// A child never released must not linger: closing the pipe makes it exit, and it is killed
    /// in case it is somewhere else.
    fn drop(&mut self) {
        if self.go.take().is_some() {
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(self.pid as i32), None);
        }
    }
}

/// How a reaped command ended, with its own fault counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reaped {
    pub status: std::process::ExitStatus,
    pub minflt: u64,
    pub majflt: u64,
}

/// Waits for `pid` to end and returns its status and rusage. Blocks: run it off the runtime.
pub fn wait_with_rusage(pid: u32) -> io::Result<Reaped> {
    use std::os::unix::process::ExitStatusExt as _;
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pointers to locals; pid is our own child.
        let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
        if reaped == pid as libc::pid_t {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    Ok(Reaped {
        status: std::process::ExitStatus::from_raw(status),
        minflt: usage.ru_minflt as u64,
        majflt: usage.ru_majflt as u64,
    })
}
