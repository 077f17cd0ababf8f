//! One test per key, certificate and trust-bundle rule (fixtures in
//! validate_tests.rs).

use super::tests::{
    OTHER_PUBLIC, SSH_PRIVATE, SSH_PUBLIC, assert_one, check, check_with, generated, seed, valid,
};
use super::*;
use crate::api::seed_reconfig::ServerSshKey;

#[test]
fn every_retained_key_is_required() {
    let mut r = valid();
    r.kubeconfig_crypto_retention
        .ingress_crypto
        .ingress_ca
        .clear();
    assert_one(
        check(&r),
        &["KubeconfigCryptoRetention.IngresssCrypto.ingress_ca: Required value"],
    );
}

#[test]
fn every_retained_key_must_parse() {
    let mut r = valid();
    // A certificate where a key belongs.
    r.kubeconfig_crypto_retention
        .kube_api_crypto
        .serving_crypto
        .localhost_signer_private_key = generated().api.lb_signer.cert_pem.clone();
    assert_one(
        check(&r),
        &[
            "KubeAPICrypto.ServingCrypto.localhost_signer_private_key: Invalid value: is not a PEM private key",
        ],
    );
}

#[test]
fn admin_ca_must_be_a_certificate() {
    let mut r = valid();
    r.kubeconfig_crypto_retention
        .kube_api_crypto
        .client_auth_crypto
        .admin_ca_certificate = generated().api.lb_signer.key_pem.clone();
    assert_one(
        check(&r),
        &["admin_ca_certificate: Invalid value: is not a PEM certificate"],
    );
}

#[test]
fn new_ingress_cn_must_fit_recert_rules() {
    let mut r = valid();
    r.kubeconfig_crypto_retention
        .ingress_crypto
        .ingress_certificate_cn = "ingress operator".into();
    assert_one(
        check(&r),
        &["ingress_certificate_cn: Invalid value: \"ingress operator\""],
    );
}

#[test]
fn user_ca_bundle_must_be_certificates() {
    let mut r = valid();
    r.additional_trust_bundle.user_ca_bundle = generated().api.lb_signer.key_pem.clone();
    assert_one(
        check(&r),
        &["additionalTrustBundle.userCaBundle: Invalid value"],
    );
}

#[test]
fn proxy_configmap_name_and_bundle_go_together() {
    let mut r = valid();
    r.additional_trust_bundle.proxy_configmap_name = "custom-ca".into();
    assert_one(
        check(&r),
        &["additionalTrustBundle: proxyConfigmapName and proxyConfigmapBundle"],
    );
}

#[test]
fn user_ca_bundle_configmap_needs_the_user_bundle() {
    let mut r = valid();
    r.additional_trust_bundle.proxy_configmap_name = "user-ca-bundle".into();
    r.additional_trust_bundle.proxy_configmap_bundle = generated().api.lb_signer.cert_pem.clone();
    assert_one(
        check(&r),
        &["additionalTrustBundle.userCaBundle: Required value"],
    );
}

#[test]
fn server_ssh_key_names_are_host_key_names() {
    let mut r = valid();
    r.server_ssh_keys = vec![ServerSshKey {
        file_name: "../authorized_keys".into(),
        file_content: SSH_PUBLIC.into(),
    }];
    assert_one(check(&r), &["server_ssh_keys[0].file_name: Invalid value"]);
}

#[test]
fn server_ssh_key_pairs_must_match() {
    let mut r = valid();
    let pair = |public: &str| {
        vec![
            ServerSshKey {
                file_name: "ssh_host_ed25519_key".into(),
                file_content: SSH_PRIVATE.into(),
            },
            ServerSshKey {
                file_name: "ssh_host_ed25519_key.pub".into(),
                file_content: public.into(),
            },
        ]
    };
    r.server_ssh_keys = pair(SSH_PUBLIC);
    assert!(check(&r).is_empty(), "{:?}", check(&r));
    r.server_ssh_keys = pair(OTHER_PUBLIC);
    assert_one(
        check(&r),
        &[
            "server_ssh_keys[0].file_content",
            "is not the private key of ssh_host_ed25519_key.pub",
        ],
    );
}

fn cm_key(name: &str, pem: &str) -> CertManagerKey {
    CertManagerKey {
        file_name: name.into(),
        pem: pem.as_bytes().to_vec(),
    }
}

#[test]
fn cert_manager_key_names_follow_the_pattern() {
    let key = &generated().api.lb_signer.key_pem;
    let keys = [
        cm_key("CN=api.example.com__openshift-ingress_router-cert.key", key),
        cm_key("router-cert.key", key),
        cm_key("README", "not a key, ignored like upstream"),
    ];
    assert_one(
        check_with(&valid(), &seed(), &keys),
        &["cluster-configuration/certmanager-crypto/router-cert.key: the name must be CN="],
    );
}

#[test]
fn cert_manager_cns_cannot_hold_rule_separators() {
    let key = &generated().api.lb_signer.key_pem;
    let keys = [cm_key("CN=system:grafana__ns_tls.key", key)];
    assert_one(
        check_with(&valid(), &seed(), &keys),
        &["cannot contain ':' or ' '"],
    );
}

#[test]
fn cert_manager_keys_must_parse() {
    let cert = &generated().api.lb_signer.cert_pem;
    let keys = [cm_key("CN=grafana__monitoring_grafana-tls.key", cert)];
    assert_one(
        check_with(&valid(), &seed(), &keys),
        &["grafana-tls.key: is not a PEM private key"],
    );
}
