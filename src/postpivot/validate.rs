//! Everything checked before post-pivot changes the host (W4).
//!
//! Upstream checks `api_version`, the node IP / machine network consistency
//! and the proxy only after it has rewritten the network, the hostname and
//! DNS; a bad configuration then leaves a half-converted node. Here the
//! whole SeedReconfiguration is checked against the seed's facts first, and
//! every problem is reported at once. What recert would trip over later (a
//! key that does not parse, a rule value its parser splits wrongly) is
//! checked too, because recert runs after the point of no return.
//!
//! When `node_ips` is empty (installer-made configurations) the node IPs are
//! only known after nodeip-configuration ran; [`node_ips_after_discovery`]
//! applies the same IP rules then.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use ipnet::IpNet;

use super::effective::{self, LOCALHOST};
use crate::api::diag::{InvalidInput, Problems, finish};
use crate::api::install_config::validate_proxy;
use crate::api::seed_cluster_info::SeedClusterInfo;
use crate::api::seed_reconfig::{SEED_RECONFIGURATION_VERSION, SeedReconfiguration};
use crate::api::validate as field;

/// The reconfiguration as problems name it.
pub const RECONFIG_FILE: &str = "cluster-configuration/manifest.json";
/// The seed's facts as problems name them.
pub const SEED_FILE: &str = "/var/seed_data/manifest.json";
/// Linux's limit on a hostname (HOST_NAME_MAX).
const HOST_NAME_MAX: usize = 64;

/// A cert-manager key file: its name and contents.
#[derive(Debug, Clone)]
pub struct CertManagerKey {
    pub file_name: String,
    pub pem: Vec<u8>,
}

/// What is validated.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub reconfig: &'a SeedReconfiguration,
    pub seed: &'a SeedClusterInfo,
    /// The files of `cluster-configuration/certmanager-crypto/`.
    pub cert_manager_keys: &'a [CertManagerKey],
}

/// Checks everything; `Err` lists every problem found.
pub fn validate(i: Inputs<'_>) -> Result<(), InvalidInput> {
    let r = i.reconfig;
    let mut p = Problems::new(RECONFIG_FILE);
    let mut s = Problems::new(SEED_FILE);
    if r.api_version != SEED_RECONFIGURATION_VERSION {
        p.unsupported("api_version", &r.api_version.to_string(), &["1"]);
    }
    identity(&mut p, r);
    hostname(&mut p, &r.hostname);
    seed_facts(&mut s, i.seed);
    let ips = effective::node_ips(r);
    if !ips.is_empty() {
        node_ips(&mut p, &mut s, &ips, &i.seed.node_ips());
    }
    machine_networks(&mut p, r, &ips, i.seed);
    proxy(&mut p, r, i.seed);
    if r.pull_secret.is_empty() {
        p.required(
            "pull_secret",
            "post-pivot writes it to /var/lib/kubelet/config.json",
        );
    } else if let Err(e) = field::pull_secret(&r.pull_secret) {
        p.add("pull_secret", format!("Invalid value: {e}"));
    }
    if !r.ssh_key.trim().is_empty()
        && let Err(e) = field::ssh_authorized_keys(&r.ssh_key)
    {
        p.invalid("ssh_key", r.ssh_key.trim(), &e);
    }
    password_hash(&mut p, &r.kubeadmin_password_hash);
    keys::kubeconfig_crypto(&mut p, r);
    keys::trust_bundle(&mut p, r);
    for (n, key) in r.server_ssh_keys.iter().enumerate() {
        keys::server_ssh_key(&mut p, n, key, &r.server_ssh_keys);
    }
    let mut all = p.into_vec();
    all.extend(s.into_vec());
    all.extend(keys::cert_manager_keys(i.cert_manager_keys));
    finish(all)
}

/// The IP rules once the node IPs were discovered (spec §3.4 step 7).
pub fn node_ips_after_discovery(
    reconfig: &SeedReconfiguration,
    seed: &SeedClusterInfo,
    discovered: &[String],
) -> Result<(), InvalidInput> {
    let mut p = Problems::new(RECONFIG_FILE);
    let mut s = Problems::new(SEED_FILE);
    node_ips(&mut p, &mut s, discovered, &seed.node_ips());
    machine_networks(&mut p, reconfig, discovered, seed);
    let mut all = p.into_vec();
    all.extend(s.into_vec());
    finish(all)
}

