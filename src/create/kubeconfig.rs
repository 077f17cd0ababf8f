//! `auth/kubeconfig` (spec §2.8).
//!
//! Go writes the clientcmd v1 `Config` through sigs.k8s.io/yaml, i.e. via
//! JSON maps, so keys come out sorted and empty `apiVersion`/`kind` are
//! dropped. The structs below declare their fields in sorted order to get
//! the same layout from serde.

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use crate::create::crypto::{ApiCrypto, CertKey};

/// The user and context name the installer gives the admin credentials.
const ADMIN: &str = "admin";

#[derive(Serialize)]
struct Kubeconfig<'a> {
    clusters: Vec<NamedCluster<'a>>,
    contexts: Vec<NamedContext<'a>>,
    #[serde(rename = "current-context")]
    current_context: &'a str,
    preferences: Preferences,
    users: Vec<NamedUser<'a>>,
}

#[derive(Serialize)]
struct NamedCluster<'a> {
    cluster: Cluster,
    name: &'a str,
}

#[derive(Serialize)]
struct Cluster {
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: String,
    server: String,
}

#[derive(Serialize)]
struct NamedContext<'a> {
    context: ContextSpec<'a>,
    name: &'a str,
}

#[derive(Serialize)]
struct ContextSpec<'a> {
    cluster: &'a str,
    user: &'a str,
}

/// Serialises as `{}`, as Go's empty `Preferences` struct does.
#[derive(Serialize)]
struct Preferences {}

#[derive(Serialize)]
struct NamedUser<'a> {
    name: &'a str,
    user: User,
}

#[derive(Serialize)]
struct User {
    #[serde(rename = "client-certificate-data")]
    client_certificate_data: String,
    #[serde(rename = "client-key-data")]
    client_key_data: String,
}

/// Renders the admin kubeconfig of the cluster that the seed will be
/// reconfigured into.
///
/// The CA bundle is the set of signers the API server's serving certs are
/// re-signed with by recert (localhost, service network, load balancer) plus
/// the ingress signer, in the installer's order. The client certificate is
/// verified by the API server against the admin-kubeconfig signer, which is
/// handed to recert separately (manifest.json `admin_ca_certificate`).
/// The API server URL the admin kubeconfig points at.
pub fn server_url(cluster_name: &str, base_domain: &str) -> String {
    format!("https://api.{cluster_name}.{base_domain}:6443")
}

pub fn admin_kubeconfig(
    cluster_name: &str,
    base_domain: &str,
    api: &ApiCrypto,
    ingress_signer: &CertKey,
) -> Result<String> {
    let bundle: String = [
        &api.localhost_signer,
        &api.service_network_signer,
        &api.lb_signer,
        ingress_signer,
    ]
    .iter()
    .map(|ck| pem_block(&ck.cert_pem))
    .collect();
    let config = Kubeconfig {
        clusters: vec![NamedCluster {
            cluster: Cluster {
                certificate_authority_data: STANDARD.encode(bundle),
                server: server_url(cluster_name, base_domain),
            },
            name: cluster_name,
        }],
        contexts: vec![NamedContext {
            context: ContextSpec {
                cluster: cluster_name,
                user: ADMIN,
            },
            name: ADMIN,
        }],
        current_context: ADMIN,
        preferences: Preferences {},
        users: vec![NamedUser {
            name: ADMIN,
            user: User {
                client_certificate_data: STANDARD
                    .encode(pem_block(&api.admin_kubeconfig_client.cert_pem)),
                client_key_data: STANDARD.encode(pem_block(&api.admin_kubeconfig_client.key_pem)),
            },
        }],
    };
    yaml_serde::to_string(&config).context("serialising the admin kubeconfig")
}

/// Ensures each PEM ends with a newline so that concatenated blocks stay
/// parseable even if a state file stripped the trailing newline.
fn pem_block(pem: &str) -> String {
    let mut block = pem.to_string();
    if !block.ends_with('\n') {
        block.push('\n');
    }
    block
}

#[cfg(test)]
mod tests {
    use openssl::x509::X509;
    use serde_json::Value;

