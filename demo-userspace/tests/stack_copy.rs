//! The kernel side of `--call-graph dwarf`, checked without the unwinder: the programs copy the
//! user registers and exactly the user stack's bytes, as far as they can be read, for faults
//! in user mode and in kernel mode, and for a fault of the stack growing, which skips the
//! pages at the stack pointer that are not there yet. Then that fault's stack unwound by demo.

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Command, Stdio},
};

use common::json::{of_kind, trace_to_file};
use demo::{
    kernel::{
        probes::{ProbeOptions, Probes},
        records::decode,
    },
    model::events::{Fault, RawStack, Record, StackCopy},
};
use demo_common::{FaultSource, target_flags};
use procfs::process::Process;

/// Runs `deep` on a stack of its own, 12 pages mapped below a page that cannot be read, so
/// that where a copy of it must stop is known (or, built with `-DMAIN_STACK`, on the main
/// thread's stack); `deep` fills 32 KiB of its frame with words that name their own address,
/// then calls `fault_now`, which writes a fresh page (a fault in user mode) and reads a byte
/// into another one (a fault in kernel mode, in read(2)). It prints the own stack's top (0 on
/// the main stack) and the fresh pages' address, then waits for a line.
const DEEP: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#define MAGIC 0x5a17c0de5a17c0deUL
#define WORDS 4096
#define STACK_PAGES 12
static char *fresh;
static int pipefd[2];
static ucontext_t main_context, deep_context;
__attribute__((noinline)) static void fault_now(void) {
    fresh[0] = 1;
    if (read(pipefd[0], fresh + 4096, 1) != 1) _exit(3);
}
static void deep(void) {
    volatile unsigned long words[WORDS];
    for (int i = 0; i < WORDS; i++) words[i] = (unsigned long)&words[i] ^ MAGIC;
    fault_now();
}
int main(void) {
#ifdef MAIN_STACK
    fresh = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fresh == MAP_FAILED || pipe(pipefd) || write(pipefd[1], "x", 1) != 1) return 1;
    printf("0 %lx\n", (unsigned long)fresh);
    fflush(stdout);
    if (getchar() == EOF) return 2;
    deep();
    return 0;
#endif
    char *stack = mmap(NULL, (STACK_PAGES + 1) * 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fresh = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED || fresh == MAP_FAILED) return 1;
    if (mprotect(stack + STACK_PAGES * 4096, 4096, PROT_NONE) || pipe(pipefd)) return 1;
    if (write(pipefd[1], "x", 1) != 1 || getcontext(&deep_context)) return 1;
    deep_context.uc_stack.ss_sp = stack;
    deep_context.uc_stack.ss_size = STACK_PAGES * 4096;
    deep_context.uc_link = &main_context;
    makecontext(&deep_context, deep, 0);
    printf("%lx %lx\n", (unsigned long)(stack + STACK_PAGES * 4096), (unsigned long)fresh);
    fflush(stdout);
    if (getchar() == EOF) return 2;
    return swapcontext(&main_context, &deep_context) ? 1 : 0;
}
"#;

/// What `DEEP` writes in each word of its patterned frame: the word's address,
/// xored with this.
const MAGIC: u64 = 0x5a17_c0de_5a17_c0de;

/// How many patterned words the program writes.
const WORDS: usize = 4096;

/// Which stack `DEEP` runs on.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stack {
    /// A mapping of its own, below a page that cannot be read.
    Own,
    /// The main thread's, with this many bytes of environment above its first frame.
    Main { environment: usize },
}

/// The two faults of `fault_now`, as one trace copying `stack_bytes` saw them.
struct Copies {
    /// Where the copies must stop: the own stack's unreadable page, or the end of the page
    /// that holds the main thread's first frame (`/proc/PID/stat`'s startstack).
    top: u64,
    /// The end of the VMA that holds the stack.
    vma_end: u64,
    user: (u64, StackCopy),
    kernel: (u64, StackCopy),
    /// Fault records at the unreadable page: the faults the copies themselves took there.
    at_top: usize,
}

/// One traced run of a program that prints a line of hex numbers and then waits for a line
/// before it does what the test traces.
struct Run<T> {
    /// The numbers of the program's line.
    printed: Vec<u64>,
    /// What the test read of the process before it went on.
    inspected: T,
    /// Each of its faults with the stack the kernel side copied.
    faults: Vec<(Fault, StackCopy)>,
}

