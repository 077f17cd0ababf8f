//! The ibi report as a document: `/var/lib/sprout/ibi-report.json` on the
//! target and, with `--json`, the same document on stdout
//! (docs/schema/ibi-report.v1.json, docs/json-output.md). A run refused
//! before its first step has no run report: its document is the envelope
//! with `outcome: refused` and the problems.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::api::diag::Problem;
use crate::create::report::{problems_of, to_json};
use crate::engine::RunReport;
use crate::host::root::Root;

pub const SCHEMA: &str = "sprout/ibi-report/v1";

/// The envelope around the engine's run report: the `schema`, `ok` and
/// `problems` fields of the other `--json` documents, the report's own
/// fields beside them (so the file stays what it was, plus three fields).
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    pub schema: &'static str,
    /// True when the run succeeded or stopped as asked (`--until`): the
    /// exit status is 0 exactly then.
    pub ok: bool,
    /// `refused` when no step ran; a run's outcome is its report's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<&'static str>,
    #[serde(flatten)]
    pub run: Option<&'a RunReport>,
    /// Every problem that stopped the run (empty when `ok`).
    pub problems: Vec<Problem>,
}

impl<'a> Document<'a> {
    /// A run that reached the step engine; `error` is its failure.
    pub fn of_run(run: &'a RunReport, error: Option<&anyhow::Error>) -> Self {
        Self {
            schema: SCHEMA,
            ok: error.is_none(),
            outcome: None,
            run: Some(run),
            problems: error.map(problems_of).unwrap_or_default(),
        }
    }

    /// A run stopped before its first step (the preflight, a journal of
    /// another install, …): nothing was changed.
    pub fn refused(error: &anyhow::Error) -> Document<'static> {
        Document {
            schema: SCHEMA,
            ok: false,
            outcome: Some("refused"),
            run: None,
            problems: problems_of(error),
        }
    }

    /// Writes the document atomically to `rel` below `root` (0600: the
    /// configuration holds site details even with secrets removed).
    pub fn write(&self, root: &Root, rel: &Path) -> Result<()> {
        let text = to_json(self)?;
        root.write_atomic(rel, text.as_bytes(), 0o600)
            .with_context(|| format!("writing the run report {}", root.path().join(rel).display()))
    }

    /// Prints the document on stdout (`--json`).
    pub fn print(&self) -> Result<()> {
        crate::host::stdout::write(&to_json(self)?)
    }
}
