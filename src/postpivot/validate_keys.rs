//! The key, certificate and trust-bundle rules of [`super::validate`]:
//! everything recert would otherwise trip over after the point of no return.

use openssl::pkey::PKey;
use openssl::x509::X509;

use super::CertManagerKey;
use crate::api::diag::{Problem, Problems};
use crate::api::seed_reconfig::{SeedReconfiguration, ServerSshKey};
use crate::api::validate as field;
use crate::postpivot::recert_config::{USER_CA_BUNDLE_CONFIGMAP, cert_manager_cn};

fn private_key(pem: &str) -> Result<(), String> {
    // An empty passphrase: an encrypted key fails instead of prompting.
    PKey::private_key_from_pem_passphrase(pem.as_bytes(), b"")
        .map(|_| ())
        .map_err(|_| "is not a PEM private key (RSA or EC, unencrypted)".to_string())
}

pub(super) fn kubeconfig_crypto(p: &mut Problems, r: &SeedReconfiguration) {
    const BASE: &str = "KubeconfigCryptoRetention";
    let c = &r.kubeconfig_crypto_retention;
    let serving = &c.kube_api_crypto.serving_crypto;
    let keys = [
        (
            "KubeAPICrypto.ServingCrypto.localhost_signer_private_key",
            &serving.localhost_signer_private_key,
        ),
        (
            "KubeAPICrypto.ServingCrypto.service_network_signer_private_key",
            &serving.service_network_signer_private_key,
        ),
        (
            "KubeAPICrypto.ServingCrypto.loadbalancer_external_signer_private_key",
            &serving.loadbalancer_external_signer_private_key,
        ),
        ("IngresssCrypto.ingress_ca", &c.ingress_crypto.ingress_ca),
    ];
    for (f, pem) in keys {
        let f = format!("{BASE}.{f}");
        if pem.is_empty() {
            p.required(&f, "recert must sign the cluster with the keys behind the kubeconfig you hold; make the configuration again");
        } else if let Err(e) = private_key(pem) {
            p.add(f, format!("Invalid value: {e}"));
        }
    }
    let ca = &c.kube_api_crypto.client_auth_crypto.admin_ca_certificate;
    let f = format!("{BASE}.KubeAPICrypto.ClientAuthCrypto.admin_ca_certificate");
    if ca.is_empty() {
        p.required(&f, "the CA of the admin kubeconfig's client certificate");
    } else if X509::from_pem(ca.as_bytes()).is_err() {
        p.add(f, "Invalid value: is not a PEM certificate");
    }
    let cn = &c.ingress_crypto.ingress_certificate_cn;
    if cn.contains([',', ':', ' ']) {
        p.invalid(
            &format!("{BASE}.IngresssCrypto.ingress_certificate_cn"),
            cn,
            "recert's rules cannot carry ',', ':' or ' '",
        );
    }
}

pub(super) fn trust_bundle(p: &mut Problems, r: &SeedReconfiguration) {
    let t = &r.additional_trust_bundle;
    if !t.user_ca_bundle.is_empty()
        && let Err(e) = field::trust_bundle(&t.user_ca_bundle)
    {
        p.add(
            "additionalTrustBundle.userCaBundle",
            format!("Invalid value: {e}"),
        );
    }
    match (
        t.proxy_configmap_name.is_empty(),
        t.proxy_configmap_bundle.is_empty(),
    ) {
        (true, true) => return,
        (false, true) | (true, false) => {
            p.add(
                "additionalTrustBundle",
                "proxyConfigmapName and proxyConfigmapBundle must be given together or not at all",
            );
            return;
        }
        (false, false) => {}
    }
    let name = &t.proxy_configmap_name;
    if field::dns_subdomain(name).is_err() {
        p.invalid(
            "additionalTrustBundle.proxyConfigmapName",
            name,
            "must be a ConfigMap name (lower-case RFC 1123 subdomain)",
        );
    }
    if name == USER_CA_BUNDLE_CONFIGMAP && t.user_ca_bundle.is_empty() {
        p.required(
            "additionalTrustBundle.userCaBundle",
            "proxyConfigmapName user-ca-bundle names the user CA bundle, so give it",
        );
    }
    if let Err(e) = field::trust_bundle(&t.proxy_configmap_bundle) {
        p.add(
            "additionalTrustBundle.proxyConfigmapBundle",
            format!("Invalid value: {e}"),
        );
    }
}

pub(super) fn server_ssh_key(p: &mut Problems, n: usize, key: &ServerSshKey, all: &[ServerSshKey]) {
    let f = format!("server_ssh_keys[{n}]");
    let name = &key.file_name;
    let stem = name.strip_suffix(".pub").unwrap_or(name);
    if !(stem.starts_with("ssh_host_") && stem.ends_with("_key")) || name.contains('/') {
        p.invalid(
            &format!("{f}.file_name"),
            name,
            "must be an /etc/ssh host key name such as ssh_host_ed25519_key[.pub]",
        );
        return;
    }
    if name.ends_with(".pub") {
        if ssh_key::PublicKey::from_openssh(&key.file_content).is_err() {
            p.add(
                format!("{f}.file_content"),
                "Invalid value: is not an OpenSSH public key",
            );
        }
        return;
    }
    let private = match ssh_key::PrivateKey::from_openssh(&key.file_content) {
        Ok(k) => k,
        Err(_) => {
            p.add(
                format!("{f}.file_content"),
                "Invalid value: is not an OpenSSH private key",
            );
            return;
        }
    };
    let pub_name = format!("{name}.pub");
    if let Some(public) = all.iter().find(|k| k.file_name == pub_name)
        && let Ok(public) = ssh_key::PublicKey::from_openssh(&public.file_content)
        && public.key_data() != private.public_key().key_data()
    {
        p.add(
            format!("{f}.file_content"),
            format!("is not the private key of {pub_name}; give the matching pair"),
        );
    }
}

pub(super) fn cert_manager_keys(keys: &[CertManagerKey]) -> Vec<Problem> {
    let mut out = Vec::new();
    for k in keys {
        if !k.file_name.ends_with(".key") {
            continue; // Upstream ignores other files too.
        }
        let mut p = Problems::new(&format!(
            "cluster-configuration/certmanager-crypto/{}",
            k.file_name
        ));
        match cert_manager_cn(&k.file_name) {
            None => p.add("", "the name must be CN=<common name>__<namespace>_<secret>.key, or the key is not kept"),
            Some(cn) if cn.contains([':', ' ']) || k.file_name.contains([':', ' ']) => {
                p.add("", "the name cannot contain ':' or ' ': recert splits its key rules on them")
            }
            Some(_) => {}
        }
        if private_key(&String::from_utf8_lossy(&k.pem)).is_err() {
            p.add("", "is not a PEM private key (RSA or EC, unencrypted)");
        }
        out.extend(p.into_vec());
    }
    out
}
