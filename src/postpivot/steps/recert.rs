//! Proxy completion, early trust, recert and chrony (spec §3.4 steps
//! 9–12, §3.5).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{EtcdChoice, State, WD, checked, marker, run, show, terminal, wait, wd, write_private};
use crate::engine::{Check, Ctx, Kind, Step, StepId};
use crate::host::etcd::{self, HealthWait, Launcher, Podman, TempEtcd};
use crate::postpivot::recert_config::{self, RecertConfig};
use crate::postpivot::recert_run::{self, RecertRun};
use crate::postpivot::settings::Settings;
use crate::postpivot::{effective, kubeconfig_crypto, markers::Marker};

pub const CA_ANCHOR: &str = "etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt";

/// Step 9: `noProxy` enriched and `status_proxy` set, in memory.
pub struct ProxyEnrichment;

impl Step<State> for ProxyEnrichment {
    fn id(&self) -> StepId {
        StepId::new("proxy")
    }
    fn description(&self) -> String {
        "completes noProxy with the cluster's own networks (in memory)".into()
    }
    fn kind(&self) -> Kind {
        Kind::ReadOnly
    }
    fn explain(&self, s: &State) -> String {
        match &s.reconfig.proxy {
            Some(p) => format!("noProxy {}", p.no_proxy),
            None => "no proxy".into(),
        }
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, _: &Ctx<'_>, s: &mut State) -> Result<()> {
        let seed = s.seed.clone();
        effective::complete_proxy(&mut s.reconfig, &seed).map_err(terminal)
    }
}

/// Step 10.
pub struct EarlyTrust;

impl Step<State> for EarlyTrust {
    fn id(&self) -> StepId {
        StepId::new("ca-trust")
    }
    fn description(&self) -> String {
        format!("writes the user CA bundle to /{CA_ANCHOR} and runs update-ca-trust")
    }
    fn explain(&self, s: &State) -> String {
        let write = if s.reconfig.additional_trust_bundle.user_ca_bundle.is_empty() {
            String::new()
        } else {
            format!("writes /{CA_ANCHOR} (0600), ")
        };
        format!("{write}runs {}", show("update-ca-trust", &[]))
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::Unknown)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        let bundle = s.reconfig.additional_trust_bundle.user_ca_bundle.clone();
        if !bundle.is_empty() {
            write_private(ctx.root(), CA_ANCHOR, bundle.as_bytes())?;
        }
        // argv, not upstream's `bash -c update-ca-trust` (W1).
        run(ctx, s, "update-ca-trust", &[])
    }
}

/// `recert_config.json` for the state as it is now.
pub fn render(s: &State) -> Result<RecertConfig> {
    let c = checked(s)?;
    let mut crypto: Vec<String> = kubeconfig_crypto::files(&s.reconfig.kubeconfig_crypto_retention)
        .iter()
        .map(|(name, _)| (*name).to_string())
        .collect();
    crypto.sort();
    let mut cert_manager: Vec<String> = c
        .cert_manager_keys
        .iter()
        .map(|k| k.file_name.clone())
        .collect();
    cert_manager.sort();
    RecertConfig::for_post_pivot(recert_config::Inputs {
        reconfig: &s.reconfig,
        seed: &s.seed,
        kubeconfig_crypto: Some(&crypto),
        cert_manager_files: &cert_manager,
    })
    .map_err(terminal)
}

/// Renders `recert_config.json` in memory (what `--dry-run` prints).
pub struct RenderRecertConfig;

impl Step<State> for RenderRecertConfig {
    fn id(&self) -> StepId {
        StepId::new("recert-config")
    }
    fn description(&self) -> String {
        "renders recert_config.json from the configuration (in memory)".into()
    }
    fn kind(&self) -> Kind {
        Kind::ReadOnly
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, _: &Ctx<'_>, s: &mut State) -> Result<()> {
        s.recert_config = Some(render(s)?.to_bytes()?);
        Ok(())
    }
}

fn recert_run(s: &State) -> RecertRun {
    let mut r = RecertRun::new(s.seed.recert_image_pull_spec.clone());
    r.global_args.clone_from(&s.podman_global_args);
    r
}

fn launcher(ctx: &Ctx<'_>, s: &State) -> Result<Launcher> {
    Ok(match &s.etcd {
        EtcdChoice::Podman {
            global_args,
            run_args,
        } => {
            let mut p = Podman::new(etcd::etcd_image(ctx.root().path())?);
            p.global_args.clone_from(global_args);
            p.run_args.clone_from(run_args);
            Launcher::Podman(p)
        }
        EtcdChoice::Binary(b) => Launcher::Binary(b.clone()),
    })
}

