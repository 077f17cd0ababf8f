//! Issue 15, for callers that are programs: `--json` documents validated
//! against docs/schema/, and `--output PATH|-` for both ISO builders (the
//! streamed bytes are the file's bytes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "support/schema.rs"]
mod schema;
mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::*;

fn sprout_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sprout"));
    c.args(args)
        .env_remove("JOURNAL_STREAM")
        .env_remove("SPROUT_LOG")
        .env_remove("SOURCE_DATE_EPOCH");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn json_of(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    sprout::hash::hex(&sprout::hash::sha256(bytes))
}

fn config_image(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["create", "config-image", "--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    sprout_env(&args, &[])
}

#[test]
fn config_image_json_says_what_was_made_and_validates() {
    let d = copy_example("config-image");
    let o = config_image(d.path(), &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = json_of(&o);
    schema::assert_valid("create-config-image", &doc);
    assert_eq!(doc["ok"], true);
    let site = &doc["sites"][0];
    let iso_path = d.path().join("imagebasedconfig.iso");
    let iso = std::fs::read(&iso_path).unwrap();
    assert_eq!(site["iso"]["path"], iso_path.display().to_string());
    assert_eq!(site["iso"]["sha256"], sha256_hex(&iso));
    assert_eq!(site["iso"]["size"], iso.len() as u64);
    assert_eq!(site["identity"], "new");
    assert_eq!(
        site["kubeconfig"]["server"],
        "https://api.sno1.example.com:6443"
    );
    let kubeconfig: Value =
        yaml_serde::from_str(&std::fs::read_to_string(d.path().join("auth/kubeconfig")).unwrap())
            .unwrap();
    assert_eq!(
        kubeconfig["clusters"][0]["cluster"]["server"],
        site["kubeconfig"]["server"]
    );
    let state: Value =
        serde_json::from_slice(&std::fs::read(d.path().join(".sprout-state.json")).unwrap())
            .unwrap();
    assert_eq!(site["cluster_id"], state["cluster_id"]);
    assert_eq!(site["infra_id"], state["infra_id"]);
    // The password file's path, never the password.
    let password = std::fs::read_to_string(d.path().join("auth/kubeadmin-password")).unwrap();
    assert!(!String::from_utf8_lossy(&o.stdout).contains(&password));

    let again = json_of(&config_image(d.path(), &["--json"]));
    schema::assert_valid("create-config-image", &again);
    assert_eq!(again["sites"][0]["identity"], "reused");
    assert_eq!(again["sites"][0]["cluster_id"], site["cluster_id"]);
}

#[test]
fn failure_json_lists_every_problem_the_text_report_does() {
    let d = copy_example("config-image");
    edit_yaml(&d.path().join("install-config.yaml"), |v| {
        v["baseDomain"] = "Bad_Domain".into();
        v.as_object_mut().unwrap().remove("pullSecret");
    });
    edit_yaml(&d.path().join("image-based-config.yaml"), |v| {
        v["hostname"] = "-bad-".into();
    });
    let text = problems_of(
        &[
            "create",
            "config-image",
            "--dir",
            d.path().to_str().unwrap(),
        ],
        d.path(),
    );
    assert!(text.len() >= 3, "{text:?}");
    let o = config_image(d.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(1));
    let doc = json_of(&o);
    schema::assert_valid("create-config-image", &doc);
    assert_eq!(doc["ok"], false);
    let problems = doc["sites"][0]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), text.len(), "{problems:#?} vs {text:?}");
    for (p, line) in problems.iter().zip(&text) {
        assert_eq!(p["severity"], "error");
        let msg = p["problem"].as_str().unwrap();
        assert!(line.contains(msg), "{line:?} does not show {msg:?}");
        let file = p["subject"]["file"].as_str().unwrap();
        assert!(line.starts_with(file), "{line:?} does not name {file}");
    }
    // The same errors reach stderr for the people watching.
    assert!(stderr(&o).contains("found in the input; nothing was written"));
}

