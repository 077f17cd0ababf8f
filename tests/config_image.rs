//! `sprout create config-image` end to end: the ISO read back by real tools,
//! the credentials checked with openssl, manifest.json against hand-written
//! expected documents, and the identity kept across runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::path::Path;
use std::process::Command;

use base64::Engine;
use openssl::pkey::PKey;
use openssl::x509::X509;
use serde_json::Value;
use support::*;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn build(dir: &Path, extra: &[&str]) {
    let mut args = vec!["create", "config-image", "--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = sprout(&args);
    assert!(o.status.success(), "config-image failed: {}", stderr(&o));
}

fn manifest_from_iso(dir: &Path) -> (tempfile::TempDir, Value) {
    let x = extract_iso(&dir.join("imagebasedconfig.iso"));
    let text =
        std::fs::read_to_string(x.path().join("root/cluster-configuration/manifest.json")).unwrap();
    (x, serde_json::from_str(&text).unwrap())
}

fn kubeconfig(dir: &Path) -> Value {
    yaml_serde::from_str(&std::fs::read_to_string(dir.join("auth/kubeconfig")).unwrap()).unwrap()
}

fn pem_certs(bundle: &str) -> Vec<X509> {
    X509::stack_from_pem(bundle.as_bytes()).unwrap()
}

fn cn(cert: &X509) -> String {
    let e = cert
        .subject_name()
        .entries_by_nid(openssl::nid::Nid::COMMONNAME)
        .next()
        .unwrap();
    e.data().to_string().unwrap()
}

/// `openssl verify` accepts the certificate `client_pem` against `ca_pem`.
fn assert_openssl_verifies(ca_pem: &str, client_pem: &[u8]) {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("ca.pem"), ca_pem).unwrap();
    std::fs::write(t.path().join("client.pem"), client_pem).unwrap();
    let o = Command::new("openssl")
        .args(["verify", "-CAfile", "ca.pem", "client.pem"])
        .current_dir(t.path())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn key_matches(cert: &X509, key_pem: &str) -> bool {
    let key = PKey::private_key_from_pem(key_pem.as_bytes()).unwrap();
    cert.public_key().unwrap().public_eq(&key)
}

/// Acceptance 1: blkid sees the label, xorriso extracts every file as meant.
#[test]
fn iso_is_read_back_by_real_tools() {
    if !have("xorriso", "iso_is_read_back_by_real_tools")
        || !have("blkid", "iso_is_read_back_by_real_tools")
    {
        return;
    }
    let d = copy_example("config-image-dualstack");
    build(d.path(), &[]);
    let iso = d.path().join("imagebasedconfig.iso");
    let o = Command::new("blkid")
        .args(["-p", "-o", "export"])
        .arg(&iso)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&o.stdout);
    assert!(info.lines().any(|l| l == "LABEL=cluster-config"), "{info}");
    assert!(info.lines().any(|l| l == "TYPE=iso9660"), "{info}");
    let o = Command::new("blkid").arg(&iso).output().unwrap();
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(
        line.contains(r#"LABEL="cluster-config""#) && line.contains(r#"TYPE="iso9660""#),
        "{line}"
    );

    let x = extract_iso(&iso);
    let root = x.path().join("root");
    let got = snapshot(&root);
    let names: Vec<String> = got
        .keys()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "cluster-configuration",
            "cluster-configuration/manifest.json",
            "cluster-configuration/manifests",
            "cluster-configuration/manifests/image-digest-mirror-set.json",
            "extra-manifests",
            "extra-manifests/10-namespace.yaml",
            "extra-manifests/20-catalog.json",
        ]
    );
    for m in ["10-namespace.yaml", "20-catalog.json"] {
        assert_eq!(
            std::fs::read(root.join("extra-manifests").join(m)).unwrap(),
            std::fs::read(d.path().join("extra-manifests").join(m)).unwrap(),
            "{m} changed on its way into the ISO"
        );
    }
}

/// Acceptance 1: the directories exist even when empty.
#[test]
fn empty_directories_are_in_the_iso() {
    if !have("xorriso", "empty_directories_are_in_the_iso") {
        return;
    }
    let d = copy_example("config-image");
    build(d.path(), &[]);
    let x = extract_iso(&d.path().join("imagebasedconfig.iso"));
    assert!(
        x.path()
            .join("root/cluster-configuration/manifests")
            .is_dir()
    );
    assert!(x.path().join("root/extra-manifests").is_dir());
    assert!(
        !x.path()
            .join("root/cluster-configuration/manifests/image-digest-mirror-set.json")
            .exists()
    );
}

/// Replaces every `<placeholder>` in `expected` with the value `actual` has
/// at the same place, after `check` accepted it.
fn fill_placeholders(expected: &mut Value, actual: &Value, check: &dyn Fn(&str, &str)) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e.iter_mut() {
                if let Some(av) = a.get(k) {
                    fill_placeholders(v, av, check);
                }
            }
        }
        (e @ Value::String(_), Value::String(a)) => {
            let s = e.as_str().unwrap().to_string();
            if s.starts_with('<') && s.ends_with('>') {
                check(&s, a);
                *e = Value::String(a.clone());
            }
        }
        _ => {}
    }
}

