//! Acceptance 4 of `create image`: one test per validation rule of
//! image-based-installation-config.yaml, each with its exact message, a
//! non-zero exit, and `--dir` left as it was.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::*;

const CONFIG: &str = "image-based-installation-config.yaml";

fn edit(dir: &Path, f: impl FnOnce(&mut Value)) {
    edit_yaml(&dir.join(CONFIG), f);
}

fn problems(dir: &Path) -> Vec<String> {
    // Validation comes before the base ISO is looked at, so a missing one is fine.
    problems_of(
        &[
            "create",
            "image",
            "--dir",
            dir.to_str().unwrap(),
            "--base-iso",
            "/nonexistent/base.iso",
        ],
        dir,
    )
}

fn broken(f: impl FnOnce(&mut Value)) -> Vec<String> {
    let d = copy_example("image");
    edit(d.path(), f);
    problems(d.path())
}

fn expect(f: impl FnOnce(&mut Value), expected: &str) {
    let got = broken(f);
    assert!(
        got.iter().any(|l| l == expected),
        "expected {expected:?}\n got {got:#?}"
    );
}

fn expect_prefix(f: impl FnOnce(&mut Value), prefix: &str) {
    let got = broken(f);
    assert!(
        got.iter().any(|l| l.starts_with(prefix)),
        "expected {prefix:?}…\n got {got:#?}"
    );
}

fn remove(key: &'static str) -> impl FnOnce(&mut Value) {
    move |v| {
        v.as_object_mut().unwrap().shift_remove(key);
    }
}

fn set(key: &'static str, value: Value) -> impl FnOnce(&mut Value) {
    move |v| v[key] = value
}

#[test]
fn unknown_key() {
    expect_prefix(
        set("precacheBestEffort", json!(true)),
        "image-based-installation-config.yaml: precacheBestEffort: unknown field `precacheBestEffort`",
    );
}

#[test]
fn seed_image_required() {
    expect(
        remove("seedImage"),
        "image-based-installation-config.yaml: seedImage: Required value: you must specify a seedImage",
    );
}

#[test]
fn seed_version_required() {
    expect(
        remove("seedVersion"),
        "image-based-installation-config.yaml: seedVersion: Required value: you must specify a seedVersion",
    );
}

#[test]
fn installation_disk_required() {
    expect(
        remove("installationDisk"),
        "image-based-installation-config.yaml: installationDisk: Required value: you must specify an installationDisk (prefer a stable /dev/disk/by-id/… path)",
    );
}

#[test]
fn installation_disk_is_a_device() {
    expect(
        set("installationDisk", json!("sda")),
        r#"image-based-installation-config.yaml: installationDisk: Invalid value: "sda": must be a device path such as /dev/disk/by-id/wwn-0x… or /dev/sda"#,
    );
}

#[test]
fn pull_secret_required() {
    expect(
        remove("pullSecret"),
        "image-based-installation-config.yaml: pullSecret: Required value: you must specify a pullSecret",
    );
}

