//! Builds `cluster-configuration/manifest.json` and the mirror manifest from
//! the validated inputs and the cluster identity.

use std::collections::BTreeSet;

use anyhow::{Context, Result};

use super::identity::ClusterIdentity;
use crate::api::image_based_config::ImageBasedConfig;
use crate::api::install_config::{InstallConfig, Proxy, TrustBundlePolicy};
use crate::api::nmstate;
use crate::api::seed_reconfig::{
    AdditionalTrustBundle, ClientAuthCrypto, ImageDigestMirror, ImageDigestMirrorSet,
    IngressCrypto, KubeApiCrypto, KubeConfigCryptoRetention, MirrorSetMetadata, MirrorSetSpec,
    SEED_RECONFIGURATION_VERSION, SeedReconfiguration, ServingCrypto,
};

/// chrony.conf as upstream writes it: a leading newline, no trailing one.
const DEFAULT_CHRONY_CONF: &str = "\npool 0.rhel.pool.ntp.org iburst\ndriftfile /var/lib/chrony/drift\nmakestep 1.0 3\nrtcsync\nlogdir /var/log/chrony";

const USER_CA_BUNDLE_CONFIGMAP: &str = "user-ca-bundle";

/// The SeedReconfiguration for these inputs.
pub fn seed_reconfiguration(
    ic: &InstallConfig,
    ibc: &ImageBasedConfig,
    id: &ClusterIdentity,
) -> Result<SeedReconfiguration> {
    let mut sr = SeedReconfiguration {
        api_version: SEED_RECONFIGURATION_VERSION,
        base_domain: ic.base_domain.clone(),
        cluster_id: non_empty_or(&ibc.cluster_id, &id.cluster_id),
        cluster_name: ic.metadata.name.clone(),
        hostname: ibc.hostname.clone(),
        infra_id: non_empty_or(&ibc.infra_id, &id.infra_id),
        kubeadmin_password_hash: id.kubeadmin_password_hash.clone(),
        machine_networks: ic.machine_networks(),
        release_registry: ibc.release_registry.clone(),
        ssh_key: ic.ssh_key.clone(),
        proxy: ic.proxy.as_ref().map(|p| enriched_proxy(ic, p)),
        pull_secret: ic.pull_secret.clone(),
        node_labels: ibc.node_labels.clone(),
        ..Default::default()
    };
    if !nmstate::is_empty(&ibc.network_config) {
        sr.raw_nm_state_config = nmstate::normalized_yaml(&ibc.network_config)
            .map_err(anyhow::Error::msg)
            .context("encoding networkConfig")?;
    }
    if !ibc.additional_ntp_sources.is_empty() {
        let mut conf = DEFAULT_CHRONY_CONF.to_string();
        for s in &ibc.additional_ntp_sources {
            conf.push_str(&format!("\nserver {s} iburst"));
        }
        sr.chrony_config = conf;
    }
    if !ic.additional_trust_bundle.is_empty() {
        sr.additional_trust_bundle = trust_bundle(ic);
    }
    let api = &id.api_crypto;
    sr.kubeconfig_crypto_retention = KubeConfigCryptoRetention {
        kube_api_crypto: KubeApiCrypto {
            serving_crypto: ServingCrypto {
                localhost_signer_private_key: api.localhost_signer.key_pem.clone(),
                service_network_signer_private_key: api.service_network_signer.key_pem.clone(),
                loadbalancer_external_signer_private_key: api.lb_signer.key_pem.clone(),
            },
            client_auth_crypto: ClientAuthCrypto {
                admin_ca_certificate: api.admin_kubeconfig_signer.cert_pem.clone(),
            },
        },
        ingress_crypto: IngressCrypto {
            ingress_ca: id.ingress_signer.key_pem.clone(),
            ingress_certificate_cn: id
                .ingress_signer
                .common_name()
                .context("reading the ingress signer's common name")?,
        },
    };
    fill_legacy_fields(&mut sr);
    Ok(sr)
}

/// Writes the single-valued keys that lca-cli 4.16–4.19 read next to the
/// list keys that 4.20 added (`machine_network` beside `machine_networks`,
/// `node_ip` beside `node_ips`). Those releases drop the list keys unread;
/// 4.20 and later prefer the lists when both are present. Without
/// `machine_network` an older post-pivot writes no node-IP hint and fails
/// with a proxy ("machineNetwork is empty"). See docs/compatibility.md.
pub fn fill_legacy_fields(sr: &mut SeedReconfiguration) {
    if let Some(first) = sr.machine_networks.first() {
        sr.machine_network = first.clone();
    }
    if let Some(first) = sr.node_ips.first() {
        sr.node_ip = first.clone();
    }
}

