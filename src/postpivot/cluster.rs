//! What the flow asks of the cluster once kubelet runs (spec §3.4 steps
//! 16–23), as traits so the Kubernetes client plugs in and tests give a
//! recording stand-in. Production: [`KubeApplier`] and [`KubeCluster`],
//! both on kube-rs (`postpivot::apply`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use kube::Client;

use crate::api::seed_cluster_info::SeedClusterInfo;
use crate::api::seed_reconfig::SeedReconfiguration;
use crate::postpivot::apply::cluster_ops::{self, CvoOutcome};
use crate::postpivot::apply::{self, ApplyOptions};

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

/// The production cluster: kube-rs with the lb-ext kubeconfig. One
/// runtime and one client for the whole flow (the client's connections
/// belong to the runtime that made them).
pub struct KubeCluster {
    kubeconfig: PathBuf,
    opts: ApplyOptions,
    runtime: tokio::runtime::Runtime,
    client: std::cell::RefCell<Option<Client>>,
    /// The last reason the API did not answer (said once per change).
    last_api_error: std::cell::RefCell<String>,
}

impl KubeCluster {
    /// `opts` bounds every operation (retries, request timeout).
    pub fn new(kubeconfig: PathBuf, opts: ApplyOptions) -> Result<Self> {
        Ok(KubeCluster {
            kubeconfig,
            opts,
            runtime: apply::runtime()?,
            client: std::cell::RefCell::new(None),
            last_api_error: std::cell::RefCell::new(String::new()),
        })
    }

    fn client(&self) -> Result<Client> {
        if let Some(c) = self.client.borrow().as_ref() {
            return Ok(c.clone());
        }
        let client = self
            .runtime
            .block_on(apply::client_from_kubeconfig(&self.kubeconfig))?;
        *self.client.borrow_mut() = Some(client.clone());
        Ok(client)
    }
}

impl Cluster for KubeCluster {
    fn api_answers(&self) -> Result<bool> {
        let client = self.client()?;
        // A short bound per attempt: the wait around it polls every second.
        let timeout = self.opts.request_timeout.min(Duration::from_secs(10));
        match self
            .runtime
            .block_on(cluster_ops::list_nodes_once(&client, timeout))
        {
            Ok(()) => Ok(true),
            Err(e) => {
                let text = format!("{e:#}");
                if *self.last_api_error.borrow() != text {
                    tracing::info!("the API server does not answer yet: {text}");
                    *self.last_api_error.borrow_mut() = text;
                }
                Ok(false)
            }
        }
    }

    fn remove_seed_mirrors_and_catalogs(&self) -> Result<()> {
        let client = self.client()?;
        let deleted = self
            .runtime
            .block_on(apply::delete_seed_mirrors_with(client, &self.opts))
            .context("removing the seed's ImageContentSourcePolicies, ImageDigestMirrorSets and CatalogSources")?;
        tracing::info!("removed {} seed mirror and catalog objects", deleted.len());
        Ok(())
    }

    fn rewrite_cvo_registry(
        &self,
        seed: &SeedClusterInfo,
        reconfig: &SeedReconfiguration,
    ) -> Result<()> {
        let client = self.client()?;
        let outcome = self
            .runtime
            .block_on(cluster_ops::rewrite_cvo_registry_with(
                client, &self.opts, seed, reconfig,
            ))
            .context("pointing the cluster-version operator at the release registry")?;
        match outcome {
            CvoOutcome::Unchanged(why) => tracing::info!("CVO registry unchanged: {why}"),
            CvoOutcome::Patched { image } => tracing::info!("CVO now runs {image}"),
        }
        Ok(())
    }

    fn set_cluster_id(&self, id: &str) -> Result<()> {
        let client = self.client()?;
        self.runtime
            .block_on(cluster_ops::set_cluster_id_with(client, &self.opts, id))
            .with_context(|| format!("setting the cluster ID {id}"))
    }

    fn set_node_labels(&self, labels: &BTreeMap<String, String>, timeout: Duration) -> Result<()> {
        let client = self.client()?;
        let node = self.runtime.block_on(cluster_ops::set_node_labels_with(
            client,
            labels,
            Duration::from_secs(1),
            timeout,
            self.opts.request_timeout,
        ))?;
        tracing::info!("labelled Node {node} with {labels:?}");
        Ok(())
    }
}
