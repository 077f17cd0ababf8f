//! `WD/recert_config.json`: what recert is told to change (spec §3.7).
//!
//! recert reads the file as YAML and rejects unknown keys, and older recert
//! images know fewer keys, so what matters is which keys appear: every key
//! is omitted when empty or false, except `kubeadmin_password_hash` (absent
//! means "leave the kubeadmin secret alone", empty means "delete it"; we
//! always want one of the two definite outcomes). The bytes are those of
//! upstream's Go `json.Marshal` of its `RecertConfig`: keys in its struct
//! order, compact, HTML-escaped, no trailing newline.
//!
//! Paths inside are node paths as recert's container sees them (the working
//! directory is bind-mounted at the same path), never the `--root` of a test
//! tree.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::kubeconfig_crypto as crypto;
use crate::api::go_json;
use crate::api::seed_cluster_info::SeedClusterInfo;
use crate::api::seed_reconfig::SeedReconfiguration;
use crate::host::fs::{SECRET_MODE, write_atomic};

/// The file's name in the working directory.
pub const FILE_NAME: &str = "recert_config.json";
/// The working directory on the node, as recert's container sees it too.
pub const NODE_WORKING_DIR: &str = "/opt/openshift";
/// Where recert writes its redacted summary (on success and on failure).
pub const SUMMARY_FILE: &str = "/var/tmp/recert-summary.yaml";
/// recert's etcd endpoint (the temporary etcd, host network).
pub const ETCD_ENDPOINT: &str = "localhost:2379";
/// The proxy trust bundle configmap that means "the user CA bundle".
pub const USER_CA_BUNDLE_CONFIGMAP: &str = "user-ca-bundle";
/// cert-manager keys to keep, under the working directory.
pub const CERT_MANAGER_DIR: &str = "cluster-configuration/certmanager-crypto";

// Container mount points (see `recert_run`).
const KUBELET: &str = "/kubelet";
const KUBERNETES: &str = "/kubernetes";
const MCD: &str = "/machine-config-daemon";
const MCS_CONTENT: &str = "/host-etc/mcs-machine-config-content.json";
const SSH: &str = "/ssh";

/// Upstream's `RecertConfig`, field for field in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecertConfig {
    #[serde(skip_serializing_if = "is_false")]
    pub dry_run: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub extend_expiration: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub force_expire: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub etcd_endpoint: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub cluster_rename: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ip: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub install_config: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_ca_bundle: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub proxy_trusted_ca_bundle: String,
    /// Never omitted; see the module comment.
    pub kubeadmin_password_hash: String,
    /// Unredacted: holds private keys. Never set by post-pivot.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub summary_file: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub summary_file_clean: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub crypto_dirs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub crypto_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cluster_customization_dirs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cluster_customization_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cn_san_replace_rules: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub use_key_rules: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub use_cert_rules: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pull_secret: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub chrony_config: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub regenerate_server_ssh_keys: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub machine_network_cidr: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub etcd_defrag: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub ip_change_only: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What the file is made from.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// The reconfiguration after steps 6d, 6f and 9: hostname resolved,
    /// `node_ips` resolved (legacy field folded in, or discovered), proxy
    /// completed (see [`super::effective`]).
    pub reconfig: &'a SeedReconfiguration,
    /// The seed's facts, `/var/seed_data/manifest.json`.
    pub seed: &'a SeedClusterInfo,
    /// Entries of `WD/kubeconfig-crypto` (sorted), `None` if it is absent.
    pub kubeconfig_crypto: Option<&'a [String]>,
    /// Entries of `WD/cluster-configuration/certmanager-crypto` (sorted).
    pub cert_manager_files: &'a [String],
}

