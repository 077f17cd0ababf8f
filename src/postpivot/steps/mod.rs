//! The steps of post-pivot (spec §3.4) in upstream's order, on the step
//! engine. Each is idempotent: its `check` looks at the node, upstream's
//! RunOnce steps also have their `.done` marker (`Step::marker`), and what
//! cannot be observed (a service restart) is decided by the journal.

pub mod access;
pub mod cluster;
pub mod finish;
pub mod network;
pub mod recert;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::cluster::{Cluster, ManifestApplier};
use super::inputs::Checked;
use super::markers::Marker;
use super::settings::Settings;
use crate::api::seed_cluster_info::SeedClusterInfo;
use crate::api::seed_reconfig::SeedReconfiguration;
use crate::engine::{Ctx, Plan};
use crate::host::etcd;
use crate::host::root::Root;

/// The working directory, relative to the run's root.
pub const WD: &str = super::discovery::WORK_DIR;

/// How the temporary etcd is started.
#[derive(Debug, Clone)]
pub enum EtcdChoice {
    /// Production: podman with the image of `etcd-pod.yaml`; the extra
    /// arguments are for the build machine (`--runtime runc`, ulimits).
    Podman {
        global_args: Vec<String>,
        run_args: Vec<String>,
    },
    /// Tests: an etcd executable as a child process.
    Binary(etcd::Binary),
}

/// An error after which retrying cannot help (invalid configuration, a
/// failed recert): the run ends in the terminal state at once.
#[derive(Debug)]
pub struct Terminal(pub String);

impl std::fmt::Display for Terminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Terminal {}

/// Makes `e` terminal, keeping its message.
pub fn terminal(e: impl Into<anyhow::Error>) -> anyhow::Error {
    let e = e.into();
    // An invalid input is terminal as it is (`flow::is_terminal`); kept
    // whole so that its problems reach the status one by one.
    if e.downcast_ref::<crate::api::diag::InvalidInput>().is_some() {
        return e;
    }
    anyhow::Error::new(Terminal(format!("{e:#}")))
}

/// The flow's state, shared by its steps.
pub struct State {
    pub settings: Settings,
    pub etcd: EtcdChoice,
    pub etcd_ports: etcd::Ports,
    /// Options before podman's subcommand for recert (`--runtime runc`).
    pub podman_global_args: Vec<String>,
    /// What `validate` read (None before it ran).
    pub checked: Option<Checked>,
    /// The reconfiguration with legacy fields folded in and what the node
    /// told later steps (hostname, node IPs, proxy completion).
    pub reconfig: SeedReconfiguration,
    pub seed: SeedClusterInfo,
    /// `recert_config.json` as it will be written (rendered before recert).
    pub recert_config: Option<Vec<u8>>,
    pub cluster: Box<dyn Cluster>,
    pub applier: Box<dyn ManifestApplier>,
}

/// The plan, in upstream's order.
pub fn plan() -> Plan<State> {
    Plan::new("post-pivot")
        .step(access::Discover)
        .step(access::Validate)
        .step(access::SshKey)
        .step(access::PullSecret)
        .step(network::Keyfiles)
        .step(network::Nmstate)
        .step(network::RestartNetworkManager)
        .step(network::ResolveHostname)
        .step(network::Hostname)
        .step(network::NodeIpHint)
        .step(network::NodeIps)
        .step(network::Dnsmasq)
        .step(recert::ProxyEnrichment)
        .step(recert::EarlyTrust)
        .step(recert::RenderRecertConfig)
        .step(recert::Recert)
        .step(recert::Chrony)
        .step(cluster::Kubelet)
        .step(cluster::ApiWait)
        .step(cluster::RemoveSeedMirrors)
        .step(cluster::Manifests)
        .step(cluster::ExtraManifests)
        .step(cluster::CvoRegistry)
        .step(cluster::ClusterId)
        .step(cluster::NodeLabels)
        .step(finish::LvmDevices)
        .step(finish::DisableUnit)
        .step(finish::Cleanup)
}

/// `rel` below the working directory.
pub fn wd(rel: &str) -> PathBuf {
    Path::new(WD).join(rel)
}

/// The marker path of an upstream RunOnce step.
pub fn marker(m: Marker) -> Option<PathBuf> {
    Some(m.path(Path::new(WD)))
}

/// Whether `rel` exists and holds exactly `want`.
pub fn holds(root: &Root, rel: impl AsRef<Path>, want: &[u8]) -> Result<bool> {
    let rel = rel.as_ref();
    if !root.exists(rel)? {
        return Ok(false);
    }
    let max = u64::try_from(want.len())
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    Ok(root.read(rel, max).is_ok_and(|got| got == want))
}

/// Writes a secret-mode (0600) file, creating its directory (0700).
pub fn write_private(root: &Root, rel: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let rel = rel.as_ref();
    if let Some(dir) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        root.create_dir_all(dir, 0o700)?;
    }
    root.write_atomic(rel, bytes, 0o600)
}

/// Runs `program args`, bounded by the `command` deadline.
pub fn run(ctx: &Ctx<'_>, s: &State, program: &str, args: &[&str]) -> Result<()> {
    ctx.command(program)
        .args(args)
        .timeout(Settings::secs(s.settings.command))
        .run_streaming(|_| {})
}

/// `program args` for explanations.
pub fn show(program: &str, args: &[&str]) -> String {
    crate::host::command::Cmd::new(program).args(args).display()
}

/// A bounded wait that says every `announce_every` what it waits for (in
/// the journal, the progress stream and the unit's status line), then
/// fails with what it waited for.
pub fn wait<T>(
    ctx: &Ctx<'_>,
    s: &State,
    what: &str,
    every: Duration,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let started = Instant::now();
    let announce = Settings::secs(s.settings.announce_every.max(1));
    let mut next = started.checked_add(announce).unwrap_or(started);
    ctx.wait_for(what, every, timeout, || {
        if let Some(v) = probe()? {
            return Ok(Some(v));
        }
        crate::host::shutdown::check()?;
        if Instant::now() >= next {
            let line = format!(
                "still waiting for {what} ({} s of {} s)",
                started.elapsed().as_secs(),
                timeout.as_secs()
            );
            tracing::info!("{line}");
            ctx.progress().message(line.clone());
            crate::host::systemd::status(&line);
            next = Instant::now().checked_add(announce).unwrap_or(next);
        }
        Ok(None)
    })
    .with_context(|| format!("the limit is set in /{}", super::settings::SETTINGS_FILE))
}

/// The state's checked inputs, or the error that validate did not run.
pub fn checked(s: &State) -> Result<&Checked> {
    s.checked
        .as_ref()
        .context("the inputs were not read (the validate step did not run)")
}
