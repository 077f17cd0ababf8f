//! The journal is never torn: a child rewriting it in a loop is SIGKILLed
//! at pseudo-random moments, and each time the file holds one whole
//! document (the old or the new one), never a partial one.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sprout::engine::journal::{Journal, JournalDoc, JournalStep, StepState};
use sprout::engine::{Fingerprint, Location};
use sprout::host::root::Root;

const DIR_ENV: &str = "SPROUT_TEST_JOURNAL_DIR";
const JOURNAL: &str = "journal.json";

/// The reason of round `i`: its length says which round wrote it, so a
/// document mixing two rounds is caught even if it parses.
fn reason_of(i: u32) -> String {
    format!("{i}:{}", "x".repeat((i as usize % 40) * 4096))
}

/// Child mode: rewrites the journal forever.
#[test]
fn child() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let root = Root::open(dir).unwrap();
    let at = [Location::new(root, JOURNAL)];
    let mut j = Journal::open(
        &at,
        "tear-test",
        &Fingerprint::new().with("config", "a"),
        false,
    )
    .unwrap();
    for i in 0.. {
        j.record(JournalStep {
            id: "copy".into(),
            state: StepState::Running,
            attempts: i,
            started: "2026-01-01T00:00:00.000Z".into(),
            ended: None,
            duration_ms: None,
            reason: Some(reason_of(i)),
            error: Vec::new(),
        });
        j.save().unwrap();
    }
}

#[test]
fn a_kill_during_a_write_leaves_the_old_or_the_new_document() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join(JOURNAL);
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rounds_seen = Vec::new();
    for _ in 0..25 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child", "--test-threads=1"])
            .env(DIR_ENV, d.path())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while !path.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the child never wrote"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // xorshift: 0..40 ms into the rewriting.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 40_000));
        child.kill().unwrap();
        child.wait().unwrap();

        let bytes = fs::read(&path).unwrap();
        let doc: JournalDoc = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("torn journal ({e}): {} bytes", bytes.len()));
        let step = &doc.steps[0];
        assert_eq!(step.reason.as_deref(), Some(&*reason_of(step.attempts)));
        rounds_seen.push(step.attempts);
        // At most the one temporary file the kill interrupted is left.
        let temps: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(temps.len() <= 1, "{temps:?}");
        // The next run's first save sweeps what the kill left.
        let root = Root::open(d.path()).unwrap();
        let at = [Location::new(root, JOURNAL)];
        let fp = Fingerprint::new().with("config", "a");
        Journal::open(&at, "tear-test", &fp, false)
            .unwrap()
            .save()
            .unwrap();
        let left: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [JOURNAL], "{left:?}");
        fs::remove_file(&path).unwrap();
    }
    // The kills did land at different points of the loop.
    rounds_seen.sort();
    rounds_seen.dedup();
    assert!(
        rounds_seen.len() > 1,
        "every kill found round {rounds_seen:?}"
    );
}
