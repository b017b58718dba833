//! An empty cgroup for the bench's `demo trace --cgroup` row, made under the cgroup v2 mount
//! that /proc/self/mountinfo names (never assumed to be /sys/fs/cgroup), and removed after.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// A cgroup v2 directory no process is in, removed when dropped.
pub struct EmptyCgroup {
    directory: PathBuf,
}

impl EmptyCgroup {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
        let mount =
            v2_mount(&mountinfo).context("find the cgroup v2 mount in /proc/self/mountinfo")?;
        let directory = mount.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&directory)
            .with_context(|| format!("make the cgroup {}", directory.display()))?;
        Ok(Self { directory })
    }

    pub fn path(&self) -> &Path {
        &self.directory
    }
}

impl Drop for EmptyCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.directory);
    }
}

/// The mount point of the first cgroup2 filesystem in a mountinfo table: the fifth field of
/// its line, whose filesystem type follows the ` - ` separator.
fn v2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (mount, filesystem) = line.split_once(" - ")?;
        (filesystem.split_whitespace().next() == Some("cgroup2"))
            .then(|| mount.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a hybrid system the v1 controllers come first and cgroup2 is mounted at
    /// `/sys/fs/cgroup/unified`; the mount is found by its type, not by its place.
    #[test]
    fn the_v2_mount_is_found_by_its_type() {
        let mountinfo = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:5 - cgroup cgroup rw,memory
41 30 0:35 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec shared:9 - cgroup2 cgroup2 rw
";
        assert_eq!(
            v2_mount(mountinfo),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            v2_mount(&mountinfo.lines().take(2).collect::<Vec<_>>().join("\n")),
            None
        );
    }
}
