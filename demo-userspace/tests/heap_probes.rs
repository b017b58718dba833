//! The heap uprobes of `demo trace` live only in the processes it traces: an untraced process
//! keeps libc's malloc untouched in its memory, while the traced one, its threads started after
//! the attach, and its followed children have their heap blocks found. Root, real kernel.

mod common;

use std::{
    io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::c_programs::compile_c;
use common::json::{json_file, of_kind, parse_line};
use common::{DEMO, output_file, require_root};
use serde_json::Value;

/// Prints where libc's malloc is in its own memory, then calls malloc and free until killed.
const MALLOC_LOOP: &str = r#"
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    printf("%p\n", (void *)malloc);
    fflush(stdout);
    for (;;) { void *volatile block = malloc(64); free(block); }
}
"#;

/// Reads a line, then starts 4 threads that each malloc 65536 bytes and write every page of
/// them; then forks a child that waits 300 ms (for the loader to attach its uprobes) and
/// mallocs 40960 bytes and writes them. Prints the address of malloc first.
const THREADS_THEN_FORK: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static void *worker(void *arg) {
    (void)arg;
    char *block = malloc(65536);
    memset(block, 1, 65536);
    return block;
}
int main(void) {
    printf("%p\n", (void *)malloc);
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, worker, NULL);
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    pid_t child = fork();
    if (child == 0) {
        usleep(300000);
        char *block = malloc(40960);
        memset(block, 2, 40960);
        _exit(0);
    }
    waitpid(child, 0, 0);
    return 0;
}
"#;

/// A child killed and reaped when the test ends, also when it fails.
struct Reaped(Child);

