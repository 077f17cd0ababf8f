//! The base ISO of `create image`: the CoreOS live ISO that the installation
//! ignition is embedded into.
//!
//! Either the user names one (`--base-iso`, the offline path used at the
//! edge), or it is downloaded once into the user cache, from the URL in the
//! CoreOS stream metadata or from the `SPROUT_OS_IMAGE_OVERRIDE` URL.
//!
//! Unlike upstream, a cached ISO is checked against its SHA-256 every time it
//! is reused when a checksum is known, so a truncated or tampered cache entry
//! never ends up inside an installation ISO; a bad entry is downloaded again
//! once. Downloads are streamed to disk (an ISO is ~1 GiB) under a lock file,
//! so concurrent runs share one download.

mod fetch;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use url::Url;

use crate::host::input::{InputKind, read_input_text};
use fetch::{Http, lock, sha256_file};

/// Overrides the URL of the CoreOS stream metadata.
pub const STREAM_URL_ENV: &str = "SPROUT_STREAM_URL";
/// A base ISO URL that bypasses the stream metadata (upstream:
/// `OPENSHIFT_INSTALL_OS_IMAGE_OVERRIDE`); `?sha256=<hex>` gives its checksum.
pub const OS_IMAGE_OVERRIDE_ENV: &str = "SPROUT_OS_IMAGE_OVERRIDE";
/// The stream the upstream installer embeds (default stream `rhel-9`).
pub const DEFAULT_STREAM_URL: &str = "https://raw.githubusercontent.com/openshift/installer/main/data/data/coreos/coreos-rhel-9.json";
/// Architectures with a CoreOS live ISO, as RPM names them.
pub const SUPPORTED_ARCHES: [&str; 2] = ["x86_64", "aarch64"];
/// Where downloaded ISOs live, below the user cache directory.
pub const IMAGE_CACHE_DIR: &str = "sprout/image_cache";
/// Where the last good copy of each stream metadata URL is kept.
pub const STREAM_CACHE_DIR: &str = "sprout/streams";

/// Upstream's pause between download attempts.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct BaseIsoOptions {
    /// `--base-iso`: used as is, without any network access.
    pub base_iso: Option<PathBuf>,
    /// `x86_64` or `aarch64`.
    pub rpm_arch: String,
    /// Parent of `sprout/image_cache`.
    pub cache_dir: PathBuf,
    pub stream_url: String,
    pub override_url: Option<String>,
    /// Pause between download attempts.
    pub retry_delay: Duration,
}

impl BaseIsoOptions {
    /// Options from `XDG_CACHE_HOME`/`HOME`, `SPROUT_STREAM_URL` and
    /// `SPROUT_OS_IMAGE_OVERRIDE`.
    pub fn from_env(base_iso: Option<PathBuf>, rpm_arch: &str) -> Result<Self> {
        Self::from_vars(base_iso, rpm_arch, |name| std::env::var_os(name))
    }

    fn from_vars(
        base_iso: Option<PathBuf>,
        rpm_arch: &str,
        var: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        let cache_dir = match user_cache_dir(set) {
            Some(dir) => dir,
            // --base-iso never touches the cache, so a missing HOME is no
            // reason to fail.
            None if base_iso.is_some() => PathBuf::new(),
            None => bail!(
                "cannot find a cache directory for the base ISO: set XDG_CACHE_HOME or HOME, or pass --base-iso with a CoreOS live ISO"
            ),
        };
        let text = |name: &str| {
            set(name)
                .map(|v| {
                    v.into_string()
                        .map_err(|_| anyhow!("{name} is not valid UTF-8; set it to a URL"))
                })
                .transpose()
        };
        Ok(Self {
            base_iso,
            rpm_arch: rpm_arch.to_string(),
            cache_dir,
            stream_url: text(STREAM_URL_ENV)?.unwrap_or_else(|| DEFAULT_STREAM_URL.to_string()),
            override_url: text(OS_IMAGE_OVERRIDE_ENV)?,
            retry_delay: DEFAULT_RETRY_DELAY,
        })
    }
}

/// `$XDG_CACHE_HOME`, else `~/.cache`. A relative XDG_CACHE_HOME is ignored,
/// as the XDG base directory specification says.
fn user_cache_dir(set: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    if let Some(xdg) = set("XDG_CACHE_HOME").map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Some(xdg);
    }
    set("HOME").map(|home| PathBuf::from(home).join(".cache"))
}

