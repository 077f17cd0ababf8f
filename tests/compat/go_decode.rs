//! Go's `encoding/json` decoding into a struct described by a `.keys`
//! fixture, as lca-cli's `ReadYamlOrJSONFile` does it for a JSON document:
//! each object key goes to the field whose JSON name equals it, else to one
//! that equals it ignoring case; keys with no field are dropped; `null`
//! leaves a field alone; a value of the wrong type fails the whole decode.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Uint,
    Bool,
    Str,
    StrList,
    StrMap,
    Object,
    ObjectList,
}

#[derive(Debug)]
pub struct Schema {
    pub release: String,
    /// Field paths (`a.b`, `list[].c`) in fixture order, with their kind.
    pub fields: Vec<(String, Kind)>,
    /// Keys post-pivot takes machine networks from, first non-empty wins.
    pub machine_networks_from: Vec<String>,
    /// Keys post-pivot takes node IPs from, first non-empty wins.
    pub node_ips_from: Vec<String>,
    /// How many machine networks this release can apply.
    pub max_machine_networks: usize,
    /// Keys the release's Validate() requires to be non-empty.
    pub required: Vec<String>,
    /// Keys SetDefaultValues() fills when empty, with the default.
    pub defaults: Vec<(String, String)>,
}

/// The decoded struct: the value of every field that was set, by path.
#[derive(Debug, Default)]
pub struct Decoded {
    pub values: BTreeMap<String, Value>,
    /// Document keys (full paths) the struct has no field for.
    pub dropped: Vec<String>,
}

fn parent(path: &str) -> &str {
    path.rfind('.').map_or("", |i| &path[..i])
}

fn leaf(path: &str) -> &str {
    path.rfind('.').map_or(path, |i| &path[i + 1..])
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

impl Schema {
    pub fn load(release: &str, path: &Path) -> Self {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let mut s = Schema {
            release: release.to_string(),
            fields: Vec::new(),
            machine_networks_from: Vec::new(),
            node_ips_from: Vec::new(),
            max_machine_networks: 0,
            required: Vec::new(),
            defaults: Vec::new(),
        };
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["@machine-networks", keys @ ..] => {
                    s.machine_networks_from = keys.iter().map(|k| k.to_string()).collect()
                }
                ["@node-ips", keys @ ..] => {
                    s.node_ips_from = keys.iter().map(|k| k.to_string()).collect()
                }
                ["@max-machine-networks", n] => s.max_machine_networks = n.parse().unwrap(),
                ["@required", keys @ ..] => {
                    s.required = keys.iter().map(|k| k.to_string()).collect()
                }
                ["@default", key, value] => s.defaults.push((key.to_string(), value.to_string())),
                [key, ty] => {
                    let kind = match *ty {
                        "int" => Kind::Int,
                        "uint" => Kind::Uint,
                        "bool" => Kind::Bool,
                        "string" => Kind::Str,
                        "[]string" => Kind::StrList,
                        "map[string]string" => Kind::StrMap,
                        "object" => Kind::Object,
                        "[]object" => Kind::ObjectList,
                        other => panic!("{}: unknown type {other}", path.display()),
                    };
                    let p = parent(key).trim_end_matches("[]");
                    assert!(
                        p.is_empty() || s.fields.iter().any(|(f, _)| f == p),
                        "{}: {key} comes before its parent",
                        path.display()
                    );
                    s.fields.push((key.to_string(), kind));
                }
                _ => panic!("{}: bad line {line:?}", path.display()),
            }
        }
        s
    }

    pub fn decode(&self, doc: &Value) -> Result<Decoded, String> {
        let obj = doc.as_object().ok_or("the document is not an object")?;
        let mut out = Decoded::default();
        self.walk("", obj, &mut out)?;
        Ok(out)
    }

    fn walk(
        &self,
        prefix: &str,
        obj: &Map<String, Value>,
        out: &mut Decoded,
    ) -> Result<(), String> {
        let children: Vec<&(String, Kind)> = self
            .fields
            .iter()
            .filter(|(f, _)| parent(f) == prefix)
            .collect();
        for (key, value) in obj {
            let field = children.iter().find(|(f, _)| leaf(f) == key).or_else(|| {
                children
                    .iter()
                    .find(|(f, _)| leaf(f).eq_ignore_ascii_case(key))
            });
            let Some((path, kind)) = field else {
                out.dropped.push(join(prefix.trim_end_matches("[]"), key));
                continue;
            };
            if value.is_null() {
                continue;
            }
            let mismatch = || format!("{path}: cannot decode {value} into {kind:?}");
            match kind {
                Kind::Int => {
                    if !(value.is_i64() || value.is_u64()) {
                        return Err(mismatch());
                    }
                }
                Kind::Uint => {
                    if !value.is_u64() {
                        return Err(mismatch());
                    }
                }
                Kind::Bool => {
                    if !value.is_boolean() {
                        return Err(mismatch());
                    }
                }
                Kind::Str => {
                    if !value.is_string() {
                        return Err(mismatch());
                    }
                }
                Kind::StrList => {
                    let ok = value
                        .as_array()
                        .is_some_and(|a| a.iter().all(|v| v.is_string() || v.is_null()));
                    if !ok {
                        return Err(mismatch());
                    }
                }
                Kind::StrMap => {
                    let ok = value
                        .as_object()
                        .is_some_and(|m| m.values().all(|v| v.is_string() || v.is_null()));
                    if !ok {
                        return Err(mismatch());
                    }
                }
                Kind::Object => {
                    self.walk(path, value.as_object().ok_or_else(mismatch)?, out)?;
                }
                Kind::ObjectList => {
                    for item in value.as_array().ok_or_else(mismatch)? {
                        if !item.is_null() {
                            let o = item.as_object().ok_or_else(mismatch)?;
                            self.walk(&format!("{path}[]"), o, out)?;
                        }
                    }
                }
            }
            out.values.insert(path.clone(), value.clone());
        }
        Ok(())
    }
}

