//! The journal's fingerprint is the run's inputs: a start with another
//! configuration than the one the journal was written for (a different
//! config ISO after the working directory was removed) is refused for good
//! with what to do, and changes nothing on the node.
//!
//! Real: the engine, the files. Stand-ins (tests/postpivot/standin.sh) for
//! chown, as in tests/postpivot_run.rs; nothing past pull-secret runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "postpivot/node.rs"]
mod node;

use std::path::Path;

use sprout::postpivot::flow::{self, Options};

fn sha256(p: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(p)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

#[test]
fn a_journal_for_another_configuration_is_refused_and_nothing_changes() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("node");
    let (_, mut reconfig) = node::full(&root);
    let bin = node::standin_dir(d.path());
    // SAFETY: the only test of this crate; no other thread reads the
    // environment while it is changed.
    unsafe {
        std::env::set_var("PATH", node::path_with(&bin));
        std::env::set_var("STANDIN_LOG", d.path().join("commands.log"));
        std::env::set_var("STANDIN_ROOT", &root);
    }
    let config = root.join("opt/openshift/cluster-configuration/manifest.json");
    let seed = root.join("var/seed_data/manifest.json");
    let mut opts = Options::new(root.clone());
    opts.until = Some("pull-secret".into());
    flow::run_with(
        &opts,
        Box::new(node::NotReached),
        Box::new(node::NotReached),
    )
    .unwrap();
    let journal_path = root.join("var/lib/sprout/post-pivot-journal.json");
    let journal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    assert_eq!(journal["fingerprint"]["config"], sha256(&config));
    assert_eq!(journal["fingerprint"]["seed"], sha256(&seed));
    assert_eq!(journal["fingerprint"]["job"], "post-pivot");

    // The same configuration resumes.
    opts.until = Some("pull-secret".into());
    flow::run_with(
        &opts,
        Box::new(node::NotReached),
        Box::new(node::NotReached),
    )
    .unwrap();

    // Another configuration (as from another config ISO) is refused.
    reconfig.hostname = "other-node".into();
    std::fs::write(&config, serde_json::to_vec(&reconfig).unwrap()).unwrap();
    let log_before = std::fs::read_to_string(d.path().join("commands.log")).unwrap();
    let skip = |p: &Path| p.starts_with("var/lib/sprout") || p.starts_with("etc/issue.d");
    let before: Vec<_> = node::manifest(&root)
        .into_iter()
        .filter(|(p, _)| !skip(p))
        .collect();
    opts.until = None;
    let e = flow::run_with(
        &opts,
        Box::new(node::NotReached),
        Box::new(node::NotReached),
    )
    .unwrap_err();
    let text = format!("{e:#}");
    assert!(flow::is_terminal(&e), "{text}");
    assert!(text.contains("is of a run for other inputs"), "{text}");
    assert!(text.contains("config differs"), "{text}");
    assert!(text.contains("sprout ibi"), "{text}");
    let after: Vec<_> = node::manifest(&root)
        .into_iter()
        .filter(|(p, _)| !skip(p))
        .collect();
    assert_eq!(before, after, "the node changed");
    assert_eq!(
        std::fs::read_to_string(d.path().join("commands.log")).unwrap(),
        log_before,
        "a command ran"
    );
    let status: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("var/lib/sprout/post-pivot-status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(status["state"], "terminal", "{status}");
    let issue =
        std::fs::read_to_string(root.join("etc/issue.d/50-sprout-post-pivot.issue")).unwrap();
    assert!(issue.contains("other inputs"), "{issue}");
    // --dry-run, what a field engineer runs next, says the same.
    let mut dry = opts.clone();
    dry.dry_run = true;
    let e =
        flow::run_with(&dry, Box::new(node::NotReached), Box::new(node::NotReached)).unwrap_err();
    assert!(
        format!("{e:#}").contains("is of a run for other inputs"),
        "{e:#}"
    );
    // The journal is kept as it was: it is the record of what was done.
    let kept: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    assert_eq!(kept["fingerprint"], journal["fingerprint"]);
}
