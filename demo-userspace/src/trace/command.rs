//! The command `demo trace` starts: forked held back before its exec, guarded so that neither
//! it nor anything it starts outlives the trace, and stopped at its exit until the trace has
//! read its records.

use std::{ffi::OsString, sync::mpsc::SyncSender};

use anyhow::Context as _;
use demo_common::target_flags;
use tokio::{sync::mpsc::UnboundedReceiver, task::JoinHandle};

use super::{CommandIo, TargetError};
use crate::kernel::{
    descendants::{self, CommandGuard},
    privileges::RunAs,
    probes::Probes,
    spawn::{self, ChildIo, ChildSpec, Reaped, SpawnError, Spawned},
};

/// A started command, from its fork to its reaping. Its fields drop in the order a failed
/// trace needs: the exit stops go unanswered, so the command may go on, before the guard kills
/// it and all it started.
pub(super) struct TracedCommand {
    /// The blocking thread that waits for the command through its stops, once released.
    waiter: Option<JoinHandle<std::io::Result<Reaped>>>,
    /// Each stop at the command's exit, with the sender that lets it go on.
    exit_stops: Option<UnboundedReceiver<SyncSender<()>>>,
    guard: CommandGuard,
    held: Spawned,
    /// How it ended, once reaped.
    reaped: Option<Reaped>,
}

/// What the command did while the trace ran.
pub(super) enum CommandEvent {
    /// It is stopped at its exit, its memory still mapped, until the sender is answered.
    ExitStop(SyncSender<()>),
    /// It ended, and was reaped.
    Ended,
}

impl TracedCommand {
    /// Forks `argv` held back before its exec, already in the target map, and guards it.
    pub(super) fn spawn(
        argv: &[OsString],
        run_as: Option<RunAs>,
        io: &CommandIo,
        follow_flags: u8,
        probes: &mut Probes,
    ) -> anyhow::Result<Self> {
        if let Err(error) = descendants::adopt_orphans() {
            log::warn!(
                "demo cannot adopt the command's orphans ({error}): a process it leaves \
                 running when its parent exits may outlive the trace"
            );
        }
        let held = spawn_traced(argv, run_as, io, follow_flags, probes)?;
        Ok(Self {
            waiter: None,
            exit_stops: None,
            guard: CommandGuard::new(held.pid),
            held,
            reaped: None,
        })
    }

    pub(super) fn pid(&self) -> u32 {
        self.held.pid
    }

    /// Has the command stop at its exit until its records are read, so that its mappings are
    /// named from /proc/PID/maps while they still exist, however short its life; then lets it
    /// exec.
    pub(super) async fn release(&mut self) -> anyhow::Result<()> {
        let pid = self.held.pid;
        let (exit_stops, exiting) = tokio::sync::mpsc::unbounded_channel::<SyncSender<()>>();
        let (seized, was_seized) = tokio::sync::oneshot::channel();
        self.waiter = Some(tokio::task::spawn_blocking(move || {
            // The kernel takes ptrace requests only from the thread that attached: this one.
            let _ = seized.send(spawn::stop_at_exit(pid));
            spawn::wait_through_stops(pid, || {
                let (done, wait) = std::sync::mpsc::sync_channel(1);
                // Without the trace loop to answer, the command goes on at once.
                if exit_stops.send(done).is_ok() {
                    let _ = wait.recv();
                }
            })
        }));
        self.exit_stops = Some(exiting);
        if let Err(error) = was_seized.await.context("stop the command at its exit")? {
            log::warn!(
                "the command is not stopped at its exit ({error}): the mappings of faults \
                 read after it ends are named only from what the trace saw"
            );
        }
        self.held.release().context("start the traced command")?;
        Ok(())
    }

    /// The command's next stop at its exit, or its end; never, while it is held.
    pub(super) async fn next(&mut self) -> anyhow::Result<CommandEvent> {
        let Self {
            waiter,
            exit_stops,
            reaped,
            ..
        } = self;
        tokio::select! {
            Some(done) = async { match exit_stops.as_mut() {
                Some(exiting) => exiting.recv().await,
                None => std::future::pending().await,
            } } => Ok(CommandEvent::ExitStop(done)),
            result = async { match waiter.as_mut() {
                Some(waiter) => waiter.await,
                None => std::future::pending().await,
            } } => {
                *waiter = None;
                *reaped = Some(result.context("wait for the traced command")??);
                Ok(CommandEvent::Ended)
            }
        }
    }

    /// Ends the command if it still runs, and all it started, and reaps it; stopped at its
    /// exit, it goes on once nothing will answer. Returns how it ended.
    pub(super) async fn end(mut self) -> anyhow::Result<Option<Reaped>> {
        drop(self.exit_stops.take());
        self.guard.end();
        if let Some(waiter) = self.waiter.take() {
            self.reaped = Some(waiter.await.context("wait for the traced command")??);
        }
        Ok(self.reaped)
    }
}

/// Forks the command held back. For the instant of the fork, the loader itself is a
/// follow-only target, so the kernel adds the child to the target map before it runs at all:
/// not one of its faults is missed, and its counts match the kernel's own.
fn spawn_traced(
    argv: &[OsString],
    run_as: Option<RunAs>,
    io: &CommandIo,
    follow_flags: u8,
    probes: &mut Probes,
) -> anyhow::Result<Spawned> {
    let own = std::process::id();
    let child_flags = if follow_flags == 0 {
        target_flags::FOLLOW
    } else {
        follow_flags
    };
    probes.add_target(own, child_flags)?;
    let held = spawn::spawn(ChildSpec {
        program: argv
            .first()
            .ok_or(SpawnError::Empty)
            .map_err(TargetError::from)?,
        argv,
        run_as,
        io: match io {
            CommandIo::Inherit => ChildIo::Inherit,
            CommandIo::Terminal(terminal) => {
                use std::os::fd::AsFd as _;
                ChildIo::Terminal(terminal.as_fd())
            }
        },
        held: true,
    });
    probes.remove_target(own)?;
    let held = held.map_err(TargetError::from)?;
    if probes.target_flags(held.pid)?.is_none() {
        // The kernel could not add it (the map was full); add it now, before it runs.
        probes.add_target(held.pid, target_flags::REPORT | follow_flags)?;
    }
    // Held, it has one thread: what it starts later inherits the completion events.
    probes.time_faults_of(held.pid)?;
    Ok(held)
}
