//! Writing the configuration ISO (`imagebasedconfig.iso`).
//!
//! The image is a plain ISO9660 volume (2048-byte logical blocks, no El
//! Torito, no partition table) with Rock Ridge on the primary tree, so Linux
//! and xorriso see the exact, case-preserved names, and a Joliet tree for
//! readers that prefer it. The heavy lifting is done by `hadris-iso`; this
//! module owns the in-memory tree, path validation and the volume label.

use std::collections::BTreeMap;
use std::io::{Cursor, Seek, SeekFrom, Write};

use anyhow::{Context, bail, ensure};
use hadris_iso::joliet::JolietLevel;
use hadris_iso::read::PathSeparator;
use hadris_iso::rrip::RripOptions;
use hadris_iso::write::options::{BaseIsoLevel, CreationFeatures, IsoFormatOptions};
use hadris_iso::write::{InputEntry, InputMetadata, InputTree, IsoImageWriter};

pub use super::timestamps::IsoTime;
use super::timestamps::pin;

/// Logical block size of the image.
const SECTOR_SIZE_BYTES: usize = 2048;
/// [`SECTOR_SIZE_BYTES`] for offset arithmetic.
const SECTOR_SIZE: u64 = SECTOR_SIZE_BYTES as u64;
/// Byte offset of the primary volume descriptor (logical sector 16).
const PVD_OFFSET: u64 = 16 * SECTOR_SIZE;
/// Offset of the volume identifier inside a volume descriptor (ECMA-119 8.4.6).
const VOLUME_ID_OFFSET: u64 = 40;
/// Length of the volume identifier field.
const VOLUME_ID_LEN: usize = 32;
/// Offset of the both-endian volume space size inside the PVD (ECMA-119 8.4.8).
const VOLUME_SPACE_OFFSET: u64 = 80;
/// Longest file name accepted; Rock Ridge readers (Linux, xorriso) cap at 255.
const MAX_NAME_LEN: usize = 255;
/// Deepest directory nesting ISO9660 allows below the root (ECMA-119 6.8.2.1:
/// eight levels counting the root).
const MAX_DIR_DEPTH: usize = 7;
/// Longest directory path (without a leading '/') ECMA-119 allows.
const MAX_DIR_PATH_LEN: usize = 255;

/// Mode bits given to every directory in the image.
const DIR_MODE: u32 = 0o755;
/// Mode bits given to every regular file in the image.
const FILE_MODE: u32 = 0o644;

/// A tree of directories and regular files to put in an image, paths relative to the root with '/' separators.
#[derive(Debug, Default, Clone)]
pub struct IsoTree {
    root: Dir,
}

#[derive(Debug, Default, Clone)]
struct Dir {
    entries: BTreeMap<String, Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Dir(Dir),
    File(Vec<u8>),
}

impl IsoTree {
    /// An empty tree (only the root directory).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an (possibly empty) directory; parents are implied.
    ///
    /// Adding a directory that already exists is not an error. A single
    /// trailing '/' is accepted.
    ///
    /// # Errors
    ///
    /// When the path is empty or absolute, has an empty, "." or ".."
    /// component, a component over 255 bytes, or runs through a file.
    pub fn add_dir(&mut self, path: &str) -> anyhow::Result<()> {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        split_path(trimmed)
            .and_then(|components| self.root.dir_mut(&components).map(|_| ()))
            .with_context(|| format!("adding directory {path:?} to the ISO tree"))
    }

    /// Adds a regular file; parent directories are implied. Errors on duplicate path, empty component, "..", absolute path.
    ///
    /// # Errors
    ///
    /// As [`IsoTree::add_dir`], and when the path has already been added.
    pub fn add_file(&mut self, path: &str, contents: Vec<u8>) -> anyhow::Result<()> {
        self.insert_file(path, contents)
            .with_context(|| format!("adding file {path:?} to the ISO tree"))
    }

    fn insert_file(&mut self, path: &str, contents: Vec<u8>) -> anyhow::Result<()> {
        let components = split_path(path)?;
        let Some((name, parents)) = components.split_last() else {
            bail!("path is empty");
        };
        // Parents only get created when none of them is a file, and a new
        // parent cannot already hold `name`, so a failure leaves no trace.
        let dir = self.root.dir_mut(parents)?;
        match dir.entries.get(*name) {
            Some(Node::File(_)) => bail!("a file with this path has already been added"),
            Some(Node::Dir(_)) => bail!("a directory with this path has already been added"),
            None => {}
        }
        dir.entries.insert((*name).to_owned(), Node::File(contents));
        Ok(())
    }
}

