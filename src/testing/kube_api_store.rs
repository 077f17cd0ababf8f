//! The state of the Kubernetes API test server: the resource types it
//! serves (built-in ones, and those of CRDs once Established), their
//! discovery documents, and the objects, in memory.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One served resource type.
#[derive(Debug, Clone)]
pub struct ResourceType {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
}

impl ResourceType {
    fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        ResourceType {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `configmaps` or `customresourcedefinitions.apiextensions.k8s.io`, as
    /// the API server names resources in its messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

/// Store key: group, plural, namespace ("" when cluster-scoped), name.
pub type Key = (String, String, String, String);

/// Everything the server knows.
#[derive(Debug)]
pub struct Store {
    builtin: Vec<ResourceType>,
    pub objects: BTreeMap<Key, Value>,
    /// CRD name → when it becomes Established.
    pub crd_ready_at: BTreeMap<String, Instant>,
    pub crd_delay: Duration,
    next_version: u64,
}

impl Default for Store {
    fn default() -> Self {
        Store {
            builtin: vec![
                ResourceType::new("", "v1", "namespaces", "Namespace", false),
                ResourceType::new("", "v1", "configmaps", "ConfigMap", true),
                ResourceType::new("", "v1", "secrets", "Secret", true),
                ResourceType::new("", "v1", "nodes", "Node", false),
                ResourceType::new("apps", "v1", "deployments", "Deployment", true),
                ResourceType::new(
                    "apiextensions.k8s.io",
                    "v1",
                    "customresourcedefinitions",
                    "CustomResourceDefinition",
                    false,
                ),
            ],
            objects: BTreeMap::new(),
            crd_ready_at: BTreeMap::new(),
            crd_delay: Duration::ZERO,
            next_version: 1,
        }
    }
}

/// The OpenShift kinds post-pivot works on, served by
/// [`Store::serve_openshift`] as if the cluster's CRDs were installed.
pub const OPENSHIFT_TYPES: [(&str, &str, &str, &str, bool); 5] = [
    (
        "machineconfiguration.openshift.io",
        "v1",
        "machineconfigs",
        "MachineConfig",
        false,
    ),
    (
        "config.openshift.io",
        "v1",
        "clusterversions",
        "ClusterVersion",
        false,
    ),
    (
        "config.openshift.io",
        "v1",
        "imagedigestmirrorsets",
        "ImageDigestMirrorSet",
        false,
    ),
    (
        "operator.openshift.io",
        "v1alpha1",
        "imagecontentsourcepolicies",
        "ImageContentSourcePolicy",
        false,
    ),
    (
        "operators.coreos.com",
        "v1alpha1",
        "catalogsources",
        "CatalogSource",
        true,
    ),
];

impl Store {
    /// Serves [`OPENSHIFT_TYPES`] from now on.
    pub fn serve_openshift(&mut self) {
        for (group, version, plural, kind, namespaced) in OPENSHIFT_TYPES {
            if self.find(group, version, plural).is_none() {
                self.builtin
                    .push(ResourceType::new(group, version, plural, kind, namespaced));
            }
        }
    }

    /// Every served type: the built-in ones and those of Established CRDs.
    pub fn types(&self) -> Vec<ResourceType> {
        let mut types = self.builtin.clone();
        let now = Instant::now();
        for ((group, plural, _, name), crd) in &self.objects {
            if group != "apiextensions.k8s.io" || plural != "customresourcedefinitions" {
                continue;
            }
            if self.crd_ready_at.get(name).is_none_or(|at| *at > now) {
                continue;
            }
            types.extend(crd_types(crd));
        }
        types
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types()
            .into_iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    pub fn bump(&mut self) -> String {
        let v = self.next_version;
        self.next_version = v.saturating_add(1);
        v.to_string()
    }

    /// The object as served: a CRD with its current conditions.
    pub fn view(&self, key: &Key) -> Option<Value> {
        let mut obj = self.objects.get(key)?.clone();
        if key.0 == "apiextensions.k8s.io" && key.1 == "customresourcedefinitions" {
            let established = self
                .crd_ready_at
                .get(&key.3)
                .is_some_and(|at| *at <= Instant::now());
            let status = if established { "True" } else { "False" };
            obj["status"] = json!({"conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                {"type": "Established", "status": status, "reason": "InitialNamesAccepted"}
            ]});
        }
        Some(obj)
    }

    /// `/api` (core versions).
    pub fn api_versions(&self, server: &str) -> Value {
        json!({"kind": "APIVersions", "versions": ["v1"],
               "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]})
    }

    /// `/apis` (every group but the core one).
    pub fn api_group_list(&self) -> Value {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types().into_iter().filter(|t| !t.group.is_empty()) {
            let versions = groups.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        let groups: Vec<Value> = groups
            .iter()
            .map(|(name, versions)| group_doc(name, versions))
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/apis/<group>`.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        let mut versions: Vec<String> = Vec::new();
        for t in self.types().into_iter().filter(|t| t.group == group) {
            if !versions.contains(&t.version) {
                versions.push(t.version);
            }
        }
        if versions.is_empty() {
            return None;
        }
        let mut doc = group_doc(group, &versions);
        doc["kind"] = "APIGroup".into();
        doc["apiVersion"] = "v1".into();
        Some(doc)
    }

    /// `/api/v1` or `/apis/<group>/<version>`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let types: Vec<ResourceType> = self
            .types()
            .into_iter()
            .filter(|t| t.group == group && t.version == version)
            .collect();
        if types.is_empty() {
            return None;
        }
        let verbs = json!([
            "create", "delete", "get", "list", "patch", "update", "watch"
        ]);
        let mut resources = Vec::new();
        for t in &types {
            resources.push(json!({"name": t.plural, "singularName": t.singular,
                "namespaced": t.namespaced, "kind": t.kind, "verbs": verbs}));
            resources.push(
                json!({"name": format!("{}/status", t.plural), "singularName": "",
                "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"]}),
            );
        }
        let group_version = types
            .first()
            .map(ResourceType::api_version)
            .unwrap_or_default();
        Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": group_version, "resources": resources}))
    }
}

fn group_doc(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": name, "versions": versions, "preferredVersion": preferred})
}

/// The served types a CRD defines.
fn crd_types(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let namespaced = spec["scope"].as_str() == Some("Namespaced");
    let mut types = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        if let Some(version) = v["name"].as_str() {
            let mut t = ResourceType::new(group, version, plural, kind, namespaced);
            if let Some(s) = names["singular"].as_str() {
                t.singular = s.into();
            }
            types.push(t);
        }
    }
    types
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    patch_value(target, patch, false);
}

/// A strategic merge patch as far as post-pivot needs one: a JSON merge
/// patch, except that lists of objects with a `name` (containers, env)
/// are merged item by item on the name, as the API server does for them.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    patch_value(target, patch, true);
}

fn patch_value(target: &mut Value, patch: &Value, strategic: bool) {
    if strategic && let (Value::Array(live), Value::Array(items)) = (&mut *target, patch) {
        let named = |v: &Value| v.get("name").and_then(Value::as_str).map(String::from);
        if items.iter().all(|i| named(i).is_some()) && live.iter().all(|i| named(i).is_some()) {
            for item in items {
                match live.iter_mut().find(|l| named(l) == named(item)) {
                    Some(l) => patch_value(l, item, true),
                    None => live.push(item.clone()),
                }
            }
            return;
        }
    }
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(map) = target {
        for (k, v) in patch {
            if v.is_null() {
                map.remove(k);
            } else {
                patch_value(map.entry(k.clone()).or_insert(Value::Null), v, strategic);
            }
        }
    }
}

/// Whether `obj`'s labels satisfy a label selector of `key`, `key=value`
/// and `key==value` terms joined by commas (what post-pivot sends).
pub fn selector_matches(selector: &str, obj: &Value) -> bool {
    let labels = &obj["metadata"]["labels"];
    selector.split(',').filter(|t| !t.is_empty()).all(|term| {
        let (key, value) = match term.split_once("==").or_else(|| term.split_once('=')) {
            Some((k, v)) => (k, Some(v)),
            None => (term, None),
        };
        match (labels.get(key).and_then(Value::as_str), value) {
            (Some(have), Some(want)) => have == want,
            (Some(_), None) => true,
            (None, _) => false,
        }
    })
}