impl Decoded {
    pub fn get(&self, path: &str) -> Option<&Value> {
        self.values.get(path)
    }

    pub fn str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(Value::as_str)
    }

    pub fn int(&self, path: &str) -> Option<i64> {
        self.get(path).and_then(Value::as_i64)
    }

    pub fn str_list(&self, path: &str) -> Option<Vec<String>> {
        self.get(path).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
    }

    /// The value of the first of `keys` that is set and not empty, as a
    /// list (a string key gives a one-element list).
    pub fn first_non_empty(&self, keys: &[String]) -> Vec<String> {
        for k in keys {
            if let Some(list) = self.str_list(k).filter(|l| !l.is_empty()) {
                return list;
            }
            if let Some(s) = self.str(k).filter(|s| !s.is_empty()) {
                return vec![s.to_string()];
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let t = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            t.path(),
            "# test\n@machine-networks machine_networks machine_network\n@node-ips node_ip\n@max-machine-networks 2\n\
             api_version int\nmachine_network string\nmachine_networks []string\n\
             Crypto object\nCrypto.ingress_ca string\nkeys []object\nkeys[].file_name string\n",
        )
        .unwrap();
        Schema::load("test", t.path())
    }

    #[test]
    fn go_rules() {
        let s = schema();
        let d = s
            .decode(&serde_json::json!({
                "API_VERSION": 1,
                "machine_network": "10.0.0.0/24",
                "extra": "x",
                "crypto": {"Ingress_CA": "k", "other": 1},
                "keys": [{"FILE_NAME": "a"}],
                "machine_networks": null
            }))
            .unwrap();
        assert_eq!(d.int("api_version"), Some(1));
        assert_eq!(d.str("Crypto.ingress_ca"), Some("k"));
        assert_eq!(d.str("keys[].file_name"), Some("a"));
        let mut dropped = d.dropped.clone();
        dropped.sort();
        assert_eq!(dropped, ["Crypto.other", "extra"]);
        assert_eq!(d.first_non_empty(&s.machine_networks_from), ["10.0.0.0/24"]);
        assert!(s.decode(&serde_json::json!({"api_version": "1"})).is_err());
        assert!(
            s.decode(&serde_json::json!({"machine_networks": "a"}))
                .is_err()
        );
    }
}
