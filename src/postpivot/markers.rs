//! Upstream's RunOnce markers, `WD/<name>.done` (spec §3.4, §3.9).
//!
//! sprout keeps its own journal, but also reads and writes these so a run
//! `lca-cli post-pivot` started can be finished by sprout and the reverse.
//! Like upstream, a marker whose state cannot be read counts as done (a
//! step is never run twice because of an I/O error on its marker); unlike
//! upstream, a marker is written atomically.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::host::fs::{SECRET_MODE, write_atomic};

/// The steps upstream runs once, by their marker names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    SshKey,
    PullSecret,
    StaticNetwork,
    Recert,
    ClusterId,
    NodeLabels,
    LvmDevices,
}

impl Marker {
    pub const ALL: [Marker; 7] = [
        Marker::SshKey,
        Marker::PullSecret,
        Marker::StaticNetwork,
        Marker::Recert,
        Marker::ClusterId,
        Marker::NodeLabels,
        Marker::LvmDevices,
    ];

    /// Upstream's name (the file is `<name>.done`).
    pub fn name(self) -> &'static str {
        match self {
            Marker::SshKey => "setSSHKey",
            Marker::PullSecret => "pull-secret",
            Marker::StaticNetwork => "apply-static-network",
            Marker::Recert => "recert",
            Marker::ClusterId => "set_cluster_id",
            Marker::NodeLabels => "set_node_labels",
            Marker::LvmDevices => "recover_lvm_devices",
        }
    }

    /// `wd/<name>.done`.
    pub fn path(self, wd: &Path) -> PathBuf {
        wd.join(format!("{}.done", self.name()))
    }

    /// Whether the step is done as upstream decides it.
    pub fn is_done(self, wd: &Path) -> bool {
        match std::fs::symlink_metadata(self.path(wd)) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                tracing::warn!(
                    "cannot read {} ({e}); treating the step as done, as lca-cli does",
                    self.path(wd).display()
                );
                true
            }
        }
    }

    /// Records the step as done (an empty file).
    pub fn mark_done(self, wd: &Path) -> Result<()> {
        write_atomic(&self.path(wd), b"", SECRET_MODE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_upstreams_and_marking_is_seen() {
        let names: Vec<_> = Marker::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(
            names,
            [
                "setSSHKey",
                "pull-secret",
                "apply-static-network",
                "recert",
                "set_cluster_id",
                "set_node_labels",
                "recover_lvm_devices"
            ]
        );
        let wd = tempfile::tempdir().unwrap();
        assert!(!Marker::Recert.is_done(wd.path()));
        Marker::Recert.mark_done(wd.path()).unwrap();
        assert!(Marker::Recert.is_done(wd.path()));
        assert_eq!(std::fs::read(wd.path().join("recert.done")).unwrap(), b"");
        // One written by lca-cli (a plain empty file) counts the same.
        std::fs::write(wd.path().join("setSSHKey.done"), "").unwrap();
        assert!(Marker::SshKey.is_done(wd.path()));
        assert!(!Marker::PullSecret.is_done(wd.path()));
    }
}
