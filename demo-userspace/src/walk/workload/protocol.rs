//! The line protocol between the loader and its workload child: one command per line on the
//! child's stdin, one reply per line on its stdout.

use std::{fmt, path::PathBuf, str::FromStr};

/// An `madvise(2)` advice a lesson gives its array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Advice {
    /// `MADV_DONTNEED`: drop the pages; the next access faults again.
    DontNeed,
    /// `MADV_HUGEPAGE`: back the range with transparent huge pages where it can.
    HugePage,
    /// `MADV_NOHUGEPAGE`: never back the range with transparent huge pages.
    NoHugePage,
}

impl Advice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DontNeed => "dontneed",
            Self::HugePage => "hugepage",
            Self::NoHugePage => "nohugepage",
        }
    }

    /// The constant as the C program would name it.
    pub fn constant(self) -> &'static str {
        match self {
            Self::DontNeed => "MADV_DONTNEED",
            Self::HugePage => "MADV_HUGEPAGE",
            Self::NoHugePage => "MADV_NOHUGEPAGE",
        }
    }
}

/// One step the child performs on its array.
#[derive(Clone, Debug, PartialEq, Eq)]
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
    /// Writes `value` into the first int of each of `count` pages from page `first`.
    WritePages { first: u64, count: u64, value: i32 },
    /// Reads the first int of each of `count` pages from page `first`; replies the values.
    ReadPages { first: u64, count: u64 },
    /// An anonymous private mapping of `bytes` whose start is a multiple of `align`.
    MmapAligned { bytes: u64, align: u64 },
    /// `madvise(arr, bytes, advice)` on the whole array.
    Madvise { bytes: u64, advice: Advice },
    /// `mprotect(arr, bytes, PROT_READ)`, or `PROT_READ|PROT_WRITE` when `writable`.
    Mprotect { bytes: u64, writable: bool },
    /// Creates `path` with `pages` pages (each page's first int is its number), writes it back
    /// to disk with `fsync`, and drops it from the page cache with
    /// `posix_fadvise(POSIX_FADV_DONTNEED)`. The child keeps it open for `MapFile`.
    CreateFile { path: PathBuf, pages: u64 },
    /// Maps `bytes` of the file `CreateFile` made, read and write, `MAP_SHARED` when `shared`,
    /// else `MAP_PRIVATE`; the mapping becomes the array. Replies the address.
    MapFile { bytes: u64, shared: bool },
    /// `fork()`: the child process serves the `InChild` commands from then on; replies its pid.
    Fork,
    /// A command for the process `Fork` made, relayed by this one; replies its reply.
    InChild(Box<Command>),
    /// Replies the stack pointer, for the stack lesson.
    StackPointer,
    /// Recurses `frames` calls deep, each with a frame of about `FRAME_BYTES`, writing the
    /// lowest byte of each; replies the lowest stack address written and the frame size.
    Recurse { frames: u32 },
    /// `setrlimit(RLIMIT_STACK)` to `bytes`, soft limit only.
    LimitStack { bytes: u64 },
}

