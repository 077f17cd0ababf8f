//! Reading what post-pivot works from (spec §3.4 steps 2–3) and checking it
//! before anything changes: the one call the flow makes before its first
//! side effect.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::discovery::MANIFEST;
use super::validate::{self, CertManagerKey};
use crate::api::seed_cluster_info::SeedClusterInfo;
use crate::api::seed_reconfig::SeedReconfiguration;

/// The seed's facts on the node.
pub const SEED_INFO: &str = "/var/seed_data/manifest.json";
/// cert-manager keys to keep, under the working directory.
pub const CERT_MANAGER_DIR: &str = super::recert_config::CERT_MANAGER_DIR;

/// Everything read, validated.
#[derive(Debug, Clone)]
pub struct Checked {
    /// As read; [`super::effective`] derives what the steps use.
    pub reconfig: SeedReconfiguration,
    pub seed: SeedClusterInfo,
    pub cert_manager_keys: Vec<CertManagerKey>,
}

/// `path` under `root` (`/` on the node, a copied tree with `--root`).
pub fn node_path(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Parses a document LCA reads with its YAML-or-JSON reader: JSON first
/// (what every producer writes), YAML otherwise; unknown keys ignored.
pub fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(json) => yaml_serde::from_str(text)
            .map_err(|yaml| anyhow::anyhow!("not valid JSON ({json}) nor YAML ({yaml})")),
    }
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The hostname the kernel has now (for step 6d, after NetworkManager ran): on the node the real one; in a copied
/// tree (`--root` other than `/`) its `etc/hostname`.
pub fn kernel_hostname(root: &Path) -> Result<String> {
    if root == Path::new("/") {
        let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("reading the hostname from /proc/sys/kernel/hostname")?;
        return Ok(h.trim().to_string());
    }
    let path = root.join("etc/hostname");
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(t.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Reads the seed facts, the reconfiguration and the cert-manager keys
/// under `root` and validates them (an empty `hostname` is checked at step
/// 6d with [`validate::resolved_hostname`] and [`kernel_hostname`]); reads only, so on `Err` nothing has
/// changed. An invalid configuration is an `api::diag::InvalidInput` error
/// listing every problem.
pub fn read_and_check(root: &Path, working_dir: &str) -> Result<Checked> {
    let seed: SeedClusterInfo = read(&node_path(root, SEED_INFO))?;
    let wd = node_path(root, working_dir);
    let reconfig: SeedReconfiguration = read(&wd.join(MANIFEST))?;
    let cert_manager_keys = validate::read_cert_manager_keys(&wd.join(CERT_MANAGER_DIR))?;
    validate::validate(validate::Inputs {
        reconfig: &reconfig,
        seed: &seed,
        cert_manager_keys: &cert_manager_keys,
    })?;
    Ok(Checked {
        reconfig,
        seed,
        cert_manager_keys,
    })
}

#[cfg(test)]
#[path = "inputs_tests.rs"]
mod tests;
