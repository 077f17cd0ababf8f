//! §3.4 step 17: the seed's image mirror configuration and catalog sources
//! are removed before the site's manifests are applied (the site re-adds
//! its own through manifests). A kind the cluster does not serve has
//! nothing to delete.

use anyhow::{Context, Result};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::Scope;

use super::ApplyOptions;
use super::object::Applier;
use super::retry::{Deadline, Failure, api_code, retry};

/// (group, version, kind) of what is deleted, every object of each.
pub const SEED_MIRROR_KINDS: [(&str, &str, &str); 3] = [
    (
        "operator.openshift.io",
        "v1alpha1",
        "ImageContentSourcePolicy",
    ),
    ("config.openshift.io", "v1", "ImageDigestMirrorSet"),
    ("operators.coreos.com", "v1alpha1", "CatalogSource"),
];

/// The async core of [`super::delete_seed_mirrors`].
pub async fn delete_seed_mirrors_with(client: Client, opts: &ApplyOptions) -> Result<Vec<String>> {
    let mut applier = Applier::new(client.clone(), opts, Deadline::after(opts.deadline));
    let mut deleted = Vec::new();
    for (group, version, kind) in SEED_MIRROR_KINDS {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let Some((ar, scope)) = applier.resolve(&gvk).await? else {
            tracing::info!("{kind} ({group}/{version}) is not served: nothing to delete");
            continue;
        };
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let what = format!("listing {kind} objects");
        let deadline = applier.deadline;
        let objects = retry(&what, opts, &deadline, || {
            let all = all.clone();
            async move {
                all.list(&ListParams::default())
                    .await
                    .map_err(Failure::from_kube)
            }
        })
        .await?;
        for obj in objects.items {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let namespace = obj.metadata.namespace.clone();
            let api: Api<DynamicObject> = match (&scope, &namespace) {
                (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
                _ => Api::all_with(client.clone(), &ar),
            };
            let described = match &namespace {
                Some(ns) => format!("{kind} {ns}/{name}"),
                None => format!("{kind} {name}"),
            };
            let what = format!("deleting {described}");
            retry(&what, opts, &deadline, || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    match api.delete(&name, &DeleteParams::default()).await {
                        Ok(_) => Ok(()),
                        // Gone already: what was wanted.
                        Err(e) if api_code(&e) == Some(404) => Ok(()),
                        Err(e) => Err(Failure::from_kube(e)),
                    }
                }
            })
            .await
            .with_context(|| format!("removing the seed's {kind} objects"))?;
            tracing::info!("deleted the seed's {described}");
            deleted.push(described);
        }
    }
    Ok(deleted)
}
