//! The workload child: a separate process that performs one array access per command, so the
//! loader can attribute every fault to the step that caused it.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufRead, BufReader, Write},
    os::fd::{AsRawFd as _, OwnedFd},
    path::Path,
    ptr,
};

use super::protocol::{Advice, Command, FRAME_BYTES};

/// Serves commands from stdin until it closes. Returns only on EOF or an I/O error.
pub fn serve() -> io::Result<()> {
    restore_default_fault_signals()?;
    // Memory the runtime touched and freed at start-up must not serve the walk's malloc, or
    // its pages would already be resident: a fresh C program's heap has no such memory.
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe { libc::malloc_trim(0) };
    touch_own_stack();
    let mut state = State {
        array: ptr::null_mut(),
        zero: File::open("/dev/zero")?,
        pipe: nix::unistd::pipe()?,
        file: None,
        forked: None,
    };
    let served = serve_lines(io::stdin().lock(), io::stdout().lock(), &mut state);
    // The forked process ends when its commands end; it is reaped so that its exit is over
    // before this process's own.
    if let Some(forked) = state.forked.take() {
        drop(forked.commands);
        let _ = nix::sys::wait::waitpid(forked.pid, None);
    }
    served
}

/// How much of its own stack the child touches at start-up: more than reading and parsing a
/// command ever uses, so that no step's faults are the child's own frames. Where its stack
/// pointer sits in a page is random (ASLR), so without this a command's parsing crossed into a
/// new stack page in some runs and not in others.
const OWN_STACK_BYTES: usize = 64 << 10;

/// Touches the [`OWN_STACK_BYTES`] below the current frame, once, at start-up.
#[inline(never)]
fn touch_own_stack() {
    let mut frames = [0u8; OWN_STACK_BYTES];
    // black_box keeps the writes: the compiler must assume the array is read.
    std::hint::black_box(&mut frames).fill(1);
}

/// Announces that start-up is over, then performs one command per line of `input`, one reply
/// per line of `output`.
fn serve_lines(input: impl BufRead, mut output: impl Write, state: &mut State) -> io::Result<()> {
    // The loader can tell start-up faults from step faults by this line.
    output.write_all(b"ready\n")?;
    output.flush()?;
    for line in input.lines() {
        let line = line?;
        let reply = match line.parse::<Command>() {
            Ok(command) => state.perform(command),
            Err(error) => format!("error {error}"),
        };
        // One write per reply, so the loader never sees half a line.
        output.write_all(format!("{reply}\n").as_bytes())?;
        output.flush()?;
    }
    Ok(())
}

/// What the child keeps between commands. The files are opened at start-up, so that opening
/// them does not add faults to a step.
struct State {
    array: *mut i32,
    zero: File,
    pipe: (OwnedFd, OwnedFd),
    /// The file `CreateFile` made, kept open for `MapFile`.
    file: Option<File>,
    /// The process `Fork` made, which serves `InChild` commands.
    forked: Option<Forked>,
}

/// This process's end of the pipes to the process it forked.
struct Forked {
    pid: nix::unistd::Pid,
    commands: File,
    replies: BufReader<File>,
}

