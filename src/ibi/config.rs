//! Reading `ibi-configuration.json` the way `lca-cli ibi` reads it
//! (lifecycle-agent.md §2.3): YAML or JSON (a document starting with `{`
//! is JSON, anything else YAML; only the first document counts), Go's key
//! matching (exact name first, then case-insensitive), `null` leaves the
//! default, `Validate()` then the defaults. What upstream silently drops
//! is reported instead: an unknown key is a warning naming it (with the
//! known key it resembles), and every missing required field is named at
//! once, with the file and the fix.
//!
//! Conversions follow the Go decoders: from JSON a string field takes only
//! a string; from YAML (sigs.k8s.io/yaml converts scalars for string
//! targets) a number or boolean becomes its text, so `- 6` in
//! `coreosInstallerArgs` is `"6"`, and YAML 1.1 `yes`/`no`/`on`/`off` are
//! booleans.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::api::ibi_config::IbiConfig;
use crate::host::disk::{
    DEFAULT_EXTRA_PARTITION_START, ExtraPartitionStart, check_partition_label,
};

/// Upstream's defaults (`SetDefaultValues`).
pub const DEFAULT_EXTRA_PARTITION_LABEL: &str = "var-lib-containers";
pub const DEFAULT_EXTRA_PARTITION_NUMBER: u32 = 5;

/// The keys upstream's `IBIPrepareConfig` has.
pub const KEYS: [&str; 13] = [
    "seedImage",
    "seedVersion",
    "installationDisk",
    "releaseRegistry",
    "precacheBestEffort",
    "precacheDisabled",
    "shutdown",
    "useContainersFolder",
    "extraPartitionStart",
    "extraPartitionLabel",
    "extraPartitionNumber",
    "skipDiskCleanup",
    "coreosInstallerArgs",
];

/// A configuration that passed validation, with the defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedConfig {
    pub config: IbiConfig,
    /// `extraPartitionStart` parsed (checked even though upstream only
    /// fails on it after wiping the disk).
    pub extra_partition_start: ExtraPartitionStart,
    /// Said once at start-up; nothing here stops the run.
    pub warnings: Vec<String>,
}

/// Why a configuration file was refused: every problem, each naming the
/// file, the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}", problems.join("; "))]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<String>,
}

/// Reads and validates the file at `path`.
pub fn read(path: &Path) -> Result<LoadedConfig> {
    if path.as_os_str().is_empty() {
        anyhow::bail!("configuration file is required: pass -f /var/tmp/ibi-configuration.json");
    }
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "reading the configuration file {} (does it exist?)",
            path.display()
        )
    })?;
    Ok(parse(&path.display().to_string(), &bytes)?)
}

/// Decodes and validates `bytes`, the content of the file `file`.
pub fn parse(file: &str, bytes: &[u8]) -> Result<LoadedConfig, ConfigError> {
    let fail = |problems: Vec<String>| ConfigError {
        file: file.to_string(),
        problems,
    };
    let text =
        std::str::from_utf8(bytes).map_err(|_| fail(vec!["the file is not UTF-8 text".into()]))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let is_json = text.trim_start().starts_with('{');
    let doc = if is_json {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .next()
            .transpose()
            .map_err(|e| fail(vec![format!("is not valid JSON: {e}")]))?
    } else {
        first_yaml_document(text).map_err(|e| fail(vec![e]))?
    };
    let mut c = IbiConfig::default();
    let mut warnings = Vec::new();
    let mut problems = Vec::new();
    let mut bad_fields = Vec::new();
    match doc {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in &map {
                let Some(field) = match_key(key) else {
                    warnings.push(unknown_key_warning(file, key));
                    continue;
                };
                if let Err(e) = assign(&mut c, field, value, !is_json) {
                    problems.push(format!("{field} {e}"));
                    bad_fields.push(field);
                }
            }
        }
        Some(other) => problems.push(format!(
            "the document is {}, not a mapping of keys such as \"seedImage\"",
            kind(&other)
        )),
    }
    // Validate(): upstream stops at the first; all are named here.
    for (value, field, example) in [
        (
            &c.seed_image,
            "seedImage",
            "\"quay.io/example/seed:4.16.0\"",
        ),
        (
            &c.seed_version,
            "seedVersion",
            "the seed's OpenShift version, e.g. \"4.16.0\"",
        ),
        (
            &c.installation_disk,
            "installationDisk",
            "\"/dev/disk/by-id/<your disk>\"",
        ),
    ] {
        if value.is_empty() && !bad_fields.contains(&field) {
            problems.push(format!("{field} is required: set \"{field}\" to {example}"));
        }
    }
    // SetDefaultValues().
    if c.extra_partition_start.is_empty() {
        c.extra_partition_start = DEFAULT_EXTRA_PARTITION_START.into();
    }
    if c.extra_partition_number == 0 {
        c.extra_partition_number = DEFAULT_EXTRA_PARTITION_NUMBER;
    }
    if c.extra_partition_label.is_empty() {
        c.extra_partition_label = DEFAULT_EXTRA_PARTITION_LABEL.into();
    }
    let start = ExtraPartitionStart::parse(&c.extra_partition_start);
    if let Err(e) = &start {
        if c.use_containers_folder {
            warnings.push(format!(
                "{file}: extraPartitionStart is ignored with useContainersFolder ({e})"
            ));
        } else {
            problems.push(format!("extraPartitionStart {e}"));
        }
    }
    if !c.use_containers_folder
        && let Err(e) = check_partition_label(&c.extra_partition_label)
    {
        problems.push(format!("{e:#}"));
    }
    if c.extra_partition_number != DEFAULT_EXTRA_PARTITION_NUMBER {
        warnings.push(format!(
            "{file}: extraPartitionNumber {} is not used: sprout finds the extra partition by its \
             name {:?}, whatever number sfdisk gives it",
            c.extra_partition_number, c.extra_partition_label
        ));
    }
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    let extra_partition_start =
        start.unwrap_or_else(|_| ExtraPartitionStart::Verbatim(c.extra_partition_start.clone()));
    Ok(LoadedConfig {
        config: c,
        extra_partition_start,
        warnings,
    })
}