#[test]
fn pull_secret_needs_auths() {
    expect(
        set("pullSecret", json!(r#"{"auths":{}}"#)),
        r#"image-based-installation-config.yaml: pullSecret: Invalid value: auths required: the pull secret needs a non-empty "auths" object"#,
    );
}

#[test]
fn ssh_key() {
    expect_prefix(
        set("sshKey", json!("ssh-rsa nope")),
        r#"image-based-installation-config.yaml: sshKey: Invalid value: "ssh-rsa nope": ssh: no key found"#,
    );
}

#[test]
fn trust_bundle() {
    expect(
        set(
            "additionalTrustBundle",
            json!("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
        ),
        "image-based-installation-config.yaml: additionalTrustBundle: Invalid value: every PEM block must be a CERTIFICATE; remove private keys and other blocks",
    );
}

#[test]
fn architecture() {
    expect_prefix(
        set("architecture", json!("s390x")),
        "image-based-installation-config.yaml: architecture: unknown variant `s390x`, expected `amd64` or `arm64`",
    );
}

#[test]
fn extra_partition_start() {
    expect(
        set("extraPartitionStart", json!("-10")),
        r#"image-based-installation-config.yaml: extraPartitionStart: Invalid value: "-10": partition start must be '0' or match pattern [+-]?<number>[KMGTP], e.g. -40G for the last 40 GiB of the disk"#,
    );
}

#[test]
fn extra_partition_start_not_empty() {
    expect(
        set("extraPartitionStart", json!("")),
        "image-based-installation-config.yaml: extraPartitionStart: Required value: partition start sector cannot be empty; use e.g. -40G (40 GiB at the end of the disk)",
    );
}

#[test]
fn extra_partition_label_not_empty() {
    expect(
        set("extraPartitionLabel", json!("")),
        "image-based-installation-config.yaml: extraPartitionLabel: Required value: the label of the seed's /var/lib/containers partition, usually var-lib-containers",
    );
}

#[test]
fn ignition_override_is_json() {
    expect_prefix(
        set("ignitionConfigOverride", json!("{nope")),
        "image-based-installation-config.yaml: ignitionConfigOverride: Invalid value: is not an Ignition config:",
    );
}

#[test]
fn ignition_override_keys_are_checked() {
    expect_prefix(
        set(
            "ignitionConfigOverride",
            json!(r#"{"ignition":{"version":"3.2.0"},"storage":{"filez":[]}}"#),
        ),
        "image-based-installation-config.yaml: ignitionConfigOverride: Invalid value: is not a valid Ignition config: unused key: $.storage.filez",
    );
}

#[test]
fn ignition_override_spec_version() {
    expect(
        set(
            "ignitionConfigOverride",
            json!(r#"{"ignition":{"version":"3.4.0"}}"#),
        ),
        "image-based-installation-config.yaml: ignitionConfigOverride: Invalid value: uses an Ignition spec newer than 3.2.0, which the installation ISO uses; write it for spec 3.2.0 or older",
    );
}

#[test]
fn ignition_override_cannot_take_the_install_unit() {
    let d = copy_example("image");
    edit(
        d.path(),
        set(
            "ignitionConfigOverride",
            json!(
                r#"{"ignition":{"version":"3.2.0"},"systemd":{"units":[{"name":"install-rhcos-and-restore-seed.service","enabled":false}]}}"#
            ),
        ),
    );
    let before = snapshot(d.path());
    let o = sprout(&[
        "create",
        "image",
        "--dir",
        d.path().to_str().unwrap(),
        "--base-iso",
        "/nonexistent/base.iso",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("ignitionConfigOverride defines the unit install-rhcos-and-restore-seed.service, which the installation ISO needs for itself; remove it from the override"),
        "{}",
        stderr(&o)
    );
    assert_eq!(before, snapshot(d.path()));
}

#[test]
fn image_digest_sources() {
    expect(
        set(
            "imageDigestSources",
            json!([{"source": "quay.io/ocp", "mirrors": ["Registry.lab.redhat.com:5000"]}]),
        ),
        r#"image-based-installation-config.yaml: imageDigestSources[0].mirrors[0]: Invalid value: "Registry.lab.redhat.com:5000": failed to parse: invalid reference format: repository name must be lowercase"#,
    );
}

#[test]
fn network_config() {
    expect(
        set(
            "networkConfig",
            json!({"interfaces": [{"name": "eth0", "type": "invalid"}]}),
        ),
        r#"image-based-installation-config.yaml: networkConfig: Invalid value: interfaces[0].type: unknown interface type "invalid"; use a type such as ethernet, bond or vlan"#,
    );
}

#[test]
fn proxy() {
    expect(
        set("proxy", json!({"httpProxy": "ftp://proxy:21"})),
        r#"image-based-installation-config.yaml: proxy.httpProxy: Unsupported value: "ftp://proxy:21": supported values: "http""#,
    );
}

#[test]
fn release_registry() {
    expect_prefix(
        set("releaseRegistry", json!("Mirror.Example")),
        r#"image-based-installation-config.yaml: releaseRegistry: Invalid value: "Mirror.Example""#,
    );
}

#[test]
fn coreos_installer_flag() {
    expect(
        set("coreosInstallerArgs", json!(["--test"])),
        "image-based-installation-config.yaml: coreosInstallerArgs[0]: Required value: found unexpected flag --test for coreosInstallerArgs - allowed flags are [--append-karg --delete-karg --save-partlabel --save-partindex]; give the flag and its value as two items",
    );
}

#[test]
fn coreos_installer_value_chars() {
    expect(
        set("coreosInstallerArgs", json!(["--append-karg", "a|b"])),
        "image-based-installation-config.yaml: coreosInstallerArgs[1]: Required value: found unexpected chars in value a|b for installer",
    );
}

#[test]
fn config_missing() {
    let d = tempfile::tempdir().unwrap();
    let got = problems(d.path());
    assert_eq!(
        got,
        [format!(
            "image-based-installation-config.yaml: missing: image-based-installation-config.yaml is required in {}",
            d.path().display()
        )]
    );
}

#[test]
fn invalid_install_config_beside_it_is_reported() {
    let d = copy_example("image");
    std::fs::write(
        d.path().join("install-config.yaml"),
        "apiVersion: v1\nplatform: {aws: {}}\n",
    )
    .unwrap();
    let got = problems(d.path());
    assert!(got.iter().any(|l| l == r#"install-config.yaml: platform: Unsupported value: "aws": supported values: "none""#), "{got:#?}");
}
