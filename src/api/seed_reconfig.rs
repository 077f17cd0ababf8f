//! `cluster-configuration/manifest.json`: the SeedReconfiguration document
//! that the first-boot agent applies to the seed cluster.
//!
//! Field order and omission rules are those of the OpenShift installer's copy
//! of the type, so the JSON sprout writes is the JSON the installer writes.
//! Two struct-typed members (`additionalTrustBundle` and
//! `KubeconfigCryptoRetention`) are always present, as Go emits them even
//! when empty. Readers must not depend on key order (LCA does not).
//!
//! Every key any lca-cli from 4.16 on reads is kept, including the
//! single-valued `machine_network` and `node_ip` that releases before 4.20
//! read instead of the lists (docs/compatibility.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::install_config::Proxy;

/// The only `api_version` there is.
pub const SEED_RECONFIGURATION_VERSION: u32 = 1;
/// The volume label of the configuration ISO.
pub const BLOCK_DEVICE_LABEL: &str = super::contract::config_iso::LABEL;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeedReconfiguration {
    #[serde(rename = "additionalTrustBundle", default)]
    pub additional_trust_bundle: AdditionalTrustBundle,
    pub api_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_domain: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chrony_config: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub infra_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kubeadmin_password_hash: String,
    #[serde(rename = "KubeconfigCryptoRetention", default)]
    pub kubeconfig_crypto_retention: KubeConfigCryptoRetention,
    /// What lca-cli 4.16–4.19 read (4.20+ only when the list is empty): the
    /// first of `machine_networks`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub machine_network: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machine_networks: Vec<String>,
    /// What lca-cli 4.16–4.19 read (4.20+ only when the list is empty): the
    /// first of `node_ips`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_ip: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub raw_nm_state_config: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_registry: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ssh_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pull_secret: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_labels: BTreeMap<String, String>,
    // Present in LCA's type; never produced by the config-image builder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_ssh_keys: Vec<ServerSshKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_proxy: Option<Proxy>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub install_config: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalTrustBundle {
    #[serde(default)]
    pub user_ca_bundle: String,
    #[serde(default)]
    pub proxy_configmap_name: String,
    #[serde(default)]
    pub proxy_configmap_bundle: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeConfigCryptoRetention {
    #[serde(rename = "KubeAPICrypto", default)]
    pub kube_api_crypto: KubeApiCrypto,
    /// Three `s`: the upstream field name, misspelt, is the wire key.
    #[serde(rename = "IngresssCrypto", default)]
    pub ingress_crypto: IngressCrypto,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeApiCrypto {
    #[serde(rename = "ServingCrypto", default)]
    pub serving_crypto: ServingCrypto,
    #[serde(rename = "ClientAuthCrypto", default)]
    pub client_auth_crypto: ClientAuthCrypto,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServingCrypto {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub localhost_signer_private_key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_network_signer_private_key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub loadbalancer_external_signer_private_key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAuthCrypto {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub admin_ca_certificate: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressCrypto {
    /// The ingress signer's private key (upstream's name says "ca").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ingress_ca: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ingress_certificate_cn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSshKey {
    pub file_name: String,
    pub file_content: String,
}

/// `cluster-configuration/manifests/image-digest-mirror-set.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDigestMirrorSet {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub metadata: MirrorSetMetadata,
    pub spec: MirrorSetSpec,
    pub status: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorSetMetadata {
    pub name: &'static str,
    /// Go's ObjectMeta always writes it, as null.
    pub creation_timestamp: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorSetSpec {
    pub image_digest_mirrors: Vec<ImageDigestMirror>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageDigestMirror {
    pub source: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror_source_policy: Option<super::install_config::MirrorSourcePolicy>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_keeps_the_struct_members() {
        let s = SeedReconfiguration {
            api_version: SEED_RECONFIGURATION_VERSION,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"additionalTrustBundle":{"userCaBundle":"","proxyConfigmapName":"","proxyConfigmapBundle":""},"api_version":1,"KubeconfigCryptoRetention":{"KubeAPICrypto":{"ServingCrypto":{},"ClientAuthCrypto":{}},"IngresssCrypto":{}}}"#
        );
    }

    #[test]
    fn round_trips() {
        let mut s = SeedReconfiguration {
            api_version: 1,
            cluster_name: "sno".into(),
            ..Default::default()
        };
        s.kubeconfig_crypto_retention
            .ingress_crypto
            .ingress_certificate_cn = "ingress-operator@1".into();
        let back: SeedReconfiguration =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
