//! The PROCMAP_QUERY ioctl (Linux 6.11): one VMA of a process, found in the kernel's tree of
//! VMAs instead of a print of them all, and the live [`MappingSource`] that asks it.

use std::sync::atomic::{AtomicBool, Ordering};

use procfs::process::MMapPath;

use super::{
    mappings::{Mapping, MappingSource, MappingTable, Query, perms},
    procmem::mapping_name,
};

/// False once the kernel said it has no PROCMAP_QUERY (before Linux 6.11).
static QUERY_WORKS: AtomicBool = AtomicBool::new(true);

/// `_IOWR('f', 17, struct procmap_query)`, from the kernel's uapi/linux/fs.h.
const PROCMAP_QUERY: libc::c_ulong = 0xC068_6611;

/// `struct procmap_query` of uapi/linux/fs.h (Linux 6.11).
#[repr(C)]
#[derive(Default)]
struct ProcmapQuery {
    size: u64,
    query_flags: u64,
    query_addr: u64,
    vma_start: u64,
    vma_end: u64,
    vma_flags: u64,
    vma_page_size: u64,
    vma_offset: u64,
    inode: u64,
    dev_major: u32,
    dev_minor: u32,
    vma_name_size: u32,
    build_id_size: u32,
    vma_name_addr: u64,
    build_id_addr: u64,
}

/// A process's /proc/PID/maps, held open and asked for one VMA at a time with the
/// PROCMAP_QUERY ioctl, which finds it in the kernel's tree of VMAs instead of printing them
/// all. The file stays on the address space it was opened on: an exec needs a new one.
#[derive(Debug)]
pub struct MapsFile {
    file: std::fs::File,
    /// Where the kernel writes the VMA's name.
    name: Vec<u8>,
}

impl MapsFile {
    pub fn open(pid: i32) -> std::io::Result<Self> {
        Ok(Self {
            file: std::fs::File::open(format!("/proc/{pid}/maps"))?,
            name: vec![0; libc::PATH_MAX as usize],
        })
    }

    /// The VMA that holds `address` now.
    pub fn query(&mut self, address: u64) -> Query {
        let mut query = ProcmapQuery {
            size: std::mem::size_of::<ProcmapQuery>() as u64,
            query_addr: address,
            vma_name_size: self.name.len() as u32,
            vma_name_addr: self.name.as_mut_ptr() as u64,
            ..ProcmapQuery::default()
        };
        // SAFETY: the argument is a `struct procmap_query` whose size field says how much of it
        // the kernel may touch, and its name pointer and size describe `self.name`, which lives
        // through the call; the kernel writes nothing else.
        let done = unsafe {
            libc::ioctl(
                std::os::fd::AsRawFd::as_raw_fd(&self.file),
                PROCMAP_QUERY,
                &mut query,
            )
        };
        if done != 0 {
            return match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ENOENT) => Query::Unmapped,
                Some(libc::ESRCH) => Query::Gone,
                Some(libc::ENOTTY) => {
                    QUERY_WORKS.store(false, Ordering::Relaxed);
                    Query::Failed
                }
                _ => Query::Failed,
            };
        }
        // The size counts the terminating NUL; an anonymous VMA has no name at all.
        let length = (query.vma_name_size as usize).saturating_sub(1);
        let name = String::from_utf8_lossy(&self.name[..length.min(self.name.len())]);
        let Ok(path) = MMapPath::from(&name) else {
            return Query::Failed;
        };
        // The query's flags are PROT_READ, PROT_WRITE and PROT_EXEC's bits, then 8 for shared.
        Query::Found(Mapping {
            start: query.vma_start,
            end: query.vma_end,
            perms: perms(query.vma_flags, query.vma_flags & 8 != 0),
            name: mapping_name(&path).into(),
            file_offset: query.vma_offset,
            captured: false,
        })
    }
}

/// The live [`MappingSource`]: each process's maps file, opened at its first query and held
/// until its address space ends, and /proc/PID/maps read whole.
#[derive(Debug, Default)]
pub struct ProcMaps {
    files: rustc_hash::FxHashMap<u32, MapsFile>,
}

impl MappingSource for ProcMaps {
    fn query_mapping(&mut self, pid: u32, address: u64) -> Query {
        if !QUERY_WORKS.load(Ordering::Relaxed) {
            return Query::Failed;
        }
        let file = match self.files.entry(pid) {
            std::collections::hash_map::Entry::Occupied(file) => file.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => match MapsFile::open(pid as i32) {
                Ok(file) => slot.insert(file),
                Err(_) => return Query::Failed,
            },
        };
        let answer = file.query(address);
        if matches!(answer, Query::Gone) {
            // The next query opens the file again, on the address space there is then.
            self.files.remove(&pid);
        }
        answer
    }

    fn read_mappings(&mut self, pid: u32) -> Option<MappingTable> {
        MappingTable::read(pid as i32).ok()
    }

    fn address_space_ended(&mut self, pid: u32) {
        self.files.remove(&pid);
    }
}
