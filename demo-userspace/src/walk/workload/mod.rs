//! The loader's handle on its workload child: spawns `demo __workload` and exchanges one command
//! and one reply per step.

pub mod child;
pub mod protocol;

use std::process::{ExitStatus, Stdio};

use anyhow::{Context as _, bail};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout},
};

use crate::kernel::privileges::RunAs;
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

/// A running workload child.
pub struct Workload {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    pid: u32,
}

impl Workload {
    /// Starts the child from this same executable, as `run_as` when given. It dies with the loader.
    pub fn spawn(run_as: Option<RunAs>) -> anyhow::Result<Self> {
        let mut command = tokio::process::Command::new("/proc/self/exe");
        command
            .arg(WORKLOAD_SUBCOMMAND)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(user) = run_as {
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the hook runs in the forked child before exec and makes only
        // async-signal-safe calls; its error allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if !crate::kernel::process::tie_to_parent(parent) {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let mut child = command.spawn().context("start the workload child")?;
        let pid = child.id().context("read the workload child's pid")?;
        let stdin = child.stdin.take().context("open the workload's stdin")?;
        let stdout = child.stdout.take().context("open the workload's stdout")?;
        Ok(Self {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout).lines(),
            pid,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
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
            None => Ok(Reply::Died(
                self.child.wait().await.context("wait for the workload")?,
            )),
        }
    }

    /// Closes the child's stdin, which ends it, and returns its exit status.
    pub async fn finish(mut self) -> anyhow::Result<ExitStatus> {
        drop(self.stdin.take());
        self.child.wait().await.context("wait for the workload")
    }
}