/// Runs `program` with `args` and `environment` bytes of padding in its environment, traced
/// from its line on with `stack_bytes` of user stack copied per fault; `inspect` reads the
/// process, knowing the line's numbers, before it goes on.
fn run_traced<T>(
    program: &Path,
    args: &[&str],
    environment: usize,
    stack_bytes: u32,
    inspect: impl FnOnce(&Process, &[u64]) -> T,
) -> Run<T> {
    common::require_root();
    let mut probes = Probes::load(&ProbeOptions {
        stack_bytes,
        ..ProbeOptions::default()
    })
    .expect("load the programs");
    let mut events = probes.take_events().expect("take the ring buffer");
    let mut child = Command::new(program)
        .args(args)
        .env("STACK_COPY_PADDING", "x".repeat(environment))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the program");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("read the program's line");
    let printed: Vec<u64> = (line.split_whitespace())
        .map(|word| u64::from_str_radix(word, 16).expect(&line))
        .collect();
    let inspected = inspect(&Process::new(child.id() as i32).unwrap(), &printed);
    probes
        .add_target(child.id(), target_flags::REPORT)
        .expect("trace the program");
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert!(child.wait().unwrap().success(), "the program failed");
    let mut faults = Vec::new();
    while let Some(item) = events.next() {
        let decoded = decode(&item).expect("decode a record");
        if let (Record::Fault(fault), Some(RawStack::Copied(copy))) =
            (decoded.record, decoded.stack)
        {
            assert_eq!(copy.requested, stack_bytes);
            faults.push((fault, copy));
        }
    }
    Run {
        printed,
        inspected,
        faults,
    }
}

/// Where copies of the main thread's stack stop: just past its first word, `argc`, at
/// `/proc/PID/stat`'s startstack (the kernel side reads on to the end of that page, but what
/// lies above `argc` is never unwound, and the record does not count it).
fn main_stack_top(process: &Process) -> u64 {
    process.stat().unwrap().startstack + 8
}

/// The mapping of `process` that holds `address`, as its start and end.
fn mapping_of(process: &Process, address: u64) -> (u64, u64) {
    (process.maps().unwrap().into_iter())
        .map(|map| map.address)
        .find(|&(start, end)| start < address && address <= end)
        .expect("the stack's mapping")
}

/// Traces one run of the program on `stack` with `stack_bytes` of user stack copied per
/// fault, and returns the records of its two faults on the fresh pages (each with the
/// fault's ip).
fn trace(stack: Stack, stack_bytes: u32) -> Copies {
    let (name, defines, environment): (_, &[&str], _) = match stack {
        Stack::Own => ("stack_copy", &[], 0),
        Stack::Main { environment } => ("stack_copy_main", &["-DMAIN_STACK"], environment),
    };
    let program = common::c_programs::compile_c(name, DEEP, defines);
    let run = run_traced(
        &program,
        &[],
        environment,
        stack_bytes,
        |process, printed| {
            let top = match stack {
                Stack::Own => printed[0],
                Stack::Main { .. } => main_stack_top(process),
            };
            (top, mapping_of(process, top).1)
        },
    );
    let fresh = run.printed[1];
    let (top, vma_end) = run.inspected;
    let (mut user, mut kernel, mut at_top) = (None, None, 0);
    for (fault, copy) in run.faults {
        if fault.address & !4095 == top {
            at_top += 1;
        }
        match (fault.address, fault.source) {
            (address, FaultSource::User) if address == fresh => user = Some((fault.ip, copy)),
            (address, FaultSource::Kernel) if address == fresh + 4096 => {
                kernel = Some((fault.ip, copy));
            }
            _ => {}
        }
    }
    Copies {
        top,
        vma_end,
        user: user.expect("a record of the fault in user mode"),
        kernel: kernel.expect("a record of the fault in kernel mode"),
        at_top,
    }
}

/// The words of `copy` that `ON_ITS_OWN_STACK` patterned: the index of the first and how many
/// follow it, all of them in a row.
fn patterned_words(copy: &StackCopy) -> (usize, usize) {
    let words: Vec<u64> = copy
        .bytes
        .chunks_exact(8)
        .map(|word| u64::from_ne_bytes(word.try_into().unwrap()))
        .collect();
    let names_itself = |(i, &word): (usize, &u64)| word ^ (copy.regs.sp + 8 * i as u64) == MAGIC;
    let first = words
        .iter()
        .enumerate()
        .position(names_itself)
        .expect("patterned words in the copy");
    let run = words[first..]
        .iter()
        .enumerate()
        .take_while(|&(i, word)| names_itself((first + i, word)))
        .count();
    (first, run)
}

