//! The runner across interruptions: a run SIGKILLed in each step resumes
//! at that step, a changed fingerprint refuses to resume, the machine (not
//! the journal) decides what is done, SIGTERM cancels cleanly.
//!
//! Kill tests run the plan in a child: this test binary again, in "child
//! mode" (SPROUT_TEST_PLAN_ROOT set), killed by the parent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod engine_steps;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use engine_steps::*;
use sprout::engine::journal::StepState;
use sprout::engine::*;
use sprout::host::root::Root;

/// Child mode: runs the plan, writes the outcomes to `outcomes.json`.
#[test]
fn child() {
    let Some(dir) = std::env::var_os(ROOT_ENV) else {
        return;
    };
    let root = Root::open(dir).unwrap();
    let s = run(&root, &plan(), fp("a"), RunOptions::default());
    let out: Vec<(String, String, Option<String>)> = s
        .steps
        .iter()
        .map(|r| {
            (
                r.id.clone(),
                r.outcome.as_str().to_string(),
                r.reason.clone(),
            )
        })
        .collect();
    root.write_atomic("outcomes.json", &serde_json::to_vec(&out).unwrap(), 0o644)
        .unwrap();
    s.into_result().unwrap();
}

fn child_cmd(dir: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(ROOT_ENV, dir)
        .env_remove(BLOCK_ENV);
    c
}

#[test]
fn a_run_killed_in_each_step_resumes_at_that_step() {
    for (k, id) in IDS.iter().enumerate() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::open(d.path()).unwrap();
        let mut child = child_cmd(d.path()).env(BLOCK_ENV, id).spawn().unwrap();
        let t0 = Instant::now();
        while !log_lines(&root).contains(&format!("blocked {id}")) {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "step {id} never started"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let j = journal(&root, JOURNAL);
        for done in &IDS[..k] {
            assert_eq!(
                j.steps.iter().find(|s| s.id == *done).unwrap().state,
                StepState::Done
            );
        }
        let interrupted = j.steps.iter().find(|s| s.id == *id).unwrap();
        assert_eq!(interrupted.state, StepState::Running, "{id}");
        assert_eq!(j.steps.len(), k + 1, "no later step was started");

        let o = child_cmd(d.path()).output().unwrap();
        assert!(
            o.status.success(),
            "resume after {id}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out: Vec<(String, String, Option<String>)> =
            serde_json::from_slice(&fs::read(d.path().join("outcomes.json")).unwrap()).unwrap();
        assert_eq!(out[0].0, "read-inputs");
        for (i, other) in IDS.iter().enumerate() {
            let (sid, outcome, reason) = &out[i + 1];
            assert_eq!(sid, other);
            let want = if i < k { "skipped" } else { "ran" };
            assert_eq!(outcome, want, "resume after {id}: step {other}");
            if i < k {
                assert_eq!(
                    reason.as_deref(),
                    Some(&*format!("already done: effects/{other} exists"))
                );
            }
        }
        let why = out[k + 1].2.as_deref().unwrap();
        if *id == "three" {
            assert!(why.contains("redone from a clean state"), "{why}");
        } else {
            assert!(why.contains("resumed after an interrupted run"), "{why}");
        }
        // Every step ran once, except the interrupted one (twice).
        let mut want: Vec<String> = Vec::new();
        for (i, other) in IDS.iter().enumerate() {
            want.push(format!("run {other}"));
            if i == k {
                want.push(format!("blocked {other}"));
                if *other == "three" {
                    want.push("clean three".into());
                }
                want.push(format!("run {other}"));
            }
        }
        assert_eq!(log_lines(&root), want, "after a kill in {id}");
        let j = journal(&root, JOURNAL);
        assert!(j.steps.iter().all(|s| s.state == StepState::Done), "{j:?}");
        // Steps done before the kill keep their first record.
        assert!(
            j.steps[..k]
                .iter()
                .all(|s| s.attempts == 1 && s.reason.is_none()),
            "{j:?}"
        );
        assert_eq!(j.steps.iter().find(|s| s.id == *id).unwrap().attempts, 2);
    }
}

#[test]
fn a_different_fingerprint_refuses_to_resume_until_restart() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    let until = RunOptions {
        until: Some("two".into()),
        ..Default::default()
    };
    let s = run(&root, &plan(), fp("a"), until);
    assert_eq!(s.outcome, "stopped");
    assert_eq!(s.steps.len(), 3, "{:?}", outcomes(&s));
    let before = log_lines(&root);

    let s = run(&root, &plan(), fp("b"), RunOptions::default());
    let msg = format!("{:#}", s.error.as_ref().unwrap());
    assert!(
        msg.contains("is of a different run, so it is not resumed"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "config differs (journal {}",
            fp("a").get("config").unwrap()
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("this run {})", fp("b").get("config").unwrap())),
        "{msg}"
    );
    assert!(!msg.contains("disk differs"), "{msg}");
    assert!(msg.contains("--restart"), "{msg}");
    assert!(s.steps.is_empty());
    assert_eq!(log_lines(&root), before, "nothing ran");

    let restart = RunOptions {
        restart: true,
        ..Default::default()
    };
    let s = run(&root, &plan(), fp("b"), restart);
    assert_ok(&s);
    assert_eq!(journal(&root, JOURNAL).fingerprint, fp("b"));
    // The machine still has one and two: skipped, not redone.
    assert_eq!(s.steps[1].outcome, Outcome::Skipped);
    assert_eq!(s.steps[3].outcome, Outcome::Ran);
}

