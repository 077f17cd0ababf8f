//! `sprout ibi` killed (SIGKILL) and run again ends where an uninterrupted
//! run ends: host side of acceptance 4. The disk tools are stand-ins (see
//! tests/ibi_fixture/mod.rs); the seed restore, the journal and its move
//! to the target are real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod ibi_fixture;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ibi_fixture::{Machine, manifest};

const STATEROOT: &str = "mnt/ostree/deploy/rhcos_4.16.3";

/// The end state compared: the stateroot's `var`, the deployment (keyed
/// without its name), the pulled images and the partition "table".
fn end_state(m: &Machine) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in manifest(&m.root.join(STATEROOT).join("var")) {
        out.insert(format!("var/{k}"), v);
    }
    let deploy = m.root.join(STATEROOT).join("deploy");
    let deps: Vec<_> = std::fs::read_dir(&deploy)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .collect();
    assert_eq!(deps.len(), 1, "one deployment of the seed");
    for (k, v) in manifest(&deps[0].path()) {
        out.insert(format!("deployment/{k}"), v);
    }
    let mut images: Vec<String> = std::fs::read_to_string(m.state.join("images"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    images.sort();
    out.insert("images".into(), images.join(","));
    for f in ["appended", "mkfs", "grown", "post-ran"] {
        out.insert(
            f.into(),
            std::fs::read_to_string(m.state.join(f)).unwrap_or_else(|_| "absent".into()),
        );
    }
    out.insert(
        "rhcos".into(),
        m.root.join("mnt/ostree/deploy/rhcos").exists().to_string(),
    );
    out
}

/// Starts a run and SIGKILLs it once `when` says so (polled on the
/// progress events and the root); false if the run ended first.
fn kill_when(m: &Machine, progress: &Path, when: &dyn Fn(&str) -> bool) -> bool {
    let _ = std::fs::remove_file(progress);
    let mut child = m
        .command(&["--progress-json", progress.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before the kill point");
        }
        let text = std::fs::read_to_string(progress).unwrap_or_default();
        if when(&text) {
            child.kill().unwrap();
            child.wait().unwrap();
            return true;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no kill point reached"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn step_ended(text: &str, step: &str) -> bool {
    text.lines()
        .any(|l| l.contains("\"type\":\"step-end\"") && l.contains(&format!("\"step\":\"{step}\"")))
}

#[test]
fn killed_at_step_boundaries_and_mid_extraction_it_resumes_to_the_same_end() {
    if !ibi_fixture::have_tools() {
        return;
    }
    // Big enough that the kill lands inside var.tgz's extraction.
    let reference = Machine::new(16 << 20);
    let out = reference.run(&[]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let want = end_state(&reference);

    let m = Machine::sharing_seed(&reference);
    let progress = m.dir.path().join("progress.jsonl");
    for step in [
        "cleanup-disk",
        "install-rhcos",
        "mount-target",
        "import-seed-commit",
        "deploy-seed",
    ] {
        assert!(kill_when(&m, &progress, &|t| step_ended(t, step)), "{step}");
    }
    // In the middle of var.tgz: some of var is there, not all of it.
    let var = m.root.join(STATEROOT).join("var");
    let var_probe = var.clone();
    let journal_at = m.root.join("mnt/var/lib/sprout/ibi-journal.json");
    assert!(kill_when(&m, &progress, &move |_| {
        // The journal has restore-var running and var.tgz has begun.
        std::fs::read(&journal_at)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|j| {
                j["steps"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|s| s["id"] == "restore-var" && s["state"] == "running")
                })
            })
            && var_probe.join("lib/misc").exists()
    }));
    let partial = manifest(&var).len();
    let full = want.keys().filter(|k| k.starts_with("var/")).count();
    assert!(
        partial < full,
        "the kill came after the extraction ({partial} of {full} entries)"
    );
    let out = m.run(&[]);
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(end_state(&m), want, "the resumed run ended elsewhere");
    // The journal said what it resumed; finished steps were not redone.
    assert!(err.contains("restore-var"), "{err}");
    let journal: serde_json::Value = serde_json::from_slice(
        &std::fs::read(m.root.join("mnt/var/lib/sprout/ibi-journal.json")).unwrap(),
    )
    .unwrap();
    let var_entry = journal["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "restore-var")
        .unwrap();
    assert_eq!(
        var_entry["reason"], "resumed after an interrupted run",
        "{journal}"
    );
    // At least the mid-extraction kill and the rerun; a kill meant for the
    // boundary after deploy-seed can land once restore-var has begun on a
    // loaded machine, which adds an attempt without changing the end state.
    assert!(
        var_entry["attempts"].as_u64().is_some_and(|n| n >= 2),
        "{journal}"
    );
    let installs = m
        .calls()
        .lines()
        .filter(|l| l.starts_with("coreos-installer install"))
        .count();
    assert!(installs <= 2, "coreos-installer ran {installs} times");
}

/// A run killed without a reboot (SIGKILL) leaves its own mounts of the
/// target disk; the rerun resumes on them instead of refusing the disk as
/// mounted (found in the VM: tests/vm_ibi.rs). A disk mounted with no run
/// of sprout under way is still refused.
#[test]
fn a_rerun_after_a_kill_accepts_its_own_mounts_only() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let mounted = |m: &Machine| {
        std::fs::create_dir_all(m.root.join("proc")).unwrap();
        std::fs::write(
            m.root.join("proc/mounts"),
            format!("/dev/vda {} xfs rw 0 0\n", m.root.join("mnt").display()),
        )
        .unwrap();
    };
    let fresh = Machine::new(64 << 10);
    mounted(&fresh);
    let out = fresh.run(&[]);
    assert!(!out.status.success(), "a mounted disk was accepted");
    assert!(
        support::stderr(&out).contains("mounted"),
        "{}",
        support::stderr(&out)
    );

    let m = Machine::new(64 << 10);
    let out = m.run(&[]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    mounted(&m);
    let out = m.run(&[]);
    let err = support::stderr(&out);
    assert!(
        out.status.success(),
        "the rerun refused its own mounts: {err}"
    );
    assert!(
        err.contains("left mounted by an earlier sprout ibi run"),
        "{err}"
    );
}