/// Combinations upstream accepts but that cannot do what they say; the
/// preflight refuses them. Today: `coreosInstallerArgs` saving partitions
/// (`--save-partindex`, `--save-partlabel`) while the disk cleanup runs,
/// whose `wipefs --all` erases the partition table coreos-installer would
/// read the kept partitions from.
pub fn conflicts(c: &IbiConfig) -> Vec<String> {
    let saves = c.coreos_installer_args.iter().find(|a| {
        ["--save-partindex", "--save-partlabel"]
            .iter()
            .any(|f| a.as_str() == *f || a.starts_with(&format!("{f}=")))
    });
    match saves {
        Some(flag) if !c.skip_disk_cleanup => vec![format!(
            "coreosInstallerArgs has {flag:?} to keep partitions, but the disk cleanup before \
             the install (wipefs --all) erases the partition table they are read from: set \
             \"skipDiskCleanup\": true"
        )],
        _ => Vec::new(),
    }
}

/// The first YAML document as a JSON value (`None` for an empty file).
fn first_yaml_document(text: &str) -> Result<Option<Value>, String> {
    use serde::Deserialize;
    let Some(doc) = yaml_serde::Deserializer::from_str(text).next() else {
        return Ok(None);
    };
    let v = yaml_serde::Value::deserialize(doc)
        .map_err(|e| format!("is not valid YAML or JSON: {e}"))?;
    yaml_to_json(v).map(Some)
}

fn yaml_to_json(v: yaml_serde::Value) -> Result<Value, String> {
    use yaml_serde::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).map_err(|e| e.to_string())?,
        Y::String(s) => Value::String(s),
        Y::Sequence(s) => Value::Array(s.into_iter().map(yaml_to_json).collect::<Result<_, _>>()?),
        Y::Mapping(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                // sigs.k8s.io/yaml turns non-string keys into their text.
                let key = match yaml_to_json(k)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
}

/// Go's `encoding/json` field matching: exact first, then a case fold
/// that, like Go's, also equates `ſ` with `s` and the Kelvin sign with `k`.
fn match_key(key: &str) -> Option<&'static str> {
    KEYS.iter()
        .find(|k| **k == key)
        .or_else(|| KEYS.iter().find(|k| fold(k) == fold(key)))
        .copied()
}

fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'ſ' => 's',
            '\u{212a}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn unknown_key_warning(file: &str, key: &str) -> String {
    let near = KEYS
        .iter()
        .map(|k| (distance(&fold(k), &fold(key)), *k))
        .min()
        .filter(|(d, _)| *d <= 3);
    match near {
        Some((_, k)) => format!("{file}: unknown key {key:?} ignored; did you mean {k:?}?"),
        None => format!("{file}: unknown key {key:?} ignored (upstream ignores it too)"),
    }
}

/// Levenshtein distance, for the "did you mean" hint.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn assign(c: &mut IbiConfig, field: &str, v: &Value, yaml: bool) -> Result<(), String> {
    if v.is_null() {
        return Ok(());
    }
    match field {
        "seedImage" => c.seed_image = string(v, yaml)?,
        "seedVersion" => c.seed_version = string(v, yaml)?,
        "installationDisk" => c.installation_disk = string(v, yaml)?,
        "releaseRegistry" => c.release_registry = string(v, yaml)?,
        "extraPartitionStart" => c.extra_partition_start = string(v, yaml)?,
        "extraPartitionLabel" => c.extra_partition_label = string(v, yaml)?,
        "precacheBestEffort" => c.precache_best_effort = boolean(v, yaml)?,
        "precacheDisabled" => c.precache_disabled = boolean(v, yaml)?,
        "shutdown" => c.shutdown = boolean(v, yaml)?,
        "useContainersFolder" => c.use_containers_folder = boolean(v, yaml)?,
        "skipDiskCleanup" => c.skip_disk_cleanup = boolean(v, yaml)?,
        "extraPartitionNumber" => {
            c.extra_partition_number = v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("must be a partition number such as 5, not {v}"))?;
        }
        "coreosInstallerArgs" => {
            let items = v.as_array().ok_or_else(|| {
                format!(
                    "must be a list of arguments such as [\"--save-partindex\", \"6\"], not {}",
                    kind(v)
                )
            })?;
            c.coreos_installer_args = items
                .iter()
                .enumerate()
                .map(|(i, a)| string(a, yaml).map_err(|e| format!("item {i} {e}")))
                .collect::<Result<_, _>>()?;
        }
        _ => {}
    }
    Ok(())
}

fn string(v: &Value, yaml: bool) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if yaml => Ok(n.to_string()),
        Value::Bool(b) if yaml => Ok(b.to_string()),
        // Go leaves a string field alone for null, also inside lists.
        Value::Null => Ok(String::new()),
        other => Err(format!(
            "must be a string; write it in quotes (it is {})",
            kind(other)
        )),
    }
}

fn boolean(v: &Value, yaml: bool) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if yaml => match s.as_str() {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Ok(true),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Ok(false),
            _ => Err(format!("must be true or false, not {s:?}")),
        },
        other => Err(format!("must be true or false, not {}", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
