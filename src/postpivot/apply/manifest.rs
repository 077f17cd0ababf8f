//! Reading a manifest directory: regular files in name order (no recursion,
//! like upstream's `os.ReadDir`), each a YAML or JSON stream of documents, a
//! document with `items` being a List whose items are applied one by one.
//!
//! Everything is read and checked before anything is sent, so a typo in the
//! last file changes nothing in the cluster.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kube::api::GroupVersionKind;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The annotation choosing how an object that already exists is updated.
pub const APPLY_TYPE_ANNOTATION: &str = "lca.openshift.io/apply-type";

/// How an existing object is updated (`lca.openshift.io/apply-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyType {
    /// The default: the manifest replaces the live object.
    Replace,
    /// The manifest is merged into the live object ("musthave").
    Merge,
}

/// One object to apply, with where it came from.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub file: PathBuf,
    /// 1-based document number in the file.
    pub document: usize,
    /// 1-based item number when the document is a List.
    pub item: Option<usize>,
    pub gvk: GroupVersionKind,
    pub api_version: String,
    pub name: String,
    pub namespace: Option<String>,
    pub apply_type: ApplyType,
    /// The object as sent: the apply-type annotation removed.
    pub object: Value,
}

impl Manifest {
    /// `Kind namespace/name` or `Kind name`.
    pub fn object_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.gvk.kind, self.name),
            None => format!("{} {}", self.gvk.kind, self.name),
        }
    }

    /// Where the object is, for error messages.
    pub fn location(&self) -> String {
        let item = self
            .item
            .map(|i| format!(", List item {i}"))
            .unwrap_or_default();
        format!("{} (document {}{item})", self.file.display(), self.document)
    }

    pub fn is_namespace(&self) -> bool {
        self.gvk.group.is_empty() && self.gvk.kind == "Namespace"
    }

    pub fn is_crd(&self) -> bool {
        self.gvk.group == "apiextensions.k8s.io" && self.gvk.kind == "CustomResourceDefinition"
    }
}

/// The regular files of `dir` in byte order of their names.
pub fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("reading the manifest directory {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.with_context(|| format!("reading the manifest directory {}", dir.display()))?;
        let path = entry.path();
        // Follows symlinks: a linked manifest is a manifest.
        let meta =
            std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        if meta.is_file() {
            files.push(path);
        } else {
            tracing::info!(
                "skipping {}: not a regular file (no recursion)",
                path.display()
            );
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Every object of every file of `dir`, in file and document order.
pub fn read_dir(dir: &Path) -> Result<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for file in manifest_files(dir)? {
        manifests.extend(read_file(&file)?);
    }
    Ok(manifests)
}

/// The objects of one file.
pub fn read_file(file: &Path) -> Result<Vec<Manifest>> {
    let text = std::fs::read_to_string(file).with_context(|| {
        format!(
            "reading manifest {} (it must be UTF-8 YAML or JSON)",
            file.display()
        )
    })?;
    let mut manifests = Vec::new();
    for (index, doc) in documents(&text)
        .with_context(|| format!("parsing manifest {}", file.display()))?
        .into_iter()
        .enumerate()
    {
        let document = index.saturating_add(1);
        let at = || format!("{} (document {document})", file.display());
        match doc {
            // An empty document (`---` twice, a trailing `---`) holds nothing.
            Value::Null => {}
            Value::Object(map) if map.contains_key("items") => {
                let Some(Value::Array(items)) = map.get("items") else {
                    bail!("{}: `items` must be a list of objects", at());
                };
                for (i, item) in items.iter().enumerate() {
                    let item_no = i.saturating_add(1);
                    manifests.push(to_manifest(item.clone(), file, document, Some(item_no))?);
                }
            }
            Value::Object(_) => manifests.push(to_manifest(doc, file, document, None)?),
            other => bail!(
                "{}: a manifest document must be a Kubernetes object (a mapping), found {}",
                at(),
                kind_of(&other)
            ),
        }
    }
    Ok(manifests)
}

/// The documents of a YAML stream, or of a JSON stream when the text starts
/// with `{` or `[` (what Kubernetes' YAML-or-JSON decoder does).
fn documents(text: &str) -> Result<Vec<Value>> {
    let trimmed = text.trim_start();
    let mut docs = Vec::new();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        for (i, doc) in serde_json::Deserializer::from_str(trimmed)
            .into_iter::<Value>()
            .enumerate()
        {
            docs.push(doc.with_context(|| format!("JSON document {}", i.saturating_add(1)))?);
        }
    } else {
        for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
            let value = Value::deserialize(doc)
                .with_context(|| format!("YAML document {}", i.saturating_add(1)))?;
            docs.push(value);
        }
    }
    Ok(docs)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn to_manifest(
    mut object: Value,
    file: &Path,
    document: usize,
    item: Option<usize>,
) -> Result<Manifest> {
    let item_text = item.map(|i| format!(", List item {i}")).unwrap_or_default();
    let at = format!("{} (document {document}{item_text})", file.display());
    let Some(map) = object.as_object_mut() else {
        bail!("{at}: a List item must be a Kubernetes object (a mapping)");
    };
    let kind = string_field(map, "kind");
    let api_version = string_field(map, "apiVersion");
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let what = match (&kind, name.is_empty()) {
        (Some(k), false) => format!("{k} {name}"),
        (Some(k), true) => k.clone(),
        (None, false) => format!("object {name}"),
        (None, true) => "object".to_string(),
    };
    let Some(kind) = kind else {
        bail!("{at}: {what} has no `kind`; every object needs apiVersion, kind and metadata.name");
    };
    let Some(api_version) = api_version else {
        bail!(
            "{at}: {what} has no `apiVersion`; every object needs apiVersion, kind and metadata.name"
        );
    };
    if name.is_empty() {
        bail!(
            "{at}: {what} has no `metadata.name`; every object needs apiVersion, kind and metadata.name"
        );
    }
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version.clone()),
    };
    if version.is_empty() || version.contains('/') {
        bail!("{at}: {what} has apiVersion `{api_version}`; write `group/version` or `v1`");
    }
    let metadata = map
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .with_context(|| format!("{at}: {what}: `metadata` must be a mapping"))?;
    let namespace = match metadata.get("namespace") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => bail!("{at}: {what}: metadata.namespace must be a string"),
    };
    let apply_type = take_apply_type(metadata)
        .with_context(|| format!("{at}: {what}: annotation {APPLY_TYPE_ANNOTATION}"))?;
    // Fails here, not halfway through the apply, if metadata is malformed.
    serde_json::from_value::<kube::api::DynamicObject>(object.clone())
        .with_context(|| format!("{at}: {what}: malformed metadata"))?;
    Ok(Manifest {
        file: file.to_path_buf(),
        document,
        item,
        gvk: GroupVersionKind::gvk(&group, &version, &kind),
        api_version,
        name,
        namespace,
        apply_type,
        object,
    })
}

