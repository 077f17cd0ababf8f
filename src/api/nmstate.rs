//! The nmstate `networkConfig`: validated offline and normalised.
//!
//! Upstream shells out to `nmstatectl gc` on the build host, which then needs
//! the nmstate package. The nmstate library's `gen_conf` renders the same
//! NetworkManager keyfiles in process, so a bad config is caught on the
//! workstation without extra packages.

use serde_json::Value;

/// Checks that `config` is a network state nmstate can render.
pub fn validate(config: &Value) -> Result<(), String> {
    // nmstate reads JSON text, so its own errors point at a column of the
    // re-encoded JSON, which the user never saw. Decoding the value first
    // names the field instead, as a path under networkConfig.
    if let Err(e) = serde_path_to_error::deserialize::<_, nmstate::NetworkState>(config) {
        let path = e.path().to_string();
        let message = without_position(&e.into_inner().to_string());
        return Err(if path.is_empty() || path == "." {
            format!("is not a valid nmstate network state: {message}")
        } else {
            format!("is not a valid nmstate network state: at {path}: {message}")
        });
    }
    let text = serde_json::to_string(config).map_err(|e| format!("cannot be encoded: {e}"))?;
    let state = nmstate::NetworkState::new_from_json(&text).map_err(|e| {
        format!(
            "is not a valid nmstate network state: {}",
            one_line(&e.to_string())
        )
    })?;
    // nmstate turns an unknown `type` into an "unknown interface" meant for
    // interfaces that already exist; offline nothing exists yet, so it is a typo.
    let interfaces = config
        .get("interfaces")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, iface) in interfaces.iter().enumerate() {
        if let Some(t) = iface.get("type") {
            let parsed: Result<nmstate::InterfaceType, _> = serde_json::from_value(t.clone());
            if matches!(parsed, Ok(nmstate::InterfaceType::Other(_)) | Err(_)) {
                return Err(format!(
                    "interfaces[{i}].type: unknown interface type {t}; use a type such as ethernet, bond or vlan"
                ));
            }
        }
    }
    state
        .gen_conf()
        .map_err(|e| format!("nmstate cannot render it: {}", one_line(&e.to_string())))?;
    Ok(())
}

/// serde_json's " at line L column C" suffix, meaningless for a value.
fn without_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) if s[i..].contains(" column ") => s[..i].to_string(),
        _ => s.to_string(),
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Renders `config` as upstream stores it: go-yaml v2's text (keys in its
/// order, two-space indent, list dashes not indented, and strings a YAML 1.1
/// reader would mistake quoted, as `mac-address: "52:54:00:12:34:56"`).
pub fn normalized_yaml(config: &Value) -> Result<String, String> {
    Ok(super::go_yaml::to_string(config))
}

/// True when the config is absent in effect (`null`, `{}`).
pub fn is_empty(config: &Value) -> bool {
    config.is_null() || config.as_object().is_some_and(|o| o.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        yaml_serde::from_str(s).unwrap()
    }

    #[test]
    fn static_ipv4_is_valid_and_sorted() {
        let v = yaml(
            "interfaces:\n- name: eth0\n  type: ethernet\n  state: up\n  ipv4:\n    enabled: true\n    dhcp: false\n    address:\n    - ip: 192.168.122.2\n      prefix-length: 23\n",
        );
        validate(&v).unwrap();
        assert_eq!(
            normalized_yaml(&v).unwrap(),
            "interfaces:\n- ipv4:\n    address:\n    - ip: 192.168.122.2\n      prefix-length: 23\n    dhcp: false\n    enabled: true\n  name: eth0\n  state: up\n  type: ethernet\n"
        );
    }

    #[test]
    fn mac_address_is_quoted_as_upstream_quotes_it() {
        let v = yaml("interfaces:\n- name: eth0\n  mac-address: 52:54:00:12:34:56\n");
        assert_eq!(
            normalized_yaml(&v).unwrap(),
            "interfaces:\n- mac-address: \"52:54:00:12:34:56\"\n  name: eth0\n"
        );
    }

    #[test]
    fn unknown_interface_type_is_refused() {
        let v = yaml("interfaces:\n- name: eth0\n  type: invalid\n");
        let e = validate(&v).unwrap_err();
        assert!(e.contains("invalid"), "{e}");
    }

    #[test]
    fn a_bad_value_is_named_by_its_path_not_a_json_column() {
        let v = yaml("interfaces:\n- name: eth0\n  type: ethernet\n  state: upp\n");
        let e = validate(&v).unwrap_err();
        // nmstate decodes an interface as a whole, so the path ends there.
        assert!(
            e.starts_with(
                "is not a valid nmstate network state: at interfaces[0]: unknown variant `upp`"
            ),
            "{e}"
        );
        assert!(!e.contains("column"), "{e}");
    }

    #[test]
    fn bad_address_is_refused() {
        let v = yaml(
            "interfaces:\n- name: eth0\n  type: ethernet\n  ipv4:\n    enabled: true\n    address:\n    - ip: 300.1.1.1\n      prefix-length: 24\n",
        );
        assert!(validate(&v).is_err());
    }
}
