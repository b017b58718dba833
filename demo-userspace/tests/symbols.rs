//! Which code faulted: the function and source line of every fault, its stack with --stacks,
//! the folded stacks, a stripped binary's module+offset, and the glibc function behind the
//! malloc walk's allocation fault. C programs compiled at test time; root, real kernel.

mod common;

use std::{path::Path, process::Stdio};

use common::c_programs::compile_c;
use common::json::{demo, json_lines, of_kind, trace_to_file};
use serde_json::Value;

/// `fill` writes one byte to each of 16 fresh pages, called from main through outer and
/// middle; the program exits at once after.
const CALLS: &str = r#"
#include <sys/mman.h>
#include <unistd.h>
static char *buffer;
__attribute__((noinline)) void fill(int pages) {
    for (int i = 0; i < pages; i++)
        buffer[i * 4096] = 1; /* the faulting write */
}
__attribute__((noinline)) void middle(int pages) { fill(pages); }
__attribute__((noinline)) void outer(int pages) { middle(pages); }
int main(void) {
    buffer = mmap(0, 16 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    outer(16);
    _exit(0);
}
"#;

const DEBUG_FLAGS: &[&str] = &["-g", "-O0", "-fno-omit-frame-pointer"];

/// The source line of the faulting write.
fn write_line() -> u64 {
    // The file's first line is the empty one after `r#"`.
    CALLS
        .lines()
        .position(|line| line.contains("the faulting write"))
        .unwrap() as u64
        + 1
}

fn calls_program(name: &str) -> std::path::PathBuf {
    compile_c(name, CALLS, DEBUG_FLAGS)
}

fn trace(name: &str, args: &[&str], program: &Path) -> Vec<Value> {
    trace_to_file(name, args, &[program.as_os_str()], &[], Stdio::null())
}

/// The faults on the 16-page buffer: the region of 16 pages.
fn buffer_faults(lines: &[Value]) -> Vec<Value> {
    common::json::faults_in_region_of(lines, 16 * 4096)
}

fn hex(value: &Value) -> u64 {
    u64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

#[test]
fn each_write_names_its_function_file_and_line_after_the_program_exited() {
    let program = calls_program("calls");
    let lines = trace("calls", &[], &program);
    let faults = buffer_faults(&lines);
    assert_eq!(faults.len(), 16, "{faults:#?}");
    for fault in &faults {
        let code = &fault["code"];
        assert_eq!(code["module"], program.to_str().unwrap(), "{fault}");
        assert_eq!(code["symbol"], "fill", "{fault}");
        assert_eq!(code["file"], "calls.c", "{fault}");
        assert_eq!(code["line"], write_line(), "{fault}");
        assert!(
            code.get("inlined").is_none(),
            "no call is inlined there: {fault}"
        );
        assert!(fault.get("stack").is_none(), "no stack without --stacks");
    }
    // One instruction made every fault.
    assert!(faults.iter().all(|f| f["ip"] == faults[0]["ip"]));
    let summary = &of_kind(&lines, "summary")[0];
    let top = &summary["faults_by_function"][0];
    assert_eq!(
        (&top["symbol"], &top["faults"]),
        (&"fill".into(), &16.into())
    );
    let pair = &summary["faults_by_function_and_region"][0];
    assert_eq!(
        (&pair["symbol"], &pair["faults"]),
        (&"fill".into(), &16.into())
    );
    assert!(pair["region"].as_str().unwrap().starts_with("mmap#"));
}

#[test]
fn with_stacks_each_fault_has_its_callers_down_to_main() {
    let program = calls_program("calls_stacks");
    let lines = trace("calls_stacks", &["--stacks"], &program);
    // Walking a stack past the last frame pointer faults in the kernel, in the traced task: those
    // faults are the tracer's own, and not reported as the program's.
    let faults = of_kind(&lines, "fault");
    let errors: Vec<&&Value> = faults.iter().filter(|f| f["class"] == "error").collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let faults = buffer_faults(&lines);
    assert_eq!(faults.len(), 16);
    for fault in &faults {
        let stack = fault["stack"].as_array().expect("a stack");
        let symbols: Vec<&str> = stack
            .iter()
            .map(|frame| frame["symbol"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(symbols[..4], ["fill", "middle", "outer", "main"], "{fault}");
        // Frame 0 is the faulting instruction itself, named as the fault's code is.
        assert_eq!(stack[0]["address"], fault["ip"]);
        assert_eq!(stack[0]["line"], fault["code"]["line"]);
        // Each caller's line is that of its call.
        let lines: Vec<u64> = stack[1..4]
            .iter()
            .map(|frame| frame["line"].as_u64().unwrap())
            .collect();
        let line_of =
            |text: &str| CALLS.lines().position(|line| line.contains(text)).unwrap() as u64 + 1;
        assert_eq!(
            lines,
            [
                line_of("void middle"),
                line_of("void outer"),
                line_of("outer(16)")
            ]
        );
        assert!(hex(&stack[1]["address"]) > 0);
    }
}

#[test]
fn folded_stacks_count_each_distinct_stack_once() {
    let program = calls_program("calls_folded");
    let out = common::output_file("calls_folded");
    let run = |args: &[&str]| {
        let mut all = vec![
            "trace",
            "--format",
            "folded",
            "--output",
            out.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", program.to_str().unwrap()]);
        demo(&all);
        std::fs::read_to_string(&out).unwrap()
    };
    let stacks = run(&["--stacks"]);
    let line = stacks
        .lines()
        .find(|line| line.contains(";main;outer;middle;fill "))
        .unwrap_or_else(|| panic!("no stack through main to fill:\n{stacks}"));
    assert!(line.starts_with("calls_folded;"), "{line}");
    assert!(line.ends_with(";main;outer;middle;fill 16"), "{line}");
    // Every line is `frames count`, and the counts add up to every fault of the trace.
    for line in stacks.lines() {
        let (frames, count) = line.rsplit_once(' ').unwrap();
        assert!(count.parse::<u64>().unwrap() > 0, "{line}");
        assert!(frames.starts_with("calls_folded"), "{line}");
    }
    let flat = run(&[]);
    assert!(
        flat.lines().any(|line| line == "calls_folded;fill 16"),
        "{flat}"
    );
}

/// The file offset of the ELF symbol `name` of `binary`, from its symbol table and program
/// headers (readelf), where `fill` starts.
fn file_offset_of(binary: &Path, name: &str) -> u64 {
    let readelf = |args: &[&str]| {
        let out = std::process::Command::new("readelf")
            .args(args)
            .arg(binary)
            .output()
            .expect("run readelf");
        String::from_utf8(out.stdout).unwrap()
    };
    let symbols = readelf(&["-sW"]);
    let value = symbols
        .lines()
        .find(|line| line.split_whitespace().nth(7) == Some(name))
        .and_then(|line| u64::from_str_radix(line.split_whitespace().nth(1)?, 16).ok())
        .expect("the symbol");
    let headers = readelf(&["-lW"]);
    headers
        .lines()
        .filter(|line| line.trim_start().starts_with("LOAD"))
        .find_map(|line| {
            let field = |n: usize| {
                u64::from_str_radix(line.split_whitespace().nth(n)?.trim_start_matches("0x"), 16)
                    .ok()
            };
            let (offset, vaddr, size) = (field(1)?, field(2)?, field(5)?);
            (vaddr..vaddr + size)
                .contains(&value)
                .then(|| value - vaddr + offset)
        })
        .expect("a LOAD segment holds the symbol")
}

#[test]
fn a_stripped_binary_gives_module_and_file_offset_and_no_symbol() {
    let program = calls_program("calls_unstripped");
    let stripped = program.with_file_name("calls_stripped");
    std::fs::copy(&program, &stripped).unwrap();
    let status = std::process::Command::new("strip")
        .arg(&stripped)
        .status()
        .unwrap();
    assert!(status.success());
    let into_fill = buffer_faults(&trace("calls_unstripped", &[], &program))[0]["code"]["offset"]
        .as_u64()
        .unwrap();
    let faults = buffer_faults(&trace("calls_stripped", &[], &stripped));
    assert_eq!(faults.len(), 16);
    for fault in &faults {
        let code = &fault["code"];
        assert_eq!(code["module"], stripped.to_str().unwrap(), "{fault}");
        assert_eq!(code["symbol"], Value::Null, "{fault}");
        assert_eq!(code["file"], Value::Null, "{fault}");
        assert_eq!(code["line"], Value::Null, "{fault}");
        assert_eq!(
            code["offset"].as_u64().unwrap(),
            file_offset_of(&program, "fill") + into_fill,
            "{fault}"
        );
    }
}

#[test]
fn the_malloc_walk_names_the_glibc_function_that_wrote_the_next_chunks_header() {
    let lines = json_lines(&demo(&["alloc", "malloc", "--format", "json"]));
    let faults = of_kind(&lines, "fault");
    let allocation: Vec<&&Value> = faults.iter().filter(|f| f["step"] == 1).collect();
    assert!(!allocation.is_empty());
    // Every fault of the step carries the code that made it.
    assert!(
        allocation
            .iter()
            .all(|f| f["code"]["symbol"].is_string() && f["code"]["module"].is_string()),
        "{allocation:#?}"
    );
    let header = allocation
        .iter()
        .find(|f| f["offset"] == 20008)
        .expect("the write 8 bytes past arr, into the next chunk's header");
    assert_eq!(header["index"], 5002);
    assert_eq!(header["code"]["symbol"], "_int_malloc", "{header}");
    assert_eq!(header["code"]["file"], "malloc.c", "{header}");
    assert!(header["code"]["line"].is_u64(), "{header}");
    assert!(
        header["code"]["module"]
            .as_str()
            .unwrap()
            .ends_with("/libc.so.6"),
        "{header}"
    );
    let text = String::from_utf8(demo(&["alloc", "malloc"]).stdout).unwrap();
    // The report wraps at words to 80 columns; the sentence is checked as one line.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains(
            "arr[5002] is 8 bytes past arr's end, in the next chunk's header: malloc's \
             _int_malloc (libc.so.6) wrote that chunk's size"
        ),
        "{text}"
    );
    assert!(text.contains("by _int_malloc+0x"), "{text}");
}

/// Forks a child that calls setvbuf at once on a stream the parent opened: its first call
/// fetches setvbuf's code page, and its first write to the stream's lock is a copy-on-write
/// fault inside setvbuf. The parent then creates a thread, whose fresh stack pthread_create
/// writes (the thread's descriptor at its top).
const LIBC_CALLS: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
static void *run(void *arg) { return arg; }
int main(void) {
    FILE *stream = fopen("/dev/null", "w");
    if (!stream) return 1;
    pid_t child = fork();
    if (child == 0) {
        if (setvbuf(stream, NULL, _IOFBF, 0)) _exit(2);
        _exit(0);
    }
    int status;
    if (waitpid(child, &status, 0) != child || status != 0) return 3;
    pthread_t thread;
    if (pthread_create(&thread, NULL, run, NULL)) return 4;
    pthread_join(thread, NULL);
    return 0;
}
"#;

/// Every function symbol of `library` by name, without its version: (address, size), from its
/// own symbol tables and from its detached debug file (found by build-id, as perf finds it).
fn symbol_tables(library: &Path) -> std::collections::HashMap<String, Vec<(u64, u64)>> {
    let run = |args: &[&str], file: &Path| {
        let out = std::process::Command::new(args[0])
            .args(&args[1..])
            .arg(file)
            .output()
            .expect("run binutils");
        String::from_utf8(out.stdout).unwrap()
    };
    let notes = run(&["readelf", "-n"], library);
    let build_id = notes
        .lines()
        .find_map(|line| line.trim().strip_prefix("Build ID: "))
        .expect("libc has a build-id");
    let debug = Path::new("/usr/lib/debug/.build-id")
        .join(&build_id[..2])
        .join(format!("{}.debug", &build_id[2..]));
    let mut tables = std::collections::HashMap::<String, Vec<(u64, u64)>>::new();
    let mut listings = vec![run(&["nm", "-S", "-D", "--defined-only"], library)];
    if debug.exists() {
        listings.push(run(&["nm", "-S", "--defined-only"], &debug));
    }
    for line in listings.iter().flat_map(|listing| listing.lines()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [address, size, _, name] = fields[..] {
            let number = |text| u64::from_str_radix(text, 16).unwrap();
            let name = common::perf::unversioned(name).to_owned();
            tables
                .entry(name)
                .or_default()
                .push((number(address), number(size)));
        }
    }
    tables
}

#[test]
fn libc_code_is_named_within_its_function_as_perf_names_it() {
    let program = compile_c("libc_calls", LIBC_CALLS, &["-pthread"]);
    let (lines, samples) = common::perf::trace_beside_perf(
        "libc_calls",
        &["--follow"],
        &[program.as_os_str()],
        &["page-faults"],
    );
    let traced: Vec<&Value> = of_kind(&lines, "trace")
        .into_iter()
        .chain(of_kind(&lines, "process"))
        .map(|line| &line["pid"])
        .collect();
    let faults: Vec<&Value> = of_kind(&lines, "fault")
        .into_iter()
        .filter(|f| {
            f["code"]["module"]
                .as_str()
                .is_some_and(|m| m.ends_with("/libc.so.6"))
        })
        .collect();
    let library = Path::new(faults[0]["code"]["module"].as_str().unwrap());
    let tables = symbol_tables(library);
    let start_of = |name: &str| -> Vec<u64> {
        tables
            .get(name)
            .map(|entries| entries.iter().map(|&(address, _)| address).collect())
            .unwrap_or_default()
    };
    // Every libc function demo names holds the instruction: the offset is within its size.
    for fault in &faults {
        let code = &fault["code"];
        let Some(symbol) = code["symbol"].as_str() else {
            continue;
        };
        let offset = code["offset"].as_u64().unwrap();
        let entries = tables
            .get(symbol)
            .unwrap_or_else(|| panic!("no table has {symbol}: {fault}"));
        assert!(
            entries.iter().any(|&(_, size)| offset < size),
            "{symbol}+{offset} is past its end {entries:x?}: {fault}"
        );
    }
    // The faults perf names in pthread_create and setvbuf are named with the same offset from
    // the same start (setvbuf, _IO_setvbuf and glibc's internal names are one function).
    let mut named = std::collections::BTreeMap::<&str, usize>::new();
    for sample in &samples {
        let Some(perf_symbol) = sample.symbol.as_deref().map(common::perf::unversioned) else {
            continue;
        };
        if !["pthread_create", "_IO_setvbuf"].contains(&perf_symbol)
            || !traced.iter().any(|&pid| pid == sample.pid)
        {
            continue;
        }
        let fault = of_kind(&lines, "fault")
            .into_iter()
            .find(|f| {
                f["tid"] == sample.tid
                    && Some(hex(&f["address"])) == sample.address
                    && hex(&f["ip"]) == sample.ip
            })
            .unwrap_or_else(|| panic!("demo has no fault for {sample:?}"));
        let code = &fault["code"];
        let symbol = code["symbol"].as_str().unwrap_or_else(|| panic!("{fault}"));
        assert!(
            start_of(symbol)
                .iter()
                .any(|start| start_of(perf_symbol).contains(start)),
            "demo names {symbol}, perf {perf_symbol}: {fault}"
        );
        assert_eq!(code["offset"].as_u64(), sample.symoff, "{fault} {sample:?}");
        *named.entry(perf_symbol).or_default() += 1;
    }
    assert_eq!(
        named.keys().copied().collect::<Vec<_>>(),
        ["_IO_setvbuf", "pthread_create"],
        "perf named faults in both functions"
    );
}
