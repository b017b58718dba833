//! The life of traced processes: followed children join the targets at fork, and forks, execs
//! and exits are reported. Under a cgroup scope, a fork or an exec in the cgroup joins its
//! process as its other events do; an exit never does, and is reported by the target map alone,
//! so a process that left the cgroup still leaves the map.

use aya_ebpf::{bindings::BPF_RB_FORCE_WAKEUP, macros::tracepoint, programs::TracePointContext};
use demo_common::{
    ProcessRecord, RecordKind, UNTRACED_CHILD_SLOT, new_task_tracepoint, process_exit_tracepoint,
    target_flags,
};

use crate::{
    cgroup::scoped,
    durations::forget_thread,
    mappings::record_exec_image,
    records::{TARGETS, count_drop, flags_of, header, reported, reserve, wakeup_flag},
    task::{Task, current_task},
};

#[tracepoint]
pub fn task_newtask(ctx: TracePointContext) -> u32 {
    follow_new_task(&ctx);
    0
}

#[tracepoint]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    record_exit(&ctx);
    0
}

#[tracepoint]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    record_exec(&ctx);
    0
}

/// `CLONE_INTO_CGROUP` (include/uapi/linux/sched.h): `clone3` starts the child in the cgroup
/// its `cgroup` argument names, rather than in its parent's.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Adds a followed process's new child (not a new thread) to the targets, and reports it. It
/// runs in the parent; under a cgroup scope, only a parent in the cgroup (joined here if it was
/// not yet) follows, and its child lands in its cgroup, in scope too. A child started in a
/// cgroup of the caller's choice (`CLONE_INTO_CGROUP`) may be outside the scope: it is neither
/// added nor reported here, and joins at its own first event if it is in scope, as a process
/// moved in does; so neither the fork nor the exit of a child started outside is reported.
#[inline(always)]
fn follow_new_task(ctx: &TracePointContext) {
    let task = current_task();
    if scoped() && !reported(ctx, task) {
        return;
    }
    let parent = flags_of(task.tgid);
    if parent & target_flags::FOLLOW == 0 {
        return;
    }
    // SAFETY (both reads): `read_at` copies with `bpf_probe_read_kernel`, which fails rather than
    // fault; the offsets are those the loader checked in the tracepoint's format.
    let clone_flags = unsafe { ctx.read_at::<u64>(new_task_tracepoint::CLONE_FLAGS) }.unwrap_or(0);
    if clone_flags & new_task_tracepoint::CLONE_THREAD != 0
        || (scoped() && clone_flags & CLONE_INTO_CGROUP != 0)
    {
        return;
    }
    let Ok(child) = (unsafe { ctx.read_at::<i32>(new_task_tracepoint::PID) }) else {
        return;
    };
    let child = child as u32;
    let child_flags = if parent & target_flags::DESCENDANTS != 0 {
        target_flags::REPORT | target_flags::FOLLOW | target_flags::DESCENDANTS
    } else {
        target_flags::REPORT
    };
    if TARGETS.insert(child, child_flags, 0).is_err() {
        // The map is full: the child goes untraced, which must not go unnoticed.
        count_drop(UNTRACED_CHILD_SLOT);
        return;
    }
    if parent & target_flags::REPORT != 0 {
        record_process(ctx, task, RecordKind::Fork, child);
    }
}

/// Reports each exiting thread of a traced process with its final fault counters, which settle
/// its last fault; when the process's last thread exits, forgets the process and reports that.
/// The target map alone decides, whatever the scope: a process moved out of the cgroup still
/// leaves the map, and a process in it never joins at its exit.
#[inline(always)]
fn record_exit(ctx: &TracePointContext) {
    let task = current_task();
    let tgid = task.tgid;
    let flags = flags_of(tgid);
    if flags == 0 {
        return;
    }
    // SAFETY: `read_at` copies with `bpf_probe_read_kernel`, which fails rather than fault; the offset
    // is the one the loader checked in the tracepoint's format.
    let group_dead = unsafe { ctx.read_at::<u8>(process_exit_tracepoint::GROUP_DEAD) }.unwrap_or(0);
    forget_thread(task.tid);
    let reported = flags & target_flags::REPORT != 0;
    if reported {
        record_process(
            ctx,
            task,
            RecordKind::ThreadExit,
            u32::from(group_dead != 0),
        );
    }
    if group_dead == 0 {
        return;
    }
    let _ = TARGETS.remove(tgid);
    if reported {
        record_process(ctx, task, RecordKind::Exit, tgid);
    }
}

/// Reports that a traced process exec'd: the mappings the loader knows of it are gone, and
/// records after this one are of the new image. It runs once the new image is in place, and
/// the record of what that image mapped follows.
#[inline(always)]
fn record_exec(ctx: &TracePointContext) {
    let task = current_task();
    if reported(ctx, task) {
        record_process(ctx, task, RecordKind::Exec, task.tgid);
        record_exec_image(ctx, task);
    }
}

#[inline(always)]
fn record_process(ctx: &TracePointContext, task: Task, kind: RecordKind, detail: u32) {
    let Some(mut entry) = reserve::<ProcessRecord, _>(ctx, kind, task.tgid) else {
        return;
    };
    entry.write(ProcessRecord {
        header: header(task, kind, detail),
    });
    // A fork wakes the loader at once: it attaches the child's heap uprobes, and every heap
    // call the child makes before that goes unseen.
    let flag = match kind {
        RecordKind::Fork => BPF_RB_FORCE_WAKEUP as u64,
        _ => wakeup_flag(),
    };
    entry.submit(flag);
}
