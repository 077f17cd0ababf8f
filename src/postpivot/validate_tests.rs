//! One test per rule: a valid configuration with one thing broken must give
//! exactly the one problem that names it.

use std::sync::OnceLock;

use super::*;
use crate::api::install_config::Proxy;
use crate::create::crypto;

/// A throw-away test key pair (ssh-keygen -t ed25519), and a second public key.
pub(super) const SSH_PRIVATE: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACD0jxAau4m5+ks9uLwfcYRcduJGRtJ7KzZg2blNVZpebgAAAIg23A7/NtwO
/wAAAAtzc2gtZWQyNTUxOQAAACD0jxAau4m5+ks9uLwfcYRcduJGRtJ7KzZg2blNVZpebg
AAAECmtTLVeNj0QkASY3OoeD/QhmN7MJx9Sgd1fM2tLQwZxfSPEBq7ibn6Sz24vB9xhFx2
4kZG0nsrNmDZuU1Vml5uAAAABXRlc3Qx
-----END OPENSSH PRIVATE KEY-----
";
pub(super) const SSH_PUBLIC: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPSPEBq7ibn6Sz24vB9xhFx24kZG0nsrNmDZuU1Vml5u test1";
pub(super) const OTHER_PUBLIC: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIEvQrnvWRMJhiNfAp2GDx8QeoE4byN+ODOLAcewNkM1 test2";

pub(crate) struct Crypto {
    pub(crate) api: crypto::ApiCrypto,
    pub(crate) ingress: crypto::CertKey,
}

pub(crate) fn generated() -> &'static Crypto {
    static C: OnceLock<Crypto> = OnceLock::new();
    C.get_or_init(|| Crypto {
        api: crypto::generate_api_crypto().unwrap(),
        ingress: crypto::generate_ingress_signer().unwrap(),
    })
}

pub(crate) fn seed() -> SeedClusterInfo {
    SeedClusterInfo {
        base_domain: "example.com".into(),
        cluster_name: "seed".into(),
        node_ips: vec!["192.0.2.10".into()],
        sno_hostname: "seed-node".into(),
        recert_image_pull_spec: "quay.io/edge-infrastructure/recert:v0".into(),
        ingress_certificate_cn: "ingress-operator@1700000000".into(),
        machine_networks: vec!["192.0.2.0/24".into()],
        ..Default::default()
    }
}

pub(crate) fn valid() -> SeedReconfiguration {
    let c = generated();
    let mut r = SeedReconfiguration {
        api_version: 1,
        base_domain: "lab.example.org".into(),
        cluster_name: "sno".into(),
        cluster_id: "7e4c5e2a-3b1f-4d2e-9f0a-1c2b3d4e5f60".into(),
        hostname: "sno-1".into(),
        node_ips: vec!["198.51.100.20".into()],
        machine_networks: vec!["198.51.100.0/24".into()],
        pull_secret: r#"{"auths":{"quay.io":{"auth":"dXNlcjpwYXNz"}}}"#.into(),
        ssh_key: SSH_PUBLIC.into(),
        kubeadmin_password_hash: "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
            .into(),
        ..Default::default()
    };
    let k = &mut r.kubeconfig_crypto_retention;
    k.kube_api_crypto
        .serving_crypto
        .localhost_signer_private_key = c.api.localhost_signer.key_pem.clone();
    k.kube_api_crypto
        .serving_crypto
        .service_network_signer_private_key = c.api.service_network_signer.key_pem.clone();
    k.kube_api_crypto
        .serving_crypto
        .loadbalancer_external_signer_private_key = c.api.lb_signer.key_pem.clone();
    k.kube_api_crypto.client_auth_crypto.admin_ca_certificate =
        c.api.admin_kubeconfig_signer.cert_pem.clone();
    k.ingress_crypto.ingress_ca = c.ingress.key_pem.clone();
    k.ingress_crypto.ingress_certificate_cn = c.ingress.common_name().unwrap();
    r
}