#[test]
fn failure_json_never_carries_a_pasted_private_key() {
    let d = copy_example("config-image");
    let key = openssl::pkey::PKey::generate_ed25519().unwrap();
    let pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let trust_bundle = format!("{pem}{pem}");
    edit_yaml(&d.path().join("install-config.yaml"), |v| {
        v["sshKey"] = pem.clone().into();
        v["additionalTrustBundle"] = trust_bundle.into();
    });
    let o = config_image(d.path(), &["--json"]);
    assert_eq!(o.status.code(), Some(1));
    let doc = json_of(&o);
    schema::assert_valid("create-config-image", &doc);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("sshKey"), "{text}");
    for line in pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!text.contains(line), "the key leaked into the JSON: {text}");
    }
}

#[test]
fn schemas_refuse_what_sprout_never_writes() {
    let good = serde_json::json!({
        "schema": "sprout/create-config-image/v1", "ok": false,
        "sites": [{"dir": "a", "ok": false, "problems": [{"severity": "error", "problem": "x"}]}]
    });
    schema::assert_valid("create-config-image", &good);
    // A failed site without a problem, an unknown severity, a success
    // without its ISO, a wrong version: all refused.
    for bad in [
        serde_json::json!({"schema": "sprout/create-config-image/v1", "ok": false,
            "sites": [{"dir": "a", "ok": false, "problems": []}]}),
        serde_json::json!({"schema": "sprout/create-config-image/v1", "ok": false,
            "sites": [{"dir": "a", "ok": false, "problems": [{"severity": "fatal", "problem": "x"}]}]}),
        serde_json::json!({"schema": "sprout/create-config-image/v1", "ok": true,
            "sites": [{"dir": "a", "ok": true, "problems": []}]}),
        serde_json::json!({"schema": "sprout/create-config-image/v2", "ok": true, "sites": []}),
    ] {
        schema::assert_invalid("create-config-image", &bad);
    }
    schema::assert_invalid(
        "create-image",
        &serde_json::json!({"schema": "sprout/create-image/v1", "ok": true, "dir": ".", "problems": []}),
    );
    // One problem shape everywhere.
    let p = schema::load("create-config-image")["$defs"]["problem"].clone();
    assert_eq!(schema::load("create-image")["$defs"]["problem"], p);
    assert_eq!(schema::load("seed-inspect")["$defs"]["problem"], p);
}

