//! The build ID of a module a traced process maps (its ELF `.note.gnu.build-id`), read only
//! where the file read is provably the one the process maps, so a profile never names another
//! build.

use std::{
    fs::File,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    path::Path,
};

/// The build ID of the ELF file at `path` (its `.note.gnu.build-id`), which names the exact
/// build a profile's addresses belong to; `None` when the file has none or cannot be read.
pub fn build_id(path: &Path) -> Option<Vec<u8>> {
    blazesym::helper::read_elf_build_id(path)
        .ok()
        .flatten()
        .map(|id| id.into_owned())
}

/// The build ID of the module at `path` that process `pid` maps, or `None` when that file
/// cannot be proven the one read.
///
/// A mapping's path is a path in the process's mount namespace: a container's process at
/// `/usr/bin/app` maps the container's file, not the host's, and a binary replaced since it
/// was mapped is another file at the same path. So the file is opened through the process's
/// own root (`/proc/PID/root/PATH`), and kept only when its device and inode are those
/// /proc/PID/maps gives the mapping of `path`; maps is read after the open, while the file
/// opened is held, so its inode cannot have been reused by then. A process that has exited
/// (or is a zombie, whose maps are empty) gives `None`, as does a replaced file (maps then
/// names it `PATH (deleted)`), a path mapped from two different files, and an overlay file
/// whose inode maps reports differently from stat. What this cannot tell is a pid reused,
/// between the fault and this call, by a process that maps another file at the same path;
/// callers ask while the faulting process is expected alive, when they first meet the module.
pub fn mapped_build_id(pid: u32, path: &Path) -> Option<Vec<u8>> {
    let relative = path.strip_prefix("/").ok()?;
    let file = File::open(Path::new(&format!("/proc/{pid}/root")).join(relative)).ok()?;
    let meta = file.metadata().ok()?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let identity = FileIdentity {
        major: libc::major(meta.dev()),
        minor: libc::minor(meta.dev()),
        inode: meta.ino(),
    };
    if mapped_identity(&maps, path.to_str()?) != Some(identity) {
        return None;
    }
    // Read from the file held, not the path, which may name another file by now.
    build_id(Path::new(&format!("/proc/self/fd/{}", file.as_raw_fd())))
}

/// A file as /proc/PID/maps names it: its device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileIdentity {
    major: u32,
    minor: u32,
    inode: u64,
}

/// The one file that `maps` (a /proc/PID/maps text) maps at `path`; `None` when nothing is
/// mapped there, when two mappings of it are different files, or when a line cannot be read.
fn mapped_identity(maps: &str, path: &str) -> Option<FileIdentity> {
    let mut found = None;
    for line in maps.lines() {
        // `start-end perms offset major:minor inode   path`; the path may hold spaces.
        let mut fields = line.splitn(6, ' ');
        let (Some(device), Some(inode), Some(name)) = (fields.nth(3), fields.next(), fields.next())
        else {
            continue;
        };
        if name.trim_start() != path {
            continue;
        }
        let (major, minor) = device.split_once(':')?;
        let identity = FileIdentity {
            major: u32::from_str_radix(major, 16).ok()?,
            minor: u32::from_str_radix(minor, 16).ok()?,
            inode: inode.parse().ok()?,
        };
        if found.is_some_and(|known| known != identity) {
            return None;
        }
        found = Some(identity);
    }
    found
}

