//! §2.4 D: the seed's images pulled into the container storage before the
//! node ships. Concurrent (`MAX_PULL_THREADS`, default 10) but never the
//! same image twice at once (upstream reverted parallel pulls after two
//! pulls of one image corrupted the storage), images already present are
//! skipped (a resumed run does not pull again), retries have a bounded
//! backoff, and `precache_status.json` is upstream's format.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::engine::{Cancel, Ctx, StepProgress};
use crate::host::command::Cmd;

/// What the pulling threads share (a `Ctx` stays on its thread).
struct Shared<'a> {
    cancel: Cancel,
    progress: StepProgress,
    /// podman's TMPDIR (see `IbiState::pull_staging`).
    staging: &'a Path,
}

impl Shared<'_> {
    fn command(&self) -> Cmd {
        Cmd::new("podman")
            .env("TMPDIR", self.staging)
            .stop_when(self.cancel.flag())
    }
    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

pub const DEFAULT_THREADS: usize = 10;
const ATTEMPTS: u32 = 5;
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Upstream's `precache_status.json`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Status {
    pub total: usize,
    pub pulled: usize,
    pub failed: usize,
    pub failed_pulls: Option<Vec<String>>,
    /// Images with no variant for this machine's architecture: reported
    /// and skipped (the node could not run them either). Not in the file,
    /// whose format is upstream's.
    #[serde(skip)]
    pub skipped: Vec<String>,
}

/// How one image went.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pulled {
    Yes,
    /// No variant for this machine's architecture.
    WrongArch(String),
    Failed,
}

/// Whether podman's error says the image has no variant for this machine
/// (a manifest list / image index without it, or a single-platform image
/// of another architecture).
pub fn is_wrong_architecture(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    (e.contains("no image found in") && e.contains("for architecture"))
        || e.contains("does not match the expected platform")
        || (e.contains("image platform") && e.contains("does not match"))
}

/// The registries.conf `[[registry]]` sources: the part of each
/// `location` before the first `/`. A missing or unreadable file is an
/// error, as upstream (the live ISO always has one).
pub fn registry_sources(conf: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(conf).with_context(|| format!("reading {}", conf.display()))?;
    let doc: toml::Table = text
        .parse()
        .with_context(|| format!("parsing {} as TOML", conf.display()))?;
    Ok(doc
        .get("registry")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("location")?.as_str())
        .filter(|l| !l.is_empty())
        .map(|l| l.split('/').next().unwrap_or(l).to_string())
        .collect())
}

/// Upstream's `ShouldOverrideSeedRegistry`.
pub fn should_override(mirror_configured: bool, seed_registry: &str, sources: &[String]) -> bool {
    if sources.is_empty() {
        mirror_configured
    } else {
        !sources.iter().any(|s| s == seed_registry)
    }
}

/// The image list: empty lines dropped, duplicates dropped, and with
/// `from → to` a literal prefix replacement (upstream used the registry
/// as an unescaped regex, so a `.` matched anything).
pub fn image_list(list: &str, replace: Option<(&str, &str)>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match replace {
            Some((from, to)) if !from.is_empty() && !to.is_empty() && from != to => {
                match l.strip_prefix(from) {
                    Some(rest) => format!("{to}{rest}"),
                    None => l.to_string(),
                }
            }
            _ => l.to_string(),
        })
        .filter(|l| seen.insert(l.clone()))
        .collect()
}

/// `MAX_PULL_THREADS`, as upstream reads it.
pub fn threads() -> usize {
    std::env::var("MAX_PULL_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_THREADS)
}

/// Where [`pull_all`] reads and writes.
pub struct Paths<'a> {
    /// The pull secret.
    pub authfile: &'a Path,
    /// Upstream's `precache_status.json`.
    pub status_file: &'a Path,
    /// podman's TMPDIR while pulling.
    pub staging: &'a Path,
}

