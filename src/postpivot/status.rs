//! The status file `/var/lib/sprout/post-pivot-status.json` (current step,
//! per-step timings, the end state and its error), kept up to date from
//! the run's progress events, and the console message of a terminal failure.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::api::diag::Problem;
use crate::engine::clock;
use crate::engine::progress::{Event, Sink, Stamped};
use crate::host::root::Root;

/// The status file, below the run's root.
pub const STATUS_FILE: &str = "var/lib/sprout/post-pivot-status.json";
/// The journal of the step engine, below the run's root.
pub const JOURNAL_FILE: &str = "var/lib/sprout/post-pivot-journal.json";
/// Shown on the console's login prompt after a terminal failure (agetty
/// reads `/etc/issue.d/*.issue`).
pub const ISSUE_FILE: &str = "etc/issue.d/50-sprout-post-pivot.issue";
/// The `schema` of the status document (docs/schema/post-pivot-status.v1.json).
pub const SCHEMA: &str = "sprout/post-pivot-status/v1";

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Running,
    Succeeded,
    /// Stopped as asked (`--until`).
    Stopped,
    /// Failed; the unit's next start retries.
    Failed,
    /// Failed for good: nothing retries; the reason is on the console.
    Terminal,
    /// SIGTERM: the next start resumes.
    Interrupted,
    /// Stopped before it began (an earlier terminal failure, a bad
    /// setting): only in `--json` documents; the file is left as it was.
    Refused,
}

impl State {
    /// Whether a start that ended so exits 0.
    pub fn is_ok(self) -> bool {
        matches!(self, State::Succeeded | State::Stopped)
    }
}

fn schema_id() -> String {
    SCHEMA.to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepStatus {
    pub id: String,
    pub outcome: String,
    pub duration_ms: u64,
}

/// The document in [`STATUS_FILE`], and the `--json` one at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Names the document and its version; files of earlier sprout
    /// versions lack it.
    #[serde(default = "schema_id")]
    pub schema: String,
    /// The state is `succeeded` or `stopped` (set on every write).
    #[serde(default)]
    pub ok: bool,
    pub state: State,
    /// The unit's start this is (1 for the first); reset by a success.
    pub attempt: u32,
    #[serde(default)]
    pub current_step: Option<String>,
    #[serde(default)]
    pub steps: Vec<StepStatus>,
    #[serde(default)]
    pub error: Vec<String>,
    /// What stopped the start, in the shape of the other `--json`
    /// documents (`api::diag::Problem`); set at its end. Not read back:
    /// `error` is what a later start needs.
    #[serde(default, skip_deserializing)]
    pub problems: Vec<Problem>,
    pub updated: String,
}

impl Status {
    pub fn new(attempt: u32) -> Self {
        Self {
            schema: schema_id(),
            ok: false,
            state: State::Running,
            attempt,
            current_step: None,
            steps: Vec::new(),
            error: Vec::new(),
            problems: Vec::new(),
            updated: clock::rfc3339(clock::now_ms()),
        }
    }

    /// The status an earlier start left, if any (an unreadable one counts
    /// as none: it is rewritten).
    pub fn load(root: &Path) -> Option<Status> {
        let text = std::fs::read_to_string(root.join(STATUS_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write(&mut self, root: &Root) -> Result<()> {
        self.updated = clock::rfc3339(clock::now_ms());
        self.ok = self.state.is_ok();
        let mut bytes = serde_json::to_vec_pretty(self).context("encoding the status")?;
        bytes.push(b'\n');
        root.create_dir_all("var/lib/sprout", 0o755)?;
        root.write_atomic(STATUS_FILE, &bytes, 0o644)
            .context("writing the post-pivot status file")
    }
}

/// A progress sink that keeps [`STATUS_FILE`] current.
pub struct StatusSink {
    root: Root,
    status: Status,
}

impl StatusSink {
    pub fn new(root: Root, status: Status) -> Self {
        Self { root, status }
    }
}

impl Sink for StatusSink {
    fn name(&self) -> String {
        STATUS_FILE.to_string()
    }

    fn emit(&mut self, event: &Stamped<'_>) -> std::io::Result<()> {
        match event.event {
            Event::StepStart { step, .. } => self.status.current_step = Some(step.clone()),
            Event::StepEnd {
                step,
                outcome,
                duration_ms,
                error,
                ..
            } => {
                self.status.steps.push(StepStatus {
                    id: step.clone(),
                    outcome: outcome.as_str().to_string(),
                    duration_ms: *duration_ms,
                });
                self.status.error.clone_from(error);
            }
            _ => return Ok(()),
        }
        self.status
            .write(&self.root)
            .map_err(|e| std::io::Error::other(format!("{e:#}")))
    }
}

/// The console message of a terminal failure.
pub fn issue_text(step: Option<&str>, error: &[String]) -> String {
    format!(
        "\n*** sprout post-pivot FAILED{} and will not retry by itself ***\n{}\n\
         Details: /var/lib/sprout/post-pivot-status.json and \
         journalctl -u installation-configuration.service\n\
         After fixing the cause: rm /var/lib/sprout/post-pivot-status.json /etc/issue.d/50-sprout-post-pivot.issue; \
         systemctl reset-failed installation-configuration.service; \
         systemctl restart installation-configuration.service\n\n",
        step.map(|s| format!(" at step {s}")).unwrap_or_default(),
        error.join(": ").replace('\\', "\\\\")
    )
}
