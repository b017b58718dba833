//! What follows the full-screen view: a process chosen in it to trace takes over this one.

use anyhow::Context as _;

use crate::output::tui::app::Request;

/// Acts on the request that ended the view: `demo trace --pid` for a chosen process replaces
/// this process (the view is restored by then), anything else ends the run.
pub(super) fn follow(request: Request) -> anyhow::Result<()> {
    if let Request::TracePid(pid) = request {
        use std::os::unix::process::CommandExt as _;
        let error = std::process::Command::new("/proc/self/exe")
            .args(["trace", "--tui", "--pid", &pid.to_string()])
            .exec();
        return Err(error).context("start demo trace --pid for the chosen process");
    }
    Ok(())
}
