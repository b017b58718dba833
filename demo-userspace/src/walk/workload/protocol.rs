//! The line protocol between the loader and its workload child: one command per line on the
//! child's stdin, one reply per line on its stdout.

use std::{fmt, str::FromStr};

/// One step the child performs on its array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `mmap(NULL, bytes, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)`; replies the address.
    Mmap { bytes: u64 },
    /// Like `Mmap` with one page more, whose last page is then unmapped, so nothing, not even a
    /// merged neighbour, is mapped right after the array.
    MmapGuarded { bytes: u64 },
    /// glibc `malloc(bytes)`; replies the address.
    Malloc { bytes: u64 },
    /// `read(2)` four bytes of /dev/zero into `arr[index]`: the kernel writes the array.
    SyscallWrite { index: i64 },
    /// `write(2)` `arr[index]` into a pipe: the kernel reads the array.
    SyscallRead { index: i64 },
    /// `arr[index] = value` on the int array.
    Write { index: i64, value: i32 },
    /// Reads `arr[index]`; replies the value.
    Read { index: i64 },
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mmap { bytes } => write!(f, "mmap {bytes}"),
            Self::MmapGuarded { bytes } => write!(f, "mmap-guarded {bytes}"),
            Self::Malloc { bytes } => write!(f, "malloc {bytes}"),
            Self::SyscallWrite { index } => write!(f, "syscall-write {index}"),
            Self::SyscallRead { index } => write!(f, "syscall-read {index}"),
            Self::Write { index, value } => write!(f, "write {index} {value}"),
            Self::Read { index } => write!(f, "read {index}"),
        }
    }
}

/// A line that is not a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad workload command `{0}`")]
pub struct BadCommand(pub String);

impl FromStr for Command {
    type Err = BadCommand;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let bad = || BadCommand(line.to_owned());
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |i: usize| -> Result<i64, BadCommand> {
            words.get(i).ok_or_else(bad)?.parse().map_err(|_| bad())
        };
        let bytes = || u64::try_from(number(1)?).map_err(|_| bad());
        match words.first().copied() {
            Some("mmap") if words.len() == 2 => Ok(Self::Mmap { bytes: bytes()? }),
            Some("mmap-guarded") if words.len() == 2 => Ok(Self::MmapGuarded { bytes: bytes()? }),
            Some("malloc") if words.len() == 2 => Ok(Self::Malloc { bytes: bytes()? }),
            Some("syscall-write") if words.len() == 2 => {
                Ok(Self::SyscallWrite { index: number(1)? })
            }
            Some("syscall-read") if words.len() == 2 => Ok(Self::SyscallRead { index: number(1)? }),
            Some("write") if words.len() == 3 => Ok(Self::Write {
                index: number(1)?,
                value: i32::try_from(number(2)?).map_err(|_| bad())?,
            }),
            Some("read") if words.len() == 2 => Ok(Self::Read { index: number(1)? }),
            _ => Err(bad()),
        }
    }
}

/// A reply that does not say what its command promised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the workload reported a bad address: `{0}`")]
pub struct BadReply(pub String);

/// The address in an allocation's reply (`ok 0x7f…`, the text after `ok`).
pub fn reply_address(detail: &str) -> Result<u64, BadReply> {
    detail
        .strip_prefix("0x")
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| BadReply(detail.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allocation_reply_gives_its_address() {
        assert_eq!(reply_address("0x7f0000000000"), Ok(0x7f00_0000_0000));
        assert_eq!(
            reply_address("7f00"),
            Err(BadReply("7f00".to_owned())),
            "the child writes addresses with 0x"
        );
        assert!(reply_address("0xzz").is_err());
    }

    #[test]
    fn commands_round_trip_through_their_lines() {
        for command in [
            Command::Mmap { bytes: 20000 },
            Command::MmapGuarded { bytes: 20000 },
            Command::Malloc { bytes: 20000 },
            Command::SyscallWrite { index: 3 },
            Command::SyscallRead { index: 5 },
            Command::Write {
                index: 1500,
                value: 2,
            },
            Command::Read { index: -4 },
        ] {
            assert_eq!(command.to_string().parse::<Command>(), Ok(command));
        }
    }

    #[test]
    fn malformed_lines_are_rejected() {
        for line in [
            "",
            "mmap",
            "mmap x",
            "write 1",
            "write 1 99999999999",
            "jump 3",
        ] {
            assert_eq!(line.parse::<Command>(), Err(BadCommand(line.to_owned())));
        }
    }
}