/// Reads `cluster-configuration/certmanager-crypto/` (absent: none).
pub fn read_cert_manager_keys(dir: &Path) -> Result<Vec<CertManagerKey>> {
    let Some(names) = super::kubeconfig_crypto::list(dir)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for file_name in names {
        let path = dir.join(&file_name);
        if !path.is_file() {
            continue;
        }
        let pem = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        out.push(CertManagerKey { file_name, pem });
    }
    Ok(out)
}

fn identity(p: &mut Problems, r: &SeedReconfiguration) {
    if r.cluster_name.is_empty() {
        p.required(
            "cluster_name",
            "the new cluster's name (recert renames the cluster to it)",
        );
    } else if let Err(e) = field::dns_label(&r.cluster_name) {
        p.invalid("cluster_name", &r.cluster_name, &e);
    }
    if r.base_domain.is_empty() {
        p.required("base_domain", "the new cluster's base domain");
    } else if let Err(e) = field::dns_subdomain(&r.base_domain) {
        p.invalid("base_domain", &r.base_domain, &e);
    }
    if r.cluster_id.is_empty() {
        p.required(
            "cluster_id",
            "the cluster's UUID; post-pivot sets it in ClusterVersion and cannot make one up",
        );
    } else if uuid::Uuid::parse_str(&r.cluster_id).is_err() {
        p.invalid(
            "cluster_id",
            &r.cluster_id,
            "must be a UUID such as 7e4c5e2a-3b1f-4d2e-9f0a-1c2b3d4e5f60",
        );
    }
}

fn hostname(p: &mut Problems, configured: &str) {
    // Empty: the kernel's name once NetworkManager is up (DHCP may set it
    // then), so it is checked by `resolved_hostname` at that step.
    if configured.is_empty() {
        return;
    }
    if configured == LOCALHOST {
        p.invalid(
            "hostname",
            configured,
            "localhost cannot name a cluster node; give the node's name",
        );
    } else if configured.len() > HOST_NAME_MAX || field::dns_subdomain(configured).is_err() {
        p.invalid(
            "hostname",
            configured,
            "must be a lower-case RFC 1123 name (a-z, 0-9, '-' and '.'), at most 64 characters: \
             it becomes the Kubernetes node name",
        );
    }
}

/// Step 6d: the hostname to use (the configured one, else `kernel`, the
/// kernel's after the network came up), with the same rules as above.
pub fn resolved_hostname(configured: &str, kernel: &str) -> Result<String, InvalidInput> {
    let mut p = Problems::new(RECONFIG_FILE);
    match effective::hostname(configured, kernel) {
        Ok(h) => {
            hostname(&mut p, &h);
            finish(p.into_vec()).map(|()| h)
        }
        Err(e) => {
            p.required("hostname", &e.to_string());
            Err(InvalidInput(p.into_vec()))
        }
    }
}

