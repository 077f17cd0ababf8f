//! `SeedClusterInfo`: what the Lifecycle Agent records about the cluster a
//! seed image was made from. The same JSON is the seed's `manifest.json`,
//! `var/seed_data/manifest.json` inside `var.tgz`, and the value of the image
//! label `com.openshift.lifecycle-agent.seed_cluster_info`.
//!
//! Field order and omission rules are those of LCA's Go type: everything is
//! omitted when empty except `has_proxy`, `has_fips` and
//! `additionalTrustBundle` (written as `null` when absent). Reading is
//! lenient like LCA's: unknown keys are ignored, missing keys are empty.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedClusterInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub seed_cluster_ocp_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_domain: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    /// Deprecated upstream in favour of `node_ips`; old seeds only have this.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_ip: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_registry: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub mirror_registry_configured: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sno_hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub recert_image_pull_spec: String,
    #[serde(default)]
    pub has_proxy: bool,
    #[serde(
        rename = "cluster_network_cidr",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cluster_networks: Vec<String>,
    #[serde(
        rename = "service_network_cidr",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub service_networks: Vec<String>,
    #[serde(default)]
    pub has_fips: bool,
    #[serde(rename = "additionalTrustBundle", default)]
    pub additional_trust_bundle: Option<SeedTrustBundle>,
    /// `What=` of the seed's `var-lib-containers.mount`, e.g.
    /// `/dev/disk/by-partlabel/var-lib-containers`; empty when the seed
    /// cluster kept its container storage on the root filesystem.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_storage_mountpoint_target: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ingress_certificate_cn: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machine_networks: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedTrustBundle {
    #[serde(default)]
    pub has_user_ca_bundle: bool,
    #[serde(default)]
    pub proxy_configmap_name: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The prefix of a `container_storage_mountpoint_target` that names a GPT
/// partition; what follows is the partition label IBI must create.
pub const PARTLABEL_PREFIX: &str = "/dev/disk/by-partlabel/";

impl SeedClusterInfo {
    /// The seed node's IPs, from `node_ips` or the legacy `node_ip`.
    pub fn node_ips(&self) -> Vec<String> {
        if !self.node_ips.is_empty() {
            self.node_ips.clone()
        } else if !self.node_ip.is_empty() {
            vec![self.node_ip.clone()]
        } else {
            Vec::new()
        }
    }

    /// The GPT partition label the installation's extra partition must have
    /// for the seed's `var-lib-containers.mount` to find it, if the seed
    /// mounts its container storage by partition label.
    pub fn extra_partition_label(&self) -> Option<&str> {
        self.container_storage_mountpoint_target
            .strip_prefix(PARTLABEL_PREFIX)
            .filter(|l| !l.is_empty() && !l.contains('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_lca_order_and_omissions() {
        let info = SeedClusterInfo {
            seed_cluster_ocp_version: "4.16.0".into(),
            cluster_name: "seed".into(),
            base_domain: "example.com".into(),
            node_ips: vec!["192.0.2.10".into()],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&info).unwrap(),
            r#"{"seed_cluster_ocp_version":"4.16.0","base_domain":"example.com","cluster_name":"seed","node_ips":["192.0.2.10"],"has_proxy":false,"has_fips":false,"additionalTrustBundle":null}"#
        );
    }

    #[test]
    fn reads_leniently() {
        let info: SeedClusterInfo =
            serde_json::from_str(r#"{"node_ip":"10.0.0.1","future_field":1}"#).unwrap();
        assert_eq!(info.node_ips(), ["10.0.0.1"]);
        assert!(!info.has_fips);
    }

    #[test]
    fn partition_label_from_mount_target() {
        let mut info = SeedClusterInfo {
            container_storage_mountpoint_target: "/dev/disk/by-partlabel/var-lib-containers".into(),
            ..Default::default()
        };
        assert_eq!(info.extra_partition_label(), Some("var-lib-containers"));
        info.container_storage_mountpoint_target = "/dev/disk/by-uuid/abc".into();
        assert_eq!(info.extra_partition_label(), None);
        info.container_storage_mountpoint_target.clear();
        assert_eq!(info.extra_partition_label(), None);
    }
}
