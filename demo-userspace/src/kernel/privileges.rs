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

/// Why the sudo variables cannot name the invoking user.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvokingUserError {
    #[error(
        "{name}={value:?} is not a user or group id; sudo sets it to a number, so demo will not guess who ran it"
    )]
    Malformed { name: &'static str, value: String },
    #[error(
        "{present} is set but {missing} is not; sudo sets both, so demo will not run the command as root by default"
    )]
    Half {
        present: &'static str,
        missing: &'static str,
    },
}

/// Reads SUDO_UID and SUDO_GID: `None` when demo was not started through sudo (neither is set,
/// or SUDO_UID is 0), an error when they are set but do not name a user, since running the
/// command as root instead would be a silent guess.
pub fn invoking_user() -> Result<Option<RunAs>, InvokingUserError> {
    let var = |name| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned());
    invoking_user_from(var("SUDO_UID"), var("SUDO_GID"))
}

fn invoking_user_from(
    uid: Option<String>,
    gid: Option<String>,
) -> Result<Option<RunAs>, InvokingUserError> {
    let parse = |name: &'static str, value: String| {
        // Only plain decimal digits: `+5`, ` 5` or `-1` are not what sudo writes.
        match value.parse::<u32>() {
            Ok(id) if value.bytes().all(|b| b.is_ascii_digit()) && id != u32::MAX => Ok(id),
            _ => Err(InvokingUserError::Malformed { name, value }),
        }
    };
    let (uid, gid) = match (uid, gid) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(InvokingUserError::Half {
                present: "SUDO_UID",
                missing: "SUDO_GID",
            });
        }
        (None, Some(_)) => {
            return Err(InvokingUserError::Half {
                present: "SUDO_GID",
                missing: "SUDO_UID",
            });
        }
        (Some(uid), Some(gid)) => (parse("SUDO_UID", uid)?, parse("SUDO_GID", gid)?),
    };
    Ok((uid != 0).then(|| RunAs {
        uid: Uid::from_raw(uid),
        gid: Gid::from_raw(gid),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(uid: Option<&str>, gid: Option<&str>) -> Result<Option<RunAs>, InvokingUserError> {
        invoking_user_from(uid.map(str::to_owned), gid.map(str::to_owned))
    }

    #[test]
    fn sudo_variables_name_the_user_or_are_refused() {
        assert_eq!(from(None, None), Ok(None));
        assert_eq!(from(Some("0"), Some("0")), Ok(None));
        assert_eq!(
            from(Some("1000"), Some("100")),
            Ok(Some(RunAs {
                uid: Uid::from_raw(1000),
                gid: Gid::from_raw(100)
            }))
        );
        for bad in [
            "abc",
            "-1",
            "",
            " 1000",
            "+1000",
            "4294967295",
            "99999999999",
        ] {
            assert!(
                matches!(
                    from(Some(bad), Some("1000")),
                    Err(InvokingUserError::Malformed {
                        name: "SUDO_UID",
                        ..
                    })
                ),
                "SUDO_UID={bad:?}"
            );
            assert!(
                matches!(
                    from(Some("1000"), Some(bad)),
                    Err(InvokingUserError::Malformed {
                        name: "SUDO_GID",
                        ..
                    })
                ),
                "SUDO_GID={bad:?}"
            );
        }
        assert!(matches!(
            from(Some("1000"), None),
            Err(InvokingUserError::Half { .. })
        ));
        assert!(matches!(
            from(None, Some("1000")),
            Err(InvokingUserError::Half { .. })
        ));
    }
}
