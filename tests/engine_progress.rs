//! Progress: the JSON-lines stream of a small plan against a golden file
//! (tests/expected/progress-golden.jsonl, schema in docs/progress-json.md),
//! the rate limit, `--progress-json` values, and a broken sink that is
//! dropped without failing the job.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::os::fd::IntoRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde_json::Value;
use sprout::engine::progress::{JsonLinesSink, Sink, Stamped};
use sprout::engine::*;
use sprout::host::root::Root;

struct ReadInputs;
impl Step<()> for ReadInputs {
    fn id(&self) -> StepId {
        StepId::new("read-inputs")
    }
    fn description(&self) -> String {
        "reads the inputs".into()
    }
    fn kind(&self) -> Kind {
        Kind::ReadOnly
    }
    fn check(&self, _: &Ctx<'_>, _: &()) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, _: &Ctx<'_>, _: &mut ()) -> Result<()> {
        Ok(())
    }
}

struct CopyImage;
impl Step<()> for CopyImage {
    fn id(&self) -> StepId {
        StepId::new("copy-image")
    }
    fn description(&self) -> String {
        "copies the image".into()
    }
    fn check(&self, _: &Ctx<'_>, _: &()) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, ctx: &Ctx<'_>, _: &mut ()) -> Result<()> {
        let p = ctx.progress();
        p.message("copying 10 MiB");
        let total = 10 << 20;
        for mib in 0..=10u64 {
            p.bytes(mib << 20, Some(total));
        }
        for n in 1..=3 {
            p.items(n, Some(3));
        }
        Ok(())
    }
}

struct AlreadyThere;
impl Step<()> for AlreadyThere {
    fn id(&self) -> StepId {
        StepId::new("already-there")
    }
    fn description(&self) -> String {
        "finds its work done".into()
    }
    fn check(&self, _: &Ctx<'_>, _: &()) -> Result<Check> {
        Ok(Check::Done("it is there".into()))
    }
    fn run(&self, _: &Ctx<'_>, _: &mut ()) -> Result<()> {
        panic!("a done step ran")
    }
}

fn plan() -> Plan<()> {
    Plan::new("golden")
        .step(ReadInputs)
        .step(CopyImage)
        .step(AlreadyThere)
}

fn run_with(progress: Progress) -> RunSummary {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    Runner::new(
        &plan(),
        root.clone(),
        Location::new(root, "journal.json"),
        Fingerprint::new(),
    )
    .progress(progress)
    .run(&mut ())
}

/// `line` with its timestamp and durations replaced by placeholders.
fn normalised(line: &str) -> String {
    let mut v: Value = serde_json::from_str(line).unwrap();
    let ts = v["timestamp"].as_str().unwrap();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
    );
    v["timestamp"] = "<ts>".into();
    if v.get("duration_ms").is_some() {
        assert!(v["duration_ms"].is_u64());
        v["duration_ms"] = 0.into();
    }
    v.to_string()
}

#[test]
fn the_event_stream_of_a_small_plan_matches_the_golden_file() {
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("progress.jsonl");
    let target: ProgressTarget = file.to_str().unwrap().parse().unwrap();
    // A long interval: of the byte and item events only the first and
    // the last (done = total) pass.
    let progress = Progress::new()
        .with_sink(target.open().unwrap())
        .with_interval(Duration::from_secs(3600));
    let s = run_with(progress);
    assert!(s.error.is_none(), "{:?}", s.error);
    let got: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(normalised)
        .collect();
    let want: Vec<String> =
        std::fs::read_to_string(support::repo().join("tests/expected/progress-golden.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap().to_string())
            .collect();
    assert_eq!(got, want);
}

/// Collects events; fails from its `fail_at`-th event on.
#[derive(Clone, Default)]
struct Probe {
    seen: Arc<Mutex<Vec<String>>>,
    fail_at: Option<usize>,
}

impl Sink for Probe {
    fn name(&self) -> String {
        "probe".into()
    }
    fn emit(&mut self, e: &Stamped<'_>) -> std::io::Result<()> {
        let mut seen = self.seen.lock().unwrap();
        seen.push(
            serde_json::to_value(e).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string(),
        );
        if self.fail_at.is_some_and(|n| seen.len() >= n) {
            return Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        }
        Ok(())
    }
}

#[test]
fn a_broken_sink_is_dropped_and_the_job_goes_on() {
    let broken = Probe {
        fail_at: Some(2),
        ..Default::default()
    };
    let good = Probe::default();
    let progress = Progress::new()
        .with_sink(broken.clone())
        .with_sink(good.clone())
        .with_interval(Duration::ZERO);
    let s = run_with(progress);
    assert!(s.error.is_none(), "{:?}", s.error);
    assert_eq!(
        broken.seen.lock().unwrap().len(),
        2,
        "still called after it failed"
    );
    let good = good.seen.lock().unwrap();
    // No rate limit: all 11 byte and 3 item events.
    assert_eq!(good.iter().filter(|t| *t == "bytes").count(), 11);
    assert_eq!(good.iter().filter(|t| *t == "items").count(), 3);
    assert_eq!(good.last().map(String::as_str), Some("plan-end"));

    // A pipe whose reader went away: dropped, no failure, no SIGPIPE death.
    let (r, w) = std::io::pipe().unwrap();
    drop(r);
    let s = run_with(Progress::new().with_sink(JsonLinesSink::new("pipe", Box::new(w))));
    assert!(s.error.is_none(), "{:?}", s.error);
}

#[test]
fn progress_json_takes_a_file_or_a_descriptor() {
    use sprout::engine::ProgressTarget::*;
    assert_eq!("fd:3".parse::<ProgressTarget>().unwrap(), Fd(3));
    assert_eq!(
        "out.jsonl".parse::<ProgressTarget>().unwrap(),
        File("out.jsonl".into())
    );
    for bad in ["", "fd:", "fd:x", "fd:-1", "fd:0"] {
        assert!(bad.parse::<ProgressTarget>().is_err(), "{bad}");
    }
    // A descriptor handed over by the caller.
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("via-fd.jsonl");
    let fd = std::fs::File::create(&path).unwrap().into_raw_fd();
    let sink = Fd(fd).open().unwrap();
    drop(run_with(
        Progress::new()
            .with_sink(sink)
            .with_interval(Duration::from_secs(3600)),
    ));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 13, "{text}");
    // A descriptor that is not open is refused with a message.
    let e = Fd(987).open().err().unwrap();
    assert!(
        format!("{e:#}").contains("descriptor 987 is not open"),
        "{e:#}"
    );
}
