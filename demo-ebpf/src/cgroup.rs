//! The cgroup scope of `--cgroup`: whether the current task is in one cgroup v2 directory or
//! below it, asked of the kernel with `bpf_current_task_under_cgroup`.

use core::ptr::read_volatile;

use aya_ebpf::{macros::map, maps::CgroupArray};

/// Slot 0 holds the scoped cgroup, which the loader sets right after loading when the global
/// below is 1. The map's reference keeps the cgroup alive for the whole run, even once its
/// directory is removed.
#[map]
static CGROUP_SCOPE: CgroupArray = CgroupArray::with_max_entries(1, 0);

/// 1 when the programs report only the tasks in the cgroup of [`CGROUP_SCOPE`]; 0 (no scope)
/// unless the loader sets it before loading. Read-only data is frozen, so the verifier knows
/// the value and drops the check when it is 0, as it does with `STACK_DEPTH`.
#[unsafe(no_mangle)]
static CGROUP_SCOPED: u32 = 0;

/// True when the programs are scoped to a cgroup.
#[inline(always)]
pub(crate) fn scoped() -> bool {
    // SAFETY: a plain load of a global; volatile so that the compiler keeps the load for the
    // verifier to decide, instead of folding the placeholder 0.
    unsafe { read_volatile(&CGROUP_SCOPED) != 0 }
}

/// True when the current task is in scope: always without a scope; with one, when the task is
/// in the scoped cgroup or a descendant of it. The helper compares the task's cgroup with the
/// scope's ancestors, O(1) whatever the depth. An error (such as an empty slot before the
/// loader set it) counts as outside: nothing is reported until the scope is known.
#[inline(always)]
pub(crate) fn in_scope() -> bool {
    !scoped() || in_cgroup()
}

/// True when the current task is in the scoped cgroup or below it.
#[inline(always)]
pub(crate) fn in_cgroup() -> bool {
    CGROUP_SCOPE.current_task_under_cgroup(0) == Ok(true)
}