/// Checks what holds of every copy: it is exactly as long as the stack could be read, up to
/// the bytes asked for, and it holds the user memory at the stack pointer, word for word.
fn check(copies: &Copies, stack_bytes: u32) {
    let (fault_ip, user) = &copies.user;
    let (kernel_ip, kernel) = &copies.kernel;
    // A fault in user mode copies its own registers; one in kernel mode those of its syscall.
    assert_eq!(user.regs.ip, *fault_ip);
    assert!(*kernel_ip >= 0xffff_8000_0000_0000, "{kernel_ip:#x}");
    assert!(
        kernel.regs.ip < 0x0000_8000_0000_0000,
        "{:#x}",
        kernel.regs.ip
    );
    // read(2)'s frames lie below fault_now's.
    assert!(kernel.regs.sp < user.regs.sp);
    for copy in [user, kernel] {
        let readable = copies.top - copy.regs.sp;
        assert_eq!(
            copy.bytes.len() as u64,
            readable.min(u64::from(stack_bytes)),
            "{stack_bytes} bytes asked for, {readable} readable"
        );
        let (first, run) = patterned_words(copy);
        // Below the patterned words are fault_now's frame, and read(2)'s: a few words.
        assert!(first < 64, "patterned words from word {first}");
        let expected = WORDS.min(copy.bytes.len() / 8 - first);
        assert_eq!(run, expected, "patterned words from word {first}");
    }
}

/// A copy that reaches the unreadable page stops at its edge, at a page boundary; the whole
/// pages before it are kept.
#[test]
fn a_copy_longer_than_the_stack_keeps_all_of_it() {
    let copies = trace(Stack::Own, 65536);
    assert!(copies.top - copies.user.1.regs.sp < 65536 - 4096);
    check(&copies, 65536);
    // Each copy read into the unreadable page, a fault in kernel mode in the traced process;
    // those are the tracer's own, and not reported.
    assert_eq!(copies.at_top, 0);
}

/// A copy whose last piece, shorter than a page, crosses into the unreadable page: that read
/// fails, and the bytes it spanned that were read before are read again, not lost.
#[test]
fn a_last_piece_that_fails_keeps_the_bytes_before_it() {
    // The program's path to the fault is the same in every run, on a stack of its own, so the
    // distance from its stack pointer to the top is too.
    let first = trace(Stack::Own, 65536);
    let readable = first.top - first.user.1.regs.sp;
    let stack_bytes = (readable as u32 + 2048) & !7;
    let copies = trace(Stack::Own, stack_bytes);
    assert_eq!(copies.top - copies.user.1.regs.sp, readable);
    assert_eq!(copies.user.1.bytes.len() as u64, readable);
    check(&copies, stack_bytes);
}

/// A copy shorter than the stack reads whole pages and then the last piece, which it keeps.
#[test]
fn a_copy_shorter_than_the_stack_is_whole() {
    let copies = trace(Stack::Own, 8192);
    assert_eq!(copies.user.1.bytes.len(), 8192);
    assert_eq!(copies.kernel.1.bytes.len(), 8192);
    check(&copies, 8192);
}

/// On the main thread's stack a copy stops just past its first frame's `argc`: above are only
/// the arguments and the environment, which no unwinder reads (and past them the read that
/// would fault, which costs more than a page's copy).
#[test]
fn a_copy_of_the_main_stack_stops_above_its_first_frame() {
    // An environment of three pages puts readable memory above that page.
    let copies = trace(
        Stack::Main {
            environment: 3 * 4096,
        },
        65536,
    );
    assert!(
        copies.vma_end > copies.top + 4096,
        "{:#x} {:#x}",
        copies.vma_end,
        copies.top
    );
    check(&copies, 65536);
}

