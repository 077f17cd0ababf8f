//! Reading an image's labels and layers from an OCI layout directory, an
//! OCI archive, or the `dir:` layout skopeo writes when it pulls a seed.
//!
//! The three documents involved (index, manifest, config) are read by hand
//! into the few fields sprout needs rather than through a full OCI model
//! crate: it keeps docker media types working alongside OCI ones, and every
//! blob's digest and size is checked before it is trusted.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

use super::io::{Compression, Digest, Span};

/// The OCI annotation that holds a tag in an image layout's index.
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Index, manifest and config documents are small; anything bigger is not
/// an image layout.
const MAX_DOCUMENT: u64 = 4 << 20;

/// An image: its labels and its layers, bottom first.
#[derive(Debug, Clone)]
pub struct Image {
    pub labels: BTreeMap<String, String>,
    pub layers: Vec<Layer>,
}

#[derive(Debug, Clone)]
pub struct Layer {
    pub digest: Digest,
    pub span: Span,
    pub compression: Compression,
}

impl Image {
    /// The bytes the image's layers take.
    pub fn size(&self) -> u64 {
        self.layers
            .iter()
            .fold(0u64, |sum, l| sum.saturating_add(l.span.len))
    }
}

/// Where the blobs of one layout are.
enum Store {
    OciDir(PathBuf),
    /// Members of an OCI archive, by name, as byte ranges of the archive.
    Archive {
        file: PathBuf,
        members: HashMap<String, Span>,
    },
    SkopeoDir(PathBuf),
}

impl Store {
    fn file(&self, name: &str) -> Result<Span> {
        match self {
            Self::OciDir(d) | Self::SkopeoDir(d) => {
                let p = d.join(name);
                if p.symlink_metadata().is_err() {
                    bail!("{} is missing", p.display());
                }
                // Anything but a regular file is named for what it is.
                Span::whole(&p)
            }
            Self::Archive { file, members } => members
                .get(name)
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("{} has no member {name}", file.display())),
        }
    }

    fn blob(&self, digest: &Digest) -> Result<Span> {
        match self {
            Self::OciDir(_) | Self::Archive { .. } => {
                self.file(&format!("blobs/sha256/{}", digest.hex()))
            }
            Self::SkopeoDir(_) => self.file(digest.hex()),
        }
    }

    /// A blob as described, its size checked.
    fn described(&self, d: &Descriptor) -> Result<(Digest, Span)> {
        let digest = Digest::parse(&d.digest)?;
        let span = self.blob(&digest)?;
        if span.len != d.size {
            bail!(
                "blob {digest} is {} bytes but its descriptor says {}; the image is truncated or corrupt",
                span.len,
                d.size
            );
        }
        Ok((digest, span))
    }

    /// A small JSON document from a blob, its digest checked.
    fn document(&self, d: &Descriptor) -> Result<Value> {
        let (digest, span) = self.described(d)?;
        let bytes = span.read_all(MAX_DOCUMENT)?;
        if Digest::of(&bytes) != digest {
            bail!("blob {digest} does not match its digest; the image is corrupt");
        }
        serde_json::from_slice(&bytes).with_context(|| format!("parsing blob {digest} as JSON"))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// Opens `oci:DIR[:TAG]`.
pub fn open_oci_dir(dir: &Path, tag: Option<&str>) -> Result<Image> {
    let what = format!("oci:{}", dir.display());
    if !dir.join("oci-layout").is_file() {
        bail!(
            "{} is not an OCI image layout (it has no oci-layout file); for a directory holding \
             a mounted seed, pass the directory without oci:",
            dir.display()
        );
    }
    let store = Store::OciDir(dir.to_path_buf());
    from_index(&store, tag, &what)
}

/// Opens `oci-archive:FILE[:TAG]` in place: the archive is indexed, not
/// unpacked, and blobs are read as byte ranges of it.
pub fn open_oci_archive(file: &Path, tag: Option<&str>) -> Result<Image> {
    let what = format!("oci-archive:{}", file.display());
    let whole = Span::whole(file)?;
    let mut archive = tar::Archive::new(whole.open()?);
    let mut members = HashMap::new();
    for (seen, entry) in archive
        .entries_with_seek()
        .with_context(|| format!("reading {what}"))?
        .enumerate()
    {
        let entry = match entry {
            Ok(e) => e,
            // The tar crate's words for a non-tar file ("numeric field was
            // not a number") say nothing to someone who passed a wrong file.
            Err(e) if seen == 0 => bail!(
                "{} is not a tar archive ({e}); an oci-archive: seed is the file \
                 `skopeo copy SRC oci-archive:FILE` writes",
                file.display()
            ),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("reading {what} as a tar archive: it is corrupt or truncated after {seen} members")
                });
            }
        };
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().with_context(|| format!("reading {what}"))?;
        let name = path.to_string_lossy().trim_start_matches("./").to_string();
        let span = whole.sub(entry.raw_file_position(), entry.size())?;
        members.insert(name, span);
    }
    if !members.contains_key("oci-layout") {
        bail!(
            "{} is not an OCI archive (it has no oci-layout member)",
            file.display()
        );
    }
    let store = Store::Archive {
        file: file.to_path_buf(),
        members,
    };
    from_index(&store, tag, &what)
}

