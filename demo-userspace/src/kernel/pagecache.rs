//! What the kernel says about a file and the memory settings around it: which of its pages are
//! in the page cache (mincore), which filesystem holds it (statfs), and the transparent huge
//! page settings (sysfs).

use std::{fs::File, os::fd::AsRawFd as _, path::Path, ptr};

/// A failed read of the kernel's view of a file or setting.
#[derive(Debug, thiserror::Error)]
pub enum PageCacheError {
    #[error("open {path} to read its page-cache residency: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("map {path} to read its page-cache residency: {source}")]
    Map {
        path: String,
        source: std::io::Error,
    },
    #[error("read the page-cache residency of {path} (mincore): {source}")]
    Mincore {
        path: String,
        source: std::io::Error,
    },
    #[error("read the filesystem of {path} (statfs): {source}")]
    Statfs { path: String, source: nix::Error },
}

/// The pages of `path`'s first `pages` pages that are in the page cache. The file is mapped
/// without touching it, so no page of it is faulted in, and no mapping of it is added to
/// the pages' map counts.
pub fn cached_pages(path: &Path, pages: u64) -> Result<Vec<u64>, PageCacheError> {
    let shown = || path.display().to_string();
    let file = File::open(path).map_err(|source| PageCacheError::Open {
        path: shown(),
        source,
    })?;
    let page_size = procfs::page_size();
    let bytes = (pages * page_size) as usize;
    // SAFETY: a new read-only shared mapping of a file we opened replaces nothing, and it is
    // unmapped below; nothing reads through it.
    let address = unsafe {
        libc::mmap(
            ptr::null_mut(),
            bytes,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if address == libc::MAP_FAILED {
        return Err(PageCacheError::Map {
            path: shown(),
            source: std::io::Error::last_os_error(),
        });
    }
    let mut residency = vec![0u8; pages as usize];
    // SAFETY: `residency` has one byte per page of the mapping, as mincore needs.
    let done = unsafe { libc::mincore(address, bytes, residency.as_mut_ptr()) };
    let error = std::io::Error::last_os_error();
    // SAFETY: the mapping made above, of this length.
    unsafe { libc::munmap(address, bytes) };
    if done != 0 {
        return Err(PageCacheError::Mincore {
            path: shown(),
            source: error,
        });
    }
    Ok((0u64..)
        .zip(residency)
        .filter(|(_, resident)| resident & 1 != 0)
        .map(|(page, _)| page)
        .collect())
}

/// The kind of filesystem that holds `path`, by the name the kernel gives it in
/// /proc/filesystems (`ext4`, `tmpfs`, …), or its magic number in hex when unknown here.
pub fn filesystem_of(path: &Path) -> Result<String, PageCacheError> {
    use nix::sys::statfs::{self, statfs};
    let stat = statfs(path).map_err(|source| PageCacheError::Statfs {
        path: path.display().to_string(),
        source,
    })?;
    let kind = stat.filesystem_type();
    let known = [
        (statfs::EXT4_SUPER_MAGIC, "ext4"),
        (statfs::TMPFS_MAGIC, "tmpfs"),
        (statfs::BTRFS_SUPER_MAGIC, "btrfs"),
        (statfs::XFS_SUPER_MAGIC, "xfs"),
        (statfs::OVERLAYFS_SUPER_MAGIC, "overlay"),
        (statfs::NFS_SUPER_MAGIC, "nfs"),
        // ramfs's magic, which nix does not name.
        (statfs::FsType(0x8584_58f6), "ramfs"),
    ];
    Ok(known
        .iter()
        .find(|(magic, _)| *magic == kind)
        .map_or_else(|| format!("{:#x}", kind.0), |(_, name)| (*name).to_owned()))
}

/// True for filesystems that keep files in memory alone, where no page can be read from a disk.
pub fn is_memory_filesystem(name: &str) -> bool {
    matches!(name, "tmpfs" | "ramfs")
}

/// The selected value of a transparent huge page setting, e.g. `madvise` from `enabled`'s
/// `always [madvise] never`; `None` when the kernel has no such file (no THP support).
pub fn thp_setting(name: &str) -> Option<String> {
    let text = std::fs::read_to_string(Path::new("/sys/kernel/mm/transparent_hugepage").join(name))
        .ok()?;
    selected(&text)
}

fn selected(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bracketed_word_is_the_setting() {
        assert_eq!(
            selected("always [madvise] never\n").as_deref(),
            Some("madvise")
        );
        assert_eq!(
            selected("always defer defer+madvise [madvise] never").as_deref(),
            Some("madvise")
        );
        assert_eq!(selected("always madvise never"), None);
    }

    #[test]
    fn a_fresh_file_is_cached_until_it_is_dropped() {
        use std::io::Write as _;
        let path = std::env::temp_dir().join(format!("demo-pagecache-{}", std::process::id()));
        let mut file = File::create(&path).unwrap();
        file.write_all(&vec![1u8; 2 * procfs::page_size() as usize])
            .unwrap();
        assert_eq!(cached_pages(&path, 2).unwrap(), [0, 1]);
        std::fs::remove_file(&path).unwrap();
        assert!(!filesystem_of(&std::env::temp_dir()).unwrap().is_empty());
    }
}
