//! Stopping on SIGTERM / SIGINT without leaving things behind.
//!
//! systemd stops a unit with SIGTERM (and SIGKILL after `TimeoutStopSec`).
//! The default action would end sprout at once, skipping every `Drop`: the
//! temporary etcd would keep listening unauthenticated on the node. So
//! [`install`] replaces the default action with a handler that only records
//! the signal; every wait in sprout sleeps through [`sleep`] or polls
//! [`check`], which turn the request into an [`Interrupted`] error. That
//! error unwinds normally through the callers, guards such as
//! [`super::etcd::TempEtcd`] clean up in `Drop`, and `main` exits non-zero.
//!
//! A process that never calls [`install`] keeps the default action.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signal that asked us to stop; 0 while none did.
static REQUESTED: AtomicI32 = AtomicI32::new(0);

/// A wait ended early because the process was asked to stop.
#[derive(Debug, thiserror::Error)]
#[error("stopped by {0} before the work was done; cleaned up what was started")]
pub struct Interrupted(pub Signal);

extern "C" fn record(sig: std::ffi::c_int) {
    // Only an atomic store: async-signal-safe.
    REQUESTED.store(sig, Ordering::SeqCst);
}

/// Makes SIGTERM and SIGINT set the stop request instead of ending the
/// process. Idempotent.
pub fn install() -> Result<()> {
    // No SA_RESTART: a blocking read or wait returns EINTR, so code stuck in
    // one gets a chance to look at the flag.
    let action = SigAction::new(
        SigHandler::Handler(record),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores into an atomic, which is
        // async-signal-safe; no other code in sprout installs handlers for
        // these signals.
        unsafe { signal::sigaction(sig, &action) }
            .with_context(|| format!("installing the {sig} handler"))?;
    }
    Ok(())
}

/// The signal that asked us to stop, if one did.
pub fn requested() -> Option<Signal> {
    match REQUESTED.load(Ordering::SeqCst) {
        0 => None,
        n => Signal::try_from(n).ok(),
    }
}

/// `Err(Interrupted)` once a stop was requested.
pub fn check() -> Result<(), Interrupted> {
    match requested() {
        Some(sig) => Err(Interrupted(sig)),
        None => Ok(()),
    }
}

/// Sleeps for `d`, waking every 100 ms to look for a stop request.
pub fn sleep(d: Duration) -> Result<(), Interrupted> {
    let end = Instant::now() + d;
    loop {
        check()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(100)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_becomes_an_interrupted_error() {
        // Runs in its own process: the flag is process-wide and would stop
        // the other tests' waits.
        if std::env::var_os("SPROUT_SHUTDOWN_CHILD").is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "host::shutdown::tests::a_signal_becomes_an_interrupted_error",
                    "--nocapture",
                ])
                .env("SPROUT_SHUTDOWN_CHILD", "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "{text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(text.contains("1 passed"), "{text}");
            return;
        }
        install().unwrap();
        assert!(check().is_ok());
        signal::raise(Signal::SIGTERM).unwrap();
        // Still alive: the handler took it.
        let e = sleep(Duration::from_secs(30)).unwrap_err();
        assert_eq!(e.0, Signal::SIGTERM);
        assert!(e.to_string().contains("SIGTERM"), "{e}");
    }
}
