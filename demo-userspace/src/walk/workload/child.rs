//! The workload child: a separate process that performs one array access per command, so the
//! loader can attribute every fault to the step that caused it.

use std::{
    fs::File,
    io::{self, BufRead as _, Write as _},
    os::fd::{AsRawFd as _, OwnedFd},
    ptr,
};

use super::protocol::Command;

/// Serves commands from stdin until it closes. Returns only on EOF or an I/O error.
pub fn serve() -> io::Result<()> {
    restore_default_fault_signals()?;
    // Memory the runtime touched and freed at start-up must not serve the walk's malloc, or
    // its pages would already be resident: a fresh C program's heap has no such memory.
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    let stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut state = State {
        array: ptr::null_mut(),
        zero: File::open("/dev/zero")?,
        pipe: nix::unistd::pipe()?,
    };
    // Announces that start-up is over, so the loader can tell start-up faults from step faults.
    stdout.write_all(b"ready\n")?;
    stdout.flush()?;
    for line in stdin.lines() {
        let line = line?;
        let reply = match line.parse::<Command>() {
            Ok(command) => state.perform(command),
            Err(error) => format!("error {error}"),
        };
        // One write per reply, so the loader never sees half a line.
        stdout.write_all(format!("{reply}\n").as_bytes())?;
        stdout.flush()?;
    }
    Ok(())
}

/// What the child keeps between commands. The files are opened at start-up, so that opening
/// them does not add faults to a step.
struct State {
    array: *mut i32,
    zero: File,
    pipe: (OwnedFd, OwnedFd),
}

impl State {
    fn perform(&mut self, command: Command) -> String {
        match command {
            Command::Mmap { bytes } => self.allocated(map_anonymous(bytes as usize)),
            Command::MmapGuarded { bytes } => self.allocated(map_with_guard(bytes as usize)),
            Command::Malloc { bytes } => {
                // SAFETY: malloc has no preconditions; a null result is reported.
                let address = unsafe { libc::malloc(bytes as usize) };
                self.allocated(if address.is_null() {
                    Err(io::Error::other("malloc returned NULL"))
                } else {
                    Ok(address.cast())
                })
            }
            _ if self.array.is_null() => "error no array has been allocated yet".to_owned(),
            // The accesses are deliberately unchecked: touching memory the array may not own is
            // the lesson, and the kernel's answer (a fault or SIGSEGV) is what the loader sees.
            Command::Write { index, value } => {
                // SAFETY: see above; volatile keeps the compiler from dropping the access.
                unsafe { ptr::write_volatile(self.element(index), value) };
                "ok".to_owned()
            }
            Command::Read { index } => {
                // SAFETY: as for writes.
                let value = unsafe { ptr::read_volatile(self.element(index)) };
                format!("ok {value}")
            }
            Command::SyscallWrite { index } => {
                // SAFETY: the kernel checks the user buffer itself and fails with EFAULT.
                let done =
                    unsafe { libc::read(self.zero.as_raw_fd(), self.element(index).cast(), 4) };
                syscall_reply(done)
            }
            Command::SyscallRead { index } => {
                let (reader, writer) = &self.pipe;
                // SAFETY: as above; the kernel copies from the user buffer or fails.
                let done =
                    unsafe { libc::write(writer.as_raw_fd(), self.element(index).cast(), 4) };
                let mut sink = [0u8; 4];
                if done > 0 {
                    // SAFETY: `sink` is a local buffer of 4 bytes.
                    unsafe { libc::read(reader.as_raw_fd(), sink.as_mut_ptr().cast(), 4) };
                }
                syscall_reply(done)
            }
        }
    }

    fn element(&self, index: i64) -> *mut i32 {
        self.array.wrapping_offset(index as isize)
    }

    fn allocated(&mut self, result: io::Result<*mut i32>) -> String {
        match result {
            Ok(address) => {
                self.array = address;
                format!("ok {:#x}", address as usize)
            }
            Err(error) => format!("error allocate: {error}"),
        }
    }
}

/// Rust's runtime handles SIGSEGV and SIGBUS to report stack overflows; its handler returns and
/// the faulting access runs again before the process dies. A C program, like the seed's, has no
/// handler, so the child restores the defaults: one bad access, one fault, one SIGSEGV.
fn restore_default_fault_signals() -> io::Result<()> {
    use nix::sys::signal::{SigHandler, Signal, signal};
    for fatal in [Signal::SIGSEGV, Signal::SIGBUS] {
        // SAFETY: installing SIG_DFL runs no code of ours in signal context.
        unsafe { signal(fatal, SigHandler::SigDfl) }.map_err(io::Error::from)?;
    }
    Ok(())
}

fn syscall_reply(done: isize) -> String {
    if done < 0 {
        format!("ok {}", io::Error::last_os_error())
    } else {
        format!("ok {done}")
    }
}

fn map_anonymous(bytes: usize) -> io::Result<*mut i32> {
    // SAFETY: an anonymous private mapping has no preconditions; failure is checked.
    let address = unsafe {
        libc::mmap(
            ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if address == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(address.cast())
    }
}

/// Maps the array plus one page, then unmaps that page. The hole is then ours: the kernel may
/// merge the array with a mapping before it, but nothing is mapped right after it.
fn map_with_guard(bytes: usize) -> io::Result<*mut i32> {
    let page = procfs::page_size() as usize;
    let array_span = bytes.div_ceil(page) * page;
    let address = map_anonymous(array_span + page)?;
    // SAFETY: the range is the last page of the mapping just made.
    let unmapped = unsafe { libc::munmap(address.cast::<u8>().add(array_span).cast(), page) };
    if unmapped != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(address)
}
