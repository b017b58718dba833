//! The kernel side of `--cgroup` with a child started elsewhere: a process in the scoped
//! cgroup that starts a child in a cgroup outside it (`clone3` with `CLONE_INTO_CGROUP`) is
//! reported, but its child is not, neither as a fork nor by any record of its own, nor is it
//! left in the target map.

mod common;

use std::{
    fs::File,
    os::fd::OwnedFd,
    process::{Command, Stdio},
    sync::Arc,
};

use common::cgroup::TestCgroup;
use demo::{
    kernel::{
        probes::{ProbeOptions, Probes},
        records::decode,
    },
    model::events::Record,
};
use demo_common::RecordKind;

/// Starts a child in the cgroup directory `argv[1]` with `clone3` and `CLONE_INTO_CGROUP`;
/// the child writes to `argv[2]` fresh pages and exits. The parent waits for it and prints
/// its pid.
const CLONE_INTO: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int cgroup = open(argv[1], O_RDONLY | O_DIRECTORY);
    if (cgroup < 0) { perror("open the cgroup"); return 1; }
    long pages = atol(argv[2]);
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.flags = CLONE_INTO_CGROUP;
    args.exit_signal = SIGCHLD;
    args.cgroup = cgroup;
    long pid = syscall(SYS_clone3, &args, sizeof args);
    if (pid < 0) { perror("clone3"); return 1; }
    if (pid == 0) {
        char *area = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (area == MAP_FAILED) _exit(2);
        for (long i = 0; i < pages; i++) area[i * 4096] = 1;
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) { perror("waitpid"); return 1; }
    printf("%ld\n", pid);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
"#;

#[test]
fn a_child_started_outside_the_scope_is_neither_followed_nor_reported() {
    common::require_root();
    let program = common::c_programs::compile_c("cgroup_clone_into", CLONE_INTO, &[]);
    let scope = TestCgroup::new("demo-clone-scope");
    let outside = TestCgroup::new("demo-clone-outside");
    let mut probes = Probes::load(&ProbeOptions {
        cgroup: Some(Arc::new(OwnedFd::from(
            File::open(&scope.directory).expect("open the cgroup"),
        ))),
        ..ProbeOptions::default()
    })
    .expect("load the scoped programs");
    let mut events = probes.take_events().expect("take the ring buffer");
    // A shell enters the scope and execs the program, which runs inside from its start.
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > {} && exec {} {} 19",
            scope.procs().display(),
            program.display(),
            outside.directory.display()
        ))
        .stdout(Stdio::piped())
        .output()
        .expect("run the program");
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    let child: u32 = printed.trim().parse().expect(&printed);
    let parent = read_records(&mut events, child);
    // The parent joined first and was reported to its exit, which took it out of the map.
    assert_eq!(
        parent.kinds.first(),
        Some(&(RecordKind::Join as u32)),
        "{parent:?}"
    );
    assert_eq!(
        parent.kinds.last(),
        Some(&(RecordKind::Exit as u32)),
        "{parent:?}"
    );
    assert_eq!(parent.forks_of_child, 0, "{parent:?}");
    // The child's one record is the SIGCHLD its exit sent: a signal to a target is reported.
    assert_eq!(
        parent.kinds_of_child,
        [RecordKind::Signal as u32],
        "{parent:?}"
    );
    assert_eq!(probes.target_flags(child).unwrap(), None);
    assert_eq!(probes.target_flags(parent.pid).unwrap(), None);
    assert_eq!(probes.dropped().unwrap(), 0);
}

/// What the ring buffer held: the kinds of the records of the one process that joined, in
/// order, the forks reported of `child`, and the kinds of the records `child` made itself.
#[derive(Debug, Default)]
struct Seen {
    pid: u32,
    kinds: Vec<u32>,
    forks_of_child: u32,
    kinds_of_child: Vec<u32>,
}

fn read_records(events: &mut aya::maps::RingBuf<aya::maps::MapData>, child: u32) -> Seen {
    let mut seen = Seen::default();
    while let Some(item) = events.next() {
        let tgid = u32::from_ne_bytes(item[16..20].try_into().unwrap());
        let kind = u32::from_ne_bytes(item[0..4].try_into().unwrap());
        if tgid == child {
            seen.kinds_of_child.push(kind);
            continue;
        }
        let record = decode(&item).expect("decode a record").record;
        if let Record::Joined(join) = &record {
            assert_eq!(seen.pid, 0, "a second process joined: {}", join.pid);
            seen.pid = join.pid;
        }
        if seen.pid == 0 || tgid != seen.pid {
            continue;
        }
        seen.kinds.push(kind);
        if let Record::Process(event) = record
            && !event.exited
            && event.pid == child
        {
            seen.forks_of_child += 1;
        }
    }
    seen
}
