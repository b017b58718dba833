//! Every traced process's mappings are named, even after it exits: a short-lived program's
//! file mapping (the command is held at its exit until its records are read), and a forked
//! child's copy of its parent's array (it inherits the parent's mappings and regions). Root,
//! real kernel.

mod common;

use std::process::Stdio;

use common::c_programs::compile_c;
use common::json::{of_kind, trace_to_file};
use common::test_dir;
use serde_json::Value;

/// Writes 64 pages to the file it is given, drops them from the page cache, maps the file and
/// reads every page, then exits at once.
const FILE_READER: &str = r#"
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDWR);
    char page[4096];
    memset(page, 'x', sizeof page);
    for (int i = 0; i < 64; i++) write(fd, page, sizeof page);
    fsync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    volatile char *map = mmap(0, 64 * 4096, PROT_READ, MAP_PRIVATE, fd, 0);
    long sum = 0;
    for (int i = 0; i < 64; i++) sum += map[i * 4096];
    return sum == 64 * 'x' ? 0 : 1;
}
"#;

/// Maps and writes 8 pages, forks; the child writes pages 0 to 3 and exits at once.
const FORK_COW: &str = r#"
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    char *array = mmap(0, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 8; i++) array[i * 4096] = 1;
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 4; i++) array[i * 4096] = 2;
        _exit(0);
    }
    waitpid(child, 0, 0);
    return 0;
}
"#;

fn trace(name: &str, args: &[&str], command: &[&str]) -> Vec<Value> {
    let command: Vec<&std::ffi::OsStr> = command.iter().map(std::ffi::OsStr::new).collect();
    trace_to_file(name, args, &command, &[], Stdio::null())
}

#[test]
fn a_short_lived_programs_file_faults_name_the_file_with_the_major_one() {
    let program = compile_c("file_reader", FILE_READER, &[]);
    // On a disk filesystem (ext4 here), so that the first read must wait for the disk. The
    // program runs as the invoking user, so the file is writable by anyone.
    let file = test_dir().join("sixty-four-pages");
    std::fs::write(&file, b"").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let path = file.to_str().unwrap();
    let lines = trace("file_reader", &[], &[program.to_str().unwrap(), path]);
    let faults = of_kind(&lines, "fault");
    let on_file: Vec<&&Value> = faults.iter().filter(|f| f["mapping"] == path).collect();
    assert!(!on_file.is_empty(), "no fault names {path}: {faults:#?}");
    assert!(
        on_file.iter().any(|f| f["class"] == "major"),
        "no major fault on the file: {on_file:#?}"
    );
    assert!(
        on_file
            .iter()
            .all(|f| f["access"] == "read" && f["mode"] == "user"),
        "{on_file:#?}"
    );
    // Left unnamed is only what the program mapped and unmapped again before any read of its
    // maps (ld.so maps /etc/ld.so.cache for a moment); the summary counts it.
    let hex = |value: &Value| {
        u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    };
    let syscalls = of_kind(&lines, "syscall");
    let unmapped: Vec<(u64, u64)> = syscalls
        .iter()
        .filter(|call| call["name"] == "munmap")
        .map(|call| {
            let start = hex(&call["args"]["addr"]);
            (start, start + call["args"]["len"].as_u64().unwrap())
        })
        .collect();
    let unknown: Vec<&&Value> = faults
        .iter()
        .filter(|f| f["mapping"] == "[unknown]")
        .collect();
    for fault in &unknown {
        let address = hex(&fault["address"]);
        assert!(
            unmapped
                .iter()
                .any(|&(start, end)| (start..end).contains(&address)),
            "{fault} is unnamed but was never unmapped: {unmapped:x?}"
        );
    }
    let summary = &of_kind(&lines, "summary")[0];
    assert_eq!(summary["unknown_mappings"], unknown.len());
    assert_eq!(summary["child"], "exited with status 0");
}

#[test]
fn a_forked_childs_copy_on_write_faults_carry_its_parents_region() {
    let program = compile_c("fork_cow", FORK_COW, &[]);
    let lines = trace(
        "fork_cow",
        &["--follow", "--elem-size", "1"],
        &[program.to_str().unwrap()],
    );
    let parent = of_kind(&lines, "trace")[0]["pid"].clone();
    let child = of_kind(&lines, "process")
        .into_iter()
        .find(|p| p["event"] == "fork")
        .expect("a fork line")["pid"]
        .clone();
    let region = of_kind(&lines, "region")
        .into_iter()
        .find(|r| r["size"] == 8 * 4096 && r["pid"] == parent)
        .expect("the parent's array is a region");
    let name = region["name"].clone();
    let of = |pid: &Value| -> Vec<&Value> {
        of_kind(&lines, "fault")
            .into_iter()
            .filter(|f| &f["pid"] == pid && f["region"] == name)
            .collect()
    };
    let child_faults = of(&child);
    let pages: Vec<u64> = child_faults
        .iter()
        .map(|f| f["page"].as_u64().unwrap())
        .collect();
    assert_eq!(pages, [0, 1, 2, 3], "{child_faults:#?}");
    for fault in &child_faults {
        assert_eq!(fault["access"], "write");
        assert_eq!(fault["present"], true, "copy on write of a present page");
        assert_eq!(fault["mapping"], "[anon]");
        assert_eq!(fault["index"], fault["offset"]);
        assert_eq!(
            fault["index"].as_u64().unwrap(),
            fault["page"].as_u64().unwrap() * 4096
        );
    }
    let parent_pages: Vec<u64> = of(&parent)
        .iter()
        .map(|f| f["page"].as_u64().unwrap())
        .collect();
    assert_eq!(parent_pages, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert!(
        of_kind(&lines, "region")
            .iter()
            .any(|r| r["pid"] == child && r["name"] == name),
        "the child has its copy of the region"
    );
}