/// `main → descend → name_words → grow_frame` on the main thread's stack, run twice. `descend`
/// allocates as many bytes as `main` asks and writes them from the top down, a page at a time
/// (as stack probes do), so that the frames below it are on pages never touched before.
/// `name_words` fills 2 KiB of its frame with words that name their own address.
/// `grow_frame`, built without stack probes, grows its frame by `BIG_BYTES` in one instruction
/// and writes its lowest byte first: a fault on the page at the stack pointer, with the pages
/// above it up to its return address not there either. The first run finds where `grow_frame`'s
/// frame lands; the second, from the same place in `main`, goes `argv[1]` pages deeper and as
/// much more as puts the stack pointer `argv[2]` bytes into its page. With a third argument the
/// program prints `grow_frame`'s address and waits for a line before the second run.
const GROW: &str = r#"
#include <alloca.h>
#include <stdio.h>
#include <stdlib.h>
#define MAGIC 0x5a17c0de5a17c0deUL
#define WORDS 256
static unsigned long placed;
__attribute__((noipa)) static int settle(int value) { return value; }
__attribute__((noipa)) static int grow_frame(int seed) {
    volatile char big[BIG_BYTES];
    big[0] = (char)seed;
    placed = (unsigned long)&big[0];
    return settle(big[0]);
}
__attribute__((noipa)) static int name_words(int seed) {
    volatile unsigned long words[WORDS];
    for (int i = 0; i < WORDS; i++) words[i] = (unsigned long)&words[i] ^ MAGIC;
    return grow_frame(seed) + (int)(words[0] & 1);
}
__attribute__((noipa)) static int descend(int seed, unsigned long depth) {
    volatile char *gap = alloca(depth);
    for (long i = depth - 1; i >= 0; i -= 4096) gap[i] = (char)seed;
    gap[0] = (char)seed;
    return name_words(seed) + gap[depth - 1];
}
int main(int argc, char **argv) {
    if (argc < 3) return 1;
    unsigned long pages = strtoul(argv[1], 0, 10), in_page = strtoul(argv[2], 0, 10);
    int first = descend(1, 4 * 4096);
    unsigned long depth = (4 + pages) * 4096 + ((placed - in_page) & 4095);
    if (argc > 3) {
        printf("%lx\n", (unsigned long)grow_frame);
        fflush(stdout);
        if (getchar() == EOF) return 2;
    }
    if (descend(1, depth) != first) return 3;
    return (placed & 4095) == in_page ? 0 : 4;
}
"#;

/// How many self-naming words `GROW`'s `name_words` writes.
const GROW_WORDS: usize = 256;

/// `GROW` with a frame of `big_bytes` in `grow_frame`, built as most distributions' code is,
/// without frame pointers, and without stack probes, so that `grow_frame` grows at once.
fn grow_program(big_bytes: u32) -> std::path::PathBuf {
    let name = format!("stack_growth_{big_bytes}");
    let big = format!("-DBIG_BYTES={big_bytes}");
    let flags = [
        "-O1",
        "-g",
        "-fomit-frame-pointer",
        "-fno-stack-clash-protection",
    ];
    let defines: Vec<&str> = flags.into_iter().chain([big.as_str()]).collect();
    common::c_programs::compile_c(&name, GROW, &defines)
}

/// One case of a fault of the stack growing.
struct Growth {
    /// `grow_frame`'s frame, less its return address.
    big_bytes: u32,
    /// How many pages deeper than the first run the second runs.
    pages: u64,
    /// Where the stack pointer is in its page at the fault.
    in_page: u64,
    stack_bytes: u32,
    /// The stack pointer is below the stack's mapping as the process started with it.
    below_the_mapping: bool,
    /// The pages below the one that holds grow_frame's return address, from the stack pointer.
    skipped: u32,
}

/// A fault of the stack growing onto pages not there yet, in the stack's mapping (the one the
/// kernel makes at exec reaches 128 KiB below the arguments) or below it (64 pages deeper):
/// either way the copy cannot read them. It skips them, keeps their place, and copies the
/// stack above them: every named word is there, at its own address. A copy of 8 KiB whose
/// last page starts among the skipped ones still reads the rest.
#[test]
fn a_fault_of_the_stack_growing_skips_the_pages_not_there_and_copies_the_rest() {
    let three_pages = |pages, below_the_mapping| Growth {
        big_bytes: 3 * 4096,
        pages,
        in_page: 2048,
        stack_bytes: 65536,
        below_the_mapping,
        // The rest of the page at the stack pointer, then two whole pages.
        skipped: 2048 + 2 * 4096,
    };
    let into_the_last_page = Growth {
        big_bytes: 6144,
        pages: 4,
        in_page: 3072,
        stack_bytes: 8192,
        below_the_mapping: false,
        skipped: 1024 + 4096,
    };
    for case in [
        three_pages(4, false),
        three_pages(64, true),
        into_the_last_page,
    ] {
        check_growth(&case);
    }
}

