//! Integration test of what a trace costs the loader in memory: a region's page states follow
//! the pages touched, not the pages mapped. It loads the real eBPF programs, needs root and
//! fails (never skips) without.

mod common;

use std::process::{Command, Stdio};

use common::c_programs::compile_c;
use common::json::{json_file, of_kind};
use common::{DEMO, output_file, require_root};

/// Maps 2^SIZE_SHIFT bytes (16 TiB unless told) with MAP_NORESERVE, as sanitizers map their
/// shadow, and writes two pages of it: the first, and the one after the middle.
const TWO_PAGES: &str = r#"
#include <stdio.h>
#include <sys/mman.h>
#ifndef SIZE_SHIFT
#define SIZE_SHIFT 44
#endif
int main(void) {
    unsigned long size = 1UL << SIZE_SHIFT;
    volatile char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                            MAP_NORESERVE | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    p[0] = 1;
    p[size / 2 + 4096] = 1;
    return 0;
}
"#;

const TIB: u64 = 1 << 40;
const PAGE: u64 = 4096;
/// How much more the loader's peak resident memory may be for the 16 TiB mapping than for a
/// 16 MiB one that the same program touches the same way: it was 2 bytes a mapped page, 8 GiB,
/// before the page states became sparse. (The whole peak of the debug build is about 130 MiB:
/// 60 MiB of its own code and 32 MiB of ring buffer mapped twice, whatever it traces.)
const MAX_GROWTH_KIB: i64 = 16 * 1024;

/// `demo trace --format json -o FILE -- PROGRAM`, reaped with wait4 and checked to succeed: its
/// rusage, and the lines it wrote.
fn trace_with_rusage(
    name: &str,
    program: &std::path::Path,
) -> (libc::rusage, Vec<serde_json::Value>) {
    require_root();
    let out = output_file(name);
    #[expect(
        clippy::zombie_processes,
        reason = "wait4 reaps it, for the rusage that Child::wait does not give"
    )]
    let demo = Command::new(DEMO)
        .args(["trace", "--format", "json", "--output"])
        .arg(&out)
        .arg("--")
        .arg(program)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start demo trace");
    let mut status = 0;
    // SAFETY: a zeroed rusage is valid, and wait4 fills it for our own child.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the pid is our child's, not yet reaped.
    let reaped = unsafe { libc::wait4(demo.id() as i32, &mut status, 0, &mut rusage) };
    assert_eq!(reaped, demo.id() as i32, "wait4 on demo");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "demo trace {name} failed: status {status:#x}"
    );
    (rusage, json_file(&out))
}

/// Traces the program built with `SIZE_SHIFT`: demo's peak RSS in KiB (wait4's ru_maxrss,
/// the largest of demo's and its reaped children's; the traced program's is under 2 MiB), and
/// the lines it wrote.
fn two_pages(size_shift: u32) -> (i64, Vec<serde_json::Value>) {
    let name = format!("two_pages_{size_shift}");
    let program = compile_c(&name, TWO_PAGES, &[&format!("-DSIZE_SHIFT={size_shift}")]);
    let (rusage, lines) = trace_with_rusage(&name, &program);
    (rusage.ru_maxrss, lines)
}

/// A 16 TiB MAP_NORESERVE mapping with two pages written becomes a region like any other: its
/// two faults are reported exactly, its summary lists the two pages, and demo's peak RSS is
/// within 16 MiB of what tracing a 16 MiB mapping costs (it was 8 GiB more, or death in a small
/// memory cgroup).
#[test]
fn a_16_tib_mapping_costs_the_loader_the_pages_touched() {
    let (baseline_kib, _) = two_pages(24);
    let (peak_kib, lines) = two_pages(44);
    assert!(
        peak_kib < baseline_kib + MAX_GROWTH_KIB,
        "demo's peak RSS was {peak_kib} KiB for 16 TiB mapped, {baseline_kib} KiB for 16 MiB"
    );
    let regions: Vec<_> = of_kind(&lines, "region")
        .into_iter()
        .filter(|region| region["size"] == 16 * TIB)
        .collect();
    assert_eq!(regions.len(), 1, "the 16 TiB regions: {regions:?}");
    assert_eq!(regions[0]["origin"], "mmap");
    assert_eq!(regions[0]["pages"], 16 * TIB / PAGE);
    let name = &regions[0]["name"];
    let second = (8 * TIB + PAGE) / PAGE;
    let faults: Vec<(u64, &str, &str)> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|fault| &fault["region"] == name)
        .map(|fault| {
            (
                fault["page"].as_u64().unwrap(),
                fault["access"].as_str().unwrap(),
                fault["class"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(faults, [(0, "write", "minor"), (second, "write", "minor")]);
    let summaries: Vec<_> = of_kind(&lines, "region_summary")
        .into_iter()
        .filter(|summary| &summary["name"] == name)
        .collect();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    let summary = summaries[0];
    assert_eq!(summary["faults"], 2);
    assert_eq!(summary["resident_pages"], serde_json::json!([0, second]));
    assert_eq!(summary["zero_pages"], serde_json::json!([]));
    // 64 glyphs of 2^26 pages each: the first and the 33rd hold a written page.
    let strip: String = (0..64)
        .map(|glyph| if glyph == 0 || glyph == 32 { '+' } else { '.' })
        .collect();
    assert_eq!(summary["pages"], strip.as_str());
}
