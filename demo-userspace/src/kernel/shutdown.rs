//! How a running trace or top is asked to stop: Ctrl-C (SIGINT) or SIGTERM. Either ends the
//! run the normal way, so the summary is printed and every program is detached.

use tokio::signal::unix::{SignalKind, signal};

/// Installs the SIGINT and SIGTERM handlers now, and returns a future that resolves when one
/// of the signals arrives. Installing at once matters: a signal that comes before the future
/// is first polled is still caught. If the handlers cannot be installed, the future never
/// resolves and the signals keep their default action (the kernel still detaches everything
/// when the process dies).
pub fn requested() -> impl Future<Output = ()> {
    let streams = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        let (Ok(mut interrupt), Ok(mut terminate)) = streams else {
            log::warn!("install the SIGINT/SIGTERM handlers failed; they will end demo abruptly");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
}

/// A hidden switch for the failure tests: `DEMO_DEBUG_PANIC=after-attach` makes demo panic once
/// its programs are attached, to prove that nothing of ours survives a panic.
pub fn debug_panic_after_attach() {
    if std::env::var("DEMO_DEBUG_PANIC").is_ok_and(|v| v == "after-attach") {
        panic!("DEMO_DEBUG_PANIC=after-attach");
    }
}
