//! `cargo xtask install`: the release binary, its man page and its shell completions under a
//! prefix, where a packaged tool puts them; and the check `cargo xtask test` runs on that
//! layout.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::command::{release_demo, run};

/// Where each installed file goes under the prefix, and how demo writes it.
const LAYOUT: [(&str, &[&str]); 8] = [
    ("share/man/man1/demo.1", &["__man"]),
    ("share/man/man1/demo-alloc.1", &["__man", "alloc"]),
    ("share/man/man1/demo-trace.1", &["__man", "trace"]),
    ("share/man/man1/demo-top.1", &["__man", "top"]),
    (
        "share/man/man1/demo-completions.1",
        &["__man", "completions"],
    ),
    (
        "share/bash-completion/completions/demo",
        &["completions", "bash"],
    ),
    ("share/zsh/site-functions/_demo", &["completions", "zsh"]),
    (
        "share/fish/vendor_completions.d/demo.fish",
        &["completions", "fish"],
    ),
];

/// Builds demo in release mode and installs it under `prefix`; returns the installed files.
pub fn install(prefix: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if prefix.as_os_str().is_empty() || !prefix.is_absolute() {
        bail!(
            "the prefix {} is not an absolute path; give one such as /usr/local",
            prefix.display()
        );
    }
    if prefix.exists() && !prefix.is_dir() {
        bail!("the prefix {} is not a directory", prefix.display());
    }
    let (demo, _) = release_demo("install")?;
    let binary = prefix.join("bin/demo");
    create_parent(&binary)?;
    fs::copy(&demo, &binary)
        .with_context(|| format!("copy {} to {}", demo.display(), binary.display()))?;
    set_mode(&binary, 0o755)?;
    let mut installed = vec![binary];
    for (path, args) in LAYOUT {
        let target = prefix.join(path);
        create_parent(&target)?;
        let output = Command::new(&demo)
            .args(args)
            .output()
            .with_context(|| format!("run demo {}", args.join(" ")))?;
        if !output.status.success() || output.stdout.is_empty() {
            bail!(
                "`demo {}` did not write {path}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        fs::write(&target, &output.stdout)
            .with_context(|| format!("write {}", target.display()))?;
        set_mode(&target, 0o644)?;
        installed.push(target);
    }
    for file in &installed {
        println!("xtask: installed {}", file.display());
    }
    Ok(installed)
}

/// Installs into a fresh directory and checks the layout: every file there, the binary runs,
/// and `man -l` renders the page with its name and commands.
pub fn check() -> anyhow::Result<()> {
    let prefix = std::env::temp_dir().join(format!("demo-install-check-{}", std::process::id()));
    let _ = fs::remove_dir_all(&prefix);
    let checked = check_in(&prefix);
    let _ = fs::remove_dir_all(&prefix);
    checked
}

fn check_in(prefix: &Path) -> anyhow::Result<()> {
    let installed = install(prefix)?;
    let expected: Vec<PathBuf> = std::iter::once(prefix.join("bin/demo"))
        .chain(LAYOUT.iter().map(|(path, _)| prefix.join(path)))
        .collect();
    if installed != expected {
        bail!("install laid out {installed:?}, not {expected:?}");
    }
    let version = Command::new(prefix.join("bin/demo"))
        .arg("--version")
        .output()
        .context("run the installed demo")?;
    if !String::from_utf8_lossy(&version.stdout).starts_with("demo ") {
        bail!("the installed demo does not say its version");
    }
    let page = Command::new("man")
        .arg("-l")
        .arg(prefix.join("share/man/man1/demo.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .context("run man -l on the installed page (needs man-db)")?;
    let text = String::from_utf8_lossy(&page.stdout);
    for wanted in [
        "NAME",
        "demo",
        "SYNOPSIS",
        "SUBCOMMANDS",
        "alloc",
        "trace",
        "top",
    ] {
        if !text.contains(wanted) {
            bail!("man -l rendered the page without {wanted}:\n{text}");
        }
    }
    let alloc = Command::new("man")
        .arg("-l")
        .arg(prefix.join("share/man/man1/demo-alloc.1"))
        .env("MANPAGER", "cat")
        .output()
        .context("run man -l on demo-alloc(1)")?;
    if !String::from_utf8_lossy(&alloc.stdout).contains("fork-cow") {
        bail!("demo-alloc(1) does not list the walks");
    }
    let bash_path = prefix.join("share/bash-completion/completions/demo");
    let bash = fs::read_to_string(&bash_path).context("read the bash completion")?;
    if !bash.contains("complete") || !bash.contains("fork-cow") {
        bail!("the bash completion does not complete demo's walks");
    }
    run(Command::new("bash").arg("-n").arg(&bash_path))
        .context("check the bash completion's syntax")?;
    println!("xtask: install check passed");
    Ok(())
}

fn create_parent(path: &Path) -> anyhow::Result<()> {
    let parent = path.parent().unwrap_or(path);
    fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("set the mode of {}", path.display()))
}
