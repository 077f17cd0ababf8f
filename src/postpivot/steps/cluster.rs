//! kubelet and the cluster side (spec §3.4 steps 15–23): through the
//! `Cluster` and `ManifestApplier` traits of `postpivot::cluster`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{State, WD, marker, run, show, wait, wd};
use crate::engine::{Check, Ctx, Step, StepId};
use crate::postpivot::discovery::CONFIG_DIR;
use crate::postpivot::markers::Marker;
use crate::postpivot::settings::Settings;

/// Labels the node has anyway; upstream drops them from `node_labels`.
pub const DEFAULT_LABELS: &[&str] = &[
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "kubernetes.io/arch",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "node-role.kubernetes.io/control-plane",
    "node-role.kubernetes.io/master",
    "node.openshift.io/os_id",
    "node-role.kubernetes.io/worker",
];

/// Step 15.
pub struct Kubelet;

impl Step<State> for Kubelet {
    fn id(&self) -> StepId {
        StepId::new("kubelet")
    }
    fn description(&self) -> String {
        format!(
            "enables and starts kubelet: {}",
            show("systemctl", &["enable", "kubelet", "--now"])
        )
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::Unknown)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        run(ctx, s, "systemctl", &["enable", "kubelet", "--now"])
    }
}

/// Step 16, bounded (W5).
pub struct ApiWait;

impl Step<State> for ApiWait {
    fn id(&self) -> StepId {
        StepId::new("api")
    }
    fn description(&self) -> String {
        "waits until the API server lists the nodes".into()
    }
    fn explain(&self, s: &State) -> String {
        format!(
            "lists the nodes every 1 s for up to {} s through {}",
            s.settings.api,
            crate::postpivot::cluster::LB_EXT_KUBECONFIG
        )
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        let timeout = Settings::secs(s.settings.api);
        wait(
            ctx,
            s,
            "the API server (listing the nodes)",
            Duration::from_secs(1),
            timeout,
            || Ok(s.cluster.api_answers()?.then_some(())),
        )
    }
}

/// Step 17.
pub struct RemoveSeedMirrors;

impl Step<State> for RemoveSeedMirrors {
    fn id(&self) -> StepId {
        StepId::new("remove-seed-mirrors")
    }
    fn description(&self) -> String {
        "deletes the seed's ImageContentSourcePolicies, ImageDigestMirrorSets and CatalogSources"
            .into()
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::Unknown)
    }
    fn run(&self, _: &Ctx<'_>, s: &mut State) -> Result<()> {
        s.cluster.remove_seed_mirrors_and_catalogs()
    }
}

fn apply(ctx: &Ctx<'_>, s: &State, rel: &PathBuf) -> Result<()> {
    if !ctx.root().exists(rel)? {
        return Ok(());
    }
    let dir = ctx.root().host_path(rel)?;
    s.applier
        .apply_dir(&dir)
        .with_context(|| format!("applying the manifests in /{}", rel.display()))
}

/// Step 18.
pub struct Manifests;

impl Step<State> for Manifests {
    fn id(&self) -> StepId {
        StepId::new("manifests")
    }
    fn description(&self) -> String {
        format!("applies /{WD}/{CONFIG_DIR}/manifests")
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::Unknown)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        apply(ctx, s, &wd(&format!("{CONFIG_DIR}/manifests")))
    }
}

/// Step 19.
pub struct ExtraManifests;

impl Step<State> for ExtraManifests {
    fn id(&self) -> StepId {
        StepId::new("extra-manifests")
    }
    fn description(&self) -> String {
        format!("applies /{WD}/extra-manifests")
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::Unknown)
    }
    fn run(&self, ctx: &Ctx<'_>, s: &mut State) -> Result<()> {
        apply(ctx, s, &wd("extra-manifests"))
    }
}

/// Step 20.
pub struct CvoRegistry;

impl Step<State> for CvoRegistry {
    fn id(&self) -> StepId {
        StepId::new("cvo-registry")
    }
    fn description(&self) -> String {
        "points the cluster-version operator at the release registry".into()
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::Unknown)
    }
    fn run(&self, _: &Ctx<'_>, s: &mut State) -> Result<()> {
        s.cluster.rewrite_cvo_registry(&s.seed, &s.reconfig)
    }
}

/// Step 22.
pub struct ClusterId;

impl Step<State> for ClusterId {
    fn id(&self) -> StepId {
        StepId::new("cluster-id")
    }
    fn description(&self) -> String {
        "sets the ClusterVersion's clusterID".into()
    }
    fn marker(&self) -> Option<PathBuf> {
        marker(Marker::ClusterId)
    }
    fn check(&self, _: &Ctx<'_>, _: &State) -> Result<Check> {
        Ok(Check::NotDone)
    }
    fn run(&self, _: &Ctx<'_>, s: &mut State) -> Result<()> {
        if s.reconfig.cluster_id.is_empty() {
            bail!("cluster_id is empty in cluster-configuration/manifest.json; set it to a UUID");
        }
        s.cluster.set_cluster_id(&s.reconfig.cluster_id)
    }
}

/// Step 23.
pub struct NodeLabels;

impl Step<State> for NodeLabels {
    fn id(&self) -> StepId {
        StepId::new("node-labels")
    }
    fn description(&self) -> String {
        "adds the configured node labels".into()
    }
    fn marker(&self) -> Option<PathBuf> {
        marker(Marker::NodeLabels)
    }
    fn check(&self, _: &Ctx<'_>, s: &State) -> Result<Check> {
        Ok(if custom_labels(s).is_empty() {
            Check::Done("no custom node labels".into())
        } else {
            Check::NotDone
        })
    }
    fn run(&self, _: &Ctx<'_>, s: &mut State) -> Result<()> {
        let labels = custom_labels(s);
        if labels.is_empty() {
            return Ok(());
        }
        s.cluster
            .set_node_labels(&labels, Settings::secs(s.settings.node_labels))
    }
}

fn custom_labels(s: &State) -> std::collections::BTreeMap<String, String> {
    s.reconfig
        .node_labels
        .iter()
        .filter(|(k, _)| !DEFAULT_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
