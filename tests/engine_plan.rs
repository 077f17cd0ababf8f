//! The runner on one plan: upstream-style markers, a failure and its
//! report, RedoFromClean after a failure, `--until`, `--dry-run`, and the
//! journal moving.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod engine_steps;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use engine_steps::*;
use sprout::engine::journal::StepState;
use sprout::engine::progress::{Sink, Stamped};
use sprout::engine::*;
use sprout::host::root::Root;

#[test]
fn a_marker_from_another_tool_means_done_and_is_written_after_a_run() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    let with_marker = |id: &'static str| FileStep {
        marker: Some(PathBuf::from(format!("opt/openshift/{id}.done"))),
        ..step(id)
    };
    root.create_dir_all("opt/openshift", 0o755).unwrap();
    // "lca-cli" did `two` before it was interrupted.
    root.write_atomic("opt/openshift/two.done", b"", 0o644)
        .unwrap();
    let p = plan_of(vec![with_marker("one"), with_marker("two")]);
    let s = run(&root, &p, fp("a"), RunOptions::default());
    assert_ok(&s);
    assert_eq!(s.steps[1].outcome, Outcome::Ran);
    assert_eq!(s.steps[2].outcome, Outcome::Skipped);
    assert!(
        s.steps[2]
            .reason
            .as_deref()
            .unwrap()
            .contains("opt/openshift/two.done exists")
    );
    assert!(!root.exists("effects/two").unwrap(), "two was not run");
    assert!(root.exists("opt/openshift/one.done").unwrap());
}

#[test]
fn a_failure_stops_the_run_and_the_report_says_why() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    let p = plan_of(vec![
        step("one"),
        FileStep {
            fail: true,
            ..step("two")
        },
        step("three"),
    ]);
    let s = run(&root, &p, fp("a"), RunOptions::default());
    assert_eq!(s.outcome, "failed");
    assert_eq!(s.failed_step.as_deref(), Some("two"));
    assert_eq!(
        s.error_chain(),
        ["step two (makes effects/two) failed", "the disk is on fire"]
    );
    assert_eq!(s.steps.len(), 3, "three never started");
    assert_eq!(s.steps[2].outcome, Outcome::Failed);
    let j = journal(&root, JOURNAL);
    let two = j.steps.iter().find(|s| s.id == "two").unwrap();
    assert_eq!(two.state, StepState::Failed);
    assert_eq!(two.error, ["the disk is on fire"]);

    let config = serde_json::json!({"pullSecret": "{\"auths\":{\"q.io\":{}}}", "installationDisk": "/dev/sda"});
    RunReport::new(&s, &config, &fp("a"))
        .unwrap()
        .with_tool("ls")
        .with_tools_run()
        .write(&root, Path::new("report.json"))
        .unwrap();
    let text = fs::read_to_string(d.path().join("report.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["failed_step"], "two");
    assert_eq!(r["error"][1], "the disk is on fire");
    assert_eq!(r["steps"][1]["outcome"], "ran");
    assert!(r["steps"][1]["duration_ms"].is_u64());
    assert_eq!(r["config"]["pullSecret"], "<redacted>");
    assert_eq!(r["config"]["installationDisk"], "/dev/sda");
    assert!(!text.contains("q.io"));
    assert!(r["tools"]["ls"].as_str().unwrap().contains("ls"));
    // Programs run through Cmd are listed with their version.
    assert!(
        r["tools"]["findmnt"].as_str().unwrap().contains("findmnt"),
        "{text}"
    );
    assert_eq!(r["sprout_version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_failed_redo_from_clean_step_is_cleaned_before_its_retry() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    let failing = plan_of(vec![
        step("one"),
        FileStep {
            fail: true,
            ..step("three")
        },
    ]);
    let s = run(&root, &failing, fp("a"), RunOptions::default());
    assert_eq!(s.failed_step.as_deref(), Some("three"));
    assert!(root.exists("effects/three.partial").unwrap());
    // The retry cleans first (else its run would refuse the partial file).
    let s = run(
        &root,
        &plan_of(vec![step("one"), step("three")]),
        fp("a"),
        RunOptions::default(),
    );
    assert_ok(&s);
    assert_eq!(
        s.steps[2].reason.as_deref(),
        Some("redone from a clean state after a failed run")
    );
    assert_eq!(
        log_lines(&root),
        ["run one", "run three", "clean three", "run three"]
    );
}

#[test]
fn until_stops_after_the_step_and_dry_run_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    let bad = RunOptions {
        until: Some("six".into()),
        ..Default::default()
    };
    let msg = format!("{:#}", run(&root, &plan(), fp("a"), bad).error.unwrap());
    assert!(
        msg.contains("no step `six`; its steps are: read-inputs, one, two"),
        "{msg}"
    );
    let listing = plan().listing();
    assert!(
        listing.starts_with(" 1. read-inputs: reads the inputs\n 2. one: makes effects/one\n"),
        "{listing}"
    );

    root.create_dir_all("effects", 0o755).unwrap();
    root.write_atomic("effects/two", b"done", 0o644).unwrap();
    let before = fs::read_dir(d.path()).unwrap().count();
    let dry = RunOptions {
        dry_run: true,
        ..Default::default()
    };
    let s = run(&root, &plan(), fp("a"), dry);
    assert_ok(&s);
    assert_eq!(
        fs::read_dir(d.path()).unwrap().count(),
        before,
        "dry run wrote something"
    );
    assert!(!root.exists(JOURNAL).unwrap());
    let text = s.dry_run_text();
    assert!(text.contains(" 2. one (would run): makes effects/one\n    would write effects/one (inputs read 1 times)"), "{text}");
    assert!(
        text.contains(" 3. two (skipped): makes effects/two\n    already done: effects/two exists"),
        "{text}"
    );

    let until = RunOptions {
        until: Some("three".into()),
        ..Default::default()
    };
    let s = run(&root, &plan(), fp("a"), until);
    assert_eq!(s.outcome, "stopped");
    assert_eq!(s.steps.last().unwrap().id, "three");
    assert!(!root.exists("effects/four").unwrap());
    let s = run(&root, &plan(), fp("a"), RunOptions::default());
    assert_eq!(s.outcome, "succeeded");
    assert_eq!(s.steps[3].outcome, Outcome::Skipped);
    assert_eq!(s.steps[4].outcome, Outcome::Ran);
}

