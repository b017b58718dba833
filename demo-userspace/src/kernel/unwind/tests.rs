//! The unwinder on this test process's own stack, captured as the kernel side captures a
//! fault's: the registers, then the stack memory from the stack pointer up. Runs unprivileged:
//! a process may read its own maps, memory and files.

use std::{hint::black_box, path::Path};

use demo_common::UserRegs;

use super::*;
use crate::kernel::symbols::{At, Site, Symbols};

/// The most of its own stack a test copies: a test thread uses a few KiB of it.
const MAX_COPY: u64 = 1 << 20;

/// The registers here, as the kernel side would take them at a fault, and the stack from the
/// stack pointer to the end of the thread's stack mapping, with this process's mappings.
#[inline(never)]
fn capture() -> (StackCopy, MappingTable) {
    let (ip, sp, bp): (u64, u64, u64);
    // SAFETY: reads three registers into outputs; touches no memory and no flags.
    unsafe {
        std::arch::asm!(
            "lea {ip}, [rip]",
            "mov {sp}, rsp",
            "mov {bp}, rbp",
            ip = out(reg) ip,
            sp = out(reg) sp,
            bp = out(reg) bp,
            options(nomem, nostack, preserves_flags),
        );
    }
    // Everything from here on runs in frames below `sp`, so the callers' frames stay as they
    // were when the registers were read.
    let maps = MappingTable::read(std::process::id() as i32).unwrap();
    let end = maps
        .find(sp)
        .expect("the stack pointer is in a mapping")
        .end;
    let mut bytes = vec![0; (end - sp).min(MAX_COPY) as usize];
    std::fs::File::open("/proc/self/mem")
        .and_then(|mem| std::os::unix::fs::FileExt::read_exact_at(&mem, &mut bytes, sp))
        .unwrap();
    let requested = bytes.len() as u32;
    let regs = UserRegs { ip, sp, bp };
    let copy = StackCopy {
        regs,
        bytes,
        requested,
        skipped: 0,
        at_top: false,
    };
    (copy, maps)
}

// A chain of calls, each kept a real call with its own frame: not inlined, and not a tail call,
// since each uses what its callee returned.

#[inline(never)]
fn innermost_caller() -> (StackCopy, MappingTable) {
    black_box(capture())
}

#[inline(never)]
fn middle_caller() -> (StackCopy, MappingTable) {
    black_box(innermost_caller())
}

#[inline(never)]
fn outer_caller() -> (StackCopy, MappingTable) {
    black_box(middle_caller())
}

/// Each frame's function, or `module+offset` where no symbol names it.
fn names(unwound: &Unwound, maps: &MappingTable) -> Vec<String> {
    let mut symbols = Symbols::new();
    let ats = std::iter::once(At::Instruction).chain(std::iter::repeat(At::ReturnAddress));
    (unwound.frames.iter().zip(ats))
        .map(|(frame, at)| {
            let code = symbols.code(Site::of(frame.address, maps.find(frame.address)), at);
            code.symbol.clone().unwrap_or_else(|| {
                format!(
                    "{}+{:#x}",
                    code.module.as_deref().unwrap_or("?"),
                    code.offset
                )
            })
        })
        .collect()
}

/// The frames' modules, by file name.
fn modules(unwound: &Unwound, maps: &MappingTable) -> Vec<String> {
    (unwound.frames.iter())
        .map(|frame| {
            let name = maps.name_of(frame.address);
            let file = Path::new(&*name).file_name().unwrap_or_default();
            file.to_string_lossy().into_owned()
        })
        .collect()
}

fn assert_named(names: &[String], expected: &[&str]) {
    assert!(names.len() >= expected.len(), "{names:#?}");
    for (name, expected) in names.iter().zip(expected) {
        assert!(name.ends_with(expected), "{expected} in {names:#?}");
    }
}

