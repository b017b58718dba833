//! Compiles the C test programs of `demo trace` at run time, so what the tests trace is a real
//! program, unmodified by the tool.

use std::{path::PathBuf, process::Command};

/// Compiles `source` with the system C compiler into a fresh directory and returns the binary.
pub fn compile_c(name: &str, source: &str, defines: &[&str]) -> PathBuf {
    let dir = crate::common::test_dir().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    // Workloads run as the invoking user under sudo; let them read the binary.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let c_file = dir.join(format!("{name}.c"));
    std::fs::write(&c_file, source).unwrap();
    let binary = dir.join(name);
    let status = Command::new("cc")
        .args(["-O0", "-o"])
        .arg(&binary)
        .arg(&c_file)
        .args(defines)
        .status()
        .expect("run the C compiler (cc)");
    assert!(status.success(), "compile {name}");
    binary
}
