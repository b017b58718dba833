//! Decodes the raw bytes of ring-buffer records into typed values, rejecting anything malformed.

use demo_common::{FaultRecord, FaultSource, RecordKind};

use crate::access::ErrorCode;

/// One page fault of a traced process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// CLOCK_MONOTONIC nanoseconds at the fault.
    pub timestamp_ns: u64,
    /// Process id (thread-group id).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Faulting virtual address.
    pub address: u64,
    /// Instruction pointer at the fault.
    pub ip: u64,
    /// The CPU's page-fault error code.
    pub error_code: ErrorCode,
    /// Which tracepoint saw it.
    pub source: FaultSource,
}

/// A decoded ring-buffer record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// A page fault.
    Fault(Fault),
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The record is shorter than its kind's fixed size (or than the tag itself).
    #[error("truncated record: {len} bytes, need {need}")]
    Truncated { len: usize, need: usize },
    /// The tag names no record kind this build knows.
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    /// A fault record names no known tracepoint.
    #[error("unknown fault source {0}")]
    UnknownSource(u32),
}

/// Decodes one record. The bytes come from the kernel, but a mismatched build or a bug must not
/// crash the loader, so every length and tag is checked.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    let tag = read_pod::<u32>(bytes)?;
    match RecordKind::from_tag(tag) {
        Some(RecordKind::Fault) => {
            let raw = read_pod::<FaultRecord>(bytes)?;
            let source =
                FaultSource::from_tag(raw.source).ok_or(DecodeError::UnknownSource(raw.source))?;
            Ok(Record::Fault(Fault {
                timestamp_ns: raw.timestamp_ns,
                pid: raw.tgid,
                tid: raw.tid,
                address: raw.address,
                ip: raw.ip,
                error_code: ErrorCode(raw.error_code),
                source,
            }))
        }
        None => Err(DecodeError::UnknownKind(tag)),
    }
}

/// Reads a plain-old-data value from the start of `bytes`, which need not be aligned.
fn read_pod<T: aya::Pod>(bytes: &[u8]) -> Result<T, DecodeError> {
    let need = size_of::<T>();
    if bytes.len() < need {
        return Err(DecodeError::Truncated {
            len: bytes.len(),
            need,
        });
    }
    // SAFETY: the length was checked above, `T: Pod` accepts any bit pattern, and
    // `read_unaligned` has no alignment requirement.
    Ok(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault_bytes(record: &FaultRecord) -> Vec<u8> {
        // SAFETY: `FaultRecord` is repr(C) plain data without padding.
        unsafe {
            std::slice::from_raw_parts(
                std::ptr::from_ref(record).cast::<u8>(),
                size_of::<FaultRecord>(),
            )
        }
        .to_vec()
    }

    fn sample() -> FaultRecord {
        FaultRecord {
            kind: RecordKind::Fault as u32,
            source: FaultSource::User as u32,
            timestamp_ns: 7,
            tgid: 10,
            tid: 11,
            address: 0x7f00_0000_1770,
            ip: 0x5555_0000_0042,
            error_code: 6,
        }
    }

    #[test]
    fn decodes_a_fault_record_field_by_field() {
        let record = decode(&fault_bytes(&sample())).unwrap();
        assert_eq!(
            record,
            Record::Fault(Fault {
                timestamp_ns: 7,
                pid: 10,
                tid: 11,
                address: 0x7f00_0000_1770,
                ip: 0x5555_0000_0042,
                error_code: ErrorCode(6),
                source: FaultSource::User,
            })
        );
    }

    #[test]
    fn decodes_from_an_unaligned_slice() {
        let mut bytes = vec![0u8];
        bytes.extend(fault_bytes(&sample()));
        assert!(matches!(decode(&bytes[1..]), Ok(Record::Fault(_))));
    }

    #[test]
    fn rejects_truncated_records() {
        let bytes = fault_bytes(&sample());
        assert_eq!(
            decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { len: 47, need: 48 })
        );
        assert_eq!(
            decode(&bytes[..2]),
            Err(DecodeError::Truncated { len: 2, need: 4 })
        );
        assert_eq!(decode(&[]), Err(DecodeError::Truncated { len: 0, need: 4 }));
    }

    #[test]
    fn rejects_unknown_kinds_and_sources() {
        let mut record = sample();
        record.kind = 99;
        assert_eq!(
            decode(&fault_bytes(&record)),
            Err(DecodeError::UnknownKind(99))
        );
        let mut record = sample();
        record.source = 5;
        assert_eq!(
            decode(&fault_bytes(&record)),
            Err(DecodeError::UnknownSource(5))
        );
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap deterministic sweep over lengths and byte patterns; each call must return.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = decode(&bytes);
        }
    }
}
