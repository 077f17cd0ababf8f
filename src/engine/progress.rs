//! Progress: one stream of events fanned out to sinks — JSON lines
//! (`--progress-json`, schema in docs/progress-json.md), sd_notify
//! `STATUS=`, tracing (journald fields `SPROUT_STEP`, `SPROUT_EVENT`) and a
//! terminal bar.
//!
//! Byte and item events are rate-limited before the fan-out (the first,
//! the last — done = total — and then one per interval). A sink that fails
//! is dropped with one warning: progress never fails the job.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::clock;
use super::runner::Outcome;
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

/// The value of `--progress-json`: a file, or `fd:N` (a descriptor the
/// caller opened for us, e.g. a pipe to a supervising process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressTarget {
    File(PathBuf),
    Fd(i32),
}

impl FromStr for ProgressTarget {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() {
            bail!("--progress-json needs a file name or fd:N");
        }
        match s.strip_prefix("fd:") {
            Some(n) => match n.parse::<i32>() {
                Ok(fd) if fd >= 1 => Ok(ProgressTarget::Fd(fd)),
                _ => {
                    bail!("--progress-json {s}: after `fd:` comes a descriptor number (1 or more)")
                }
            },
            None => Ok(ProgressTarget::File(PathBuf::from(s))),
        }
    }
}

impl ProgressTarget {
    /// Opens the target as a JSON-lines sink.
    pub fn open(&self) -> Result<JsonLinesSink> {
        let (name, out): (String, Box<dyn Write + Send>) = match self {
            ProgressTarget::File(p) => {
                let f = std::fs::File::create(p)
                    .with_context(|| format!("creating the progress file {}", p.display()))?;
                (p.display().to_string(), Box::new(f))
            }
            ProgressTarget::Fd(1) => ("stdout".into(), Box::new(std::io::stdout())),
            ProgressTarget::Fd(2) => ("stderr".into(), Box::new(std::io::stderr())),
            ProgressTarget::Fd(n) => (
                format!("fd:{n}"),
                Box::new(std::fs::File::from(take_fd(*n)?)),
            ),
        };
        Ok(JsonLinesSink::new(name, out))
    }
}

