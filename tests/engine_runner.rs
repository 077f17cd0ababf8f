//! The runner: a killed run resumes at the right step, a changed
//! fingerprint refuses to resume, the machine (not the journal) decides
//! what is done, markers interoperate, `--until` and `--dry-run`, the
//! journal moves, and the report is written after a failure.
//!
//! Kill tests run the plan in a child: this test binary again, in "child
//! mode" (SPROUT_TEST_PLAN_ROOT set), SIGKILLed by the parent.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use sprout::engine::journal::{JournalDoc, StepState};
use sprout::engine::*;
use sprout::host::root::Root;

const ROOT_ENV: &str = "SPROUT_TEST_PLAN_ROOT";
const BLOCK_ENV: &str = "SPROUT_TEST_BLOCK_AT";
const JOURNAL: &str = "run/sprout/journal.json";
const IDS: [&str; 5] = ["one", "two", "three", "four", "five"];

/// A step whose effect is the file `effects/<id>`; `three` is
/// RedoFromClean and leaves `effects/three.partial` while running.
struct FileStep {
    id: StepId,
    kind: Kind,
    marker: Option<PathBuf>,
    fail: bool,
    relocate_to: Option<PathBuf>,
}

fn step(id: &'static str) -> FileStep {
    FileStep {
        id: StepId::new(id),
        kind: if id == "three" {
            Kind::RedoFromClean
        } else {
            Kind::Resumable
        },
        marker: None,
        fail: false,
        relocate_to: None,
    }
}

/// The flow state: a ReadOnly step fills it.
#[derive(Default)]
struct State {
    inputs_read: u32,
}

struct ReadInputs;

impl Step<State> for ReadInputs {
    fn id(&self) -> StepId {
        StepId::new("read-inputs")
    }
    fn description(&self) -> String {
        "reads the inputs".into()
    }
    fn kind(&self) -> Kind {
        Kind::ReadOnly
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, _: &Ctx<'_>, state: &mut State) -> Result<()> {
        state.inputs_read += 1;
        Ok(())
    }
}

fn log(root: &Root, line: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.host_path("log").unwrap())
        .unwrap();
    writeln!(f, "{line}").unwrap();
    f.sync_all().unwrap();
}

impl Step<State> for FileStep {
    fn id(&self) -> StepId {
        self.id
    }
    fn description(&self) -> String {
        format!("makes effects/{}", self.id)
    }
    fn explain(&self, state: &State) -> String {
        format!(
            "would write effects/{} (inputs read {} times)",
            self.id, state.inputs_read
        )
    }
    fn kind(&self) -> Kind {
        self.kind
    }
    fn marker(&self) -> Option<PathBuf> {
        self.marker.clone()
    }
    fn check(&self, ctx: &Ctx<'_>, _: &State) -> Result<Check> {
        let p = format!("effects/{}", self.id);
        Ok(if ctx.root().exists(&p)? {
            Check::Done(format!("{p} exists"))
        } else {
            Check::NotDone
        })
    }
    fn clean(&self, ctx: &Ctx<'_>, _: &mut State) -> Result<()> {
        log(ctx.root(), &format!("clean {}", self.id));
        ctx.root().remove(format!("effects/{}.partial", self.id))?;
        Ok(())
    }
    fn run(&self, ctx: &Ctx<'_>, state: &mut State) -> Result<()> {
        assert_eq!(state.inputs_read, 1, "ReadOnly steps run first, once");
        let root = ctx.root();
        log(root, &format!("run {}", self.id));
        root.create_dir_all("effects", 0o755)?;
        if self.kind == Kind::RedoFromClean {
            let partial = format!("effects/{}.partial", self.id);
            if root.exists(&partial)? {
                bail!("{partial} is left from an interrupted run: clean was not called");
            }
            root.write_atomic(&partial, b"half", 0o644)?;
        }
        if std::env::var(BLOCK_ENV).as_deref() == Ok(self.id.as_str()) {
            log(root, &format!("blocked {}", self.id));
            std::thread::sleep(Duration::from_secs(600));
        }
        if self.fail {
            ctx.command("findmnt")
                .args(["--json", "/"])
                .describe("looking at the mounts")
                .run_capture(1 << 20)?;
            bail!("the disk is on fire");
        }
        if let Some(to) = &self.relocate_to {
            ctx.relocate_journal(Location::new(root.clone(), to));
        }
        root.remove(format!("effects/{}.partial", self.id))?;
        root.write_atomic(format!("effects/{}", self.id), b"done", 0o644)
    }
}

fn plan_of(steps: Vec<FileStep>) -> Plan<State> {
    steps
        .into_iter()
        .fold(Plan::new("test-flow").step(ReadInputs), |p, s| p.step(s))
}

fn plan() -> Plan<State> {
    plan_of(IDS.iter().map(|id| step(id)).collect())
}

fn fp(config: &str) -> Fingerprint {
    Fingerprint::new()
        .with_sha256("config", config.as_bytes())
        .with("disk", "wwn-0x5000")
}

fn run(
    root: &Root,
    plan: &Plan<State>,
    fingerprint: Fingerprint,
    options: RunOptions,
) -> RunSummary {
    Runner::new(
        plan,
        root.clone(),
        Location::new(root.clone(), JOURNAL),
        fingerprint,
    )
    .options(options)
    .run(&mut State::default())
}

fn assert_ok(s: &RunSummary) {
    if let Some(e) = &s.error {
        panic!("{e:#}");
    }
}

fn outcomes(s: &RunSummary) -> Vec<(String, Outcome)> {
    s.steps.iter().map(|r| (r.id.clone(), r.outcome)).collect()
}

fn log_lines(root: &Root) -> Vec<String> {
    fs::read_to_string(root.host_path("log").unwrap())
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn journal(root: &Root, rel: &str) -> JournalDoc {
    serde_json::from_slice(&fs::read(root.host_path(rel).unwrap()).unwrap()).unwrap()
}

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
