//! demo against perf on the same execution: `perf record` of the fault tracepoints demo uses
//! (and of the major-faults and page-faults software events) runs `demo trace --follow`, so
//! both see every fault of the traced processes, and each process's faults must be the same
//! ones, fault for fault, with the same major faults and the same mapping names. Root, real
//! kernel, perf installed.

mod common;

use std::{
    collections::{BTreeMap, VecDeque},
    ffi::OsStr,
    os::fd::AsRawFd,
};

use common::c_programs::compile_c;
use common::json::of_kind;
use common::perf::{FAULT_TRACEPOINTS, Sample, trace_beside_perf};
use common::test_dir;
use serde_json::Value;

/// Forks; parent and child each write 32 fresh anonymous pages and read 16 pages of the file
/// `argv[1]`; then the child execs /bin/true and the parent waits for it.
const FORK_TOUCH_EXEC: &str = r#"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
static int touch(const char *path) {
    char *anon = mmap(0, 32 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (anon == MAP_FAILED) return 1;
    for (int i = 0; i < 32; i++) anon[i * 4096] = 1;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 1;
    volatile char *file = mmap(0, 16 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    if (file == MAP_FAILED) return 1;
    long sum = 0;
    for (int i = 0; i < 16; i++) sum += file[i * 4096];
    close(fd);
    return sum == 16 * 'x' ? 0 : 1;
}
int main(int argc, char **argv) {
    if (argc != 2) return 3;
    pid_t child = fork();
    if (child == 0) {
        if (touch(argv[1])) _exit(1);
        execl("/bin/true", "true", (char *)0);
        _exit(127);
    }
    int status;
    if (touch(argv[1])) return 1;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status)) return 2;
    return 0;
}
"#;

/// Maps the file `argv[1]` and reads its 4 pages, unmaps it, maps the file `argv[2]` at the same
/// address and reads its 4 pages, then exits at once.
const REUSE_ADDRESS: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
static long read_pages(volatile char *map) {
    long sum = 0;
    for (int i = 0; i < 4; i++) sum += map[i * 4096];
    return sum;
}
int main(int argc, char **argv) {
    if (argc != 3) return 3;
    int first = open(argv[1], O_RDONLY), second = open(argv[2], O_RDONLY);
    if (first < 0 || second < 0) return 1;
    char *map = mmap(0, 4 * 4096, PROT_READ, MAP_PRIVATE, first, 0);
    if (map == MAP_FAILED) return 1;
    long sum = read_pages(map);
    if (munmap(map, 4 * 4096)) return 1;
    char *again = mmap(map, 4 * 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, second, 0);
    if (again != map) return 2;
    sum += read_pages(again);
    _exit(sum == 4 * 'a' + 4 * 'b' ? 0 : 1);
}
"#;

/// A file of `pages` pages of `byte` in the test directory, written to disk and dropped from
/// the page cache, so that the first read of each page is a major fault.
fn cold_file(name: &str, pages: usize, byte: u8) -> String {
    let path = test_dir().join(name);
    std::fs::write(&path, vec![byte; pages * 4096]).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: a plain syscall on a descriptor this function owns.
    let advice = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(advice, 0, "drop {name} from the page cache");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    path.to_str().unwrap().to_owned()
}

