//! Retries on transient API errors with bounded exponential backoff, under
//! one deadline for the whole apply, saying every so often what is retried.
//!
//! Transient: no connection (refused, reset, timed out), HTTP 429, 500,
//! 502, 503 and 504. Everything else is the manifest's or the cluster's
//! answer and ends the apply at once.

use std::future::Future;
use std::time::Duration;

use anyhow::{Result, anyhow};
use tokio::time::Instant;

use super::ApplyOptions;

/// The outcome of one failed attempt.
#[derive(Debug)]
pub enum Failure {
    /// Worth another try (until the deadline).
    Transient(anyhow::Error),
    /// The answer; no retry changes it.
    Permanent(anyhow::Error),
}

impl Failure {
    /// Sorts a client error into transient or permanent.
    pub fn from_kube(e: kube::Error) -> Self {
        if is_transient(&e) {
            Failure::Transient(e.into())
        } else {
            Failure::Permanent(e.into())
        }
    }
}

/// True for errors a later attempt may not have.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// The HTTP code of an API error answer.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// When the whole apply must be over.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    end: Instant,
    total: Duration,
}

impl Deadline {
    pub fn after(total: Duration) -> Self {
        Deadline {
            end: Instant::now() + total,
            total,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.end.saturating_duration_since(Instant::now())
    }

    pub fn total(&self) -> Duration {
        self.total
    }
}

/// Runs `attempt` until it succeeds, fails permanently or the deadline
/// passes. `what` says what is being done ("creating ConfigMap a/b").
pub async fn retry<T, F, Fut>(
    what: &str,
    opts: &ApplyOptions,
    deadline: &Deadline,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, Failure>>,
{
    let mut delay = opts.retry_initial;
    let mut attempts: u32 = 0;
    let mut last_said = Instant::now();
    let mut last: Option<anyhow::Error> = None;
    loop {
        let remaining = deadline.remaining();
        if remaining.is_zero() {
            let gave_up = format!(
                "{what}: the deadline of {:?} for applying the manifests ran out after {attempts} \
                 attempts (raise it in the post-pivot configuration if the cluster is just slow)",
                deadline.total()
            );
            return Err(match last {
                Some(e) => e.context(format!("{gave_up}; last error")),
                None => anyhow!(gave_up),
            });
        }
        attempts = attempts.saturating_add(1);
        let limit = remaining.min(opts.request_timeout);
        let error = match tokio::time::timeout(limit, attempt()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(Failure::Permanent(e))) => return Err(e),
            Ok(Err(Failure::Transient(e))) => e,
            Err(_) => anyhow!("no answer within {limit:?}"),
        };
        // A shutdown ends the retrying (the step is resumed next boot)
        // instead of outliving systemd's stop timeout.
        if let Err(stop) = crate::host::shutdown::check() {
            return Err(anyhow::Error::new(stop).context(format!("{what} (last error: {error:#})")));
        }
        let remaining = deadline.remaining();
        if last_said.elapsed() >= opts.announce_every || attempts == 1 {
            tracing::warn!("{what}: {error:#}; retrying (attempt {attempts}, {remaining:?} left)");
            last_said = Instant::now();
        }
        last = Some(error);
        tokio::time::sleep(delay.min(remaining)).await;
        delay = delay.saturating_mul(2).min(opts.retry_max);
    }
}
