//! What each release's post-pivot needs from manifest.json, checked
//! against the inputs the manifest was built from.

use std::path::Path;

use serde_json::Value;

use super::go_decode::{Decoded, Schema};

pub fn yaml_file(dir: &Path, name: &str) -> Value {
    yaml_serde::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
}

pub fn s<'a>(v: &'a Value, path: &str) -> &'a str {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// What the release's post-pivot needs from the manifest, checked against
/// the inputs in `dir`. Returns every failure found.
pub fn check_needs(schema: &Schema, d: &Decoded, dir: &Path) -> Vec<String> {
    let ic = yaml_file(dir, "install-config.yaml");
    let ibc = yaml_file(dir, "image-based-config.yaml");
    let mut bad = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            bad.push(what);
        }
    };
    expect(
        d.int("api_version") == Some(1),
        "api_version must be 1 (post-pivot rejects other versions)".into(),
    );
    let cidrs: Vec<String> = ic["networking"]["machineNetwork"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["cidr"].as_str().unwrap().to_string())
        .collect();
    let networks = d.first_non_empty(&schema.machine_networks_from);
    expect(
        networks == cidrs,
        format!(
            "machine networks read from {:?} are {networks:?}, install-config has {cidrs:?}",
            schema.machine_networks_from
        ),
    );
    // Node IPs: sprout leaves them to the node (nodeip-configuration picks
    // the address in the machine network hint); when present the legacy key
    // must agree with the list.
    let node_ips = d.first_non_empty(&schema.node_ips_from);
    expect(
        node_ips.len() <= cidrs.len(),
        format!("more node IPs than machine networks: {node_ips:?}"),
    );
    if let (Some(ips), Some(ip)) = (d.str_list("node_ips"), d.str("node_ip")) {
        expect(
            ips.first().map(String::as_str) == Some(ip),
            "node_ip is not node_ips[0]".into(),
        );
    }
    // Proxy: presence must match the seed's; post-pivot then needs machine
    // networks ("machineNetwork is empty, must be provided in case of proxy").
    match ic.get("proxy") {
        Some(p) => {
            for k in ["httpProxy", "httpsProxy"] {
                expect(
                    d.str(&format!("proxy.{k}")) == p[k].as_str(),
                    format!("proxy.{k} differs from install-config"),
                );
            }
            let no_proxy = d.str("proxy.noProxy").unwrap_or("");
            for entry in s(p, "noProxy").split(',').filter(|e| !e.is_empty()) {
                expect(
                    no_proxy.split(',').any(|n| n == entry),
                    format!("proxy.noProxy lost {entry}"),
                );
            }
            expect(
                !networks.is_empty(),
                "machineNetwork is empty, must be provided in case of proxy".into(),
            );
        }
        None => expect(
            d.get("proxy").is_none(),
            "a proxy without one in install-config".into(),
        ),
    }
    // Trust bundle: recert refuses a name without a bundle and vice versa;
    // the name is the installer's: set for Always, or Proxyonly with a proxy.
    let bundle = s(&ic, "additionalTrustBundle");
    expect(
        d.str("additionalTrustBundle.userCaBundle").unwrap_or("") == bundle,
        "additionalTrustBundle.userCaBundle differs from install-config".into(),
    );
    let name = d
        .str("additionalTrustBundle.proxyConfigmapName")
        .unwrap_or("");
    let pbundle = d
        .str("additionalTrustBundle.proxyConfigmapBundle")
        .unwrap_or("");
    expect(
        name.is_empty() == pbundle.is_empty(),
        "both or neither of proxy configmap bundle and proxy configmap name must be set".into(),
    );
    let policy = s(&ic, "additionalTrustBundlePolicy");
    let for_proxy = !bundle.is_empty()
        && (policy == "Always" || (policy == "Proxyonly" && ic.get("proxy").is_some()));
    let want_name = if for_proxy { "user-ca-bundle" } else { "" };
    expect(
        name == want_name,
        format!("proxyConfigmapName is {name:?}, the installer writes {want_name:?}"),
    );
    if for_proxy {
        expect(
            pbundle == bundle,
            "proxyConfigmapBundle is not the bundle".into(),
        );
    }
    // Crypto recert takes over, and the names it renames the seed to.
    let crypto = "KubeconfigCryptoRetention.KubeAPICrypto";
    for key in [
        "ServingCrypto.localhost_signer_private_key",
        "ServingCrypto.service_network_signer_private_key",
        "ServingCrypto.loadbalancer_external_signer_private_key",
    ] {
        let pem = d.str(&format!("{crypto}.{key}")).unwrap_or("");
        expect(
            pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
            format!("{key} is not a private key"),
        );
    }
    let admin = d
        .str(&format!("{crypto}.ClientAuthCrypto.admin_ca_certificate"))
        .unwrap_or("");
    expect(
        admin.starts_with("-----BEGIN CERTIFICATE-----"),
        "admin_ca_certificate missing".into(),
    );
    let ingress = "KubeconfigCryptoRetention.IngresssCrypto";
    expect(
        d.str(&format!("{ingress}.ingress_ca"))
            .is_some_and(|k| k.starts_with("-----BEGIN RSA PRIVATE KEY-----")),
        "ingress_ca missing".into(),
    );
    expect(
        d.str(&format!("{ingress}.ingress_certificate_cn"))
            .is_some_and(|c| c.starts_with("ingress-operator@")),
        "ingress_certificate_cn missing".into(),
    );
    expect(
        d.str("cluster_id").is_some_and(|c| c.len() == 36),
        "cluster_id missing (set_cluster_id fails without it)".into(),
    );
    for (key, want) in [
        ("base_domain", s(&ic, "baseDomain")),
        ("cluster_name", s(&ic, "metadata.name")),
        ("pull_secret", s(&ic, "pullSecret")),
        ("ssh_key", s(&ic, "sshKey")),
        ("hostname", s(&ibc, "hostname")),
        ("release_registry", s(&ibc, "releaseRegistry")),
    ] {
        expect(
            d.str(key).unwrap_or("") == want,
            format!("{key} differs from the inputs"),
        );
    }
    let chrony = d.str("chrony_config").unwrap_or("");
    for src in ibc["additionalNTPSources"].as_array().into_iter().flatten() {
        let line = format!("server {} iburst", src.as_str().unwrap());
        expect(
            chrony.lines().any(|l| l == line),
            format!("chrony_config lacks {line}"),
        );
    }
    let labels = d.get("node_labels").cloned().unwrap_or(Value::Null);
    let want_labels = ibc.get("nodeLabels").cloned().unwrap_or(Value::Null);
    expect(labels == want_labels, "node_labels differ".into());
    expect(
        d.str("raw_nm_state_config").is_some() == ibc.get("networkConfig").is_some(),
        "raw_nm_state_config presence".into(),
    );
    bad
}
