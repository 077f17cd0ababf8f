//! Progress: one stream of events fanned out to sinks — JSON lines
//! (`--progress-json`, schema in docs/progress-json.md), sd_notify
//! `STATUS=`, tracing (journald fields `SPROUT_STEP`, `SPROUT_EVENT`) and a
//! terminal bar.
//!
//! Byte and item events are rate-limited before the fan-out (the first,
//! the last — done = total — and then one per interval). A sink that fails
//! is dropped with one warning: progress never fails the job.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use super::clock;
use super::runner::Outcome;
pub use super::sinks::{BarSink, JsonLinesSink, NotifySink, ProgressTarget, TracingSink};
use super::step::StepId;

/// The version of the JSON-lines schema (docs/progress-json.md).
pub const PROGRESS_VERSION: u32 = 1;

/// Default gap between two byte or item events of one step.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(500);

/// One progress event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event {
    PlanStart {
        plan: String,
        steps: Vec<String>,
        dry_run: bool,
    },
    StepStart {
        step: String,
        /// 1-based position in the plan.
        index: usize,
        total: usize,
        description: String,
    },
    Bytes {
        step: String,
        done: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    Items {
        step: String,
        done: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    Message {
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        text: String,
    },
    StepEnd {
        step: String,
        outcome: Outcome,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        error: Vec<String>,
    },
    PlanEnd {
        plan: String,
        /// `succeeded`, `failed` or `stopped` (`--until`, dry run).
        outcome: String,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        failed_step: Option<String>,
    },
}

/// An event as written: the schema version and a timestamp around it.
#[derive(Debug, Clone, Serialize)]
pub struct Stamped<'a> {
    pub version: u32,
    pub timestamp: String,
    #[serde(flatten)]
    pub event: &'a Event,
}

/// Somewhere events go.
pub trait Sink: Send {
    /// For the one warning when it breaks.
    fn name(&self) -> String;
    fn emit(&mut self, event: &Stamped<'_>) -> std::io::Result<()>;
}

struct Inner {
    sinks: Vec<Box<dyn Sink>>,
    interval: Duration,
    last: HashMap<(String, &'static str), Instant>,
}

/// The handle steps and the runner emit through; cheap to clone.
#[derive(Clone)]
pub struct Progress(Arc<Mutex<Inner>>);

impl Default for Progress {
    fn default() -> Self {
        Progress(Arc::new(Mutex::new(Inner {
            sinks: Vec::new(),
            interval: DEFAULT_INTERVAL,
            last: HashMap::new(),
        })))
    }
}

impl Progress {
    /// No sinks (tests, library callers that do not care).
    pub fn new() -> Self {
        Self::default()
    }

    /// Tracing and sd_notify, a bar on a terminal, and JSON lines to
    /// `json` if given: what a job run from the command line wants.
    pub fn standard(json: Option<&ProgressTarget>) -> Result<Self> {
        let p = Self::new().with_sink(TracingSink).with_sink(NotifySink);
        let p = match json {
            Some(t) => p.with_sink(t.open()?),
            None => p,
        };
        Ok(match BarSink::on_terminal() {
            Some(bar) => p.with_sink(bar),
            None => p,
        })
    }

    pub fn with_sink(self, sink: impl Sink + 'static) -> Self {
        self.lock().sinks.push(Box::new(sink));
        self
    }

    /// The minimum gap between two byte (or item) events of a step.
    pub fn with_interval(self, interval: Duration) -> Self {
        self.lock().interval = interval;
        self
    }

    /// Emits `event` to every sink still working.
    pub fn emit(&self, event: Event) {
        let mut inner = self.lock();
        if !inner.admit(&event) {
            return;
        }
        let stamped = Stamped {
            version: PROGRESS_VERSION,
            timestamp: clock::rfc3339(clock::now_ms()),
            event: &event,
        };
        inner.sinks.retain_mut(|s| match s.emit(&stamped) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    "progress to {} stopped: {e}; the job goes on without it",
                    s.name()
                );
                false
            }
        });
    }

    /// The events of step `step`.
    pub fn for_step(&self, step: StepId) -> StepProgress {
        StepProgress {
            progress: self.clone(),
            step,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic in a sink must not silence progress for the rest.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    /// The rate limit: byte and item events pass when they are the first
    /// of their step, the last (done = total) or an interval after the
    /// previous one that passed.
    fn admit(&mut self, event: &Event) -> bool {
        let (step, kind, done, total) = match event {
            Event::Bytes { step, done, total } => (step, "bytes", *done, *total),
            Event::Items { step, done, total } => (step, "items", *done, *total),
            _ => return true,
        };
        let now = Instant::now();
        let key = (step.clone(), kind);
        let pass = total == Some(done)
            || self
                .last
                .get(&key)
                .is_none_or(|t| now.duration_since(*t) >= self.interval);
        if pass {
            self.last.insert(key, now);
        }
        pass
    }
}

/// Progress of one step.
#[derive(Clone)]
pub struct StepProgress {
    progress: Progress,
    step: StepId,
}

impl StepProgress {
    pub fn bytes(&self, done: u64, total: Option<u64>) {
        self.progress.emit(Event::Bytes {
            step: self.step.to_string(),
            done,
            total,
        });
    }

    pub fn items(&self, done: u64, total: Option<u64>) {
        self.progress.emit(Event::Items {
            step: self.step.to_string(),
            done,
            total,
        });
    }

    pub fn message(&self, text: impl Into<String>) {
        self.progress.emit(Event::Message {
            step: Some(self.step.to_string()),
            text: text.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(done: u64, total: Option<u64>) -> Event {
        Event::Bytes {
            step: "s".into(),
            done,
            total,
        }
    }

    #[test]
    fn rate_limit_lets_first_last_and_other_events_through() {
        let p = Progress::new().with_interval(Duration::from_secs(3600));
        let mut inner = p.lock();
        assert!(inner.admit(&bytes(0, Some(10))));
        assert!(!inner.admit(&bytes(5, Some(10))));
        assert!(!inner.admit(&bytes(6, None)));
        assert!(inner.admit(&bytes(10, Some(10))));
        // Items are limited apart from bytes, messages never.
        assert!(inner.admit(&Event::Items {
            step: "s".into(),
            done: 1,
            total: None
        }));
        let msg = Event::Message {
            step: None,
            text: "x".into(),
        };
        assert!(inner.admit(&msg) && inner.admit(&msg));
    }
}
