//! `extra-manifests/`: user manifests applied after reconfiguration.
//!
//! Upstream copies `*.yaml`, `*.yml` and `*.json` verbatim and silently drops
//! anything else, and a manifest that does not parse only fails at the edge
//! site, after the node was installed. sprout reports other entries and
//! checks that every document parses and names its `apiVersion` and `kind`.

use std::path::Path;

use crate::api::diag::{Problem, Problems};
use crate::api::yaml_depth::{MAX_YAML_DEPTH, check_depth, too_deep};
use crate::host::input::{InputKind, read_input};

pub const DIR: &str = crate::api::contract::config_iso::EXTRA_MANIFESTS_DIR;
const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// One manifest file to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraManifest {
    pub file_name: String,
    pub contents: Vec<u8>,
}

/// Reads and checks `dir/extra-manifests`, sorted by name. A missing
/// directory means no extra manifests.
pub fn read(dir: &Path) -> Result<Vec<ExtraManifest>, Vec<Problem>> {
    let root = dir.join(DIR);
    let mut p = Problems::new(DIR);
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            p.add("", format!("reading {}: {e}", root.display()));
            return Err(p.into_vec());
        }
    };
    let mut manifests = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                p.add("", format!("reading {}: {e}", root.display()));
                continue;
            }
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if !EXTENSIONS.contains(&ext) {
            p.add(
                name,
                "is not a .yaml, .yml or .json file, so it would not be applied; \
                 move it out of extra-manifests/ or give it one of those extensions (subdirectories are not read)",
            );
            continue;
        }
        // A link to a regular file is fine; anything else (a dangling link,
        // a directory, a FIFO, /dev/zero) is named for what it is.
        match read_input(&path, InputKind::ExtraManifest) {
            Ok(contents) => {
                if let Err(e) = check_documents(&contents) {
                    p.add(name.clone(), e);
                }
                manifests.push(ExtraManifest {
                    file_name: name,
                    contents,
                });
            }
            Err(e) => p.add(name, e.to_string()),
        }
    }
    if !p.is_empty() {
        return Err(p.into_vec());
    }
    manifests.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(manifests)
}

/// Every document (YAML streams may hold several; JSON is YAML) must be a
/// Kubernetes object: a mapping with `apiVersion` and `kind`.
pub fn check_documents(contents: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(contents).map_err(|_| "is not UTF-8 text".to_string())?;
    check_depth(contents, MAX_YAML_DEPTH).map_err(too_deep)?;
    let mut count = 0;
    for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value: serde_json::Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| format!("document {} does not parse: {e}", i + 1))?;
        if value.is_null() {
            continue; // an empty document between `---` separators
        }
        count += 1;
        let has = |k: &str| {
            value
                .get(k)
                .and_then(|v| v.as_str())
                .is_some_and(|s| !s.is_empty())
        };
        if !has("apiVersion") || !has("kind") {
            return Err(format!(
                "document {} is not a Kubernetes object: it needs apiVersion and kind",
                i + 1
            ));
        }
    }
    if count == 0 {
        return Err("holds no manifest; remove the empty file".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_and_json_pass() {
        assert!(check_documents(b"apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\n").is_ok());
        assert!(check_documents(br#"{"apiVersion":"v1","kind":"List","items":[]}"#).is_ok());
    }

    #[test]
    fn bad_documents_are_named() {
        assert_eq!(
            check_documents(b"apiVersion: v1\nkind: A\n---\nfoo: bar\n").unwrap_err(),
            "document 2 is not a Kubernetes object: it needs apiVersion and kind"
        );
        assert!(
            check_documents(b"a: [")
                .unwrap_err()
                .starts_with("document 1 does not parse")
        );
        assert!(check_documents(b"\n").is_err());
    }
}
