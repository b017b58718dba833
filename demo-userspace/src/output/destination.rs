//! Where a report goes: a file opened for the invoking user without handing them anything that
//! was not theirs, or standard output; either is written from a thread of its own, so a reader
//! that stops reading never holds demo up when it is asked to stop.

use std::{
    fs::File,
    io::{self, Write},
    os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
        mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError},
    },
    thread::JoinHandle,
    time::Duration,
};

use nix::unistd::{Gid, Uid};

use crate::kernel::{privileges::RunAs, shutdown};

/// Why the report file cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum ReportFileError {
    #[error("create the output file {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "write the output file {path}: it belongs to uid {owner}, not to the invoking user (uid {user}); demo only replaces files that user owns"
    )]
    NotTheUsers {
        path: PathBuf,
        owner: u32,
        user: u32,
    },
    #[error("create the output file {path}: demo could not act as the invoking user (uid {user})")]
    Identity { path: PathBuf, user: u32 },
}

/// Opens `path` for a report, as the invoking user `user` (the one behind sudo) would:
/// - a path that does not exist is created with `O_CREAT|O_EXCL|O_NOFOLLOW`, with the kernel's
///   permission checks made as that user, so the new file is theirs and lies only where they
///   may write;
/// - an existing regular file is truncated only when that user owns it;
/// - a device, FIFO or socket is written as it is.
///
/// Nothing that existed changes owner. An existing path is opened as the user too, so a symlink
/// leads only where they could write, and what it leads to is judged by the file it opened.
/// Without sudo (`user` is `None`) root is the invoking user.
pub fn open_report_file(path: &Path, user: Option<RunAs>) -> Result<File, ReportFileError> {
    let open_error = |source| ReportFileError::Open {
        path: path.to_owned(),
        source,
    };
    let _identity = match user {
        Some(user) => Some(
            ActingAs::switch(user).ok_or_else(|| ReportFileError::Identity {
                path: path.to_owned(),
                user: user.uid.as_raw(),
            })?,
        ),
        None => None,
    };
    let created = File::options()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path);
    let file = match created {
        Ok(file) => return Ok(file),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => File::options()
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(path)
            .map_err(open_error)?,
        Err(error) => return Err(open_error(error)),
    };
    let meta = file.metadata().map_err(open_error)?;
    let kind = meta.file_type();
    if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() || kind.is_socket() {
        return Ok(file);
    }
    let owner_wanted = user.map_or(0, |user| user.uid.as_raw());
    if user.is_some() && meta.uid() != owner_wanted {
        return Err(ReportFileError::NotTheUsers {
            path: path.to_owned(),
            owner: meta.uid(),
            user: owner_wanted,
        });
    }
    file.set_len(0).map_err(open_error)?;
    Ok(file)
}

/// The calling thread's filesystem identity switched to a user's until dropped: the kernel then
/// checks paths as that user and gives new files to them (setfsuid acts on this thread alone).
struct ActingAs;

impl ActingAs {
    fn switch(user: RunAs) -> Option<Self> {
        nix::unistd::setfsgid(user.gid);
        nix::unistd::setfsuid(user.uid);
        // setfsuid reports the previous id, never a failure: ask again to learn whether it took.
        let took = nix::unistd::setfsuid(user.uid) == user.uid
            && nix::unistd::setfsgid(user.gid) == user.gid;
        if took {
            Some(Self)
        } else {
            Self::restore();
            None
        }
    }

    fn restore() {
        nix::unistd::setfsuid(Uid::effective());
        nix::unistd::setfsgid(Gid::effective());
    }
}

impl Drop for ActingAs {
    fn drop(&mut self) {
        Self::restore();
    }
}

/// How much a report hands its writing thread at a time.
const CHUNK: usize = 64 * 1024;
/// Chunks that may wait for the writing thread; beyond them the report waits for its reader.
const CHUNKS_QUEUED: usize = 16;
/// How often a report that waits for its reader looks whether demo was asked to stop.
const STOP_CHECK: Duration = Duration::from_millis(20);

enum Message {
    Bytes(Vec<u8>),
    /// Answered once everything before it is written.
    Flush(SyncSender<()>),
}

/// A report's output: bytes go to a thread that writes them to the file or standard output.
/// Errors name the output (`write trace.json: No space left on device`). While the reader does
/// not read, writes wait for it, but a SIGINT or SIGTERM ends the wait at once with an error
/// that says how much of the report was not written.
pub struct ReportWriter {
    name: String,
    chunks: SyncSender<Message>,
    /// Buffers the thread has written out, handed back for reuse: a fresh buffer of a batch's
    /// size would be a new mapping whose pages the loader faults in again for every batch.
    spare: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    /// Bytes handed to the thread, and (in `progress`) bytes it wrote.
    handed: u64,
    progress: Arc<Progress>,
    _thread: JoinHandle<()>,
}

