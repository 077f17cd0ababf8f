//! Writing a one-layer image as an OCI layout and as an OCI archive, the
//! way `podman build` + `skopeo copy` leave a seed: a single layer made
//! from scratch holding the seed's root files, and the two LCA labels.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::hash::{Sha256, hex, sha256};
use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use serde_json::json;

/// How the layer blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// A plain tar, as `skopeo copy --dest-decompress` leaves it.
    None,
    /// gzip, as registries serve layers.
    Gzip,
}

/// Counts and hashes what is written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A blob written into `layout/blobs/sha256/`: (digest, size).
fn write_blob(layout: &Path, bytes: &[u8]) -> Result<(String, u64)> {
    let hexd = hex(&sha256(bytes));
    let p = layout.join("blobs/sha256").join(&hexd);
    fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
    Ok((format!("sha256:{hexd}"), bytes.len() as u64))
}

/// Writes an OCI layout at `layout` holding one image tagged `tag`, whose
/// single layer is the regular files of `root` (not recursive: a seed is
/// flat), with `labels`. Returns the layer's digest.
pub fn write_layout(
    root: &Path,
    layout: &Path,
    tag: &str,
    labels: &BTreeMap<String, String>,
    compression: LayerCompression,
) -> Result<String> {
    let config = ImageConfig {
        labels: labels.clone(),
        ..ImageConfig::default()
    };
    write_image(root, Layer::Flat, layout, tag, &config, compression)
}

/// What a layer holds of its root directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The regular files at the top (a seed).
    Flat,
    /// The whole tree, as a root file system (an application image).
    Tree,
}

/// The runtime part of an image's configuration.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    pub labels: BTreeMap<String, String>,
    /// `KEY=VALUE` each.
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
}

/// Writes an OCI layout at `layout` holding one image tagged `tag` whose
/// single layer is `root` (as `layer` says) and whose configuration is
/// `config`. Returns the layer's digest.
pub fn write_image(
    root: &Path,
    layer: Layer,
    layout: &Path,
    tag: &str,
    image: &ImageConfig,
    compression: LayerCompression,
) -> Result<String> {
    fs::create_dir_all(layout.join("blobs/sha256"))
        .with_context(|| format!("creating {}", layout.display()))?;
    let tmp = layout.join("blobs/sha256/.layer.tmp");
    let out = HashingWriter {
        inner: BufWriter::new(
            File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
        ),
        hasher: Sha256::new(),
        count: 0,
    };
    let (diff_id, blob) = match compression {
        LayerCompression::None => {
            let (diff, out) = write_layer_tar(root, layer, out)?;
            (diff, out)
        }
        LayerCompression::Gzip => {
            let gz = GzEncoder::new(out, flate2::Compression::fast());
            let (diff, gz) = write_layer_tar(root, layer, gz)?;
            (diff, gz.finish().context("finishing the gzip layer")?)
        }
    };
    let HashingWriter {
        inner,
        hasher,
        count: size,
    } = blob;
    inner
        .into_inner()
        .map_err(|e| e.into_error())
        .context("flushing the layer")?;
    let layer_digest = format!("sha256:{}", hex(&hasher.finish()));
    fs::rename(&tmp, layout.join("blobs/sha256").join(&layer_digest[7..]))
        .context("naming the layer blob")?;

    let mut runtime = json!({ "Labels": image.labels });
    if !image.env.is_empty() {
        runtime["Env"] = json!(image.env);
    }
    if !image.entrypoint.is_empty() {
        runtime["Entrypoint"] = json!(image.entrypoint);
    }
    let config = json!({
        "created": "2024-06-01T00:00:00Z",
        "architecture": go_arch(),
        "os": "linux",
        "config": runtime,
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": "2024-06-01T00:00:00Z", "created_by": "COPY . /" }],
    });
    let (config_digest, config_size) = write_blob(layout, &serde_json::to_vec(&config)?)?;
    let layer_type = match compression {
        LayerCompression::None => "application/vnd.oci.image.layer.v1.tar",
        LayerCompression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{ "mediaType": layer_type, "digest": layer_digest, "size": size }],
    });
    let (manifest_digest, manifest_size) = write_blob(layout, &serde_json::to_vec(&manifest)?)?;
    // Other tags already in the layout stay, as with skopeo.
    let mut manifests: Vec<serde_json::Value> = fs::read(layout.join("index.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("manifests").and_then(|m| m.as_array()).cloned())
        .unwrap_or_default();
    manifests.retain(|m| {
        m.pointer("/annotations/org.opencontainers.image.ref.name") != Some(&json!(tag))
    });
    manifests.push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": manifest_size,
        "annotations": { "org.opencontainers.image.ref.name": tag },
    }));
    let index = json!({ "schemaVersion": 2, "manifests": manifests });
    fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)
        .context("writing index.json")?;
    fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .context("writing oci-layout")?;
    Ok(layer_digest)
}

