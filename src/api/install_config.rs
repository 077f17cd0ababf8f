//! `install-config.yaml`, as far as image-based installation reads it.
//!
//! Decoding is strict: every key the OpenShift installer accepts at the
//! levels modelled here is known, anything else is reported. Only single-node
//! clusters on `platform: none` can be installed from a seed, so the rules of
//! the upstream image-based installer are applied on top of the generic ones.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::diag::{Problem, Problems};
use super::validate;

pub const FILE: &str = "install-config.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallConfig {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub base_domain: String,
    #[serde(default)]
    pub pull_secret: String,
    #[serde(default)]
    pub ssh_key: String,
    #[serde(default)]
    pub additional_trust_bundle: String,
    pub additional_trust_bundle_policy: Option<TrustBundlePolicy>,
    pub proxy: Option<Proxy>,
    pub networking: Option<Networking>,
    pub control_plane: Option<MachinePool>,
    pub compute: Option<Vec<MachinePool>>,
    pub platform: Option<BTreeMap<String, serde_json::Value>>,
    pub fips: Option<bool>,
    pub publish: Option<String>,
    pub feature_set: Option<String>,
    pub feature_gates: Option<Vec<String>>,
    pub capabilities: Option<serde_json::Value>,
    pub cpu_partitioning_mode: Option<String>,
    pub credentials_mode: Option<String>,
    pub bootstrap_in_place: Option<serde_json::Value>,
    pub image_content_sources: Option<Vec<ImageDigestSource>>,
    pub image_digest_sources: Option<Vec<ImageDigestSource>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    pub namespace: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub creation_timestamp: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TrustBundlePolicy {
    Proxyonly,
    Always,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Proxy {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub http_proxy: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub https_proxy: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub no_proxy: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Networking {
    pub network_type: Option<String>,
    #[serde(default)]
    pub machine_network: Vec<MachineNetwork>,
    #[serde(default)]
    pub cluster_network: Vec<ClusterNetwork>,
    #[serde(default)]
    pub service_network: Vec<String>,
    #[serde(rename = "clusterNetworkMTU")]
    pub cluster_network_mtu: Option<u32>,
    pub ovn_kubernetes_config: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineNetwork {
    pub cidr: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterNetwork {
    pub cidr: String,
    pub host_prefix: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MachinePool {
    pub name: Option<String>,
    pub replicas: Option<i64>,
    pub hyperthreading: Option<String>,
    pub architecture: Option<String>,
    pub platform: Option<serde_json::Value>,
    pub fencing: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageDigestSource {
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub mirrors: Vec<String>,
    pub source_policy: Option<MirrorSourcePolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum MirrorSourcePolicy {
    NeverContactSource,
    AllowContactingSource,
}

/// Platforms the installer knows; only `none` is supported by image-based installation.
const KNOWN_PLATFORMS: &[&str] = &[
    "aws",
    "azure",
    "baremetal",
    "external",
    "gcp",
    "ibmcloud",
    "none",
    "nutanix",
    "openstack",
    "powervs",
    "vsphere",
];

impl InstallConfig {
    /// Machine network CIDRs in file order.
    pub fn machine_networks(&self) -> Vec<String> {
        self.networking
            .iter()
            .flat_map(|n| n.machine_network.iter().map(|m| m.cidr.clone()))
            .collect()
    }

    /// The mirror configuration, from `imageDigestSources` or the deprecated
    /// `imageContentSources` it replaces.
    pub fn digest_sources(&self) -> &[ImageDigestSource] {
        self.image_digest_sources
            .as_deref()
            .or(self.image_content_sources.as_deref())
            .unwrap_or_default()
    }

    /// Checks every rule; returns all problems found.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Problems::new(FILE);
        match self.api_version.as_deref() {
            None | Some("") => p.required(
                "apiVersion",
                "install-config version required; set apiVersion: v1",
            ),
            Some("v1") => {}
            Some(v) => p.invalid("apiVersion", v, "install-config version must be \"v1\""),
        }
        if self.metadata.name.is_empty() {
            p.required(
                "metadata.name",
                "cluster name required; set metadata.name to the cluster's name",
            );
        } else if let Err(e) = validate::dns_label(&self.metadata.name) {
            p.invalid("metadata.name", &self.metadata.name, &e);
        }
        if self.base_domain.is_empty() {
            p.required(
                "baseDomain",
                "base domain required, e.g. baseDomain: example.com",
            );
        } else if let Err(e) = validate::dns_subdomain(&self.base_domain) {
            p.invalid("baseDomain", &self.base_domain, &e);
        }
        validate::credentials(
            &mut p,
            &self.pull_secret,
            &self.ssh_key,
            &self.additional_trust_bundle,
        );
        self.validate_platform(&mut p);
        self.validate_replicas(&mut p);
        self.validate_networking(&mut p);
        if let Some(proxy) = &self.proxy {
            validate_proxy(&mut p, proxy);
            if self.machine_networks().is_empty() {
                // LCA refuses this only after it changed the node's network (W4).
                p.required(
                    "networking.machineNetwork",
                    "a proxy is configured, so the node's machine network must be given; \
                     add networking.machineNetwork with the node's subnet",
                );
            }
        }
        if let Some(fs) = self.feature_set.as_deref()
            && !fs.is_empty()
            && fs != "Default"
        {
            p.unsupported("featureSet", fs, &["Default"]);
        }
        let field = if self.image_digest_sources.is_some() {
            "imageDigestSources"
        } else {
            "imageContentSources"
        };
        validate_digest_sources(&mut p, field, self.digest_sources());
        p.into_vec()
    }

    fn validate_platform(&self, p: &mut Problems) {
        let Some(platform) = &self.platform else {
            p.required(
                "platform",
                "image-based installation needs `platform: none: {}`",
            );
            return;
        };
        if platform.is_empty() {
            p.required(
                "platform",
                "image-based installation needs `platform: none: {}`",
            );
        }
        for (name, value) in platform {
            if !KNOWN_PLATFORMS.contains(&name.as_str()) {
                p.add(
                    format!("platform.{name}"),
                    format!("unknown field `{name}`; image-based installation needs `platform: none: {{}}`"),
                );
            } else if name != "none" {
                p.unsupported("platform", name, &["none"]);
            } else if !(value.is_null() || value.as_object().is_some_and(|o| o.is_empty())) {
                p.invalid(
                    "platform.none",
                    &value.to_string(),
                    "platform none takes no settings; write `none: {}`",
                );
            }
        }
    }

    fn validate_replicas(&self, p: &mut Problems) {
        let cp = self.control_plane.as_ref().and_then(|c| c.replicas);
        if cp != Some(1) {
            // Upstream defaults an omitted count to 3, so it must be explicit.
            let found = cp.map_or("none (the default is 3)".to_string(), |n| n.to_string());
            p.required(
                "controlPlane.replicas",
                &format!(
                    "Only Single Node OpenShift (SNO) is supported, total number of ControlPlane.Replicas must be 1. Found {found}; set controlPlane.replicas: 1"
                ),
            );
        }
        let compute = self
            .compute
            .as_ref()
            .map(|pools| pools.iter().map(|c| c.replicas.unwrap_or(3)).sum::<i64>());
        if compute != Some(0) {
            let found = compute.map_or("none (the default is 3)".to_string(), |n| n.to_string());
            p.required(
                "compute",
                &format!(
                    "Total number of Compute.Replicas must be 0 when ControlPlane.Replicas is 1 for platform none. Found {found}; set compute: [{{name: worker, replicas: 0}}]"
                ),
            );
        }
    }

    fn validate_networking(&self, p: &mut Problems) {
        let Some(n) = &self.networking else { return };
        if let Some(t) = n.network_type.as_deref()
            && t != "OVNKubernetes"
        {
            p.invalid(
                "networking.networkType",
                t,
                "Only OVNKubernetes network type is allowed for Single Node OpenShift (SNO) cluster",
            );
        }
        if n.machine_network.len() > 2 {
            p.add(
                "networking.machineNetwork",
                format!(
                    "Too many: {}: must have at most 2 items (one IPv4 and one IPv6 for dual-stack)",
                    n.machine_network.len()
                ),
            );
        }
        let mut families = Vec::new();
        for (i, m) in n.machine_network.iter().enumerate() {
            match validate::cidr(&m.cidr) {
                Ok(net) => families.push(matches!(net, ipnet::IpNet::V4(_))),
                Err(e) => p.invalid(&format!("networking.machineNetwork[{i}].cidr"), &m.cidr, &e),
            }
        }
        if families.len() == 2 && families[0] == families[1] {
            p.invalid(
                "networking.machineNetwork",
                &self.machine_networks().join(","),
                "two machine networks must be one IPv4 and one IPv6 (dual-stack)",
            );
        }
        for (i, c) in n.cluster_network.iter().enumerate() {
            if let Err(e) = validate::cidr(&c.cidr) {
                p.invalid(&format!("networking.clusterNetwork[{i}].cidr"), &c.cidr, &e);
            }
        }
        for (i, s) in n.service_network.iter().enumerate() {
            if let Err(e) = validate::cidr(s) {
                p.invalid(&format!("networking.serviceNetwork[{i}]"), s, &e);
            }
        }
    }
}

/// Checks a proxy section (shared with the installation ISO's config).
pub fn validate_proxy(p: &mut Problems, proxy: &Proxy) {
    if proxy.http_proxy.is_empty() && proxy.https_proxy.is_empty() {
        p.required("proxy", "must include httpProxy or httpsProxy");
    }
    let fields = [
        (
            "proxy.httpProxy",
            &proxy.http_proxy,
            validate::HTTP_PROXY_SCHEMES,
        ),
        (
            "proxy.httpsProxy",
            &proxy.https_proxy,
            validate::HTTPS_PROXY_SCHEMES,
        ),
    ];
    for (field, value, schemes) in fields {
        if value.is_empty() {
            continue;
        }
        match validate::proxy_url(value, schemes) {
            Ok(()) => {}
            Err(validate::ProxyError::Scheme(_)) => p.unsupported(field, value, schemes),
            Err(validate::ProxyError::Invalid(e)) => p.invalid(field, value, &e),
        }
    }
    if !proxy.no_proxy.is_empty()
        && let Err(e) = validate::no_proxy(&proxy.no_proxy)
    {
        p.invalid("proxy.noProxy", &proxy.no_proxy, &e);
    }
}

/// Checks `imageDigestSources` (shared with the installation ISO's config).
pub fn validate_digest_sources(p: &mut Problems, field: &str, sources: &[ImageDigestSource]) {
    for (i, s) in sources.iter().enumerate() {
        if let Err(e) = validate::repository_name(&s.source) {
            p.invalid(&format!("{field}[{i}].source"), &s.source, &e);
        }
        for (j, m) in s.mirrors.iter().enumerate() {
            if let Err(e) = validate::repository_name(m) {
                p.invalid(&format!("{field}[{i}].mirrors[{j}]"), m, &e);
            }
        }
    }
}
