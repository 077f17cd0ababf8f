//! Acceptance 4 of `create config-image`: one test per validation rule. Each
//! breaks one thing in a copy of a bundled example and checks the exact
//! message (file, field, what to do), a non-zero exit, and that nothing in
//! `--dir` changed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::*;

const IC: &str = "install-config.yaml";
const IBC: &str = "image-based-config.yaml";

fn edit(dir: &Path, file: &str, f: impl FnOnce(&mut Value)) {
    edit_yaml(&dir.join(file), f);
}

/// Runs config-image and returns the problem lines.
fn problems(dir: &Path) -> Vec<String> {
    problems_of(
        &["create", "config-image", "--dir", dir.to_str().unwrap()],
        dir,
    )
}

/// Breaks `example` with `f` and expects exactly `expected` among the problems.
fn expect(example: &str, file: &str, f: impl FnOnce(&mut Value), expected: &str) {
    let d = copy_example(example);
    edit(d.path(), file, f);
    let got = problems(d.path());
    assert!(
        got.iter().any(|l| l == expected),
        "expected {expected:?}\n got {got:#?}"
    );
}

/// Like `expect`, for messages whose tail comes from a library (serde, nmstate).
fn expect_prefix(example: &str, file: &str, f: impl FnOnce(&mut Value), prefix: &str) {
    let d = copy_example(example);
    edit(d.path(), file, f);
    let got = problems(d.path());
    assert!(
        got.iter().any(|l| l.starts_with(prefix)),
        "expected {prefix:?}…\n got {got:#?}"
    );
}

fn set(path: &[&str], value: Value) -> impl FnOnce(&mut Value) {
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    move |v| {
        let mut cur = v;
        for (i, k) in path.iter().enumerate() {
            if i + 1 == path.len() {
                cur[k.as_str()] = value;
                return;
            }
            cur = &mut cur[k.as_str()];
        }
    }
}

fn remove(key: &'static str) -> impl FnOnce(&mut Value) {
    move |v| {
        v.as_object_mut().unwrap().shift_remove(key);
    }
}

// install-config.yaml

#[test]
fn ic_unknown_key() {
    expect_prefix(
        "config-image",
        IC,
        set(&["wrongField"], json!(1)),
        "install-config.yaml: wrongField: unknown field `wrongField`",
    );
}

#[test]
fn ic_unknown_nested_key() {
    expect_prefix(
        "config-image",
        IC,
        set(
            &["networking", "machineNetwork"],
            json!([{"cidrr": "10.0.0.0/24"}]),
        ),
        "install-config.yaml: networking.machineNetwork[0].cidrr: unknown field `cidrr`",
    );
}

#[test]
fn ic_api_version() {
    expect(
        "config-image",
        IC,
        set(&["apiVersion"], json!("v2")),
        r#"install-config.yaml: apiVersion: Invalid value: "v2": install-config version must be "v1""#,
    );
}

#[test]
fn ic_cluster_name() {
    expect(
        "config-image",
        IC,
        set(&["metadata", "name"], json!("SNO_1")),
        r#"install-config.yaml: metadata.name: Invalid value: "SNO_1": must be a lower-case RFC 1123 label: letters a-z, digits and '-', starting and ending with a letter or digit, at most 63 characters"#,
    );
}

#[test]
fn ic_base_domain_required() {
    expect(
        "config-image",
        IC,
        remove("baseDomain"),
        "install-config.yaml: baseDomain: Required value: base domain required, e.g. baseDomain: example.com",
    );
}

#[test]
fn ic_pull_secret_required() {
    expect(
        "config-image",
        IC,
        remove("pullSecret"),
        "install-config.yaml: pullSecret: Required value: you must specify a pullSecret",
    );
}

