//! Refused before any change: for each kind of invalid configuration, a
//! manifest of the test root (every path, its mode and its bytes' SHA-256)
//! is the same before and after.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::api::diag::InvalidInput;
use crate::api::install_config::Proxy;
use crate::postpivot::validate::tests::{generated, seed, valid};

const WD: &str = "/opt/openshift";

/// A node tree as post-pivot finds it after discovery.
fn node_root(reconfig: &SeedReconfiguration, cert_manager: &[(&str, &str)]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let put = |path: &str, bytes: &[u8], mode: u32| {
        let p = node_path(root.path(), path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    put(SEED_INFO, &serde_json::to_vec(&seed()).unwrap(), 0o600);
    put(
        &format!("{WD}/{MANIFEST}"),
        &serde_json::to_vec(reconfig).unwrap(),
        0o600,
    );
    put("/etc/hostname", b"seed-node\n", 0o644);
    put(
        "/etc/NetworkManager/system-connections/eth0.nmconnection",
        b"[connection]\n",
        0o600,
    );
    for (name, pem) in cert_manager {
        put(
            &format!("{WD}/{CERT_MANAGER_DIR}/{name}"),
            pem.as_bytes(),
            0o600,
        );
    }
    root
}

fn manifest(root: &Path) -> BTreeMap<PathBuf, (u32, String)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            let digest = if meta.is_dir() {
                stack.push(e.path());
                String::from("dir")
            } else {
                crate::hash::hex(&openssl::sha::sha256(&std::fs::read(e.path()).unwrap()))
            };
            out.insert(rel, (meta.permissions().mode(), digest));
        }
    }
    out
}

#[test]
fn a_valid_tree_is_read_and_checked() {
    let root = node_root(&valid(), &[]);
    let checked = read_and_check(root.path(), WD).unwrap();
    assert_eq!(checked.reconfig, valid());
    assert_eq!(checked.seed, seed());
}

#[test]
fn every_kind_of_invalid_configuration_is_refused_with_the_tree_unchanged() {
    let key = generated().api.lb_signer.key_pem.as_str();
    let with = |edit: &dyn Fn(&mut SeedReconfiguration)| {
        let mut r = valid();
        edit(&mut r);
        r
    };
    // (what the problem names, the configuration, cert-manager files)
    type Case<'a> = (&'a str, SeedReconfiguration, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        ("api_version", with(&|r| r.api_version = 7), vec![]),
        (
            "hostname",
            with(&|r| r.hostname = "localhost".into()),
            vec![],
        ),
        (
            "node_ips[0]",
            with(&|r| r.node_ips = vec!["2001:db8::20".into()]),
            vec![],
        ),
        (
            "machine_networks[0]",
            with(&|r| r.machine_networks = vec!["203.0.113.0/24".into()]),
            vec![],
        ),
        (
            "proxy",
            with(&|r| {
                r.proxy = Some(Proxy {
                    http_proxy: "http://proxy:3128".into(),
                    ..Default::default()
                })
            }),
            vec![],
        ),
        ("pull_secret", with(&|r| r.pull_secret = "{".into()), vec![]),
        (
            "ingress_ca",
            with(&|r| r.kubeconfig_crypto_retention.ingress_crypto.ingress_ca = "x".into()),
            vec![],
        ),
        (
            "certmanager-crypto/tls.key",
            valid(),
            vec![("tls.key", key)],
        ),
    ];
    for (what, reconfig, cm) in &cases {
        let root = node_root(reconfig, cm);
        let before = manifest(root.path());
        let e = read_and_check(root.path(), WD).unwrap_err();
        let invalid = e
            .downcast_ref::<InvalidInput>()
            .unwrap_or_else(|| panic!("{what}: {e:#}"));
        assert!(
            invalid.0.iter().any(|p| p.to_string().contains(what)),
            "{what}: {invalid}"
        );
        assert_eq!(before, manifest(root.path()), "{what}: the tree changed");
    }
}

#[test]
fn the_reconfiguration_may_be_yaml() {
    let root = node_root(&valid(), &[]);
    let yaml = yaml_serde::to_string(&valid()).unwrap();
    std::fs::write(node_path(root.path(), &format!("{WD}/{MANIFEST}")), yaml).unwrap();
    assert_eq!(read_and_check(root.path(), WD).unwrap().reconfig, valid());
}

#[test]
fn unreadable_inputs_name_the_file() {
    let root = node_root(&valid(), &[]);
    std::fs::write(node_path(root.path(), SEED_INFO), "{").unwrap();
    let e = format!("{:#}", read_and_check(root.path(), WD).unwrap_err());
    assert!(e.contains("var/seed_data/manifest.json"), "{e}");
    std::fs::remove_file(node_path(root.path(), SEED_INFO)).unwrap();
    let e = format!("{:#}", read_and_check(root.path(), WD).unwrap_err());
    assert!(e.contains("reading") && e.contains("manifest.json"), "{e}");
}

#[test]
fn kernel_hostname_of_a_copied_tree_is_its_etc_hostname() {
    let root = node_root(&valid(), &[]);
    assert_eq!(kernel_hostname(root.path()).unwrap(), "seed-node");
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(kernel_hostname(empty.path()).unwrap(), "");
    assert!(!kernel_hostname(Path::new("/")).unwrap().is_empty());
}
