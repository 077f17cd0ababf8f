//! `sprout post-pivot --json` (issue 15), through the binary on node trees
//! (no stand-ins: these runs stop at validation, before any host tool):
//! the final status on stdout, the same document as
//! /var/lib/sprout/post-pivot-status.json, validated against
//! docs/schema/post-pivot-status.v1.json; every validation problem listed;
//! a refused start. A successful run's document is checked in
//! tests/postpivot_kube_run.rs (it needs the API test server in-process).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "postpivot/node.rs"]
mod node;
#[path = "support/schema.rs"]
mod schema;
mod support;

// tests/support/schema.rs finds the repository through the crate root.
use support::repo;

use std::path::Path;

use serde_json::{Value, json};

fn post_pivot(root: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["post-pivot", "--root", root.to_str().unwrap()];
    args.extend_from_slice(extra);
    support::sprout(&args)
}

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
fn a_start_refused_by_validation_prints_every_problem_then_a_refusal() {
    let d = tempfile::tempdir().unwrap();
    let mut r = node::unchanged();
    r.hostname = "localhost".into();
    r.pull_secret = "not json".into();
    node::build(d.path(), &node::seed(), &r);
    let out = post_pivot(d.path(), &["--json"]);
    let err = support::stderr(&out);
    assert_eq!(out.status.code(), Some(3), "terminal exit expected\n{err}");
    let doc = json_of(&out);
    schema::assert_valid("post-pivot-status", &doc);
    assert_eq!(doc["schema"], "sprout/post-pivot-status/v1");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["state"], "terminal");
    assert_eq!(doc["current_step"], "validate");
    let problems = doc["problems"].as_array().unwrap();
    let text = serde_json::to_string(problems).unwrap();
    assert!(problems.len() >= 2, "{doc:#}");
    for field in ["hostname", "pull_secret"] {
        assert!(text.contains(field), "{field} is not among {text}");
    }
    // No secret from the configuration in the document.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not json"));
    // The reasons on stderr too; the file is the same document.
    assert!(err.contains("hostname"), "{err}");
    let file: Value = serde_json::from_slice(
        &std::fs::read(d.path().join("var/lib/sprout/post-pivot-status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(file, doc);

    // The next start is refused (terminal state): a document, the file kept.
    let again = post_pivot(d.path(), &["--json"]);
    assert_eq!(again.status.code(), Some(3), "{}", support::stderr(&again));
    let refused = json_of(&again);
    schema::assert_valid("post-pivot-status", &refused);
    assert_eq!(refused["state"], "refused");
    assert_eq!(refused["attempt"], 0);
    assert!(
        refused["problems"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("an earlier start failed for good"),
        "{refused:#}"
    );
    let kept: Value = serde_json::from_slice(
        &std::fs::read(d.path().join("var/lib/sprout/post-pivot-status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(kept, file);
}

#[test]
fn json_refuses_what_keeps_no_status_and_the_schema_has_teeth() {
    let d = tempfile::tempdir().unwrap();
    // The discovery alone keeps no status: refused before any work.
    let out = post_pivot(d.path(), &["--json", "--until", "discovered"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(support::stderr(&out).contains("--until discovered"));
    let out = post_pivot(d.path(), &["--json", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));

    let good = json!({"schema": "sprout/post-pivot-status/v1", "ok": true, "state": "succeeded",
        "attempt": 0, "current_step": null, "steps": [{"id": "discover", "outcome": "ran",
        "duration_ms": 3}], "error": [], "problems": [], "updated": "2026-12-02T03:00:00.000Z"});
    schema::assert_valid("post-pivot-status", &good);
    let mut failed_ok = good.clone();
    failed_ok["state"] = "failed".into();
    let mut failed_silent = failed_ok.clone();
    failed_silent["ok"] = false.into();
    let mut unknown_state = good.clone();
    unknown_state["state"] = "done".into();
    let mut bad_step = good.clone();
    bad_step["steps"][0]["outcome"] = "would run".into();
    let mut no_schema = good.clone();
    no_schema.as_object_mut().unwrap().remove("schema");
    for bad in [failed_ok, failed_silent, unknown_state, bad_step, no_schema] {
        schema::assert_invalid("post-pivot-status", &bad);
    }
    assert_eq!(
        schema::load("post-pivot-status")["$defs"]["problem"],
        schema::load("create-image")["$defs"]["problem"]
    );
}
