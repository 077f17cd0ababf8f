//! Strict decoding of the YAML input files.
//!
//! Unknown keys are errors (the types use `deny_unknown_fields`), and a
//! decoding error is reported with the path of the field it happened at, so
//! the user learns both the file and the key to fix.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::diag::Problem;
use super::yaml_depth::{MAX_YAML_DEPTH, check_depth, too_deep};
use crate::host::input::{InputKind, read_input_text};

/// Reads `dir/name` and decodes it strictly. A missing file, unreadable file
/// or decoding error becomes one [`Problem`] naming the file. The file is
/// read through [`crate::host::input`]: a regular file within its limit.
pub fn read_strict<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<T, Problem> {
    let kind = if name == super::install_config::FILE {
        InputKind::InstallConfig
    } else {
        InputKind::SiteConfig
    };
    let path = dir.join(name);
    let text = read_input_text(&path, kind).map_err(|e| {
        Problem::in_input(
            name,
            "",
            if e.is_not_found() {
                format!("missing: {name} is required in {}", dir.display())
            } else {
                e.to_string()
            },
        )
    })?;
    decode_strict(name, &text)
}

/// Decodes `text` (the content of the file `name`) strictly.
pub fn decode_strict<T: DeserializeOwned>(name: &str, text: &str) -> Result<T, Problem> {
    if text.trim().is_empty() {
        return Err(Problem::in_input(name, "", "the file is empty"));
    }
    if let Err(line) = check_depth(text.as_bytes(), MAX_YAML_DEPTH) {
        return Err(Problem::in_input(name, "", too_deep(line)));
    }
    let de = yaml_serde::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        // serde_path_to_error renders the root as ".".
        let mut field = Some(e.path().to_string())
            .filter(|f| f != ".")
            .unwrap_or_default();
        let mut message = e.into_inner().to_string();
        // The YAML error repeats the path in front of its message.
        if let Some((prefix, rest)) = message.split_once(": ")
            && !prefix.contains(char::is_whitespace)
            && (field.starts_with(prefix) || prefix.contains(['.', '[']))
        {
            message = rest.to_string();
        }
        // A "key" that is no field name is likely another file's content.
        if let Some(m) = super::excerpt::implausible_unknown_key(&message) {
            message = m;
            // The path would name it too.
            field.clear();
        }
        // For an unknown key the path ends at its parent: name the key.
        if let Some(key) = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
            && !field.ends_with(key)
        {
            field = if field.is_empty() {
                key.to_string()
            } else {
                format!("{field}.{key}")
            };
        }
        let message = match super::excerpt::root_type_message(&message, name) {
            Some(m) if field.is_empty() => m,
            _ => describe_decode_error(&message),
        };
        Problem::in_input(name, field, message)
    })
}

/// Adds the fix to serde's terse messages where there is an obvious one.
fn describe_decode_error(message: &str) -> String {
    if message.starts_with("unknown field") {
        format!("{message}; remove it or correct its spelling (keys are case-sensitive)")
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Outer {
        #[allow(dead_code)]
        inner: Option<Vec<Inner>>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        cidr: String,
    }

    #[test]
    fn unknown_nested_key_names_its_path() {
        let e = decode_strict::<Outer>("x.yaml", "inner:\n- cidr: a\n- cidrr: b\n").unwrap_err();
        assert_eq!(e.file(), "x.yaml", "{e:?}");
        assert_eq!(e.field(), "inner[1].cidrr");
        assert!(e.message.starts_with("unknown field `cidrr`"), "{e:?}");
        assert!(e.message.contains("correct its spelling"));
    }

    #[test]
    fn wrong_type_names_its_path() {
        let e = decode_strict::<Outer>("x.yaml", "inner:\n- cidr: [1]\n").unwrap_err();
        assert_eq!(e.field(), "inner[0].cidr");
    }

    #[test]
    fn empty_file_is_a_problem() {
        let e = decode_strict::<Outer>("x.yaml", "\n").unwrap_err();
        assert_eq!(e.message, "the file is empty");
    }

    #[test]
    fn deep_nesting_is_refused_before_decoding() {
        let e = decode_strict::<Outer>("x.yaml", &format!("inner: {}", "[".repeat(100_000)))
            .unwrap_err();
        assert!(
            e.message.contains("more than 100 levels deep (at line 1)"),
            "{e:?}"
        );
    }

    #[test]
    fn missing_file_is_a_problem() {
        let d = tempfile::tempdir().unwrap();
        let e = read_strict::<Outer>(d.path(), "nope.yaml").unwrap_err();
        assert!(e.message.starts_with("missing: nope.yaml is required"));
    }
}