impl State {
    fn perform(&mut self, command: Command) -> String {
        match command {
            Command::InChild(command) => self.relay(&command),
            Command::Fork => self
                .fork()
                .unwrap_or_else(|error| format!("error fork: {error}")),
            Command::CreateFile { path, pages } => match self.create_file(&path, pages) {
                Ok(()) => "ok".to_owned(),
                Err(error) => format!("error create {}: {error}", path.display()),
            },
            Command::MapFile { bytes, shared } => {
                let mapped = match &self.file {
                    Some(file) => map(bytes as usize, Some((file, shared))),
                    None => Err(io::Error::other("no file has been created yet")),
                };
                self.allocated(mapped)
            }
            Command::StackPointer => {
                let marker = 0u8;
                format!("ok {:#x}", ptr::addr_of!(marker) as usize)
            }
            Command::Recurse { frames } => {
                let mut lowest = Frames::default();
                recurse(frames, &mut lowest);
                format!("ok {:#x} {}", lowest.lowest, lowest.frame_bytes)
            }
            Command::LimitStack { bytes } => {
                use nix::sys::resource::{Resource, getrlimit, setrlimit};
                let set = getrlimit(Resource::RLIMIT_STACK)
                    .and_then(|(_, hard)| setrlimit(Resource::RLIMIT_STACK, bytes, hard));
                match set {
                    Ok(()) => "ok".to_owned(),
                    Err(error) => format!("error setrlimit: {error}"),
                }
            }
            Command::MmapAligned { bytes, align } => {
                self.allocated(map_aligned(bytes as usize, align as usize))
            }
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
            Command::WritePages {
                first,
                count,
                value,
            } => {
                for page in first..first + count {
                    // SAFETY: as for writes.
                    unsafe { ptr::write_volatile(self.page_start(page), value) };
                }
                "ok".to_owned()
            }
            Command::ReadPages { first, count } => {
                let values: Vec<String> = (first..first + count)
                    // SAFETY: as for reads.
                    .map(|page| unsafe { ptr::read_volatile(self.page_start(page)) }.to_string())
                    .collect();
                format!("ok {}", values.join(" "))
            }
            Command::Madvise { bytes, advice } => {
                let advice = match advice {
                    Advice::DontNeed => libc::MADV_DONTNEED,
                    Advice::HugePage => libc::MADV_HUGEPAGE,
                    Advice::NoHugePage => libc::MADV_NOHUGEPAGE,
                };
                // SAFETY: madvise checks the range itself; failure is reported.
                let done = unsafe { libc::madvise(self.array.cast(), bytes as usize, advice) };
                syscall_reply(done as isize)
            }
            Command::Mprotect { bytes, writable } => {
                let prot = if writable {
                    libc::PROT_READ | libc::PROT_WRITE
                } else {
                    libc::PROT_READ
                };
                // SAFETY: mprotect checks the range itself; failure is reported.
                let done = unsafe { libc::mprotect(self.array.cast(), bytes as usize, prot) };
                syscall_reply(done as isize)
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

    /// The first int of page `page` of the array.
    fn page_start(&self, page: u64) -> *mut i32 {
        let ints_per_page = procfs::page_size() / 4;
        self.element((page * ints_per_page) as i64)
    }

    /// Forks. The new process serves commands on pipes from this one, and says `ready` there
    /// once it waits for the first, so its own start (copy-on-write faults on the stack it
    /// inherited) belongs to the fork's step. It dies with this process.
    fn fork(&mut self) -> io::Result<String> {
        use nix::unistd::{ForkResult, fork, pipe};
        if self.forked.is_some() {
            return Err(io::Error::other("this walk has forked already"));
        }
        let (commands_in, commands_out) = pipe()?;
        let (replies_in, replies_out) = pipe()?;
        // SAFETY: the workload child has one thread, so the new process may run any code.
        match unsafe { fork() }? {
            ForkResult::Child => {
                drop((commands_out, replies_in));
                let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
                let served = serve_lines(
                    BufReader::new(File::from(commands_in)),
                    File::from(replies_out),
                    self,
                );
                // SAFETY: _exit ends the process without running the parent's exit handlers
                // or flushing its copied stdout buffer a second time.
                unsafe { libc::_exit(i32::from(served.is_err())) }
            }
            ForkResult::Parent { child } => {
                drop((commands_in, replies_out));
                let mut forked = Forked {
                    pid: child,
                    commands: File::from(commands_out),
                    replies: BufReader::new(File::from(replies_in)),
                };
                let mut ready = String::new();
                forked.replies.read_line(&mut ready)?;
                if ready.trim_end() != "ready" {
                    return Err(io::Error::other("the forked process did not start"));
                }
                self.forked = Some(forked);
                Ok(format!("ok {child}"))
            }
        }
    }

    /// Sends `command` to the forked process and returns its reply as this process's own.
    fn relay(&mut self, command: &Command) -> String {
        let Some(forked) = &mut self.forked else {
            return "error no process has been forked yet".to_owned();
        };
        let mut reply = String::new();
        let relayed = writeln!(forked.commands, "{command}")
            .and_then(|()| forked.replies.read_line(&mut reply));
        match relayed {
            Ok(0) | Err(_) => "error the forked process is gone".to_owned(),
            Ok(_) => reply.trim_end().to_owned(),
        }
    }

    /// Writes a file of `pages` pages, each starting with its number, to disk, and drops it from
    /// the page cache, so that the next access to it must read the disk.
    fn create_file(&mut self, path: &Path, pages: u64) -> io::Result<()> {
        use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let page_size = procfs::page_size() as usize;
        let mut page = vec![0u8; page_size];
        for number in 0..pages {
            page[..4].copy_from_slice(&(number as i32).to_ne_bytes());
            file.write_all(&page)?;
        }
        // Dirty pages cannot be dropped; written back, they are clean and DONTNEED drops them.
        file.sync_all()?;
        posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)?;
        self.file = Some(file);
        Ok(())
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
    map(bytes, None)
}

/// Maps `bytes` read and write: anonymous and private, or of `file`, shared or private.
fn map(bytes: usize, file: Option<(&File, bool)>) -> io::Result<*mut i32> {
    let (flags, fd) = match file {
        None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
        Some((file, true)) => (libc::MAP_SHARED, file.as_raw_fd()),
        Some((file, false)) => (libc::MAP_PRIVATE, file.as_raw_fd()),
    };
    // SAFETY: a new mapping chosen by the kernel replaces nothing; failure is checked.
    let address = unsafe {
        libc::mmap(
            ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            fd,
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

/// Maps `bytes + align`, then unmaps what lies outside the first `align`-aligned `bytes` of it.
fn map_aligned(bytes: usize, align: usize) -> io::Result<*mut i32> {
    let address = map_anonymous(bytes + align)? as usize;
    let start = address.next_multiple_of(align);
    let end = start + bytes;
    for (from, to) in [(address, start), (end, address + bytes + align)] {
        // SAFETY: each range is a part of the mapping just made, outside the array.
        if from < to && unsafe { libc::munmap(from as *mut libc::c_void, to - from) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(start as *mut i32)
}

/// What `recurse` measured: the lowest byte it wrote and the distance between two frames.
#[derive(Default)]
struct Frames {
    lowest: usize,
    frame_bytes: usize,
}

/// Calls itself `depth` deep, each call with `FRAME_BYTES` of its own data whose lowest byte it
/// writes, so the stack grows by about a page a call.
#[inline(never)]
fn recurse(depth: u32, frames: &mut Frames) {
    let mut data = [0u8; FRAME_BYTES];
    // SAFETY: `data` is this frame's own array; volatile keeps the write.
    unsafe { ptr::write_volatile(data.as_mut_ptr(), depth as u8) };
    let here = data.as_ptr() as usize;
    if frames.lowest != 0 && frames.frame_bytes == 0 {
        frames.frame_bytes = frames.lowest - here;
    }
    frames.lowest = here;
    if depth > 1 {
        recurse(depth - 1, frames);
    }
    std::hint::black_box(&data);
}
