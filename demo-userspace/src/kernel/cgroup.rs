//! Which cgroup v2 a process is in: its path from /proc while it lives, and the path of a
//! cgroup id (the inode of its directory in the cgroup2 filesystem), which the kernel side
//! records for a process that exits; and `--cgroup PATH`, a cgroup v2 directory to trace.

use std::{
    collections::HashMap,
    os::{
        fd::OwnedFd,
        unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    },
    path::{Path, PathBuf},
    sync::Arc,
};

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on
/// a hybrid system), and the cgroup path its root shows (`/`, or the namespace's root seen
/// from outside it), from /proc/self/mountinfo; `None` when it is not mounted.
pub fn v2_mount() -> Option<(PathBuf, String)> {
    first_mount("cgroup2").map(|mount| (mount.mount_point, mount.root))
}

/// The first mount of a filesystem of type `fs_type` in /proc/self/mountinfo.
fn first_mount(fs_type: &str) -> Option<procfs::process::MountInfo> {
    procfs::process::Process::myself()
        .and_then(|me| me.mountinfo())
        .ok()?
        .into_iter()
        .find(|mount| mount.fs_type == fs_type)
}

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
        let mut cgroups = Self {
            mount: v2_mount(),
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

/// Why `--cgroup PATH` names no cgroup demo can trace; each is one sentence.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "--cgroup needs the cgroup v2 hierarchy, and /proc/self/mountinfo has no cgroup2 mount"
    )]
    NoV2Mount,
    #[error("cgroup {path} does not exist under the cgroup v2 mount {mount}")]
    Missing { path: String, mount: String },
    #[error(
        "{path} is a cgroup v1 path (the v1 hierarchy mounted at {v1_mount}): --cgroup takes a cgroup v2 directory, under {mount}"
    )]
    V1 {
        path: String,
        v1_mount: String,
        mount: String,
    },
    #[error("{path} is not a cgroup: it is not in the cgroup v2 hierarchy mounted at {mount}")]
    NotCgroup { path: String, mount: String },
    #[error("{path} is not a cgroup: a cgroup is a directory under {mount}")]
    NotDirectory { path: String, mount: String },
    #[error("cgroup {path} leads outside the cgroup v2 mount {mount}")]
    Outside { path: String, mount: String },
    #[error(
        "cgroup {shown} holds demo itself (in {own}), whose own faults it would then trace: give a cgroup demo does not run in"
    )]
    HoldsDemo { shown: String, own: String },
    #[error("read cgroup {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// `--cgroup PATH`: a cgroup v2 directory, whose processes and those of the cgroups below it
/// are traced, or counted. Shared, so that the options holding it stay small and cheap to copy.
#[derive(Clone, Debug)]
pub struct CgroupScope(Arc<Scope>);

/// What [`CgroupScope`] shares.
#[derive(Debug)]
struct Scope {
    /// The directory, canonical, under the v2 mount.
    path: PathBuf,
    /// Its cgroup path as /proc/PID/cgroup shows it (`/system.slice/ssh.service`).
    shown: String,
    /// The cgroup's id: its directory's inode, as the kernel's `cgroup_id` has it.
    id: u64,
    /// The directory, open for the kernel side's cgroup array, which holds the cgroup while
    /// the programs run.
    dir: Arc<OwnedFd>,
}

impl PartialEq for CgroupScope {
    fn eq(&self, other: &Self) -> bool {
        self.0.id == other.0.id
    }
}

impl Eq for CgroupScope {}

impl CgroupScope {
    /// The cgroup `arg` names: a path under the cgroup v2 mount (`/system.slice/x.service`,
    /// the leading `/` optional) or a full path under it, which must not hold demo itself.
    pub fn resolve(arg: &str) -> Result<Self, CgroupError> {
        let scope = Self::find(arg)?;
        let own = Cgroups::of_process(std::process::id()).ok_or_else(|| CgroupError::Read {
            path: "/proc/self/cgroup".to_owned(),
            source: std::io::Error::other("no cgroup v2 line"),
        })?;
        if scope.holds_path(&own) {
            return Err(CgroupError::HoldsDemo {
                shown: scope.0.shown.clone(),
                own,
            });
        }
        Ok(scope)
    }

