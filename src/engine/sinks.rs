//! The sinks progress events go to, and the `--progress-json` target.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, Result, bail};

use super::progress::{Event, Sink, Stamped};

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
