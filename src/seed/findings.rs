//! What is wrong with a seed, each with what to do about it.

use std::fmt;

use serde::Serialize;

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
            self.severity, self.problem, self.fix
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
            self.seed,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.findings {
            write!(f, "\n  - {}\n    fix: {}", p.problem, p.fix)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
