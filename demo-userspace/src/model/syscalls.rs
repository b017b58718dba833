//! Pairs memory-syscall entries with their exits and formats them as strace does.

use std::collections::HashMap;

use demo_common::Syscall;
use serde::Serialize;

use crate::model::events::SyscallEvent;

/// The argument names of each syscall, as its enter tracepoint's format names them.
pub fn arg_names(syscall: Syscall) -> &'static [&'static str] {
    match syscall {
        Syscall::Mmap => &["addr", "len", "prot", "flags", "fd", "off"],
        Syscall::Munmap => &["addr", "len"],
        Syscall::Mremap => &["addr", "old_len", "new_len", "flags", "new_addr"],
        Syscall::Brk => &["brk"],
        Syscall::Madvise => &["start", "len_in", "behavior"],
        Syscall::Mprotect => &["start", "len", "prot"],
        Syscall::Fadvise64 => &["fd", "offset", "len", "advice"],
    }
}

/// One completed syscall: its arguments and return value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallCall {
    pub pid: u32,
    pub tid: u32,
    pub syscall: Syscall,
    pub args: [u64; 6],
    pub ret: i64,
    /// CLOCK_MONOTONIC ns at the entry.
    pub timestamp_ns: u64,
    /// From the entry to the exit.
    pub duration_ns: u64,
}

/// Joins each thread's syscall entry with its exit.
#[derive(Debug, Default)]
pub struct SyscallPairer {
    pending: HashMap<u32, SyscallEvent>,
}

impl SyscallPairer {
    /// Takes one entry or exit; returns the whole call when an exit matches its thread's entry.
    /// An exit without its entry (tracing began mid-call) is dropped.
    pub fn push(&mut self, event: SyscallEvent) -> Option<SyscallCall> {
        if event.args.is_some() {
            self.pending.insert(event.tid, event);
            return None;
        }
        let enter = self.pending.remove(&event.tid)?;
        (enter.syscall == event.syscall).then(|| SyscallCall {
            pid: event.pid,
            tid: event.tid,
            syscall: event.syscall,
            args: enter.args.unwrap_or_default(),
            ret: event.ret.unwrap_or_default(),
            timestamp_ns: enter.timestamp_ns,
            duration_ns: event.timestamp_ns.saturating_sub(enter.timestamp_ns),
        })
    }
}

/// A syscall's argument or result as JSON shows it: addresses as hex strings, the rest as numbers
/// or flag names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Value {
    Number(i64),
    Text(String),
}

impl SyscallCall {
    /// True when the syscall failed (returned a negative errno).
    pub fn failed(&self) -> bool {
        self.ret < 0 && self.ret > -4096
    }

    /// The arguments by name, decoded.
    pub fn named_args(&self) -> Vec<(&'static str, Value)> {
        arg_names(self.syscall)
            .iter()
            .zip(self.args)
            .map(|(&name, raw)| (name, self.decode_arg(name, raw)))
            .collect()
    }

    fn decode_arg(&self, name: &str, raw: u64) -> Value {
        match (self.syscall, name) {
            (_, "addr" | "brk" | "start" | "new_addr") => Value::Text(address(raw)),
            (Syscall::Mmap | Syscall::Mprotect, "prot") => Value::Text(prot(raw)),
            (Syscall::Fadvise64, "advice") => Value::Text(file_advice(raw)),
            (Syscall::Fadvise64, "fd") => Value::Number(raw as i32 as i64),
            (Syscall::Mmap, "flags") => Value::Text(mmap_flags(raw)),
            (Syscall::Mremap, "flags") => Value::Text(mremap_flags(raw)),
            (Syscall::Madvise, "behavior") => Value::Text(advice(raw)),
            (Syscall::Mmap, "fd") => Value::Number(raw as i32 as i64),
            _ => Value::Number(raw as i64),
        }
    }

    /// The return value: an address for mmap, mremap and brk, else a number; errors as `-ENAME`.
    pub fn result(&self) -> Value {
        if self.failed() {
            let errno = nix::errno::Errno::from_raw(-self.ret as i32);
            return Value::Text(format!("-{errno:?}"));
        }
        match self.syscall {
            Syscall::Mmap | Syscall::Mremap | Syscall::Brk => Value::Text(address(self.ret as u64)),
            Syscall::Munmap | Syscall::Madvise | Syscall::Mprotect | Syscall::Fadvise64 => {
                Value::Number(self.ret)
            }
        }
    }