    /// The cgroup `arg` names, wherever demo runs.
    fn find(arg: &str) -> Result<Self, CgroupError> {
        let (mount, root) = v2_mount().ok_or(CgroupError::NoV2Mount)?;
        let shown_mount = mount.display().to_string();
        let given = Path::new(arg);
        let under = if given.starts_with(&mount) {
            given.to_owned()
        } else {
            mount.join(arg.trim_start_matches('/'))
        };
        let path = match std::fs::canonicalize(&under) {
            Ok(path) => path,
            // Not under the mount: an absolute path elsewhere is told apart by its
            // filesystem, so a v1 directory is not called missing.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(Self::elsewhere(arg, given, shown_mount));
            }
            Err(source) => {
                return Err(CgroupError::Read {
                    path: under.display().to_string(),
                    source,
                });
            }
        };
        let canonical_mount = std::fs::canonicalize(&mount).unwrap_or_else(|_| mount.clone());
        let Ok(relative) = path.strip_prefix(&canonical_mount) else {
            return Err(CgroupError::Outside {
                path: arg.to_owned(),
                mount: shown_mount,
            });
        };
        let metadata = std::fs::metadata(&path).map_err(|source| CgroupError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if !metadata.is_dir() {
            return Err(CgroupError::NotDirectory {
                path: arg.to_owned(),
                mount: shown_mount,
            });
        }
        let dir = std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| CgroupError::Read {
                path: path.display().to_string(),
                source,
            })?;
        let relative = relative.display().to_string();
        let shown = match (root.as_str(), relative.as_str()) {
            (root, "") => root.to_owned(),
            ("/", relative) => format!("/{relative}"),
            (root, relative) => format!("{root}/{relative}"),
        };
        Ok(Self(Arc::new(Scope {
            path,
            shown,
            id: metadata.ino(),
            dir: Arc::new(dir.into()),
        })))
    }

    /// Why `arg`, which is nothing under the v2 mount, names no cgroup: a v1 directory, a
    /// directory of another filesystem, or nothing at all.
    fn elsewhere(arg: &str, given: &Path, mount: String) -> CgroupError {
        use nix::sys::statfs::{CGROUP_SUPER_MAGIC, statfs};
        let missing = || CgroupError::Missing {
            path: arg.to_owned(),
            mount: mount.clone(),
        };
        if !given.is_absolute() {
            return missing();
        }
        match statfs(given) {
            Ok(stat) if stat.filesystem_type() == CGROUP_SUPER_MAGIC => CgroupError::V1 {
                path: arg.to_owned(),
                v1_mount: v1_mount_of(given).unwrap_or_else(|| "?".to_owned()),
                mount,
            },
            Ok(_) => CgroupError::NotCgroup {
                path: arg.to_owned(),
                mount,
            },
            Err(_) => missing(),
        }
    }

    /// The cgroup directory, open, for the kernel side's cgroup array.
    pub fn dir(&self) -> Arc<OwnedFd> {
        Arc::clone(&self.0.dir)
    }

    /// Its cgroup path as /proc/PID/cgroup shows it.
    pub fn shown(&self) -> &str {
        &self.0.shown
    }

    /// The cgroup id, its directory's inode.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// True when the cgroup with path `path` (as /proc/PID/cgroup shows it) is this one or
    /// below it.
    pub fn holds_path(&self, path: &str) -> bool {
        let shown = self.shown();
        path == shown
            || path
                .strip_prefix(shown)
                .is_some_and(|rest| shown.ends_with('/') || rest.starts_with('/'))
    }

    /// True when process `pid` is in this cgroup or below it now; false once it is gone.
    pub fn holds(&self, pid: u32) -> bool {
        Cgroups::of_process(pid).is_some_and(|path| self.holds_path(&path))
    }

    /// True when process `pid` is in this cgroup or below it now, and neither exiting nor a
    /// zombie: one the trace may still take on. A process past its exit would stay in the
    /// target map, since its exit was already reported or never will be.
    pub fn holds_live(&self, pid: u32) -> bool {
        if !self.holds(pid) {
            return false;
        }
        let exiting = procfs::process::Process::new(pid as i32)
            .and_then(|process| process.stat())
            .map_or(true, |stat| {
                matches!(stat.state, 'Z' | 'X')
                    || stat.flags().map_or(true, |flags| {
                        flags.contains(procfs::process::StatFlags::PF_EXITING)
                    })
            });
        !exiting
    }

    /// The processes in this cgroup and every cgroup below it now, from their `cgroup.procs`
    /// (each lists its own cgroup's processes only). A cgroup removed while it is read adds
    /// none.
    pub fn procs(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        procs_under(&self.0.path, &mut pids);
        pids
    }

    /// True once the cgroup's directory is gone (`rmdir`, which succeeds only when it holds no
    /// process and no cgroup), or is another directory of the same name.
    pub fn removed(&self) -> bool {
        std::fs::metadata(&self.0.path).map_or(true, |metadata| metadata.ino() != self.0.id)
    }
}

