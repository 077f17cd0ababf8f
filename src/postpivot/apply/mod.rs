//! Applying a directory of manifests to the cluster (§3.6 of the spec), the
//! post-pivot steps `cluster-configuration/manifests` and `extra-manifests`,
//! and the seed's mirror and catalog cleanup before them (§3.4 step 17).
//!
//! Upstream's semantics (file-name order, multi-document files, Lists,
//! create or replace/merge per `lca.openshift.io/apply-type`, empty
//! namespace = `default`), with its weaknesses fixed (W16):
//! - every file is read and checked before anything is sent;
//! - Namespaces and CRDs from all files go first, then the CRDs are waited
//!   for (Established, with a deadline), then everything else in file order;
//! - transient errors are retried with bounded backoff under one deadline;
//! - an error names the file, the document and the object.
//!
//! The other cluster operations of the flow (API wait, CVO registry,
//! cluster ID, node labels) are in [`cluster_ops`].
//!
//! Callers stay synchronous: [`apply_dir`] and [`delete_seed_mirrors`] run
//! their own tokio runtime (so they must not be called from inside one;
//! async callers use [`apply_manifests`] and [`delete_seed_mirrors_with`]).

mod cleanup;
pub mod cluster_ops;
pub mod manifest;
pub mod merge;
mod object;
pub mod retry;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use cleanup::{SEED_MIRROR_KINDS, delete_seed_mirrors_with};
pub use manifest::{APPLY_TYPE_ANNOTATION, ApplyType};
use object::Applier;
use retry::Deadline;

/// Bounds of the manifest step. The defaults suit a single-node cluster
/// that has just started.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The whole apply (discovery, every object, CRD waits) ends by then.
    pub deadline: Duration,
    /// How long one CRD may take to become Established (within `deadline`).
    pub crd_established_timeout: Duration,
    /// How long a kind missing from the API discovery is looked up again
    /// before it is an error (an aggregated API may still be starting).
    pub unknown_kind_grace: Duration,
    /// First pause after a transient error; doubled each time up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// One request gets no longer than this.
    pub request_timeout: Duration,
    /// How often a retry loop says what it waits for.
    pub announce_every: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            deadline: Duration::from_secs(20 * 60),
            crd_established_timeout: Duration::from_secs(5 * 60),
            unknown_kind_grace: Duration::from_secs(2 * 60),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            announce_every: Duration::from_secs(15),
        }
    }
}

/// What was done to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyAction {
    Created,
    Replaced,
    Merged,
}

/// One applied object and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedObject {
    pub file: PathBuf,
    /// 1-based document number in the file.
    pub document: usize,
    /// 1-based item number when the document is a List.
    pub item: Option<usize>,
    pub api_version: String,
    pub kind: String,
    /// The namespace applied to (`default` when a namespaced object has
    /// none); `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
    pub action: ApplyAction,
}

/// What [`apply_dir`] did, in the order it did it.
#[derive(Debug, Clone, Default)]
pub struct ApplySummary {
    /// Manifest files read (regular files of the directory).
    pub files: usize,
    pub objects: Vec<AppliedObject>,
}

/// Applies every manifest of `dir` to the cluster of `kubeconfig`.
pub fn apply_dir(kubeconfig: &Path, dir: &Path, opts: &ApplyOptions) -> Result<ApplySummary> {
    runtime()?.block_on(async {
        let client = client_from_kubeconfig(kubeconfig).await?;
        apply_manifests(client, dir, opts).await
    })
}

/// Deletes the seed's ImageContentSourcePolicies, ImageDigestMirrorSets and
/// CatalogSources (§3.4 step 17); returns `Kind namespace/name` of each.
pub fn delete_seed_mirrors(kubeconfig: &Path, opts: &ApplyOptions) -> Result<Vec<String>> {
    runtime()?.block_on(async {
        let client = client_from_kubeconfig(kubeconfig).await?;
        delete_seed_mirrors_with(client, opts).await
    })
}

/// A runtime for one synchronous caller of the async client.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime for the Kubernetes client")
}

/// A client for the cluster of `kubeconfig` (its current context).
pub async fn client_from_kubeconfig(kubeconfig: &Path) -> Result<Client> {
    let at = || format!("reading kubeconfig {}", kubeconfig.display());
    let kc = Kubeconfig::read_from(kubeconfig).with_context(at)?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(at)?;
    // Retries are ours (retry.rs): one deadline over the whole apply and a
    // line saying what is retried, which kube's built-in layer has not.
    config.default_retry = false;
    Client::try_from(config)
        .with_context(|| format!("making a client from {}", kubeconfig.display()))
}

/// The async core of [`apply_dir`].
pub async fn apply_manifests(
    client: Client,
    dir: &Path,
    opts: &ApplyOptions,
) -> Result<ApplySummary> {
    let files = manifest::manifest_files(dir)?;
    let mut manifests = Vec::new();
    for file in &files {
        manifests.extend(manifest::read_file(file)?);
    }
    let mut summary = ApplySummary {
        files: files.len(),
        objects: Vec::new(),
    };
    if manifests.is_empty() {
        tracing::info!("no manifests to apply in {}", dir.display());
        return Ok(summary);
    }
    tracing::info!(
        "applying {} objects from {} files in {}",
        manifests.len(),
        files.len(),
        dir.display()
    );
    let mut applier = Applier::new(client, opts, Deadline::after(opts.deadline));
    let (first, rest): (Vec<&manifest::Manifest>, Vec<&manifest::Manifest>) = manifests
        .iter()
        .partition(|m| m.is_namespace() || m.is_crd());
    for m in &first {
        summary.objects.push(apply_one(&mut applier, m).await?);
    }
    for m in first.iter().filter(|m| m.is_crd()) {
        applier
            .wait_established(&m.name)
            .await
            .with_context(|| format!("{} from {}", m.object_name(), m.location()))?;
    }
    for m in &rest {
        summary.objects.push(apply_one(&mut applier, m).await?);
    }
    Ok(summary)
}

async fn apply_one(applier: &mut Applier<'_>, m: &manifest::Manifest) -> Result<AppliedObject> {
    let action = applier
        .apply(m)
        .await
        .with_context(|| format!("applying {} from {}", m.object_name(), m.location()))?;
    let namespace = match applier.resolve(&m.gvk).await? {
        Some((_, kube::discovery::Scope::Namespaced)) => {
            Some(m.namespace.clone().unwrap_or_else(|| "default".to_string()))
        }
        _ => None,
    };
    tracing::info!("{:?} {} from {}", action, m.object_name(), m.location());
    Ok(AppliedObject {
        file: m.file.clone(),
        document: m.document,
        item: m.item,
        api_version: m.api_version.clone(),
        kind: m.gvk.kind.clone(),
        namespace,
        name: m.name.clone(),
        action,
    })
}