#[derive(Default)]
struct Progress {
    written: AtomicU64,
    failed: Mutex<Option<io::Error>>,
}

impl ReportWriter {
    /// Writes to `out`, named `name` in errors (a file's path, or `standard output`).
    pub fn new(name: String, out: impl Write + Send + 'static) -> io::Result<Self> {
        let (chunks, queued) = std::sync::mpsc::sync_channel(CHUNKS_QUEUED);
        let (give_back, spare) = std::sync::mpsc::sync_channel(CHUNKS_QUEUED + 1);
        let progress = Arc::new(Progress::default());
        let thread = std::thread::Builder::new()
            .name("report writer".to_owned())
            .spawn({
                let progress = Arc::clone(&progress);
                move || write_all_queued(out, &queued, &give_back, &progress)
            })?;
        Ok(Self {
            name,
            chunks,
            spare,
            pending: Vec::with_capacity(CHUNK),
            handed: 0,
            progress,
            _thread: thread,
        })
    }

    fn failure(&self) -> Option<io::Error> {
        let failed = self.progress.failed.lock().ok()?;
        failed
            .as_ref()
            .map(|error| io::Error::new(error.kind(), format!("write {}: {error}", self.name)))
    }

    fn unwritten(&self) -> u64 {
        self.handed + self.pending.len() as u64 - self.progress.written.load(Ordering::Acquire)
    }

    /// The error for a report given up when demo was asked to stop. Not of the kind
    /// `Interrupted`: `write_all` would take that as EINTR and try again, for ever.
    fn stopped(&self) -> io::Error {
        io::Error::other(format!(
            "write {}: {} bytes of the report were not written: nothing read them before demo was asked to stop",
            self.name,
            self.unwritten()
        ))
    }

    /// True when demo was asked to stop and the reader took nothing since `*seen` bytes were
    /// written, which it updates: a file or a reader that keeps reading is written to the end,
    /// only one that stopped reading is given up.
    fn stuck_at_stop(&self, seen: &mut u64) -> bool {
        stuck(
            shutdown::is_requested(),
            self.progress.written.load(Ordering::Acquire),
            seen,
        )
    }

    /// Hands `message` to the thread, waiting while its queue is full unless demo is asked to
    /// stop meanwhile and the reader does not read.
    fn send(&mut self, mut message: Message) -> io::Result<()> {
        let mut seen = u64::MAX;
        loop {
            if let Some(error) = self.failure() {
                return Err(error);
            }
            match self.chunks.try_send(message) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    if self.stuck_at_stop(&mut seen) {
                        return Err(self.stopped());
                    }
                    message = back;
                    std::thread::sleep(STOP_CHECK);
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(self.failure().unwrap_or_else(|| {
                        io::Error::other(format!("write {}: its writer stopped", self.name))
                    }));
                }
            }
        }
    }

    fn hand_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let bytes = std::mem::replace(&mut self.pending, next);
        // Counted as handed before it is, so that an error while it waits counts it unwritten.
        self.handed += bytes.len() as u64;
        self.send(Message::Bytes(bytes))
    }
}

impl Write for ReportWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(error) = self.failure() {
            return Err(error);
        }
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= CHUNK {
            self.hand_pending()?;
        }
        Ok(buf.len())
    }

    /// Returns once every byte so far is written, or demo is asked to stop while the reader
    /// does not read.
    fn flush(&mut self) -> io::Result<()> {
        self.hand_pending()?;
        let (done, written) = std::sync::mpsc::sync_channel(1);
        self.send(Message::Flush(done))?;
        let mut seen = u64::MAX;
        loop {
            match written.recv_timeout(STOP_CHECK) {
                Ok(()) => return self.failure().map_or(Ok(()), Err),
                Err(RecvTimeoutError::Timeout) if self.stuck_at_stop(&mut seen) => {
                    return Err(self.stopped());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.failure().unwrap_or_else(|| {
                        io::Error::other(format!("write {}: its writer stopped", self.name))
                    }));
                }
            }
        }
    }
}

impl super::BatchWrite for ReportWriter {
    /// Hands `batch` itself to the writing thread, after what was written before it, and leaves
    /// a spare buffer in its place.
    fn write_batch(&mut self, batch: &mut Vec<u8>) -> io::Result<()> {
        if let Some(error) = self.failure() {
            return Err(error);
        }
        self.hand_pending()?;
        if batch.is_empty() {
            return Ok(());
        }
        let spare = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(batch.capacity()));
        let bytes = std::mem::replace(batch, spare);
        self.handed += bytes.len() as u64;
        self.send(Message::Bytes(bytes))
    }
}

