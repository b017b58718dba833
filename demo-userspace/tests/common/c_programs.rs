//! Compiles the C test programs of `demo trace` at run time, so what the tests trace is a real
//! program, unmodified by the tool.

use std::{path::PathBuf, process::Command};

/// Compiles `source` with the system C compiler into a fresh directory and returns the binary.
pub fn compile_c(name: &str, source: &str, defines: &[&str]) -> PathBuf {
    let dir = crate::common::test_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    // Workloads run as the invoking user under sudo; let them read the binary.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let c_file = dir.join(format!("{name}.c"));
    std::fs::write(&c_file, source).unwrap();
    let binary = dir.join(name);
    let status = Command::new("cc")
        .args(["-O0", "-o"])
        .arg(&binary)
        .arg(&c_file)
        .args(defines)
        .status()
        .expect("run the C compiler (cc)");
    assert!(status.success(), "compile {name}");
    binary
}

/// Writes one byte to each of `argv[1]` fresh pages of an anonymous mapping, then prints where
/// they are (in hex), so that a test can tell their faults from the program's start-up.
pub const TOUCH: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
int main(int argc, char **argv) {
    long pages = atol(argv[1]);
    char *area = mmap(NULL, pages * 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) return 1;
    for (long page = 0; page < pages; page++) area[page * 4096] = 1;
    printf("%lx\n", (unsigned long)area);
    return 0;
}
"#;

/// Names itself `a ESC ]2;x BEL newline b` with prctl (a terminal title sequence and a forged
/// line, as a hostile user would), writes a page of its own data, then writes `argv[1]` fresh
/// pages.
pub const HOSTILE: &str = r#"
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
static char data[3 * 4096] = {1};
int main(int argc, char **argv) {
    if (prctl(PR_SET_NAME, "a\033]2;x\007\nb", 0, 0, 0)) return 1;
    data[2 * 4096] = 2;
    long pages = argc > 1 ? atol(argv[1]) : 0;
    char *area = mmap(NULL, (pages + 1) * 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED) return 1;
    for (long i = 0; i < pages; i++) area[i * 4096] = 1;
    return 0;
}
"#;

/// The seed's alloc.c (demand-paging-demo.md), from which its Makefile builds `alloc` and,
/// with -DMMAP, `alloc_mmap`: the array comes from mmap with -DMMAP, else from malloc. It waits
/// for a line on stdin before each step, as the seed's getchar() calls do.
pub const SEED: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#define BYTES 20000
int main(void) {
    getchar();
#ifdef MMAP
    int *arr = mmap(NULL, BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
#else
    int *arr = malloc(BYTES);
#endif
    printf("arr = %p\n", (void *)arr);
    getchar(); arr[1500] = 1;
    getchar(); arr[1501] = 1;
    getchar(); arr[0] = 1;
    getchar(); arr[3000] = 1;
    return 0;
}
"#;
