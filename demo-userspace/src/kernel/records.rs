//! Decodes the raw bytes of ring-buffer records into typed values, rejecting anything malformed.

use std::sync::Arc;

use demo_common::{
    CapturedPath, CompletedClass, ExecImageRecord, FaultEndRecord, FaultRecord, FaultSource,
    FaultStackRecord, FaultUserStackRecord, FileIdentity, HeapFunction, HeapRecord, JoinRecord,
    MappedFileRecord, OFF_CPU_UNKNOWN, PATH_BYTES, RecordHeader, RecordKind, SignalRecord, Syscall,
    SyscallRecord,
};

use crate::model::{
    access::ErrorCode,
    events::{
        CapturedFile, Decoded, DeviceNumber, ExecImage, Fault, FaultEnd, FaultTiming, HeapEvent,
        ImageLayout, JoinEvent, MappedFile, ProcessEvent, RawStack, Record, SignalEvent, StackCopy,
        SyscallEvent, ThreadSnapshot,
    },
};

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
    /// A syscall record names no traced syscall.
    #[error("unknown syscall {0}")]
    UnknownSyscall(u32),
    /// A heap record names no traced function.
    #[error("unknown heap function {0}")]
    UnknownHeapFunction(u32),
    /// A fault's end names no known class.
    #[error("unknown fault class {0}")]
    UnknownClass(u32),
}

/// Decodes one record. The bytes come from the kernel, but a mismatched build or a bug must not
/// crash the loader, so every length and tag is checked.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let header = read_pod::<RecordHeader>(bytes)?;
    Ok(Decoded {
        snapshot: ThreadSnapshot {
            tid: header.tid,
            counters: header.counters,
        },
        record: decode_body(bytes, &header)?,
        stack: match RecordKind::from_tag(header.kind) {
            Some(RecordKind::FaultStack) => Some(RawStack::Frames(stack_frames(bytes))),
            Some(RecordKind::FaultUserStack) => Some(RawStack::Copied(stack_copy(bytes)?)),
            _ => None,
        },
    })
}

/// The frames after a [`FaultRecord`]: as many whole `u64`s as the record holds, up to
/// [`demo_common::MAX_STACK_DEPTH`], and up to the first 0. A walk by frame pointers that
/// reaches code built without them follows whatever the frame register held; a 0 there ends
/// the chain, and nothing after it is a caller.
fn stack_frames(bytes: &[u8]) -> Vec<u64> {
    let frames = bytes.get(size_of::<FaultRecord>()..).unwrap_or_default();
    let most = size_of::<FaultStackRecord>() - size_of::<FaultRecord>();
    frames[..frames.len().min(most)]
        .chunks_exact(8)
        .map(|frame| u64::from_ne_bytes(frame.try_into().unwrap_or_default()))
        .take_while(|&frame| frame != 0)
        .collect()
}

/// The registers and the stack bytes after a [`FaultUserStackRecord`]: `copied` of them, as
/// far as the record holds, of which the first `skipped` (at most all) could not be read.
fn stack_copy(bytes: &[u8]) -> Result<StackCopy, DecodeError> {
    let raw = read_pod::<FaultUserStackRecord>(bytes)?;
    let stack = bytes
        .get(size_of::<FaultUserStackRecord>()..)
        .unwrap_or_default();
    let copied = (raw.copied.min(raw.requested) as usize).min(stack.len());
    Ok(StackCopy {
        regs: raw.regs,
        bytes: stack[..copied].to_vec(),
        requested: raw.requested,
        skipped: raw.skipped.min(copied as u32),
        at_top: raw.flags & demo_common::STACK_COPY_AT_TOP != 0,
    })
}

