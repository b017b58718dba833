//! Reads records from the event ring buffer through tokio and decodes them in batches.

use std::{io, time::Duration};

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;

use super::records;
use crate::model::events::Decoded;

/// How long the reader sleeps at most: the kernel side submits without waking us until the buffer
/// passes its fill threshold, so this bounds how late a record can be seen.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The consumer side of the event ring buffer.
pub struct EventReader {
    ring: AsyncFd<RingBuf<MapData>>,
    malformed: u64,
    /// Records decoded, by [`demo_common::RecordKind`] tag.
    delivered: [u64; demo_common::DROP_SLOTS as usize],
}

impl EventReader {
    pub fn new(ring: RingBuf<MapData>) -> io::Result<Self> {
        // SAFETY: the RingBuf owns its map fd and keeps it open, unchanged, until it drops, and
        // the AsyncFd owns the RingBuf.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|error| error.into_parts().1)?;
        Ok(Self {
            ring,
            malformed: 0,
            delivered: [0; demo_common::DROP_SLOTS as usize],
        })
    }

    /// Decodes every record waiting now and hands each to `sink`. Records that do not decode are
    /// counted as malformed and logged, never passed on.
    pub fn drain(&mut self, sink: impl FnMut(Decoded)) {
        self.drain_some(usize::MAX, sink);
    }

    /// Like [`EventReader::drain`], but stops after `limit` records, so a consumer that writes
    /// its output between batches holds at most one batch in memory. Returns how many it took.
    pub fn drain_some(&mut self, limit: usize, mut sink: impl FnMut(Decoded)) -> usize {
        let ring = self.ring.get_mut();
        let mut taken = 0;
        while taken < limit
            && let Some(item) = ring.next()
        {
            taken += 1;
            match records::decode(&item) {
                Ok(decoded) => {
                    // A decoded record's tag is a known kind, so it indexes the array.
                    let tag = u32::from_ne_bytes([item[0], item[1], item[2], item[3]]);
                    self.delivered[tag as usize] += 1;
                    sink(decoded);
                }
                Err(error) => {
                    self.malformed += 1;
                    log::warn!("skipped a ring-buffer record: {error}");
                }
            }
        }
        taken
    }

    /// Waits until the kernel wakes the reader or [`POLL_INTERVAL`] passes.
    pub async fn wait(&mut self) -> io::Result<()> {
        match tokio::time::timeout(POLL_INTERVAL, self.ring.readable_mut()).await {
            Ok(guard) => {
                guard?.clear_ready();
                Ok(())
            }
            Err(_elapsed) => Ok(()),
        }
    }

    /// Records decoded so far, by kind tag.
    pub fn delivered(&self) -> &[u64] {
        &self.delivered
    }

    /// Records that could not be decoded; they count as lost.
    pub fn malformed(&self) -> u64 {
        self.malformed
    }
}
