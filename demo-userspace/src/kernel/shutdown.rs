//! How a running trace or top is asked to stop: Ctrl-C (SIGINT) or SIGTERM. Either ends the
//! run the normal way, so the summary is printed and every program is detached.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::signal::unix::{SignalKind, signal};

/// Set by the signal handler itself, so code that waits outside the runtime (a report whose
/// reader does not read) sees a stop request while the runtime cannot run.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Has SIGINT or SIGTERM arrived since [`watch`]?
pub fn is_requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Notes SIGINT and SIGTERM in [`is_requested`], beside the runtime's own handlers (the
/// registry runs every handler registered for a signal). Call once, early.
pub fn watch() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let registered = unsafe {
            signal_hook_registry::register(signal, || REQUESTED.store(true, Ordering::Relaxed))
        };
        if let Err(error) = registered {
            log::warn!("watch for signal {signal} failed ({error}): a blocked report may delay it");
        }
    }
}

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
        // A signal taken before these handlers were installed was seen by `watch` alone.
        if is_requested() {
            return;
        }
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