impl Dir {
    /// Walks (creating as needed) the directory at `components`.
    fn dir_mut(&mut self, components: &[&str]) -> anyhow::Result<&mut Dir> {
        let mut dir = self;
        for (depth, name) in components.iter().enumerate() {
            let node = dir
                .entries
                .entry((*name).to_owned())
                .or_insert_with(|| Node::Dir(Dir::default()));
            dir = match node {
                Node::Dir(child) => child,
                Node::File(_) => bail!(
                    "{:?} is a file, not a directory",
                    components[..=depth].join("/")
                ),
            };
        }
        Ok(dir)
    }

    /// Checks the ISO9660 directory depth and path length limits.
    ///
    /// hadris can work around them with Rock Ridge directory relocation, but
    /// 2.5.0 also leaks the `rr_moved` directory (with `RRD000001`-style
    /// names) into the Joliet tree and leaves `rr_moved` visible in the Rock
    /// Ridge one, so relocation is off and deep trees are refused instead.
    fn check_limits(&self, prefix: &str, depth: usize) -> anyhow::Result<()> {
        for (name, node) in &self.entries {
            let Node::Dir(dir) = node else { continue };
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            ensure!(
                depth < MAX_DIR_DEPTH,
                "directory {path:?} is nested deeper than the {MAX_DIR_DEPTH} levels ISO9660 allows"
            );
            ensure!(
                path.len() <= MAX_DIR_PATH_LEN,
                "directory path {path:?} is longer than the {MAX_DIR_PATH_LEN} bytes ISO9660 allows"
            );
            dir.check_limits(&path, depth + 1)?;
        }
        Ok(())
    }

    fn to_entries(&self) -> Vec<InputEntry> {
        self.entries
            .iter()
            .map(|(name, node)| match node {
                Node::Dir(dir) => InputEntry::directory(name.clone(), dir.to_entries())
                    .with_metadata(metadata(DIR_MODE)),
                Node::File(contents) => InputEntry::file(name.clone(), contents.clone())
                    .with_metadata(metadata(FILE_MODE)),
            })
            .collect()
    }
}

fn metadata(mode: u32) -> InputMetadata {
    InputMetadata {
        mode: Some(mode),
        uid: Some(0),
        gid: Some(0),
        ..InputMetadata::default()
    }
}

/// Splits a relative '/'-separated path into validated components.
fn split_path(path: &str) -> anyhow::Result<Vec<&str>> {
    ensure!(!path.is_empty(), "path is empty");
    ensure!(
        !path.starts_with('/'),
        "path must be relative, not absolute"
    );
    path.split('/')
        .map(|name| {
            ensure!(!name.is_empty(), "path has an empty component");
            ensure!(
                name != "." && name != "..",
                "path component {name:?} is not allowed"
            );
            ensure!(
                !name.contains('\0'),
                "path component {name:?} contains a NUL byte"
            );
            ensure!(
                name.len() <= MAX_NAME_LEN,
                "path component {name:?} is longer than {MAX_NAME_LEN} bytes"
            );
            Ok(name)
        })
        .collect()
}

/// Checks a volume label: 1 to 32 printable ASCII characters, kept as given.
fn validate_volume_id(volume_id: &str) -> anyhow::Result<()> {
    ensure!(!volume_id.is_empty(), "volume identifier is empty");
    ensure!(
        volume_id.len() <= VOLUME_ID_LEN,
        "volume identifier {volume_id:?} is longer than {VOLUME_ID_LEN} bytes"
    );
    ensure!(
        volume_id.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
        "volume identifier {volume_id:?} must be printable ASCII"
    );
    Ok(())
}

/// Writes an ISO9660 image with Rock Ridge (long, lower-case names kept exactly) and Joliet, logical block 2048,
/// the given volume identifier (e.g. "cluster-config"), no El Torito, into `out` (starting at offset 0; `out` is truncated/extended as needed).
///
/// The label is stored exactly as given (not upper-cased), so blkid reports
/// `LABEL="cluster-config"`. `out` only needs to be writable.
///
/// # Errors
///
/// When the label is empty, over 32 bytes or not printable ASCII; when a
/// directory is nested more than 7 levels below the root or its path exceeds
/// 255 bytes (ISO9660 limits); or when building or writing the image fails.
pub fn write_iso(volume_id: &str, tree: &IsoTree, out: &mut std::fs::File) -> anyhow::Result<()> {
    // Every date 1970-01-01: callers that care pass their own to build_image.
    let image = build_image(volume_id, tree, IsoTime::from_unix(0)?)?;
    out.set_len(0).context("truncating the output file")?;
    out.seek(SeekFrom::Start(0))
        .context("seeking to the start of the output file")?;
    out.write_all(&image)
        .context("writing the image to the output file")?;
    out.flush().context("flushing the output file")?;
    Ok(())
}