/// This process's libc, as its maps name it.
#[cfg(test)]
pub(crate) fn own_libc() -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    (maps.lines())
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.ends_with("/libc.so.6"))
        .unwrap()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// Runs unprivileged. libc's build ID is the one the object crate reads from its notes,
    /// and a file that is no ELF has none.
    #[test]
    fn the_build_id_of_libc_is_its_gnu_build_id_note() {
        use object::Object as _;
        let libc = own_libc();
        let bytes = std::fs::read(&libc).unwrap();
        let expected = object::File::parse(&*bytes).unwrap().build_id().unwrap();
        assert_eq!(build_id(Path::new(&libc)).as_deref(), expected);
        assert_eq!(expected.map(<[u8]>::len), Some(20), "{libc:?}");
        assert_eq!(build_id(Path::new("/proc/self/status")), None);
    }

    /// Runs unprivileged. The libc this process maps is read through its root with its build
    /// ID; a file it does not map, and a process that does not exist, give none.
    #[test]
    fn a_mapped_module_gives_its_build_id_through_the_process() {
        let libc = own_libc();
        let pid = std::process::id();
        let found = mapped_build_id(pid, Path::new(&libc));
        assert_eq!(found, build_id(Path::new(&libc)));
        assert_eq!(found.map(|id| id.len()), Some(20));
        assert_eq!(mapped_build_id(pid, Path::new("/proc/self/status")), None);
        assert_eq!(mapped_build_id(pid, Path::new("relative/libc.so.6")), None);
        // Pid numbers stop below 2^22 (PID_MAX_LIMIT on 64-bit).
        assert_eq!(mapped_build_id(u32::MAX, Path::new(&libc)), None);
    }

    /// Runs unprivileged. A module replaced at its path after it was mapped gives no build ID,
    /// though the file now at the path has one: the process maps the old file.
    #[test]
    fn a_module_replaced_since_it_was_mapped_gives_none() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("module.so");
        std::fs::copy(own_libc(), &module).unwrap();
        let mapped = File::open(&module).unwrap();
        let len = mapped.metadata().unwrap().len() as usize;
        // SAFETY: a fresh read-only private mapping of a file this test made; nothing reads
        // through the pointer, and it is unmapped below.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                mapped.as_raw_fd(),
                0,
            )
        };
        assert_ne!(at, libc::MAP_FAILED);
        let pid = std::process::id();
        let before = mapped_build_id(pid, &module);

        // Another ELF with another build ID, renamed over the mapped one, as an install does.
        let replacement = dir.path().join("replacement");
        std::fs::copy(std::env::current_exe().unwrap(), &replacement).unwrap();
        std::fs::set_permissions(&replacement, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::rename(&replacement, &module).unwrap();
        let after = mapped_build_id(pid, &module);
        let now_at_path = build_id(&module);
        // SAFETY: the mapping made above, of `len` bytes, which nothing uses any more.
        assert_eq!(unsafe { libc::munmap(at, len) }, 0);

        assert_eq!(before, build_id(Path::new(&own_libc())));
        assert!(before.is_some());
        assert!(
            now_at_path.is_some() && now_at_path != before,
            "{now_at_path:?}"
        );
        assert_eq!(after, None);
    }

    /// Runs unprivileged. maps gives a path's one file, its device in hex; a path mapped from
    /// two different files, or not at all, has none.
    #[test]
    fn the_identity_of_a_path_comes_from_its_maps_lines() {
        let maps = "\
55d0a0000000-55d0a0001000 r--p 00000000 fd:01 1835 /usr/bin/my app
55d0a0001000-55d0a0002000 r-xp 00001000 fd:01 1835 /usr/bin/my app
7f0000000000-7f0000001000 r--p 00000000 00:1b 99 /usr/lib/libx.so (deleted)
7f0000001000-7f0000002000 r--p 00000000 00:1b 77 /usr/lib/libx.so
7f0000002000-7f0000003000 r--p 00000000 00:1b 78 /usr/lib/liby.so
7f0000003000-7f0000004000 r--p 00001000 00:1b 79 /usr/lib/liby.so
7ffd00000000-7ffd00001000 rw-p 00000000 00:00 0                          [stack]
";
        let identity = |major, minor, inode| {
            Some(FileIdentity {
                major,
                minor,
                inode,
            })
        };
        assert_eq!(
            mapped_identity(maps, "/usr/bin/my app"),
            identity(0xfd, 1, 1835)
        );
        assert_eq!(
            mapped_identity(maps, "/usr/lib/libx.so"),
            identity(0, 0x1b, 77)
        );
        assert_eq!(mapped_identity(maps, "/usr/lib/liby.so"), None);
        assert_eq!(mapped_identity(maps, "/usr/lib/libz.so"), None);
    }
}
