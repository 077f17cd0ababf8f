//! `sprout post-pivot --dry-run --root` on node trees (no stand-ins: a dry
//! run only reads): the exact recert_config.json of the golden scenarios,
//! and every invalid configuration refused before any change, through the
//! binary, with the tree's manifest (paths, modes, bytes) compared.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "postpivot/node.rs"]
mod node;
mod support;

use std::path::Path;

fn sprout(root: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["post-pivot", "--root", root.to_str().unwrap()];
    args.extend_from_slice(extra);
    support::sprout(&args)
}

#[test]
fn dry_run_prints_the_plan_and_the_exact_recert_config_for_each_golden_scenario() {
    for (name, seed, reconfig) in node::scenarios() {
        let d = tempfile::tempdir().unwrap();
        node::build(d.path(), &seed, &reconfig);
        let before = node::manifest(d.path());
        let out = sprout(d.path(), &["--dry-run"]);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{name}: {}\n{stdout}",
            support::stderr(&out)
        );
        assert_eq!(
            node::printed_recert_config(&stdout),
            node::expected_recert(name),
            "{name}"
        );
        // Every step is listed with what it would do.
        for id in [
            "ssh-key",
            "pull-secret",
            "hostname",
            "dnsmasq",
            "recert",
            "kubelet",
            "cleanup",
        ] {
            assert!(
                stdout.contains(&format!(". {id} (")),
                "{name}: no {id} in\n{stdout}"
            );
        }
        assert!(
            stdout.contains("podman run --rm --network=host"),
            "{stdout}"
        );
        assert!(
            stdout.contains("/etc/default/sno_dnsmasq_configuration_overrides"),
            "{stdout}"
        );
        assert_eq!(
            node::manifest(d.path()),
            before,
            "{name}: a dry run changed the tree"
        );
    }
}

/// One broken configuration per validation rule.
fn invalid_cases() -> Vec<(
    &'static str,
    sprout::api::seed_cluster_info::SeedClusterInfo,
    sprout::api::seed_reconfig::SeedReconfiguration,
    &'static str,
)> {
    let mut v = Vec::new();
    let mut r = node::unchanged();
    r.api_version = 2;
    v.push(("api version", node::seed(), r, "api_version"));
    let mut r = node::unchanged();
    r.hostname = "localhost".into();
    v.push(("localhost", node::seed(), r, "hostname"));
    let mut r = node::unchanged();
    r.node_ips = vec!["2001:db8::20".into()];
    v.push(("node IP family", node::seed(), r, "node_ips"));
    let mut r = node::unchanged();
    r.node_ips = vec!["192.0.2.10".into(), "2001:db8::20".into()];
    v.push(("node IP count", node::seed(), r, "node_ips"));
    let mut r = node::unchanged();
    r.machine_networks = vec!["2001:db8::/64".into()];
    v.push((
        "machine network family",
        node::seed(),
        r,
        "machine_networks",
    ));
    let mut r = node::unchanged();
    r.proxy = Some(sprout::api::install_config::Proxy {
        http_proxy: "http://p:3128".into(),
        https_proxy: String::new(),
        no_proxy: String::new(),
    });
    v.push(("proxy vs has_proxy", node::seed(), r, "proxy"));
    let mut r = node::unchanged();
    r.pull_secret = "not json".into();
    v.push(("pull secret", node::seed(), r, "pull_secret"));
    let mut r = node::unchanged();
    r.pull_secret = String::new();
    v.push(("no pull secret", node::seed(), r, "pull_secret"));
    let mut r = node::unchanged();
    r.kubeconfig_crypto_retention
        .kube_api_crypto
        .serving_crypto
        .localhost_signer_private_key =
        "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n".into();
    v.push((
        "a key that does not parse",
        node::seed(),
        r,
        "localhost_signer_private_key",
    ));
    v
}

#[test]
fn each_invalid_configuration_is_refused_before_any_change() {
    for (case, seed, reconfig, field) in invalid_cases() {
        let d = tempfile::tempdir().unwrap();
        node::build(d.path(), &seed, &reconfig);
        let before = node::manifest(d.path());
        // A real run (not --dry-run): it must stop at validation.
        let out = sprout(d.path(), &[]);
        let err = support::stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{case}: terminal exit expected\n{err}"
        );
        assert!(
            err.contains(field),
            "{case}: the error does not name {field}:\n{err}"
        );
        let mut after = node::manifest(d.path());
        // Only the report of the terminal state was written.
        let status: serde_json::Value = serde_json::from_slice(
            after[Path::new("var/lib/sprout/post-pivot-status.json")]
                .1
                .as_ref()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(status["state"], "terminal", "{case}: {status}");
        assert_eq!(status["current_step"], "validate", "{case}: {status}");
        let issue = after[Path::new("etc/issue.d/50-sprout-post-pivot.issue")]
            .1
            .clone()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&issue).contains("validate"),
            "{case}"
        );
        after.retain(|p, _| !p.starts_with("var/lib/sprout") && !p.starts_with("etc/issue.d"));
        assert_eq!(after, before, "{case}: the tree changed");
        // The dry run says the same, also without changing anything.
        let out = sprout(d.path(), &["--dry-run"]);
        assert!(!out.status.success(), "{case}");
    }
}