fn seed_facts(s: &mut Problems, seed: &SeedClusterInfo) {
    for (f, v) in [
        ("cluster_name", &seed.cluster_name),
        ("base_domain", &seed.base_domain),
        ("sno_hostname", &seed.sno_hostname),
        ("recert_image_pull_spec", &seed.recert_image_pull_spec),
    ] {
        if v.is_empty() {
            s.required(
                f,
                "the seed image is incomplete; make the seed again with the Lifecycle Agent",
            );
        }
    }
    if seed.ingress_certificate_cn.contains([':', ' ', ',']) {
        s.invalid(
            "ingress_certificate_cn",
            &seed.ingress_certificate_cn,
            "recert's rules cannot carry ':', ' ' or ','",
        );
    }
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn node_ips(p: &mut Problems, s: &mut Problems, ips: &[String], seed_ips: &[String]) {
    if seed_ips.is_empty() {
        s.required(
            "node_ips",
            "the seed's node IPs are needed to rename its certificates",
        );
    }
    if !seed_ips.is_empty() && ips.len() != seed_ips.len() {
        p.invalid(
            "node_ips",
            &ips.join(","),
            &format!(
                "has {} address(es) but the seed has {} ({}); a single-stack seed needs one node IP, \
                 a dual-stack seed two",
                ips.len(),
                seed_ips.len(),
                seed_ips.join(",")
            ),
        );
    }
    for (n, ip) in ips.iter().enumerate() {
        let Ok(addr) = ip.parse::<IpAddr>() else {
            p.invalid(&format!("node_ips[{n}]"), ip, "must be an IP address");
            continue;
        };
        let seed_addr = seed_ips.get(n).and_then(|s| s.parse::<IpAddr>().ok());
        if let Some(seed_addr) = seed_addr
            && family(seed_addr) != family(addr)
        {
            p.invalid(
                &format!("node_ips[{n}]"),
                ip,
                &format!(
                    "is {} but the seed's node IP {n} is {}: keep the seed's order of families",
                    family(addr),
                    family(seed_addr)
                ),
            );
        }
    }
}

fn machine_networks(
    p: &mut Problems,
    r: &SeedReconfiguration,
    ips: &[String],
    seed: &SeedClusterInfo,
) {
    let networks = effective::machine_networks(r);
    let field_of = |n: usize| {
        if r.machine_networks.is_empty() {
            "machine_network".to_string()
        } else {
            format!("machine_networks[{n}]")
        }
    };
    let mut parsed = Vec::new();
    for (n, net) in networks.iter().enumerate() {
        match net.parse::<IpNet>() {
            Ok(v) => parsed.push(Some(v)),
            Err(_) => {
                p.invalid(
                    &field_of(n),
                    net,
                    "must be a CIDR such as 192.168.111.0/24 or fd00::/64",
                );
                parsed.push(None);
            }
        }
    }
    if networks.is_empty() {
        p.required(
            "machine_networks",
            "one machine network per node IP, in the same order (they give the node-IP hint, \
             and noProxy with a proxy)",
        );
    } else if !ips.is_empty() && networks.len() != ips.len() {
        p.invalid(
            "machine_networks",
            &networks.join(","),
            &format!("has {} network(s) for {} node IP(s); give one machine network per node IP, in the same order", networks.len(), ips.len()),
        );
    }
    for (n, net) in parsed.iter().enumerate() {
        let Some(net) = net else { continue };
        if let Some(ip) = ips.get(n).and_then(|i| i.parse::<IpAddr>().ok())
            && !net.contains(&ip)
        {
            p.invalid(
                &field_of(n),
                &net.to_string(),
                &format!("does not contain node IP {ip} (node_ips[{n}])"),
            );
        }
        if let Some(seed_net) = seed
            .machine_networks
            .get(n)
            .and_then(|s| s.parse::<IpNet>().ok())
            && family(seed_net.addr()) != family(net.addr())
        {
            p.invalid(
                &field_of(n),
                &net.to_string(),
                &format!(
                    "is {} but the seed's machine network {n} is {}",
                    family(net.addr()),
                    family(seed_net.addr())
                ),
            );
        }
    }
    if !seed.machine_networks.is_empty() && networks.len() != seed.machine_networks.len() {
        p.invalid(
            "machine_networks",
            &networks.join(","),
            &format!(
                "has {} network(s) but the seed has {} ({})",
                networks.len(),
                seed.machine_networks.len(),
                seed.machine_networks.join(",")
            ),
        );
    }
}

fn proxy(p: &mut Problems, r: &SeedReconfiguration, seed: &SeedClusterInfo) {
    match (&r.proxy, seed.has_proxy) {
        (Some(_), false) => p.add(
            "proxy",
            "the seed cluster was made without a proxy, so this configuration cannot add one; \
             remove proxy or use a seed made with a proxy",
        ),
        (None, true) => p.required(
            "proxy",
            "the seed cluster was made with a proxy, so the configuration must give one",
        ),
        _ => {}
    }
    if let Some(proxy) = &r.proxy {
        validate_proxy(p, proxy);
    }
}

fn password_hash(p: &mut Problems, hash: &str) {
    let ok = hash.is_empty()
        || (hash.len() == 60 && ["$2a$", "$2b$", "$2y$"].iter().any(|v| hash.starts_with(v)));
    if !ok {
        // A hash is not a secret, but keep it out of logs all the same.
        p.add(
            "kubeadmin_password_hash",
            "Invalid value: must be a bcrypt hash ($2a$… / $2b$…, 60 characters) or empty to remove \
             the kubeadmin user",
        );
    }
}

#[path = "validate_keys.rs"]
mod keys;

#[cfg(test)]
#[path = "validate_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "validate_keys_tests.rs"]
mod keys_tests;