#[test]
fn unwinds_own_stack_from_eh_frame_through_the_callers_and_libc_to_its_top() {
    let (copy, maps) = outer_caller();
    let pid = std::process::id();
    let mut unwinder = Unwinder::default();
    let unwound = unwinder.unwind(pid, &copy, &maps);
    let names = names(&unwound, &maps);
    assert_named(
        &names,
        &[
            "::capture",
            "::innermost_caller",
            "::middle_caller",
            "::outer_caller",
            "::unwinds_own_stack_from_eh_frame_through_the_callers_and_libc_to_its_top",
        ],
    );
    // The whole stack was copied: the unwinder ends at the thread's first function, glibc's
    // clone3, whose tables say it has no caller.
    assert_eq!(unwound.end, None);
    assert_eq!(names[names.len() - 2..], ["start_thread", "clone3"]);
    let modules = modules(&unwound, &maps);
    let exe = std::env::current_exe().unwrap();
    let exe = exe.file_name().unwrap().to_string_lossy();
    assert!(modules[..5].iter().all(|m| *m == exe), "{modules:?}");
    assert_eq!(modules.last().map(String::as_str), Some("libc.so.6"));
    assert!(
        unwound.frames.iter().all(|f| f.unwind_tables),
        "{unwound:?}"
    );
    let stats = unwinder.stats();
    assert_eq!(stats.stacks, 1);
    assert_eq!(stats.frames, unwound.frames.len() as u64);
    assert_eq!(stats.module_rebuilds, 1);
}

/// The copy cut short of the callers' frames.
fn cut(copy: &StackCopy, len: usize, requested: u32) -> StackCopy {
    StackCopy {
        bytes: copy.bytes[..len].to_vec(),
        requested,
        ..copy.clone()
    }
}

#[test]
fn a_copy_too_short_for_the_callers_ends_truncated_or_unreadable_where_it_ends() {
    let (copy, maps) = outer_caller();
    let pid = std::process::id();
    let whole = Unwinder::default().unwind(pid, &copy, &maps);
    let sp = copy.regs.sp;
    for (requested, why) in [
        (300, EndCause::Truncated),
        (copy.requested, EndCause::Unreadable),
    ] {
        // A fresh unwinder each time, so nothing learnt from the whole copy helps.
        let short = Unwinder::default().unwind(pid, &cut(&copy, 300, requested), &maps);
        assert!(!short.frames.is_empty());
        assert!(short.frames.len() < whole.frames.len(), "{short:?}");
        assert_eq!(short.frames, whole.frames[..short.frames.len()]);
        let end = short.end.expect("the stack is cut");
        assert_eq!(end.why, why);
        // The word the unwinder needed is past the 300 bytes copied, in the stack still.
        assert!(end.address + 8 > sp + 300, "{end:?}");
        assert!(end.address < sp + copy.bytes.len() as u64, "{end:?}");
    }
}

/// Bytes at the stack pointer that the kernel could not read (a stack that grew onto pages not
/// present yet) keep their place: the unwinder steps over them as long as it needs none of
/// them, and where it needs one the stack ends there, unreadable.
#[test]
fn skipped_bytes_at_the_stack_pointer_cut_the_stack_only_where_the_unwinder_needs_them() {
    let (copy, maps) = outer_caller();
    let pid = std::process::id();
    let whole = Unwinder::default().unwind(pid, &copy, &maps);
    let skipping = |skipped: usize| {
        let mut copy = copy.clone();
        copy.bytes[..skipped].fill(0);
        copy.skipped = skipped as u32;
        Unwinder::default().unwind(pid, &copy, &maps)
    };
    // `capture`'s frame holds more than its lowest word, which no step of the unwinder reads.
    assert_eq!(skipping(8), whole);
    // The word that holds `capture`'s return address, and everything below it, skipped.
    let return_address = whole.frames[1].address.to_le_bytes();
    let slot = (copy.bytes.chunks_exact(8))
        .position(|word| word == return_address)
        .expect("capture's return address in the copy")
        * 8;
    let sp = copy.regs.sp;
    let cut = skipping(slot + 8);
    assert_eq!(cut.frames, whole.frames[..1], "{cut:?}");
    let end = cut.end.expect("the stack is cut");
    assert_eq!(end.why, EndCause::Unreadable);
    assert!(
        (sp..=sp + slot as u64).contains(&end.address),
        "{end:?}, return address at {:#x}",
        sp + slot as u64
    );
}