/// Takes ownership of descriptor `n`, after checking it is open.
fn take_fd(n: i32) -> Result<std::os::fd::OwnedFd> {
    use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
    // SAFETY: only borrowed for the F_GETFD probe below, during which
    // nothing closes it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(n) };
    rustix::io::fcntl_getfd(borrowed)
        .with_context(|| format!("--progress-json fd:{n}: descriptor {n} is not open"))?;
    // SAFETY: the descriptor is open and was handed to sprout for this
    // purpose only (`--progress-json fd:N`); nothing else in the process
    // owns it, so closing it when the sink is dropped is right.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// JSON lines, one event a line, flushed at once.
pub struct JsonLinesSink {
    name: String,
    out: Box<dyn Write + Send>,
}

impl JsonLinesSink {
    pub fn new(name: impl Into<String>, out: Box<dyn Write + Send>) -> Self {
        JsonLinesSink {
            name: name.into(),
            out,
        }
    }
}

impl Sink for JsonLinesSink {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn emit(&mut self, event: &Stamped<'_>) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()
    }
}

/// `STATUS=` for `systemctl status` (a no-op outside a notify unit).
pub struct NotifySink;

impl Sink for NotifySink {
    fn name(&self) -> String {
        "sd_notify".into()
    }

    fn emit(&mut self, event: &Stamped<'_>) -> std::io::Result<()> {
        let status = match event.event {
            Event::StepStart {
                index,
                total,
                description,
                ..
            } => format!("step {index}/{total}: {description}"),
            Event::Bytes { step, done, total } => {
                format!("{step}: {}", amount(*done, *total, true))
            }
            Event::Items { step, done, total } => {
                format!("{step}: {}", amount(*done, *total, false))
            }
            Event::PlanEnd {
                plan,
                outcome,
                failed_step,
                ..
            } => match failed_step {
                Some(s) => format!("{plan} failed at step {s}"),
                None => format!("{plan} {outcome}"),
            },
            _ => return Ok(()),
        };
        crate::host::systemd::status(&status);
        Ok(())
    }
}

/// Log lines with journald fields.
pub struct TracingSink;

impl Sink for TracingSink {
    fn name(&self) -> String {
        "tracing".into()
    }

    fn emit(&mut self, event: &Stamped<'_>) -> std::io::Result<()> {
        match event.event {
            Event::PlanStart { plan, steps, .. } => {
                tracing::info!(SPROUT_PLAN = %plan, "{plan}: {} steps", steps.len())
            }
            Event::StepStart {
                step,
                index,
                total,
                description,
            } => tracing::info!(SPROUT_STEP = %step, SPROUT_EVENT = "step-start",
                "step {index}/{total} {step}: {description}"),
            Event::Bytes { step, done, total } => tracing::debug!(SPROUT_STEP = %step,
                SPROUT_EVENT = "bytes", "{step}: {}", amount(*done, *total, true)),
            Event::Items { step, done, total } => tracing::debug!(SPROUT_STEP = %step,
                SPROUT_EVENT = "items", "{step}: {}", amount(*done, *total, false)),
            Event::Message { step, text } => tracing::info!(
                SPROUT_STEP = step.as_deref().unwrap_or(""),
                SPROUT_EVENT = "message",
                "{text}"
            ),
            Event::StepEnd {
                step,
                outcome,
                duration_ms,
                reason,
                error,
            } => {
                let secs = *duration_ms as f64 / 1000.0;
                let why = reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                if error.is_empty() {
                    tracing::info!(SPROUT_STEP = %step, SPROUT_EVENT = "step-end",
                        "step {step} {}{why} in {secs:.1} s", outcome.as_str());
                } else {
                    tracing::error!(SPROUT_STEP = %step, SPROUT_EVENT = "step-end",
                        "step {step} failed after {secs:.1} s: {}", error.join(": "));
                }
            }
            Event::PlanEnd {
                plan,
                outcome,
                duration_ms,
                ..
            } => tracing::info!(SPROUT_PLAN = %plan, "{plan} {outcome} in {:.1} s",
                *duration_ms as f64 / 1000.0),
        }
        Ok(())
    }
}

/// A progress bar on stderr, when it is a terminal.
pub struct BarSink(indicatif::ProgressBar);

impl BarSink {
    pub fn on_terminal() -> Option<BarSink> {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() || std::env::var_os("JOURNAL_STREAM").is_some() {
            return None;
        }
        Some(BarSink(indicatif::ProgressBar::hidden()))
    }
}

impl Sink for BarSink {
    fn name(&self) -> String {
        "terminal".into()
    }

    fn emit(&mut self, event: &Stamped<'_>) -> std::io::Result<()> {
        let bar = &self.0;
        match event.event {
            Event::StepStart {
                index,
                total,
                description,
                ..
            } => {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                bar.set_style(indicatif::ProgressStyle::default_spinner());
                bar.set_message(format!("[{index}/{total}] {description}"));
                bar.set_position(0);
            }
            Event::Bytes { done, total, .. } | Event::Items { done, total, .. } => {
                if let Some(t) = total {
                    bar.set_length(*t);
                    let template = if matches!(event.event, Event::Bytes { .. }) {
                        "{msg} {wide_bar} {bytes}/{total_bytes} {eta}"
                    } else {
                        "{msg} {wide_bar} {pos}/{len}"
                    };
                    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                        bar.set_style(style);
                    }
                }
                bar.set_position(*done);
            }
            Event::StepEnd { .. } | Event::PlanEnd { .. } => bar.finish_and_clear(),
            _ => {}
        }
        Ok(())
    }
}

/// "1.5 GiB of 4.0 GiB (37%)", "3 of 10", "12 MiB".
fn amount(done: u64, total: Option<u64>, bytes: bool) -> String {
    let fmt = |n: u64| {
        if bytes {
            indicatif::BinaryBytes(n).to_string()
        } else {
            n.to_string()
        }
    };
    match total {
        Some(t) if t > 0 => format!(
            "{} of {} ({}%)",
            fmt(done),
            fmt(t),
            done.saturating_mul(100) / t
        ),
        _ => fmt(done),
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

    #[test]
    fn amounts_read_well() {
        assert_eq!(amount(3, Some(10), false), "3 of 10 (30%)");
        assert_eq!(
            amount(1 << 30, Some(4 << 30), true),
            "1.00 GiB of 4.00 GiB (25%)"
        );
        assert_eq!(amount(7, None, false), "7");
        assert_eq!(amount(7, Some(0), false), "7");
    }
}
