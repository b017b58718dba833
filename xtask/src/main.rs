//! `cargo xtask`: sets up a fresh machine, builds, runs demo as root, and runs every test.

mod bench;
mod command;
#[cfg(feature = "gen-pprof")]
mod gen_pprof;
mod install;
mod setup;
mod soak;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::command::{cargo, is_root, run, workspace_root};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test demo")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the build needs: LLVM dev files matching rustc, rust-src, bpf-linker.
    Setup,
    /// Set up, then build demo (with its eBPF programs).
    Build {
        /// Build with optimizations.
        #[arg(long)]
        release: bool,
    },
    /// Set up, build, and run demo as root (through sudo when needed).
    Run {
        /// Build with optimizations.
        #[arg(long)]
        release: bool,
        /// Arguments for demo.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Set up, then run fmt and clippy checks, unit tests, an install into a scratch prefix,
    /// and the privileged integration tests.
    Test,
    /// Set up, build in release mode, and install bin/demo, the man page
    /// (share/man/man1/demo.1) and the bash, zsh and fish completions under a prefix.
    Install {
        /// Where to install.
        #[arg(long, default_value = "/usr/local")]
        prefix: std::path::PathBuf,
    },
    /// Set up, build in release mode, and measure demo's cost on a fault-heavy workload beside
    /// bpftrace and perf (needs root): a table of median ratios, also written to
    /// target/bench/bench.json.
    Bench {
        /// Pages of the hot region the workload touches on each pass (16384 = 64 MiB).
        #[arg(long, default_value_t = 16_384, value_parser = clap::value_parser!(u64).range(1..=4_194_304))]
        pages: u64,
        /// Timed passes over the region per run.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        passes: u64,
        /// Alternating rounds; each runs every mode once.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=1000))]
        rounds: u64,
    },
    /// Set up, build in release mode, and run demo trace and demo top for a long time (needs
    /// root): their RSS over time, lost records and full maps; fails on growth or loss.
    Soak {
        /// How long to run.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1440))]
        minutes: u64,
    },
    /// Regenerate the pprof profile.proto types (demo-userspace/src/output/pprof/profile.rs)
    /// from the vendored schema; no protoc needed. Built with `--features gen-pprof` only:
    /// `cargo run --package xtask --features gen-pprof -- gen-pprof`.
    GenPprof,
}

/// Errors end in one sentence (the chain of causes joined), never a backtrace, whatever
/// RUST_BACKTRACE says.
fn main() -> std::process::ExitCode {
    match run_task(Cli::parse().task) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_task(task: Task) -> anyhow::Result<()> {
    match task {
        Task::Setup => setup::install_missing(),
        Task::Build { release } => {
            setup::install_missing()?;
            build(release)
        }
        Task::Run { release, args } => {
            setup::install_missing()?;
            build(release)?;
            let profile = if release { "release" } else { "debug" };
            let demo = workspace_root().join("target").join(profile).join("demo");
            let mut command = as_root(&demo.to_string_lossy());
            command.args(&args);
            run(&mut command).context("run demo")
        }
        Task::Soak { minutes } => {
            setup::install_missing()?;
            if !is_root() {
                anyhow::bail!(
                    "the soak loads eBPF programs and needs root; run `sudo cargo xtask soak`"
                );
            }
            soak::soak(&soak::SoakOptions { minutes })
        }
        #[cfg(feature = "gen-pprof")]
        Task::GenPprof => gen_pprof::generate(),
        #[cfg(not(feature = "gen-pprof"))]
        Task::GenPprof => anyhow::bail!(
            "gen-pprof was left out of this build of xtask: run `cargo run --package xtask --features gen-pprof -- gen-pprof`"
        ),
        Task::Test => {
            setup::install_missing()?;
            test()
        }
        Task::Install { prefix } => {
            setup::install_missing()?;
            install::install(&prefix).map(drop)
        }
        Task::Bench {
            pages,
            passes,
            rounds,
        } => {
            setup::install_missing()?;
            if !is_root() {
                anyhow::bail!(
                    "the benchmark loads eBPF programs and needs root; run `sudo cargo xtask bench`"
                );
            }
            bench::bench(&bench::BenchOptions {
                pages,
                passes,
                rounds: rounds as usize,
            })
        }
    }
}

fn build(release: bool) -> anyhow::Result<()> {
    let mut command = cargo(&["build", "--package", "demo-userspace"]);
    if release {
        command.arg("--release");
    }
    run(&mut command).context("build demo")
}

/// A command that runs `program` as root: directly when we are root, else through `sudo -E`.
fn as_root(program: &str) -> std::process::Command {
    if is_root() {
        std::process::Command::new(program)
    } else {
        let mut command = std::process::Command::new("sudo");
        command.args(["-E", "--", program]);
        command
    }
}

fn test() -> anyhow::Result<()> {
    run(&mut cargo(&["fmt", "--all", "--", "--check"])).context("check formatting")?;
    // Without --workspace, cargo works on the default members: everything but demo-ebpf, which
    // only builds for the BPF target (the loader's build script compiles it).
    run(&mut cargo(&[
        "clippy",
        "--all-targets",
        "--",
        "--deny",
        "warnings",
    ]))
    .context("run clippy")?;
    // The eBPF crate is checked for its own target; like its real build, that needs
    // `-Z build-std=core`, which RUSTC_BOOTSTRAP allows on the stable toolchain.
    run(cargo(&[
        "clippy",
        "--package",
        "demo-ebpf",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--target-dir",
        "target/bpf-clippy",
        "--",
        "--deny",
        "warnings",
    ])
    .env("RUSTC_BOOTSTRAP", "1"))
    .context("run clippy on the eBPF programs")?;
    run(&mut cargo(&["test", "--lib", "--bins"])).context("run the unit tests")?;
    install::check().context("check cargo xtask install")?;
    privileged_tests()
}

/// The integration tests load eBPF into the running kernel, so they need root. Under CI they are
/// mandatory: if they cannot run, the whole test run fails.
fn privileged_tests() -> anyhow::Result<()> {
    let ci = std::env::var("CI").is_ok_and(|value| value == "true");
    // Build the test binaries unprivileged, so root never writes into target/.
    let binaries = command::test_binaries("demo-userspace")?;
    if !is_root() && !command::sudo_works() {
        anyhow::bail!(
            "the privileged integration tests need root and sudo cannot run without a password{}; run `sudo cargo xtask test` or as root",
            if ci {
                " (CI=true makes them mandatory)"
            } else {
                ""
            }
        );
    }
    for binary in binaries {
        let mut command = as_root(&binary.to_string_lossy());
        command.args(["--test-threads=1"]);
        run(&mut command).context("run the privileged integration tests")?;
    }
    // The one-minute soak: no loss and no growth while demo trace and demo top run together.
    let xtask = std::env::current_exe().context("find the xtask binary")?;
    let mut soak = as_root(&xtask.to_string_lossy());
    soak.args(["soak", "--minutes", "1"]);
    run(&mut soak).context("run the one-minute soak")
}
