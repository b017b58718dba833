//! The kernel side of `--cgroup`, checked without the trace: programs scoped to a cgroup made
//! for the test report a process that enters it, and one in a cgroup below it, each joined at
//! its first event with a join record before anything else of it, and nothing at all of a
//! process outside; every joined process leaves the target map at its exit. `demo top`'s
//! programs scoped the same way count and keep only the processes inside.

mod common;

use std::{
    fs::File,
    os::fd::OwnedFd,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
};

use common::{c_programs::TOUCH, cgroup::TestCgroup};
use demo::{
    kernel::{
        probes::{ProbeOptions, Probes, TopCounting, TopProbes},
        records::decode,
    },
    model::events::Record,
};

/// The cgroup's directory, opened for the scope map.
fn opened(cgroup: &TestCgroup) -> Arc<OwnedFd> {
    Arc::new(
        File::open(&cgroup.directory)
            .expect("open the cgroup")
            .into(),
    )
}

/// Starts `touch pages`, first moved into `cgroup` (a directory) when given: a shell writes its
/// own pid to the cgroup's `cgroup.procs` and then execs the program, so the program runs
/// inside from its first instruction.
fn start(touch: &Path, pages: u32, cgroup: Option<&Path>) -> Child {
    let mut command = match cgroup {
        Some(cgroup) => {
            let mut shell = Command::new("sh");
            shell.arg("-c").arg(format!(
                "echo $$ > {}/cgroup.procs && exec {} {pages}",
                cgroup.display(),
                touch.display()
            ));
            shell
        }
        None => {
            let mut command = Command::new(touch);
            command.arg(pages.to_string());
            command
        }
    };
    command
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the program")
}

/// Waits for a started program and returns where its pages were.
fn area_of(child: Child) -> u64 {
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8(output.stdout).unwrap();
    u64::from_str_radix(printed.trim(), 16).expect(&printed)
}

/// What the ring buffer held of one process: its records' kinds in order (by the header's
/// tgid), and its faults in its area.
#[derive(Debug, Default, PartialEq, Eq)]
struct Seen {
    kinds: Vec<u32>,
    joins: Vec<(u32, u32)>,
    faults_in_area: u64,
}

#[test]
fn scoped_programs_report_only_the_processes_in_the_cgroup_and_below_it() {
    common::require_root();
    let touch = common::c_programs::compile_c("cgroup_touch", TOUCH, &[]);
    let cgroup = TestCgroup::new("demo-filter");
    // Dropped first, as a cgroup with a child cannot be removed.
    let inner = cgroup.child("inner");
    let mut probes = Probes::load(&ProbeOptions {
        cgroup: Some(opened(&cgroup)),
        ..ProbeOptions::default()
    })
    .expect("load the scoped programs");
    let mut events = probes.take_events().expect("take the ring buffer");
    let children = [
        (start(&touch, 17, Some(&cgroup.directory)), 17u64),
        (start(&touch, 31, Some(&inner.directory)), 31),
        (start(&touch, 23, None), 23),
    ];
    let pids: Vec<u32> = children.iter().map(|(child, _)| child.id()).collect();
    let pages: Vec<u64> = children.iter().map(|&(_, pages)| pages).collect();
    let areas: Vec<u64> = children
        .into_iter()
        .map(|(child, _)| area_of(child))
        .collect();
    let mut seen: Vec<Seen> = pids.iter().map(|_| Seen::default()).collect();
    while let Some(item) = events.next() {
        let tgid = u32::from_ne_bytes(item[16..20].try_into().unwrap());
        let kind = u32::from_ne_bytes(item[0..4].try_into().unwrap());
        let Some(index) = pids.iter().position(|&pid| pid == tgid) else {
            continue;
        };
        let process = &mut seen[index];
        process.kinds.push(kind);
        match decode(&item).expect("decode a record").record {
            Record::Joined(join) => process.joins.push((join.pid, join.threads)),
            Record::Fault(fault)
                if (areas[index]..areas[index] + pages[index] * 4096).contains(&fault.address) =>
            {
                process.faults_in_area += 1;
            }
            _ => {}
        }
    }
    let join = demo_common::RecordKind::Join as u32;
    for (index, name) in [(0, "inside"), (1, "below")] {
        let process = &seen[index];
        // The join comes first, once, for the one thread that made the process's first event.
        assert_eq!(process.kinds.first(), Some(&join), "{name}: {process:?}");
        assert_eq!(process.joins, [(pids[index], 1)], "{name}: {process:?}");
        assert_eq!(process.faults_in_area, pages[index], "{name}: {process:?}");
        // Its exit was reported, and took it out of the target map.
        assert_eq!(
            process.kinds.last(),
            Some(&(demo_common::RecordKind::Exit as u32)),
            "{name}: {process:?}"
        );
    }
    assert_eq!(seen[2], Seen::default(), "the process outside");
    // The loader's own add, for the processes there at the start, says whether the process
    // was there already (the kernel side joined it first).
    let mut sleeper = Command::new("sleep").arg("10").spawn().unwrap();
    let flags = demo_common::target_flags::REPORT;
    assert!(probes.add_target_if_absent(sleeper.id(), flags).unwrap());
    assert!(
        !probes
            .add_target_if_absent(sleeper.id(), flags | demo_common::target_flags::FOLLOW)
            .unwrap()
    );
    assert_eq!(probes.target_flags(sleeper.id()).unwrap(), Some(flags));
    probes.remove_target(sleeper.id()).unwrap();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    for pid in pids {
        assert_eq!(probes.target_flags(pid).unwrap(), None, "{pid}");
    }
    assert_eq!(probes.dropped().unwrap(), 0);
}

#[test]
fn scoped_top_programs_count_and_keep_only_the_processes_in_the_cgroup() {
    common::require_root();
    let touch = common::c_programs::compile_c("cgroup_touch_top", TOUCH, &[]);
    let cgroup = TestCgroup::new("demo-filter-top");
    // Dropped first, as a cgroup with a child cannot be removed.
    let inner = cgroup.child("inner");
    let mut probes = TopProbes::load(
        "exceptions",
        TopCounting::PerFault {
            pages: false,
            durations: false,
        },
        Some(opened(&cgroup)),
    )
    .expect("load the scoped top programs");
    let children = [
        start(&touch, 17, Some(&cgroup.directory)),
        start(&touch, 31, Some(&inner.directory)),
        start(&touch, 23, None),
    ];
    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    for child in children {
        area_of(child);
    }
    let counted = probes.processes().expect("read the counts");
    let faults_of = |pid| {
        counted
            .iter()
            .find(|(counted, _)| *counted == pid)
            .map(|(_, process)| process.counts.faults)
    };
    // The inside ones faulted on their pages and more (the program's start-up); the outside
    // one is not counted at all, nor kept at its exit.
    assert!(
        faults_of(pids[0]).is_some_and(|faults| faults >= 17),
        "{counted:?}"
    );
    assert!(
        faults_of(pids[1]).is_some_and(|faults| faults >= 31),
        "{counted:?}"
    );
    assert_eq!(faults_of(pids[2]), None, "{counted:?}");
    assert!(
        counted.iter().all(|(pid, _)| pids[..2].contains(pid)),
        "only the cgroup's processes: {counted:?}"
    );
    let exits: Vec<u32> = probes
        .take_exits()
        .unwrap()
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    let mut expected = pids[..2].to_vec();
    expected.sort_unstable();
    let mut exits = exits;
    exits.sort_unstable();
    assert_eq!(exits, expected);
}
