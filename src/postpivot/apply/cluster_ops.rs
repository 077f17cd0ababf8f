//! The cluster operations of post-pivot besides the manifests (§3.4 steps
//! 16, 20, 22 and 23), as upstream does them, on kube-rs:
//! - the API wait lists the nodes (one bounded request per attempt);
//! - the CVO registry rewrite reads the mirror sources now in the cluster
//!   (ICSP `repositoryDigestMirrors`, IDMS `imageDigestMirrors`), decides
//!   with upstream's `ShouldOverrideSeedRegistry`, and strategic-merge
//!   patches the cluster-version-operator Deployment's first container;
//! - the cluster ID is a merge patch of ClusterVersion `version`;
//! - the node labels are a merge patch of the single node labelled
//!   `node-role.kubernetes.io/master=`, tried every second up to a timeout.
//!
//! Transient API errors are retried under one deadline (`retry.rs`); every
//! error names the object it was about.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, ResourceExt,
};
use serde_json::{Value, json};

use super::ApplyOptions;
use super::object::Applier;
use super::retry::{Deadline, Failure, api_code, retry};
use crate::api::seed_cluster_info::SeedClusterInfo;
use crate::api::seed_reconfig::SeedReconfiguration;

/// Where the cluster-version operator runs.
pub const CVO_NAMESPACE: &str = "openshift-cluster-version";
pub const CVO_DEPLOYMENT: &str = "cluster-version-operator";
/// The label selector of the node the labels go to (upstream's).
pub const MASTER_SELECTOR: &str = "node-role.kubernetes.io/master=";

/// One attempt to list the nodes (at most one is asked for), within
/// `timeout`: `Ok` when the API server answered.
pub async fn list_nodes_once(client: &Client, timeout: Duration) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    match tokio::time::timeout(timeout, nodes.list(&ListParams::default().limit(1))).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(anyhow::Error::from(e).context("listing the nodes")),
        Err(_) => Err(anyhow!("listing the nodes: no answer within {timeout:?}")),
    }
}

/// The registries (text before the first `/`) of every ICSP and IDMS
/// mirror source in the cluster. A kind the cluster does not serve has none.
pub async fn mirror_source_registries(
    applier: &mut Applier<'_>,
    opts: &ApplyOptions,
) -> Result<Vec<String>> {
    let kinds = [
        (
            "operator.openshift.io",
            "v1alpha1",
            "ImageContentSourcePolicy",
            "repositoryDigestMirrors",
        ),
        (
            "config.openshift.io",
            "v1",
            "ImageDigestMirrorSet",
            "imageDigestMirrors",
        ),
    ];
    let mut registries = Vec::new();
    for (group, version, kind, field) in kinds {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let Some((ar, _)) = applier.resolve(&gvk).await? else {
            tracing::info!("{kind} ({group}/{version}) is not served: no mirror sources from it");
            continue;
        };
        let all: Api<DynamicObject> = Api::all_with(applier.client.clone(), &ar);
        let deadline = applier.deadline;
        let list = retry(&format!("listing {kind} objects"), opts, &deadline, || {
            let all = all.clone();
            async move {
                all.list(&ListParams::default())
                    .await
                    .map_err(Failure::from_kube)
            }
        })
        .await?;
        for obj in &list.items {
            let entries = obj.data["spec"][field]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for entry in entries {
                if let Some(source) = entry["source"].as_str() {
                    registries.push(source.split('/').next().unwrap_or(source).to_string());
                }
            }
        }
    }
    Ok(registries)
}

/// What the CVO registry rewrite did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CvoOutcome {
    /// Nothing to do, and why.
    Unchanged(String),
    /// The Deployment was patched to this image.
    Patched { image: String },
}

/// §3.4 step 20.
pub async fn rewrite_cvo_registry_with(
    client: Client,
    opts: &ApplyOptions,
    seed: &SeedClusterInfo,
    reconfig: &SeedReconfiguration,
) -> Result<CvoOutcome> {
    let mut applier = Applier::new(client.clone(), opts, Deadline::after(opts.deadline));
    let sources = mirror_source_registries(&mut applier, opts).await?;
    if !crate::ibi::precache::should_override(
        seed.mirror_registry_configured,
        &seed.release_registry,
        &sources,
    ) {
        return Ok(CvoOutcome::Unchanged(format!(
            "the seed's release registry {:?} needs no override (mirror sources {sources:?})",
            seed.release_registry
        )));
    }
    // Read as JSON: only three fields matter, and a typed read would fail
    // on anything this k8s-openapi version does not expect.
    let ar = ApiResource::erase::<Deployment>(&());
    let deployments: Api<DynamicObject> = Api::namespaced_with(client, CVO_NAMESPACE, &ar);
    let described = format!("Deployment {CVO_NAMESPACE}/{CVO_DEPLOYMENT}");
    let deadline = applier.deadline;
    let deployment = retry(&format!("getting {described}"), opts, &deadline, || {
        let deployments = deployments.clone();
        async move {
            deployments
                .get(CVO_DEPLOYMENT)
                .await
                .map_err(Failure::from_kube)
        }
    })
    .await
    .with_context(|| format!("getting {described}"))?;
    if reconfig.release_registry == seed.release_registry {
        return Ok(CvoOutcome::Unchanged(format!(
            "the release registry stays {:?}",
            seed.release_registry
        )));
    }
    // Upstream would rewrite the image to "/<path>": a broken CVO, so an
    // empty release_registry leaves it alone instead.
    if reconfig.release_registry.is_empty() {
        tracing::warn!(
            "release_registry is empty in cluster-configuration/manifest.json: the CVO keeps \
             the seed's registry {:?}",
            seed.release_registry
        );
        return Ok(CvoOutcome::Unchanged("release_registry is empty".into()));
    }
    let container = &deployment.data["spec"]["template"]["spec"]["containers"][0];
    let Some(name) = container["name"].as_str() else {
        return Err(anyhow!("{described} has no containers"));
    };
    let image = container["image"].as_str().unwrap_or_default();
    let new_image = replace_registry(image, &seed.release_registry, &reconfig.release_registry);
    let args: Vec<String> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| {
            if a.starts_with("--release-image") {
                format!("--release-image={new_image}")
            } else {
                a.to_string()
            }
        })
        .collect();
    let mut patched = json!({"name": name, "image": new_image});
    if !args.is_empty() {
        patched["args"] = json!(args);
    }
    let patch = json!({"spec": {"template": {"spec": {"containers": [patched]}}}});
    tracing::info!(
        "changing the release registry of {described} from {:?} to {:?}: {patch}",
        seed.release_registry,
        reconfig.release_registry
    );
    retry(&format!("patching {described}"), opts, &deadline, || {
        let deployments = deployments.clone();
        let patch = patch.clone();
        async move {
            deployments
                .patch(
                    CVO_DEPLOYMENT,
                    &PatchParams::default(),
                    &Patch::Strategic(patch),
                )
                .await
                .map_err(Failure::from_kube)
        }
    })
    .await
    .with_context(|| format!("patching {described}"))?;
    Ok(CvoOutcome::Patched { image: new_image })
}

