//! Helpers for running commands and finding things in the workspace.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

/// The workspace root (the parent of xtask's manifest directory).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// `cargo ARGS…` in the workspace root, using the cargo that runs xtask.
pub fn cargo(args: &[&str]) -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.args(args).current_dir(workspace_root());
    command
}

/// Builds demo with optimizations and returns the path of the binary and a fresh folder
/// `target/<purpose>` for what the caller writes.
pub fn release_demo(purpose: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    run(&mut cargo(&[
        "build",
        "--release",
        "--package",
        "demo-userspace",
    ]))?;
    let root = workspace_root();
    let dir = root.join("target").join(purpose);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok((root.join("target/release/demo"), dir))
}

/// Compiles the C workload `name` from `source` into `dir` and returns the binary.
pub fn compile_c(
    dir: &std::path::Path,
    name: &str,
    source: &str,
    flags: &[&str],
) -> anyhow::Result<PathBuf> {
    let file = dir.join(format!("{name}.c"));
    std::fs::write(&file, source).with_context(|| format!("write {}", file.display()))?;
    let binary = dir.join(name);
    run(Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&binary)
        .arg(&file)
        .args(flags))
    .with_context(|| format!("compile the workload {name} (needs a C compiler)"))?;
    Ok(binary)
}

/// Prints the command, runs it, and fails unless it succeeds.
pub fn run(command: &mut Command) -> anyhow::Result<()> {
    println!("xtask: {}", describe(command));
    let status = command
        .status()
        .with_context(|| format!("start `{}`", describe(command)))?;
    if !status.success() {
        bail!("`{}` failed: {status}", describe(command));
    }
    Ok(())
}

/// Runs the command quietly and returns its stdout, or `None` if it could not run or failed.
pub fn output(command: &mut Command) -> Option<String> {
    let output = command.stderr(Stdio::null()).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

pub fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_some_and(|uid| uid.trim() == "0")
}

/// True when `sudo` can run a command without asking for a password.
pub fn sudo_works() -> bool {
    output(Command::new("sudo").args(["-n", "true"])).is_some()
}

/// Builds the integration tests of `package` and returns the paths of their binaries.
pub fn test_binaries(package: &str) -> anyhow::Result<Vec<PathBuf>> {
    run(&mut cargo(&[
        "build",
        "--package",
        package,
        "--bin",
        "demo",
    ]))?;
    let mut command = cargo(&[
        "test",
        "--package",
        package,
        "--tests",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    println!("xtask: {}", describe(&command));
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("start `{}`", describe(&command)))?;
    if !output.status.success() {
        bail!("`{}` failed: {}", describe(&command), output.status);
    }
    let binaries: Vec<PathBuf> = cargo_metadata::Message::parse_stream(output.stdout.as_slice())
        .filter_map(Result::ok)
        .filter_map(|message| match message {
            cargo_metadata::Message::CompilerArtifact(artifact)
                if artifact
                    .target
                    .kind
                    .iter()
                    .any(|kind| kind.to_string() == "test") =>
            {
                artifact.executable.map(PathBuf::from)
            }
            _ => None,
        })
        .collect();
    if binaries.is_empty() {
        bail!("cargo built no integration test of {package}");
    }
    Ok(binaries)
}
