//! The JSON Lines writer every JSON output shares: one object per line, put together in its own
//! buffer and handed to the output in large pieces, so a line costs no allocation, no call per
//! token and no second copy: a report's writer takes each piece whole, as it is.

use std::io::{self, Write};

use serde::Serialize;

/// Bytes of lines held before they are written out.
const BATCH_BYTES: usize = 256 * 1024;

/// An output that takes a batch of bytes at once. Most copy it as `write_all` does; a report's
/// writer takes the buffer itself and gives back an empty one, so a trace's bytes are copied
/// once, by write(2), and not first from batch to chunk.
pub trait BatchWrite: Write {
    /// Writes every byte of `batch` and leaves it empty, its capacity kept for the next one.
    fn write_batch(&mut self, batch: &mut Vec<u8>) -> io::Result<()> {
        let written = self.write_all(batch);
        batch.clear();
        written
    }
}

impl BatchWrite for Vec<u8> {}

impl<W: BatchWrite + ?Sized> BatchWrite for &mut W {
    fn write_batch(&mut self, batch: &mut Vec<u8>) -> io::Result<()> {
        (**self).write_batch(batch)
    }
}

impl<W: BatchWrite + ?Sized> BatchWrite for Box<W> {
    fn write_batch(&mut self, batch: &mut Vec<u8>) -> io::Result<()> {
        (**self).write_batch(batch)
    }
}

/// Writes JSON objects to `out`, one per line. What is still held is written by `flush`, and
/// by drop as a last resort.
pub struct JsonLines<W: BatchWrite> {
    out: W,
    pending: Vec<u8>,
}

impl<W: BatchWrite> JsonLines<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            pending: Vec::with_capacity(BATCH_BYTES + 4096),
        }
    }

    /// Writes `value` as one line.
    pub fn line(&mut self, value: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut self.pending, value)?;
        self.end_line()
    }

    /// Writes one line that `write` puts together itself, for the one line per fault.
    pub fn line_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        write(&mut self.pending);
        self.end_line()
    }

    /// Writes out every line held, and flushes the output.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.out.flush()
    }

    fn end_line(&mut self) -> io::Result<()> {
        self.pending.push(b'\n');
        if self.pending.len() >= BATCH_BYTES {
            self.write_pending()?;
        }
        Ok(())
    }

    fn write_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.out.write_batch(&mut self.pending)?;
        // A buffer handed back smaller than a batch grows once, here, and not line by line.
        self.pending.reserve(BATCH_BYTES + 4096);
        Ok(())
    }
}

impl<W: BatchWrite> Drop for JsonLines<W> {
    fn drop(&mut self) {
        // An error here has nowhere to go; every output flushes at its end anyway.
        let _ = self.flush();
    }
}
