//! What a run did: per step and as a whole (the report is made from it).

use anyhow::Result;
use serde::Serialize;

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Ran,
    /// Already done (its check, its marker, or the journal said so).
    Skipped,
    Failed,
    /// `--dry-run`: it would run.
    WouldRun,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ran => "ran",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
            Outcome::WouldRun => "would run",
        }
    }
}

/// One step of this run, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub id: String,
    pub description: String,
    pub outcome: Outcome,
    pub started: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
}

/// The result of a run: every step it reached, and the error if one failed.
#[derive(Debug)]
pub struct RunSummary {
    pub plan: String,
    pub started: String,
    pub duration_ms: u64,
    pub steps: Vec<StepRecord>,
    /// `succeeded`, `failed` or `stopped`.
    pub outcome: &'static str,
    pub failed_step: Option<String>,
    pub error: Option<anyhow::Error>,
}

impl RunSummary {
    /// The error chain, outermost first.
    pub fn error_chain(&self) -> Vec<String> {
        self.error
            .as_ref()
            .map(|e| e.chain().map(|c| c.to_string()).collect())
            .unwrap_or_default()
    }

    /// `Err` if the run failed.
    pub fn into_result(self) -> Result<()> {
        self.error.map_or(Ok(()), Err)
    }

    /// The `--dry-run` listing: each step, and what it would do.
    pub fn dry_run_text(&self) -> String {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let detail = s.reason.as_deref().unwrap_or("");
                format!(
                    "{:2}. {} ({}): {}\n    {}\n",
                    i + 1,
                    s.id,
                    s.outcome.as_str(),
                    s.description,
                    detail
                )
            })
            .collect()
    }
}
