//! What every privileged integration test needs: the real `demo` binary, and root.

pub const DEMO: &str = env!("CARGO_BIN_EXE_demo");

pub fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "the privileged tests load eBPF programs and need root; run them with `cargo xtask test`"
    );
}
