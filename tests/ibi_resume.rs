//! `sprout ibi` killed (SIGKILL) and run again ends where an uninterrupted
//! run ends: host side of acceptance 4 — at every step boundary of the
//! plan, in the middle of var.tgz and in the middle of the precache, some
//! of the kills followed by a "reboot" (a fresh /run, so the journal is
//! found on the target disk). Another install's journal is refused, and
//! --restart starts over. The disk tools are stand-ins (see
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

/// Starts a run (with `env`) and SIGKILLs it once `when` says so (polled
/// on the progress events); false if the run ended first.
fn kill_when(
    m: &Machine,
    progress: &Path,
    env: &[(&str, &str)],
    when: &dyn Fn(&str) -> bool,
) -> bool {
    let _ = std::fs::remove_file(progress);
    let mut cmd = m.command(&["--progress-json", progress.to_str().unwrap()]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stderr(std::process::Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(progress).unwrap_or_default();
        if when(&text) {
            let _ = child.kill();
            let status = child.wait().unwrap();
            // Exited on its own just before the kill: not a kill.
            return status.code().is_none();
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "no kill point reached"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn step_ended(text: &str, step: &str) -> bool {
    text.lines()
        .any(|l| l.contains("\"type\":\"step-end\"") && l.contains(&format!("\"step\":\"{step}\"")))
}

/// A power loss: /run is a new tmpfs and nothing is mounted.
fn reboot(m: &Machine) {
    let _ = std::fs::remove_dir_all(m.root.join("run"));
}

fn plan_steps(progress: &Path) -> Vec<String> {
    let first = std::fs::read_to_string(progress).unwrap();
    let v: serde_json::Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn journal_on_disk(m: &Machine) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(m.root.join("mnt/var/lib/sprout/ibi-journal.json")).unwrap(),
    )
    .unwrap()
}

fn count_calls(m: &Machine, prefix: &str) -> usize {
    m.calls().lines().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn killed_at_every_step_boundary_it_resumes_to_the_same_end() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let reference = Machine::new(64 << 10);
    let ref_progress = reference.dir.path().join("progress.jsonl");
    let out = reference.run(&["--progress-json", ref_progress.to_str().unwrap()]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let want = end_state(&reference);
    let steps = plan_steps(&ref_progress);
    let mounted_at = steps.iter().position(|s| s == "mount-target").unwrap();

    let m = Machine::sharing_seed(&reference);
    let progress = m.dir.path().join("progress.jsonl");
    let mut killed = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if kill_when(&m, &progress, &[], &|t| step_ended(t, step)) {
            killed.push(step.clone());
        }
        // Every other kill after the journal reached the disk is a power
        // loss: the journal in /run is gone and the disk is found again.
        if i > mounted_at && i % 2 == 0 {
            reboot(&m);
        }
    }
    eprintln!("killed after: {killed:?}");
    // Most boundaries were hit; a step that ends a few milliseconds before
    // the run does can finish the run first.
    assert!(
        killed.len() * 3 >= steps.len() * 2,
        "only {} of {} boundaries: {killed:?}",
        killed.len(),
        steps.len()
    );
    reboot(&m);
    let out = m.run(&[]);
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(end_state(&m), want, "the resumed run ended elsewhere");
    // Once the journal was on the disk, no reboot made it start over; a
    // kill before that may cost one more install.
    assert!(
        count_calls(&m, "coreos-installer install") <= 2,
        "{}",
        m.calls()
    );
    // The precache pulled each image once across all the runs.
    let pulls = std::fs::read_to_string(m.state.join("pulls.log")).unwrap();
    assert_eq!(pulls.lines().count(), 3, "{pulls}");
}

#[test]
fn killed_mid_extraction_and_rebooted_it_resumes_to_the_same_end() {
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
    // In the middle of var.tgz: some of var is there, not all of it.
    let var = m.root.join(STATEROOT).join("var");
    let var_probe = var.clone();
    let journal_at = m.root.join("mnt/var/lib/sprout/ibi-journal.json");
    assert!(kill_when(&m, &progress, &[], &move |_| {
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
    // And the power went with it: the journal is found on the disk.
    reboot(&m);
    let out = m.run(&[]);
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("resuming the install found on /dev/vda"),
        "{err}"
    );
    assert_eq!(end_state(&m), want, "the resumed run ended elsewhere");
    let journal = journal_on_disk(&m);
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
    assert_eq!(var_entry["attempts"], 2, "{journal}");
    assert_eq!(
        count_calls(&m, "coreos-installer install"),
        1,
        "{}",
        m.calls()
    );
}

#[test]
fn killed_mid_precache_it_pulls_only_what_is_missing() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let m = Machine::new(64 << 10);
    let progress = m.dir.path().join("progress.jsonl");
    let slow = [("STANDIN_PULL_SECONDS", "0.4"), ("MAX_PULL_THREADS", "1")];
    assert!(kill_when(&m, &progress, &slow, &|t| {
        t.contains("\"text\":\"pulled quay.io/") && !step_ended(t, "precache")
    }));
    let before: Vec<String> = std::fs::read_to_string(m.state.join("pulls.log"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert!(
        !before.is_empty() && before.len() < 3,
        "the kill was not in the middle of the precache: {before:?}"
    );
    reboot(&m);
    let out = m.run(&[]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let after: Vec<String> = std::fs::read_to_string(m.state.join("pulls.log"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(after.len(), 3, "an image was pulled twice: {after:?}");
    assert_eq!(&after[..before.len()], &before[..]);
    let mut unique = after.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{after:?}");
    // The disk was not installed again after the reboot.
    assert_eq!(
        count_calls(&m, "coreos-installer install"),
        1,
        "{}",
        m.calls()
    );
    assert_eq!(count_calls(&m, "wipefs --all"), 1, "{}", m.calls());
}

#[test]
fn after_a_reboot_another_install_is_refused_and_restart_starts_over() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let m = Machine::new(64 << 10);
    // --until stops after the step and a later run goes on from there.
    let out = m.run(&["--until", "restore-var"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let journal = journal_on_disk(&m);
    let ids: Vec<&str> = journal["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.last(), Some(&"restore-var"), "{ids:?}");
    let out = m.run(&["--until", "no-such-step"]);
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains("has no step `no-such-step`; its steps are: cleanup-disk"),
        "{}",
        support::stderr(&out)
    );

    // Power loss; then a different configuration: refused, nothing done.
    reboot(&m);
    m.write_config(|v| v["shutdown"] = false.into());
    let calls = m.calls();
    let out = m.run(&[]);
    let err = support::stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("holds an earlier sprout ibi install"), "{err}");
    assert!(err.contains("config differs"), "{err}");
    assert!(err.contains("--restart"), "{err}");
    let new_calls = &m.calls()[calls.len()..];
    assert!(
        new_calls.lines().all(|l| l.starts_with("sfdisk --json")
            || l.starts_with("mount -o ro")
            || l.starts_with("umount")),
        "the refused run did more than look: {new_calls}"
    );

    // The same configuration again: the install goes on where it stopped.
    m.write_config(|_| {});
    let out = m.run(&[]);
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("resuming the install found on /dev/vda"),
        "{err}"
    );
    assert_eq!(
        count_calls(&m, "coreos-installer install"),
        1,
        "{}",
        m.calls()
    );
    assert_eq!(count_calls(&m, "wipefs --all"), 1, "{}", m.calls());
    let journal = journal_on_disk(&m);
    let var = journal["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "restore-var")
        .unwrap();
    assert_eq!(var["attempts"], 1, "restore-var was redone: {journal}");

    // Another disk under the same journal (a new partition table): refused.
    reboot(&m);
    std::fs::write(
        m.state.join("ptid"),
        "11111111-2222-4333-8444-555555555555\n",
    )
    .unwrap();
    let out = m.run(&[]);
    let err = support::stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("the partition table id was"), "{err}");

    // --restart: starts over, wiping and installing again.
    m.write_config(|v| v["shutdown"] = false.into());
    let out = m.run(&["--restart"]);
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        count_calls(&m, "coreos-installer install"),
        2,
        "{}",
        m.calls()
    );
    assert_eq!(count_calls(&m, "wipefs --all"), 2, "{}", m.calls());
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