#[test]
fn ic_pull_secret_needs_auths() {
    expect(
        "config-image",
        IC,
        set(&["pullSecret"], json!(r#"{"auths":{}}"#)),
        r#"install-config.yaml: pullSecret: Invalid value: auths required: the pull secret needs a non-empty "auths" object"#,
    );
}

#[test]
fn ic_pull_secret_entry_needs_auth() {
    expect(
        "config-image",
        IC,
        set(
            &["pullSecret"],
            json!(r#"{"auths":{"quay.io":{"email":"a@b"}}}"#),
        ),
        r#"install-config.yaml: pullSecret: Invalid value: "quay.io" requires either auth or credsStore"#,
    );
}

#[test]
fn ic_pull_secret_json_and_never_echoed() {
    let d = copy_example("config-image");
    edit(
        d.path(),
        IC,
        set(&["pullSecret"], json!("{secret-token-123")),
    );
    let got = problems(d.path());
    assert!(
        got.iter()
            .any(|l| l
                .starts_with("install-config.yaml: pullSecret: Invalid value: is not valid JSON")),
        "{got:#?}"
    );
    assert!(
        !got.iter().any(|l| l.contains("secret-token-123")),
        "the pull secret was echoed: {got:#?}"
    );
}

#[test]
fn ic_ssh_key() {
    expect_prefix(
        "config-image",
        IC,
        set(&["sshKey"], json!("not-a-key")),
        r#"install-config.yaml: sshKey: Invalid value: "not-a-key": ssh: no key found"#,
    );
}

#[test]
fn ic_trust_bundle() {
    expect(
        "config-image",
        IC,
        set(&["additionalTrustBundle"], json!("hello")),
        "install-config.yaml: additionalTrustBundle: Invalid value: invalid block: expected one or more PEM certificates (-----BEGIN CERTIFICATE-----)",
    );
}

#[test]
fn ic_platform_must_be_none() {
    expect(
        "config-image",
        IC,
        set(&["platform"], json!({"aws": {"region": "x"}})),
        r#"install-config.yaml: platform: Unsupported value: "aws": supported values: "none""#,
    );
}

#[test]
fn ic_platform_required() {
    expect(
        "config-image",
        IC,
        remove("platform"),
        "install-config.yaml: platform: Required value: image-based installation needs `platform: none: {}`",
    );
}

#[test]
fn ic_feature_set() {
    expect(
        "config-image",
        IC,
        set(&["featureSet"], json!("TechPreviewNoUpgrade")),
        r#"install-config.yaml: featureSet: Unsupported value: "TechPreviewNoUpgrade": supported values: "Default""#,
    );
}

#[test]
fn ic_control_plane_replicas() {
    expect(
        "config-image",
        IC,
        set(&["controlPlane", "replicas"], json!(3)),
        "install-config.yaml: controlPlane.replicas: Required value: Only Single Node OpenShift (SNO) is supported, total number of ControlPlane.Replicas must be 1. Found 3; set controlPlane.replicas: 1",
    );
}

#[test]
fn ic_control_plane_replicas_explicit() {
    expect(
        "config-image",
        IC,
        remove("controlPlane"),
        "install-config.yaml: controlPlane.replicas: Required value: Only Single Node OpenShift (SNO) is supported, total number of ControlPlane.Replicas must be 1. Found none (the default is 3); set controlPlane.replicas: 1",
    );
}

#[test]
fn ic_compute_replicas() {
    expect(
        "config-image",
        IC,
        set(&["compute"], json!([{"name": "worker", "replicas": 2}])),
        "install-config.yaml: compute: Required value: Total number of Compute.Replicas must be 0 when ControlPlane.Replicas is 1 for platform none. Found 2; set compute: [{name: worker, replicas: 0}]",
    );
}

#[test]
fn ic_compute_replicas_explicit() {
    expect(
        "config-image",
        IC,
        remove("compute"),
        "install-config.yaml: compute: Required value: Total number of Compute.Replicas must be 0 when ControlPlane.Replicas is 1 for platform none. Found none (the default is 3); set compute: [{name: worker, replicas: 0}]",
    );
}

#[test]
fn ic_network_type() {
    expect(
        "config-image",
        IC,
        set(&["networking", "networkType"], json!("OpenShiftSDN")),
        r#"install-config.yaml: networking.networkType: Invalid value: "OpenShiftSDN": Only OVNKubernetes network type is allowed for Single Node OpenShift (SNO) cluster"#,
    );
}

#[test]
fn ic_machine_networks_at_most_two() {
    expect(
        "config-image",
        IC,
        set(
            &["networking", "machineNetwork"],
            json!([{"cidr": "10.0.0.0/24"}, {"cidr": "fd00::/64"}, {"cidr": "10.1.0.0/24"}]),
        ),
        "install-config.yaml: networking.machineNetwork: Too many: 3: must have at most 2 items (one IPv4 and one IPv6 for dual-stack)",
    );
}

#[test]
fn ic_machine_network_cidr() {
    expect(
        "config-image",
        IC,
        set(
            &["networking", "machineNetwork"],
            json!([{"cidr": "10.0.0.1/24"}]),
        ),
        r#"install-config.yaml: networking.machineNetwork[0].cidr: Invalid value: "10.0.0.1/24": has host bits set; use the network address 10.0.0.0/24"#,
    );
}

#[test]
fn ic_machine_networks_one_per_family() {
    expect(
        "config-image",
        IC,
        set(
            &["networking", "machineNetwork"],
            json!([{"cidr": "10.0.0.0/24"}, {"cidr": "10.1.0.0/24"}]),
        ),
        r#"install-config.yaml: networking.machineNetwork: Invalid value: "10.0.0.0/24,10.1.0.0/24": two machine networks must be one IPv4 and one IPv6 (dual-stack)"#,
    );
}

#[test]
fn ic_service_network_cidr() {
    expect(
        "config-image",
        IC,
        set(&["networking", "serviceNetwork"], json!(["172.30.0.0"])),
        r#"install-config.yaml: networking.serviceNetwork[0]: Invalid value: "172.30.0.0": must be a CIDR such as 192.168.111.0/24 or fd00::/64"#,
    );
}

#[test]
fn ic_proxy_needs_a_url() {
    expect(
        "config-image-dualstack",
        IC,
        set(&["proxy"], json!({"noProxy": "example.com"})),
        "install-config.yaml: proxy: Required value: must include httpProxy or httpsProxy",
    );
}

#[test]
fn ic_http_proxy_scheme() {
    expect(
        "config-image-dualstack",
        IC,
        set(&["proxy", "httpProxy"], json!("https://proxy:3128")),
        r#"install-config.yaml: proxy.httpProxy: Unsupported value: "https://proxy:3128": supported values: "http""#,
    );
}

#[test]
fn ic_https_proxy_url() {
    expect(
        "config-image-dualstack",
        IC,
        set(&["proxy", "httpsProxy"], json!("localhost")),
        r#"install-config.yaml: proxy.httpsProxy: Invalid value: "localhost": parse "localhost": invalid URI for request (relative URL without a base); write it as http://host:port"#,
    );
}

#[test]
fn ic_no_proxy_wildcards() {
    expect(
        "config-image-dualstack",
        IC,
        set(&["proxy", "noProxy"], json!("example.com,*.example.net")),
        r#"install-config.yaml: proxy.noProxy: Invalid value: "example.com,*.example.net": each element of noProxy must be a IP, CIDR or domain without wildcard characters, which is violated by element 1 "*.example.net""#,
    );
}

#[test]
fn ic_proxy_needs_machine_network() {
    expect(
        "config-image-dualstack",
        IC,
        set(&["networking", "machineNetwork"], json!([])),
        "install-config.yaml: networking.machineNetwork: Required value: a proxy is configured, so the node's machine network must be given; add networking.machineNetwork with the node's subnet",
    );
}

#[test]
fn ic_mirror_source() {
    expect(
        "config-image-dualstack",
        IC,
        set(
            &["imageDigestSources"],
            json!([{"source": "Quay.io/ocp", "mirrors": ["mirror.example.com/ocp"]}]),
        ),
        r#"install-config.yaml: imageDigestSources[0].source: Invalid value: "Quay.io/ocp": failed to parse: invalid reference format: repository name must be lowercase"#,
    );
}

#[test]
fn ic_mirror_is_a_repository() {
    expect(
        "config-image-dualstack",
        IC,
        set(
            &["imageDigestSources"],
            json!([{"source": "quay.io/ocp", "mirrors": ["mirror.example.com/ocp:4.16"]}]),
        ),
        r#"install-config.yaml: imageDigestSources[0].mirrors[0]: Invalid value: "mirror.example.com/ocp:4.16": must be repository--not reference: remove the tag or digest"#,
    );
}

// image-based-config.yaml

#[test]
fn ibc_unknown_key() {
    expect_prefix(
        "config-image",
        IBC,
        set(&["wrongField"], json!(1)),
        "image-based-config.yaml: wrongField: unknown field `wrongField`",
    );
}

#[test]
fn ibc_hostname() {
    expect_prefix(
        "config-image",
        IBC,
        set(&["hostname"], json!("Bad_Host")),
        r#"image-based-config.yaml: hostname: Invalid value: "Bad_Host": must be a lower-case RFC 1123 subdomain"#,
    );
}

#[test]
fn ibc_hostname_localhost() {
    expect(
        "config-image",
        IBC,
        set(&["hostname"], json!("localhost")),
        r#"image-based-config.yaml: hostname: Invalid value: "localhost": localhost is not a usable node name; give the node's real name"#,
    );
}

#[test]
fn ibc_network_config_type() {
    expect(
        "config-image",
        IBC,
        set(
            &["networkConfig"],
            json!({"interfaces": [{"name": "eth0", "type": "invalid"}]}),
        ),
        r#"image-based-config.yaml: networkConfig: Invalid value: interfaces[0].type: unknown interface type "invalid"; use a type such as ethernet, bond or vlan"#,
    );
}

#[test]
fn ibc_network_config_address() {
    expect_prefix(
        "config-image",
        IBC,
        set(
            &["networkConfig"],
            json!({"interfaces": [{"name": "eth0", "type": "ethernet", "ipv4": {"enabled": true, "address": [{"ip": "300.1.1.1", "prefix-length": 24}]}}]}),
        ),
        "image-based-config.yaml: networkConfig: Invalid value: is not a valid nmstate network state",
    );
}

#[test]
fn ibc_ntp_source() {
    expect(
        "config-image",
        IBC,
        set(
            &["additionalNTPSources"],
            json!(["pool.ntp.org", "invalid-domain@"]),
        ),
        r#"image-based-config.yaml: additionalNTPSources[1]: Invalid value: "invalid-domain@": NTP server is not a valid IP or domain name"#,
    );
}

#[test]
fn ibc_release_registry() {
    expect_prefix(
        "config-image",
        IBC,
        set(&["releaseRegistry"], json!("Quay.io")),
        r#"image-based-config.yaml: releaseRegistry: Invalid value: "Quay.io""#,
    );
}

#[test]
fn ibc_node_label_key() {
    expect(
        "config-image",
        IBC,
        set(&["nodeLabels"], json!({"bad key": "x"})),
        r#"image-based-config.yaml: nodeLabels.bad key: Invalid value: "bad key": a label key name must be 1-63 characters of a-z, A-Z, 0-9, '-', '_' and '.', starting and ending alphanumeric"#,
    );
}

#[test]
fn ibc_cluster_id() {
    expect_prefix(
        "config-image",
        IBC,
        set(&["cluster_id"], json!("1234")),
        r#"image-based-config.yaml: cluster_id: Invalid value: "1234": must be a UUID"#,
    );
}

#[test]
fn ibc_infra_id() {
    expect_prefix(
        "config-image",
        IBC,
        set(&["infra_id"], json!("Infra_1")),
        r#"image-based-config.yaml: infra_id: Invalid value: "Infra_1": must be a lower-case RFC 1123 label"#,
    );
}

// extra-manifests/ and the files themselves

#[test]
fn extra_manifest_wrong_extension() {
    let d = copy_example("config-image-dualstack");
    std::fs::write(d.path().join("extra-manifests/notes.txt"), "x").unwrap();
    let got = problems(d.path());
    assert!(got.contains(&"extra-manifests: notes.txt: is not a .yaml, .yml or .json file, so it would not be applied; move it out of extra-manifests/ or give it one of those extensions (subdirectories are not read)".to_string()), "{got:#?}");
}

#[test]
fn extra_manifest_subdirectory() {
    let d = copy_example("config-image-dualstack");
    std::fs::create_dir(d.path().join("extra-manifests/more")).unwrap();
    let got = problems(d.path());
    assert!(
        got.iter()
            .any(|l| l.starts_with("extra-manifests: more: is not a .yaml, .yml or .json file")),
        "{got:#?}"
    );
}

#[test]
fn extra_manifest_not_an_object() {
    let d = copy_example("config-image-dualstack");
    std::fs::write(
        d.path().join("extra-manifests/30-bad.yaml"),
        "apiVersion: v1\nkind: A\n---\nfoo: bar\n",
    )
    .unwrap();
    let got = problems(d.path());
    assert!(got.contains(&"extra-manifests: 30-bad.yaml: document 2 is not a Kubernetes object: it needs apiVersion and kind".to_string()), "{got:#?}");
}

#[test]
fn install_config_missing() {
    let d = copy_example("config-image");
    std::fs::remove_file(d.path().join(IC)).unwrap();
    let got = problems(d.path());
    assert_eq!(
        got,
        [format!(
            "install-config.yaml: missing: install-config.yaml is required in {}",
            d.path().display()
        )]
    );
}

#[test]
fn image_based_config_missing() {
    let d = copy_example("config-image");
    std::fs::remove_file(d.path().join(IBC)).unwrap();
    let got = problems(d.path());
    assert_eq!(
        got,
        [format!(
            "image-based-config.yaml: missing: image-based-config.yaml is required in {}",
            d.path().display()
        )]
    );
}

#[test]
fn all_problems_of_a_run_are_reported_together() {
    let d = copy_example("config-image");
    edit(d.path(), IC, |v| {
        v["baseDomain"] = json!("Bad_Domain");
        v["controlPlane"]["replicas"] = json!(3);
    });
    edit(d.path(), IBC, set(&["hostname"], json!("localhost")));
    std::fs::create_dir(d.path().join("extra-manifests")).unwrap();
    std::fs::write(d.path().join("extra-manifests/x.txt"), "").unwrap();
    let got = problems(d.path());
    assert_eq!(got.len(), 4, "{got:#?}");
    for prefix in [
        "install-config.yaml: baseDomain:",
        "install-config.yaml: controlPlane.replicas:",
        "image-based-config.yaml: hostname:",
        "extra-manifests: x.txt:",
    ] {
        assert!(
            got.iter().any(|l| l.starts_with(prefix)),
            "{prefix} missing from {got:#?}"
        );
    }
}

#[test]
fn dir_must_exist() {
    let o = sprout(&[
        "create",
        "config-image",
        "--dir",
        "/nonexistent/sprout-test",
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/nonexistent/sprout-test is not a directory; pass --dir"),
        "{}",
        stderr(&o)
    );
}