pub(super) fn check_with(
    r: &SeedReconfiguration,
    s: &SeedClusterInfo,
    keys: &[CertManagerKey],
) -> Vec<String> {
    match validate(Inputs {
        reconfig: r,
        seed: s,
        cert_manager_keys: keys,
    }) {
        Ok(()) => Vec::new(),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

pub(super) fn check(r: &SeedReconfiguration) -> Vec<String> {
    check_with(r, &seed(), &[])
}

/// Exactly one problem, containing every one of `parts`.
#[track_caller]
pub(super) fn assert_one(problems: Vec<String>, parts: &[&str]) {
    assert_eq!(problems.len(), 1, "{problems:#?}");
    for part in parts {
        assert!(
            problems[0].contains(part),
            "{:?} lacks {part:?}",
            problems[0]
        );
    }
}

#[test]
fn a_valid_configuration_passes() {
    assert_eq!(check(&valid()), Vec::<String>::new());
}

#[test]
fn api_version_must_be_1() {
    let mut r = valid();
    r.api_version = 2;
    assert_one(
        check(&r),
        &["cluster-configuration/manifest.json: api_version: Unsupported value: \"2\""],
    );
}

#[test]
fn hostname_localhost_is_refused() {
    let mut r = valid();
    r.hostname = "localhost".into();
    assert_one(check(&r), &["hostname: Invalid value: \"localhost\""]);
}

#[test]
fn hostname_must_be_a_node_name() {
    let mut r = valid();
    r.hostname = "SNO_1".into();
    assert_one(
        check(&r),
        &["hostname: Invalid value: \"SNO_1\"", "RFC 1123"],
    );
    r.hostname = format!("{}.example.com", "a".repeat(60));
    assert_one(check(&r), &["at most 64 characters"]);
}

#[test]
fn empty_hostname_is_resolved_later_with_the_same_rules() {
    let mut r = valid();
    r.hostname.clear();
    // Not refused up front: DHCP may name the node once the network is up.
    assert!(check(&r).is_empty());
    assert_eq!(resolved_hostname("", "from-dhcp").unwrap(), "from-dhcp");
    assert_eq!(resolved_hostname("sno-1", "seed-node").unwrap(), "sno-1");
    let e = resolved_hostname("", "localhost").unwrap_err().to_string();
    assert!(
        e.contains("hostname: Required value") && e.contains("\"localhost\""),
        "{e}"
    );
    let e = resolved_hostname("", "Node_1").unwrap_err().to_string();
    assert!(e.contains("hostname: Invalid value: \"Node_1\""), "{e}");
}

#[test]
fn cluster_name_must_be_a_label() {
    let mut r = valid();
    r.cluster_name = "sno.lab".into();
    assert_one(check(&r), &["cluster_name: Invalid value: \"sno.lab\""]);
}

#[test]
fn base_domain_is_required() {
    let mut r = valid();
    r.base_domain.clear();
    assert_one(check(&r), &["base_domain: Required value"]);
}

#[test]
fn cluster_id_is_a_required_uuid() {
    let mut r = valid();
    r.cluster_id = "not-a-uuid".into();
    assert_one(check(&r), &["cluster_id: Invalid value: \"not-a-uuid\""]);
    r.cluster_id.clear();
    assert_one(check(&r), &["cluster_id: Required value"]);
}

#[test]
fn the_seed_must_name_its_recert_image() {
    let mut s = seed();
    s.recert_image_pull_spec.clear();
    assert_one(
        check_with(&valid(), &s, &[]),
        &["/var/seed_data/manifest.json: recert_image_pull_spec: Required value"],
    );
}

#[test]
fn the_seed_ingress_cn_must_fit_recert_rules() {
    let mut s = seed();
    s.ingress_certificate_cn = "a,b".into();
    assert_one(
        check_with(&valid(), &s, &[]),
        &["/var/seed_data/manifest.json: ingress_certificate_cn"],
    );
}

#[test]
fn the_seed_must_have_node_ips() {
    let mut s = seed();
    s.node_ips.clear();
    assert_one(
        check_with(&valid(), &s, &[]),
        &["/var/seed_data/manifest.json: node_ips: Required value"],
    );
}

#[test]
fn node_ip_count_must_match_the_seed() {
    let mut r = valid();
    r.node_ips.push("2001:db8::20".into());
    r.machine_networks.push("2001:db8::/64".into());
    let mut s = seed();
    s.machine_networks.clear();
    assert_one(
        check_with(&r, &s, &[]),
        &[
            "node_ips: Invalid value",
            "has 2 address(es) but the seed has 1",
        ],
    );
}

#[test]
fn node_ip_family_must_match_the_seed_per_index() {
    let mut r = valid();
    r.node_ips = vec!["2001:db8::20".into()];
    r.machine_networks = vec!["2001:db8::/64".into()];
    let mut s = seed();
    s.machine_networks.clear();
    assert_one(
        check_with(&r, &s, &[]),
        &["node_ips[0]", "is IPv6 but the seed's node IP 0 is IPv4"],
    );
}

#[test]
fn node_ips_must_be_addresses() {
    let mut r = valid();
    r.node_ips = vec!["198.51.100.300".into()];
    assert_one(
        check(&r),
        &["node_ips[0]: Invalid value: \"198.51.100.300\": must be an IP address"],
    );
}

#[test]
fn machine_network_count_must_match_node_ips() {
    let mut r = valid();
    r.machine_networks.push("198.51.101.0/24".into());
    let mut s = seed();
    s.machine_networks.clear();
    assert_one(
        check_with(&r, &s, &[]),
        &["machine_networks", "has 2 network(s) for 1 node IP(s)"],
    );
}

#[test]
fn machine_network_must_contain_its_node_ip() {
    let mut r = valid();
    r.machine_networks = vec!["203.0.113.0/24".into()];
    assert_one(
        check(&r),
        &[
            "machine_networks[0]",
            "does not contain node IP 198.51.100.20",
        ],
    );
}

#[test]
fn machine_network_family_must_match_the_seed() {
    let mut r = valid();
    r.node_ips.clear();
    r.machine_networks = vec!["2001:db8::/64".into()];
    assert_one(
        check(&r),
        &[
            "machine_networks[0]",
            "is IPv6 but the seed's machine network 0 is IPv4",
        ],
    );
}

#[test]
fn machine_network_count_must_match_the_seed() {
    let mut r = valid();
    r.node_ips.clear();
    r.machine_networks.push("2001:db8::/64".into());
    assert_one(
        check(&r),
        &["machine_networks", "has 2 network(s) but the seed has 1"],
    );
}

#[test]
fn machine_networks_must_be_cidrs() {
    let mut r = valid();
    r.machine_networks.clear();
    r.machine_network = "198.51.100.0/33".into();
    assert_one(
        check(&r),
        &["machine_network: Invalid value: \"198.51.100.0/33\""],
    );
}

fn a_proxy() -> Proxy {
    Proxy {
        http_proxy: "http://proxy.example.com:3128".into(),
        https_proxy: String::new(),
        no_proxy: ".corp".into(),
    }
}

#[test]
fn a_proxy_needs_a_seed_made_with_one() {
    let mut r = valid();
    r.proxy = Some(a_proxy());
    assert_one(
        check(&r),
        &["proxy: the seed cluster was made without a proxy"],
    );
}

#[test]
fn a_seed_made_with_a_proxy_needs_one() {
    let mut s = seed();
    s.has_proxy = true;
    assert_one(check_with(&valid(), &s, &[]), &["proxy: Required value"]);
}

#[test]
fn proxy_urls_are_checked() {
    let mut r = valid();
    let mut s = seed();
    s.has_proxy = true;
    r.proxy = Some(Proxy {
        http_proxy: "socks5://proxy:1080".into(),
        ..a_proxy()
    });
    assert_one(
        check_with(&r, &s, &[]),
        &["proxy.httpProxy: Unsupported value: \"socks5://proxy:1080\""],
    );
}

#[test]
fn machine_networks_are_required() {
    let mut r = valid();
    let mut s = seed();
    s.machine_networks.clear();
    r.node_ips.clear();
    r.machine_networks.clear();
    assert_one(
        check_with(&r, &s, &[]),
        &["machine_networks: Required value: one machine network per node IP"],
    );
}
#[test]
fn pull_secret_is_required() {
    let mut r = valid();
    r.pull_secret.clear();
    assert_one(check(&r), &["pull_secret: Required value"]);
}

#[test]
fn pull_secret_must_be_json_and_is_not_echoed() {
    let mut r = valid();
    r.pull_secret = "{\"auths\": secret-token".into();
    let problems = check(&r);
    assert!(!problems[0].contains("secret-token"), "{problems:?}");
    assert_one(problems, &["pull_secret: Invalid value: is not valid JSON"]);
}

#[test]
fn ssh_key_must_parse() {
    let mut r = valid();
    r.ssh_key = "ssh-rsa AAAA".into();
    assert_one(check(&r), &["ssh_key: Invalid value"]);
}

#[test]
fn kubeadmin_password_hash_must_be_bcrypt() {
    let mut r = valid();
    r.kubeadmin_password_hash = "plain-password".into();
    let problems = check(&r);
    assert!(!problems[0].contains("plain-password"));
    assert_one(
        problems,
        &["kubeadmin_password_hash: Invalid value: must be a bcrypt hash"],
    );
    r.kubeadmin_password_hash.clear();
    assert!(check(&r).is_empty(), "empty means: remove kubeadmin");
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut r = valid();
    r.api_version = 0;
    r.hostname = "localhost".into();
    r.pull_secret.clear();
    r.node_ips = vec!["2001:db8::1".into()];
    let problems = check(&r);
    assert!(problems.len() >= 4, "{problems:#?}");
    for f in ["api_version", "hostname", "pull_secret", "node_ips[0]"] {
        assert!(
            problems.iter().any(|p| p.contains(f)),
            "{f} missing in {problems:#?}"
        );
    }
}

#[test]
fn discovered_node_ips_get_the_same_rules() {
    let mut r = valid();
    r.node_ips.clear();
    assert!(check(&r).is_empty());
    let s = seed();
    assert!(node_ips_after_discovery(&r, &s, &["198.51.100.20".into()]).is_ok());
    let e = node_ips_after_discovery(&r, &s, &["2001:db8::5".into()]).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("node_ips[0]") && text.contains("does not contain node IP 2001:db8::5"),
        "{text}"
    );
}

#[test]
fn reads_cert_manager_keys_from_the_directory() {
    let d = tempfile::tempdir().unwrap();
    assert!(
        read_cert_manager_keys(&d.path().join("absent"))
            .unwrap()
            .is_empty()
    );
    std::fs::write(d.path().join("CN=b__n_s.key"), "B").unwrap();
    std::fs::write(d.path().join("CN=a__n_s.key"), "A").unwrap();
    std::fs::create_dir(d.path().join("subdir")).unwrap();
    let keys = read_cert_manager_keys(d.path()).unwrap();
    let names: Vec<_> = keys.iter().map(|k| k.file_name.as_str()).collect();
    assert_eq!(names, ["CN=a__n_s.key", "CN=b__n_s.key"]);
    assert_eq!(keys[0].pem, b"A");
}
