//! Which cgroup v2 a process is in: its path from /proc while it lives, and the path of a
//! cgroup id (the inode of its directory in the cgroup2 filesystem), which the kernel side
//! records for a process that exits.

use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

/// The cgroup2 mount, and the path of every cgroup id seen there.
#[derive(Debug, Default)]
pub struct Cgroups {
    /// Where cgroup2 is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid
    /// system), and the cgroup path its root shows; `None` when it is not mounted.
    mount: Option<(PathBuf, String)>,
    by_id: HashMap<u64, String>,
    /// The cgroups the last rescan found removed: a process that exited in one just before it
    /// was removed (a transient unit ends with its last process) is still named, until the
    /// rescan after.
    removed: HashMap<u64, String>,
    /// The tree was read again since the last [`Cgroups::new_read`]: a cgroup removed before
    /// it was seen stays unknown, and is not looked for again in the same read.
    rescanned: bool,
}

impl Cgroups {
    /// Finds the cgroup2 mount and reads the tree under it.
    pub fn new() -> Self {
        let mount = procfs::process::Process::myself()
            .and_then(|me| me.mountinfo())
            .ok()
            .and_then(|mounts| {
                mounts
                    .into_iter()
                    .find(|mount| mount.fs_type == "cgroup2")
                    .map(|mount| (mount.mount_point, mount.root))
            });
        let mut cgroups = Self {
            mount,
            ..Self::default()
        };
        cgroups.rescan();
        cgroups
    }

    /// Starts a new reading: a cgroup id not known yet may be looked for once more.
    pub fn new_read(&mut self) {
        self.rescanned = false;
    }

    /// The path of the cgroup `pid` is in now (`/system.slice/ssh.service`), from
    /// /proc/PID/cgroup; `None` when the process is gone.
    pub fn of_process(pid: u32) -> Option<String> {
        let groups = procfs::process::Process::new(pid as i32)
            .and_then(|process| process.cgroups())
            .ok()?;
        groups
            .into_iter()
            .find(|group| group.hierarchy == 0 && group.controllers.is_empty())
            .map(|group| group.pathname)
    }

    /// The path of the cgroup with id `id`, reading the tree again once per reading when it is
    /// not known; `None` when the cgroup is gone.
    pub fn path_of(&mut self, id: u64) -> Option<String> {
        if !self.by_id.contains_key(&id) && !self.rescanned {
            self.rescan();
        }
        self.by_id
            .get(&id)
            .or_else(|| self.removed.get(&id))
            .cloned()
    }

    fn rescan(&mut self) {
        self.rescanned = true;
        let Some((mount, root)) = &self.mount else {
            return;
        };
        let mut by_id = HashMap::new();
        walk(mount, root, &mut by_id);
        let mut before = std::mem::replace(&mut self.by_id, by_id);
        before.retain(|id, _| !self.by_id.contains_key(id));
        self.removed = before;
    }
}

/// Adds `directory` (the cgroup `path`) and every cgroup under it to `by_id`.
fn walk(directory: &Path, path: &str, by_id: &mut HashMap<u64, String>) {
    let Ok(metadata) = std::fs::metadata(directory) else {
        return;
    };
    by_id.insert(metadata.ino(), path.to_owned());
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            let name = entry.file_name();
            let child = match path {
                "/" => format!("/{}", name.to_string_lossy()),
                _ => format!("{path}/{}", name.to_string_lossy()),
            };
            walk(&entry.path(), &child, by_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's own cgroup, read from /proc, has an id the tree knows, and that id is
    /// the one its directory has.
    #[test]
    fn the_id_of_this_processs_cgroup_names_its_path() {
        let mut cgroups = Cgroups::new();
        let Some((mount, _)) = cgroups.mount.clone() else {
            panic!("no cgroup2 mount in /proc/self/mountinfo");
        };
        let path = Cgroups::of_process(std::process::id()).unwrap();
        assert!(path.starts_with('/'), "{path}");
        let directory = mount.join(path.trim_start_matches('/'));
        let id = std::fs::metadata(&directory).unwrap().ino();
        assert_eq!(cgroups.path_of(id).as_deref(), Some(path.as_str()));
        cgroups.new_read();
        assert_eq!(cgroups.path_of(u64::MAX), None);
        assert_eq!(Cgroups::of_process(u32::MAX), None);
    }

    /// A cgroup removed after a scan saw it keeps its path through the next rescan, which
    /// notices the removal, and is forgotten at the one after.
    #[test]
    fn a_removed_cgroup_is_named_until_the_rescan_after_its_removal() {
        let mut cgroups = Cgroups {
            by_id: HashMap::from([(7, "/gone.scope".to_owned())]),
            ..Cgroups::default()
        };
        cgroups.mount = Some((PathBuf::from("/nonexistent-cgroup-mount"), "/".to_owned()));
        cgroups.rescan();
        assert_eq!(cgroups.path_of(7).as_deref(), Some("/gone.scope"));
        cgroups.rescan();
        assert_eq!(cgroups.path_of(7), None);
    }
}