/// Returns the path of a verified base ISO (the --base-iso path or the cache entry).
pub fn resolve(opts: &BaseIsoOptions) -> Result<PathBuf> {
    if let Some(path) = &opts.base_iso {
        check_local_iso(path)?;
        tracing::info!("using the base ISO {}", path.display());
        return Ok(path.clone());
    }
    let arch = opts.rpm_arch.as_str();
    if !SUPPORTED_ARCHES.contains(&arch) {
        bail!(
            "unsupported architecture '{arch}' for the base ISO; use one of {}",
            SUPPORTED_ARCHES.join(", ")
        );
    }
    let http = Http {
        retry_delay: opts.retry_delay,
    };
    let source = match &opts.override_url {
        Some(url) => {
            tracing::warn!(
                url = %url,
                "Found override for OS Image. Please be warned, this is not advised."
            );
            Source::from_override(url)?
        }
        None => stream_source(
            &http,
            &opts.stream_url,
            arch,
            &opts.cache_dir.join(STREAM_CACHE_DIR),
        )?,
    };
    let dir = opts.cache_dir.join(IMAGE_CACHE_DIR);
    cached(&http, &source, &dir).with_context(|| {
        format!(
            "getting the base ISO {} (to work offline, pass --base-iso with a CoreOS live ISO for {arch})",
            source.url
        )
    })
}

fn check_local_iso(path: &Path) -> Result<()> {
    use crate::host::input::{InputError, InputKind, open_input};
    match open_input(path, InputKind::LiveIso) {
        Ok(_) => Ok(()),
        Err(InputError::NotFound { .. }) => bail!(
            "the base ISO {} does not exist; check the --base-iso path",
            path.display()
        ),
        Err(InputError::Io { source, .. }) if source.kind() == io::ErrorKind::PermissionDenied => {
            bail!(
                "opening the base ISO {} (make it readable by this user): {source}",
                path.display()
            )
        }
        Err(e) => bail!("the base ISO {e} (--base-iso)"),
    }
}

/// Where to download the ISO from, and its checksum if one is known.
#[derive(Debug, Clone, PartialEq)]
struct Source {
    url: Url,
    /// Lower-case hex SHA-256 of the uncompressed ISO.
    sha256: Option<String>,
}

impl Source {
    /// Reads `?sha256=` off the override URL; the parameter is not sent to
    /// the server, as upstream does.
    fn from_override(raw: &str) -> Result<Self> {
        let mut url = http_url(raw)
            .with_context(|| format!("reading {OS_IMAGE_OVERRIDE_ENV} (or unset it)"))?;
        let mut sha256 = None;
        let mut rest = Vec::new();
        for (key, value) in url.query_pairs() {
            if key == "sha256" {
                sha256 = Some(value.into_owned());
            } else {
                rest.push((key.into_owned(), value.into_owned()));
            }
        }
        if sha256.is_some() {
            if rest.is_empty() {
                url.set_query(None);
            } else {
                url.query_pairs_mut().clear().extend_pairs(rest);
            }
        }
        let sha256 = sha256
            .map(|s| sha256_hex(&s))
            .transpose()
            .with_context(|| format!("reading the sha256 parameter of {OS_IMAGE_OVERRIDE_ENV}"))?;
        Ok(Self { url, sha256 })
    }
}

fn http_url(raw: &str) -> Result<Url> {
    let url = Url::parse(raw).with_context(|| format!("'{raw}' is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("'{raw}' is not an http or https URL");
    }
    Ok(url)
}

fn sha256_hex(s: &str) -> Result<String> {
    let hex = s.trim().to_ascii_lowercase();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("'{s}' is not a SHA-256 (64 hexadecimal digits)");
    }
    Ok(hex)
}

/// The parts of the CoreOS stream metadata we read.
#[derive(Debug, Deserialize)]
struct Stream {
    architectures: BTreeMap<String, StreamArch>,
}

#[derive(Debug, Deserialize)]
struct StreamArch {
    // Only `metal` is decoded, so a change in another platform's shape
    // cannot break us.
    #[serde(default)]
    artifacts: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    formats: BTreeMap<String, BTreeMap<String, Artifact>>,
}

#[derive(Debug, Deserialize)]
struct Artifact {
    location: String,
    sha256: Option<String>,
}

