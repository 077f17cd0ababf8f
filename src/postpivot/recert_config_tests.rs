//! Golden tests: each scenario's bytes are compared with a document written
//! by hand from spec §3.7 (tests/expected/recert/, no trailing newline).

use super::*;
use crate::api::install_config::Proxy;
use crate::postpivot::{effective, kubeconfig_crypto};

const PULL_SECRET: &str = r#"{"auths":{"quay.io":{"auth":"dXNlcjpwYXNz"}}}"#;

fn seed() -> SeedClusterInfo {
    SeedClusterInfo {
        seed_cluster_ocp_version: "4.18.0".into(),
        base_domain: "example.com".into(),
        cluster_name: "seed".into(),
        node_ips: vec!["192.0.2.10".into()],
        sno_hostname: "seed-node".into(),
        recert_image_pull_spec: "quay.io/edge-infrastructure/recert:v0".into(),
        service_networks: vec!["172.30.0.0/16".into()],
        cluster_networks: vec!["10.128.0.0/14".into()],
        ingress_certificate_cn: "ingress-operator@1700000000".into(),
        machine_networks: vec!["192.0.2.0/24".into()],
        ..Default::default()
    }
}

/// The seed's own identity: nothing to rename.
fn unchanged() -> SeedReconfiguration {
    SeedReconfiguration {
        api_version: 1,
        base_domain: "example.com".into(),
        cluster_name: "seed".into(),
        cluster_id: "7e4c5e2a-3b1f-4d2e-9f0a-1c2b3d4e5f60".into(),
        hostname: "seed-node".into(),
        node_ips: vec!["192.0.2.10".into()],
        machine_networks: vec!["192.0.2.0/24".into()],
        pull_secret: PULL_SECRET.into(),
        ..Default::default()
    }
}

fn crypto_entries() -> Vec<String> {
    let mut v: Vec<String> = [
        kubeconfig_crypto::ADMIN_CLIENT_CA,
        kubeconfig_crypto::INGRESS_KEY,
        kubeconfig_crypto::LOADBALANCER_SIGNER_KEY,
        kubeconfig_crypto::LOCALHOST_SIGNER_KEY,
        kubeconfig_crypto::SERVICE_NETWORK_SIGNER_KEY,
    ]
    .map(String::from)
    .to_vec();
    v.sort();
    v
}

fn render(
    reconfig: &SeedReconfiguration,
    seed: &SeedClusterInfo,
    cert_manager: &[String],
) -> String {
    let entries = crypto_entries();
    let c = RecertConfig::for_post_pivot(Inputs {
        reconfig,
        seed,
        kubeconfig_crypto: Some(&entries),
        cert_manager_files: cert_manager,
    })
    .unwrap();
    String::from_utf8(c.to_bytes().unwrap()).unwrap()
}