fn hex(value: &Value) -> u64 {
    u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// The processes demo traced: the command and every child it followed.
fn traced_pids(lines: &[Value]) -> Vec<u32> {
    let mut pids: Vec<u32> = of_kind(lines, "trace")
        .into_iter()
        .chain(of_kind(lines, "process"))
        .map(|line| u32::try_from(line["pid"].as_u64().unwrap()).unwrap())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// A fault as both tools give it: thread, address, instruction, error code.
type FaultKey = (u32, u64, u64, u64);

/// How many times each fault of `pid` occurs, in demo's lines.
fn demo_faults(lines: &[Value], pid: u32) -> BTreeMap<FaultKey, usize> {
    let mut faults = BTreeMap::new();
    for fault in of_kind(lines, "fault")
        .into_iter()
        .filter(|f| f["pid"] == pid)
    {
        let key = (
            u32::try_from(fault["tid"].as_u64().unwrap()).unwrap(),
            hex(&fault["address"]),
            hex(&fault["ip"]),
            fault["error_code"]
                .as_u64()
                .expect("the tracepoints give error codes"),
        );
        *faults.entry(key).or_default() += 1;
    }
    faults
}

/// How many times each fault of `pid` occurs, in perf's tracepoint samples.
fn perf_faults(samples: &[Sample], pid: u32) -> BTreeMap<FaultKey, usize> {
    let mut faults = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.is_fault() && s.pid == pid) {
        let key = (
            sample.tid,
            sample.address.unwrap(),
            sample.ip,
            sample.error_code.unwrap(),
        );
        *faults.entry(key).or_default() += 1;
    }
    faults
}

/// The (thread, address) of each major fault, sorted.
fn demo_majors(lines: &[Value], pid: u32) -> Vec<(u32, u64)> {
    let mut majors: Vec<(u32, u64)> = of_kind(lines, "fault")
        .into_iter()
        .filter(|f| f["pid"] == pid && f["class"] == "major")
        .map(|f| {
            let tid = u32::try_from(f["tid"].as_u64().unwrap()).unwrap();
            (tid, hex(&f["address"]))
        })
        .collect();
    majors.sort_unstable();
    majors
}

fn perf_majors(samples: &[Sample], pid: u32) -> Vec<(u32, u64)> {
    let mut majors: Vec<(u32, u64)> = samples
        .iter()
        .filter(|s| s.event == "major-faults" && s.pid == pid)
        .map(|s| (s.tid, s.address.unwrap()))
        .collect();
    majors.sort_unstable();
    majors
}

#[test]
fn each_process_has_the_faults_perf_saw_one_for_one() {
    let program = compile_c("fork_touch_exec", FORK_TOUCH_EXEC, &[]);
    let file = cold_file("sixteen-pages", 16, b'x');
    let events = [FAULT_TRACEPOINTS[0], FAULT_TRACEPOINTS[1], "major-faults"];
    // Without heap probes, no uretprobe trampoline page faults (demo's own, left out of its
    // faults): every fault perf sees after the command's exec is the program's.
    let (lines, samples) = trace_beside_perf(
        "fork_touch_exec",
        &["--follow", "--no-heap"],
        &[program.as_os_str(), OsStr::new(&file)],
        &events,
    );
    let summary = &of_kind(&lines, "summary")[0];
    // The command's faults before its exec ran demo's own code in the forked child, on its one
    // thread: demo counts them apart (`demo_own`), so the first that many of perf's (in time
    // order) are taken out too. Were the count wrong, the rest would not match one for one.
    // (perf's own sched_process_exec record would mark the exec, but perf did not record it
    // for the command here, only for demo's own exec.)
    let command = u32::try_from(summary["pid"].as_u64().unwrap()).unwrap();
    let before_exec = usize::try_from(
        summary["demo_own"]["faults_before_exec"]
            .as_u64()
            .expect("demo_own.faults_before_exec"),
    )
    .unwrap();
    assert!(before_exec > 0, "{summary}");
    let mut skipped = 0;
    let samples: Vec<Sample> = samples
        .into_iter()
        .filter(|s| {
            let demos_own = s.is_fault() && s.pid == command && skipped < before_exec;
            skipped += usize::from(demos_own);
            !demos_own
        })
        .collect();
    assert_eq!(summary["child"], "exited with status 0", "{summary}");
    let traced = traced_pids(&lines);
    assert_eq!(traced.len(), 2, "the command and its child: {traced:?}");
    // perf saw faults in exactly one more process than demo traced: demo itself.
    let mut faulted: Vec<u32> = samples
        .iter()
        .filter(|s| s.is_fault())
        .map(|s| s.pid)
        .collect();
    faulted.sort_unstable();
    faulted.dedup();
    let untraced: Vec<&u32> = faulted.iter().filter(|pid| !traced.contains(pid)).collect();
    assert_eq!(
        untraced.len(),
        1,
        "perf saw {faulted:?}, demo traced {traced:?}"
    );
    let mut majors = 0;
    for &pid in &traced {
        let (demo, perf) = (demo_faults(&lines, pid), perf_faults(&samples, pid));
        let count = |faults: &BTreeMap<FaultKey, usize>| faults.values().sum::<usize>();
        assert!(count(&perf) > 48, "process {pid}: {} faults", count(&perf));
        assert_eq!(count(&demo), count(&perf), "process {pid}'s fault count");
        let only = |a: &BTreeMap<FaultKey, usize>, b: &BTreeMap<FaultKey, usize>| {
            a.iter()
                .filter(|(key, n)| b.get(key) != Some(n))
                .map(|(key, n)| (*key, *n))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            (only(&demo, &perf), only(&perf, &demo)),
            (vec![], vec![]),
            "process {pid}: (demo's faults that perf counts otherwise, perf's that demo does)"
        );
        let perf_majors = perf_majors(&samples, pid);
        assert_eq!(
            demo_majors(&lines, pid),
            perf_majors,
            "process {pid}'s major faults"
        );
        majors += perf_majors.len();
    }
    // The file was cold: whichever process read a page first waited for the disk.
    assert!(majors >= 1, "no major fault: the file was not cold");
}

/// demo's name for a mapping as perf names it: perf's `//anon` is demo's `[anon]`.
fn as_demo_names(perf: Option<&str>) -> &str {
    match perf {
        Some("//anon") => "[anon]",
        Some(name) => name,
        None => "[unknown]",
    }
}

/// Expected to fail until mappings are captured in the kernel when they are made (issue 27,
/// item 1): demo names a mapping from a later read of /proc.
#[test]
fn no_mapping_name_differs_from_perfs_when_an_address_is_reused() {
    let program = compile_c("reuse_address", REUSE_ADDRESS, &[]);
    let first = cold_file("four-pages-a", 4, b'a');
    let second = cold_file("four-pages-b", 4, b'b');
    let (lines, samples) = trace_beside_perf(
        "reuse_address",
        &[],
        &[program.as_os_str(), OsStr::new(&first), OsStr::new(&second)],
        &["page-faults"],
    );
    let summary = &of_kind(&lines, "summary")[0];
    assert_eq!(summary["child"], "exited with status 0", "{summary}");
    let pid = traced_pids(&lines)[0];
    // The same instruction faults on the same address in each file's mapping: the n-th such
    // fault of demo's is perf's n-th, both in the order they happened.
    let mut perf_names = BTreeMap::<(u32, u64, u64), VecDeque<&str>>::new();
    for sample in samples.iter().filter(|s| s.pid == pid) {
        perf_names
            .entry((sample.tid, sample.address.unwrap(), sample.ip))
            .or_default()
            .push_back(as_demo_names(sample.addr_dso.as_deref()));
    }
    let mut differ = Vec::new();
    let mut on_files = BTreeMap::<String, usize>::new();
    for fault in of_kind(&lines, "fault")
        .into_iter()
        .filter(|f| f["pid"] == pid)
    {
        let tid = u32::try_from(fault["tid"].as_u64().unwrap()).unwrap();
        let (address, ip) = (hex(&fault["address"]), hex(&fault["ip"]));
        let perf_name = perf_names
            .get_mut(&(tid, address, ip))
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| panic!("perf has no page fault for {fault}"));
        if perf_name == first || perf_name == second {
            *on_files.entry(perf_name.to_owned()).or_default() += 1;
        }
        if fault["mapping"] != perf_name {
            differ.push(format!(
                "{} at {address:#x}: perf {perf_name}",
                fault["mapping"]
            ));
        }
    }
    // Reading a page maps the file's cached pages around it too, so each file faults at least
    // once, not once a page.
    assert_eq!(
        on_files.keys().collect::<Vec<_>>(),
        [&first, &second],
        "perf names faults on both files: {on_files:?}"
    );
    assert_eq!(
        differ,
        Vec::<String>::new(),
        "demo's mapping names that differ from perf's"
    );
}
