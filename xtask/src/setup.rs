//! Fresh-machine setup, idempotent: the Debian LLVM dev packages whose major version matches
//! rustc's LLVM, the tools the tests and the bench run (Prometheus among them, with its service
//! kept off), the rust-src component, and a pinned bpf-linker built against that LLVM.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::command::{describe, is_root, output, run, sudo_works};

/// The bpf-linker release known to work with aya 0.14 and rustc 1.95.
const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn install_missing() -> anyhow::Result<()> {
    let llvm = rustc_llvm_major()?;
    println!("xtask: rustc uses LLVM {llvm}");
    ensure_debian_packages(&[
        format!("llvm-{llvm}-dev"),
        format!("libpolly-{llvm}-dev"),
        "libzstd-dev".to_owned(),
        "zlib1g-dev".to_owned(),
        // The tests: tmux drives the terminal view, setpriv drops a capability and findmnt
        // names a filesystem, cc builds the C programs that are traced, man renders the
        // installed page.
        "tmux".to_owned(),
        "util-linux".to_owned(),
        "man-db".to_owned(),
        "gcc".to_owned(),
        // systemd-analyze checks the README's service unit.
        "systemd".to_owned(),
        // The bench compares demo with bpftrace and perf, and reads bpf_stats with bpftool;
        // the agreement tests hold demo's faults to perf's record of the same execution.
        "bpftrace".to_owned(),
        "linux-perf".to_owned(),
        "bpftool".to_owned(),
        // glibc's detached debug symbols, found by build-id, so that the symbolizer names its
        // internal functions (`_int_malloc`), which its own symbol table leaves out.
        "libc6-dbg".to_owned(),
        // The pprof test reads demo's `--format pprof` profiles with `go tool pprof`.
        "golang-go".to_owned(),
    ])?;
    // The metrics test scrapes demo with a real Prometheus, and checks the exposition with
    // promtool. The package's own service must not start: the test runs its own on loopback.
    ensure_without_services(&["prometheus"])?;
    ensure_rust_src()?;
    ensure_bpf_linker(llvm)?;
    println!("xtask: setup complete");
    Ok(())
}

/// Reads `LLVM version: 22.1.2` from `rustc -vV`.
fn rustc_llvm_major() -> anyhow::Result<u32> {
    let version = output(Command::new("rustc").arg("-vV")).context("run `rustc -vV`")?;
    parse_llvm_major(&version).context("find the LLVM version in `rustc -vV`")
}

fn parse_llvm_major(rustc_version: &str) -> Option<u32> {
    rustc_version
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))?
        .split('.')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Where Debian's maintainer scripts ask whether a service may start (policy-rc.d(8)); exit
/// status 101 says no. invoke-rc.d and deb-systemd-invoke both obey it.
const POLICY_RC_D: &str = "/usr/sbin/policy-rc.d";

/// Installs `packages` without starting, or enabling for the next boot, the services they
/// bring.
fn ensure_without_services(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<String> = packages
        .iter()
        .filter(|package| !debian_package_installed(package))
        .map(|&package| package.to_owned())
        .collect();
    if missing.is_empty() {
        println!("xtask: Debian packages present: {}", packages.join(" "));
        return Ok(());
    }
    let own_policy = !std::path::Path::new(POLICY_RC_D).exists();
    if own_policy {
        run(&mut privileged(&[
            "sh",
            "-c",
            &format!("printf '#!/bin/sh\\nexit 101\\n' > {POLICY_RC_D} && chmod 755 {POLICY_RC_D}"),
        ]))
        .context("keep services from starting during the install")?;
    }
    let installed = ensure_debian_packages(&missing);
    if own_policy {
        run(&mut privileged(&["rm", "-f", POLICY_RC_D]))
            .context("remove the temporary policy-rc.d")?;
    }
    installed?;
    // Under systemd the units are enabled for the next boot even though they did not start.
    if std::path::Path::new("/run/systemd/system").exists() {
        for package in &missing {
            run(&mut privileged(&[
                "systemctl",
                "disable",
                "--now",
                &format!("{package}.service"),
            ]))
            .with_context(|| format!("keep the {package} service off"))?;
        }
    }
    Ok(())
}

/// `args` as root: directly when xtask is root, else through `sudo -n`.
fn privileged(args: &[&str]) -> Command {
    let mut command = if is_root() {
        Command::new(args[0])
    } else {
        let mut sudo = Command::new("sudo");
        sudo.arg("-n").arg(args[0]);
        sudo
    };
    command
        .args(&args[1..])
        .env("DEBIAN_FRONTEND", "noninteractive");
    command
}

fn ensure_debian_packages(packages: &[String]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .map(String::as_str)
        .filter(|package| !debian_package_installed(package))
        .collect();
    if missing.is_empty() {
        println!("xtask: Debian packages present: {}", packages.join(" "));
        return Ok(());
    }
    if output(Command::new("apt-get").arg("--version")).is_none() {
        bail!(
            "this is not a Debian-like system; install the LLVM development files for LLVM {} yourself: {}",
            packages[0],
            missing.join(" ")
        );
    }
    let mut update = privileged(&["apt-get", "update"]);
    let mut install_args = vec!["apt-get", "install", "-y", "--no-install-recommends"];
    install_args.extend(&missing);
    let mut install = privileged(&install_args);
    if !is_root() && !sudo_works() {
        bail!(
            "missing Debian packages and no root to install them; run:\n  sudo {}\n  sudo {}",
            describe(&update),
            describe(&install)
        );
    }
    println!("xtask: installing Debian packages: {}", missing.join(" "));
    run(&mut update)?;
    run(&mut install)
}

fn debian_package_installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.trim() == "install ok installed")
}

fn ensure_rust_src() -> anyhow::Result<()> {
    let installed = output(Command::new("rustup").args(["component", "list", "--installed"]))
        .context("list rustup components")?;
    if installed.lines().any(|line| line.starts_with("rust-src")) {
        println!("xtask: rust-src present");
        return Ok(());
    }
    run(Command::new("rustup").args(["component", "add", "rust-src"]))
}

fn ensure_bpf_linker(llvm: u32) -> anyhow::Result<()> {
    let installed = output(Command::new("bpf-linker").arg("--version"));
    if installed
        .as_deref()
        .is_some_and(|version| version.contains(BPF_LINKER_VERSION))
    {
        println!("xtask: bpf-linker {BPF_LINKER_VERSION} present");
        return Ok(());
    }
    // Without LLVM_PREFIX the build finds the distribution's default llvm-config, which may be an
    // older LLVM than rustc's, and linking fails.
    run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args([
                "install",
                &format!("bpf-linker@{BPF_LINKER_VERSION}"),
                "--locked",
                "--no-default-features",
                "--features",
                &format!("llvm-{llvm}"),
            ])
            .env("LLVM_PREFIX", format!("/usr/lib/llvm-{llvm}")),
    )
    .context("install bpf-linker")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_llvm_major_from_rustc() {
        let text = "rustc 1.95.0 (59807616e 2026-04-14)\nhost: x86_64-unknown-linux-gnu\nLLVM version: 22.1.2\n";
        assert_eq!(parse_llvm_major(text), Some(22));
        assert_eq!(parse_llvm_major("rustc 1.95.0\n"), None);
    }
}
