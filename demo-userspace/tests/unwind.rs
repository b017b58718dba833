//! Whole stacks without frame pointers (`--call-graph dwarf`): a program built with
//! `-O1 -g -fomit-frame-pointer` whose libc `memset`, called through two of its functions,
//! faults on fresh pages. Unwound from the copied stack with the unwind tables, every fault
//! names the libc function, both callers and `main`; walked by frame pointers, it does not. A
//! copy too short is marked truncated and counted. Root, real kernel.

mod common;

use std::process::Stdio;

use common::c_programs::compile_c;
use common::json::{demo, of_kind, trace_to_file};
use serde_json::Value;

/// `main → prepare → fill_tiles → memset` writes 16 fresh pages. `prepare` keeps 4 KiB of its
/// own on the stack, so a copy of 1 KiB ends before `main`'s frame. Neither call is a tail
/// call (each function does something after it), so each caller keeps a frame. `main` calls
/// memset once before, for the fault on memset's own code page.
const TILES: &str = r#"
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
static char *tiles;
__attribute__((noinline)) int fill_tiles(int pages) {
    memset(tiles, 7, pages * 4096L);
    return tiles[pages * 4096L - 1];
}
__attribute__((noinline)) int prepare(int pages) {
    volatile char pad[4096];
    pad[0] = (char)pages;
    int filled = fill_tiles(pages);
    return filled + pad[0];
}
static char warm[16 * 4096];
int main(int argc, char **argv) {
    (void)argv;
    tiles = mmap(0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    /* memset's own code page faults at its first call (an instruction fetch); this call takes
       that fault, so that fill_tiles' faults are the 16 writes alone. */
    memset(warm, argc, sizeof warm - argc);
    int done = prepare(16);
    _exit(done == 23 ? 0 : 1);
}
"#;

/// As the issue's user built it.
const NO_FRAME_POINTERS: &[&str] = &["-O1", "-g", "-fomit-frame-pointer"];

fn tiles_program(name: &str) -> std::path::PathBuf {
    compile_c(name, TILES, NO_FRAME_POINTERS)
}

/// The faults on the 16 tiles: those in the region of 16 pages.
fn tile_faults(lines: &[Value]) -> Vec<Value> {
    common::json::faults_in_region_of(lines, 16 * 4096)
}

/// The symbols of a fault's stack, innermost first (`?` for a frame no symbol names).
fn symbols(fault: &Value) -> Vec<String> {
    fault["stack"]
        .as_array()
        .unwrap_or_else(|| panic!("a stack: {fault}"))
        .iter()
        .map(|frame| frame["symbol"].as_str().unwrap_or("?").to_owned())
        .collect()
}

fn trace(name: &str, args: &[&str], program: &std::path::Path) -> Vec<Value> {
    trace_to_file(name, args, &[program.as_os_str()], &[], Stdio::null())
}

#[test]
fn unwound_each_fault_names_memset_both_callers_and_main() {
    let program = tiles_program("tiles_dwarf");
    let lines = trace("tiles_dwarf", &["--call-graph", "dwarf"], &program);
    let start = &of_kind(&lines, "trace")[0];
    assert_eq!(
        start["call_graph"],
        serde_json::json!({"mode": "dwarf", "depth": null, "stack_bytes": 8192})
    );
    let faults = tile_faults(&lines);
    assert_eq!(faults.len(), 16, "{faults:#?}");
    for fault in &faults {
        let symbols = symbols(fault);
        assert!(symbols[0].contains("memset"), "{symbols:?}");
        assert_eq!(symbols[1..4], ["fill_tiles", "prepare", "main"], "{fault}");
        let stack = fault["stack"].as_array().unwrap();
        assert!(
            stack[0]["module"].as_str().unwrap().contains("libc.so"),
            "{fault}"
        );
        assert_eq!(stack[1]["module"], program.to_str().unwrap(), "{fault}");
        // The stack is whole: nothing cut it, and every frame had unwind tables.
        assert!(fault.get("stack_end").is_none(), "{fault}");
        assert!(
            stack
                .iter()
                .all(|frame| frame.get("no_unwind_info").is_none()),
            "{fault}"
        );
        // Each caller's line is that of its call.
        let line_of =
            |text: &str| TILES.lines().position(|line| line.contains(text)).unwrap() as u64 + 1;
        let lines: Vec<u64> = stack[1..4]
            .iter()
            .map(|frame| frame["line"].as_u64().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                line_of("memset(tiles"),
                line_of("fill_tiles(pages);"),
                line_of("prepare(16)")
            ],
            "{fault}"
        );
    }
    let summary = &of_kind(&lines, "summary")[0];
    let stacks = &summary["stacks"];
    assert_eq!(stacks["call_graph"]["mode"], "dwarf");
    assert_eq!(stacks["truncated"], 0, "{stacks}");
    assert_eq!(stacks["unreadable"], 0, "{stacks}");
    assert_eq!(
        stacks["stacks"].as_u64(),
        Some(of_kind(&lines, "fault").len() as u64),
        "every fault has its stack: {stacks}"
    );
}