/// The stream metadata names the ISO (and its checksum). Upstream builds it
/// into the binary; sprout fetches it, so a copy of the last good fetch is
/// kept: without network, the cached ISO is still found and verified.
fn stream_source(http: &Http, raw_url: &str, arch: &str, stream_cache: &Path) -> Result<Source> {
    let url = http_url(raw_url).with_context(|| {
        format!("reading {STREAM_URL_ENV} (unset it to use {DEFAULT_STREAM_URL})")
    })?;
    let copy = stream_cache.join(stream_cache_name(&url));
    match http.get_text(&url) {
        Ok(text) => {
            let source = iso_in_stream(&text, &url, arch)?;
            // Only metadata that worked is kept; failing to keep it only
            // costs the offline fallback.
            let kept = fs::create_dir_all(stream_cache)
                .map_err(anyhow::Error::from)
                .and_then(|()| crate::host::fs::write_atomic(&copy, text.as_bytes(), 0o644));
            if let Err(e) = kept {
                tracing::warn!("could not keep a copy of the stream metadata in {}: {e:#}", copy.display());
            }
            Ok(source)
        }
        Err(fetch_error) => match read_input_text(&copy, InputKind::CachedStream) {
            Ok(text) => {
                tracing::warn!(
                    "could not fetch the CoreOS stream metadata {url} ({fetch_error:#}); using the copy from the last successful fetch, {}",
                    copy.display()
                );
                iso_in_stream(&text, &url, arch)
            }
            Err(_) => Err(fetch_error).with_context(|| {
                format!(
                    "fetching the CoreOS stream metadata {url} (to work offline, pass --base-iso with a CoreOS live ISO for {arch})"
                )
            }),
        },
    }
}

/// A file name for the kept copy of the stream at `url`.
fn stream_cache_name(url: &Url) -> String {
    let safe: String = url
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.json")
}

fn iso_in_stream(text: &str, url: &Url, arch: &str) -> Result<Source> {
    let stream: Stream = serde_json::from_str(text).with_context(|| {
        format!(
            "{url} is not CoreOS stream metadata; set {STREAM_URL_ENV} to a stream JSON file such as {DEFAULT_STREAM_URL}"
        )
    })?;
    let hint = format!(
        "pass --base-iso with a CoreOS live ISO for {arch}, or set {STREAM_URL_ENV} to a stream that has one"
    );
    let Some(platforms) = stream.architectures.get(arch) else {
        let known: Vec<&str> = stream.architectures.keys().map(String::as_str).collect();
        bail!(
            "the CoreOS stream metadata {url} has no architecture {arch} (it has: {}); {hint}",
            known.join(", ")
        );
    };
    let Some(metal) = platforms.artifacts.get("metal") else {
        bail!("coreOs stream data not found for 'metal' artifact of {arch} in {url}; {hint}");
    };
    let metal = Platform::deserialize(metal).with_context(|| {
        format!("{url} is not CoreOS stream metadata: reading the 'metal' artifact of {arch}")
    })?;
    let Some(disk) = metal.formats.get("iso").and_then(|iso| iso.get("disk")) else {
        bail!("no ISO found to download for {arch} in {url}; {hint}");
    };
    // Locations are absolute in practice; joining also accepts relative ones.
    let iso_url = url
        .join(&disk.location)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .with_context(|| {
            format!(
                "the ISO location '{}' for {arch} in {url} is not an http(s) URL; {hint}",
                disk.location
            )
        })?;
    let sha256 = disk
        .sha256
        .as_deref()
        .map(sha256_hex)
        .transpose()
        .with_context(|| format!("reading the sha256 of the {arch} ISO in {url}"))?;
    if sha256.is_none() {
        tracing::warn!("{url} gives no sha256 for {iso_url}; the download cannot be verified");
    }
    Ok(Source {
        url: iso_url,
        sha256,
    })
}