/// The image [`write_iso`] writes, in memory, every date in it (volume
/// descriptors, directory records, Rock Ridge `TF`) set to `time`: the same
/// tree and time give the same bytes.
///
/// # Errors
///
/// As [`write_iso`].
pub fn build_image(volume_id: &str, tree: &IsoTree, time: IsoTime) -> anyhow::Result<Vec<u8>> {
    validate_volume_id(volume_id).context("checking the volume identifier")?;
    tree.root
        .check_limits("", 0)
        .context("checking the ISO tree against ISO9660 limits")?;

    let input = InputTree::new(PathSeparator::ForwardSlash, tree.root.to_entries());
    let options = IsoFormatOptions {
        volume_name: volume_id.to_owned(),
        system_id: Some("LINUX".to_owned()),
        volume_set_id: None,
        publisher_id: None,
        preparer_id: None,
        application_id: Some("SPROUT".to_owned()),
        sector_size: SECTOR_SIZE_BYTES,
        path_separator: PathSeparator::ForwardSlash,
        // Without strict_charset hadris stores identifiers byte-for-byte; with
        // it, it would upper-case the label (d-characters), which breaks
        // `LABEL=cluster-config` lookups by the lifecycle agent.
        strict_charset: false,
        features: CreationFeatures {
            // The ISO9660 names are only a fallback for readers without
            // Rock Ridge or Joliet; real names live in RR NM and Joliet.
            filenames: BaseIsoLevel::Level2 {
                supports_lowercase: false,
                supports_rrip: true,
            },
            long_filenames: false,
            joliet: Some(JolietLevel::Level3),
            rock_ridge: Some(RripOptions {
                relocate_deep_dirs: false,
                ..RripOptions::default()
            }),
            el_torito: None,
            hybrid_boot: None,
        },
    };

    // hadris reads its volume descriptors back to patch them, so it needs a
    // readable stream; building in memory lets `out` be a write-only handle
    // (e.g. from `File::create`). Configuration ISOs are small and the tree's
    // contents are in memory already.
    let image = IsoImageWriter::create(Cursor::new(Vec::new()), input, options)
        .context("building the ISO9660 image with hadris-iso")?
        .into_inner();
    let mut image = finish_image(volume_id, image)?;
    pin(&mut image, time).context("pinning the dates of the ISO image")?;
    Ok(image)
}

/// Pins the label bytes and the length of the image hadris has written.
fn finish_image(volume_id: &str, mut image: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let field = |offset: u64, len: usize| {
        let start = usize::try_from(PVD_OFFSET + offset).ok()?;
        Some(start..start.checked_add(len)?)
    };
    let label_range = field(VOLUME_ID_OFFSET, VOLUME_ID_LEN)
        .filter(|range| range.end <= image.len())
        .context("checking the built image: it has no primary volume descriptor")?;
    let space_range = field(VOLUME_SPACE_OFFSET, 4)
        .filter(|range| range.end <= image.len())
        .context("checking the built image: it has no primary volume descriptor")?;

    // hadris 2.5.0 already writes the identifier as-is when `strict_charset`
    // is false. The label is what the lifecycle agent and blkid look the ISO
    // up by (`LABEL=cluster-config`, lower case, which is not d-characters),
    // so write the PVD field ourselves rather than depend on that option's
    // behaviour staying the same. (The Joliet descriptor carries the same
    // label in UTF-16, which hadris never case-folds.)
    let mut label = [b' '; VOLUME_ID_LEN];
    label[..volume_id.len()].copy_from_slice(volume_id.as_bytes());
    image[label_range].copy_from_slice(&label);

    // The image must be exactly the recorded volume size.
    let mut space = [0u8; 4];
    space.copy_from_slice(&image[space_range]);
    let sectors = u64::from(u32::from_le_bytes(space));
    ensure!(
        sectors > 17,
        "written image records an implausible size of {sectors} sectors"
    );
    let len = usize::try_from(sectors * SECTOR_SIZE).context("checking the built image size")?;
    image.resize(len, 0);
    Ok(image)
}

#[cfg(test)]
#[path = "writer_tests.rs"]
mod tests;