#[test]
fn the_journal_moves_and_is_found_where_it_went() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    let target = "mnt/var/lib/sprout/journal.json";
    let p = || {
        plan_of(vec![
            FileStep {
                relocate_to: Some(target.into()),
                ..step("one")
            },
            step("two"),
        ])
    };
    let s = run(&root, &p(), fp("a"), RunOptions::default());
    assert_ok(&s);
    assert!(!root.exists(JOURNAL).unwrap());
    let j = journal(&root, target);
    assert_eq!(j.steps.len(), 2);
    assert_eq!(
        fs::metadata(d.path().join(target))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap(),
        0o600
    );
    let s = Runner::new(
        &p(),
        root.clone(),
        Location::new(root.clone(), JOURNAL),
        fp("b"),
    )
    .also_look_in(Location::new(root.clone(), target))
    .run(&mut State::default());
    let msg = format!("{:#}", s.error.unwrap());
    assert!(
        msg.contains(&format!("the journal {}", d.path().join(target).display())),
        "{msg}"
    );
}

/// Records, at each step-end event, whether the journal is at `at` then:
/// what a watcher that kills the run on that event leaves behind.
struct JournalAtStepEnd {
    at: PathBuf,
    seen: Arc<Mutex<Vec<(String, bool)>>>,
}

impl Sink for JournalAtStepEnd {
    fn name(&self) -> String {
        "journal-at-step-end".into()
    }
    fn emit(&mut self, e: &Stamped<'_>) -> std::io::Result<()> {
        if let Event::StepEnd { step, .. } = e.event {
            self.seen
                .lock()
                .unwrap()
                .push((step.clone(), self.at.exists()));
        }
        Ok(())
    }
}

/// A run killed right after a step-end event (the vm-tests kill at every
/// boundary) must find the journal where that step moved it; and a step
/// found done (its mount left by a killed run) still moves the journal,
/// or it would stay in /run for good and be lost at the next reboot.
#[test]
fn the_journal_has_moved_before_the_step_end_event_also_when_found_done() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    let target = "mnt/var/lib/sprout/journal.json";
    let p = || {
        plan_of(vec![
            step("one"),
            FileStep {
                relocate_to: Some(target.into()),
                ..step("two")
            },
            step("three"),
        ])
    };
    let watch = |r: &Root, fp_: Fingerprint| {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let progress = Progress::new().with_sink(JournalAtStepEnd {
            at: d.path().join(target),
            seen: seen.clone(),
        });
        let s = Runner::new(&p(), r.clone(), Location::new(r.clone(), JOURNAL), fp_)
            .also_look_in(Location::new(r.clone(), target))
            .progress(progress)
            .run(&mut State::default());
        assert_ok(&s);
        seen.lock().unwrap().clone()
    };
    let seen = watch(&root, fp("a"));
    assert!(
        seen.contains(&("two".to_string(), true)),
        "the journal was not on the target at two's step-end: {seen:?}"
    );
    // A killed run's leftovers: two's effect is there (found done), the
    // journal back in /run, none on the target.
    let moved = fs::read(d.path().join(target)).unwrap();
    fs::remove_file(d.path().join(target)).unwrap();
    fs::create_dir_all(d.path().join(JOURNAL).parent().unwrap()).unwrap();
    fs::write(d.path().join(JOURNAL), &moved).unwrap();
    fs::remove_file(d.path().join("effects/three")).unwrap();
    let seen = watch(&root, fp("a"));
    assert!(
        seen.contains(&("two".to_string(), true)),
        "a step found done did not move the journal: {seen:?}"
    );
    assert!(!root.exists(JOURNAL).unwrap(), "the /run copy stayed");
}