fn expected(name: &str) -> String {
    let path = format!(
        "{}/tests/expected/recert/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap()
}

fn assert_golden(name: &str, got: &str) {
    let want = expected(name);
    assert!(
        !want.ends_with('\n'),
        "{name}: the expected file must not end in a newline"
    );
    assert_eq!(got, want, "{name}");
}

#[test]
fn no_changes_at_all() {
    // Even with nothing to rename, the password hash is present (empty:
    // delete the kubeadmin secret) and IP / machine network keys are absent.
    assert_golden("no-changes", &render(&unchanged(), &seed(), &[]));
}

#[test]
fn hostname_and_cluster_rename() {
    let mut r = unchanged();
    r.hostname = "sno-1".into();
    r.cluster_name = "sno".into();
    r.base_domain = "lab.example.org".into();
    r.infra_id = "sno-x7k2p".into();
    r.kubeadmin_password_hash =
        "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy".into();
    r.kubeconfig_crypto_retention
        .ingress_crypto
        .ingress_certificate_cn = "ingress-operator@1800000000".into();
    r.chrony_config = "\npool 0.rhel.pool.ntp.org iburst\ndriftfile /var/lib/chrony/drift\n\
                       makestep 1.0 3\nrtcsync\nlogdir /var/log/chrony\nserver 192.0.2.1 iburst"
        .into();
    assert_golden("hostname", &render(&r, &seed(), &[]));
}

#[test]
fn ipv4_change() {
    let mut r = unchanged();
    r.node_ips = vec!["198.51.100.20".into()];
    r.machine_networks = vec!["198.51.100.0/24".into()];
    assert_golden("ipv4", &render(&r, &seed(), &[]));
}

#[test]
fn dual_stack_change() {
    let mut s = seed();
    s.node_ips = vec!["192.0.2.10".into(), "2001:db8::10".into()];
    s.machine_networks = vec!["192.0.2.0/24".into(), "2001:db8::/64".into()];
    let mut r = unchanged();
    r.node_ips = vec!["198.51.100.20".into(), "2001:db8:1::20".into()];
    r.machine_networks = vec!["198.51.100.0/24".into(), "2001:db8:1::/64".into()];
    assert_golden("dual-stack", &render(&r, &s, &[]));
}

#[test]
fn proxy_completed_and_html_escaped() {
    let mut s = seed();
    s.has_proxy = true;
    let mut r = unchanged();
    let url = "http://proxy.example.com:3128".to_string();
    r.proxy = Some(Proxy {
        http_proxy: url.clone(),
        https_proxy: url,
        no_proxy: ".corp.example.com".into(),
    });
    r.install_config = "apiVersion: v1\nmetadata:\n  name: seed\n# a&b <c>\nproxy:\n  \
                        httpProxy: http://proxy.example.com:3128\n"
        .into();
    effective::complete_proxy(&mut r, &s).unwrap();
    assert_golden("proxy", &render(&r, &s, &[]));
}

#[test]
fn trust_bundle_with_a_proxy_configmap() {
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n";
    let mut r = unchanged();
    r.additional_trust_bundle.user_ca_bundle = pem.into();
    r.additional_trust_bundle.proxy_configmap_name = "custom-ca-bundle".into();
    r.additional_trust_bundle.proxy_configmap_bundle = pem.into();
    assert_golden("trust-bundle", &render(&r, &seed(), &[]));
}

#[test]
fn cert_manager_keys_are_kept() {
    let files = [
        "CN=api.example.com__openshift-ingress_router-cert.key",
        "CN=grafana__monitoring_grafana-tls.key",
        "README.md",
        "tls.key",
    ]
    .map(String::from);
    assert_golden("cert-manager", &render(&unchanged(), &seed(), &files));
}

#[test]
fn user_ca_bundle_configmap_name_alone_names_the_user_bundle() {
    assert_eq!(
        proxy_trusted_ca_bundle("user-ca-bundle", "PEM").unwrap(),
        "user-ca-bundle:"
    );
    assert_eq!(proxy_trusted_ca_bundle("", "").unwrap(), "");
    assert!(proxy_trusted_ca_bundle("custom", "").is_err());
    assert!(proxy_trusted_ca_bundle("", "PEM").is_err());
}

#[test]
fn half_a_proxy_configmap_is_an_error() {
    let mut r = unchanged();
    r.additional_trust_bundle.proxy_configmap_name = "custom".into();
    let entries = crypto_entries();
    let e = RecertConfig::for_post_pivot(Inputs {
        reconfig: &r,
        seed: &seed(),
        kubeconfig_crypto: Some(&entries),
        cert_manager_files: &[],
    })
    .unwrap_err();
    assert!(e.to_string().contains("both or neither"), "{e}");
}

#[test]
fn without_kubeconfig_crypto_there_are_no_key_rules() {
    let c = RecertConfig::for_post_pivot(Inputs {
        reconfig: &unchanged(),
        seed: &seed(),
        kubeconfig_crypto: None,
        cert_manager_files: &[],
    })
    .unwrap();
    assert!(c.use_key_rules.is_empty() && c.use_cert_rules.is_empty());
    let text = String::from_utf8(c.to_bytes().unwrap()).unwrap();
    assert!(!text.contains("use_key_rules") && !text.contains("use_cert_rules"));
}

#[test]
fn a_crypto_dir_without_the_ingress_key_is_an_error() {
    let entries = vec![kubeconfig_crypto::ADMIN_CLIENT_CA.to_string()];
    let e = RecertConfig::for_post_pivot(Inputs {
        reconfig: &unchanged(),
        seed: &seed(),
        kubeconfig_crypto: Some(&entries),
        cert_manager_files: &[],
    })
    .unwrap_err();
    assert!(format!("{e:#}").contains("ingresskey-"), "{e:#}");
}

#[test]
fn cert_manager_cn_follows_upstream() {
    assert_eq!(cert_manager_cn("CN=a.b__ns_name.key"), Some("a.b"));
    assert_eq!(cert_manager_cn("CN=x.key"), Some("x.key"));
    assert_eq!(cert_manager_cn("CN=__ns_n.key"), None);
    assert_eq!(cert_manager_cn("CN=a__ns_n.crt"), None);
    assert_eq!(cert_manager_cn("a__ns_n.key"), None);
}

#[test]
fn written_0600_without_a_trailing_newline() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(FILE_NAME);
    let entries = crypto_entries();
    let c = RecertConfig::for_post_pivot(Inputs {
        reconfig: &unchanged(),
        seed: &seed(),
        kubeconfig_crypto: Some(&entries),
        cert_manager_files: &[],
    })
    .unwrap();
    c.write(&p).unwrap();
    let meta = std::fs::metadata(&p).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(std::fs::read_to_string(&p).unwrap(), expected("no-changes"));
}
