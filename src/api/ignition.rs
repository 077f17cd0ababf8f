//! Ignition configs (spec 3.2.0, the newest every supported RHCOS accepts).
//!
//! Configs are handled as JSON values so that the output keeps exactly the
//! keys that were set (the typed structs of the `ignition-config` crate
//! would add `null`s); the crate's spec types check the result, so unknown
//! or misspelt keys are errors rather than silently ignored.

use base64::Engine;
use serde_json::{Map, Value, json};

pub const VERSION: &str = "3.2.0";

/// Parses a user's config (spec 3.0.0 to 3.2.0) and returns it as a 3.2.0
/// value. 3.0 and 3.1 are subsets of 3.2, so translating is re-labelling.
pub fn parse_override(text: &str) -> Result<Value, String> {
    let (config, warnings) = ignition_config::Config::parse_str(text)
        .map_err(|e| format!("is not an Ignition config: {e}"))?;
    if let Some(w) = warnings.first() {
        return Err(format!(
            "is not a valid Ignition config: {w}; check the spelling of that key"
        ));
    }
    match config {
        ignition_config::Config::V3_0(_)
        | ignition_config::Config::V3_1(_)
        | ignition_config::Config::V3_2(_) => {}
        _ => {
            return Err(format!(
                "uses an Ignition spec newer than {VERSION}, which the installation ISO uses; write it for spec {VERSION} or older"
            ));
        }
    }
    let mut value: Value = serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?;
    value["ignition"]["version"] = json!(VERSION);
    check(&value)?;
    Ok(value)
}

/// Checks that `config` is a valid spec 3.2.0 config with no unknown keys.
pub fn check(config: &Value) -> Result<(), String> {
    let text = serde_json::to_string(config).map_err(|e| e.to_string())?;
    match ignition_config::Config::parse_str(&text) {
        Ok((ignition_config::Config::V3_2(_), w)) if w.is_empty() => Ok(()),
        Ok((_, w)) if !w.is_empty() => Err(format!("{}", w[0])),
        Ok(_) => Err(format!("the config is not spec {VERSION}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Merges `child` over `parent` as Ignition does: objects field by field,
/// lists of keyed objects (files by path, units and users by name, …) entry
/// by entry, lists of plain values as a union; the child's scalars win.
pub fn merge(parent: &mut Value, child: &Value) {
    match (parent, child) {
        (Value::Object(p), Value::Object(c)) => {
            for (k, cv) in c {
                match p.get_mut(k) {
                    Some(pv) => merge(pv, cv),
                    None => {
                        p.insert(k.clone(), cv.clone());
                    }
                }
            }
        }
        (Value::Array(p), Value::Array(c)) => {
            for cv in c {
                let key = key_of(cv);
                let same = key
                    .as_ref()
                    .and_then(|k| p.iter().position(|pv| key_of(pv).as_ref() == Some(k)));
                match same {
                    Some(i) => merge(&mut p[i], cv),
                    None if !cv.is_object() && p.contains(cv) => {}
                    None => p.push(cv.clone()),
                }
            }
        }
        (p, c) => *p = c.clone(),
    }
}

/// The identity of a list entry, by the field Ignition keys that list on.
fn key_of(v: &Value) -> Option<(String, String)> {
    let o = v.as_object()?;
    ["path", "name", "device", "source"].iter().find_map(|k| {
        o.get(*k)
            .and_then(Value::as_str)
            .map(|s| ((*k).to_string(), s.to_string()))
    })
}

/// A `storage.files` entry owned by root with inline contents.
pub fn file(path: &str, mode: u32, contents: &[u8]) -> Value {
    json!({
        "overwrite": true,
        "path": path,
        "user": {"name": "root"},
        "contents": {"source": data_url(contents)},
        "mode": mode,
    })
}

/// A `systemd.units` entry.
pub fn unit(name: &str, contents: &str, enabled: bool) -> Value {
    let mut u = Map::new();
    u.insert("contents".into(), json!(contents));
    if enabled {
        u.insert("enabled".into(), json!(true));
    }
    u.insert("name".into(), json!(name));
    Value::Object(u)
}

/// An RFC 2397 data URL, with the media type sniffed as Go's
/// `http.DetectContentType` does for text and binary.
pub fn data_url(contents: &[u8]) -> String {
    let is_text = std::str::from_utf8(contents)
        .map(|s| {
            !s.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\u{c}' | '\u{1b}'))
        })
        .unwrap_or(false);
    let mime = if is_text {
        "text/plain;charset=utf-8"
    } else {
        "application/octet-stream"
    };
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(contents)
    )
}

/// Puts `entry` in `config.<section>.<list>`, replacing an entry with the same
/// key (fixed files win over an override).
pub fn upsert(config: &mut Value, section: &str, list: &str, entry: Value) {
    let items = config[section][list].as_array_mut();
    let key = key_of(&entry);
    match items {
        Some(items) => match items.iter_mut().find(|i| key.is_some() && key_of(i) == key) {
            Some(existing) => *existing = entry,
            None => items.push(entry),
        },
        None => config[section][list] = Value::Array(vec![entry]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_specs_are_translated_and_typos_refused() {
        let v = parse_override(
            r#"{"ignition":{"version":"3.1.0"},"storage":{"files":[{"path":"/a","mode":420}]}}"#,
        )
        .unwrap();
        assert_eq!(v["ignition"]["version"], "3.2.0");
        let e = parse_override(r#"{"ignition":{"version":"3.2.0"},"storage":{"filez":[]}}"#)
            .unwrap_err();
        assert!(e.contains("filez"), "{e}");
        let e = parse_override(r#"{"ignition":{"version":"3.4.0"}}"#).unwrap_err();
        assert!(e.contains("newer than 3.2.0"), "{e}");
        assert!(parse_override("{").is_err());
    }

    #[test]
    fn merge_follows_ignition_keys() {
        let mut parent = json!({"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k1"]}]},
            "storage":{"files":[{"path":"/a","mode":420}]}});
        let child = json!({"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["k1","k2"]},{"name":"x"}]},
            "storage":{"files":[{"path":"/a","mode":384},{"path":"/b"}]}});
        merge(&mut parent, &child);
        assert_eq!(
            parent["passwd"]["users"][0]["sshAuthorizedKeys"],
            json!(["k1", "k2"])
        );
        assert_eq!(parent["passwd"]["users"][1]["name"], "x");
        assert_eq!(parent["storage"]["files"][0]["mode"], 384);
        assert_eq!(parent["storage"]["files"][1]["path"], "/b");
    }

    #[test]
    fn data_urls_sniff_text() {
        assert_eq!(
            data_url(b"hi\n"),
            "data:text/plain;charset=utf-8;base64,aGkK"
        );
        assert!(data_url(&[0, 1, 2]).starts_with("data:application/octet-stream;base64,"));
    }
}