fn decode_body(bytes: &[u8], header: &RecordHeader) -> Result<Record, DecodeError> {
    let (timestamp_ns, pid, tid, detail) =
        (header.timestamp_ns, header.tgid, header.tid, header.detail);
    match RecordKind::from_tag(header.kind) {
        // A fault with its stack starts as a plain fault does.
        Some(RecordKind::Fault | RecordKind::FaultStack | RecordKind::FaultUserStack) => {
            let raw = read_pod::<FaultRecord>(bytes)?;
            Ok(Record::Fault(Fault {
                timestamp_ns,
                pid,
                tid,
                address: raw.address,
                ip: raw.ip,
                error_code: ErrorCode(raw.error_code),
                source: FaultSource::from_tag(detail).ok_or(DecodeError::UnknownSource(detail))?,
            }))
        }
        Some(RecordKind::ThreadExit) => Ok(Record::ThreadExit { pid }),
        Some(kind @ (RecordKind::SyscallEnter | RecordKind::SyscallExit)) => {
            let raw = read_pod::<SyscallRecord>(bytes)?;
            let enter = kind == RecordKind::SyscallEnter;
            Ok(Record::Syscall(SyscallEvent {
                timestamp_ns,
                pid,
                tid,
                syscall: Syscall::from_tag(detail).ok_or(DecodeError::UnknownSyscall(detail))?,
                args: enter.then_some(raw.args),
                ret: (!enter).then_some(raw.ret),
            }))
        }
        Some(RecordKind::Signal) => {
            let raw = read_pod::<SignalRecord>(bytes)?;
            Ok(Record::Signal(SignalEvent {
                timestamp_ns,
                pid,
                tid,
                target_tid: raw.target_tid,
                signal: detail as i32,
                code: raw.code,
                errno: raw.errno,
                result: raw.result,
            }))
        }
        Some(kind @ (RecordKind::Fork | RecordKind::Exit)) => Ok(Record::Process(ProcessEvent {
            timestamp_ns,
            pid: detail,
            parent: pid,
            tid,
            exited: kind == RecordKind::Exit,
        })),
        Some(RecordKind::Exec) => Ok(Record::Exec(detail)),
        Some(kind @ (RecordKind::HeapEnter | RecordKind::HeapExit)) => {
            let raw = read_pod::<HeapRecord>(bytes)?;
            let enter = kind == RecordKind::HeapEnter;
            Ok(Record::Heap(HeapEvent {
                timestamp_ns,
                pid,
                tid,
                function: HeapFunction::from_tag(detail)
                    .ok_or(DecodeError::UnknownHeapFunction(detail))?,
                args: enter.then_some(raw.args),
                ret: (!enter).then_some(raw.ret),
            }))
        }
        Some(RecordKind::MappedFile) => {
            let raw = read_pod::<MappedFileRecord>(bytes)?;
            Ok(Record::MappedFile(MappedFile {
                pid,
                start: raw.start,
                len: raw.len,
                prot: raw.prot,
                flags: raw.flags,
                offset: raw.offset,
                file: captured_file(raw.file, &raw.path),
            }))
        }
        Some(RecordKind::ExecImage) => {
            let raw = read_pod::<ExecImageRecord>(bytes)?;
            let command = raw.comm.split(|&b| b == 0).next().unwrap_or_default();
            Ok(Record::ExecImage(ExecImage {
                pid,
                exe: captured_file(raw.exe, &raw.path),
                layout: ImageLayout::from(raw.layout),
                interpreter_base: auxv_entry(&raw.auxv, AT_BASE),
                program_headers: auxv_entry(&raw.auxv, AT_PHDR),
                entry: auxv_entry(&raw.auxv, AT_ENTRY),
                vdso: auxv_entry(&raw.auxv, AT_SYSINFO_EHDR),
                stack: (raw.stack.start < raw.stack.end)
                    .then_some((raw.stack.start, raw.stack.end)),
                command: String::from_utf8_lossy(command).into_owned(),
            }))
        }
        Some(RecordKind::FaultEnd) => {
            let raw = read_pod::<FaultEndRecord>(bytes)?;
            let class =
                CompletedClass::from_tag(detail).ok_or(DecodeError::UnknownClass(detail))?;
            // The class is the record's detail; the duration is from its start to now.
            Ok(Record::FaultEnd(FaultEnd {
                timestamp_ns,
                pid,
                tid,
                start_ns: raw.start_ns,
                address: raw.address,
                class,
                timing: FaultTiming {
                    duration_ns: timestamp_ns.saturating_sub(raw.start_ns),
                    off_cpu_ns: (raw.off_cpu_ns != OFF_CPU_UNKNOWN).then_some(raw.off_cpu_ns),
                    reclaim_ns: raw.reclaim_ns,
                    compaction_ns: raw.compaction_ns,
                },
            }))
        }
        Some(RecordKind::Join) => {
            let raw = read_pod::<JoinRecord>(bytes)?;
            Ok(Record::Joined(JoinEvent {
                pid,
                counters: header.counters,
                gone: raw.gone_threads,
                threads: raw.threads,
            }))
        }
        None => Err(DecodeError::UnknownKind(header.kind)),
    }
}

/// The auxiliary vector's types that place an image (elf.h).
const AT_PHDR: u64 = 3;
const AT_BASE: u64 = 7;
const AT_ENTRY: u64 = 9;
const AT_SYSINFO_EHDR: u64 = 33;

