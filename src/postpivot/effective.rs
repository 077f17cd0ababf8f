//! The reconfiguration as post-pivot applies it: legacy fields folded in,
//! the hostname and node IPs resolved, the proxy's `noProxy` completed
//! (spec §3.4 steps 3, 6d, 6f and 9). Pure functions; the steps feed them
//! what they read from the host.

use std::collections::BTreeSet;

use anyhow::{Result, bail};

use crate::api::seed_cluster_info::SeedClusterInfo;
use crate::api::seed_reconfig::SeedReconfiguration;

/// The hostname upstream refuses, given or found.
pub const LOCALHOST: &str = "localhost";

/// `node_ips`, or the legacy single `node_ip`.
pub fn node_ips(r: &SeedReconfiguration) -> Vec<String> {
    if !r.node_ips.is_empty() {
        r.node_ips.clone()
    } else if !r.node_ip.is_empty() {
        vec![r.node_ip.clone()]
    } else {
        Vec::new()
    }
}

/// `machine_networks`, or the legacy single `machine_network`.
pub fn machine_networks(r: &SeedReconfiguration) -> Vec<String> {
    if !r.machine_networks.is_empty() {
        r.machine_networks.clone()
    } else if !r.machine_network.is_empty() {
        vec![r.machine_network.clone()]
    } else {
        Vec::new()
    }
}

/// The hostname to use: the configured one, else the kernel's; `localhost`
/// is refused either way (a cluster cannot be named after it).
pub fn hostname(configured: &str, kernel: &str) -> Result<String> {
    if configured == LOCALHOST {
        bail!(
            "hostname is {LOCALHOST:?}, which cannot name a cluster node; set `hostname` in \
             the configuration to the node's name"
        );
    }
    if !configured.is_empty() {
        return Ok(configured.to_string());
    }
    if kernel == LOCALHOST || kernel.is_empty() {
        bail!(
            "no hostname is configured and the kernel's hostname is {kernel:?}; set \
             `hostname` in the configuration (or give the node a name by DHCP)"
        );
    }
    Ok(kernel.to_string())
}

/// Step 9: with a proxy and no `status_proxy` (IBI), `noProxy` becomes the
/// sorted, de-duplicated union of the cluster's own names and networks and
/// the user's entries, and `status_proxy` a copy of `proxy` (what the
/// cluster network operator would report). IBU supplies `status_proxy`
/// itself; then nothing changes.
pub fn complete_proxy(r: &mut SeedReconfiguration, seed: &SeedClusterInfo) -> Result<()> {
    if r.proxy.is_some() != seed.has_proxy {
        bail!("seedReconfig and seedClusterInfo proxy configuration mismatch");
    }
    if r.status_proxy.is_some() {
        return Ok(());
    }
    let networks = machine_networks(r);
    let api_int = format!("api-int.{}.{}", r.cluster_name, r.base_domain);
    let Some(proxy) = r.proxy.as_mut() else {
        return Ok(());
    };
    if networks.is_empty() {
        bail!("machineNetworks is empty, must be provided in case of proxy");
    }
    // Byte-wise sort, as Go's sets.String.List() does.
    let mut set: BTreeSet<String> = ["127.0.0.1", "localhost", ".svc", ".cluster.local"]
        .into_iter()
        .map(String::from)
        .collect();
    set.insert(api_int);
    set.extend(networks);
    set.extend(seed.service_networks.iter().cloned());
    set.extend(seed.cluster_networks.iter().cloned());
    set.extend(
        proxy
            .no_proxy
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from),
    );
    proxy.no_proxy = set.into_iter().collect::<Vec<_>>().join(",");
    r.status_proxy = r.proxy.clone();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::install_config::Proxy;

    #[test]
    fn legacy_fields_fold_in() {
        let mut r = SeedReconfiguration {
            node_ip: "192.0.2.10".into(),
            machine_network: "192.0.2.0/24".into(),
            ..Default::default()
        };
        assert_eq!(node_ips(&r), ["192.0.2.10"]);
        assert_eq!(machine_networks(&r), ["192.0.2.0/24"]);
        r.node_ips = vec!["192.0.2.11".into(), "2001:db8::11".into()];
        assert_eq!(node_ips(&r), ["192.0.2.11", "2001:db8::11"]);
        assert!(node_ips(&SeedReconfiguration::default()).is_empty());
    }

    #[test]
    fn hostname_rules() {
        assert_eq!(hostname("sno1", "seed").unwrap(), "sno1");
        assert_eq!(hostname("", "from-dhcp").unwrap(), "from-dhcp");
        assert!(hostname("localhost", "x").is_err());
        assert!(hostname("", "localhost").is_err());
        assert!(hostname("", "").is_err());
    }

    #[test]
    fn no_proxy_is_the_sorted_union_and_status_copies_it() {
        let mut r = SeedReconfiguration {
            cluster_name: "sno".into(),
            base_domain: "example.com".into(),
            machine_networks: vec!["192.0.2.0/24".into()],
            proxy: Some(Proxy {
                http_proxy: "http://proxy:3128".into(),
                https_proxy: String::new(),
                no_proxy: "internal.example.com,,localhost".into(),
            }),
            ..Default::default()
        };
        let seed = SeedClusterInfo {
            has_proxy: true,
            service_networks: vec!["172.30.0.0/16".into()],
            cluster_networks: vec!["10.128.0.0/14".into()],
            ..Default::default()
        };
        complete_proxy(&mut r, &seed).unwrap();
        let expected = ".cluster.local,.svc,10.128.0.0/14,127.0.0.1,172.30.0.0/16,\
                        192.0.2.0/24,api-int.sno.example.com,internal.example.com,localhost";
        assert_eq!(r.proxy.as_ref().unwrap().no_proxy, expected);
        assert_eq!(r.status_proxy, r.proxy);
        // A second pass (a resumed run) changes nothing.
        let before = r.clone();
        complete_proxy(&mut r, &seed).unwrap();
        assert_eq!(r, before);
    }

    #[test]
    fn proxy_presence_must_match_the_seed() {
        let mut r = SeedReconfiguration::default();
        let seed = SeedClusterInfo {
            has_proxy: true,
            ..Default::default()
        };
        assert!(complete_proxy(&mut r, &seed).is_err());
        assert!(complete_proxy(&mut r, &SeedClusterInfo::default()).is_ok());
    }
}