fn string_field(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Reads and removes the apply-type annotation (it means nothing to the
/// cluster). Upstream silently skips an existing object on an unknown value;
/// here it is refused before anything is applied.
fn take_apply_type(metadata: &mut Map<String, Value>) -> Result<ApplyType> {
    let Some(Value::Object(annotations)) = metadata.get_mut("annotations") else {
        return Ok(ApplyType::Replace);
    };
    let apply_type = match annotations.remove(APPLY_TYPE_ANNOTATION) {
        None => ApplyType::Replace,
        Some(Value::String(s)) if s == "replace" => ApplyType::Replace,
        Some(Value::String(s)) if s == "merge" => ApplyType::Merge,
        Some(other) => {
            bail!("`{other}` is not an apply type; write `replace` (the default) or `merge`")
        }
    };
    if annotations.is_empty() {
        metadata.remove("annotations");
    }
    Ok(apply_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> Result<Vec<Manifest>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join(name);
        std::fs::write(&file, text)?;
        read_file(&file)
    }

    #[test]
    fn a_json_stream_and_empty_yaml_documents() {
        let json = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}
                      {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}}"#;
        let names: Vec<String> = parse("x.json", json)
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        let yaml =
            "---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: n}\n---\n";
        let m = parse("x.yaml", yaml).unwrap();
        assert_eq!(
            (m.len(), m[0].document, m[0].object_name()),
            (1, 2, "Secret n/s".to_string())
        );
    }

    #[test]
    fn the_apply_type_is_read_and_removed() {
        let yaml = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n  annotations:\n    \
                    lca.openshift.io/apply-type: merge\n    keep: me\n";
        let m = &parse("d.yaml", yaml).unwrap()[0];
        assert_eq!(m.apply_type, ApplyType::Merge);
        assert_eq!(
            (m.gvk.group.as_str(), m.gvk.version.as_str()),
            ("apps", "v1")
        );
        assert_eq!(
            m.object["metadata"]["annotations"],
            serde_json::json!({"keep": "me"})
        );
    }

    #[test]
    fn items_that_are_not_a_list_and_scalars_are_refused() {
        let err = parse("l.yaml", "apiVersion: v1\nkind: List\nitems: 3\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("l.yaml (document 1): `items` must be a list"),
            "{err:#}"
        );
        let err = parse("s.yaml", "just a string\n").unwrap_err();
        assert!(format!("{err:#}").contains("found a string"), "{err:#}");
        let err = parse("n.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("ConfigMap has no `metadata.name`"),
            "{err:#}"
        );
    }
}
