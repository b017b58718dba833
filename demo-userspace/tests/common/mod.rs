//! What every privileged integration test needs: the real `demo` binary, root, and files of
//! its own; and, in the submodules, C programs to trace, files dropped from the page cache,
//! demo's JSON Lines, the kernel's list of what is loaded, and perf's record of the same
//! execution.
#![allow(
    dead_code,
    reason = "each test binary uses its own part of these helpers"
)]

pub mod c_programs;
pub mod cgroup;
pub mod cold_file;
pub mod json;
pub mod kernel;
pub mod perf;
pub mod redact;
pub mod tmux;
pub mod workload;

use std::{path::PathBuf, sync::OnceLock};

pub const DEMO: &str = env!("CARGO_BIN_EXE_demo");

pub fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the privileged tests load eBPF programs and need root; run them with `cargo xtask test`"
    );
}

/// This test binary's own directory for files, made once with tempfile (mode 0755: the workloads
/// run as the invoking user under sudo and read their binaries from it).
pub fn test_dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("demo-test-")
            .tempdir()
            .expect("make the test directory");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("open the test directory to the invoking user");
        // Under sudo, demo creates its report files as the invoking user: the directory is theirs.
        let id = |name| std::env::var(name).ok()?.parse::<u32>().ok();
        if let (Some(uid), Some(gid)) = (id("SUDO_UID"), id("SUDO_GID")) {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("give the test directory to the invoking user");
        }
        dir
    })
    .path()
}

/// A file of this test binary's directory, for demo to write to.
pub fn output_file(name: &str) -> PathBuf {
    test_dir().join(format!("{name}.json"))
}

/// The live processes whose command line is exactly `argv`.
pub fn processes_running(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    procfs::process::all_processes()
        .unwrap()
        .filter_map(Result::ok)
        .filter(|p| std::fs::read(format!("/proc/{}/cmdline", p.pid)).is_ok_and(|c| c == wanted))
        .filter(|p| p.stat().is_ok_and(|s| s.state != 'Z'))
        .map(|p| p.pid as u32)
        .collect()
}

/// Checks that demo ended with `code` and said one sentence on stderr, holding `says`, and no
/// panic.
pub fn assert_one_sentence(output: &std::process::Output, code: i32, says: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(says), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
