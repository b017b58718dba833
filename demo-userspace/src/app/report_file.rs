//! Opens where a report goes: `--output FILE` as the invoking user, or stdout, behind a
//! `ReportWriter`.

use std::io;

use anyhow::Context as _;

use super::{BadInput, Destination};
use crate::{
    kernel::privileges::RunAs,
    output::destination::{self, ReportFileError, ReportWriter},
};

/// The writer of a report to `to`. A file the invoking user does not own is bad input: they
/// named it, and can name another.
pub(super) fn open(to: &Destination, run_as: Option<RunAs>) -> anyhow::Result<ReportWriter> {
    let writer = match to {
        Destination::File(path) => ReportWriter::new(
            path.display().to_string(),
            destination::open_report_file(path, run_as).map_err(|error| match error {
                ReportFileError::NotTheUsers { .. } => {
                    anyhow::Error::new(BadInput(error.to_string()))
                }
                _ => anyhow::Error::new(error),
            })?,
        ),
        Destination::Stdout => ReportWriter::new("standard output".to_owned(), io::stdout()),
    };
    writer.context("start the report's writer")
}