/// Step 11 (§3.5): kubeconfig-crypto and recert_config.json written, the
/// temporary etcd on 127.0.0.1 (always stopped), recert, its summary kept.
pub struct Recert;

impl Step<State> for Recert {
    fn id(&self) -> StepId {
        StepId::new("recert")
    }
    fn description(&self) -> String {
        "recertifies and renames the cluster with recert against a temporary etcd".into()
    }
    fn explain(&self, s: &State) -> String {
        let r = recert_run(s);
        let etcd_line = match &s.etcd {
            EtcdChoice::Podman { .. } => {
                "podman run … recert_etcd <image of /etc/kubernetes/manifests/etcd-pod.yaml> \
                 (127.0.0.1 only)"
                    .to_string()
            }
            EtcdChoice::Binary(b) => format!("{} (127.0.0.1 only)", b.program.display()),
        };
        format!(
            "writes /{WD}/kubeconfig-crypto/ (0700, five files 0600) and /{WD}/recert_config.json \
             (0600, printed below); runs {} (pulls it if missing, up to {} s); starts etcd: {etcd_line}; \
             runs {}; stops etcd; runs update-ca-trust",
            r.image_exists().display(),
            s.settings.recert_image_pull,
            crate::host::command::Cmd::new(&r.program)
                .args(r.argv())
                .display()
        )
    }
    fn marker(&self) -> Option<PathBuf> {
        marker(Marker::Recert)
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        // A succeeded summary without the marker is handled by `run`
        // (update-ca-trust still runs); only the marker skips the step.
        Ok(Check::NotDone)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        let root = ctx.root().path().to_path_buf();
        let summary = recert_run::summary_path(&root);
        let previous = recert_run::previous_run(&summary)?;
        if recert_run::should_run(&previous, &summary).map_err(terminal)? {
            let dir = root.join(WD).join(kubeconfig_crypto::DIR_NAME);
            kubeconfig_crypto::write(&dir, &s.reconfig.kubeconfig_crypto_retention)?;
            let config = render(s)?;
            config.write(&root.join(wd(recert_config::FILE_NAME)))?;
            let r = recert_run(s);
            let pull_every = Duration::from_secs(1);
            let pull_for = Settings::secs(s.settings.recert_image_pull);
            let proxy = s.reconfig.proxy.clone();
            if r.image_exists().run().is_err() {
                // Upstream only warns when the pull fails; recert's own
                // podman error then says why.
                if let Err(e) = wait(
                    ctx,
                    s,
                    &format!("pulling {}", r.image),
                    pull_every,
                    pull_for,
                    || Ok(r.pull(proxy.as_ref()).run().is_ok().then_some(())),
                ) {
                    tracing::warn!("{e:#}");
                }
            }
            let wait_health = HealthWait {
                deadline: Settings::secs(s.settings.etcd_health),
                announce_every: Settings::secs(s.settings.announce_every.max(1)),
                ..HealthWait::default()
            };
            let etcd = TempEtcd::start(&launcher(ctx, s)?, s.etcd_ports, wait_health)
                .context("starting the temporary etcd")?;
            // On error `etcd` is dropped here, which stops it.
            r.run(Settings::secs(s.settings.recert), &summary)
                .map_err(|e| match recert_run::previous_run(&summary) {
                    Ok(recert_run::PreviousRun::Failed { .. }) => terminal(e),
                    _ => e,
                })?;
            etcd.stop().context("stopping the temporary etcd")?;
        }
        run(ctx, s, "update-ca-trust", &[])
    }
}

/// Step 12.
pub struct Chrony;

impl Step<State> for Chrony {
    fn id(&self) -> StepId {
        StepId::new("chrony")
    }
    fn description(&self) -> String {
        "restarts chronyd for the chrony.conf recert wrote".into()
    }
    fn explain(&self, s: &State) -> String {
        if s.reconfig.chrony_config.is_empty() {
            "no chrony_config: nothing to do".into()
        } else {
            format!("runs {}", show("systemctl", &["restart", "chronyd"]))
        }
    }
    fn check(&self, _: &Ctx<'_>, s: &State) -> Result<Check> {
        Ok(if s.reconfig.chrony_config.is_empty() {
            Check::Done("no chrony_config".into())
        } else {
            Check::Unknown
        })
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        run(ctx, s, "systemctl", &["restart", "chronyd"])
    }
}
