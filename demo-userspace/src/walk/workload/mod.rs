//! The loader's handle on its workload child: spawns `demo __workload` and exchanges one command
//! and one reply per step.

pub mod child;
pub mod protocol;

use std::{ffi::OsString, process::ExitStatus};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines},
    net::unix::pipe,
};

use crate::kernel::{
    privileges::RunAs,
    spawn::{self, ChildIo, ChildSpec, Spawned},
};
pub use protocol::Command;

/// The first argument that turns the binary into a workload child (see the binary's `main`).
pub const WORKLOAD_SUBCOMMAND: &str = "__workload";

/// How a step ended for the child.
#[derive(Debug)]
pub enum Reply {
    /// The child did the step; the text after `ok`, if any.
    Done(Option<String>),
    /// The child died during the step.
    Died(ExitStatus),
}

/// A running workload child. Dropped before [`Workload::finish`], it is killed and reaped.
pub struct Workload {
    child: Spawned,
    stdin: Option<pipe::Sender>,
    stdout: Lines<BufReader<pipe::Receiver>>,
    /// How the child ended, once it is reaped.
    ended: Option<ExitStatus>,
}

impl Workload {
    /// Starts the child from this same executable, as `run_as` when given, the way a traced
    /// command starts (`kernel::spawn`). It dies with the loader.
    pub fn spawn(run_as: Option<RunAs>) -> anyhow::Result<Self> {
        let mut child = spawn::spawn(ChildSpec {
            program: "/proc/self/exe".as_ref(),
            argv: &[
                OsString::from("/proc/self/exe"),
                OsString::from(WORKLOAD_SUBCOMMAND),
            ],
            run_as,
            io: ChildIo::Pipes,
            held: false,
        })
        .context("start the workload child")?;
        let (stdin, stdout) = child.pipes().context("open the workload's pipes")?;
        Ok(Self {
            child,
            stdin: Some(pipe::Sender::from_owned_fd(stdin).context("open the workload's stdin")?),
            stdout: BufReader::new(
                pipe::Receiver::from_owned_fd(stdout).context("open the workload's stdout")?,
            )
            .lines(),
            ended: None,
        })
    }

    /// Waits for the child to end, off the runtime (waitpid blocks).
    async fn wait(&mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.ended {
            return Ok(status);
        }
        let pid = self.child.pid;
        let reaped = tokio::task::spawn_blocking(move || spawn::wait_with_rusage(pid))
            .await
            .context("wait for the workload")?
            .context("wait for the workload")?;
        self.ended = Some(reaped.status);
        Ok(reaped.status)
    }

    pub fn pid(&self) -> u32 {
        self.child.pid
    }

    /// Sends one command; the reply comes from [`Workload::reply`].
    pub async fn send(&mut self, command: Command) -> anyhow::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .context("the workload's stdin is closed")?;
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .context("send a command to the workload")?;
        stdin
            .flush()
            .await
            .context("send a command to the workload")
    }

    /// Waits for the reply to the last command. This is cancel-safe, so it can race the reader.
    pub async fn reply(&mut self) -> anyhow::Result<Reply> {
        match self
            .stdout
            .next_line()
            .await
            .context("read the workload's reply")?
        {
            Some(line) => match line.split_once(' ').unwrap_or((line.as_str(), "")) {
                ("ok" | "ready", "") => Ok(Reply::Done(None)),
                ("ok", rest) => Ok(Reply::Done(Some(rest.to_owned()))),
                (_, _) => bail!("the workload failed: {line}"),
            },
            None => Ok(Reply::Died(self.wait().await?)),
        }
    }

    /// Closes the child's stdin, which ends it, and returns its exit status.
    pub async fn finish(mut self) -> anyhow::Result<ExitStatus> {
        drop(self.stdin.take());
        self.wait().await
    }
}

impl Drop for Workload {
    /// A walk that ends early (an error, Ctrl-C) leaves no child behind.
    fn drop(&mut self) {
        if self.ended.is_none() {
            let pid = nix::unistd::Pid::from_raw(self.child.pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}