    /// The call as strace would show it, e.g. `mmap(NULL, 20000, RW, PRIVATE|ANON) = 0x7f…`.
    pub fn describe(&self) -> String {
        let anonymous =
            self.syscall == Syscall::Mmap && self.args[3] & libc::MAP_ANONYMOUS as u64 != 0;
        let args: Vec<String> = self
            .named_args()
            .into_iter()
            // An anonymous mapping's fd and offset mean nothing; strace-like output drops them.
            .filter(|(name, _)| !(anonymous && matches!(*name, "fd" | "off")))
            .map(|(_, value)| match value {
                Value::Number(n) => n.to_string(),
                Value::Text(text) => text,
            })
            .collect();
        let result = match self.result() {
            Value::Number(n) => n.to_string(),
            Value::Text(text) => text,
        };
        format!("{}({}) = {result}", self.syscall.name(), args.join(", "))
    }
}

fn address(raw: u64) -> String {
    if raw == 0 {
        "NULL".to_owned()
    } else {
        format!("{raw:#x}")
    }
}

fn prot(raw: u64) -> String {
    let mut text = String::new();
    for (bit, letter) in [
        (libc::PROT_READ, 'R'),
        (libc::PROT_WRITE, 'W'),
        (libc::PROT_EXEC, 'X'),
    ] {
        if raw & bit as u64 != 0 {
            text.push(letter);
        }
    }
    if text.is_empty() {
        "NONE".to_owned()
    } else {
        text
    }
}

/// Names the set bits of `raw` from `table`, and any leftover bits in hex.
fn flag_names(raw: u64, table: &[(i32, &str)]) -> String {
    let mut rest = raw;
    let mut names = Vec::new();
    for &(bit, name) in table {
        let bit = bit as u64;
        if raw & bit != 0 {
            names.push(name.to_owned());
            rest &= !bit;
        }
    }
    if rest != 0 || names.is_empty() {
        names.push(format!("{rest:#x}"));
    }
    names.join("|")
}

fn mmap_flags(raw: u64) -> String {
    flag_names(
        raw,
        &[
            (libc::MAP_SHARED, "SHARED"),
            (libc::MAP_PRIVATE, "PRIVATE"),
            (libc::MAP_FIXED, "FIXED"),
            (libc::MAP_ANONYMOUS, "ANON"),
            (libc::MAP_GROWSDOWN, "GROWSDOWN"),
            (libc::MAP_DENYWRITE, "DENYWRITE"),
            (libc::MAP_EXECUTABLE, "EXECUTABLE"),
            (libc::MAP_NORESERVE, "NORESERVE"),
            (libc::MAP_POPULATE, "POPULATE"),
            (libc::MAP_STACK, "STACK"),
            (libc::MAP_HUGETLB, "HUGETLB"),
            (libc::MAP_FIXED_NOREPLACE, "FIXED_NOREPLACE"),
        ],
    )
}

fn mremap_flags(raw: u64) -> String {
    flag_names(
        raw,
        &[
            (libc::MREMAP_MAYMOVE, "MAYMOVE"),
            (libc::MREMAP_FIXED, "FIXED"),
            (4, "DONTUNMAP"),
        ],
    )
}

fn advice(raw: u64) -> String {
    let name = match raw as i32 {
        libc::MADV_NORMAL => "MADV_NORMAL",
        libc::MADV_RANDOM => "MADV_RANDOM",
        libc::MADV_SEQUENTIAL => "MADV_SEQUENTIAL",
        libc::MADV_WILLNEED => "MADV_WILLNEED",
        libc::MADV_DONTNEED => "MADV_DONTNEED",
        libc::MADV_FREE => "MADV_FREE",
        libc::MADV_REMOVE => "MADV_REMOVE",
        libc::MADV_DONTFORK => "MADV_DONTFORK",
        libc::MADV_DOFORK => "MADV_DOFORK",
        libc::MADV_MERGEABLE => "MADV_MERGEABLE",
        libc::MADV_UNMERGEABLE => "MADV_UNMERGEABLE",
        libc::MADV_HUGEPAGE => "MADV_HUGEPAGE",
        libc::MADV_NOHUGEPAGE => "MADV_NOHUGEPAGE",
        libc::MADV_DONTDUMP => "MADV_DONTDUMP",
        libc::MADV_DODUMP => "MADV_DODUMP",
        libc::MADV_WIPEONFORK => "MADV_WIPEONFORK",
        libc::MADV_KEEPONFORK => "MADV_KEEPONFORK",
        libc::MADV_COLD => "MADV_COLD",
        libc::MADV_PAGEOUT => "MADV_PAGEOUT",
        _ => return raw.to_string(),
    };
    name.to_owned()
}

