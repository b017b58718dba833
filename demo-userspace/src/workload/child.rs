//! The workload child: a separate process that performs one array access per command, so the
//! loader can attribute every fault to the step that caused it.

use std::{
    io::{self, BufRead as _, Write as _},
    ptr,
};

use super::protocol::Command;

/// Serves commands from stdin until it closes. Returns only on EOF or an I/O error.
pub fn serve() -> io::Result<()> {
    let stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut array: *mut i32 = ptr::null_mut();
    // Announces that start-up is over, so the loader can tell start-up faults from step faults.
    stdout.write_all(b"ready\n")?;
    stdout.flush()?;
    for line in stdin.lines() {
        let line = line?;
        let reply = match line.parse::<Command>() {
            Ok(command) => perform(command, &mut array),
            Err(error) => format!("error {error}"),
        };
        // One write per reply, so the loader never sees half a line.
        stdout.write_all(format!("{reply}\n").as_bytes())?;
        stdout.flush()?;
    }
    Ok(())
}

fn perform(command: Command, array: &mut *mut i32) -> String {
    match command {
        Command::Mmap { bytes } => {
            // SAFETY: an anonymous private mapping has no preconditions; failure is checked.
            let address = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    bytes as usize,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if address == libc::MAP_FAILED {
                return format!("error mmap: {}", io::Error::last_os_error());
            }
            *array = address.cast();
            format!("ok {:#x}", address as usize)
        }
        _ if array.is_null() => "error no array has been allocated yet".to_owned(),
        // The accesses are deliberately unchecked: touching memory the array may not own is the
        // lesson, and the kernel's answer (a fault or SIGSEGV) is what the loader observes.
        Command::Write { index, value } => {
            // SAFETY: see above; volatile keeps the compiler from removing or merging the access.
            unsafe { ptr::write_volatile(array.wrapping_offset(index as isize), value) };
            "ok".to_owned()
        }
        Command::Read { index } => {
            // SAFETY: as for writes.
            let value = unsafe { ptr::read_volatile(array.wrapping_offset(index as isize)) };
            format!("ok {value}")
        }
    }
}
