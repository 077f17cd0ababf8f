//! `image-based-config.yaml`: the per-cluster settings of the configuration ISO.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::diag::{Problem, Problems};
use super::{nmstate, validate};

pub const FILE: &str = "image-based-config.yaml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageBasedConfig {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub network_config: serde_json::Value,
    #[serde(default, rename = "additionalNTPSources")]
    pub additional_ntp_sources: Vec<String>,
    #[serde(default)]
    pub release_registry: String,
    #[serde(default)]
    pub node_labels: BTreeMap<String, String>,
    /// snake_case on purpose: upstream spells these two keys this way.
    #[serde(default, rename = "cluster_id")]
    pub cluster_id: String,
    #[serde(default, rename = "infra_id")]
    pub infra_id: String,
}

impl ImageBasedConfig {
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Problems::new(FILE);
        if !self.hostname.is_empty() {
            // LCA refuses these only at first boot, after the disk was written.
            if self.hostname == "localhost" {
                p.invalid(
                    "hostname",
                    &self.hostname,
                    "localhost is not a usable node name; give the node's real name",
                );
            } else if let Err(e) = validate::dns_subdomain(&self.hostname) {
                p.invalid("hostname", &self.hostname, &e);
            }
        }
        if !nmstate::is_empty(&self.network_config) {
            if !self.network_config.is_object() {
                p.invalid(
                    "networkConfig",
                    &self.network_config.to_string(),
                    "must be an nmstate network state (a mapping with `interfaces:` …)",
                );
            } else if let Err(e) = nmstate::validate(&self.network_config) {
                p.add("networkConfig", format!("Invalid value: {e}"));
            }
        }
        for (i, s) in self.additional_ntp_sources.iter().enumerate() {
            if let Err(e) = validate::ntp_source(s) {
                p.invalid(&format!("additionalNTPSources[{i}]"), s, &e);
            }
        }
        if !self.release_registry.is_empty()
            && let Err(e) = validate::repository_name(&self.release_registry)
        {
            p.invalid("releaseRegistry", &self.release_registry, &e);
        }
        for (k, v) in &self.node_labels {
            if let Err(e) = label_key(k) {
                p.invalid(&format!("nodeLabels.{k}"), k, &e);
            }
            if let Err(e) = label_value(v) {
                p.invalid(&format!("nodeLabels.{k}"), v, &e);
            }
        }
        if !self.cluster_id.is_empty() && uuid::Uuid::parse_str(&self.cluster_id).is_err() {
            p.invalid("cluster_id", &self.cluster_id, "must be a UUID such as 6c6f8f52-1b2c-4c1e-9a53-1f2f0b6f7c3d, or left out to generate one");
        }
        if !self.infra_id.is_empty()
            && (self.infra_id.len() > 27 || validate::dns_label(&self.infra_id).is_err())
        {
            p.invalid("infra_id", &self.infra_id, "must be a lower-case RFC 1123 label of at most 27 characters, or left out to generate one");
        }
        p.into_vec()
    }
}

/// A Kubernetes label key: `[prefix/]name`, name ≤ 63 of alphanumerics, `-_.`.
fn label_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && validate::dns_subdomain(p).is_err()
    {
        return Err(
            "the label key prefix must be a DNS subdomain, e.g. node-role.kubernetes.io/worker"
                .to_string(),
        );
    }
    if name.is_empty() || label_value(name).is_err() {
        return Err("a label key name must be 1-63 characters of a-z, A-Z, 0-9, '-', '_' and '.', starting and ending alphanumeric".to_string());
    }
    Ok(())
}

/// A Kubernetes label value: empty or ≤ 63 of alphanumerics, `-_.`, alphanumeric at both ends.
fn label_value(v: &str) -> Result<(), String> {
    let ok = v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err("a label value must be empty or 1-63 characters of a-z, A-Z, 0-9, '-', '_' and '.', starting and ending alphanumeric".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rules() {
        assert!(label_key("node-role.kubernetes.io/edge").is_ok());
        assert!(label_key("zone").is_ok());
        assert!(label_key("Bad_/x").is_err());
        assert!(label_key("a/").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("rack-1").is_ok());
        assert!(label_value("-x").is_err());
    }
}
