//! Issue 15, for fleets: many sites in one call (one broken site does not
//! stop the others), and reproducible ISOs (the same identity state gives
//! the same bytes; dates from the state or SOURCE_DATE_EPOCH).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "support/schema.rs"]
mod schema;
mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use support::*;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
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

fn build(dir: &Path, env: &[(&str, &str)]) -> Vec<u8> {
    let o = run(
        &["create", "config-image", "--dir", dir.to_str().unwrap()],
        env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::read(dir.join("imagebasedconfig.iso")).unwrap()
}

/// The creation date of the primary volume descriptor ("YYYYMMDDHHMMSScc").
fn pvd_created(iso: &[u8]) -> String {
    let at = 16 * 2048 + 813;
    String::from_utf8(iso[at..at + 16].to_vec()).unwrap()
}

/// Sites `n` copies of the example, each in `parent/siteNN`.
fn sites(parent: &Path, n: usize) -> Vec<PathBuf> {
    let src = copy_example("config-image");
    (0..n)
        .map(|i| {
            let d = parent.join(format!("site{i:02}"));
            std::fs::create_dir(&d).unwrap();
            for f in ["install-config.yaml", "image-based-config.yaml"] {
                std::fs::copy(src.path().join(f), d.join(f)).unwrap();
            }
            d
        })
        .collect()
}

#[test]
fn the_same_state_gives_byte_identical_isos() {
    let d = copy_example("config-image");
    let first = build(d.path(), &[]);
    // Dates have one-second resolution: cross a second boundary.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = build(d.path(), &[]);
    assert!(first == second, "two runs with the same state differ");

    // The date is the identity's: the admin-kubeconfig signer's NotBefore.
    let state: Value =
        serde_json::from_slice(&std::fs::read(d.path().join(".sprout-state.json")).unwrap())
            .unwrap();
    let pem = state["api_crypto"]["admin_kubeconfig_signer"]["cert_pem"]
        .as_str()
        .unwrap();
    let cert = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    let created = pvd_created(&first);
    let as_asn1 = openssl::asn1::Asn1Time::from_str(&format!("{}Z", &created[..14])).unwrap();
    assert_eq!(
        as_asn1.compare(cert.not_before()).unwrap(),
        std::cmp::Ordering::Equal,
        "ISO date {created} is not the identity's NotBefore {}",
        cert.not_before()
    );

    // Another directory with a copy of the state: the same ISO again.
    let other = tempfile::tempdir().unwrap();
    for f in [
        "install-config.yaml",
        "image-based-config.yaml",
        ".sprout-state.json",
    ] {
        std::fs::copy(d.path().join(f), other.path().join(f)).unwrap();
    }
    assert!(build(other.path(), &[]) == first, "a copied state differs");

    // A new identity is a different ISO.
    let o = run(
        &[
            "create",
            "config-image",
            "--regenerate",
            "--dir",
            d.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(d.path().join("imagebasedconfig.iso")).unwrap() != first);
}

#[test]
fn source_date_epoch_sets_every_date() {
    let d = copy_example("config-image");
    let env = [("SOURCE_DATE_EPOCH", "1700000000")];
    let a = build(d.path(), &env);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = build(d.path(), &env);
    assert!(a == b, "two runs with SOURCE_DATE_EPOCH differ");
    // 1700000000 is 2023-11-14T22:13:20Z.
    assert_eq!(pvd_created(&a), "2023111422132000");
    if have("xorriso", "source_date_epoch_sets_every_date") {
        // Every file and directory the reader lists carries that date.
        let o = Command::new("xorriso")
            .args(["-indev"])
            .arg(d.path().join("imagebasedconfig.iso"))
            .args(["-find", "/", "-exec", "lsdl", "--"])
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&o.stdout);
        let lines: Vec<&str> = listing.lines().filter(|l| l.contains('/')).collect();
        assert!(lines.len() >= 4, "{listing}");
        for l in lines {
            assert!(l.contains("Nov 14  2023"), "not pinned: {l}");
        }
    }
    assert!(build(d.path(), &[]) != a, "SOURCE_DATE_EPOCH was ignored");
    let bad = run(
        &[
            "create",
            "config-image",
            "--dir",
            d.path().to_str().unwrap(),
        ],
        &[("SOURCE_DATE_EPOCH", "yesterday")],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("SOURCE_DATE_EPOCH=yesterday is not a number"));
}

/// Acceptance 3: 50 sites, one broken: 49 ISOs, one clear error, exit 1.
#[test]
fn a_batch_of_fifty_with_one_broken_site() {
    let parent = tempfile::tempdir().unwrap();
    let dirs = sites(parent.path(), 50);
    let broken = &dirs[17];
    edit_yaml(&broken.join("install-config.yaml"), |v| {
        v["baseDomain"] = "Not_A_Domain".into();
    });
    let mut args = vec!["create", "config-image", "--json"];
    for d in &dirs {
        args.extend(["--dir", d.to_str().unwrap()]);
    }
    let o = run(&args, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    schema::assert_valid("create-config-image", &doc);
    assert_eq!(doc["ok"], false);
    let results = doc["sites"].as_array().unwrap();
    assert_eq!(results.len(), 50);
    let mut ids = BTreeSet::new();
    for (d, r) in dirs.iter().zip(results) {
        assert_eq!(r["dir"], d.display().to_string(), "results keep the order");
        let iso = d.join("imagebasedconfig.iso");
        if d == broken {
            assert_eq!(r["ok"], false);
            assert!(!iso.exists());
            let p = &r["problems"][0];
            assert_eq!(p["subject"]["field"], "baseDomain");
        } else {
            assert_eq!(r["ok"], true, "{r:#}");
            assert!(iso.is_file());
            ids.insert(r["cluster_id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(ids.len(), 49, "every site has its own identity");
    let e = stderr(&o);
    assert_eq!(
        e.matches("1 of 50 sites failed").count(),
        1,
        "one summary: {e}"
    );
    assert!(
        e.contains(&format!("{}: 1 problem found", broken.display())),
        "{e}"
    );
}

#[test]
fn sites_dir_builds_each_subdirectory_and_text_names_them() {
    let parent = tempfile::tempdir().unwrap();
    let dirs = sites(parent.path(), 3);
    // Not sites: hidden directories and plain files.
    std::fs::create_dir(parent.path().join(".cache")).unwrap();
    std::fs::write(parent.path().join("README"), "x").unwrap();
    let o = run(
        &[
            "create",
            "config-image",
            "--jobs",
            "2",
            "--sites",
            parent.path().to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let named: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("dir: "))
        .collect();
    let want: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    assert_eq!(named, want, "{out}");
    for d in &dirs {
        assert!(out.contains(&format!(
            "iso: {}",
            d.join("imagebasedconfig.iso").display()
        )));
    }
    let empty = tempfile::tempdir().unwrap();
    let o = run(
        &[
            "create",
            "config-image",
            "--sites",
            empty.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no site directories in it"));
}
