//! Applying one object: REST mapping through API discovery, then GET and
//! CREATE, or REPLACE / merge-then-REPLACE with the live resourceVersion.

use std::collections::HashMap;

use anyhow::{Result, anyhow};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::discovery::{self, ApiCapabilities, Scope};
use tokio::time::Instant;

use super::manifest::{ApplyType, Manifest};
use super::merge::must_have;
use super::retry::{Deadline, Failure, api_code, retry};
use super::{ApplyAction, ApplyOptions};

/// A client with the REST mappings found so far (only what the cluster
/// serves is remembered: a kind missing now may be served once its CRD is).
pub struct Applier<'a> {
    pub client: Client,
    pub opts: &'a ApplyOptions,
    pub deadline: Deadline,
    mappings: HashMap<String, (ApiResource, ApiCapabilities)>,
}

impl<'a> Applier<'a> {
    pub fn new(client: Client, opts: &'a ApplyOptions, deadline: Deadline) -> Self {
        Applier {
            client,
            opts,
            deadline,
            mappings: HashMap::new(),
        }
    }

    /// The resource serving `gvk`, or `None` when the cluster's discovery
    /// still does not list it after `opts.unknown_kind_grace`.
    pub async fn resolve(
        &mut self,
        gvk: &GroupVersionKind,
    ) -> Result<Option<(ApiResource, Scope)>> {
        let key = format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind);
        if let Some((ar, caps)) = self.mappings.get(&key) {
            return Ok(Some((ar.clone(), caps.scope.clone())));
        }
        let grace_end = Instant::now() + self.opts.unknown_kind_grace;
        let client = self.client.clone();
        let what = format!(
            "looking up {} {} in the API discovery",
            gvk.kind,
            api_version(gvk)
        );
        let found = retry(&what, self.opts, &self.deadline, || {
            let client = client.clone();
            async move {
                match discovery::pinned_kind(&client, gvk).await {
                    Ok(found) => Ok(Some(found)),
                    Err(e) if is_not_served(&e) => {
                        if Instant::now() >= grace_end {
                            Ok(None)
                        } else {
                            Err(Failure::Transient(anyhow!("not (yet) served: {e}")))
                        }
                    }
                    Err(e) => Err(Failure::from_kube(e)),
                }
            }
        })
        .await?;
        Ok(found.map(|(ar, caps)| {
            let scope = caps.scope.clone();
            self.mappings.insert(key, (ar.clone(), caps));
            (ar, scope)
        }))
    }

    /// Applies `m` as upstream does: CREATE if absent, else REPLACE with
    /// the live resourceVersion (`merge`: the manifest merged into the live
    /// object first). A conflict (the object changed meanwhile) starts over
    /// from the GET.
    pub async fn apply(&mut self, m: &Manifest) -> Result<ApplyAction> {
        let Some((ar, scope)) = self.resolve(&m.gvk).await? else {
            return Err(anyhow!(
                "the cluster serves no kind {} in apiVersion {} (its API discovery does not list \
                 it): a typo in kind or apiVersion, or a CRD that is neither in the cluster nor \
                 in these manifests",
                m.gvk.kind,
                m.api_version
            ));
        };
        let mut desired = m.object.clone();
        let namespace = match scope {
            Scope::Namespaced => Some(m.namespace.clone().unwrap_or_else(|| "default".to_string())),
            Scope::Cluster => None,
        };
        if let Some(meta) = desired.get_mut("metadata").and_then(|v| v.as_object_mut()) {
            meta.remove("resourceVersion");
            match &namespace {
                Some(ns) => meta.insert("namespace".into(), ns.clone().into()),
                None => meta.remove("namespace"),
            };
        }
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        };
        let what = format!("applying {}", m.object_name());
        let ns_text = namespace.clone().unwrap_or_default();
        retry(&what, self.opts, &self.deadline, || {
            let api = api.clone();
            let desired = desired.clone();
            let ns_text = ns_text.clone();
            async move { apply_once(&api, &m.name, m.apply_type, desired, &ns_text).await }
        })
        .await
    }

    /// Waits until the CRD `name` is Established (its kinds are served).
    pub async fn wait_established(&mut self, name: &str) -> Result<()> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        let wait = Deadline::after(
            self.opts
                .crd_established_timeout
                .min(self.deadline.remaining()),
        );
        let what = format!("waiting for CustomResourceDefinition {name} to be Established");
        let opts = self.opts;
        let result = retry(&what, opts, &wait, || {
            let api = api.clone();
            async move {
                let crd = api.get(name).await.map_err(Failure::from_kube)?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if established {
                    Ok(())
                } else {
                    Err(Failure::Transient(anyhow!("not Established yet")))
                }
            }
        })
        .await;
        result.map_err(|e| {
            e.context(format!(
                "CustomResourceDefinition {name} was not Established within {:?}",
                wait.total()
            ))
        })
    }
}

async fn apply_once(
    api: &Api<DynamicObject>,
    name: &str,
    apply_type: ApplyType,
    desired: serde_json::Value,
    namespace: &str,
) -> std::result::Result<ApplyAction, Failure> {
    let params = PostParams::default();
    let live = api.get_opt(name).await.map_err(Failure::from_kube)?;
    let Some(live) = live else {
        let obj = to_dynamic(desired)?;
        return match api.create(&params, &obj).await {
            Ok(_) => Ok(ApplyAction::Created),
            // Created meanwhile: the next attempt updates it.
            Err(e) if api_code(&e) == Some(409) => Err(Failure::Transient(e.into())),
            Err(e) if api_code(&e) == Some(404) && !namespace.is_empty() => {
                Err(Failure::Permanent(anyhow::Error::from(e).context(format!(
                    "namespace {namespace} does not exist in the cluster and no manifest \
                     here creates it; add a Namespace manifest"
                ))))
            }
            Err(e) => Err(Failure::from_kube(e)),
        };
    };
    let live_rv = live.metadata.resource_version.clone();
    let (mut obj, action) = match apply_type {
        ApplyType::Replace => (desired, ApplyAction::Replaced),
        ApplyType::Merge => {
            let live_value =
                serde_json::to_value(&live).map_err(|e| Failure::Permanent(e.into()))?;
            (must_have(&desired, &live_value), ApplyAction::Merged)
        }
    };
    if let Some(meta) = obj.get_mut("metadata").and_then(|v| v.as_object_mut()) {
        match live_rv {
            Some(rv) => meta.insert("resourceVersion".into(), rv.into()),
            None => meta.remove("resourceVersion"),
        };
    }
    let obj = to_dynamic(obj)?;
    match api.replace(name, &params, &obj).await {
        Ok(_) => Ok(action),
        // Changed or deleted since the GET: start over.
        Err(e) if matches!(api_code(&e), Some(409 | 404)) => Err(Failure::Transient(e.into())),
        Err(e) => Err(Failure::from_kube(e)),
    }
}

fn to_dynamic(v: serde_json::Value) -> std::result::Result<DynamicObject, Failure> {
    serde_json::from_value(v).map_err(|e| Failure::Permanent(anyhow!("malformed object: {e}")))
}

/// Discovery says the kind (or its whole group version) is not served.
fn is_not_served(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Discovery(_)) || api_code(e) == Some(404)
}

fn api_version(gvk: &GroupVersionKind) -> String {
    if gvk.group.is_empty() {
        gvk.version.clone()
    } else {
        format!("{}/{}", gvk.group, gvk.version)
    }
}
