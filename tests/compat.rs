//! sprout's `manifest.json` read the way each lca-cli release reads it.
//!
//! For every release from 4.16 to main, `tests/compat/schema/<release>.keys`
//! lists the keys and Go types of that release's SeedReconfiguration (written
//! from its Go source; tests/compat/INDEX says where from). The manifest of
//! each bundled example is decoded with Go's encoding/json rules for that
//! struct (unknown keys dropped, keys matched case-insensitively, a type
//! mismatch fails the whole decode), and the values that release's
//! post-pivot takes are checked against the inputs. `--seed-version` is
//! checked to refuse what a release cannot apply.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

#[path = "compat/go_decode.rs"]
mod go_decode;
#[path = "compat/needs.rs"]
mod needs;

use std::path::Path;
use std::process::Command;

use go_decode::Schema;
use needs::{check_needs, s, yaml_file};
use serde_json::Value;
use support::*;

/// Each release and the seed version used for it with `--seed-version`.
const RELEASES: &[(&str, &str)] = &[
    ("release-4.16", "4.16.0"),
    ("release-4.17", "4.17.12"),
    ("release-4.18", "4.18.7"),
    ("release-4.19", "4.19.3"),
    ("release-4.20", "4.20.0"),
    ("release-4.21", "4.21.1"),
    ("main", "4.22.0"),
];

/// True if `tool` runs; under CI=true a missing tool fails the test.
fn need(tool: &str, test: &str) -> bool {
    if have(tool, test) {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {tool} is required under CI=true"
    );
    false
}

fn schemas() -> Vec<(Schema, &'static str)> {
    RELEASES
        .iter()
        .map(|(release, version)| {
            let path = repo().join(format!("tests/compat/schema/{release}.keys"));
            let schema = Schema::load(release, &path);
            assert!(
                schema.max_machine_networks > 0 && !schema.machine_networks_from.is_empty(),
                "{release}: @machine-networks / @max-machine-networks missing"
            );
            (schema, *version)
        })
        .collect()
}

/// A temporary copy of an input directory (`examples/<name>` or
/// `tests/compat/inputs/<name>`).
fn inputs(rel: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let src = repo().join(rel);
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), d.path().join(e.file_name())).unwrap();
        }
    }
    d
}

/// Builds the config ISO in `dir` and returns sprout's stderr and the
/// manifest.json text read back from the ISO with xorriso.
fn build(dir: &Path, seed_version: Option<&str>) -> (String, String) {
    let mut args = vec!["create", "config-image", "--dir", dir.to_str().unwrap()];
    if let Some(v) = seed_version {
        args.extend(["--seed-version", v]);
    }
    let o = sprout(&args);
    assert!(o.status.success(), "config-image {args:?}: {}", stderr(&o));
    let x = extract_iso(&dir.join("imagebasedconfig.iso"));
    let text =
        std::fs::read_to_string(x.path().join("root/cluster-configuration/manifest.json")).unwrap();
    (stderr(&o), text)
}

/// The nmstate text as a YAML 1.1 reader (PyYAML) sees it equals the
/// input's networkConfig: no MAC address turned into a number.
fn assert_nmstate_reads_back_in_yaml_1_1(nmstate_text: &str, dir: &Path) {
    let want = yaml_file(dir, "image-based-config.yaml")["networkConfig"].clone();
    let o = Command::new("python3")
        .args([
            "-c",
            "import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(nmstate_text.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(o.status.success(), "python3 yaml: {}", stderr(&o));
    let got: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(got, want, "nmstate YAML read by PyYAML (YAML 1.1)");
}

fn python_yaml(test: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import yaml"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIP: {test}: python3-yaml is not installed (scripts/apt/base.list)");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: python3-yaml is required under CI=true"
        );
    }
    ok
}

