//! Files whose pages are on disk and not in the page cache, so that a program's first read of
//! a page must wait for I/O: a major fault.

use std::{
    os::fd::AsRawFd as _,
    path::{Path, PathBuf},
    sync::OnceLock,
};

/// Where the cold files go: a directory of this test binary's own under /var/tmp.
const DISK_PARENT: &str = "/var/tmp";

/// statfs's f_type of ramfs (linux/magic.h), which neither libc nor nix name.
const RAMFS_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0x8584_58f6);

/// This test binary's directory on a disk filesystem, made once (mode 0755: the traced
/// programs run as the invoking user under sudo and read the files in it). Fails, saying why,
/// when /var/tmp is on tmpfs or ramfs, where a page dropped from the page cache is the file's
/// only copy, so dropping it does nothing and no read of it is ever major.
pub fn disk_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let kind = nix::sys::statfs::statfs(DISK_PARENT)
            .unwrap_or_else(|e| panic!("statfs {DISK_PARENT}: {e}"))
            .filesystem_type();
        assert!(
            kind != nix::sys::statfs::TMPFS_MAGIC && kind != RAMFS_MAGIC,
            "{DISK_PARENT} is on a memory filesystem (statfs type {kind:?}): a major fault needs \
             a file on a disk filesystem; run the test where {DISK_PARENT} is on disk"
        );
        let dir = tempfile::Builder::new()
            .prefix("demo-test-")
            .tempdir_in(DISK_PARENT)
            .unwrap_or_else(|e| panic!("make a directory in {DISK_PARENT}: {e}"));
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("open the disk directory to the invoking user");
        dir
    })
    .path()
}

/// A file of `pages` pages of `byte` in [`disk_dir`], written to disk (readable by all).
/// [`drop_from_cache`] makes it cold before each run.
pub fn disk_file(name: &str, pages: usize, byte: u8) -> PathBuf {
    let path = disk_dir().join(name);
    std::fs::write(&path, vec![byte; pages * 4096]).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    path
}

/// Writes `path` back to disk and drops its pages from the page cache, then checks with
/// mincore that none is left there: the next read of each page is a major fault.
pub fn drop_from_cache(path: &Path) {
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: a plain syscall on a descriptor this function owns.
    let advice = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(advice, 0, "drop {} from the page cache", path.display());
    let cached = cached_pages(&file);
    assert_eq!(
        cached,
        0,
        "{} still has {cached} pages in the page cache",
        path.display()
    );
}

/// How many pages of `file` are in the page cache, from mincore on a mapping of it that is
/// never touched.
fn cached_pages(file: &std::fs::File) -> usize {
    let length = usize::try_from(file.metadata().unwrap().len()).unwrap();
    let pages = length.div_ceil(4096);
    // SAFETY: a fresh shared read-only mapping of a whole file this function holds open; it is
    // only passed to mincore and unmapped before returning.
    let map = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            length,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    assert_ne!(map, libc::MAP_FAILED, "map the file for mincore");
    let mut residency = vec![0u8; pages];
    // SAFETY: `residency` has one byte per page of the mapping.
    let result = unsafe { libc::mincore(map, length, residency.as_mut_ptr()) };
    // SAFETY: the mapping made above, not used after this.
    unsafe { libc::munmap(map, length) };
    assert_eq!(result, 0, "mincore");
    residency.iter().filter(|&&page| page & 1 != 0).count()
}