    use super::*;
    use crate::create::crypto::fixtures::{api_crypto, ingress_signer};

    fn render() -> (String, Value) {
        let yaml = admin_kubeconfig("sno", "example.com", api_crypto(), ingress_signer()).unwrap();
        let value: Value = yaml_serde::from_str(&yaml).unwrap();
        (yaml, value)
    }

    fn decode(v: &Value) -> String {
        String::from_utf8(STANDARD.decode(v.as_str().unwrap()).unwrap()).unwrap()
    }

    #[test]
    fn structure_matches_installer() {
        let (yaml, v) = render();
        assert_eq!(v["clusters"][0]["name"], "sno");
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://api.sno.example.com:6443"
        );
        assert_eq!(v["contexts"][0]["name"], "admin");
        assert_eq!(v["contexts"][0]["context"]["cluster"], "sno");
        assert_eq!(v["contexts"][0]["context"]["user"], "admin");
        assert_eq!(v["current-context"], "admin");
        assert_eq!(v["preferences"], serde_json::json!({}));
        assert_eq!(v["users"][0]["name"], "admin");
        assert_eq!(v["clusters"].as_array().unwrap().len(), 1);
        assert_eq!(v["contexts"].as_array().unwrap().len(), 1);
        assert_eq!(v["users"].as_array().unwrap().len(), 1);
        assert!(!yaml.contains("apiVersion"));
        assert!(!yaml.contains("kind"));
        assert!(yaml.contains("\npreferences: {}\n"));

        // Keys appear sorted at the top level (checked on the text, since a
        // parsed map may reorder them).
        let top: Vec<&str> = yaml
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('-'))
            .map(|l| l.split(':').next().unwrap())
            .collect();
        assert_eq!(
            top,
            [
                "clusters",
                "contexts",
                "current-context",
                "preferences",
                "users"
            ]
        );
        let mut sorted = top.clone();
        sorted.sort_unstable();
        assert_eq!(top, sorted);
    }

    #[test]
    fn ca_bundle_holds_the_four_server_signers_in_order() {
        let (_, v) = render();
        let bundle = decode(&v["clusters"][0]["cluster"]["certificate-authority-data"]);
        let certs = X509::stack_from_pem(bundle.as_bytes()).unwrap();
        let cns: Vec<String> = certs
            .iter()
            .map(|c| {
                c.subject_name()
                    .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                    .next()
                    .unwrap()
                    .data()
                    .to_string()
                    .unwrap()
            })
            .collect();
        let ingress_cn = ingress_signer().common_name().unwrap();
        assert_eq!(
            cns,
            [
                "kube-apiserver-localhost-signer",
                "kube-apiserver-service-network-signer",
                "kube-apiserver-lb-signer",
                ingress_cn.as_str(),
            ]
        );
        let api = api_crypto();
        let expected = format!(
            "{}{}{}{}",
            api.localhost_signer.cert_pem,
            api.service_network_signer.cert_pem,
            api.lb_signer.cert_pem,
            ingress_signer().cert_pem
        );
        assert_eq!(bundle, expected);
    }

    #[test]
    fn client_credentials_are_the_admin_client() {
        let (_, v) = render();
        let api = api_crypto();
        let user = &v["users"][0]["user"];
        let cert = decode(&user["client-certificate-data"]);
        let key = decode(&user["client-key-data"]);
        assert_eq!(cert, api.admin_kubeconfig_client.cert_pem);
        assert_eq!(key, api.admin_kubeconfig_client.key_pem);
        assert!(crate::create::crypto::key_matches_cert(&cert, &key).unwrap());

        // The client cert chains to the admin-kubeconfig CA (the one recert
        // installs as the API server's client CA), not to the server bundle.
        let client = X509::from_pem(cert.as_bytes()).unwrap();
        let admin_ca = X509::from_pem(api.admin_kubeconfig_signer.cert_pem.as_bytes()).unwrap();
        assert!(client.verify(&admin_ca.public_key().unwrap()).unwrap());
    }
}