/// Builds `rel` for every release, decodes it with that release's schema
/// and checks its needs. Releases that cannot take the configuration must
/// be refused by `--seed-version`.
fn serves_every_release(rel: &str, test: &str) {
    if !need("xorriso", test) {
        return;
    }
    let dir = inputs(rel);
    let (warnings, plain) = build(dir.path(), None);
    let networks = yaml_file(dir.path(), "install-config.yaml")["networking"]["machineNetwork"]
        .as_array()
        .unwrap()
        .len();
    if networks > 1 {
        assert!(
            warnings.contains("need a seed of OpenShift 4.20 or later")
                && warnings.contains("--seed-version"),
            "no dual-stack warning without --seed-version: {warnings}"
        );
    } else {
        assert!(!warnings.contains("WARN"), "unexpected warning: {warnings}");
    }
    let plain: Value = serde_json::from_str(&plain).unwrap();
    if python_yaml(test) {
        assert_nmstate_reads_back_in_yaml_1_1(s(&plain, "raw_nm_state_config"), dir.path());
    }
    let mut served = Vec::new();
    for (schema, version) in schemas() {
        if networks > schema.max_machine_networks {
            let problems = problems_of(
                &[
                    "create",
                    "config-image",
                    "--dir",
                    dir.path().to_str().unwrap(),
                    "--seed-version",
                    version,
                ],
                dir.path(),
            );
            assert_eq!(problems.len(), 1, "{problems:?}");
            let p = &problems[0];
            assert!(
                p.starts_with("install-config.yaml: networking.machineNetwork: ")
                    && p.contains("OpenShift 4.20 or later")
                    && p.contains(version),
                "{}: {p}",
                schema.release
            );
            continue;
        }
        let (_, text) = build(dir.path(), Some(version));
        let doc: Value = serde_json::from_str(&text).unwrap();
        // The flag only gates; the identity is reused, so the document is the same.
        assert_eq!(
            doc, plain,
            "{}: --seed-version changed the manifest",
            schema.release
        );
        let d = schema
            .decode(&doc)
            .unwrap_or_else(|e| panic!("{}: Go would fail to decode: {e}", schema.release));
        // Only the list keys a release predates may go unread.
        for k in &d.dropped {
            assert!(
                ["machine_networks", "node_ips"].contains(&k.as_str()),
                "{}: sprout writes {k}, which this release does not know",
                schema.release
            );
        }
        let bad = check_needs(&schema, &d, dir.path());
        assert!(bad.is_empty(), "{} ({version}): {bad:#?}", schema.release);
        served.push(schema.release.clone());
    }
    let expected = RELEASES.len() - if networks > 1 { 4 } else { 0 };
    assert_eq!(served.len(), expected, "{served:?}");
}

#[test]
fn single_stack_example_serves_every_release() {
    serves_every_release(
        "examples/config-image",
        "single_stack_example_serves_every_release",
    );
}

#[test]
fn single_stack_proxy_input_serves_every_release() {
    serves_every_release(
        "tests/compat/inputs/single-stack-proxy",
        "single_stack_proxy_input_serves_every_release",
    );
}

#[test]
fn dual_stack_example_serves_4_20_on_and_is_refused_before() {
    serves_every_release(
        "examples/config-image-dualstack",
        "dual_stack_example_serves_4_20_on_and_is_refused_before",
    );
}

/// The check can fail: the manifest without `machine_network` (what sprout
/// wrote before) does not serve 4.16–4.19 behind a proxy, and still serves
/// 4.20 and later.
#[test]
fn without_the_legacy_key_old_releases_fail() {
    let test = "without_the_legacy_key_old_releases_fail";
    if !need("xorriso", test) {
        return;
    }
    let dir = inputs("tests/compat/inputs/single-stack-proxy");
    let (_, text) = build(dir.path(), None);
    let mut doc: Value = serde_json::from_str(&text).unwrap();
    doc.as_object_mut()
        .unwrap()
        .remove("machine_network")
        .unwrap();
    for (schema, _) in schemas() {
        let d = schema.decode(&doc).unwrap();
        let bad = check_needs(&schema, &d, dir.path());
        if schema.max_machine_networks == 1 {
            assert!(
                bad.iter()
                    .any(|b| b
                        .contains("machineNetwork is empty, must be provided in case of proxy")),
                "{}: {bad:?}",
                schema.release
            );
        } else {
            assert!(bad.is_empty(), "{}: {bad:?}", schema.release);
        }
    }
}