/// Pulls `images`; writes the status after each. `Err` when some failed
/// and `best_effort` is not set.
pub fn pull_all(
    ctx: &Ctx<'_>,
    images: &[String],
    paths: &Paths<'_>,
    best_effort: bool,
) -> Result<Status> {
    let (authfile, status_file) = (paths.authfile, paths.status_file);
    let sh = Shared {
        cancel: ctx.cancel().clone(),
        progress: ctx.progress().clone(),
        staging: paths.staging,
    };
    let sh = &sh;
    let status = Mutex::new(Status {
        total: images.len(),
        ..Status::default()
    });
    let failed = Mutex::new(Vec::new());
    let next = Mutex::new(images.iter());
    let workers = threads().min(images.len()).max(1);
    if let Some(dir) = status_file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let save = |s: &Status| -> Result<()> {
        let bytes = serde_json::to_vec(s).context("serialising the precache status")?;
        crate::host::fs::write_atomic(status_file, &bytes, 0o644)
    };
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let Some(image) = next.lock().ok().and_then(|mut it| it.next().cloned()) else {
                        return;
                    };
                    let result = if sh.cancelled() {
                        Pulled::Failed
                    } else {
                        pull_one(sh, &image, authfile)
                    };
                    if let Ok(mut s) = status.lock() {
                        match result {
                            Pulled::Yes => s.pulled = s.pulled.saturating_add(1),
                            Pulled::WrongArch(why) => {
                                let m = format!(
                                    "skipped {image}: it has no image for this machine's architecture ({why})"
                                );
                                tracing::warn!("{m}");
                                sh.progress.message(m);
                                s.skipped.push(image.clone());
                            }
                            Pulled::Failed => {
                                s.failed = s.failed.saturating_add(1);
                                if let Ok(mut f) = failed.lock() {
                                    f.push(image.clone());
                                    s.failed_pulls = Some(f.clone());
                                }
                            }
                        }
                        let handled = s.pulled + s.failed + s.skipped.len();
                        sh.progress.items(
                            u64::try_from(handled).unwrap_or(u64::MAX),
                            Some(u64::try_from(s.total).unwrap_or(u64::MAX)),
                        );
                        if let Err(e) = save(&s) {
                            tracing::warn!("{e:#}");
                        }
                    }
                }
            });
        }
    });
    ctx.check_cancelled()?;
    let s = status
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a precache worker panicked"))?;
    save(&s)?;
    let still_missing: Vec<&String> = s
        .failed_pulls
        .iter()
        .flatten()
        .filter(|i| !exists(sh, i))
        .collect();
    if !still_missing.is_empty() {
        let m = format!(
            "failed to pre-cache {} of {} images: {}",
            still_missing.len(),
            s.total,
            still_missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if best_effort {
            tracing::warn!("{m} (precacheBestEffort: going on)");
        } else {
            bail!("{m}; fix the registry access or set precacheBestEffort");
        }
    }
    Ok(s)
}

fn exists(sh: &Shared, image: &str) -> bool {
    sh.command()
        .args(["image", "exists", image])
        .run_streaming(|_| {})
        .is_ok()
}

/// One image: skipped when present, else up to `ATTEMPTS` pulls with a
/// doubling pause; an image the registry does not know, or one without
/// this machine's architecture, is not retried.
fn pull_one(sh: &Shared, image: &str, authfile: &Path) -> Pulled {
    if exists(sh, image) {
        tracing::info!("{image} is already in the container storage");
        return Pulled::Yes;
    }
    let mut pause = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let r = sh
            .command()
            .arg("pull")
            .arg(image)
            .arg("--authfile")
            .arg(authfile)
            .describe(format!("pre-caching {image}"))
            .run_streaming(|_| {});
        match r {
            Ok(()) => {
                sh.progress.message(format!("pulled {image}"));
                return Pulled::Yes;
            }
            Err(e) => {
                let text = format!("{e:#}");
                if is_wrong_architecture(&text) {
                    let why = text
                        .lines()
                        .rev()
                        .find(|l| l.to_ascii_lowercase().contains("architecture"))
                        .unwrap_or(&text)
                        .trim()
                        .to_string();
                    return Pulled::WrongArch(why);
                }
                tracing::warn!("pulling {image} (attempt {attempt} of {ATTEMPTS}): {text}");
                if text.contains("manifest unknown") || attempt == ATTEMPTS || sh.cancelled() {
                    return Pulled::Failed;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
    }
    Pulled::Failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_override_is_a_literal_prefix_and_the_list_is_deduplicated() {
        let list = "quay.io/a@sha256:1\n\nquayXio/b:1\nquay.io/a@sha256:1\nother.io/c\n";
        assert_eq!(
            image_list(list, Some(("quay.io", "mirror:5000"))),
            ["mirror:5000/a@sha256:1", "quayXio/b:1", "other.io/c"]
        );
        assert_eq!(image_list(list, Some(("quay.io", "quay.io"))).len(), 3);
        assert!(should_override(true, "quay.io", &[]));
        assert!(!should_override(false, "quay.io", &[]));
        assert!(should_override(false, "quay.io", &["mirror:5000".into()]));
        assert!(!should_override(true, "quay.io", &["quay.io".into()]));
    }

    #[test]
    fn registries_conf_sources_are_the_hosts_of_the_locations() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("registries.conf");
        std::fs::write(&p, "unqualified-search-registries = []\n[[registry]]\nlocation = \"mirror.example:5000/ocp\"\n[[registry]]\nprefix = \"x\"\nlocation = \"\"\n").unwrap();
        assert_eq!(registry_sources(&p).unwrap(), ["mirror.example:5000"]);
        assert!(registry_sources(&d.path().join("absent")).is_err());
    }

    #[test]
    fn podmans_architecture_errors_are_recognised() {
        assert!(is_wrong_architecture(
            "Error: choosing an image from manifest list docker://q.io/a@sha256:1: no image found in image index for architecture \"amd64\", variant \"\", OS \"linux\""
        ));
        assert!(is_wrong_architecture(
            "no image found in manifest list for architecture amd64, variant \"\", OS linux"
        ));
        assert!(!is_wrong_architecture(
            "Error: initializing source: manifest unknown"
        ));
        assert!(!is_wrong_architecture("connection refused"));
    }

    #[test]
    fn status_is_upstreams_format() {
        let s = Status {
            total: 2,
            pulled: 2,
            failed: 0,
            failed_pulls: None,
            skipped: vec!["x".into()],
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"total":2,"pulled":2,"failed":0,"failed_pulls":null}"#
        );
    }
}
