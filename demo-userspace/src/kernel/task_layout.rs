//! Finds where the running kernel keeps a thread's fault counters, from its BTF type information.

use btf_rs::{Backend, Btf, Type};
use demo_common::TaskLayout;

/// The kernel's own type information, which every BTF-enabled kernel exposes.
const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

#[derive(Debug, thiserror::Error)]
pub enum TaskLayoutError {
    #[error(
        "read the kernel's type information at {VMLINUX_BTF}: {0}; demo needs a kernel built with CONFIG_DEBUG_INFO_BTF"
    )]
    Btf(String),
    #[error("find {0} in the kernel's type information: it is not there")]
    Missing(&'static str),
}

/// Opens the running kernel's BTF, which the loader reads the task layout and the raw
/// tracepoints' prototypes from.
pub fn running_kernel_btf() -> Result<Btf, TaskLayoutError> {
    // Mapped and looked up lazily, the file costs a few milliseconds; parsing all of it (the
    // fallback, where it cannot be mapped) takes far longer and tens of megabytes of heap.
    Btf::from_file_with_backend(VMLINUX_BTF, Backend::Mmap)
        .or_else(|_| Btf::from_file(VMLINUX_BTF))
        .map_err(|error| TaskLayoutError::Btf(error.to_string()))
}

/// Reads the offsets of the task fields the programs use from the kernel's BTF.
pub fn of_kernel(btf: &Btf) -> Result<TaskLayout, TaskLayoutError> {
    let task = |member| member_offset(btf, "task_struct", member);
    let signal = |member| member_offset(btf, "signal_struct", member);
    Ok(TaskLayout {
        pid: task("pid")?,
        tgid: task("tgid")?,
        flags: task("flags")?,
        min_flt: task("min_flt")?,
        maj_flt: task("maj_flt")?,
        signal: task("signal")?,
        signal_min_flt: signal("min_flt")?,
        signal_maj_flt: signal("maj_flt")?,
        signal_nr_threads: signal("nr_threads")?,
    })
}

/// The byte offset of `member` in `struct strukt`, for a member that is not a bit field; a
/// member of an anonymous union or structure inside it (as `mm_struct` and `file` keep theirs)
/// is found there, at the anonymous member's offset plus its own.
pub(super) fn member_offset(
    btf: &Btf,
    strukt: &'static str,
    member: &'static str,
) -> Result<u64, TaskLayoutError> {
    let types = btf
        .resolve_types_by_name(strukt)
        .map_err(|_| TaskLayoutError::Missing(strukt))?;
    let found = types
        .iter()
        .find_map(|ty| match ty {
            Type::Struct(found) => Some(found),
            _ => None,
        })
        .ok_or(TaskLayoutError::Missing(strukt))?;
    offset_in(btf, found, member, ANONYMOUS_DEPTH).ok_or(TaskLayoutError::Missing(member))
}

/// How deep anonymous unions and structures are searched for a member.
const ANONYMOUS_DEPTH: u32 = 4;

/// The byte offset of `member` in `strukt` (a structure or union), searching anonymous members
/// `depth` levels down.
fn offset_in(btf: &Btf, strukt: &btf_rs::Struct, member: &str, depth: u32) -> Option<u64> {
    strukt.members.iter().find_map(|candidate| {
        if candidate.bitfield_size().unwrap_or(0) != 0 {
            return None;
        }
        let here = u64::from(candidate.bit_offset() / 8);
        match btf.resolve_name(candidate) {
            Ok(name) if name == member => Some(here),
            Ok(name) if !name.is_empty() => None,
            _ if depth == 0 => None,
            _ => match btf.resolve_chained_type(candidate).ok()? {
                Type::Struct(inner) | Type::Union(inner) => {
                    Some(here + offset_in(btf, &inner, member, depth - 1)?)
                }
                _ => None,
            },
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tgid` follows `pid`, and `maj_flt` follows `min_flt`, in every kernel since 2.6; the
    /// test reads this machine's BTF, which every kernel demo supports has.
    #[test]
    fn the_running_kernel_has_the_fields_where_its_source_puts_them() {
        let layout = of_kernel(&running_kernel_btf().unwrap()).unwrap();
        assert!(layout.pid > 0 && layout.min_flt > layout.pid);
        assert_eq!(layout.tgid, layout.pid + 4);
        assert_eq!(layout.maj_flt, layout.min_flt + 8);
        assert_eq!(layout.signal_maj_flt, layout.signal_min_flt + 8);
        // The flags are near the top of task_struct, after its state; the live threads are
        // counted near the top of signal_struct, before its fault counters.
        assert!(layout.flags > 0 && layout.flags < layout.pid);
        assert!(layout.signal_nr_threads < layout.signal_min_flt);
    }
}
