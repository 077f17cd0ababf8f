//! `sprout ibi --json` (issue 15): the run report on stdout, the same
//! document as /var/lib/sprout/ibi-report.json on the target, validated
//! against docs/schema/ibi-report.v1.json, for a full run and for refused
//! preflights. Real and stand-in parts: tests/ibi_fixture/mod.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod ibi_fixture;
#[path = "support/schema.rs"]
mod schema;
mod support;

// tests/support/schema.rs finds the repository through the crate root.
use support::repo;

use ibi_fixture::{Machine, manifest};
use serde_json::{Value, json};

fn json_of(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            support::stderr(o)
        )
    })
}

#[test]
fn a_full_run_prints_its_report_and_writes_the_same_on_the_target() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let m = Machine::new(64 << 10);
    let out = m.run(&["--json"]);
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    let doc = json_of(&out);
    schema::assert_valid("ibi-report", &doc);
    assert_eq!(doc["schema"], "sprout/ibi-report/v1");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["outcome"], "succeeded");
    assert_eq!(doc["problems"], json!([]));
    let steps = doc["steps"].as_array().unwrap();
    assert_eq!(steps.len(), sprout::ibi::steps::plan().steps().len());
    assert!(steps.iter().all(|s| s["outcome"] != "failed"), "{steps:#?}");
    let outcome = |doc: &Value, id: &str| {
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step {id}"))["outcome"]
            .clone()
    };
    assert_eq!(outcome(&doc, "install-rhcos"), "ran");
    // The seed and disk it was for, and no secret.
    assert_eq!(
        doc["fingerprint"]["disk"],
        format!("vda {} bytes", ibi_fixture::DISK_BYTES)
    );
    assert!(
        doc["fingerprint"]["seed"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(doc["config"]["seedImage"], m.seed.archive_ref());
    // The messages (the timings table among them) went to stderr.
    assert!(err.contains("sprout ibi: succeeded in"), "{err}");

    // The file on the target is the same document, 0600.
    let path = m.root.join("mnt/var/lib/sprout/ibi-report.json");
    let file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(file, doc);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // A second run finds the install done: skipped, still ok.
    let again = m.run(&["--json"]);
    assert!(again.status.success(), "{}", support::stderr(&again));
    let again = json_of(&again);
    schema::assert_valid("ibi-report", &again);
    assert_eq!(outcome(&again, "install-rhcos"), "skipped", "{again:#}");
}

#[test]
fn a_refused_preflight_prints_every_problem_and_changes_nothing() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let m = Machine::new(64 << 10);
    // Two problems of one run: a wrong version and a foreign partition label.
    m.write_config(|v| {
        v["seedVersion"] = "4.15.0".into();
        v["coreosInstallerArgs"] = json!(["--save-partlabel", "data"]);
    });
    let before = manifest(&m.root);
    let out = m.run(&["--json"]);
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let doc = json_of(&out);
    schema::assert_valid("ibi-report", &doc);
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["outcome"], "refused");
    assert!(doc.get("steps").is_none(), "{doc:#}");
    let problems = doc["problems"].as_array().unwrap();
    let text = serde_json::to_string(problems).unwrap();
    assert!(problems.len() >= 2, "{doc:#}");
    for want in ["4.15.0", "--save-partlabel"] {
        assert!(text.contains(want), "{want} is not among {text}");
    }
    assert!(problems.iter().all(|p| p["severity"] == "error"), "{text}");
    // The same reasons reach stderr for the people watching.
    assert!(
        err.contains("4.15.0") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(
        manifest(&m.root),
        before,
        "the refused run wrote under the root"
    );
    assert_eq!(m.calls(), "", "the refused run started a tool");
}

#[test]
fn json_refuses_to_share_stdout_and_the_schema_has_teeth() {
    let m = tempfile::tempdir().unwrap();
    let cfg = m.path().join("ibi.json");
    std::fs::write(&cfg, "{}").unwrap();
    // Both want stdout: refused before any work, without a document.
    let out = support::sprout(&[
        "ibi",
        "-f",
        cfg.to_str().unwrap(),
        "--json",
        "--progress-json",
        "fd:1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(support::stderr(&out).contains("both want stdout"));
    let out = support::sprout(&["ibi", "-f", cfg.to_str().unwrap(), "--json", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));

    let refused = json!({"schema": "sprout/ibi-report/v1", "ok": false, "outcome": "refused",
        "problems": [{"severity": "error", "problem": "x"}]});
    schema::assert_valid("ibi-report", &refused);
    let mut no_problem = refused.clone();
    no_problem["problems"] = json!([]);
    let mut ok_refusal = refused.clone();
    ok_refusal["ok"] = true.into();
    let mut with_steps = refused.clone();
    with_steps["steps"] = json!([]);
    // A success without its report, an unknown field, a failure without
    // its error chain, a wrong version: all refused too.
    for bad in [
        no_problem,
        ok_refusal,
        with_steps,
        json!({"schema": "sprout/ibi-report/v1", "ok": true, "outcome": "succeeded", "problems": []}),
        json!({"schema": "sprout/ibi-report/v1", "ok": false, "outcome": "refused",
            "problems": [{"severity": "error", "problem": "x"}], "disk": "/dev/vda"}),
        json!({"schema": "sprout/ibi-report/v2", "ok": false, "outcome": "refused",
            "problems": [{"severity": "error", "problem": "x"}]}),
    ] {
        schema::assert_invalid("ibi-report", &bad);
    }
    let full = json!({"schema": "sprout/ibi-report/v1", "ok": false, "outcome": "failed",
        "version": 1, "sprout_version": "0.1.0", "plan": "ibi",
        "started": "2026-12-02T03:00:00.000Z", "duration_ms": 5,
        "fingerprint": {"config": "sha256:ab", "seed": "sha256:cd", "disk": "vda 1 bytes"},
        "config": {}, "steps": [], "tools": {},
        "problems": [{"severity": "error", "problem": "x"}]});
    schema::assert_invalid("ibi-report", &full);
    let mut with_error = full.clone();
    with_error["error"] = json!(["x"]);
    schema::assert_valid("ibi-report", &with_error);
    // One problem shape everywhere.
    assert_eq!(
        schema::load("ibi-report")["$defs"]["problem"],
        schema::load("create-image")["$defs"]["problem"]
    );
}
