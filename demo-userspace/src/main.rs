//! Entry point of `demo`: parses the command line, runs what it asks for through the library's
//! one entry point, and turns any error into one sentence on stderr and a non-zero exit code.

mod cli;

use std::{io, process::ExitCode};

use demo::{
    app::{self, BadInput},
    kernel::process::ProcessError,
    output::metrics::BindError,
    trace::TargetError,
    walk::workload,
};

use crate::cli::Request;

fn main() -> ExitCode {
    // The workload child starts before the command-line parser allocates anything, so its
    // heap is as close to a fresh C program's as a Rust program's can be.
    if std::env::args_os().nth(1).as_deref() == Some(workload::WORKLOAD_SUBCOMMAND.as_ref()) {
        return match workload::child::serve() {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: workload child: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let request = match cli::parse().request() {
        Ok(request) => request,
        Err(refusal) => {
            eprintln!("error: {refusal}");
            return ExitCode::from(2);
        }
    };
    let ran = match request {
        // These load nothing, so they need neither privileges nor the runtime.
        Request::Completions(shell) => {
            cli::write_completions(shell, &mut io::stdout().lock());
            Ok(ExitCode::SUCCESS)
        }
        Request::Man(command) => cli::write_man(command.as_deref(), &mut io::stdout().lock())
            .map(|()| ExitCode::SUCCESS)
            .map_err(anyhow::Error::from),
        Request::Run(invocation) => app::run(invocation),
    };
    match ran {
        Ok(code) => code,
        // A reader that went away (`demo | head`) is not an error of ours.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            exit_code(&error)
        }
    }
}

/// 2 for bad input (options, pid, command), 1 for everything that went wrong at run time.
fn exit_code(error: &anyhow::Error) -> ExitCode {
    let bad_input = error.chain().any(|cause| {
        cause.is::<BadInput>()
            || cause.is::<TargetError>()
            || cause.is::<ProcessError>()
            || cause
                .downcast_ref::<BindError>()
                .is_some_and(BindError::is_bad_input)
    });
    ExitCode::from(if bad_input { 2 } else { 1 })
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
