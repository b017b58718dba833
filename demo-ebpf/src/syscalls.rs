//! The memory syscalls of `demo trace`: a record at each entry, with the arguments, and at each
//! exit, with the return value, of every syscall in [`syscall_programs!`]'s table; an mmap of a
//! file is also captured with the file (see `mappings.rs`).

use core::ffi::c_void;

use aya_ebpf::programs::TracePointContext;
use demo_common::{RecordKind, SYSCALL_TRACEPOINTS, Syscall, SyscallRecord, syscall_tracepoint};

use crate::{
    mappings,
    records::{header, traced_record, wakeup_flag},
};

/// Makes the `sys_enter_NAME` and `sys_exit_NAME` programs of each `(NAME, Syscall)` pair: aya
/// attaches one program per tracepoint, and the loader attaches a program by that name to each
/// of [`SYSCALL_TRACEPOINTS`]. Each pair lives in a module of the syscall's name, written out as
/// `#[tracepoint]` would expand it, since that macro names the program after the function and a
/// declarative macro cannot join identifiers. The table is checked against demo-common when
/// this crate compiles: each NAME is its syscall's name, and there are as many as the loader
/// attaches (a name twice would be two modules of one name).
macro_rules! syscall_programs {
    ($(($name:ident, $syscall:expr)),+ $(,)?) => {
        const _: () = assert!(
            [$(stringify!($name)),+].len() == SYSCALL_TRACEPOINTS.len(),
            "the table must list every syscall of SYSCALL_TRACEPOINTS"
        );
        $(
            const _: () = assert!(
                same_name($syscall.name(), stringify!($name)),
                concat!("`", stringify!($name), "` must be its syscall's name")
            );

            mod $name {
                use super::*;

                #[unsafe(export_name = concat!("sys_enter_", stringify!($name)))]
                #[unsafe(link_section = "tracepoint")]
                fn enter(ctx: *mut c_void) -> u32 {
                    record_syscall_enter(&TracePointContext::new(ctx), $syscall);
                    0
                }

                #[unsafe(export_name = concat!("sys_exit_", stringify!($name)))]
                #[unsafe(link_section = "tracepoint")]
                fn exit(ctx: *mut c_void) -> u32 {
                    record_syscall_exit(&TracePointContext::new(ctx), $syscall);
                    0
                }
            }
        )+
    };
}

syscall_programs!(
    (mmap, Syscall::Mmap),
    (munmap, Syscall::Munmap),
    (mremap, Syscall::Mremap),
    (brk, Syscall::Brk),
    (madvise, Syscall::Madvise),
    (mprotect, Syscall::Mprotect),
    (fadvise64, Syscall::Fadvise64),
);

/// True when `a` and `b` are the same text; `str`'s `==` is not usable in constants.
const fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Records a traced process entering a memory syscall, with its arguments.
#[inline(always)]
fn record_syscall_enter(ctx: &TracePointContext, syscall: Syscall) {
    let mut args = [0u64; 6];
    for (i, arg) in args.iter_mut().enumerate().take(syscall.arg_count()) {
        // SAFETY: `read_at` copies with `bpf_probe_read_kernel`, which fails rather than fault;
        // argument i of a sys_enter tracepoint is at FIRST_ARG + 8 * i, which the loader checked
        // in the format of each syscall's tracepoint.
        *arg = unsafe { ctx.read_at::<u64>(syscall_tracepoint::FIRST_ARG + 8 * i) }.unwrap_or(0);
    }
    if matches!(syscall, Syscall::Mmap) {
        mappings::mmap_entered(ctx, args);
    }
    record_syscall(ctx, RecordKind::SyscallEnter, syscall, args, 0);
}

/// Records a traced process leaving a memory syscall, with its return value.
#[inline(always)]
fn record_syscall_exit(ctx: &TracePointContext, syscall: Syscall) {
    // SAFETY: as above; `ret` is at RET in every sys_exit tracepoint, which the loader checked.
    let ret = unsafe { ctx.read_at::<i64>(syscall_tracepoint::RET) }.unwrap_or(0);
    record_syscall(ctx, RecordKind::SyscallExit, syscall, [0; 6], ret);
    // The mapped file follows the exit, so the loader has applied the mmap when it learns it.
    if matches!(syscall, Syscall::Mmap) {
        mappings::mmap_exited(ctx, ret);
    }
}

#[inline(always)]
fn record_syscall(
    ctx: &TracePointContext,
    kind: RecordKind,
    syscall: Syscall,
    args: [u64; 6],
    ret: i64,
) {
    let Some((task, mut entry)) = traced_record::<SyscallRecord, _>(ctx, kind) else {
        return;
    };
    entry.write(SyscallRecord {
        header: header(task, kind, syscall as u32),
        args,
        ret,
    });
    entry.submit(wakeup_flag());
}
