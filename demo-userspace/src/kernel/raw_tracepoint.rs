//! Checks the arguments a raw-tracepoint program reads by position against the tracepoint's
//! prototype in the kernel's BTF, so a kernel that reorders them is refused, not misread.

use btf_rs::{Btf, Type};

/// Failures to find a raw tracepoint's prototype, or arguments where the programs do not expect
/// them.
#[derive(Debug, thiserror::Error)]
pub enum RawTracepointError {
    #[error(
        "find the prototype of tracepoint {tracepoint} in the kernel's type information (none of {}): the fault programs cannot check the arguments they read",
        PROTOTYPE_FUNCTIONS.map(|prefix| format!("{prefix}{tracepoint}")).join(", ")
    )]
    MissingPrototype { tracepoint: String },
    #[error(
        "tracepoint {tracepoint} passes {} as argument {position}, but the eBPF programs read `{expected}` there",
        found.as_deref().map_or_else(|| "nothing".to_owned(), |name| format!("`{name}`"))
    )]
    ArgumentMismatch {
        tracepoint: String,
        position: usize,
        expected: String,
        found: Option<String>,
    },
}

/// The kernel functions that take a tracepoint's arguments with their names, after the
/// tracepoint's own `void *__data`: `__traceiter_NAME` (since 5.10) calls the attached
/// programs, and `__probestub_NAME` (since 6.5) is the empty probe of the same prototype. The
/// `btf_trace_NAME` typedef that raw-tracepoint programs are checked against has the same
/// types, but its parameters have no names.
const PROTOTYPE_FUNCTIONS: [&str; 2] = ["__traceiter_", "__probestub_"];

/// Checks that `tracepoint` passes each `(name, position)` of `expected` at that position, as
/// `ctx.arg(position)` reads it.
pub fn check_args(
    btf: &Btf,
    tracepoint: &str,
    expected: &[(&str, usize)],
) -> Result<(), RawTracepointError> {
    let names =
        argument_names(btf, tracepoint).ok_or_else(|| RawTracepointError::MissingPrototype {
            tracepoint: tracepoint.to_owned(),
        })?;
    for &(name, position) in expected {
        let found = names.get(position);
        if found.map(String::as_str) != Some(name) {
            return Err(RawTracepointError::ArgumentMismatch {
                tracepoint: tracepoint.to_owned(),
                position,
                expected: name.to_owned(),
                found: found.cloned(),
            });
        }
    }
    Ok(())
}

/// The names of `tracepoint`'s arguments in order, without the leading `void *__data`.
fn argument_names(btf: &Btf, tracepoint: &str) -> Option<Vec<String>> {
    PROTOTYPE_FUNCTIONS.iter().find_map(|prefix| {
        let types = btf
            .resolve_types_by_name(&format!("{prefix}{tracepoint}"))
            .ok()?;
        let function = types.iter().find_map(|ty| match ty {
            Type::Func(function) => Some(function),
            _ => None,
        })?;
        let Ok(Type::FuncProto(prototype)) = btf.resolve_chained_type(function) else {
            return None;
        };
        prototype
            .parameters
            .iter()
            .skip(1)
            .map(|parameter| btf.resolve_name(parameter).ok())
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::task_layout::running_kernel_btf;
    use demo_common::fault_tracepoint;

    /// Reads this machine's BTF, which every kernel demo supports has, and the exceptions
    /// tracepoints, which every x86-64 kernel has.
    #[test]
    fn the_fault_programs_read_the_arguments_where_the_kernel_passes_them() {
        let btf = running_kernel_btf().unwrap();
        for tracepoint in ["page_fault_user", "page_fault_kernel"] {
            check_args(&btf, tracepoint, &fault_tracepoint::ARGS).unwrap();
            assert_eq!(
                argument_names(&btf, tracepoint).unwrap(),
                ["address", "regs", "error_code"]
            );
        }
    }

    #[test]
    fn a_changed_order_or_a_missing_tracepoint_is_refused() {
        let btf = running_kernel_btf().unwrap();
        let swapped = [("error_code", 0), ("address", 2)];
        let error = check_args(&btf, "page_fault_user", &swapped).unwrap_err();
        assert!(
            matches!(
                &error,
                RawTracepointError::ArgumentMismatch { position: 0, found: Some(found), .. }
                    if found == "address"
            ),
            "{error}"
        );
        assert_eq!(
            error.to_string(),
            "tracepoint page_fault_user passes `address` as argument 0, but the eBPF programs read `error_code` there"
        );
        let beyond = check_args(&btf, "page_fault_user", &[("address", 7)]).unwrap_err();
        assert!(beyond.to_string().contains("passes nothing as argument 7"));
        let missing = check_args(&btf, "no_such_tracepoint", &[]).unwrap_err();
        assert!(matches!(
            missing,
            RawTracepointError::MissingPrototype { .. }
        ));
    }
}