/// True when demo was asked to stop (`requested`) and the bytes `written` so far are the
/// `*seen` of the last look, which it updates.
fn stuck(requested: bool, written: u64, seen: &mut u64) -> bool {
    if !requested {
        return false;
    }
    let stuck = written == *seen;
    *seen = written;
    stuck
}

/// The writing thread: writes every chunk in order, and after the first error only answers
/// flushes (the error is what the report's next write returns).
fn write_all_queued(
    mut out: impl Write,
    queued: &Receiver<Message>,
    give_back: &SyncSender<Vec<u8>>,
    progress: &Progress,
) {
    let mut failed = false;
    for message in queued {
        match message {
            Message::Bytes(mut bytes) => {
                if !failed {
                    match out.write_all(&bytes) {
                        Ok(()) => {
                            progress
                                .written
                                .fetch_add(bytes.len() as u64, Ordering::Release);
                        }
                        Err(error) => failed = progress.fail(error),
                    }
                }
                bytes.clear();
                // A full return queue only means the report makes do with a new buffer.
                let _ = give_back.try_send(bytes);
            }
            Message::Flush(done) => {
                if !failed && let Err(error) = out.flush() {
                    failed = progress.fail(error);
                }
                // Answered after the error is kept, so the flush that waits for this sees it.
                let _ = done.send(());
            }
        }
    }
}

impl Progress {
    /// Keeps the first write error for the report's next write; returns true (failed).
    fn fail(&self, error: io::Error) -> bool {
        if let Ok(mut slot) = self.failed.lock() {
            *slot = Some(error);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination that takes `room` bytes, then fails as a full disk does.
    struct Full {
        room: usize,
        taken: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut taken = self.taken.lock().unwrap();
            if taken.len() + buf.len() > self.room {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            taken.extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A report to a destination with room for everything, and what it took.
    fn unbounded_report() -> (ReportWriter, Arc<Mutex<Vec<u8>>>) {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let full = Full {
            room: usize::MAX,
            taken: Arc::clone(&taken),
        };
        (ReportWriter::new("report".to_owned(), full).unwrap(), taken)
    }

    #[test]
    fn everything_written_is_there_after_a_flush() {
        let (mut report, taken) = unbounded_report();
        let line = b"0123456789abcdef\n";
        for _ in 0..20_000 {
            report.write_all(line).unwrap();
        }
        report.flush().unwrap();
        assert_eq!(taken.lock().unwrap().len(), 20_000 * line.len());
        assert_eq!(report.unwritten(), 0);
    }

    /// A batch handed whole lands after what was written before it and before what follows,
    /// and the caller gets an empty buffer back.
    #[test]
    fn a_batch_taken_whole_keeps_the_order_of_the_bytes() {
        use crate::output::BatchWrite as _;
        let (mut report, taken) = unbounded_report();
        let mut expected = Vec::new();
        for round in 0..50_u8 {
            let small = vec![round; 100];
            report.write_all(&small).unwrap();
            expected.extend_from_slice(&small);
            let mut batch = vec![round.wrapping_add(100); 70_000];
            expected.extend_from_slice(&batch);
            report.write_batch(&mut batch).unwrap();
            assert!(batch.is_empty());
        }
        report.flush().unwrap();
        assert!(*taken.lock().unwrap() == expected);
        assert_eq!(report.unwritten(), 0);
    }

    /// The bench's trace report, a regular file, was given up at the stop with megabytes still
    /// queued: a reader that keeps taking bytes is waited for, one that takes none is not.
    #[test]
    fn at_the_stop_only_a_reader_that_takes_nothing_is_given_up() {
        let mut seen = u64::MAX;
        assert!(!stuck(false, 0, &mut seen));
        assert!(!stuck(true, 100, &mut seen));
        assert!(!stuck(true, 200, &mut seen));
        assert!(stuck(true, 200, &mut seen));
    }

    #[test]
    fn a_write_error_names_the_output() {
        let mut report = ReportWriter::new(
            "trace.json".to_owned(),
            Full {
                room: 10,
                taken: Arc::default(),
            },
        )
        .unwrap();
        report.write_all(&[b'x'; 100]).unwrap();
        let error = report.flush().unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "write trace.json: {}",
                io::Error::from_raw_os_error(libc::ENOSPC)
            )
        );
        // Every later write says the same.
        assert!(
            report
                .write_all(b"more")
                .unwrap_err()
                .to_string()
                .starts_with("write trace.json: ")
        );
    }
}