fn check_placeholder(name: &str, value: &str) {
    match name {
        "<cluster_id>" => {
            let u = uuid::Uuid::parse_str(value).unwrap();
            assert_eq!(u.get_version_num(), 4);
            assert_eq!(value, value.to_lowercase());
        }
        "<infra_id>" => assert!(
            value.len() <= 27 && value.rsplit_once('-').unwrap().1.len() == 5,
            "{value}"
        ),
        "<kubeadmin_password_hash>" => {
            assert!(value.starts_with("$2a$10$") && value.len() == 60, "{value}")
        }
        "<ingress_certificate_cn>" => assert!(value.starts_with("ingress-operator@"), "{value}"),
        "<admin_ca_certificate>" => assert!(
            value.starts_with("-----BEGIN CERTIFICATE-----\n"),
            "{value}"
        ),
        _ if name.ends_with("private_key>") || name == "<ingress_ca>" => {
            assert!(
                value.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
                "{name}"
            )
        }
        _ => panic!("unknown placeholder {name}"),
    }
}

fn assert_matches_expected(actual_text: &str, expected_file: &str) {
    let actual: Value = serde_json::from_str(actual_text).unwrap();
    let mut expected: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/expected").join(expected_file)).unwrap(),
    )
    .unwrap();
    fill_placeholders(&mut expected, &actual, &check_placeholder);
    // serde_json keeps key order here, so this compares keys, values and order,
    // and the compact text form upstream writes.
    assert_eq!(
        actual_text,
        serde_json::to_string(&expected).unwrap(),
        "{expected_file}"
    );
}

/// Acceptance 3: manifest.json equals the hand-written documents.
#[test]
fn manifest_json_matches_expected_documents() {
    if !have("xorriso", "manifest_json_matches_expected_documents") {
        return;
    }
    for example in ["config-image", "config-image-dualstack"] {
        let d = copy_example(example);
        build(d.path(), &[]);
        let x = extract_iso(&d.path().join("imagebasedconfig.iso"));
        let cc = x.path().join("root/cluster-configuration");
        let text = std::fs::read_to_string(cc.join("manifest.json")).unwrap();
        assert_matches_expected(&text, &format!("{example}.manifest.json"));
        if example == "config-image-dualstack" {
            let idms =
                std::fs::read_to_string(cc.join("manifests/image-digest-mirror-set.json")).unwrap();
            assert_matches_expected(&idms, "config-image-dualstack.image-digest-mirror-set.json");
        }
    }
}

