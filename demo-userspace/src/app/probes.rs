//! Loads the per-event programs of a walk or a trace and opens their ring buffer.

use anyhow::Context as _;

use crate::kernel::{
    event_reader::EventReader,
    probes::{ProbeOptions, Probes},
};

/// Loads and attaches the programs `options` ask for, and the reader of their ring buffer.
pub(super) fn load(options: &ProbeOptions) -> anyhow::Result<(Probes, EventReader)> {
    let mut probes = Probes::load(options)?;
    let ring = probes.take_events().context("open the event ring buffer")?;
    let reader = EventReader::new(ring).context("register the event ring buffer")?;
    Ok((probes, reader))
}