/// Adds the processes of the cgroup at `directory`, and of each below it, to `pids`.
fn procs_under(directory: &Path, pids: &mut Vec<u32>) {
    if let Ok(procs) = std::fs::read_to_string(directory.join("cgroup.procs")) {
        pids.extend(
            procs
                .lines()
                .filter_map(|line| line.trim().parse::<u32>().ok()),
        );
    }
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            procs_under(&entry.path(), pids);
        }
    }
}

/// The mount point of the cgroup v1 hierarchy that holds `path` (the longest v1 mount point
/// it starts with).
fn v1_mount_of(path: &Path) -> Option<String> {
    let path = std::fs::canonicalize(path).ok()?;
    procfs::process::Process::myself()
        .and_then(|me| me.mountinfo())
        .ok()?
        .into_iter()
        .filter(|mount| mount.fs_type == "cgroup" && path.starts_with(&mount.mount_point))
        .max_by_key(|mount| mount.mount_point.as_os_str().len())
        .map(|mount| mount.mount_point.display().to_string())
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
    /// demo's own cgroup is found by any of the ways PATH may name it (under the mount with
    /// or without its leading slash, or in full), with its id, its processes (this test's
    /// among them) and its path; and it is refused as a target, since it holds demo.
    #[test]
    fn the_cgroup_this_process_is_in_is_found_and_refused() {
        let (mount, _) = v2_mount().expect("no cgroup2 mount in /proc/self/mountinfo");
        let own = Cgroups::of_process(std::process::id()).unwrap();
        let directory = mount.join(own.trim_start_matches('/'));
        let full = directory.display().to_string();
        for arg in [own.as_str(), own.trim_start_matches('/'), full.as_str()] {
            let scope = CgroupScope::find(arg).unwrap();
            assert_eq!(scope.shown(), own, "{arg}");
            assert_eq!(scope.id(), std::fs::metadata(&directory).unwrap().ino());
            assert!(scope.procs().contains(&std::process::id()), "{arg}");
            assert!(scope.holds(std::process::id()));
            assert!(!scope.removed());
        }
        let refusal = CgroupScope::resolve(&own).unwrap_err().to_string();
        assert_eq!(
            refusal,
            format!(
                "cgroup {own} holds demo itself (in {own}), whose own faults it would then \
                 trace: give a cgroup demo does not run in"
            )
        );
    }

    /// A cgroup holds its own path and the paths below it, and no path that merely starts
    /// with the same letters.
    #[test]
    fn a_cgroup_holds_itself_and_what_is_below_it() {
        let scope = |shown: &str| {
            CgroupScope(Arc::new(Scope {
                path: PathBuf::from("/nonexistent"),
                shown: shown.to_owned(),
                id: 1,
                dir: Arc::new(std::fs::File::open("/").unwrap().into()),
            }))
        };
        let service = scope("/system.slice/a.service");
        assert!(service.holds_path("/system.slice/a.service"));
        assert!(service.holds_path("/system.slice/a.service/inner"));
        assert!(!service.holds_path("/system.slice/a.service2"));
        assert!(!service.holds_path("/system.slice"));
        assert!(scope("/").holds_path("/init.scope"));
        // Its directory does not exist, so it counts as removed.
        assert!(service.removed());
    }

    /// Each PATH that names no cgroup v2 directory is refused in its own sentence: nothing
    /// there, another filesystem, a v1 hierarchy, a file, a way out of the mount.
    #[test]
    fn a_path_that_is_no_cgroup_v2_directory_says_what_it_is() {
        let (mount, _) = v2_mount().unwrap();
        let mount = mount.display().to_string();
        let refusal = |arg: &str| CgroupScope::resolve(arg).unwrap_err().to_string();
        assert_eq!(
            refusal("/no-such-demo-cgroup"),
            format!("cgroup /no-such-demo-cgroup does not exist under the cgroup v2 mount {mount}")
        );
        assert_eq!(
            refusal("/tmp"),
            format!(
                "/tmp is not a cgroup: it is not in the cgroup v2 hierarchy mounted at {mount}"
            )
        );
        assert_eq!(
            refusal("/cgroup.procs"),
            format!("/cgroup.procs is not a cgroup: a cgroup is a directory under {mount}")
        );
        assert_eq!(
            refusal("/../../../../.."),
            format!("cgroup /../../../../.. leads outside the cgroup v2 mount {mount}")
        );
        let v1 = first_mount("cgroup")
            .expect("this machine mounts a cgroup v1 hierarchy beside v2")
            .mount_point
            .display()
            .to_string();
        assert_eq!(
            refusal(&v1),
            format!(
                "{v1} is a cgroup v1 path (the v1 hierarchy mounted at {v1}): --cgroup takes a \
                 cgroup v2 directory, under {mount}"
            )
        );
    }
}