fn check_growth(case: &Growth) {
    let args = [&case.pages.to_string(), &case.in_page.to_string(), "wait"];
    let run = run_traced(
        &grow_program(case.big_bytes),
        &args,
        0,
        case.stack_bytes,
        |process, _| {
            let top = main_stack_top(process);
            (top, mapping_of(process, top).0)
        },
    );
    let (top, mapping_start) = run.inspected;
    let grow_frame = run.printed[0];
    // The fault of grow_frame's first instructions on the page at its stack pointer.
    let grown: Vec<&(Fault, StackCopy)> = (run.faults.iter())
        .filter(|(fault, copy)| {
            fault.source == FaultSource::User
                && fault.ip.wrapping_sub(grow_frame) < 64
                && fault.address & !4095 == copy.regs.sp & !4095
        })
        .collect();
    let [(fault, copy)] = grown[..] else {
        panic!("one fault of the stack growing: {grown:#?}");
    };
    let (sp, skipped) = (copy.regs.sp, u64::from(copy.skipped));
    let at = format!(
        "{} bytes of frame, {} bytes copied: fault at {:#x}, sp {sp:#x}, skipped {skipped}, \
         mapping from {mapping_start:#x}",
        case.big_bytes, case.stack_bytes, fault.address
    );
    assert_eq!(sp % 4096, case.in_page, "{at}");
    assert_eq!(sp < mapping_start, case.below_the_mapping, "{at}");
    assert_eq!(copy.skipped, case.skipped, "{at}");
    assert!(
        copy.bytes[..skipped as usize].iter().all(|&byte| byte == 0),
        "{at}"
    );
    // The reads that failed there faulted in kernel mode: the tracer's own faults, not
    // reported.
    let own = (run.faults.iter())
        .filter(|(other, _)| (sp..sp + skipped).contains(&other.address))
        .filter(|(other, _)| other.source == FaultSource::Kernel)
        .count();
    assert_eq!(own, 0, "{at}");
    // The rest is copied, up to the main stack's first frame or the copy's length.
    let copied = (top - sp).min(u64::from(case.stack_bytes));
    assert_eq!(copy.bytes.len() as u64, copied, "{at}");
    // The first page read holds grow_frame's return address, and name_words' words follow it,
    // as many as the copy holds.
    let (first, named) = patterned_words(copy);
    let words_at = 8 * first as u64;
    assert_eq!(
        words_at,
        u64::from(case.big_bytes) + 16,
        "{at}: words at {words_at}"
    );
    let held = (copied - words_at) / 8;
    assert_eq!(named as u64, held.min(GROW_WORDS as u64), "{at}");
}

/// The symbols of a fault's stack in demo's JSON, innermost first (`?` where none names a
/// frame).
fn symbols(fault: &serde_json::Value) -> Vec<&str> {
    (fault["stack"].as_array())
        .unwrap_or_else(|| panic!("a stack: {fault}"))
        .iter()
        .map(|frame| frame["symbol"].as_str().unwrap_or("?"))
        .collect()
}

/// Unwound by demo, the fault of the stack growing names its function and every caller to
/// `main`, from the stack above the skipped pages.
#[test]
fn a_fault_of_the_stack_growing_is_unwound_to_main() {
    let program = grow_program(3 * 4096);
    let lines = trace_to_file(
        "stack_growth_dwarf",
        &["--call-graph", "dwarf", "--stack-bytes", "65536"],
        &[program.as_os_str(), "4".as_ref(), "2048".as_ref()],
        &[],
        Stdio::null(),
    );
    // The second run's fault in grow_frame: its first write, at the stack pointer, which that
    // run put 2048 bytes into its page.
    let faults = of_kind(&lines, "fault");
    let address = |fault: &serde_json::Value| {
        let hex = fault["address"].as_str().unwrap().trim_start_matches("0x");
        u64::from_str_radix(hex, 16).unwrap()
    };
    let grown: Vec<&&serde_json::Value> = (faults.iter())
        .filter(|fault| fault["stack"][0]["symbol"] == "grow_frame")
        .filter(|fault| address(fault) % 4096 == 2048)
        .collect();
    assert!(!grown.is_empty(), "a fault in grow_frame: {faults:#?}");
    for fault in grown {
        assert_eq!(fault["mode"], "user", "{fault}");
        assert_eq!(
            symbols(fault)[..4],
            ["grow_frame", "name_words", "descend", "main"],
            "{fault}"
        );
        assert!(fault.get("stack_end").is_none(), "{fault}");
    }
}

/// The verifier takes the copy's size as a constant and checks every read against it, so
/// whether it accepts the programs depends on the size: each kind of size loads, below a page,
/// at and around page multiples, and up to the limit. (A sweep of 72 sizes, every page
/// multiple and its neighbours among them, loaded too when this was written.)
#[test]
fn the_programs_load_with_every_kind_of_size() {
    common::require_root();
    for stack_bytes in [8, 4088, 4096, 4104, 8192, 34880, 65536] {
        if let Err(error) = Probes::load(&ProbeOptions {
            stack_bytes,
            ..ProbeOptions::default()
        }) {
            panic!("{stack_bytes} bytes: {error}");
        }
    }
}
