//! Compiles demo-ebpf for the BPF target so that the loader can embed the object file.

use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("read the workspace metadata")?;
    let ebpf = metadata
        .packages
        .iter()
        .find(|package| package.name.as_str() == "demo-ebpf")
        .ok_or_else(|| anyhow!("the workspace has no demo-ebpf package"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("demo-ebpf's manifest has no parent directory"))?;

    // The eBPF crate needs `-Z build-std=core`. The machine has only a stable toolchain, so the
    // inner cargo gets RUSTC_BOOTSTRAP=1 and the same toolchain that builds this crate.
    // SAFETY: build scripts are single-threaded, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "stable".to_owned());
    println!("cargo:rerun-if-env-changed=RUSTUP_TOOLCHAIN");

    aya_build::build_ebpf(
        [aya_build::Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(&toolchain),
    )
    .context("build the eBPF programs (run `cargo xtask setup` if bpf-linker is missing)")
}
