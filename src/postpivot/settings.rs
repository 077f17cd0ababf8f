//! How long post-pivot waits for each thing (W5: every wait is bounded),
//! read from `/etc/sprout/post-pivot.json` when it exists.
//!
//! Defaults (seconds): `config_medium` 1800, `primary_ip` 300,
//! `etcd_health` 60, `recert_image_pull` 600, `recert` 1200, `api` 1800,
//! `node_labels` 300, `command` 300 (any other single command),
//! `announce_every` 15, `attempts` 3 (starts before a failure is terminal;
//! keep it equal to the unit's `StartLimitBurst`). A file may set any
//! subset: `{"api": 3600}`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The settings file, below the run's root.
pub const SETTINGS_FILE: &str = "etc/sprout/post-pivot.json";

/// Every deadline of the flow, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub config_medium: u64,
    pub primary_ip: u64,
    pub etcd_health: u64,
    pub recert_image_pull: u64,
    pub recert: u64,
    pub api: u64,
    pub node_labels: u64,
    pub command: u64,
    pub announce_every: u64,
    /// Starts of the unit before a failure is terminal.
    pub attempts: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            config_medium: 1800,
            primary_ip: 300,
            etcd_health: 60,
            recert_image_pull: 600,
            recert: 1200,
            api: 1800,
            node_labels: 300,
            command: 300,
            announce_every: 15,
            attempts: 3,
        }
    }
}

impl Settings {
    /// The file under `root`, or the defaults when there is none.
    pub fn load(root: &Path) -> Result<Self> {
        let path = root.join(SETTINGS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "reading {}: expected a JSON object with some of the keys config_medium, \
                     primary_ip, etcd_health, recert_image_pull, recert, api, node_labels, \
                     command, announce_every (seconds) and attempts",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn secs(v: u64) -> Duration {
        Duration::from_secs(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_keeps_the_other_defaults_and_unknown_keys_are_refused() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Settings::load(d.path()).unwrap(), Settings::default());
        std::fs::create_dir_all(d.path().join("etc/sprout")).unwrap();
        std::fs::write(d.path().join(SETTINGS_FILE), r#"{"api": 7}"#).unwrap();
        let s = Settings::load(d.path()).unwrap();
        assert_eq!(s.api, 7);
        assert_eq!(s.recert, Settings::default().recert);
        std::fs::write(d.path().join(SETTINGS_FILE), r#"{"apii": 7}"#).unwrap();
        let e = Settings::load(d.path()).unwrap_err();
        assert!(format!("{e:#}").contains("post-pivot.json"), "{e:#}");
    }
}