impl Reaped {
    fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        // SIGINT first, so a tracer detaches the normal way; then make sure.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        std::thread::sleep(Duration::from_millis(50));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The first byte of the instruction at `address` in process `pid`'s memory: 0xcc where a
/// uprobe's breakpoint is planted.
fn first_byte(pid: u32, address: u64) -> u8 {
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    mem.seek(SeekFrom::Start(address)).unwrap();
    let mut byte = [0u8];
    mem.read_exact(&mut byte).unwrap();
    byte[0]
}

/// Starts `program` with piped stdio and reads the address it prints first.
fn start_with_address(program: &std::path::Path) -> (Reaped, u64) {
    let mut child = Command::new(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = u64::from_str_radix(line.trim().trim_start_matches("0x"), 16).unwrap();
    (Reaped(child), address)
}

/// Waits until the JSON output has its start line: everything is attached then.
fn wait_for_start(out: &std::path::Path, tracer: &mut Reaped) {
    let start = Instant::now();
    while !std::fs::read_to_string(out).is_ok_and(|text| text.contains("\"kind\":\"trace\"")) {
        assert!(
            tracer.0.try_wait().unwrap().is_none(),
            "demo trace ended early"
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "demo trace did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_untraced_process_keeps_its_malloc_free_of_breakpoints() {
    require_root();
    let looper = compile_c("malloc_loop", MALLOC_LOOP, &[]);
    let (untraced, untraced_malloc) = start_with_address(&looper);
    let (traced, traced_malloc) = start_with_address(&looper);
    assert_eq!(
        first_byte(untraced.id(), untraced_malloc),
        first_byte(traced.id(), traced_malloc)
    );
    assert_ne!(
        first_byte(traced.id(), traced_malloc),
        0xcc,
        "a breakpoint before demo ran"
    );

    let out = output_file("scoped-uprobes");
    let _ = std::fs::remove_file(&out);
    let mut tracer = Reaped(
        Command::new(DEMO)
            .args(["trace", "--heap", "--format", "json", "--output"])
            .arg(&out)
            .args(["--pid", &traced.id().to_string()])
            .spawn()
            .unwrap(),
    );
    wait_for_start(&out, &mut tracer);
    // The kernel plants a uprobe's breakpoint in each process it applies to at once.
    assert_eq!(
        first_byte(traced.id(), traced_malloc),
        0xcc,
        "the traced process has the malloc breakpoint"
    );
    assert_ne!(
        first_byte(untraced.id(), untraced_malloc),
        0xcc,
        "the untraced process must not have it"
    );
    // A process started while demo traces is not touched either.
    let (newcomer, newcomer_malloc) = start_with_address(&looper);
    assert_ne!(first_byte(newcomer.id(), newcomer_malloc), 0xcc);

    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    assert!(tracer.0.wait().unwrap().success());
    // Detached: the traced process's malloc is whole again, and nothing of ours is loaded.
    assert_ne!(first_byte(traced.id(), traced_malloc), 0xcc);
    common::kernel::assert_nothing_of_ours_is_loaded();
    drop((untraced, traced, newcomer));
    let heap_calls: u64 =
        of_kind(&json_file(&out), "summary")[0]["records"]["heap_enter"]["delivered"]
            .as_u64()
            .unwrap();
    assert!(heap_calls > 0, "the traced loop's calls were recorded");
}

#[test]
fn a_pid_trace_leaves_malloc_alone_unless_asked() {
    require_root();
    let looper = compile_c("malloc_loop_default", MALLOC_LOOP, &[]);
    let (target, malloc) = start_with_address(&looper);
    let out = output_file("pid-default");
    let _ = std::fs::remove_file(&out);
    let mut tracer = Reaped(
        Command::new(DEMO)
            .args(["trace", "--format", "json", "--output"])
            .arg(&out)
            .args(["--pid", &target.id().to_string()])
            .spawn()
            .unwrap(),
    );
    wait_for_start(&out, &mut tracer);
    assert_ne!(first_byte(target.id(), malloc), 0xcc);
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    assert!(tracer.0.wait().unwrap().success());
    drop(target);
    let lines = json_file(&out);
    assert_eq!(of_kind(&lines, "trace")[0]["heap_probes"], Value::Null);
}

#[test]
fn threads_started_after_attach_and_followed_children_have_their_heap_blocks_found() {
    require_root();
    let program = compile_c("threads_then_fork", THREADS_THEN_FORK, &[]);
    let out = output_file("threads");
    let _ = std::fs::remove_file(&out);
    let mut tracer = Command::new(DEMO)
        .args(["trace", "--follow", "--format", "json", "--output"])
        .arg(&out)
        .arg("--")
        .arg(&program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(tracer.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let malloc = u64::from_str_radix(line.trim().trim_start_matches("0x"), 16).unwrap();
    let lines_so_far = std::fs::read_to_string(&out).unwrap();
    let start: Value = parse_line(lines_so_far.lines().next().unwrap());
    let pid = start["pid"].as_u64().unwrap() as u32;
    assert_eq!(
        first_byte(pid, malloc),
        0xcc,
        "attached before the threads exist"
    );
    use std::io::Write as _;
    writeln!(tracer.stdin.as_mut().unwrap(), "go").unwrap();
    assert!(tracer.wait().unwrap().success());
    let lines = json_file(&out);

    let blocks: Vec<&Value> = of_kind(&lines, "region")
        .into_iter()
        .filter(|region| region["origin"] == "malloc")
        .collect();
    let of_size = |size: u64, pid: u64| -> Vec<&Value> {
        blocks
            .iter()
            .copied()
            .filter(|r| r["size"] == size && r["pid"] == pid)
            .collect()
    };
    let thread_blocks = of_size(65536, u64::from(pid));
    assert_eq!(thread_blocks.len(), 4, "one block per thread: {blocks:?}");
    for block in thread_blocks {
        let faults: Vec<&Value> = of_kind(&lines, "fault")
            .into_iter()
            .filter(|fault| fault["region"] == block["name"])
            .collect();
        let mut pages: Vec<u64> = faults.iter().map(|f| f["page"].as_u64().unwrap()).collect();
        pages.sort_unstable();
        pages.dedup();
        // The block starts 0xb70 into its thread's arena, after the arena's header on page 0;
        // malloc itself faulted page 16 writing the next chunk's header before it returned, so
        // the memset faults pages 1 to 15, each once.
        assert_eq!(block["pages"], 17);
        assert_eq!(
            pages,
            (1..=15).collect::<Vec<u64>>(),
            "pages of {}",
            block["name"]
        );
        assert_eq!(faults.len(), 15);
        assert!(
            faults.iter().all(|f| f["tid"] != u64::from(pid)),
            "a worker thread, not the main one, wrote block {}",
            block["name"]
        );
    }
    let child = of_kind(&lines, "process")
        .into_iter()
        .find(|p| p["event"] == "fork")
        .expect("the fork is traced")["pid"]
        .as_u64()
        .unwrap();
    let child_blocks = of_size(40960, child);
    assert_eq!(child_blocks.len(), 1, "the child's block: {blocks:?}");
    let child_faults = of_kind(&lines, "fault")
        .into_iter()
        .filter(|f| f["region"] == child_blocks[0]["name"] && f["pid"] == child)
        .count();
    // 40960 bytes span 10 or 11 pages; the first and last share chunk headers malloc wrote.
    assert!(
        (9..=11).contains(&child_faults),
        "the child wrote its block: {child_faults}"
    );
}
