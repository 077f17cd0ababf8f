//! `--report-url URL --report-token-file F`: each step's outcome, and the
//! run's, POSTed as `{step, state, message}` JSON to a factory receiver.
//!
//! The install never waits on the receiver: events go to a queue that one
//! thread delivers, each with a few bounded attempts; while the receiver
//! keeps failing, later events get one attempt each so the queue does not
//! grow. Only the final event is waited for, and at most
//! [`FINAL_WAIT`]. The token is read once with the input limits, sent
//! only as `Authorization: Bearer`, and never logged (`Debug` hides it).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use ureq::tls::{PemItem, RootCerts, TlsConfig, TlsProvider};

use crate::engine::Event;
use crate::engine::progress::{Sink, Stamped};
use crate::host::input::{InputKind, read_input, read_input_text};

/// Attempts per event while the receiver answers (the first included).
const ATTEMPTS: u32 = 3;
/// The pause before the second attempt; it doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(300);
/// One request, connect to response.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `ibi` waits at its end for the final report to go out.
pub const FINAL_WAIT: Duration = Duration::from_secs(10);

/// Where reports go and how to authenticate.
#[derive(Clone)]
pub struct ReportTarget {
    url: String,
    token: String,
    ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ReportTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportTarget")
            .field("url", &self.url)
            .field("token", &"<hidden>")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

impl ReportTarget {
    /// Checks the URL, reads the token and the CA file (if any).
    pub fn new(url: &str, token_file: &Path, ca_file: Option<&Path>) -> Result<Self> {
        let parsed = url::Url::parse(url).with_context(|| {
            format!("--report-url {url:?} is not a URL; give https://HOST/PATH")
        })?;
        if parsed.scheme() != "https" {
            bail!(
                "--report-url {url:?} is not https://: the token must not travel in clear text; \
                 use an https:// receiver"
            );
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            bail!("--report-url must not carry credentials; put the token in --report-token-file");
        }
        let token = read_input_text(token_file, InputKind::Token)
            .map_err(anyhow::Error::from)
            .context("reading --report-token-file")?
            .trim()
            .to_string();
        if token.is_empty() {
            bail!(
                "--report-token-file {} is empty; put the receiver's token in it",
                token_file.display()
            );
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            bail!(
                "--report-token-file {} holds more than one printable word (spaces, line breaks \
                 or control characters); put only the token in it",
                token_file.display()
            );
        }
        let ca_pem = match ca_file {
            Some(p) => {
                let pem = read_input(p, InputKind::CaBundle)
                    .map_err(anyhow::Error::from)
                    .context("reading --report-ca-file")?;
                if certificates(&pem)?.is_empty() {
                    bail!(
                        "--report-ca-file {} holds no PEM certificate; give the receiver's CA in PEM",
                        p.display()
                    );
                }
                Some(pem)
            }
            None => None,
        };
        Ok(ReportTarget {
            url: parsed.to_string(),
            token,
            ca_pem,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn agent(&self) -> Result<ureq::Agent> {
        // OpenSSL (native-tls), like the other HTTPS clients of sprout; the
        // system trust unless a CA file was given.
        let roots = match &self.ca_pem {
            Some(pem) => RootCerts::new_with_certs(&certificates(pem)?),
            None => RootCerts::PlatformVerifier,
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(roots)
            .build();
        let host = url::Url::parse(&self.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let mut config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .user_agent(concat!("sprout/", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(REQUEST_TIMEOUT));
        if host == "127.0.0.1" || host == "localhost" || host == "[::1]" {
            // A proxy from the environment cannot reach this machine's loopback.
            config = config.proxy(None);
        }
        Ok(config.build().into())
    }
}

fn certificates(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let PemItem::Certificate(c) = item.context("reading the PEM of --report-ca-file")? {
            out.push(c);
        }
    }
    Ok(out)
}

/// One report as POSTed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    /// The step id, or `ibi` for the run as a whole.
    pub step: String,
    /// `started`, `ran`, `skipped`, `failed` for a step; `succeeded`,
    /// `failed`, `stopped` for the run.
    pub state: String,
    pub message: String,
    /// True on the last report of a run.
    #[serde(rename = "final")]
    pub last: bool,
    pub timestamp: String,
}

impl Report {
    /// A report stamped now (for what happens outside the plan).
    pub fn now(step: &str, state: &str, message: String, last: bool) -> Report {
        Report {
            step: step.to_string(),
            state: state.to_string(),
            message,
            last,
            timestamp: crate::engine::clock::rfc3339(crate::engine::clock::now_ms()),
        }
    }
}

/// The report for an event, if it gets one.
pub fn report_of(event: &Stamped<'_>) -> Option<Report> {
    let r = |step: &str, state: &str, message: String, last| Report {
        step: step.to_string(),
        state: state.to_string(),
        message,
        last,
        timestamp: event.timestamp.clone(),
    };
    Some(match event.event {
        Event::StepStart {
            step,
            index,
            total,
            description,
        } => r(
            step,
            "started",
            format!("step {index}/{total}: {description}"),
            false,
        ),
        Event::StepEnd {
            step,
            outcome,
            reason,
            error,
            ..
        } => r(
            step,
            outcome.as_str(),
            if error.is_empty() {
                reason.clone().unwrap_or_default()
            } else {
                error.join(": ")
            },
            false,
        ),
        Event::PlanEnd {
            plan,
            outcome,
            duration_ms,
            failed_step,
        } => {
            let secs = Duration::from_millis(*duration_ms).as_secs_f64();
            r(
                plan,
                outcome,
                match failed_step {
                    Some(s) => format!("{plan} {outcome} at step {s} after {secs:.1} s"),
                    None => format!("{plan} {outcome} in {secs:.1} s"),
                },
                true,
            )
        }
        _ => return None,
    })
}

/// Counts reports not yet delivered (or given up on).
#[derive(Default)]
struct Pending {
    count: Mutex<usize>,
    changed: Condvar,
}

/// The sender side: a progress sink, plus a handle to wait for the end.
pub struct Reporter {
    tx: Mutex<Option<Sender<Report>>>,
    sent_final: AtomicBool,
    pending: Arc<Pending>,
    url: String,
}

impl Reporter {
    /// Starts the delivering thread.
    pub fn start(target: &ReportTarget) -> Result<Arc<Reporter>> {
        let agent = target.agent()?;
        let (tx, rx) = channel();
        let pending = Arc::new(Pending::default());
        let worker = Worker {
            agent,
            url: target.url.clone(),
            auth: format!("Bearer {}", target.token),
            pending: pending.clone(),
            failing: false,
        };
        std::thread::Builder::new()
            .name("report-url".into())
            .spawn(move || worker.run(rx))
            .context("starting the --report-url thread")?;
        Ok(Arc::new(Reporter {
            tx: Mutex::new(Some(tx)),
            sent_final: AtomicBool::new(false),
            pending,
            url: target.url.clone(),
        }))
    }

    /// Queues `report`; never blocks on the network.
    pub fn send(&self, report: Report) {
        if report.last {
            self.sent_final.store(true, Ordering::SeqCst);
        }
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = tx.as_ref() {
            let mut n = self.pending.count.lock().unwrap_or_else(|p| p.into_inner());
            if tx.send(report).is_ok() {
                *n = n.saturating_add(1);
            }
        }
    }

    /// Whether the run's last report was queued already.
    pub fn sent_final(&self) -> bool {
        self.sent_final.load(Ordering::SeqCst)
    }

    /// Waits until every queued report went out or was given up, at most
    /// `limit`; then stops the thread. Whether all went out in time.
    pub fn finish(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut n = self.pending.count.lock().unwrap_or_else(|p| p.into_inner());
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    "{} report(s) to {} not delivered within {limit:?}; the install does not wait longer",
                    *n,
                    self.url
                );
                break;
            }
            n = match self.pending.changed.wait_timeout(n, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        let done = *n == 0;
        drop(n);
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        done
    }

    /// The progress sink that feeds this reporter.
    pub fn sink(self: &Arc<Self>) -> ReportSink {
        ReportSink(self.clone())
    }
}

/// Progress events in, reports out.
pub struct ReportSink(Arc<Reporter>);

impl Sink for ReportSink {
    fn name(&self) -> String {
        format!("--report-url {}", self.0.url)
    }

    fn emit(&mut self, event: &Stamped<'_>) -> std::io::Result<()> {
        if let Some(r) = report_of(event) {
            self.0.send(r);
        }
        Ok(())
    }
}

struct Worker {
    agent: ureq::Agent,
    url: String,
    auth: String,
    pending: Arc<Pending>,
    /// The last report was given up on: the next get one attempt each,
    /// except the final one, until one goes through.
    failing: bool,
}

impl Worker {
    fn run(mut self, rx: Receiver<Report>) {
        while let Ok(report) = rx.recv() {
            let attempts = if self.failing && !report.last {
                1
            } else {
                ATTEMPTS
            };
            match self.deliver(&report, attempts) {
                Ok(()) => self.failing = false,
                Err(e) => {
                    if !self.failing {
                        // One warning per outage, not one per event.
                        tracing::warn!(
                            "--report-url {}: {e:#}; the install goes on without it",
                            self.url
                        );
                    }
                    self.failing = true;
                }
            }
            let mut n = self.pending.count.lock().unwrap_or_else(|p| p.into_inner());
            *n = n.saturating_sub(1);
            self.pending.changed.notify_all();
        }
    }

    fn deliver(&self, report: &Report, attempts: u32) -> Result<()> {
        let body = serde_json::to_vec(report).context("serialising the report")?;
        let mut pause = FIRST_BACKOFF;
        let mut last = None;
        for attempt in 1..=attempts {
            match self.post(&body) {
                Ok(()) => return Ok(()),
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::Retry(e)) => last = Some(e),
            }
            if attempt < attempts {
                std::thread::sleep(pause);
                pause = pause.saturating_mul(2);
            }
        }
        Err(last
            .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
            .context(format!("{attempts} attempt(s) failed")))
    }

    fn post(&self, body: &[u8]) -> Result<(), Failure> {
        let r = self
            .agent
            .post(&self.url)
            .header("Authorization", &self.auth)
            .header("Content-Type", "application/json")
            .send(body);
        match r {
            Ok(resp) if resp.status().is_success() => Ok(()),
            Ok(resp) => {
                let s = resp.status();
                let e = anyhow::anyhow!("the receiver answered HTTP {s}");
                // A wrong token or URL does not get better by retrying.
                if s.is_client_error() && s != ureq::http::StatusCode::TOO_MANY_REQUESTS {
                    Err(Failure::Refused(e))
                } else {
                    Err(Failure::Retry(e))
                }
            }
            Err(e) => Err(Failure::Retry(anyhow::Error::from(e).context("posting"))),
        }
    }
}

enum Failure {
    Retry(anyhow::Error),
    Refused(anyhow::Error),
}

#[cfg(test)]
#[path = "report_url_tests.rs"]
mod tests;