/// The value of entry `kind` of an auxiliary vector, 0 when it has none before AT_NULL.
fn auxv_entry(auxv: &[u64], kind: u64) -> u64 {
    auxv.chunks_exact(2)
        .take_while(|pair| pair[0] != 0)
        .find(|pair| pair[0] == kind)
        .map_or(0, |pair| pair[1])
}

/// A file's identity and its path, made whole from the components the kernel wrote leaf
/// first; no path when the walk did not reach the root.
fn captured_file(identity: FileIdentity, path: &CapturedPath) -> CapturedFile {
    let used = &path.bytes[..(path.len as usize).min(PATH_BYTES)];
    let path = (path.complete != 0).then(|| {
        let mut components: Vec<&[u8]> = used
            .split(|&b| b == 0)
            .filter(|component| !component.is_empty())
            .collect();
        components.reverse();
        let mut whole = String::new();
        for component in components {
            whole.push('/');
            whole.push_str(&String::from_utf8_lossy(component));
        }
        if whole.is_empty() {
            whole.push('/');
        }
        Arc::<str>::from(whole)
    });
    CapturedFile {
        device: DeviceNumber {
            major: identity.device >> 20,
            minor: identity.device & 0xf_ffff,
        },
        inode: identity.inode,
        path,
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
    use demo_common::{FaultCounters, ProcessRecord};

    use super::*;

    fn header(kind: RecordKind, detail: u32, tgid: u32, tid: u32) -> RecordHeader {
        RecordHeader {
            kind: kind as u32,
            detail,
            timestamp_ns: 7,
            tgid,
            tid,
            counters: FaultCounters { minor: 5, major: 6 },
        }
    }

    fn bytes_of<T: aya::Pod>(record: &T) -> Vec<u8> {
        // SAFETY: every record type is repr(C) plain data without padding.
        unsafe {
            std::slice::from_raw_parts(std::ptr::from_ref(record).cast::<u8>(), size_of::<T>())
        }
        .to_vec()
    }

    fn record_of(bytes: &[u8]) -> Result<Record, DecodeError> {
        decode(bytes).map(|decoded| decoded.record)
    }

    fn fault_bytes(record: &FaultRecord) -> Vec<u8> {
        bytes_of(record)
    }

    #[test]
    fn a_fault_with_a_stack_has_the_frames_its_length_holds_up_to_a_zero() {
        let fault = FaultRecord {
            header: header(RecordKind::FaultStack, FaultSource::User as u32, 2, 3),
            address: 0x1000,
            ip: 0x5000,
            error_code: 6,
        };
        let mut bytes = fault_bytes(&fault);
        for frame in [0x5000_u64, 0x6000, 0, 0x7000] {
            bytes.extend_from_slice(&frame.to_ne_bytes());
        }
        let decoded = decode(&bytes).unwrap();
        assert!(matches!(decoded.record, Record::Fault(f) if f.ip == 0x5000));
        assert_eq!(decoded.stack, Some(RawStack::Frames(vec![0x5000, 0x6000])));
        // A trailing partial frame is no frame; no frames at all is an empty stack.
        assert_eq!(
            decode(&bytes[..bytes.len() - 20]).unwrap().stack,
            Some(RawStack::Frames(vec![0x5000]))
        );
        let plain = FaultRecord {
            header: header(RecordKind::Fault, FaultSource::User as u32, 2, 3),
            ..fault
        };
        assert_eq!(decode(&fault_bytes(&plain)).unwrap().stack, None);
        assert_eq!(
            decode(&bytes[..size_of::<FaultRecord>()]).unwrap().stack,
            Some(RawStack::Frames(vec![]))
        );
    }

    /// A copied stack is the registers and `copied` bytes of the record's length, never more
    /// than it holds, the first `skipped` of them unreadable; a record shorter than its header
    /// is malformed.
    #[test]
    fn a_fault_with_a_copied_stack_has_its_registers_and_the_bytes_read() {
        let record = FaultUserStackRecord {
            fault: FaultRecord {
                header: header(RecordKind::FaultUserStack, FaultSource::User as u32, 2, 3),
                address: 0x1000,
                ip: 0x5000,
                error_code: 6,
            },
            regs: demo_common::UserRegs {
                ip: 0x5000,
                sp: 0x7ff0_0000,
                bp: 0,
            },
            requested: 64,
            skipped: 16,
            copied: 24,
            flags: 0,
        };
        let mut bytes = bytes_of(&record);
        bytes.extend((0..64).map(|byte| byte as u8));
        let decoded = decode(&bytes).unwrap();
        assert!(matches!(decoded.record, Record::Fault(f) if f.address == 0x1000));
        let Some(RawStack::Copied(copy)) = decoded.stack else {
            panic!("{:?}", decoded.stack);
        };
        assert_eq!((copy.regs.sp, copy.requested), (0x7ff0_0000, 64));
        assert_eq!(copy.bytes, (0..24).collect::<Vec<u8>>());
        assert_eq!(copy.skipped, 16);
        assert!(copy.short());
        // The skipped bytes keep their place but are no memory; the word after them is.
        assert_eq!(copy.word_at(0x7ff0_0008), None);
        assert_eq!(copy.word_at(0x7ff0_000c), None);
        let word = u64::from_le_bytes([16, 17, 18, 19, 20, 21, 22, 23]);
        assert_eq!(copy.word_at(0x7ff0_0010), Some(word));
        assert_eq!(copy.word_at(0x7ff0_0011), None);
        // A record cut inside the skipped bytes holds no memory at all.
        let cut = size_of::<FaultUserStackRecord>() + 10;
        let Some(RawStack::Copied(copy)) = decode(&bytes[..cut]).unwrap().stack else {
            panic!("a copied stack");
        };
        assert_eq!((copy.bytes.len(), copy.skipped), (10, 10));
        assert!(matches!(
            decode(&bytes[..size_of::<FaultRecord>()]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn decodes_thread_exit_syscall_and_signal_records() {
        let exit = ProcessRecord {
            header: header(RecordKind::ThreadExit, 1, 2, 3),
        };
        assert_eq!(
            decode(&bytes_of(&exit)),
            Ok(Decoded {
                snapshot: ThreadSnapshot {
                    tid: 3,
                    counters: FaultCounters { minor: 5, major: 6 },
                },
                record: Record::ThreadExit { pid: 2 },
                stack: None,
            })
        );
        let enter = SyscallRecord {
            header: header(RecordKind::SyscallEnter, Syscall::Brk as u32, 2, 3),
            args: [0x5000, 0, 0, 0, 0, 0],
            ret: 0,
        };
        let Ok(Record::Syscall(event)) = record_of(&bytes_of(&enter)) else {
            panic!("not a syscall record");
        };
        assert_eq!(
            (event.syscall, event.args.map(|a| a[0]), event.ret),
            (Syscall::Brk, Some(0x5000), None)
        );
        let exit = SyscallRecord {
            header: header(RecordKind::SyscallExit, Syscall::Brk as u32, 2, 3),
            ret: -12,
            ..enter
        };
        let Ok(Record::Syscall(event)) = record_of(&bytes_of(&exit)) else {
            panic!("not a syscall record");
        };
        assert_eq!((event.args, event.ret), (None, Some(-12)));
        let signal = SignalRecord {
            header: header(RecordKind::Signal, 11, 7, 7),
            target_tid: 7,
            code: 1,
            errno: 0,
            result: 0,
        };
        assert!(matches!(
            record_of(&bytes_of(&signal)),
            Ok(Record::Signal(SignalEvent {
                signal: 11,
                code: 1,
                ..
            }))
        ));
        let bad_syscall = SyscallRecord {
            header: header(RecordKind::SyscallEnter, 42, 2, 3),
            ..enter
        };
        assert_eq!(
            record_of(&bytes_of(&bad_syscall)),
            Err(DecodeError::UnknownSyscall(42))
        );
        let fork = ProcessRecord {
            header: header(RecordKind::Fork, 42, 41, 41),
        };
        assert!(matches!(
            record_of(&bytes_of(&fork)),
            Ok(Record::Process(ProcessEvent {
                pid: 42,
                parent: 41,
                exited: false,
                ..
            }))
        ));
        let free = HeapRecord {
            header: header(RecordKind::HeapEnter, HeapFunction::Free as u32, 2, 2),
            args: [0x1000, 0],
            ret: 0,
        };
        assert!(matches!(
            record_of(&bytes_of(&free)),
            Ok(Record::Heap(HeapEvent {
                function: HeapFunction::Free,
                args: Some([0x1000, 0]),
                ret: None,
                ..
            }))
        ));
        let bad_heap = HeapRecord {
            header: header(RecordKind::HeapEnter, 7, 2, 2),
            ..free
        };
        assert_eq!(
            record_of(&bytes_of(&bad_heap)),
            Err(DecodeError::UnknownHeapFunction(7))
        );
        let short = bytes_of(&signal);
        assert!(matches!(
            record_of(&short[..55]),
            Err(DecodeError::Truncated { len: 55, need: 56 })
        ));
    }

    /// A join carries the process, the joining thread's counters from its header, the gone
    /// threads' counters and the live threads; what came before is known for one thread only.
    #[test]
    fn decodes_a_join_record_and_what_came_before_it() {
        let record = JoinRecord {
            header: header(RecordKind::Join, 41, 41, 43),
            gone_threads: FaultCounters {
                minor: 100,
                major: 2,
            },
            threads: 1,
            _padding: 0,
        };
        let decoded = decode(&bytes_of(&record)).unwrap();
        assert_eq!(
            decoded.snapshot,
            ThreadSnapshot {
                tid: 43,
                counters: FaultCounters { minor: 5, major: 6 },
            }
        );
        let Record::Joined(join) = decoded.record else {
            panic!("not a join: {:?}", decoded.record);
        };
        assert_eq!(
            join,
            JoinEvent {
                pid: 41,
                counters: FaultCounters { minor: 5, major: 6 },
                gone: FaultCounters {
                    minor: 100,
                    major: 2
                },
                threads: 1,
            }
        );
        assert_eq!(
            join.before(),
            Some(FaultCounters {
                minor: 105,
                major: 8
            })
        );
        let threaded = JoinRecord {
            threads: 3,
            ..record
        };
        let Ok(Record::Joined(join)) = record_of(&bytes_of(&threaded)) else {
            panic!("not a join");
        };
        assert_eq!((join.threads, join.before()), (3, None));
        let bytes = bytes_of(&record);
        assert_eq!(
            record_of(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { len: 63, need: 64 })
        );
    }

    fn sample() -> FaultRecord {
        FaultRecord {
            header: header(RecordKind::Fault, FaultSource::User as u32, 10, 11),
            address: 0x7f00_0000_1770,
            ip: 0x5555_0000_0042,
            error_code: 6,
        }
    }

    #[test]
    fn decodes_a_fault_record_field_by_field() {
        let record = record_of(&fault_bytes(&sample())).unwrap();
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
        assert!(matches!(record_of(&bytes[1..]), Ok(Record::Fault(_))));
    }

    #[test]
    fn rejects_truncated_records() {
        let bytes = fault_bytes(&sample());
        assert_eq!(
            record_of(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated { len: 63, need: 64 })
        );
        assert_eq!(
            record_of(&bytes[..2]),
            Err(DecodeError::Truncated { len: 2, need: 40 })
        );
        assert_eq!(
            record_of(&[]),
            Err(DecodeError::Truncated { len: 0, need: 40 })
        );
    }

    #[test]
    fn rejects_unknown_kinds_and_sources() {
        let mut record = sample();
        record.header.kind = 99;
        assert_eq!(
            record_of(&fault_bytes(&record)),
            Err(DecodeError::UnknownKind(99))
        );
        let mut record = sample();
        record.header.detail = 5;
        assert_eq!(
            record_of(&fault_bytes(&record)),
            Err(DecodeError::UnknownSource(5))
        );
    }

    proptest::proptest! {
        /// Whatever bytes arrive, decoding returns; it never panics or reads out of bounds.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..128)) {
            let _ = record_of(&bytes);
        }

        /// Every known tag followed by arbitrary bytes: each kind's decoder sees garbage.
        #[test]
        fn known_tags_with_garbage_never_panic(
            tag in 0u32..18,
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..128),
        ) {
            let mut bytes = tag.to_ne_bytes().to_vec();
            bytes.extend(rest);
            let _ = record_of(&bytes);
        }

        /// A well-formed fault record decodes to exactly its fields, from any alignment.
        #[test]
        fn fault_records_round_trip(
            address in proptest::num::u64::ANY,
            ip in proptest::num::u64::ANY,
            error_code in proptest::num::u64::ANY,
            shift in 0usize..8,
        ) {
            let record = FaultRecord { address, ip, error_code, ..sample() };
            let mut bytes = vec![0u8; shift];
            bytes.extend(fault_bytes(&record));
            let Ok(Record::Fault(fault)) = record_of(&bytes[shift..]) else {
                panic!("did not decode");
            };
            proptest::prop_assert_eq!((fault.address, fault.ip, fault.error_code.0), (address, ip, error_code));
        }
    }
}