thread_local! {
    static CAPTURED: std::cell::RefCell<Option<(StackCopy, MappingTable)>> =
        const { std::cell::RefCell::new(None) };
}

/// A comparison for qsort that takes the first stack it is called on.
extern "C" fn compare_and_capture(_: *const libc::c_void, _: *const libc::c_void) -> libc::c_int {
    if CAPTURED.with_borrow(Option::is_none) {
        let captured = capture();
        CAPTURED.set(Some(captured));
    }
    0
}

#[inline(never)]
fn sorts_through_libc() -> (StackCopy, MappingTable) {
    let mut items = [2u32, 1];
    // SAFETY: `items` holds 2 elements of 4 bytes, and the comparison reads neither.
    unsafe {
        libc::qsort(
            items.as_mut_ptr().cast(),
            items.len(),
            size_of::<u32>(),
            Some(compare_and_capture),
        );
    }
    black_box(&items);
    CAPTURED.take().expect("qsort called the comparison")
}

#[test]
fn unwinds_through_libc_between_two_functions_of_the_program() {
    let (copy, maps) = sorts_through_libc();
    let unwound = Unwinder::default().unwind(std::process::id(), &copy, &maps);
    let (names, modules) = (names(&unwound, &maps), modules(&unwound, &maps));
    assert_named(&names, &["::capture", "::compare_and_capture"]);
    // qsort calls the comparison from its merge sort, one frame or more inside libc.
    let in_libc = modules[2..]
        .iter()
        .take_while(|m| *m == "libc.so.6")
        .count();
    assert!(in_libc >= 1, "{names:#?} {modules:#?}");
    assert_named(
        &names[2 + in_libc..],
        &[
            "::sorts_through_libc",
            "::unwinds_through_libc_between_two_functions_of_the_program",
        ],
    );
    assert_eq!(unwound.end, None);
    assert!(
        unwound.frames.iter().all(|f| f.unwind_tables),
        "{unwound:?}"
    );
}

fn mapping(start: u64, end: u64, perms: &str, name: &str) -> Mapping {
    Mapping::at(start, end, perms, name)
}

/// Where the fake code and stack of the tests below lie.
const CODE: u64 = 0x10000;
const STACK_TOP: u64 = 0x7000_1000;

/// A stack of three frames linked by frame pointers, copied from `sp` to the stack's top.
fn frame_pointer_chain() -> StackCopy {
    let sp = STACK_TOP - 0x100;
    let mut words = vec![0u64; 0x20];
    // At sp+16 the first frame's record: the caller's frame pointer, then the return address.
    words[2] = sp + 48;
    words[3] = CODE + 0x20;
    words[6] = 0;
    words[7] = CODE + 0x30;
    StackCopy {
        regs: UserRegs {
            ip: CODE + 0x10,
            sp,
            bp: sp + 16,
        },
        bytes: words.iter().flat_map(|w| w.to_le_bytes()).collect(),
        requested: 0x100,
        skipped: 0,
        at_top: false,
    }
}

#[test]
fn a_module_without_tables_is_marked_and_read_once_for_every_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-elf");
    std::fs::write(&path, b"no ELF header here").unwrap();
    let path = path.to_str().unwrap();
    let table = || {
        MappingTable::from_mappings([
            mapping(CODE, CODE + 0x1000, "r-xp", path),
            mapping(STACK_TOP - 0x1000, STACK_TOP, "rw-p", "[stack]"),
        ])
    };
    let copy = frame_pointer_chain();
    let mut unwinder = Unwinder::default();
    for pid in [1, 2] {
        let unwound = unwinder.unwind(pid, &copy, &table());
        let without = |address| UnwoundFrame {
            address,
            unwind_tables: false,
        };
        let frames = [
            without(CODE + 0x10),
            without(CODE + 0x20),
            without(CODE + 0x30),
        ];
        assert_eq!(unwound.frames, frames);
        assert_eq!(unwound.end, None);
    }
    let stats = unwinder.stats();
    assert_eq!((stats.files_read, stats.module_rebuilds), (1, 2));
}