/// `image` with a leading `from` replaced by `to` (a literal prefix; an
/// image from elsewhere is left as it is).
pub fn replace_registry(image: &str, from: &str, to: &str) -> String {
    match image.strip_prefix(from) {
        Some(rest) if !from.is_empty() => format!("{to}{rest}"),
        _ => image.to_string(),
    }
}

/// §3.4 step 22: merge-patches ClusterVersion `version` with the ID.
pub async fn set_cluster_id_with(client: Client, opts: &ApplyOptions, id: &str) -> Result<()> {
    let mut applier = Applier::new(client.clone(), opts, Deadline::after(opts.deadline));
    let gvk = GroupVersionKind::gvk("config.openshift.io", "v1", "ClusterVersion");
    let (ar, _) = applier.resolve(&gvk).await?.ok_or_else(|| {
        anyhow!("the cluster serves no ClusterVersion (config.openshift.io/v1): is this OpenShift?")
    })?;
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let deadline = applier.deadline;
    let patch = json!({"spec": {"clusterID": id}});
    retry(
        "setting the clusterID of ClusterVersion version",
        opts,
        &deadline,
        || {
            let api = api.clone();
            let patch = patch.clone();
            async move {
                // Upstream reads it first: a missing ClusterVersion is an
                // error, not something a patch may create.
                api.get("version").await.map_err(|e| match api_code(&e) {
                    Some(404) => Failure::Permanent(anyhow!(
                        "ClusterVersion version does not exist in the cluster"
                    )),
                    _ => Failure::from_kube(e),
                })?;
                api.patch("version", &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map_err(Failure::from_kube)
            }
        },
    )
    .await
    .context("patching ClusterVersion version")?;
    Ok(())
}

/// §3.4 step 23: merges `labels` into the labels of the one master node,
/// trying every `every` until `timeout`; gives the node's name.
pub async fn set_node_labels_with(
    client: Client,
    labels: &BTreeMap<String, String>,
    every: Duration,
    timeout: Duration,
    request_timeout: Duration,
) -> Result<String> {
    let nodes: Api<Node> = Api::all(client);
    let patch = json!({"metadata": {"labels": labels}});
    let end = tokio::time::Instant::now() + timeout;
    let mut attempts: u32 = 0;
    loop {
        attempts = attempts.saturating_add(1);
        let error = match tokio::time::timeout(request_timeout, label_once(&nodes, &patch)).await {
            Ok(Ok(name)) => return Ok(name),
            Ok(Err(Failure::Permanent(e))) => return Err(e),
            Ok(Err(Failure::Transient(e))) => e,
            Err(_) => anyhow!("no answer within {request_timeout:?}"),
        };
        crate::host::shutdown::check()?;
        if tokio::time::Instant::now() >= end {
            return Err(error.context(format!(
                "labelling the node ({MASTER_SELECTOR}) with {labels:?}: gave up after \
                 {attempts} attempts in {timeout:?} (node_labels in /etc/sprout/post-pivot.json)"
            )));
        }
        if attempts == 1 || attempts.is_multiple_of(15) {
            tracing::info!("labelling the node: {error:#}; trying again");
        }
        tokio::time::sleep(every).await;
    }
}

async fn label_once(nodes: &Api<Node>, patch: &Value) -> std::result::Result<String, Failure> {
    let list = nodes
        .list(&ListParams::default().labels(MASTER_SELECTOR))
        .await
        .map_err(|e| Failure::Transient(anyhow::Error::from(e).context("listing the nodes")))?;
    let [node] = list.items.as_slice() else {
        return Err(Failure::Transient(anyhow!(
            "{} nodes are labelled {MASTER_SELECTOR}, expected exactly one",
            list.items.len()
        )));
    };
    let name = node.name_any();
    match nodes
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(name),
        Err(e) => {
            let transient = super::retry::is_transient(&e) || api_code(&e) == Some(404);
            let e = anyhow::Error::from(e).context(format!("patching the labels of Node {name}"));
            Err(if transient {
                Failure::Transient(e)
            } else {
                Failure::Permanent(e)
            })
        }
    }
}
