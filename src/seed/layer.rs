//! The seed's files inside an image's layers.
//!
//! A seed is one layer holding a dozen files at its root, some of them
//! several GiB. Nothing is unpacked: an index records where each root file's
//! bytes start in its layer. An uncompressed layer (what sprout asks skopeo
//! for when pulling) is then read by seeking straight to a member; a gzip
//! layer is decompressed from its start and the bytes before the member are
//! skipped, which costs CPU but neither memory nor a temporary copy.
//! Later layers win over earlier ones and whiteouts delete, as in any image.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};

use anyhow::{Context, Result, bail};
use flate2::read::MultiGzDecoder;

use super::io::{Compression, HashingReader};
use super::oci::{Image, Layer};

/// Root files read whole while indexing are at most this big; seed
/// metadata files are a few KiB.
pub const MAX_SMALL_FILE: u64 = 16 << 20;

/// One file at the root of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootEntry {
    pub layer: usize,
    /// Where the file's bytes start in the (decompressed) layer stream.
    pub offset: u64,
    pub size: u64,
    pub mode: u32,
    /// `None` for a regular file, else the tar type (symlink, directory…).
    pub odd_type: Option<String>,
}

/// The root files of an image, with the small ones already read.
#[derive(Debug, Default)]
pub struct LayerIndex {
    pub entries: BTreeMap<String, RootEntry>,
    pub small: BTreeMap<String, Vec<u8>>,
}

/// `foo`, `./foo` and `/foo` all name the root file `foo`; `None` for the
/// root itself.
fn root_name(raw: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(raw);
    let parts: Vec<&str> = s
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    match parts.as_slice() {
        [] => None,
        parts => Some(parts.join("/")),
    }
}

/// Builds the index in one pass per layer. `want_small` says which root
/// files to read whole while passing by.
pub fn index(image: &Image, want_small: &dyn Fn(&str) -> bool) -> Result<LayerIndex> {
    let mut idx = LayerIndex::default();
    for (n, layer) in image.layers.iter().enumerate() {
        let what = format!("layer {}", layer.digest);
        match layer.compression {
            Compression::None => {
                let mut ar = tar::Archive::new(layer.span.open()?);
                let entries = ar
                    .entries_with_seek()
                    .with_context(|| format!("reading {what}"))?;
                index_entries(entries, n, &mut idx, want_small, &what)?;
            }
            _ => {
                let mut ar = tar::Archive::new(gunzip(layer.span.open()?));
                let entries = ar.entries().with_context(|| format!("reading {what}"))?;
                index_entries(entries, n, &mut idx, want_small, &what)?;
            }
        }
    }
    Ok(idx)
}

fn index_entries<'a, R: 'a + Read>(
    entries: impl Iterator<Item = io::Result<tar::Entry<'a, R>>>,
    layer: usize,
    idx: &mut LayerIndex,
    want_small: &dyn Fn(&str) -> bool,
    what: &str,
) -> Result<()> {
    for entry in entries {
        let mut entry = entry.with_context(|| format!("reading {what} as a tar archive"))?;
        let Some(name) = root_name(&entry.path_bytes()) else {
            continue;
        };
        if let Some(gone) = name.strip_prefix(".wh.") {
            if gone == ".wh..opq" {
                idx.entries.clear();
                idx.small.clear();
            } else {
                idx.entries.remove(gone);
                idx.small.remove(gone);
            }
            continue;
        }
        if name.contains('/') {
            // The seed's files are all at the root; deeper paths are not
            // part of the seed format.
            continue;
        }
        let header = entry.header();
        let kind = header.entry_type();
        let odd_type = (!kind.is_file()).then(|| type_name(kind).to_string());
        let e = RootEntry {
            layer,
            offset: entry.raw_file_position(),
            size: entry.size(),
            mode: header.mode().unwrap_or(0),
            odd_type,
        };
        idx.small.remove(&name);
        if e.odd_type.is_none() && e.size <= MAX_SMALL_FILE && want_small(&name) {
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .with_context(|| format!("reading {name} from {what}"))?;
            idx.small.insert(name.clone(), buf);
        }
        idx.entries.insert(name, e);
    }
    Ok(())
}

/// A human name for a tar entry type.
pub fn type_name(t: tar::EntryType) -> &'static str {
    match t {
        tar::EntryType::Regular | tar::EntryType::Continuous => "regular file",
        tar::EntryType::Directory => "directory",
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        _ => "special entry",
    }
}

fn gunzip<R: Read>(r: R) -> MultiGzDecoder<BufReader<R>> {
    MultiGzDecoder::new(BufReader::with_capacity(256 << 10, r))
}