#[test]
fn output_dash_streams_exactly_the_file_bytes() {
    let d = copy_example("config-image");
    let o = config_image(d.path(), &["--output", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Nothing but the ISO on stdout, and no ISO in --dir.
    assert!(!d.path().join("imagebasedconfig.iso").exists());
    assert_eq!(&o.stdout[16 * 2048 + 1..16 * 2048 + 6], b"CD001");
    assert!(d.path().join(".sprout-state.json").is_file());
    assert!(d.path().join("auth/kubeconfig").is_file());

    // The same state again, into the directory: the same bytes.
    let o2 = config_image(d.path(), &[]);
    assert!(o2.status.success(), "{}", stderr(&o2));
    let file = std::fs::read(d.path().join("imagebasedconfig.iso")).unwrap();
    assert!(o.stdout == file, "--output - differs from the file");

    // --output PATH elsewhere, 0600 like the one in --dir.
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("site-a.iso");
    let o3 = config_image(d.path(), &["--output", target.to_str().unwrap(), "--json"]);
    assert!(o3.status.success(), "{}", stderr(&o3));
    let doc = json_of(&o3);
    schema::assert_valid("create-config-image", &doc);
    assert_eq!(doc["sites"][0]["iso"]["path"], target.display().to_string());
    assert!(std::fs::read(&target).unwrap() == file);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn conflicting_outputs_are_refused_before_anything_is_written() {
    let d = copy_example("config-image");
    let before = snapshot(d.path());
    let o = config_image(d.path(), &["--output", "-", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--json and --output - both want stdout"));
    assert!(o.stdout.is_empty());
    let o = config_image(
        d.path(),
        &["--dir", d.path().to_str().unwrap(), "--output", "x.iso"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--output works with a single --dir"),
        "{}",
        stderr(&o)
    );
    let o = config_image(d.path(), &["--output", "/nonexistent-dir/x.iso"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--output /nonexistent-dir/x.iso"));
    assert_eq!(before, snapshot(d.path()), "a refused run wrote something");
}

/// One live-ISO fixture, decompressed (the smallest with an Ignition area).
fn base_iso(into: &Path) -> Option<std::path::PathBuf> {
    let dir = repo().join("../shared/fixtures/coreos-live-iso");
    let mut found: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy().into_owned();
                    n.ends_with(".iso.xz") && !n.starts_with("synthetic")
                })
                .collect()
        })
        .unwrap_or_default();
    if found.is_empty() {
        skip_or_fail(
            "create image fixtures",
            &format!("no live ISO in {}", dir.display()),
        );
        return None;
    }
    found.sort_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(u64::MAX));
    let dest = into.join("base.iso");
    let mut dec = liblzma::read::XzDecoder::new(std::fs::File::open(&found[0]).unwrap());
    std::io::copy(&mut dec, &mut std::fs::File::create(&dest).unwrap()).unwrap();
    Some(dest)
}

#[test]
fn create_image_json_and_streamed_bytes() {
    let work = tempfile::tempdir().unwrap();
    let Some(base) = base_iso(work.path()) else {
        return;
    };
    let d = copy_example("image");
    let dir = d.path().to_str().unwrap();
    let base = base.to_str().unwrap();
    let o = sprout_env(
        &[
            "create",
            "image",
            "--dir",
            dir,
            "--base-iso",
            base,
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = json_of(&o);
    schema::assert_valid("create-image", &doc);
    let file = std::fs::read(d.path().join("rhcos-ibi.iso")).unwrap();
    assert_eq!(doc["iso"]["sha256"], sha256_hex(&file));
    assert_eq!(doc["iso"]["size"], file.len() as u64);

    // Streamed: the same bytes, and nothing else, on stdout (and so the
    // installation ISO is reproducible too: three runs, one set of bytes).
    let s = sprout_env(
        &[
            "create",
            "image",
            "--dir",
            dir,
            "--base-iso",
            base,
            "--output",
            "-",
        ],
        &[],
    );
    assert!(s.status.success(), "{}", stderr(&s));
    assert!(
        s.stdout == file,
        "create image --output - differs from the file"
    );
    // --output PATH: the same again.
    let p = work.path().join("out.iso");
    let o = sprout_env(
        &[
            "create",
            "image",
            "--dir",
            dir,
            "--base-iso",
            base,
            "--output",
            p.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("iso: {}\n", p.display())
    );
    assert!(std::fs::read(&p).unwrap() == file);

    // Failure: every problem, as JSON.
    std::fs::write(
        d.path().join("image-based-installation-config.yaml"),
        "seedImage: 7\n",
    )
    .unwrap();
    let f = sprout_env(
        &[
            "create",
            "image",
            "--dir",
            dir,
            "--base-iso",
            base,
            "--json",
        ],
        &[],
    );
    assert_eq!(f.status.code(), Some(1));
    let doc = json_of(&f);
    schema::assert_valid("create-image", &doc);
    assert_eq!(doc["ok"], false);
    assert!(!doc["problems"].as_array().unwrap().is_empty());
}

#[test]
fn seed_inspect_json_validates_usable_or_not() {
    let test = "seed_inspect_json_validates_usable_or_not";
    if !require("ostree", test) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = sprout::testing::seed::SeedSpec {
        var_payload: 64 << 10,
        ostree_payload: 16 << 10,
        var_small_files: 4,
        ..Default::default()
    };
    let seed = spec.build(work.path()).unwrap();
    let o = sprout_env(&["seed", "inspect", "--json", &seed.oci_ref()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = json_of(&o);
    schema::assert_valid("seed-inspect", &doc);
    assert_eq!(doc["schema"], "sprout/seed-inspect/v1");

    // Broken: the report still validates, with its errors.
    std::fs::remove_file(seed.root.join("manifest.json")).unwrap();
    let root = seed.root.to_str().unwrap();
    let o = sprout_env(&["seed", "inspect", "--json", root], &[]);
    assert!(!o.status.success());
    let doc = json_of(&o);
    schema::assert_valid("seed-inspect", &doc);
    assert_eq!(doc["usable"], false);
    assert!(
        doc["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["severity"] == "error")
    );
}
