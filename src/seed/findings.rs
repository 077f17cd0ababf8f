//! What is wrong with a seed, each with what to do about it.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

/// A seed's text made safe to print: control characters (ESC, CR, newline,
/// C1 controls) and invisible formatting characters (bidirectional
/// overrides, zero-width ones) are shown escaped (`\u{1b}`, `\n`), so a
/// field cannot clear the terminal, move the cursor or forge a line such as
/// `Usable: yes`.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The seed cannot be installed.
    Error,
    /// The seed installs, but something will likely go wrong or surprise.
    Warning,
    /// A requirement the installation configuration must meet.
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// What is wrong, naming the file, label or member at fault.
    pub problem: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}\n    fix: {}",
            self.severity,
            escape_text(&self.problem),
            escape_text(&self.fix)
        )
    }
}

/// Collects findings in the order they are found.
#[derive(Debug, Default, Clone)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    pub fn error(&mut self, problem: impl Into<String>, fix: impl Into<String>) {
        self.push(Severity::Error, problem.into(), fix.into());
    }

    pub fn warning(&mut self, problem: impl Into<String>, fix: impl Into<String>) {
        self.push(Severity::Warning, problem.into(), fix.into());
    }

    pub fn info(&mut self, problem: impl Into<String>, fix: impl Into<String>) {
        self.push(Severity::Info, problem.into(), fix.into());
    }

    fn push(&mut self, severity: Severity, problem: String, fix: String) {
        self.0.push(Finding {
            severity,
            problem,
            fix,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|f| f.severity == Severity::Error)
    }

    pub fn errors(&self) -> Vec<Finding> {
        self.0
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .cloned()
            .collect()
    }
}

/// The error when a seed cannot be used: every blocking problem found.
#[derive(Debug, thiserror::Error)]
pub struct SeedUnusable {
    pub seed: String,
    pub findings: Vec<Finding>,
}

impl fmt::Display for SeedUnusable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.findings.len();
        write!(
            f,
            "the seed {} cannot be used ({n} problem{}):",
            escape_text(&self.seed),
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.findings {
            write!(
                f,
                "\n  - {}\n    fix: {}",
                escape_text(&p.problem),
                escape_text(&p.fix)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(escape_text("plain: ok"), "plain: ok");
        assert_eq!(
            escape_text("x\nUsable:              yes\x1b[2J\u{202e}"),
            "x\\nUsable:              yes\\u{1b}[2J\\u{202e}"
        );
        assert_eq!(escape_text("a\rb\u{9b}c"), "a\\rb\\u{9b}c");
    }

    #[test]
    fn unusable_lists_problem_and_fix() {
        let mut f = Findings::default();
        f.warning("w", "x");
        f.error("manifest.json is missing", "make the seed again");
        assert!(f.has_errors());
        let e = SeedUnusable {
            seed: "oci:/s".into(),
            findings: f.errors(),
        };
        assert_eq!(
            e.to_string(),
            "the seed oci:/s cannot be used (1 problem):\n  - manifest.json is missing\n    fix: make the seed again"
        );
    }
}