/// The bytes of local data each frame of `Command::Recurse` holds: one page, so each level
/// takes one new page of stack.
pub const FRAME_BYTES: usize = 4096;

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
            Self::WritePages {
                first,
                count,
                value,
            } => write!(f, "write-pages {first} {count} {value}"),
            Self::ReadPages { first, count } => write!(f, "read-pages {first} {count}"),
            Self::MmapAligned { bytes, align } => write!(f, "mmap-aligned {bytes} {align}"),
            Self::Madvise { bytes, advice } => write!(f, "madvise {bytes} {}", advice.as_str()),
            Self::Mprotect { bytes, writable } => {
                let prot = if *writable { "read-write" } else { "read" };
                write!(f, "mprotect {bytes} {prot}")
            }
            Self::CreateFile { path, pages } => {
                write!(f, "create-file {pages} {}", path.display())
            }
            Self::MapFile { bytes, shared } => {
                let kind = if *shared { "shared" } else { "private" };
                write!(f, "map-file {bytes} {kind}")
            }
            Self::Fork => write!(f, "fork"),
            Self::InChild(command) => write!(f, "child {command}"),
            Self::StackPointer => write!(f, "stack-pointer"),
            Self::Recurse { frames } => write!(f, "recurse {frames}"),
            Self::LimitStack { bytes } => write!(f, "limit-stack {bytes}"),
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
        let unsigned = |i: usize| u64::try_from(number(i)?).map_err(|_| bad());
        let bytes = || unsigned(1);
        if let Some(rest) = line.strip_prefix("child ") {
            return Ok(Self::InChild(Box::new(rest.parse().map_err(|_| bad())?)));
        }
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
            Some("write-pages") if words.len() == 4 => Ok(Self::WritePages {
                first: unsigned(1)?,
                count: unsigned(2)?,
                value: i32::try_from(number(3)?).map_err(|_| bad())?,
            }),
            Some("read-pages") if words.len() == 3 => Ok(Self::ReadPages {
                first: unsigned(1)?,
                count: unsigned(2)?,
            }),
            Some("mmap-aligned") if words.len() == 3 => Ok(Self::MmapAligned {
                bytes: bytes()?,
                align: unsigned(2)?,
            }),
            Some("madvise") if words.len() == 3 => Ok(Self::Madvise {
                bytes: bytes()?,
                advice: match words[2] {
                    "dontneed" => Advice::DontNeed,
                    "hugepage" => Advice::HugePage,
                    "nohugepage" => Advice::NoHugePage,
                    _ => return Err(bad()),
                },
            }),
            Some("mprotect") if words.len() == 3 => Ok(Self::Mprotect {
                bytes: bytes()?,
                writable: match words[2] {
                    "read" => false,
                    "read-write" => true,
                    _ => return Err(bad()),
                },
            }),
            // The path is the rest of the line, so it may hold spaces.
            Some("create-file") if words.len() >= 3 => Ok(Self::CreateFile {
                pages: bytes()?,
                path: line
                    .splitn(3, ' ')
                    .nth(2)
                    .map(PathBuf::from)
                    .ok_or_else(bad)?,
            }),
            Some("map-file") if words.len() == 3 => Ok(Self::MapFile {
                bytes: bytes()?,
                shared: match words[2] {
                    "shared" => true,
                    "private" => false,
                    _ => return Err(bad()),
                },
            }),
            Some("fork") if words.len() == 1 => Ok(Self::Fork),
            Some("stack-pointer") if words.len() == 1 => Ok(Self::StackPointer),
            Some("recurse") if words.len() == 2 => Ok(Self::Recurse {
                frames: u32::try_from(number(1)?).map_err(|_| bad())?,
            }),
            Some("limit-stack") if words.len() == 2 => Ok(Self::LimitStack { bytes: bytes()? }),
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
            Command::WritePages {
                first: 0,
                count: 8,
                value: 2,
            },
            Command::ReadPages { first: 4, count: 4 },
            Command::MmapAligned {
                bytes: 2 << 20,
                align: 2 << 20,
            },
            Command::Madvise {
                bytes: 4096,
                advice: Advice::HugePage,
            },
            Command::Madvise {
                bytes: 4096,
                advice: Advice::NoHugePage,
            },
            Command::Mprotect {
                bytes: 4096,
                writable: false,
            },
            Command::CreateFile {
                path: "/var/tmp/a file".into(),
                pages: 16,
            },
            Command::MapFile {
                bytes: 65536,
                shared: true,
            },
            Command::Fork,
            Command::InChild(Box::new(Command::ReadPages { first: 0, count: 8 })),
            Command::StackPointer,
            Command::Recurse { frames: 64 },
            Command::LimitStack { bytes: 1 << 20 },
        ] {
            assert_eq!(command.to_string().parse::<Command>(), Ok(command.clone()));
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
            "madvise 4096 sometimes",
            "child jump",
            "fork now",
        ] {
            assert_eq!(line.parse::<Command>(), Err(BadCommand(line.to_owned())));
        }
    }
}
