//! What the flow asks of the cluster once kubelet runs (spec §3.4 steps
//! 16–23), as traits so the Kubernetes client plugs in and tests give a
//! recording stand-in. Manifests go through `postpivot::apply` (kube-rs);
//! the other cluster operations have no client yet ([`NotWired`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::api::seed_cluster_info::SeedClusterInfo;
use crate::api::seed_reconfig::SeedReconfiguration;

/// The kubeconfig post-pivot talks to the API with (spec §3.2).
pub const LB_EXT_KUBECONFIG: &str = "/etc/kubernetes/static-pod-resources/kube-apiserver-certs/secrets/node-kubeconfigs/lb-ext.kubeconfig";

/// Applies a directory of manifests (spec §3.6).
pub trait ManifestApplier {
    fn apply_dir(&self, dir: &Path) -> Result<()>;
}

/// The cluster operations of the flow besides applying manifests.
pub trait Cluster {
    /// One attempt to list the nodes: `Ok(true)` when the API answered.
    fn api_answers(&self) -> Result<bool>;
    /// Deletes every ImageContentSourcePolicy, ImageDigestMirrorSet and
    /// CatalogSource the seed brought.
    fn remove_seed_mirrors_and_catalogs(&self) -> Result<()>;
    /// Points the CVO at `reconfig.release_registry` when mirrors say so.
    fn rewrite_cvo_registry(
        &self,
        seed: &SeedClusterInfo,
        reconfig: &SeedReconfiguration,
    ) -> Result<()>;
    fn set_cluster_id(&self, id: &str) -> Result<()>;
    /// Merges `labels` into the master node's, trying up to `timeout`.
    fn set_node_labels(&self, labels: &BTreeMap<String, String>, timeout: Duration) -> Result<()>;
}

/// The production applier: `postpivot::apply::apply_dir` with the lb-ext
/// kubeconfig.
pub struct KubeApplier {
    pub kubeconfig: PathBuf,
}

impl ManifestApplier for KubeApplier {
    fn apply_dir(&self, dir: &Path) -> Result<()> {
        let summary = super::apply::apply_dir(
            &self.kubeconfig,
            dir,
            &super::apply::ApplyOptions::default(),
        )?;
        tracing::info!(
            "applied {} objects from {} files in {}",
            summary.objects.len(),
            summary.files,
            dir.display()
        );
        Ok(())
    }
}

/// Until these operations are written on kube-rs: each says so
/// (a terminal-looking failure at the API wait instead of a silent skip).
pub struct NotWired;

/// Terminal: restarting the unit cannot bring the client in.
fn not_wired<T>(what: &str) -> Result<T> {
    Err(super::steps::terminal(anyhow::anyhow!(
        "{what}: this build has no Kubernetes client for it yet; \
         the node is recertified and kubelet is running, the cluster-side steps did not run"
    )))
}

impl Cluster for NotWired {
    fn api_answers(&self) -> Result<bool> {
        not_wired("listing the nodes")
    }
    fn remove_seed_mirrors_and_catalogs(&self) -> Result<()> {
        not_wired("removing the seed's ICSP, IDMS and CatalogSources")
    }
    fn rewrite_cvo_registry(&self, _: &SeedClusterInfo, _: &SeedReconfiguration) -> Result<()> {
        not_wired("rewriting the CVO's release registry")
    }
    fn set_cluster_id(&self, _: &str) -> Result<()> {
        not_wired("setting the cluster ID")
    }
    fn set_node_labels(&self, _: &BTreeMap<String, String>, _: Duration) -> Result<()> {
        not_wired("labelling the node")
    }
}