fn file_advice(raw: u64) -> String {
    let name = match raw as i32 {
        libc::POSIX_FADV_NORMAL => "POSIX_FADV_NORMAL",
        libc::POSIX_FADV_RANDOM => "POSIX_FADV_RANDOM",
        libc::POSIX_FADV_SEQUENTIAL => "POSIX_FADV_SEQUENTIAL",
        libc::POSIX_FADV_WILLNEED => "POSIX_FADV_WILLNEED",
        libc::POSIX_FADV_DONTNEED => "POSIX_FADV_DONTNEED",
        libc::POSIX_FADV_NOREUSE => "POSIX_FADV_NOREUSE",
        _ => return raw.to_string(),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(syscall: Syscall, args: Option<[u64; 6]>, ret: Option<i64>) -> SyscallEvent {
        SyscallEvent {
            timestamp_ns: 1,
            pid: 9,
            tid: 9,
            syscall,
            args,
            ret,
        }
    }

    fn call(syscall: Syscall, args: [u64; 6], ret: i64) -> SyscallCall {
        let mut pairer = SyscallPairer::default();
        assert_eq!(pairer.push(event(syscall, Some(args), None)), None);
        pairer.push(event(syscall, None, Some(ret))).unwrap()
    }

    #[test]
    fn an_anonymous_mmap_reads_like_strace() {
        let mmap = call(
            Syscall::Mmap,
            [0, 20000, 3, 0x22, u64::MAX, 0],
            0x7f00_0000_0000,
        );
        assert_eq!(
            mmap.describe(),
            "mmap(NULL, 20000, RW, PRIVATE|ANON) = 0x7f0000000000"
        );
        assert_eq!(mmap.result(), Value::Text("0x7f0000000000".to_owned()));
    }

    #[test]
    fn brk_munmap_madvise_mprotect_fadvise_and_errors() {
        assert_eq!(
            call(Syscall::Brk, [0, 0, 0, 0, 0, 0], 0x5555_0000).describe(),
            "brk(NULL) = 0x55550000"
        );
        assert_eq!(
            call(Syscall::Munmap, [0x7f00_0000_5000, 4096, 0, 0, 0, 0], 0).describe(),
            "munmap(0x7f0000005000, 4096) = 0"
        );
        assert_eq!(
            call(Syscall::Madvise, [0x1000, 8192, 4, 0, 0, 0], 0).describe(),
            "madvise(0x1000, 8192, MADV_DONTNEED) = 0"
        );
        assert_eq!(
            call(Syscall::Mprotect, [0x1000, 4096, 1, 0, 0, 0], 0).describe(),
            "mprotect(0x1000, 4096, R) = 0"
        );
        assert_eq!(
            call(Syscall::Fadvise64, [3, 0, 65536, 4, 0, 0], 0).describe(),
            "fadvise64(3, 0, 65536, POSIX_FADV_DONTNEED) = 0"
        );
        let failed = call(Syscall::Mmap, [0, 1 << 50, 3, 0x22, u64::MAX, 0], -12);
        assert!(failed.failed());
        assert_eq!(failed.result(), Value::Text("-ENOMEM".to_owned()));
    }

    #[test]
    fn an_exit_without_its_entry_is_dropped() {
        let mut pairer = SyscallPairer::default();
        assert_eq!(pairer.push(event(Syscall::Brk, None, Some(0))), None);
    }

    #[test]
    fn unknown_flag_bits_are_shown_in_hex() {
        assert_eq!(mmap_flags(0x22 | 0x4000_0000), "PRIVATE|ANON|0x40000000");
        assert_eq!(prot(0), "NONE");
    }
}
