//! The transport half of the base ISO resolver: HTTP with retries, the
//! streamed and verified download into the cache, the cache lock, hashing
//! and the progress bar.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use crate::hash::{Sha256, hex};
use anyhow::{Context, Result, anyhow};
use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use url::{Host, Url};

/// Upstream's retry policy: 3 attempts (the pause between them is an option).
const ATTEMPTS: u32 = 3;
/// Stream metadata is a few hundred KiB; anything far larger is not one.
const STREAM_LIMIT: u64 = 16 << 20;
const COPY_BUFFER: usize = 1 << 20;
/// Cache entries are read-only, so nothing edits them in place by accident.
const CACHED_MODE: u32 = 0o444;

/// Takes the lock that serializes runs on one cache entry; released on drop.
pub(super) fn lock(path: &Path) -> Result<Flock<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => return Ok(locked),
        Err((file, e)) if e == Errno::EWOULDBLOCK => file,
        Err((_, e)) => return Err(e).with_context(|| format!("locking {}", path.display())),
    };
    tracing::info!(
        "waiting for another sprout run that holds {}",
        path.display()
    );
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("locking {}", path.display()))
}

pub(super) fn sha256_file(path: &Path) -> Result<String> {
    // A cache entry is a regular file; anything else must not block or
    // stream forever (a FIFO, a link to /dev/zero).
    let (mut file, _) =
        crate::host::input::open_input(path, crate::host::input::InputKind::LiveIso)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; COPY_BUFFER];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    Ok(hex(&hasher.finish()))
}

/// Why one download attempt failed: worth another attempt or not.
enum Failure {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
}

pub(super) struct Http {
    pub(super) retry_delay: Duration,
}

impl Http {
    fn agent(url: &Url) -> ureq::Agent {
        // OpenSSL through native-tls (FIPS) with the system's trust store,
        // so mirrors behind a corporate CA work.
        let tls = TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(RootCerts::PlatformVerifier)
            .build();
        let mut config = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .user_agent(concat!("sprout/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)));
        if is_loopback(url) {
            // A proxy from the environment cannot reach this machine's loopback.
            config = config.proxy(None);
        }
        config.build().into()
    }

    /// Runs `attempt` until it succeeds, fails fatally, or fails ATTEMPTS times.
    fn with_retries<T>(
        &self,
        url: &Url,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T> {
        let mut n = 1;
        loop {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry(e)) if n >= ATTEMPTS => {
                    return Err(e.context(format!("{ATTEMPTS} attempts failed")));
                }
                Err(Failure::Retry(e)) => {
                    tracing::warn!(
                        "attempt {n} of {ATTEMPTS} to get {url} failed: {e:#}; retrying in {:?}",
                        self.retry_delay
                    );
                    std::thread::sleep(self.retry_delay);
                    n += 1;
                }
            }
        }
    }

    fn get(agent: &ureq::Agent, url: &Url) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let response = agent
            .get(url.as_str())
            .call()
            .map_err(|e| Failure::Retry(anyhow!(e).context(format!("GET {url}"))))?;
        let status = response.status();
        if status == ureq::http::StatusCode::OK {
            return Ok(response);
        }
        let e = anyhow!("GET {url} returned HTTP {status}");
        // Client errors (404, 403) will not go away by asking again.
        if status.is_server_error() || status == ureq::http::StatusCode::TOO_MANY_REQUESTS {
            Err(Failure::Retry(e))
        } else {
            Err(Failure::Fatal(e))
        }
    }

    pub(super) fn get_text(&self, url: &Url) -> Result<String> {
        let agent = Self::agent(url);
        self.with_retries(url, || {
            Self::get(&agent, url)?
                .into_body()
                .with_config()
                .limit(STREAM_LIMIT)
                .read_to_string()
                .map_err(|e| Failure::Retry(anyhow!(e).context(format!("reading {url}"))))
        })
    }

    /// Downloads `url` to `tmp` (decompressing `.gz`/`.xz`), checks its
    /// SHA-256 when one is known, and renames it to `dest`.
    pub(super) fn download(
        &self,
        url: &Url,
        sha256: Option<&str>,
        tmp: &Path,
        dest: &Path,
    ) -> Result<()> {
        let agent = Self::agent(url);
        self.with_retries(url, || download_once(&agent, url, sha256, tmp, dest))
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn download_once(
    agent: &ureq::Agent,
    url: &Url,
    sha256: Option<&str>,
    tmp: &Path,
    dest: &Path,
) -> Result<(), Failure> {
    let fatal = |e: io::Error, doing: &str| {
        Failure::Fatal(anyhow!(e).context(format!("{doing} {}", tmp.display())))
    };
    let response = Http::get(agent, url)?;
    let size = response.body().content_length();
    let shown = size.map_or_else(|| "size unknown".to_string(), |s| HumanBytes(s).to_string());
    tracing::info!("downloading {url} ({shown})");
    let progress = progress_bar(size);
    let body = progress.wrap_read(response.into_body().into_reader());
    let path = url.path();
    let mut reader: Box<dyn Read> = if path.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(body))
    } else if path.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(body))
    } else {
        Box::new(body)
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| fatal(e, "creating"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0; COPY_BUFFER];
    let mut total: u64 = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Failure::Retry(anyhow!(e).context(format!("reading {url}"))));
            }
        };
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| fatal(e, "writing"))?;
        total += n as u64;
    }
    progress.finish_and_clear();
    let found = hex(&hasher.finish());
    if let Some(want) = sha256
        && want != found
    {
        // The same bytes would come again: not worth another attempt.
        return Err(Failure::Fatal(anyhow!(
            "checksum mismatch for {}: expected {want}, found {found}",
            dest.display()
        )));
    }
    file.set_permissions(Permissions::from_mode(CACHED_MODE))
        .map_err(|e| fatal(e, "setting the mode of"))?;
    file.sync_all().map_err(|e| fatal(e, "syncing"))?;
    drop(file);
    fs::rename(tmp, dest).map_err(|e| fatal(e, "renaming"))?;
    if let Some(dir) = dest.parent()
        && let Ok(dir) = File::open(dir)
    {
        // Makes the rename durable; failure only weakens crash safety.
        let _ = dir.sync_all();
    }
    let verified = if sha256.is_some() {
        "sha256 verified"
    } else {
        "not verified: no checksum known"
    };
    tracing::info!(
        "downloaded {url} to {} ({}, {verified})",
        dest.display(),
        HumanBytes(total)
    );
    Ok(())
}

/// A progress bar on stderr when it is a terminal; hidden otherwise, so logs
/// and CI output stay clean. Counts bytes on the wire (compressed).
fn progress_bar(size: Option<u64>) -> ProgressBar {
    let target = if io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let (bar, template) = match size {
        Some(len) => (
            ProgressBar::with_draw_target(Some(len), target),
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ),
        None => (
            ProgressBar::with_draw_target(None, target),
            "{spinner} {bytes} {bytes_per_sec}",
        ),
    };
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.with_style(style).with_finish(ProgressFinish::AndClear)
}