/// The layer tar of `root`; returns its diff ID and the writer.
fn write_layer_tar<W: Write>(root: &Path, layer: Layer, out: W) -> Result<(String, W)> {
    let hashing = HashingWriter {
        inner: out,
        hasher: Sha256::new(),
        count: 0,
    };
    let mut b = tar::Builder::new(hashing);
    b.mode(tar::HeaderMode::Deterministic);
    if layer == Layer::Tree {
        b.follow_symlinks(false);
        b.append_dir_all(".", root)
            .with_context(|| format!("adding {} to the layer", root.display()))?;
        let hashing = b.into_inner().context("finishing the layer")?;
        return Ok((
            format!("sha256:{}", hex(&hashing.hasher.finish())),
            hashing.inner,
        ));
    }
    let mut names: Vec<PathBuf> = fs::read_dir(root)
        .with_context(|| format!("listing {}", root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    for p in names {
        let name = p.file_name().map(PathBuf::from).unwrap_or_default();
        b.append_path_with_name(&p, &name)
            .with_context(|| format!("adding {} to the layer", p.display()))?;
    }
    let hashing = b.into_inner().context("finishing the layer")?;
    Ok((
        format!("sha256:{}", hex(&hashing.hasher.finish())),
        hashing.inner,
    ))
}

/// Writes the OCI layout `layout` as the OCI archive `archive` (a plain tar
/// of the layout, as `skopeo copy … oci-archive:` makes).
pub fn write_archive(layout: &Path, archive: &Path) -> Result<()> {
    let f = File::create(archive).with_context(|| format!("creating {}", archive.display()))?;
    let mut b = tar::Builder::new(BufWriter::new(f));
    b.mode(tar::HeaderMode::Deterministic);
    for name in ["oci-layout", "index.json"] {
        b.append_path_with_name(layout.join(name), name)
            .with_context(|| format!("adding {name}"))?;
    }
    let mut blobs: Vec<PathBuf> = fs::read_dir(layout.join("blobs/sha256"))
        .context("listing blobs")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    blobs.sort();
    for p in blobs {
        let name = Path::new("blobs/sha256").join(p.file_name().unwrap_or_default());
        b.append_path_with_name(&p, &name)
            .with_context(|| format!("adding {}", name.display()))?;
    }
    b.into_inner()
        .context("finishing the archive")?
        .flush()
        .context("writing the archive")
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The digest of the manifest tagged `tag` in the layout at `layout`, as
/// a registry names the image after a push that keeps digests.
pub fn manifest_digest(layout: &Path, tag: &str) -> Result<String> {
    let index: serde_json::Value = serde_json::from_slice(
        &fs::read(layout.join("index.json"))
            .with_context(|| format!("reading {}/index.json", layout.display()))?,
    )?;
    index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m.pointer("/annotations/org.opencontainers.image.ref.name") == Some(&json!(tag)))
        .and_then(|m| m["digest"].as_str())
        .map(str::to_string)
        .with_context(|| format!("{} has no image tagged {tag}", layout.display()))
}
