//! Test steps and helpers shared by the runner tests (engine_runner.rs,
//! engine_plan.rs).
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use sprout::engine::journal::JournalDoc;
use sprout::engine::*;
use sprout::host::root::Root;

pub const ROOT_ENV: &str = "SPROUT_TEST_PLAN_ROOT";
pub const BLOCK_ENV: &str = "SPROUT_TEST_BLOCK_AT";
pub const JOURNAL: &str = "run/sprout/journal.json";
pub const IDS: [&str; 5] = ["one", "two", "three", "four", "five"];

/// A step whose effect is the file `effects/<id>`; `three` is
/// RedoFromClean and leaves `effects/three.partial` while running.
pub struct FileStep {
    pub id: StepId,
    pub kind: Kind,
    pub marker: Option<PathBuf>,
    pub fail: bool,
    pub relocate_to: Option<PathBuf>,
}

pub fn step(id: &'static str) -> FileStep {
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
pub struct State {
    pub inputs_read: u32,
}

pub struct ReadInputs;

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

pub fn log(root: &Root, line: &str) {
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
            // As ibi's mount step: found done, the journal still moves.
            if let Some(to) = &self.relocate_to {
                ctx.relocate_journal(Location::new(ctx.root().clone(), to));
            }
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

pub fn plan_of(steps: Vec<FileStep>) -> Plan<State> {
    steps
        .into_iter()
        .fold(Plan::new("test-flow").step(ReadInputs), |p, s| p.step(s))
}

pub fn plan() -> Plan<State> {
    plan_of(IDS.iter().map(|id| step(id)).collect())
}

pub fn fp(config: &str) -> Fingerprint {
    Fingerprint::new()
        .with_sha256("config", config.as_bytes())
        .with("disk", "wwn-0x5000")
}

pub fn run(
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

pub fn assert_ok(s: &RunSummary) {
    if let Some(e) = &s.error {
        panic!("{e:#}");
    }
}

pub fn outcomes(s: &RunSummary) -> Vec<(String, Outcome)> {
    s.steps.iter().map(|r| (r.id.clone(), r.outcome)).collect()
}

pub fn log_lines(root: &Root) -> Vec<String> {
    fs::read_to_string(root.host_path("log").unwrap())
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

pub fn journal(root: &Root, rel: &str) -> JournalDoc {
    serde_json::from_slice(&fs::read(root.host_path(rel).unwrap()).unwrap()).unwrap()
}