#[test]
fn seed_version_refuses_seeds_before_4_16() {
    let dir = inputs("examples/config-image");
    let problems = problems_of(
        &[
            "create",
            "config-image",
            "--dir",
            dir.path().to_str().unwrap(),
            "--seed-version",
            "4.15.9",
        ],
        dir.path(),
    );
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("--seed-version: seed 4.15.9 is older than OpenShift 4.16"),
        "{}",
        problems[0]
    );
}

#[test]
fn seed_version_must_be_a_version() {
    let dir = inputs("examples/config-image");
    let before = snapshot(dir.path());
    for bad in ["4.18", "latest", "v4.18.7"] {
        let o = sprout(&[
            "create",
            "config-image",
            "--dir",
            dir.path().to_str().unwrap(),
            "--seed-version",
            bad,
        ]);
        assert!(!o.status.success(), "{bad} accepted");
        let e = stderr(&o);
        assert!(
            e.contains("--seed-version") && e.contains("X.Y.Z"),
            "{bad}: {e}"
        );
    }
    assert_eq!(before, snapshot(dir.path()));
}

/// `ibi-configuration.json` of the bundled `examples/image`, as `create
/// image` embeds it, decoded by each release's `lca-cli ibi`: the required
/// keys carry the inputs, every key with a release-specific default is
/// written explicitly, and what a release drops is exactly what it predates.
#[test]
fn ibi_configuration_serves_every_release() {
    use sprout::api::installation_config::{FILE, InstallationConfig};
    use sprout::create::image::ignition_config::{IgnitionInputs, generate};

    let dir = repo().join("examples/image");
    let text = std::fs::read_to_string(dir.join(FILE)).unwrap();
    let config: InstallationConfig = sprout::api::yaml::decode_strict(FILE, &text).unwrap();
    let post = std::fs::read(dir.join("post.sh")).unwrap();
    let generated = generate(&IgnitionInputs {
        config: &config,
        post_sh: Some(&post),
        install_config: None,
    })
    .unwrap();
    let doc: Value =
        serde_json::from_str(&generated.ibi_config.to_file_contents().unwrap()).unwrap();
    let input: Value = yaml_serde::from_str(&text).unwrap();
    for (release, _) in RELEASES {
        let schema = Schema::load(
            release,
            &repo().join(format!("tests/compat/ibiconfig/{release}.keys")),
        );
        let d = schema
            .decode(&doc)
            .unwrap_or_else(|e| panic!("{release}: Go would fail to decode: {e}"));
        for key in &schema.required {
            assert!(
                d.str(key)
                    .is_some_and(|v| !v.is_empty() && Some(v) == input[key].as_str()),
                "{release}: {key} missing or not the input's"
            );
        }
        for (key, _) in &schema.defaults {
            assert!(
                d.get(key).is_some(),
                "{release}: {key} left to the release's default"
            );
        }
        let mut dropped = d.dropped.clone();
        dropped.sort();
        let expected: &[&str] = match *release {
            "release-4.16" => &["coreosInstallerArgs", "releaseRegistry"],
            "release-4.17" => &["coreosInstallerArgs"],
            _ => &[],
        };
        assert_eq!(dropped, expected, "{release}");
    }
}

/// Every schema fixture is listed in tests/compat/INDEX, and every release
/// has one.
#[test]
fn every_fixture_is_indexed() {
    let index = std::fs::read_to_string(repo().join("tests/compat/INDEX")).unwrap();
    for (release, _) in RELEASES {
        assert!(
            index.contains(&format!("schema/{release}.keys")),
            "INDEX lacks {release}"
        );
    }
    for e in std::fs::read_dir(repo().join("tests/compat/schema")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            index.contains(&format!("schema/{name}")),
            "INDEX lacks {name}"
        );
    }
    assert!(index.contains("inputs/single-stack-proxy"));
}
