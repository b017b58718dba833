//! Mappings are named from what the kernel side captured when they were made, not from a later
//! read of /proc: a file unmapped and another mapped at the same address each name their own
//! faults, and a followed child that exits at once has every fault named. Root, real kernel.

mod common;

use std::process::Stdio;

use common::c_programs::compile_c;
use common::json::{of_kind, trace_to_file};
use common::test_dir;
use serde_json::Value;

/// Maps the file `argv[1]` (two pages), reads both pages, unmaps it, maps the file `argv[2]`
/// at the same address, reads both pages, and exits at once.
const REUSE: &str = r#"
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int a = open(argv[1], O_RDONLY), b = open(argv[2], O_RDONLY);
    if (a < 0 || b < 0) return 2;
    volatile char *first = mmap(0, 2 * 4096, PROT_READ, MAP_PRIVATE, a, 0);
    if (first == MAP_FAILED) return 3;
    long sum = first[0] + first[4096];
    munmap((void *)first, 2 * 4096);
    volatile char *second = mmap((void *)first, 2 * 4096, PROT_READ,
                                 MAP_PRIVATE | MAP_FIXED_NOREPLACE, b, 0);
    if (second != first) return 4;
    sum += second[0] + second[4096];
    return sum == 2 * 'a' + 2 * 'b' ? 0 : 1;
}
"#;

fn trace(name: &str, args: &[&str], command: &[&str]) -> Vec<Value> {
    let command: Vec<&std::ffi::OsStr> = command.iter().map(std::ffi::OsStr::new).collect();
    trace_to_file(name, args, &command, &[], Stdio::null())
}

/// A two-page file of `byte`, readable by the invoking user.
fn two_pages(name: &str, byte: u8) -> String {
    let file = test_dir().join(name);
    std::fs::write(&file, vec![byte; 2 * 4096]).unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    file.to_str().unwrap().to_owned()
}

#[test]
fn a_file_mapped_where_another_was_unmapped_names_each_ones_faults() {
    let program = compile_c("reuse", REUSE, &[]);
    let (a, b) = (two_pages("file-a", b'a'), two_pages("file-b", b'b'));
    let lines = trace("reuse", &[], &[program.to_str().unwrap(), &a, &b]);
    let faults = of_kind(&lines, "fault");
    let on = |path: &str| -> Vec<(String, String)> {
        faults
            .iter()
            .filter(|f| f["mapping"] == path)
            .map(|f| {
                (
                    f["address"].as_str().unwrap().to_owned(),
                    f["mapping_offset"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (on_a, on_b) = (on(&a), on(&b));
    // Each file faults at its first page, at offset 0 of its own file (the kernel maps the
    // second page around the first, from the page cache), at the same address.
    assert_eq!(on_a.len(), 1, "{faults:#?}");
    assert_eq!(on_a[0].1, "0x0");
    assert_eq!(on_a, on_b);
    // And in order: the first file's faults come before the second's.
    let order: Vec<&str> = faults
        .iter()
        .filter_map(|f| f["mapping"].as_str())
        .filter(|name| *name == a || *name == b)
        .collect();
    assert_eq!(order, [a.as_str(), &b]);
    assert_eq!(
        of_kind(&lines, "summary")[0]["child"],
        "exited with status 0"
    );
}

#[test]
fn a_followed_child_that_exits_at_once_has_its_code_and_mappings_named() {
    let lines = trace(
        "follow_true",
        &["--follow"],
        &["sh", "-c", "/bin/true; exit 0"],
    );
    let first = of_kind(&lines, "trace")[0]["pid"].clone();
    let children: Vec<&Value> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|f| f["pid"] != first)
        .collect();
    assert!(!children.is_empty(), "the child's faults were traced");
    // Every fault is named: the kernel's own writes into the new image during execve (its bss,
    // its stack), whose records come before the exec's, from the new image's capture; the
    // stack from its VMA as the kernel had it at the exec.
    for fault in &children {
        assert!(fault["code"]["module"].is_string(), "{fault}");
        assert_ne!(fault["mapping"], "[unknown]", "{fault}");
    }
    // The stack is named from its VMA as the kernel had it at the exec: the new program's own
    // stack faults, and execve's writes of the auxiliary vector when they fault.
    assert!(
        children.iter().any(|f| f["mapping"] == "[stack]"),
        "{children:#?}"
    );
    for fault in &children {
        if fault["mode"] == "kernel" && fault["code"]["symbol"] == "_copy_to_user" {
            assert_eq!(fault["mapping"], "[stack]", "{fault}");
        }
    }
    let summary = &of_kind(&lines, "summary")[0];
    assert_eq!(summary["unknown_mappings"], 0, "{summary}");
    // The child's binary is named as the kernel ran it.
    assert!(
        children.iter().any(|f| f["mapping"] == "/usr/bin/true"),
        "{children:#?}"
    );
}