/// Returns the cache entry for `source`, verified when a checksum is known,
/// downloading it if it is missing or damaged.
fn cached(http: &Http, source: &Source, dir: &Path) -> Result<PathBuf> {
    let name = cache_name(&source.url)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(&name);
    let _lock = lock(&dir.join(format!("{name}.lock")))?;
    if path.exists() {
        let Some(want) = &source.sha256 else {
            // Upstream's way to pre-seed disconnected hosts: a file put there
            // by hand is used as is.
            tracing::info!(
                "using the cached base ISO {} (no checksum known to verify it)",
                path.display()
            );
            return Ok(path);
        };
        tracing::info!("verifying the cached base ISO {}", path.display());
        let found = sha256_file(&path)?;
        if found == *want {
            tracing::info!(
                "using the cached base ISO {} (sha256 verified)",
                path.display()
            );
            return Ok(path);
        }
        tracing::warn!(
            "the cached base ISO {} is damaged (expected sha256 {want}, found {found}); downloading it again",
            path.display()
        );
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    let tmp = dir.join(format!("{name}.tmp"));
    let result = http.download(&source.url, source.sha256.as_deref(), &tmp, &path);
    if result.is_err() {
        // Best effort: the next run truncates it anyway.
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

/// Upstream's cache name: the last path segment, without `.gz`/`.xz`.
fn cache_name(url: &Url) -> Result<String> {
    let last = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .unwrap_or("");
    let name = last
        .strip_suffix(".gz")
        .or_else(|| last.strip_suffix(".xz"))
        .unwrap_or(last);
    if name.is_empty() || name == "." || name == ".." {
        bail!("the URL {url} does not end in a file name; point it at the ISO file itself");
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn options_from_the_environment() {
        let o = BaseIsoOptions::from_vars(None, "x86_64", vars(&[("HOME", "/home/u")])).unwrap();
        assert_eq!(o.cache_dir, PathBuf::from("/home/u/.cache"));
        assert_eq!(o.stream_url, DEFAULT_STREAM_URL);
        assert_eq!(o.override_url, None);
        assert_eq!(o.retry_delay, Duration::from_secs(5));

        let env = vars(&[
            ("HOME", "/home/u"),
            ("XDG_CACHE_HOME", "/var/cache/u"),
            (STREAM_URL_ENV, "http://mirror/stream.json"),
            (OS_IMAGE_OVERRIDE_ENV, "http://mirror/live.iso"),
        ]);
        let o = BaseIsoOptions::from_vars(None, "aarch64", env).unwrap();
        assert_eq!(o.cache_dir, PathBuf::from("/var/cache/u"));
        assert_eq!(o.stream_url, "http://mirror/stream.json");
        assert_eq!(o.override_url.as_deref(), Some("http://mirror/live.iso"));

        // Relative XDG_CACHE_HOME and empty values are ignored.
        let env = vars(&[
            ("HOME", "/h"),
            ("XDG_CACHE_HOME", "rel"),
            (OS_IMAGE_OVERRIDE_ENV, ""),
        ]);
        let o = BaseIsoOptions::from_vars(None, "x86_64", env).unwrap();
        assert_eq!(o.cache_dir, PathBuf::from("/h/.cache"));
        assert_eq!(o.override_url, None);
    }

    #[test]
    fn no_cache_dir_matters_only_without_base_iso() {
        let e = BaseIsoOptions::from_vars(None, "x86_64", vars(&[])).unwrap_err();
        assert!(
            format!("{e:#}").contains("set XDG_CACHE_HOME or HOME"),
            "{e:#}"
        );
        let o = BaseIsoOptions::from_vars(Some("/x.iso".into()), "x86_64", vars(&[])).unwrap();
        assert_eq!(o.base_iso, Some(PathBuf::from("/x.iso")));
    }

    #[test]
    fn override_checksum_is_taken_off_the_url() {
        let sha = "AB".repeat(32);
        let s = Source::from_override(&format!("https://m/a/live.iso?sha256={sha}")).unwrap();
        assert_eq!(s.url.as_str(), "https://m/a/live.iso");
        assert_eq!(s.sha256, Some("ab".repeat(32)));

        let s = Source::from_override(&format!("https://m/live.iso?x=1&sha256={sha}")).unwrap();
        assert_eq!(s.url.as_str(), "https://m/live.iso?x=1");

        let s = Source::from_override("https://m/live.iso?x=1").unwrap();
        assert_eq!((s.url.as_str(), s.sha256), ("https://m/live.iso?x=1", None));

        let e = Source::from_override("https://m/live.iso?sha256=abc").unwrap_err();
        assert!(format!("{e:#}").contains("'abc' is not a SHA-256"), "{e:#}");
        let e = Source::from_override("ftp://m/live.iso").unwrap_err();
        assert!(
            format!("{e:#}").contains("not an http or https URL"),
            "{e:#}"
        );
    }

    #[test]
    fn cache_names_drop_compression_suffixes() {
        let name = |u: &str| cache_name(&Url::parse(u).unwrap());
        assert_eq!(
            name("https://m/a/rhcos-live.iso").unwrap(),
            "rhcos-live.iso"
        );
        assert_eq!(name("https://m/rhcos.iso.xz?x=1").unwrap(), "rhcos.iso");
        assert_eq!(name("https://m/rhcos.iso.gz").unwrap(), "rhcos.iso");
        assert!(name("https://m/").is_err());
    }
}