/// A reader of one root file's bytes.
pub fn open(image: &Image, e: &RootEntry) -> Result<Box<dyn Read + Send>> {
    let layer = image
        .layers
        .get(e.layer)
        .ok_or_else(|| anyhow::anyhow!("layer {} is missing", e.layer))?;
    match layer.compression {
        Compression::None => Ok(Box::new(layer.span.sub(e.offset, e.size)?.open()?)),
        _ => {
            let mut r = gunzip(layer.span.open()?);
            let skipped = io::copy(&mut (&mut r).take(e.offset), &mut io::sink())
                .with_context(|| format!("decompressing layer {}", layer.digest))?;
            if skipped != e.offset {
                bail!("layer {} ended early; it is truncated", layer.digest);
            }
            Ok(Box::new(r.take(e.size)))
        }
    }
}

/// Reads every layer start to end, checking its digest, and calls `f` for
/// each root file named in `names` that the index says is the final one.
/// This is the one pass `seed inspect` makes over a whole image.
pub fn visit(
    image: &Image,
    idx: &LayerIndex,
    names: &[&str],
    f: &mut dyn FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    for (n, layer) in image.layers.iter().enumerate() {
        let mut hashing = HashingReader::new(layer.span.open()?);
        visit_layer(layer, n, idx, names, &mut hashing, f)?;
        let (digest, _) = hashing
            .finish()
            .with_context(|| format!("reading layer {}", layer.digest))?;
        if digest != layer.digest {
            bail!(
                "layer {} does not match its digest (its content hashes to {digest}); the image is corrupt: copy it again",
                layer.digest
            );
        }
    }
    Ok(())
}

fn visit_layer<R: Read>(
    layer: &Layer,
    n: usize,
    idx: &LayerIndex,
    names: &[&str],
    raw: &mut R,
    f: &mut dyn FnMut(&str, &mut dyn Read) -> Result<()>,
) -> Result<()> {
    let stream: Box<dyn Read + '_> = match layer.compression {
        Compression::None => Box::new(raw),
        _ => Box::new(gunzip(raw)),
    };
    let mut ar = tar::Archive::new(stream);
    let what = format!("layer {}", layer.digest);
    for entry in ar.entries().with_context(|| format!("reading {what}"))? {
        let mut entry = entry.with_context(|| format!("reading {what} as a tar archive"))?;
        let Some(name) = root_name(&entry.path_bytes()) else {
            continue;
        };
        let is_final = idx
            .entries
            .get(&name)
            .is_some_and(|e| e.layer == n && e.offset == entry.raw_file_position());
        if is_final && names.contains(&name.as_str()) {
            f(&name, &mut entry)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::io::{Digest, Span};
    use std::path::Path;

    /// A plain tar layer of `(name, content)` files in `dir`.
    fn layer(dir: &Path, name: &str, files: &[(&str, &[u8])]) -> Layer {
        let p = dir.join(name);
        let mut b = tar::Builder::new(std::fs::File::create(&p).unwrap());
        for (n, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, n, *data).unwrap();
        }
        b.into_inner().unwrap();
        let bytes = std::fs::read(&p).unwrap();
        Layer {
            digest: Digest::of(&bytes),
            span: Span::whole(&p).unwrap(),
            compression: Compression::None,
        }
    }

    #[test]
    fn later_layers_win_and_whiteouts_delete() {
        let d = tempfile::tempdir().unwrap();
        let image = Image {
            labels: Default::default(),
            layers: vec![
                layer(
                    d.path(),
                    "l0",
                    &[("./manifest.json", b"old"), ("a.txt", b"a"), ("b", b"b")],
                ),
                layer(
                    d.path(),
                    "l1",
                    &[("manifest.json", b"new"), (".wh.a.txt", b"")],
                ),
            ],
        };
        let idx = index(&image, &|n| n == "manifest.json").unwrap();
        assert_eq!(idx.small["manifest.json"], b"new");
        assert!(!idx.entries.contains_key("a.txt"));
        let mut b = String::new();
        open(&image, &idx.entries["b"])
            .unwrap()
            .read_to_string(&mut b)
            .unwrap();
        assert_eq!(b, "b");
        let mut seen = Vec::new();
        visit(&image, &idx, &["manifest.json", "b"], &mut |n, r| {
            let mut s = String::new();
            r.read_to_string(&mut s)?;
            seen.push(format!("{n}={s}"));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["b=b", "manifest.json=new"]);
    }

    #[test]
    fn a_corrupt_layer_fails_its_digest() {
        let d = tempfile::tempdir().unwrap();
        let mut l = layer(d.path(), "l0", &[("b", b"bbbb")]);
        l.digest = Digest::of(b"something else");
        let image = Image {
            labels: Default::default(),
            layers: vec![l],
        };
        let idx = index(&image, &|_| false).unwrap();
        let e = visit(&image, &idx, &["b"], &mut |_, _| Ok(())).unwrap_err();
        assert!(e.to_string().contains("does not match its digest"), "{e}");
    }

    #[test]
    fn root_names_are_normalised() {
        assert_eq!(
            root_name(b"./manifest.json").as_deref(),
            Some("manifest.json")
        );
        assert_eq!(root_name(b"/var.tgz").as_deref(), Some("var.tgz"));
        assert_eq!(root_name(b"a/b").as_deref(), Some("a/b"));
        assert_eq!(root_name(b"./"), None);
    }
}
