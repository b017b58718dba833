//! A cgroup v2 of a test's own, under the cgroup2 mount /proc/self/mountinfo names (here
//! `/sys/fs/cgroup/unified`, beside the v1 controllers), removed when dropped.

use std::{path::PathBuf, time::Duration};

/// A cgroup made for one test, removed when dropped (once its processes are gone).
pub struct TestCgroup {
    pub directory: PathBuf,
    /// Its path as /proc/PID/cgroup and demo name it.
    pub path: String,
}

impl TestCgroup {
    /// Makes `NAME-PID` under the root of the cgroup2 mount.
    pub fn new(name: &str) -> Self {
        let (mount, root) =
            demo::kernel::cgroup::v2_mount().expect("a cgroup2 mount in /proc/self/mountinfo");
        let name = format!("{name}-{}", std::process::id());
        let directory = mount.join(&name);
        std::fs::create_dir(&directory).unwrap();
        let path = match root.as_str() {
            "/" => format!("/{name}"),
            root => format!("{root}/{name}"),
        };
        Self { directory, path }
    }

    /// Makes the cgroup `name` below this one; drop it first.
    pub fn child(&self, name: &str) -> Self {
        let directory = self.directory.join(name);
        std::fs::create_dir(&directory).unwrap();
        Self {
            directory,
            path: format!("{}/{name}", self.path),
        }
    }

    /// Its `cgroup.procs`, which lists its processes and takes one written to it.
    pub fn procs(&self) -> PathBuf {
        self.directory.join("cgroup.procs")
    }

    /// Moves process `pid` into the cgroup.
    pub fn add(&self, pid: u64) {
        std::fs::write(self.procs(), pid.to_string()).unwrap();
    }

    /// Moves process `pid` into the cgroup, and checks that /proc says it is there.
    pub fn enter(&self, pid: u64) {
        self.add(pid);
        let seen = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        assert!(
            seen.lines().any(|line| line == format!("0::{}", self.path)),
            "{seen}"
        );
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // The last process in it may still be being reaped.
        for _ in 0..100 {
            if !self.directory.exists() || std::fs::remove_dir(&self.directory).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
