//! Finding and checking the configuration, then the access a broken
//! network still allows debugging with: the SSH key and the pull secret
//! (spec §3.4 steps 1–5).

use anyhow::{Context, Result};
use serde_json::json;

use super::{State, WD, checked, holds, marker, run, show, terminal, wd, write_private};
use crate::engine::{Check, Ctx, Kind, Step, StepId};
use crate::postpivot::discovery::{self, CONFIG_DIR};
use crate::postpivot::settings::Settings;
use crate::postpivot::{effective, inputs, markers::Marker};

pub const EARLY_ACCESS_KEY: &str = "home/core/.ssh/authorized_keys.d/ib-early-access";
pub const PULL_SECRET: &str = "var/lib/kubelet/config.json";

/// Step 1: the configuration in `/opt/openshift/cluster-configuration`.
pub struct Discover;

impl Step<State> for Discover {
    fn id(&self) -> StepId {
        StepId::new("discover")
    }
    fn description(&self) -> String {
        "finds the configuration medium (label cluster-config) and copies it to /opt/openshift"
            .into()
    }
    fn check(&self, ctx: &Ctx<'_>, _: &State) -> Result<Check> {
        let dir = wd(CONFIG_DIR);
        Ok(if ctx.root().exists(&dir)? {
            Check::Done(format!("/{} exists", dir.display()))
        } else {
            Check::NotDone
        })
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        let opts = discovery::Options {
            root: ctx.root().path().to_path_buf(),
            timeout: Settings::secs(s.settings.config_medium),
            announce_every: Settings::secs(s.settings.announce_every.max(1)),
        };
        discovery::discover(&opts, discovery::UdevHost::open).map(|_| ())
    }
}

/// Steps 2–3 and 7–9 moved first (W4): everything read and checked before
/// the first change; a failure is terminal and nothing has changed.
pub struct Validate;

impl Step<State> for Validate {
    fn id(&self) -> StepId {
        StepId::new("validate")
    }
    fn description(&self) -> String {
        "reads /var/seed_data/manifest.json and cluster-configuration/manifest.json and checks them"
            .into()
    }
    fn kind(&self) -> Kind {
        Kind::ReadOnly
    }
    fn explain(&self, s: &State) -> String {
        match &s.checked {
            Some(c) => format!(
                "valid: cluster {}.{}, hostname {:?}, node IPs {:?}, seed {} {}",
                c.reconfig.cluster_name,
                c.reconfig.base_domain,
                c.reconfig.hostname,
                s.reconfig.node_ips,
                c.seed.cluster_name,
                c.seed.seed_cluster_ocp_version
            ),
            None => self.description(),
        }
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        let root = ctx.root().path();
        let c = inputs::read_and_check(root, &format!("/{WD}")).map_err(terminal)?;
        let mut r = c.reconfig.clone();
        r.node_ips = effective::node_ips(&r);
        r.machine_networks = effective::machine_networks(&r);
        s.seed = c.seed.clone();
        s.seed.node_ips = c.seed.node_ips();
        s.reconfig = r;
        s.checked = Some(c);
        Ok(())
    }
}

fn machine_config(role: &str, key: &str) -> Result<Vec<u8>> {
    let mc = json!({
        "apiVersion": "machineconfiguration.openshift.io/v1",
        "kind": "MachineConfig",
        "metadata": {
            "name": format!("99-{role}-ssh"),
            "labels": {"machineconfiguration.openshift.io/role": role},
        },
        "spec": {"config": {
            "ignition": {"version": "3.2.0"},
            "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": [key]}]},
        }},
    });
    serde_json::to_vec(&mc).context("encoding the SSH MachineConfig")
}

fn ssh_files(s: &State) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>> {
    let key = &s.reconfig.ssh_key;
    let mut v = vec![(EARLY_ACCESS_KEY.into(), key.as_bytes().to_vec())];
    for role in ["master", "worker"] {
        v.push((
            wd(&format!("{CONFIG_DIR}/manifests/99-{role}-ssh.json")),
            machine_config(role, key)?,
        ));
    }
    Ok(v)
}

/// Step 4, before the network so a broken network can be debugged.
pub struct SshKey;

impl Step<State> for SshKey {
    fn id(&self) -> StepId {
        StepId::new("ssh-key")
    }
    fn description(&self) -> String {
        "writes the SSH key of user core and its MachineConfigs".into()
    }
    fn explain(&self, s: &State) -> String {
        if s.reconfig.ssh_key.is_empty() {
            return "no ssh_key: nothing to do".into();
        }
        format!(
            "writes /{EARLY_ACCESS_KEY} (0600), runs {}, writes /{WD}/{CONFIG_DIR}/manifests/99-master-ssh.json and 99-worker-ssh.json",
            show("chown", &["core", &format!("/{EARLY_ACCESS_KEY}")])
        )
    }
    fn marker(&self) -> Option<std::path::PathBuf> {
        marker(Marker::SshKey)
    }
    fn check(&self, ctx: &Ctx<'_>, s: &State) -> Result<Check> {
        if s.reconfig.ssh_key.is_empty() {
            return Ok(Check::Done("no ssh_key in the configuration".into()));
        }
        for (rel, bytes) in ssh_files(s)? {
            if !holds(ctx.root(), &rel, &bytes)? {
                return Ok(Check::NotDone);
            }
        }
        // The owner cannot be read back reliably in a copied tree.
        Ok(Check::Unknown)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        if s.reconfig.ssh_key.is_empty() {
            return Ok(());
        }
        for (rel, bytes) in ssh_files(s)? {
            write_private(ctx.root(), &rel, &bytes)?;
        }
        let key = ctx.root().host_path(EARLY_ACCESS_KEY)?;
        let key = key.to_string_lossy();
        run(ctx, s, "chown", &["core", &key])
    }
}

/// Step 5.
pub struct PullSecret;

impl Step<State> for PullSecret {
    fn id(&self) -> StepId {
        StepId::new("pull-secret")
    }
    fn description(&self) -> String {
        format!("writes the pull secret to /{PULL_SECRET} (0600)")
    }
    fn marker(&self) -> Option<std::path::PathBuf> {
        marker(Marker::PullSecret)
    }
    fn check(&self, ctx: &Ctx<'_>, s: &State) -> Result<Check> {
        Ok(
            if holds(ctx.root(), PULL_SECRET, s.reconfig.pull_secret.as_bytes())? {
                Check::Done(format!("/{PULL_SECRET} holds the pull secret"))
            } else {
                Check::NotDone
            },
        )
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        checked(s)?;
        write_private(ctx.root(), PULL_SECRET, s.reconfig.pull_secret.as_bytes())
    }
}
