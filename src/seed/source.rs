//! One way to reach a seed's root files, whatever the seed came from.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::files;
use super::layer::{self, LayerIndex, MAX_SMALL_FILE};
use super::oci::{self, Image};
use super::pull::{self, PullOptions, Pulled};
use super::reference::SeedRef;
use crate::host::input::{InputKind, open_input, read_input};

const NOT_PULLED: &str = "the seed is not pulled yet (only its manifest and labels were read)";

/// What a root file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub size: u64,
    pub mode: u32,
    /// `None` for a regular file, else what it is instead.
    pub odd_type: Option<String>,
}

#[derive(Debug)]
pub enum Source {
    /// A directory holding the seed's files (a mounted image).
    Dir(PathBuf),
    Image {
        image: Image,
        index: LayerIndex,
        /// Keeps a pulled copy alive as long as the source.
        _pulled: Option<Pulled>,
    },
    /// A registry image known by its manifest and config only: labels and
    /// sizes, no files (`Seed::open_remote`).
    Remote(super::remote::RemoteImage),
}

impl Source {
    pub fn open(r: &SeedRef, pull_opts: &PullOptions) -> Result<Self> {
        let (image, pulled) = match r {
            SeedRef::Dir(d) => return Ok(Self::Dir(d.clone())),
            SeedRef::OciDir { dir, tag } => (oci::open_oci_dir(dir, tag.as_deref())?, None),
            SeedRef::OciArchive { file, tag } => {
                (oci::open_oci_archive(file, tag.as_deref())?, None)
            }
            SeedRef::Docker(reference) => {
                let p = pull::pull(reference, pull_opts)?;
                (oci::open_skopeo_dir(&p.layout())?, Some(p))
            }
        };
        let index = layer::index(&image, &files::is_small)
            .with_context(|| format!("reading the layers of {r}"))?;
        Ok(Self::Image {
            image,
            index,
            _pulled: pulled,
        })
    }

    /// The image labels; `None` for a directory, which has none.
    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Self::Dir(_) => None,
            Self::Image { image, .. } => Some(&image.labels),
            Self::Remote(r) => Some(&r.labels),
        }
    }

    /// The bytes the image's layers take; `None` for a directory.
    pub fn image_size(&self) -> Option<u64> {
        match self {
            Self::Dir(_) => None,
            Self::Image { image, .. } => Some(image.size()),
            Self::Remote(r) => Some(r.layers_bytes),
        }
    }

    /// Every root file name.
    pub fn names(&self) -> Result<Vec<String>> {
        match self {
            Self::Dir(d) => {
                let mut names = Vec::new();
                for e in std::fs::read_dir(d).with_context(|| format!("listing {}", d.display()))? {
                    let e = e.with_context(|| format!("listing {}", d.display()))?;
                    names.push(e.file_name().to_string_lossy().into_owned());
                }
                names.sort();
                Ok(names)
            }
            Self::Image { index, .. } => Ok(index.entries.keys().cloned().collect()),
            Self::Remote(_) => Ok(Vec::new()),
        }
    }

    pub fn info(&self, name: &str) -> Result<Option<FileInfo>> {
        match self {
            Self::Dir(d) => {
                let p = d.join(name);
                let m = match p.symlink_metadata() {
                    Ok(m) => m,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(e).with_context(|| format!("reading {}", p.display()));
                    }
                };
                let t = m.file_type();
                let odd_type = if t.is_file() {
                    None
                } else if t.is_dir() {
                    Some("directory".to_string())
                } else if t.is_symlink() {
                    Some("symbolic link".to_string())
                } else {
                    Some("special file".to_string())
                };
                Ok(Some(FileInfo {
                    size: m.len(),
                    mode: m.permissions().mode(),
                    odd_type,
                }))
            }
            Self::Image { index, .. } => Ok(index.entries.get(name).map(|e| FileInfo {
                size: e.size,
                mode: e.mode,
                odd_type: e.odd_type.clone(),
            })),
            Self::Remote(_) => Ok(None),
        }
    }

    /// A small root file's bytes; `None` when it is absent.
    pub fn read_small(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some(info) = self.info(name)? else {
            return Ok(None);
        };
        if let Some(t) = &info.odd_type {
            bail!("{name} is a {t}, not a regular file");
        }
        if info.size > MAX_SMALL_FILE {
            bail!(
                "{name} is {} bytes; seed metadata files are expected below {MAX_SMALL_FILE} bytes",
                info.size
            );
        }
        match self {
            Self::Dir(d) => Ok(Some(read_input(&d.join(name), InputKind::SeedMetadata)?)),
            Self::Image { index, .. } => Ok(index.small.get(name).cloned()),
            Self::Remote(_) => Ok(None),
        }
    }

    /// A reader of a root file's bytes.
    pub fn open_file(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        match self {
            Self::Dir(d) => Ok(Box::new(open_no_follow(&d.join(name))?)),
            Self::Image { image, index, .. } => {
                let e = index
                    .entries
                    .get(name)
                    .ok_or_else(|| anyhow::anyhow!("the seed has no {name}"))?;
                if let Some(t) = &e.odd_type {
                    bail!("{name} is a {t}, not a regular file");
                }
                layer::open(image, e)
            }
            Self::Remote(_) => bail!("{name}: {NOT_PULLED}"),
        }
    }

    /// Reads each of `names` once, in one pass over the image when it is
    /// one, checking layer digests on the way.
    pub fn visit(
        &self,
        names: &[&str],
        f: &mut dyn FnMut(&str, &mut dyn Read) -> Result<()>,
    ) -> Result<()> {
        match self {
            Self::Dir(_) => {
                for name in names {
                    if matches!(self.info(name)?, Some(FileInfo { odd_type: None, .. })) {
                        f(name, &mut self.open_file(name)?)?;
                    }
                }
                Ok(())
            }
            Self::Image { image, index, .. } => layer::visit(image, index, names, f),
            Self::Remote(_) => bail!("{}: {NOT_PULLED}", names.join(", ")),
        }
    }
}

/// Opens a root file of a mounted seed: not through a symlink in its last
/// component (a mounted seed must not make sprout read some other file on
/// the host), never blocking on a FIFO, regular files only.
fn open_no_follow(p: &Path) -> Result<File> {
    Ok(open_input(p, InputKind::SeedRootFile)?.0)
}