/// `additionalTrustBundle` as the installer writes it. The bundle always
/// goes to `userCaBundle`; it also becomes the proxy's trusted CA
/// (`proxyConfigmapName: user-ca-bundle`) only when the policy is `Always`,
/// or `Proxyonly` given explicitly with a proxy. The installer defaults an
/// unset policy on a copy it validates, not on the one it writes from, so
/// an unset policy never names the config map (see docs/compatibility.md).
fn trust_bundle(ic: &InstallConfig) -> AdditionalTrustBundle {
    let bundle = &ic.additional_trust_bundle;
    let for_proxy = match ic.additional_trust_bundle_policy {
        Some(TrustBundlePolicy::Always) => true,
        Some(TrustBundlePolicy::Proxyonly) => ic.proxy.is_some(),
        None => false,
    };
    if for_proxy {
        AdditionalTrustBundle {
            user_ca_bundle: bundle.clone(),
            proxy_configmap_name: USER_CA_BUNDLE_CONFIGMAP.to_string(),
            proxy_configmap_bundle: bundle.clone(),
        }
    } else {
        AdditionalTrustBundle {
            user_ca_bundle: bundle.clone(),
            ..Default::default()
        }
    }
}

fn non_empty_or(preferred: &str, fallback: &str) -> String {
    if preferred.is_empty() {
        fallback
    } else {
        preferred
    }
    .to_string()
}

/// The proxy with `noProxy` completed as the newest installer does
/// (OCPBUGS-60993): without the cluster's own networks and names in it, the
/// node reboots once more after installation to add them.
fn enriched_proxy(ic: &InstallConfig, proxy: &Proxy) -> Proxy {
    let mut out = proxy.clone();
    if proxy.no_proxy.trim() == "*" {
        return out;
    }
    let mut set: BTreeSet<String> = ["127.0.0.1", "localhost", ".svc", ".cluster.local"]
        .into_iter()
        .map(String::from)
        .collect();
    if let Some(n) = &ic.networking {
        set.extend(n.service_network.iter().cloned());
        set.extend(n.machine_network.iter().map(|m| m.cidr.clone()));
        set.extend(n.cluster_network.iter().map(|c| c.cidr.clone()));
    }
    set.insert(format!("api-int.{}.{}", ic.metadata.name, ic.base_domain));
    set.extend(
        proxy
            .no_proxy
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(String::from),
    );
    // BTreeSet<String> orders byte-wise, as upstream's sort does.
    out.no_proxy = set.into_iter().collect::<Vec<_>>().join(",");
    out
}

/// The ImageDigestMirrorSet for the install-config's mirrors, if any.
pub fn image_digest_mirror_set(ic: &InstallConfig) -> Option<ImageDigestMirrorSet> {
    let sources = ic.digest_sources();
    if sources.is_empty() {
        return None;
    }
    Some(ImageDigestMirrorSet {
        api_version: "config.openshift.io/v1",
        kind: "ImageDigestMirrorSet",
        metadata: MirrorSetMetadata {
            name: "image-digest-mirror",
            creation_timestamp: None,
        },
        spec: MirrorSetSpec {
            image_digest_mirrors: sources
                .iter()
                .map(|s| ImageDigestMirror {
                    source: s.source.clone(),
                    mirrors: s.mirrors.clone(),
                    mirror_source_policy: s.source_policy,
                })
                .collect(),
        },
        status: serde_json::Map::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ic(policy: Option<TrustBundlePolicy>, proxy: bool) -> InstallConfig {
        let mut ic: InstallConfig = yaml_serde::from_str("{}").unwrap();
        ic.additional_trust_bundle = "PEM".into();
        ic.additional_trust_bundle_policy = policy;
        ic.proxy = proxy.then(Proxy::default);
        ic
    }

    /// The installer's rule: the proxy's trusted CA is named only for
    /// `Always`, or an explicit `Proxyonly` with a proxy.
    #[test]
    fn trust_bundle_follows_the_installer() {
        use TrustBundlePolicy::{Always, Proxyonly};
        for (policy, proxy, named) in [
            (None, false, false),
            (None, true, false),
            (Some(Proxyonly), false, false),
            (Some(Proxyonly), true, true),
            (Some(Always), false, true),
            (Some(Always), true, true),
        ] {
            let got = trust_bundle(&ic(policy, proxy));
            assert_eq!(got.user_ca_bundle, "PEM");
            let (name, bundle) = if named {
                ("user-ca-bundle", "PEM")
            } else {
                ("", "")
            };
            assert_eq!(
                (
                    got.proxy_configmap_name.as_str(),
                    got.proxy_configmap_bundle.as_str()
                ),
                (name, bundle),
                "{policy:?} proxy={proxy}"
            );
        }
    }

    #[test]
    fn legacy_keys_take_the_first_entry() {
        let mut sr = SeedReconfiguration {
            machine_networks: vec!["10.0.0.0/24".into(), "fd00::/64".into()],
            ..Default::default()
        };
        fill_legacy_fields(&mut sr);
        assert_eq!(sr.machine_network, "10.0.0.0/24");
        assert_eq!(sr.node_ip, "");
        sr.node_ips = vec!["10.0.0.5".into()];
        fill_legacy_fields(&mut sr);
        assert_eq!(sr.node_ip, "10.0.0.5");
    }
}