#[test]
fn a_frame_pointer_past_the_stack_mapping_is_no_cut() {
    let copy = StackCopy {
        regs: UserRegs {
            ip: CODE + 0x10,
            sp: STACK_TOP - 0x100,
            bp: STACK_TOP + 0x100,
        },
        bytes: vec![0; 0x100],
        requested: 0x100,
        skipped: 0,
        at_top: false,
    };
    let unwind = |stack_end: u64, copy: &StackCopy| {
        let maps = MappingTable::from_mappings([
            mapping(CODE, CODE + 0x1000, "r-xp", "[anon]"),
            mapping(STACK_TOP - 0x1000, stack_end, "rw-p", "[stack]"),
        ]);
        Unwinder::default().unwind(1, copy, &maps)
    };
    let ip = UnwoundFrame {
        address: CODE + 0x10,
        unwind_tables: false,
    };
    // The frame pointer leads out of the stack: the unwinder went astray, no copy would do.
    let astray = unwind(STACK_TOP, &copy);
    assert_eq!((astray.frames, astray.end), (vec![ip], None));
    // The same address in a larger stack is past what was copied.
    let end = |why| {
        Some(StackEnd {
            address: STACK_TOP + 0x100,
            why,
        })
    };
    let truncated = unwind(STACK_TOP + 0x1000, &copy);
    assert_eq!(
        (truncated.frames, truncated.end),
        (vec![ip], end(EndCause::Truncated))
    );
    let short = StackCopy {
        requested: 0x1000,
        ..copy
    };
    let unreadable = unwind(STACK_TOP + 0x1000, &short);
    assert_eq!(
        (unreadable.frames, unreadable.end),
        (vec![ip], end(EndCause::Unreadable))
    );
}

#[test]
fn a_change_of_the_table_away_from_code_keeps_the_modules() {
    let (copy, mut maps) = outer_caller();
    let pid = std::process::id();
    let mut unwinder = Unwinder::default();
    let first = unwinder.unwind(pid, &copy, &maps);
    let version = maps.version();
    // An address no 64-bit process maps: below the first page a process may map.
    maps.learn(mapping(0x1000, 0x2000, "rw-p", "[anon]"));
    assert_ne!(maps.version(), version);
    assert_eq!(unwinder.unwind(pid, &copy, &maps), first);
    assert_eq!(unwinder.stats().module_rebuilds, 1);
    // A new table of the same mappings has a version of its own.
    let again = MappingTable::from_mappings(maps.mappings().cloned());
    assert_ne!(again.version(), maps.version());
    assert_eq!(maps.clone().version(), maps.version());
}

/// The unwinder's cost once its tables are read: printed, since the figure is the machine's.
#[test]
fn measures_the_time_per_unwound_stack() {
    let (copy, maps) = outer_caller();
    let pid = std::process::id();
    let mut unwinder = Unwinder::default();
    let started = std::time::Instant::now();
    let first = unwinder.unwind(pid, &copy, &maps);
    let first_ns = started.elapsed().as_nanos();
    const RUNS: u32 = 10_000;
    let started = std::time::Instant::now();
    for _ in 0..RUNS {
        assert_eq!(
            black_box(unwinder.unwind(pid, &copy, &maps)).frames,
            first.frames
        );
    }
    let per_stack = started.elapsed().as_nanos() / u128::from(RUNS);
    println!(
        "unwind: first stack {first_ns} ns (tables read), then {per_stack} ns per stack of {} \
         frames",
        first.frames.len()
    );
}

/// A function of a shared library built without unwind tables (as `-g` then writes
/// `.debug_frame`) and without a frame pointer, with a frame of its own, that calls back.
const THROUGH_DEBUG_FRAME: &str = r#"
void through_debug_frame(void (*callback)(volatile char *)) {
    volatile char buffer[64];
    buffer[0] = 1;
    callback(buffer);
    buffer[1] = 2;
}
"#;

fn run(program: &str, args: &[&std::ffi::OsStr]) {
    let status = std::process::Command::new(program).args(args).status();
    assert!(status.is_ok_and(|s| s.success()), "run {program} {args:?}");
}