/// What frame pointers give for the same program: `memset` and then no caller of the program
/// (the walk reads whatever the functions built without frame pointers left in rbp), so the
/// difference from dwarf shows.
#[test]
fn walked_by_frame_pointers_the_callers_are_lost() {
    let program = tiles_program("tiles_fp");
    let lines = trace("tiles_fp", &["--call-graph", "fp"], &program);
    assert_eq!(of_kind(&lines, "trace")[0]["call_graph"]["mode"], "fp");
    let faults = tile_faults(&lines);
    assert_eq!(faults.len(), 16);
    for fault in &faults {
        let symbols = symbols(fault);
        assert!(symbols[0].contains("memset"), "{symbols:?}");
        assert!(
            !symbols.iter().any(|symbol| symbol == "prepare"),
            "frame pointers found prepare: {symbols:?}"
        );
    }
}

#[test]
fn folded_has_one_line_with_the_whole_chain_and_its_count() {
    let program = tiles_program("tiles_folded");
    let out = common::output_file("tiles_folded");
    demo(&[
        "trace",
        "--call-graph",
        "dwarf",
        "--format",
        "folded",
        "--output",
        out.to_str().unwrap(),
        "--",
        program.to_str().unwrap(),
    ]);
    let folded = std::fs::read_to_string(&out).unwrap();
    let chains: Vec<&str> = folded
        .lines()
        .filter(|line| line.contains(";fill_tiles;"))
        .collect();
    assert_eq!(chains.len(), 1, "{folded}");
    let (frames, count) = chains[0].rsplit_once(' ').unwrap();
    assert_eq!(count, "16", "{folded}");
    let frames: Vec<&str> = frames.split(';').collect();
    let at = frames.iter().position(|frame| *frame == "main").unwrap();
    assert_eq!(frames[at..at + 3], ["main", "prepare", "fill_tiles"]);
    assert!(frames[at + 3].contains("memset"), "{frames:?}");
    assert_eq!(frames.len(), at + 4, "memset is the leaf: {frames:?}");
    assert!(frames[0].starts_with("tiles_folded"), "{frames:?}");
}

/// A 1 KiB copy holds `fill_tiles`'s and `prepare`'s return addresses but not `main`'s, which
/// lies past `prepare`'s 4 KiB: each stack ends there, marked truncated, and the summary
/// counts them.
#[test]
fn a_copy_too_short_is_marked_truncated_and_counted() {
    let program = tiles_program("tiles_short");
    let lines = trace("tiles_short", &["--stack-bytes", "1024"], &program);
    assert_eq!(
        of_kind(&lines, "trace")[0]["call_graph"]["stack_bytes"],
        1024
    );
    let faults = tile_faults(&lines);
    assert_eq!(faults.len(), 16);
    for fault in &faults {
        let symbols = symbols(fault);
        assert!(symbols[0].contains("memset"), "{symbols:?}");
        assert_eq!(symbols[1..], ["fill_tiles", "prepare"], "{fault}");
        assert_eq!(fault["stack_end"]["why"], "truncated", "{fault}");
    }
    let stacks = &of_kind(&lines, "summary")[0]["stacks"];
    assert!(stacks["truncated"].as_u64().unwrap() >= 16, "{stacks}");
    assert!(
        stacks["truncated_percent"].as_f64().unwrap() > 0.0,
        "{stacks}"
    );
}

/// `load → read(2)` into 16 fresh pages: the kernel faults on them while it copies. Each such
/// fault's stack is the kernel instruction, then the user frames unwound from where the
/// syscall was made: libc's `read`, `load`, `main`.
const LOAD: &str = r#"
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
static char *area;
__attribute__((noinline)) long load(int fd, int pages) {
    long got = read(fd, area, pages * 4096L);
    return got + area[0];
}
int main(void) {
    area = mmap(0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fd = open("/dev/zero", O_RDONLY);
    long got = load(fd, 16);
    _exit(got == 16 * 4096 ? 0 : 1);
}
"#;

#[test]
fn a_kernel_mode_fault_is_unwound_from_the_syscalls_registers() {
    let program = compile_c("load_dwarf", LOAD, NO_FRAME_POINTERS);
    let lines = trace("load_dwarf", &["--call-graph", "dwarf"], &program);
    let faults = tile_faults(&lines);
    assert_eq!(faults.len(), 16, "{faults:#?}");
    for fault in &faults {
        assert_eq!(fault["mode"], "kernel", "{fault}");
        let stack = fault["stack"].as_array().unwrap();
        assert_eq!(stack[0]["module"], "[kernel]", "{fault}");
        let symbols = symbols(fault);
        let read = symbols
            .iter()
            .position(|symbol| symbol.contains("read"))
            .unwrap_or_else(|| panic!("libc's read: {symbols:?}"));
        assert_eq!(symbols[read + 1..read + 3], ["load", "main"], "{symbols:?}");
    }
}