/// Opens the `dir:` layout `skopeo copy` writes: `manifest.json` and blobs
/// named by their hex digest.
pub fn open_skopeo_dir(dir: &Path) -> Result<Image> {
    let store = Store::SkopeoDir(dir.to_path_buf());
    let bytes = store.file("manifest.json")?.read_all(MAX_DOCUMENT)?;
    let manifest: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing {}/manifest.json", dir.display()))?;
    from_manifest(&store, manifest, &format!("dir:{}", dir.display()))
}

fn from_index(store: &Store, tag: Option<&str>, what: &str) -> Result<Image> {
    let bytes = store.file("index.json")?.read_all(MAX_DOCUMENT)?;
    let index: Index =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing index.json of {what}"))?;
    let tags = || {
        let t: Vec<&str> = index
            .manifests
            .iter()
            .filter_map(|m| m.annotations.get(REF_NAME).map(String::as_str))
            .collect();
        if t.is_empty() {
            "none".to_string()
        } else {
            t.join(", ")
        }
    };
    let chosen = match tag {
        Some(t) => index
            .manifests
            .iter()
            .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(t))
            .ok_or_else(|| {
                anyhow::anyhow!("{what} has no image tagged {t:?} (tags: {})", tags())
            })?,
        None => match index.manifests.as_slice() {
            [one] => one,
            [] => bail!("{what} holds no image"),
            _ => bail!(
                "{what} holds {} images; name one as {what}:TAG (tags: {})",
                index.manifests.len(),
                tags()
            ),
        },
    };
    let doc = store.document(chosen)?;
    from_manifest(store, doc, what)
}

/// A manifest, or an index of per-platform manifests (then the host's).
fn from_manifest(store: &Store, doc: Value, what: &str) -> Result<Image> {
    let doc = if doc.get("manifests").is_some() && doc.get("config").is_none() {
        let list: Index =
            serde_json::from_value(doc).with_context(|| format!("parsing the index of {what}"))?;
        let arch = go_arch();
        let pick = list
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == arch)
            })
            .or(match list.manifests.as_slice() {
                [one] => Some(one),
                _ => None,
            })
            .ok_or_else(|| anyhow::anyhow!("{what} has no image for linux/{arch}"))?;
        if !pick.media_type.is_empty() && pick.media_type.contains("index") {
            bail!("{what}: nested image indexes are not supported");
        }
        store.document(pick)?
    } else {
        doc
    };
    let manifest: Manifest = serde_json::from_value(doc)
        .with_context(|| format!("parsing the image manifest of {what}"))?;
    let config = store.document(&manifest.config)?;
    let labels = config
        .pointer("/config/Labels")
        .filter(|v| !v.is_null())
        .map(|v| serde_json::from_value::<BTreeMap<String, String>>(v.clone()))
        .transpose()
        .with_context(|| format!("reading the labels of {what}"))?
        .unwrap_or_default();
    let mut layers = Vec::new();
    for d in &manifest.layers {
        let (digest, span) = store.described(d)?;
        let compression = Compression::sniff(&span)?;
        if compression == Compression::Zstd {
            bail!(
                "layer {digest} of {what} is zstd-compressed, which sprout does not read; \
                 recompress the seed with `skopeo copy --dest-compress-format gzip SRC oci-archive:seed.tar` \
                 or serve it from a registry as docker://"
            );
        }
        layers.push(Layer {
            digest,
            span,
            compression,
        });
    }
    if layers.is_empty() {
        bail!("{what} has no layers; it is not a seed image");
    }
    Ok(Image { labels, layers })
}

/// The host architecture in the spelling image indexes use.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