/// Builds THROUGH_DEBUG_FRAME into `dir/lib.so`, moves its `.debug_frame` to a separate debug
/// file under `dir/debug/.build-id`, and returns the library's path and the debug root.
fn library_with_a_separate_debug_file(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let source = dir.join("through.c");
    std::fs::write(&source, THROUGH_DEBUG_FRAME).unwrap();
    let library = dir.join("lib.so");
    let flags = "-O1 -g -fomit-frame-pointer -fno-asynchronous-unwind-tables -fno-unwind-tables \
                 -shared -fPIC -Wl,--build-id -o";
    let mut args: Vec<&std::ffi::OsStr> = flags.split(' ').map(std::ffi::OsStr::new).collect();
    args.extend([library.as_os_str(), source.as_os_str()]);
    run("cc", &args);
    let bytes = std::fs::read(&library).unwrap();
    let elf = object::File::parse(&*bytes).unwrap();
    let id = object::Object::build_id(&elf).unwrap().expect("a build ID");
    let root = dir.join("debug");
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let debug_dir = root.join(".build-id").join(hex(&id[..1]));
    std::fs::create_dir_all(&debug_dir).unwrap();
    let debug_file = debug_dir.join(format!("{}.debug", hex(&id[1..])));
    run(
        "objcopy",
        &[
            "--only-keep-debug".as_ref(),
            library.as_os_str(),
            debug_file.as_os_str(),
        ],
    );
    run("objcopy", &["--strip-debug".as_ref(), library.as_os_str()]);
    let stripped = std::fs::read(&library).unwrap();
    let stripped = object::File::parse(&*stripped).unwrap();
    assert!(object::Object::section_by_name(&stripped, ".debug_frame").is_none());
    (library, root)
}

extern "C" fn capture_from_c(_: *mut u8) {
    CAPTURED.set(Some(capture()));
}

type ThroughDebugFrame = extern "C" fn(extern "C" fn(*mut u8));

#[inline(never)]
fn calls_through_c(through: ThroughDebugFrame) -> (StackCopy, MappingTable) {
    through(capture_from_c);
    black_box(());
    CAPTURED.take().expect("the library called back")
}

#[test]
fn unwinds_a_library_with_the_debug_frame_of_its_separate_debug_file() {
    let dir = tempfile::tempdir().unwrap();
    let (library, debug_root) = library_with_a_separate_debug_file(dir.path());
    let path = std::ffi::CString::new(library.to_str().unwrap()).unwrap();
    // SAFETY: loads the library built above, which has no initializers; it stays loaded.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
    assert!(!handle.is_null(), "dlopen {library:?}");
    // SAFETY: the symbol is the function THROUGH_DEBUG_FRAME defines, of that signature.
    let through: ThroughDebugFrame = unsafe {
        let symbol = libc::dlsym(handle, c"through_debug_frame".as_ptr());
        assert!(!symbol.is_null());
        std::mem::transmute::<*mut libc::c_void, ThroughDebugFrame>(symbol)
    };
    let (copy, maps) = calls_through_c(through);
    let pid = std::process::id();
    let unwound = Unwinder::with_debug_root(debug_root).unwind(pid, &copy, &maps);
    let names = names(&unwound, &maps);
    assert_named(
        &names,
        &[
            "::capture",
            "::capture_from_c",
            "through_debug_frame",
            "::calls_through_c",
            "::unwinds_a_library_with_the_debug_frame_of_its_separate_debug_file",
        ],
    );
    assert_eq!(modules(&unwound, &maps)[2], "lib.so");
    assert!(
        unwound.frames.iter().all(|f| f.unwind_tables),
        "{unwound:?}"
    );
    assert_eq!(unwound.end, None);
    // Without the debug file the library's frame is found, but not from tables.
    let blind = Unwinder::with_debug_root(dir.path().join("none")).unwind(pid, &copy, &maps);
    assert_eq!(blind.frames[2].address, unwound.frames[2].address);
    assert!(!blind.frames[2].unwind_tables);
    assert!(blind.frames[..2].iter().all(|f| f.unwind_tables));
}
