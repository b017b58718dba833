//! Hostile and careless use: report files that must not be handed over, a command's descendants
//! that must not outlive the trace, exit statuses, the sudo variables, a full disk and a reader
//! that stops reading. Each test runs the real `demo` as root.

mod common;

use std::{
    io::Read as _,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::{DEMO, assert_one_sentence, processes_running, require_root, test_dir};

/// The user the tests pretend ran sudo (nobody, so nothing of a real user's is touched).
const SUDO_USER: u32 = 65534;

fn as_sudo_user(command: &mut Command) -> &mut Command {
    command
        .env("SUDO_UID", SUDO_USER.to_string())
        .env("SUDO_GID", SUDO_USER.to_string())
}

/// A directory of its own in the test directory, owned by `owner`.
fn dir_owned_by(name: &str, owner: u32) -> PathBuf {
    let dir = test_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(owner), Some(owner)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn owner(path: &Path) -> (u32, u32) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid())
}

#[test]
fn output_files_never_hand_over_what_existed() {
    require_root();
    let dir = dir_owned_by("handover", 0);
    // An existing root file: refused, its owner and content unchanged.
    let root_file = dir.join("rootfile");
    std::fs::write(&root_file, "root's\n").unwrap();
    std::fs::set_permissions(&root_file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let output = as_sudo_user(Command::new(DEMO).args(["trace", "-o"]).arg(&root_file))
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_one_sentence(&output, 2, "it belongs to uid 0");
    assert_eq!(owner(&root_file), (0, 0));
    assert_eq!(std::fs::read_to_string(&root_file).unwrap(), "root's\n");

    // A symlink to it: refused the same, the link and its target unchanged.
    let link = dir.join("link");
    std::os::unix::fs::symlink(&root_file, &link).unwrap();
    let output = as_sudo_user(Command::new(DEMO).args(["trace", "-o"]).arg(&link))
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_one_sentence(&output, 2, "it belongs to uid 0");
    assert_eq!(owner(&link), (0, 0));
    assert_eq!(owner(&root_file), (0, 0));
    assert_eq!(std::fs::read_to_string(&root_file).unwrap(), "root's\n");

    // A device: written as it is, its owner untouched.
    let null = Path::new("/dev/null");
    let before = owner(null);
    let output = as_sudo_user(Command::new(DEMO).args(["top", "--duration", "0.3", "-o"]))
        .arg(null)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(owner(null), before);

    // A new file where the user may not write (a root directory): refused, nothing created.
    let denied = dir.join("new.txt");
    let output = as_sudo_user(Command::new(DEMO).args(["trace", "-o"]).arg(&denied))
        .args(["--", "true"])
        .output()
        .unwrap();
    assert_one_sentence(&output, 1, "Permission denied");
    assert!(!denied.exists());

    // A new file in the user's own directory is theirs; run again, the file is replaced.
    let theirs = dir_owned_by("handover-user", SUDO_USER).join("trace.txt");
    for _ in 0..2 {
        let output = as_sudo_user(Command::new(DEMO).args(["trace", "-o"]).arg(&theirs))
            .args(["--", "true"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(owner(&theirs), (SUDO_USER, SUDO_USER));
        let text = std::fs::read_to_string(&theirs).unwrap();
        assert_eq!(text.matches("# tracing true").count(), 1, "{text}");
    }
}

#[test]
fn malformed_sudo_variables_are_refused() {
    require_root();
    for (uid, gid) in [
        (Some("abc"), Some("1000")),
        (Some("-1"), Some("1000")),
        (Some(""), Some("1000")),
        (Some("1000"), None),
        (None, Some("1000")),
    ] {
        let mut command = Command::new(DEMO);
        command.args(["trace", "--", "id", "-u"]);
        command.env_remove("SUDO_UID").env_remove("SUDO_GID");
        if let Some(uid) = uid {
            command.env("SUDO_UID", uid);
        }
        if let Some(gid) = gid {
            command.env("SUDO_GID", gid);
        }
        let output = command.output().unwrap();
        assert_one_sentence(&output, 2, "SUDO_");
        // The command never ran, as root or anyone.
        assert!(output.stdout.is_empty(), "{output:?}");
    }
}

#[test]
fn demo_exits_with_the_traced_commands_status() {
    require_root();
    let status = |script: &str| {
        Command::new(DEMO)
            .args(["trace", "-o", "/dev/null", "--", "sh", "-c", script])
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(status("exit 0"), Some(0));
    assert_eq!(status("exit 3"), Some(3));
    assert_eq!(status("kill -SEGV $$"), Some(128 + libc::SIGSEGV));
    // demo's own failures keep 1 and 2.
    assert_eq!(
        Command::new(DEMO)
            .args(["trace", "--", "/nonexistent/program"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn nothing_demo_started_outlives_the_trace() {
    require_root();
    // `sleep 7 &` in a shell, a grandchild that double-forks away, with and without --follow;
    // each sleep's argument is unique to this test so that nothing else is counted.
    for (follow, first, second) in [(true, "307.5", "308.5"), (false, "309.5", "310.5")] {
        let script = format!("sleep {first} & (setsid sleep {second} &); sleep {second}");
        let mut command = Command::new(DEMO);
        command.args(["trace", "-o", "/dev/null", "--duration", "1"]);
        if follow {
            command.arg("--follow");
        }
        let output = command.args(["--", "sh", "-c", &script]).output().unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(processes_running(&["sleep", first]), Vec::<u32>::new());
        assert_eq!(processes_running(&["sleep", second]), Vec::<u32>::new());
    }
    // A command that exits by itself leaves nothing running either.
    let output = Command::new(DEMO)
        .args([
            "trace",
            "-o",
            "/dev/null",
            "--",
            "sh",
            "-c",
            "sleep 311.5 & exit 0",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(processes_running(&["sleep", "311.5"]), Vec::<u32>::new());
}

#[test]
fn a_full_disk_names_the_output_and_ends_the_trace() {
    require_root();
    let mount = test_dir().join("full");
    let _ = std::fs::create_dir(&mount);
    nix::mount::mount(
        Some("tmpfs"),
        &mount,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=64k"),
    )
    .expect("mount a small tmpfs");
    let file = mount.join("trace.json");
    // 16 MiB written page by page makes 4,096 faults, far more JSON than 64 KiB holds; then
    // the program would sleep for minutes.
    let output = Command::new(DEMO)
        .args(["trace", "--format", "json", "-o"])
        .arg(&file)
        .args([
            "--",
            "python3",
            "-c",
            "b = bytearray(16 << 20)\nimport time\ntime.sleep(313.5)",
        ])
        .output()
        .unwrap();
    let _ = nix::mount::umount(&mount);
    assert_one_sentence(
        &output,
        1,
        &format!("write {}: No space left on device", file.display()),
    );
    let python = processes_running(&[
        "python3",
        "-c",
        "b = bytearray(16 << 20)\nimport time\ntime.sleep(313.5)",
    ]);
    assert_eq!(python, Vec::<u32>::new());
}

/// A child killed and reaped when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_reader_that_stops_reading_does_not_hold_up_sigterm() {
    require_root();
    // A target that faults for ever, traced by pid: its records fill the pipe no one reads.
    // (Each loop writes a fresh mapping, so every page faults; malloc would reuse its heap.)
    let mut target = KillOnDrop(
        Command::new("python3")
            .args([
                "-c",
                "import mmap, time\nx = b'x' * (1 << 20)\nwhile True:\n    m = mmap.mmap(-1, 1 << 20)\n    m.write(x)\n    m.close()\n    time.sleep(0.01)",
            ])
            .spawn()
            .unwrap(),
    );
    let (reader, writer) = std::io::pipe().unwrap();
    let mut demo = KillOnDrop(
        Command::new(DEMO)
            .args([
                "trace",
                "--format",
                "json",
                "--pid",
                &target.0.id().to_string(),
            ])
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (target, demo) = (&mut target.0, &mut demo.0);
    // The pipe is full once nearly 64 KiB wait in it (writes fill its pages unevenly); a
    // moment later demo's own queue of the report is full too, and demo waits.
    let full = (0..1000).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        let mut waiting: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer.
        unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&reader),
                libc::FIONREAD,
                &mut waiting,
            )
        };
        waiting >= 60_000
    });
    assert!(full, "demo never filled its output pipe");
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(demo.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // demo must end while the pipe stays full; it would wait for ever in its write otherwise.
    let ended = (0..500).find_map(|_| {
        std::thread::sleep(Duration::from_millis(20));
        demo.try_wait().unwrap()
    });
    let mut stderr = String::new();
    if ended.is_none() {
        let _ = demo.kill();
        let _ = demo.wait();
    }
    demo.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    drop(reader);
    let target_alive = target.try_wait().unwrap().is_none();
    let _ = target.kill();
    let _ = target.wait();
    let status = ended.expect("demo did not end on SIGTERM while its output was blocked");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("write standard output: ")
            && stderr.contains("bytes of the report were not written"),
        "{stderr}"
    );
    // A --pid target is never killed.
    assert!(target_alive);
    common::kernel::assert_nothing_of_ours_is_loaded();
}

#[test]
fn the_header_says_what_demo_cannot_see() {
    require_root();
    const MALLOCS: &str = r#"
#include <stdlib.h>
#include <string.h>
int main(void) { char *p = malloc(1 << 20); memset(p, 1, 1 << 20); free(p); return 0; }
"#;
    let dynamic = common::c_programs::compile_c("mallocs_dynamic", MALLOCS, &[]);
    let fixed = common::c_programs::compile_c("mallocs_static", MALLOCS, &["-static"]);
    let says =
        "# heap blocks: not seen, the program is statically linked and its malloc is not libc.so's";
    for (program, unseen) in [(&dynamic, vec![]), (&fixed, vec!["static_heap"])] {
        let output = Command::new(DEMO)
            .arg("trace")
            .arg("--")
            .arg(program)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        // The header wraps at 80 columns, continuing with `#   `: its sentences are joined.
        let text = String::from_utf8_lossy(&output.stdout).replace("\n#   ", " ");
        assert_eq!(
            text.lines().any(|line| line == says),
            !unseen.is_empty(),
            "{text}"
        );
        let lines = common::json::trace_to_file(
            &format!("unseen-{}", unseen.len()),
            &[],
            &[program.as_os_str()],
            &[],
            Stdio::null(),
        );
        let start = common::json::of_kind(&lines, "trace")[0];
        assert_eq!(start["unseen"], serde_json::json!(unseen), "{start}");
    }
}
