//! Validation problems, collected so that one run reports all of them.
//!
//! Every problem names the input file, the field inside it (as a YAML path
//! such as `networking.machineNetwork[0].cidr`) and a sentence saying what is
//! wrong and how to fix it. The wording of the first part follows the
//! upstream installer's Kubernetes-style messages, so users searching for an
//! upstream message find ours too.

use std::fmt;

use super::excerpt::{excerpt, sanitize_message};

/// One thing wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The input file, as the user names it (e.g. `install-config.yaml`).
    pub file: String,
    /// The field path inside the file; empty when the whole file is at fault.
    pub field: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Whatever produced the message, no secret or control character
        // from the input reaches the terminal (see api::excerpt).
        let message = sanitize_message(&self.message);
        if self.field.is_empty() {
            write!(f, "{}: {message}", self.file)
        } else {
            write!(
                f,
                "{}: {}: {message}",
                self.file,
                sanitize_message(&self.field)
            )
        }
    }
}

/// A collector of problems for one input file.
#[derive(Debug)]
pub struct Problems {
    file: String,
    items: Vec<Problem>,
}

impl Problems {
    pub fn new(file: &str) -> Self {
        Self {
            file: file.to_string(),
            items: Vec::new(),
        }
    }

    /// Records a problem with `field`.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.items.push(Problem {
            file: self.file.clone(),
            field: field.into(),
            message: message.into(),
        });
    }

    /// `<field>: Required value: <detail>`.
    pub fn required(&mut self, field: &str, detail: &str) {
        self.add(field, format!("Required value: {detail}"));
    }

    /// `<field>: Invalid value: "<value>": <detail>`, the value as an
    /// [`excerpt`]: short, escaped, never a key.
    pub fn invalid(&mut self, field: &str, value: &str, detail: &str) {
        self.add(
            field,
            format!("Invalid value: {}: {detail}", excerpt(value)),
        );
    }

    /// `<field>: Unsupported value: "<value>": supported values: "a", "b"`.
    pub fn unsupported(&mut self, field: &str, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        self.add(
            field,
            format!(
                "Unsupported value: {}: supported values: {}",
                excerpt(value),
                list.join(", ")
            ),
        );
    }

    pub fn extend(&mut self, other: Vec<Problem>) {
        self.items.extend(other);
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.items
    }
}

/// The error returned when any input is invalid: every problem found, in
/// input order. Nothing has been written when this is returned.
#[derive(Debug, thiserror::Error)]
pub struct InvalidInput(pub Vec<Problem>);

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "{n} problem{} found in the input; nothing was written:",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// Turns collected problems into a result.
pub fn finish(problems: Vec<Problem>) -> Result<(), InvalidInput> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InvalidInput(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_field_and_message() {
        let mut p = Problems::new("install-config.yaml");
        p.invalid("baseDomain", "Bad_", "must be a DNS subdomain");
        p.add("", "the file is empty");
        let err = InvalidInput(p.into_vec()).to_string();
        assert!(err.starts_with("2 problems found in the input; nothing was written:"));
        assert!(err.contains(
            "  - install-config.yaml: baseDomain: Invalid value: \"Bad_\": must be a DNS subdomain\n"
        ));
        assert!(err.contains("  - install-config.yaml: the file is empty\n"));
    }

    #[test]
    fn unsupported_lists_values() {
        let mut p = Problems::new("f");
        p.unsupported("platform", "aws", &["none"]);
        assert_eq!(
            p.into_vec()[0].message,
            "Unsupported value: \"aws\": supported values: \"none\""
        );
    }
}
