//! Problems, collected so that one run reports all of them, each with its
//! fix: the one report type of input validation (`create config-image`,
//! `create image`), seed checks (`seed inspect`, `Seed::open`) and preflight
//! checks.
//!
//! A problem has a severity, a subject (the input file and the field inside
//! it, as a YAML path such as `networking.machineNetwork[0].cidr`, or a
//! device; none when the message itself names what it is about), a message
//! saying what is wrong, and the fix. Validation messages carry their fix in
//! the sentence and follow the upstream installer's Kubernetes-style wording
//! (`Invalid value: …`), so users searching for an upstream message find
//! ours too.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::excerpt::{excerpt, sanitize_message};

/// How bad a problem is. Ordered from the worst, so sorting puts errors first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The job cannot go on (the seed cannot be installed, the input is
    /// refused, the disk is not touched).
    Error,
    /// The job goes on, but something will likely go wrong or surprise.
    Warning,
    /// A requirement the user must meet elsewhere (shown as `note`).
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "note",
        })
    }
}

/// What a problem is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Subject {
    /// An input file, as the user names it (e.g. `install-config.yaml`), and
    /// the field inside it; `field` is empty when the whole file is at fault.
    Input { file: String, field: String },
    /// A block device or partition, e.g. `/dev/sda`.
    Device { device: PathBuf },
}

impl Subject {
    pub fn input(file: impl Into<String>, field: impl Into<String>) -> Self {
        Self::Input {
            file: file.into(),
            field: field.into(),
        }
    }

    pub fn device(device: impl Into<PathBuf>) -> Self {
        Self::Device {
            device: device.into(),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Input { file, field } if field.is_empty() => f.write_str(file),
            Self::Input { file, field } => write!(f, "{file}: {}", sanitize_message(field)),
            Self::Device { device } => write!(f, "{}", device.display()),
        }
    }
}

/// One thing wrong. As JSON (`seed inspect --json`):
/// `{"severity", "subject"?, "problem", "fix"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// What is wrong.
    #[serde(rename = "problem")]
    pub message: String,
    /// What to do about it, when the message does not already say it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Problem {
    pub fn new(severity: Severity, message: impl Into<String>) -> Self {
        Self {
            severity,
            subject: None,
            message: message.into(),
            fix: None,
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message)
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message)
    }

    /// An error in the input `file` at `field` (empty: the whole file).
    pub fn in_input(file: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::error(message).about(Subject::input(file, field))
    }

    pub fn about(mut self, subject: Subject) -> Self {
        self.subject = Some(subject);
        self
    }

    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    /// The input file at fault, or "" when the problem is not about one.
    pub fn file(&self) -> &str {
        match &self.subject {
            Some(Subject::Input { file, .. }) => file,
            _ => "",
        }
    }

    /// The field at fault, or "" when the problem is not about one.
    pub fn field(&self) -> &str {
        match &self.subject {
            Some(Subject::Input { field, .. }) => field,
            _ => "",
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `[subject: ]message[\n    fix: fix]`; the severity is the caller's to
/// show (a list of refusals is all errors).
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.subject {
            write!(f, "{s}: ")?;
        }
        // Whatever produced the message, no secret or control character
        // from the input reaches the terminal (see api::excerpt).
        f.write_str(&sanitize_message(&self.message))?;
        if let Some(fix) = &self.fix {
            write!(f, "\n    fix: {}", super::excerpt::escape_text(fix))?;
        }
        Ok(())
    }
}

/// A collector of problems in the order they are found. Made with
/// [`Problems::new`], its field helpers (`add`, `required`, …) name that
/// input file; `error`/`warning`/`info` record problems whose message names
/// what is at fault, with the fix.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    file: Option<String>,
    items: Vec<Problem>,
}

impl Problems {
    /// A collector for the input `file`.
    pub fn new(file: &str) -> Self {
        Self {
            file: Some(file.to_string()),
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, problem: Problem) {
        self.items.push(problem);
    }

    /// Records an error with `field` of this collector's file.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        let mut p = Problem::error(message);
        p.subject = self.file.as_ref().map(|f| Subject::input(f.clone(), field));
        self.items.push(p);
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

    /// Records an error whose message names what is at fault.
    pub fn error(&mut self, message: impl Into<String>, fix: impl Into<String>) {
        self.push(Problem::error(message).with_fix(fix));
    }

    pub fn warning(&mut self, message: impl Into<String>, fix: impl Into<String>) {
        self.push(Problem::warning(message).with_fix(fix));
    }

    pub fn info(&mut self, message: impl Into<String>, fix: impl Into<String>) {
        self.push(Problem::new(Severity::Info, message).with_fix(fix));
    }

    pub fn extend(&mut self, other: impl IntoIterator<Item = Problem>) {
        self.items.extend(other);
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Problem::is_error)
    }

    /// The errors, in order.
    pub fn errors(&self) -> Vec<Problem> {
        self.items
            .iter()
            .filter(|p| p.is_error())
            .cloned()
            .collect()
    }

    /// Errors first, then warnings, then notes; stable within each.
    pub fn sort_by_severity(&mut self) {
        self.items.sort_by_key(|p| p.severity);
    }

    pub fn as_slice(&self) -> &[Problem] {
        &self.items
    }

    pub fn into_vec(self) -> Vec<Problem> {
        self.items
    }
}

/// The error returned when any input is invalid: every error found, in
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

/// Turns collected problems into a result: an error listing every error if
/// there is one; warnings and notes are logged and do not stop the job.
pub fn finish(problems: Vec<Problem>) -> Result<(), InvalidInput> {
    let (errors, others): (Vec<Problem>, Vec<Problem>) =
        problems.into_iter().partition(Problem::is_error);
    for p in &others {
        tracing::warn!("{}: {p}", p.severity);
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(InvalidInput(errors))
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

    #[test]
    fn json_has_severity_problem_and_fix_and_the_subject_when_there_is_one() {
        let mut p = Problems::default();
        p.warning("manifest.json is odd", "make the seed again");
        p.push(
            Problem::error("is mounted")
                .about(Subject::device("/dev/sda"))
                .with_fix("unmount it"),
        );
        let v = serde_json::to_value(p.as_slice()).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"severity": "warning", "problem": "manifest.json is odd", "fix": "make the seed again"},
                {"severity": "error", "subject": {"device": "/dev/sda"}, "problem": "is mounted", "fix": "unmount it"},
            ])
        );
        assert_eq!(
            p.as_slice()[1].to_string(),
            "/dev/sda: is mounted\n    fix: unmount it"
        );
    }

    #[test]
    fn finish_refuses_errors_only_and_sorting_puts_them_first() {
        let mut p = Problems::default();
        p.info("n", "x");
        p.warning("w", "x");
        assert!(finish(p.clone().into_vec()).is_ok());
        p.error("e", "x");
        assert!(p.has_errors());
        let err = finish(p.clone().into_vec()).unwrap_err();
        assert_eq!(err.0.len(), 1);
        p.sort_by_severity();
        let order: Vec<Severity> = p.as_slice().iter().map(|p| p.severity).collect();
        assert_eq!(order, [Severity::Error, Severity::Warning, Severity::Info]);
    }
}
