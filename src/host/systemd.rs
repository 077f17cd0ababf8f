//! Readiness and status for systemd (`sd_notify`), when run as a
//! `Type=notify` unit; a no-op anywhere else.

use libsystemd::daemon::{self, NotifyState};

/// Tells systemd the service is up, with a first status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status.to_owned())]);
}

/// Sets the unit's status line (`systemctl status`, `StatusText=`).
pub fn status(status: &str) {
    send(&[NotifyState::Status(status.to_owned())]);
}

fn send(state: &[NotifyState]) {
    // Without NOTIFY_SOCKET this returns Ok(false). A failure to reach
    // systemd must not stop the work, and there is no one else to tell.
    if let Err(e) = daemon::notify(false, state) {
        tracing::debug!("sd_notify failed: {e}");
    }
}
