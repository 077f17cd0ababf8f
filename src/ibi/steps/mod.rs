//! The steps of `sprout ibi` (lifecycle-agent.md §2.4 A–G) as one list of
//! named values; each has a check that looks at the real machine, a run
//! and a `Kind` saying how it behaves after an interruption.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::options::{CONTAINER_STORAGE, Options, PULL_STAGING, TARGET_MOUNT};
use super::preflight::Checked;
use crate::engine::{Check, Ctx, Kind, Plan, Step, StepId};
use crate::host::disk::Sfdisk;
use crate::host::ostree::{DeploymentInfo, OstreeSysroot};

mod disk;
mod finish;
mod restore;

/// The flow's state: the preflight's findings and the run's options.
pub struct IbiState {
    pub checked: Checked,
    pub opts: Options,
    /// Set by the last step: `ibi::run` powers off after the report.
    pub power_off: bool,
}

impl IbiState {
    /// The live system's root (host path).
    pub fn live(&self) -> &Path {
        &self.opts.root
    }
    /// Where the target's root partition is mounted (the ostree sysroot).
    pub fn target(&self) -> PathBuf {
        self.opts.root.join(TARGET_MOUNT)
    }
    /// The live system's container storage (the extra partition).
    pub fn storage(&self) -> PathBuf {
        self.opts.root.join(CONTAINER_STORAGE)
    }
    /// Where podman stages what it pulls (its `TMPDIR`): on the container
    /// storage's own file system. Its default, /var/tmp, is RAM on the
    /// live ISO, and a multi-GiB seed staged there fills a small
    /// machine's memory (the journey's 1 GiB guest ran out of room).
    pub fn pull_staging(&self) -> PathBuf {
        self.storage().join(PULL_STAGING)
    }
    pub fn disk(&self) -> &str {
        &self.checked.disk.dev_path
    }
    pub fn label(&self) -> &str {
        &self.checked.loaded.config.extra_partition_label
    }
    /// The target disk's partition table now (`sfdisk --json`).
    pub fn table(&self, ctx: &Ctx<'_>) -> Result<Sfdisk> {
        let out = ctx
            .command("sfdisk")
            .arg("--json")
            .arg(self.disk())
            .describe("reading the partition table")
            .run_capture(4 << 20)?;
        Sfdisk::parse(&out)
    }
    /// The table, or `None` when the disk has none (yet) or cannot be read.
    pub fn table_if_any(&self, ctx: &Ctx<'_>) -> Option<Sfdisk> {
        self.table(ctx).ok()
    }
    /// The device node of the partition named `name` on the target disk
    /// (by GPT name, never by index: W9).
    pub fn partition(&self, ctx: &Ctx<'_>, name: &str) -> Result<String> {
        Ok(self.table(ctx)?.partition_by_name(name)?.node.clone())
    }
    pub fn sysroot(&self) -> Result<OstreeSysroot> {
        OstreeSysroot::open(&self.target())
    }
    /// The sysroot if the target is mounted and holds one.
    pub fn sysroot_if_any(&self) -> Option<OstreeSysroot> {
        self.target()
            .join("ostree/repo")
            .is_dir()
            .then(|| self.sysroot().ok())
            .flatten()
    }
    /// The seed's deployment, once deployed.
    pub fn deployment(&self) -> Result<Option<DeploymentInfo>> {
        let Some(sysroot) = self.sysroot_if_any() else {
            return Ok(None);
        };
        let c = &self.checked;
        crate::ibi::restore::seed_deployment(&c.seed, &sysroot, &c.stateroot)
    }
    pub fn require_deployment(&self) -> Result<DeploymentInfo> {
        self.deployment()?
            .context("the seed is not deployed on the target yet (step deploy-seed)")
    }
}

type CheckFn = fn(&Ctx<'_>, &IbiState) -> Result<Check>;
type RunFn = fn(&Ctx<'_>, &mut IbiState) -> Result<()>;

/// The pull staging directory ([`IbiState::pull_staging`]) for one step:
/// made (0700) when the step starts pulling, removed when it ends if
/// podman left it empty (a killed pull's leftovers are podman's to reuse
/// or clean).
pub struct PullStaging(PathBuf);

impl PullStaging {
    pub fn enter(s: &IbiState) -> Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = s.pull_staging();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the pull staging directory {}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {}", dir.display()))?;
        Ok(Self(dir))
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PullStaging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// One step as plain data, so the flow reads as the list in [`plan`].
pub struct IbiStep {
    pub id: &'static str,
    pub description: &'static str,
    pub kind: Kind,
    /// The commands and paths, for `--dry-run`.
    pub explain: fn(&IbiState) -> String,
    pub check: CheckFn,
    pub run: RunFn,
    /// `Kind::RedoFromClean` only: what undoes a half-done run.
    pub clean: Option<RunFn>,
}

impl Step<IbiState> for IbiStep {
    fn id(&self) -> StepId {
        StepId::new(self.id)
    }
    fn description(&self) -> String {
        self.description.to_string()
    }
    fn explain(&self, state: &IbiState) -> String {
        (self.explain)(state)
    }
    fn kind(&self) -> Kind {
        self.kind
    }
    fn check(&self, ctx: &Ctx<'_>, state: &IbiState) -> Result<Check> {
        if state.checked.seed.remote().is_some() && restore::reads_seed_files(self.id) {
            // A registry seed's files exist only once pull-seed has run
            // (a dry run never runs it): nothing after it can be done yet.
            return Ok(Check::NotDone);
        }
        (self.check)(ctx, state)
    }
    fn clean(&self, ctx: &Ctx<'_>, state: &mut IbiState) -> Result<()> {
        match self.clean {
            Some(f) => f(ctx, state),
            None => Ok(()),
        }
    }
    fn run(&self, ctx: &Ctx<'_>, state: &mut IbiState) -> Result<()> {
        (self.run)(ctx, state)
    }
}

/// The whole flow, in upstream's order (§2.4 A–G).
pub fn plan() -> Plan<IbiState> {
    let mut p = Plan::new("ibi");
    for s in disk::steps()
        .into_iter()
        .chain(restore::steps())
        .chain(finish::steps())
    {
        p = p.step(s);
    }
    p
}

/// A command line for the plan text.
pub(crate) fn shown(program: &str, args: &[&str]) -> String {
    crate::host::command::Cmd::new(program).args(args).display()
}