#[test]
fn the_machine_decides_not_the_journal() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    run(&root, &plan(), fp("a"), RunOptions::default())
        .into_result()
        .unwrap();
    // The journal says all done, but two's effect is gone: two runs again.
    root.remove("effects/two").unwrap();
    let s = run(&root, &plan(), fp("a"), RunOptions::default());
    let got: Vec<Outcome> = outcomes(&s).into_iter().map(|(_, o)| o).collect();
    use Outcome::*;
    assert_eq!(got, [Ran, Skipped, Ran, Skipped, Skipped, Skipped]);
    assert_eq!(
        s.steps[1].reason.as_deref(),
        Some("already done: effects/one exists")
    );
    // No journal, effects there: everything skipped as already done.
    root.remove(JOURNAL).unwrap();
    let s = run(&root, &plan(), fp("a"), RunOptions::default());
    assert!(
        s.steps[1..].iter().all(|r| r.outcome == Skipped),
        "{:?}",
        outcomes(&s)
    );
}

const SIGTERM_ENV: &str = "SPROUT_TEST_SIGTERM_ROOT";

/// Waits in an external command until the run is cancelled.
struct LongWait;

impl Step<State> for LongWait {
    fn id(&self) -> StepId {
        StepId::new("long-wait")
    }
    fn description(&self) -> String {
        "waits for a long time".into()
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, ctx: &Ctx<'_>, _: &mut State) -> Result<()> {
        log(ctx.root(), "waiting");
        ctx.command("sleep").arg("600").run_streaming(|_| {})
    }
}

/// Child mode: a run that SIGTERM cancels; writes its report.
#[test]
fn child_sigterm() {
    let Some(dir) = std::env::var_os(SIGTERM_ENV) else {
        return;
    };
    let root = Root::open(dir).unwrap();
    let cancel = Cancel::new();
    cancel.on_termination_signals().unwrap();
    let plan = Plan::new("test-flow")
        .step(ReadInputs)
        .step(step("one"))
        .step(LongWait);
    let s = Runner::new(
        &plan,
        root.clone(),
        Location::new(root.clone(), JOURNAL),
        fp("a"),
    )
    .cancel(cancel)
    .run(&mut State::default());
    RunReport::new(&s, &serde_json::json!({}), &fp("a"))
        .unwrap()
        .write(&root, Path::new("report.json"))
        .unwrap();
}

#[test]
fn sigterm_cancels_the_running_command_and_the_report_is_written() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_sigterm",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SIGTERM_ENV, d.path())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !log_lines(&root).contains(&"waiting".to_string()) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "never started waiting"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the child did not end on its own: {status}"
    );
    let r: serde_json::Value =
        serde_json::from_slice(&fs::read(d.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(r["outcome"], "failed");
    assert_eq!(r["failed_step"], "long-wait");
    assert!(
        r["error"][1]
            .as_str()
            .unwrap()
            .contains("was stopped because the run was cancelled"),
        "{r}"
    );
    let j = journal(&root, JOURNAL);
    assert_eq!(
        j.steps.iter().find(|s| s.id == "long-wait").unwrap().state,
        StepState::Failed
    );
}