/// Acceptance 2: the credentials are consistent with manifest.json.
#[test]
fn credentials_verify_with_openssl() {
    if !have("xorriso", "credentials_verify_with_openssl")
        || !have("openssl", "credentials_verify_with_openssl")
    {
        return;
    }
    let d = copy_example("config-image");
    build(d.path(), &[]);
    let (_x, m) = manifest_from_iso(d.path());
    let kc = kubeconfig(d.path());
    assert_eq!(
        kc["clusters"][0]["cluster"]["server"],
        "https://api.sno1.example.com:6443"
    );
    assert_eq!(kc["current-context"], "admin");

    // The client certificate verifies against the admin-kubeconfig CA.
    let user = &kc["users"][0]["user"];
    let client_pem = B64
        .decode(user["client-certificate-data"].as_str().unwrap())
        .unwrap();
    let client_key_pem = B64
        .decode(user["client-key-data"].as_str().unwrap())
        .unwrap();
    let admin_ca =
        m["KubeconfigCryptoRetention"]["KubeAPICrypto"]["ClientAuthCrypto"]["admin_ca_certificate"]
            .as_str()
            .unwrap();
    assert_openssl_verifies(admin_ca, &client_pem);
    let client = X509::from_pem(&client_pem).unwrap();
    assert_eq!(cn(&client), "system:admin");
    assert!(key_matches(
        &client,
        std::str::from_utf8(&client_key_pem).unwrap()
    ));

    // The CA bundle holds the four server signers, in upstream's order, and
    // each signing key in manifest.json belongs to its certificate.
    let bundle = B64
        .decode(
            kc["clusters"][0]["cluster"]["certificate-authority-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let certs = pem_certs(std::str::from_utf8(&bundle).unwrap());
    let cns: Vec<String> = certs.iter().map(cn).collect();
    let ingress_cn = m["KubeconfigCryptoRetention"]["IngresssCrypto"]["ingress_certificate_cn"]
        .as_str()
        .unwrap();
    assert_eq!(
        cns,
        [
            "kube-apiserver-localhost-signer",
            "kube-apiserver-service-network-signer",
            "kube-apiserver-lb-signer",
            ingress_cn
        ]
    );
    let serving = &m["KubeconfigCryptoRetention"]["KubeAPICrypto"]["ServingCrypto"];
    for (cert, key) in certs.iter().zip([
        &serving["localhost_signer_private_key"],
        &serving["service_network_signer_private_key"],
        &serving["loadbalancer_external_signer_private_key"],
        &m["KubeconfigCryptoRetention"]["IngresssCrypto"]["ingress_ca"],
    ]) {
        assert!(
            key_matches(cert, key.as_str().unwrap()),
            "key of {} does not match",
            cn(cert)
        );
    }

    // The password file holds what the hash in manifest.json verifies.
    let password = std::fs::read_to_string(d.path().join("auth/kubeadmin-password")).unwrap();
    assert!(bcrypt::verify(&password, m["kubeadmin_password_hash"].as_str().unwrap()).unwrap());

    // Secrets are 0600, the ISO too: it carries signer keys, the pull
    // secret and the password hash.
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "imagebasedconfig.iso",
        "auth/kubeconfig",
        "auth/kubeadmin-password",
        ".sprout-state.json",
    ] {
        let mode = std::fs::metadata(d.path().join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
}

/// Acceptance 5: a second run keeps the identity; --regenerate replaces it.
#[test]
fn identity_is_kept_across_runs() {
    if !have("xorriso", "identity_is_kept_across_runs")
        || !have("openssl", "identity_is_kept_across_runs")
    {
        return;
    }
    let d = copy_example("config-image");
    build(d.path(), &[]);
    let (_x1, m1) = manifest_from_iso(d.path());
    let kc1 = std::fs::read(d.path().join("auth/kubeconfig")).unwrap();
    let pw1 = std::fs::read(d.path().join("auth/kubeadmin-password")).unwrap();

    // Inputs are still there: nothing was consumed.
    assert!(d.path().join("install-config.yaml").exists());
    assert!(d.path().join("image-based-config.yaml").exists());

    build(d.path(), &[]);
    let (_x2, m2) = manifest_from_iso(d.path());
    assert_eq!(m1, m2, "a re-run changed manifest.json");
    assert_eq!(
        kc1,
        std::fs::read(d.path().join("auth/kubeconfig")).unwrap()
    );
    assert_eq!(
        pw1,
        std::fs::read(d.path().join("auth/kubeadmin-password")).unwrap()
    );

    // The kubeconfig handed out after the first run still verifies against
    // the admin CA of the second run.
    let kc1: Value = yaml_serde::from_slice(&kc1).unwrap();
    let client = B64
        .decode(
            kc1["users"][0]["user"]["client-certificate-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let ca2 = m2["KubeconfigCryptoRetention"]["KubeAPICrypto"]["ClientAuthCrypto"]["admin_ca_certificate"].as_str().unwrap();
    assert_openssl_verifies(ca2, &client);

    build(d.path(), &["--regenerate"]);
    let (_x3, m3) = manifest_from_iso(d.path());
    assert_ne!(m3["cluster_id"], m1["cluster_id"]);
    assert_ne!(m3["infra_id"], m1["infra_id"]);
    assert_ne!(m3["kubeadmin_password_hash"], m1["kubeadmin_password_hash"]);
    assert_ne!(
        m3["KubeconfigCryptoRetention"],
        m1["KubeconfigCryptoRetention"]
    );
    assert_ne!(
        pw1,
        std::fs::read(d.path().join("auth/kubeadmin-password")).unwrap()
    );
}

/// A damaged state file stops the run with advice, and changes nothing.
#[test]
fn damaged_state_is_refused_with_advice() {
    let d = copy_example("config-image");
    std::fs::write(d.path().join(".sprout-state.json"), "{").unwrap();
    let before = snapshot(d.path());
    let o = sprout(&[
        "create",
        "config-image",
        "--dir",
        d.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains(".sprout-state.json is damaged") && e.contains("--regenerate"),
        "{e}"
    );
    assert_eq!(before, snapshot(d.path()));
}

#[test]
fn config_template_is_written_and_not_overwritten() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_str().unwrap();
    let o = sprout(&["create", "config-template", "--dir", dir]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.path().join("image-based-config.yaml")).unwrap();
    assert!(text.contains("kind: ImageBasedConfig"));
    let o = sprout(&["create", "config-template", "--dir", dir]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists; edit it, or use --force"));
}

#[test]
fn version_and_help() {
    let o = sprout(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("sprout {}", env!("CARGO_PKG_VERSION"))
    );
    let o = sprout(&["create", "config-image", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("imagebasedconfig.iso") && help.contains("--regenerate"),
        "{help}"
    );
}

/// The outputs' locations go to stdout (for scripts), messages to stderr.
#[test]
fn stdout_lists_outputs() {
    let d = copy_example("config-image");
    let o = sprout(&[
        "create",
        "config-image",
        "--dir",
        d.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for f in [
        "imagebasedconfig.iso",
        "auth/kubeconfig",
        "auth/kubeadmin-password",
    ] {
        let p = d.path().join(f);
        assert!(
            out.lines().any(|l| l.ends_with(&p.display().to_string())),
            "{f} not in {out}"
        );
        assert!(p.exists());
    }
    assert!(
        !out.contains("Config-Image created"),
        "messages belong on stderr"
    );
}
