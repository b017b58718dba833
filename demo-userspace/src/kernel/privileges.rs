//! Checks that demo may load eBPF programs, and finds the user who ran it through sudo.

use nix::unistd::{Gid, Uid};

const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Why demo cannot load its programs.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error(
        "demo needs root (or CAP_BPF and CAP_PERFMON) to load its eBPF programs; run it with sudo, e.g. `sudo demo`, or use `cargo xtask run`"
    )]
    NotPrivileged,
}

/// Succeeds when the process is root or holds CAP_BPF and CAP_PERFMON.
pub fn check() -> Result<(), PrivilegeError> {
    if Uid::effective().is_root() {
        return Ok(());
    }
    let effective = procfs::process::Process::myself()
        .and_then(|me| me.status())
        .map(|status| status.capeff)
        .unwrap_or(0);
    let has = |cap: u32| effective & (1 << cap) != 0;
    if has(CAP_BPF) && has(CAP_PERFMON) {
        Ok(())
    } else {
        Err(PrivilegeError::NotPrivileged)
    }
}

/// The user to run workloads and traced commands as: the one behind sudo, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: Uid,
    pub gid: Gid,
}

/// Reads SUDO_UID and SUDO_GID; `None` when demo was not started through sudo or they are bad.
pub fn invoking_user() -> Option<RunAs> {
    let read = |name: &str| std::env::var(name).ok()?.parse::<u32>().ok();
    let (uid, gid) = (read("SUDO_UID")?, read("SUDO_GID")?);
    (uid != 0).then(|| RunAs {
        uid: Uid::from_raw(uid),
        gid: Gid::from_raw(gid),
    })
}