impl RecertConfig {
    /// The IBI/IBU post-pivot configuration (upstream's
    /// `CreateRecertConfigFile`).
    pub fn for_post_pivot(i: Inputs<'_>) -> Result<Self> {
        let r = i.reconfig;
        let seed = i.seed;
        let seed_ips = seed.node_ips();
        let node_ips = super::effective::node_ips(r);
        let mut c = Self::base();
        c.cluster_rename = format!("{}:{}", r.cluster_name, r.base_domain);
        if !r.infra_id.is_empty() {
            c.cluster_rename = format!("{}:{}", c.cluster_rename, r.infra_id);
        }
        if r.hostname != seed.sno_hostname {
            c.hostname = r.hostname.clone();
        }
        if seed_ips != node_ips && !node_ips.is_empty() {
            c.ip = node_ips.clone();
        }
        if let (Some(p), Some(s)) = (&r.proxy, &r.status_proxy) {
            c.proxy = [
                &p.http_proxy,
                &p.https_proxy,
                &p.no_proxy,
                &s.http_proxy,
                &s.https_proxy,
                &s.no_proxy,
            ]
            .map(String::as_str)
            .join("|");
        }
        let atb = &r.additional_trust_bundle;
        c.user_ca_bundle = atb.user_ca_bundle.clone();
        c.proxy_trusted_ca_bundle =
            proxy_trusted_ca_bundle(&atb.proxy_configmap_name, &atb.proxy_configmap_bundle)?;
        c.install_config = r.install_config.clone();
        c.summary_file_clean = SUMMARY_FILE.to_string();
        c.extend_expiration = true;
        c.kubeadmin_password_hash = r.kubeadmin_password_hash.clone();
        c.pull_secret = r.pull_secret.clone();
        c.chrony_config = r.chrony_config.clone();
        if r.server_ssh_keys.is_empty() {
            // IBI: recert makes fresh host keys; IBU brings the old ones.
            c.regenerate_server_ssh_keys = SSH.to_string();
        }
        if let Some(entries) = i.kubeconfig_crypto {
            let dir = format!("{NODE_WORKING_DIR}/{}", crypto::DIR_NAME);
            let ingress = entries
                .iter()
                .find(|n| n.starts_with(crypto::INGRESS_KEY_PREFIX))
                .with_context(|| {
                    format!(
                        "finding the ingress key ({}*) in {dir}",
                        crypto::INGRESS_KEY_PREFIX
                    )
                })?;
            c.use_key_rules = vec![
                format!(
                    "kube-apiserver-lb-signer {dir}/{}",
                    crypto::LOADBALANCER_SIGNER_KEY
                ),
                format!(
                    "kube-apiserver-localhost-signer {dir}/{}",
                    crypto::LOCALHOST_SIGNER_KEY
                ),
                format!(
                    "kube-apiserver-service-network-signer {dir}/{}",
                    crypto::SERVICE_NETWORK_SIGNER_KEY
                ),
                format!("{} {dir}/{ingress}", seed.ingress_certificate_cn),
            ];
            c.use_cert_rules = vec![format!("{dir}/{}", crypto::ADMIN_CLIENT_CA)];
        }
        for name in i.cert_manager_files {
            if let Some(cn) = cert_manager_cn(name) {
                c.use_key_rules
                    .push(format!("{cn} {NODE_WORKING_DIR}/{CERT_MANAGER_DIR}/{name}"));
            }
        }
        let seed_full = format!("{}.{}", seed.cluster_name, seed.base_domain);
        let full = format!("{}.{}", r.cluster_name, r.base_domain);
        let (old_host, new_host) = (&seed.sno_hostname, &r.hostname);
        c.cn_san_replace_rules = vec![
            format!("system:node:{old_host},system:node:{new_host}"),
            format!("{old_host},{new_host}"),
            format!("api.{seed_full},api.{full}"),
            format!("api-int.{seed_full},api-int.{full}"),
            format!("*.apps.{seed_full},*.apps.{full}"),
        ];
        if seed_ips.len() == node_ips.len() {
            for (old, new) in seed_ips.iter().zip(&node_ips) {
                c.cn_san_replace_rules.push(format!("{old},{new}"));
            }
        }
        let new_ingress_cn = &r
            .kubeconfig_crypto_retention
            .ingress_crypto
            .ingress_certificate_cn;
        if !new_ingress_cn.is_empty() {
            c.cn_san_replace_rules
                .push(format!("{},{new_ingress_cn}", seed.ingress_certificate_cn));
        }
        if r.machine_networks != seed.machine_networks {
            c.machine_network_cidr = r.machine_networks.clone();
        }
        Ok(c)
    }

    /// What every recert run of LCA's shares.
    fn base() -> Self {
        let dirs = || [KUBELET, KUBERNETES, MCD].map(String::from).to_vec();
        Self {
            etcd_endpoint: ETCD_ENDPOINT.to_string(),
            crypto_dirs: dirs(),
            crypto_files: vec![MCS_CONTENT.to_string()],
            cluster_customization_dirs: dirs(),
            cluster_customization_files: [
                MCS_CONTENT,
                "/host-etc/mco/proxy.env",
                "/host-etc/chrony.conf",
            ]
            .map(String::from)
            .to_vec(),
            ..Self::default()
        }
    }

    /// The file's bytes: Go's encoding, no trailing newline.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        go_json::to_vec(self).context("encoding recert_config.json")
    }

    /// Writes the file (0600: it holds the pull secret) atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.to_bytes()?, SECRET_MODE)
    }
}

/// `proxy_trusted_ca_bundle`: `<name>:<bundle>`, or `user-ca-bundle:` for the
/// user bundle (recert takes it from `user_ca_bundle`), or empty for none.
pub fn proxy_trusted_ca_bundle(name: &str, bundle: &str) -> Result<String> {
    if name.is_empty() != bundle.is_empty() {
        bail!("both or neither of proxy configmap bundle and proxy configmap name must be set");
    }
    Ok(match name {
        "" => String::new(),
        USER_CA_BUNDLE_CONFIGMAP => format!("{USER_CA_BUNDLE_CONFIGMAP}:"),
        _ => format!("{name}:{bundle}"),
    })
}

/// The CN a cert-manager key file is for: `CN=<cn>__<namespace>_<name>.key`.
/// Other names are not keys to keep (upstream skips them the same way).
/// Like upstream, the CN is what lies between `CN=` and the first `__` of the
/// whole name, so `CN=x.key` (no `__`) gives `x.key`.
pub fn cert_manager_cn(file_name: &str) -> Option<&str> {
    if !file_name.ends_with(".key") {
        return None;
    }
    let rest = file_name.strip_prefix("CN=")?;
    let cn = rest.split_once("__").map_or(rest, |(cn, _)| cn);
    (!cn.is_empty()).then_some(cn)
}

#[cfg(test)]
#[path = "recert_config_tests.rs"]
mod tests;
