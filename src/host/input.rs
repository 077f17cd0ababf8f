//! Bounded reading of every input sprout is given.
//!
//! Inputs come from users, USB sticks, registries and ISOs, so none is
//! trusted to be what its name says. Every read goes through here: the path
//! is opened with `O_NONBLOCK` (a FIFO cannot hang the open) and, for inputs
//! sprout wrote itself or found inside a seed, `O_NOFOLLOW`; the opened file
//! must be a regular file (`fstat` on the descriptor, so nothing can be
//! swapped in between check and read); and at most `limit + 1` bytes are
//! read, so a file that grows while being read, or a size that lies, still
//! ends in a clear error instead of an endless read. Decompressors are
//! wrapped in [`LimitedReader`], which fails once its budget is spent.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// `install-config.yaml`: a CA bundle of a few hundred KiB fits easily.
pub const MAX_INSTALL_CONFIG: u64 = 4 << 20;
/// `image-based-config.yaml` and `image-based-installation-config.yaml`
/// (the latter carries `ignitionConfigOverride`, so it gets the same room).
pub const MAX_SITE_CONFIG: u64 = 4 << 20;
/// `post.sh`: the installation ISO's embed area holds ~256 KiB compressed,
/// so a script larger than this can never fit; refusing it before xz runs
/// saves minutes of compression.
pub const MAX_POST_SCRIPT: u64 = 2 << 20;
/// One file in `extra-manifests/`.
pub const MAX_EXTRA_MANIFEST: u64 = 8 << 20;
/// `.sprout-state.json`: a few keys and certificates, ~30 KiB.
pub const MAX_STATE_FILE: u64 = 1 << 20;
/// A seed's small root files (manifest.json, rpm-ostree.json, …).
pub const MAX_SEED_METADATA: u64 = 16 << 20;
/// A seed's tarballs, layers and archives: big, but not unbounded.
pub const MAX_SEED_BLOB: u64 = 1 << 40;
/// A live ISO (`--base-iso`, `iso show-ignition`): RHCOS ISOs are ~1.2 GiB.
pub const MAX_LIVE_ISO: u64 = 64 << 30;
/// The kept copy of the CoreOS stream metadata (~100 KiB).
pub const MAX_CACHED_STREAM: u64 = 16 << 20;
/// A bearer token file (`--report-token-file`): tokens are short.
pub const MAX_TOKEN: u64 = 64 << 10;
/// A PEM CA bundle (`--report-ca-file`); the system bundle is ~200 KiB.
pub const MAX_CA_BUNDLE: u64 = 4 << 20;
/// Bytes an ISO's Ignition embed area may decompress to (it is 256 KiB
/// compressed in RHCOS; a config of a few MiB is already unusual).
pub const MAX_EMBED_DECOMPRESSED: u64 = 64 << 20;

/// What an input is: its size limit and whether a symbolic link is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    InstallConfig,
    /// image-based-config.yaml, image-based-installation-config.yaml.
    SiteConfig,
    PostScript,
    ExtraManifest,
    StateFile,
    /// A small root file of a seed (manifest.json, rpm-ostree.json, …).
    SeedMetadata,
    /// Any root file of a mounted seed (tarballs, lca-cli).
    SeedRootFile,
    /// A blob of an OCI layout, or an OCI archive.
    SeedBlob,
    LiveIso,
    /// The kept copy of the CoreOS stream metadata in the user cache.
    CachedStream,
    /// A secret token (`--report-token-file`).
    Token,
    /// PEM CA certificates (`--report-ca-file`).
    CaBundle,
}

impl InputKind {
    pub fn limit(self) -> u64 {
        match self {
            Self::InstallConfig => MAX_INSTALL_CONFIG,
            Self::SiteConfig => MAX_SITE_CONFIG,
            Self::PostScript => MAX_POST_SCRIPT,
            Self::ExtraManifest => MAX_EXTRA_MANIFEST,
            Self::StateFile => MAX_STATE_FILE,
            Self::SeedMetadata => MAX_SEED_METADATA,
            Self::SeedRootFile | Self::SeedBlob => MAX_SEED_BLOB,
            Self::LiveIso => MAX_LIVE_ISO,
            Self::CachedStream => MAX_CACHED_STREAM,
            Self::Token => MAX_TOKEN,
            Self::CaBundle => MAX_CA_BUNDLE,
        }
    }

    /// Users link their configuration files from elsewhere, and name ISOs
    /// and archives by any path; the state file is sprout's own and a seed's
    /// root files are the seed's, so a link there is refused.
    fn follows_symlinks(self) -> bool {
        !matches!(
            self,
            Self::StateFile | Self::SeedMetadata | Self::SeedRootFile
        )
    }

    fn fix(self) -> &'static str {
        match self {
            Self::InstallConfig | Self::SiteConfig | Self::ExtraManifest => {
                "put the YAML file itself there"
            }
            Self::PostScript => {
                "keep post.sh short (fetch large content from a server in the script)"
            }
            Self::StateFile => "it must be the file sprout wrote",
            Self::SeedMetadata | Self::SeedRootFile | Self::SeedBlob => {
                "copy the seed again or make it again"
            }
            Self::LiveIso => "give the path of a CoreOS live ISO file",
            Self::CachedStream => "remove it; the next run with network fetches it again",
            Self::Token => "put only the token in the file",
            Self::CaBundle => "give a file of PEM certificates",
        }
    }
}

/// Why an input could not be read; every message names the path and a fix.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{} does not exist", .path.display())]
    NotFound { path: PathBuf },
    #[error("{} is a symbolic link to {}, which does not exist; fix or remove the link", .path.display(), .target.display())]
    Dangling { path: PathBuf, target: PathBuf },
    #[error("{} is a symbolic link that loops (or a chain of too many links); replace it with the file itself", .path.display())]
    Loop { path: PathBuf },
    #[error("{} is a symbolic link, which sprout does not follow here; {}", .path.display(), .kind.fix())]
    Symlink { path: PathBuf, kind: InputKind },
    #[error("{} is not a regular file: it is {}; {}", .path.display(), .what, .kind.fix())]
    NotRegular {
        path: PathBuf,
        what: &'static str,
        kind: InputKind,
    },
    #[error("{} is larger than {} ({} bytes), the most sprout reads for it; {}", .path.display(), Limit(.limit), .limit, .kind.fix())]
    TooLarge {
        path: PathBuf,
        limit: u64,
        kind: InputKind,
    },
    #[error("{} is not UTF-8 text; save it as UTF-8", .path.display())]
    NotUtf8 { path: PathBuf },
    #[error("reading {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl InputError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

/// A byte count as people read limits: `4 MiB`.
struct Limit<'a>(&'a u64);

impl fmt::Display for Limit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = *self.0;
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
            if v >= 1 << shift && v.is_multiple_of(1 << shift) {
                return write!(f, "{} {unit}", v >> shift);
            }
        }
        write!(f, "{v} bytes")
    }
}

/// Opens `path` as a `kind` input: a regular file within the size limit.
/// Returns the file and its size.
pub fn open_input(path: &Path, kind: InputKind) -> Result<(File, u64), InputError> {
    let mut flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
    if !kind.follows_symlinks() {
        flags |= rustix::fs::OFlags::NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| open_error(path, kind, e))?;
    let meta = file.metadata().map_err(|source| InputError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let t = meta.file_type();
    if !t.is_file() {
        let what = if t.is_dir() {
            "a directory"
        } else if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(InputError::NotRegular {
            path: path.to_path_buf(),
            what,
            kind,
        });
    }
    if meta.len() > kind.limit() {
        return Err(too_large(path, kind));
    }
    Ok((file, meta.len()))
}

/// Reads the whole `kind` input at `path`, at most its limit.
pub fn read_input(path: &Path, kind: InputKind) -> Result<Vec<u8>, InputError> {
    let (file, size) = open_input(path, kind)?;
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(kind.limit().saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|source| InputError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > kind.limit() {
        return Err(too_large(path, kind));
    }
    Ok(buf)
}

/// Like [`read_input`], for text.
pub fn read_input_text(path: &Path, kind: InputKind) -> Result<String, InputError> {
    String::from_utf8(read_input(path, kind)?).map_err(|_| InputError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

fn too_large(path: &Path, kind: InputKind) -> InputError {
    InputError::TooLarge {
        path: path.to_path_buf(),
        limit: kind.limit(),
        kind,
    }
}

fn open_error(path: &Path, kind: InputKind, e: io::Error) -> InputError {
    let link = std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false);
    match e.kind() {
        ErrorKind::NotFound if link => InputError::Dangling {
            path: path.to_path_buf(),
            target: std::fs::read_link(path).unwrap_or_default(),
        },
        ErrorKind::NotFound => InputError::NotFound {
            path: path.to_path_buf(),
        },
        _ if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            if link && !kind.follows_symlinks() {
                InputError::Symlink {
                    path: path.to_path_buf(),
                    kind,
                }
            } else {
                InputError::Loop {
                    path: path.to_path_buf(),
                }
            }
        }
        _ => InputError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// A reader that fails with `InvalidData` once more than `limit` bytes
/// pass through it: for decompressors, whose output size the input does
/// not bound.
#[derive(Debug)]
pub struct LimitedReader<R> {
    inner: R,
    left: u64,
    limit: u64,
    what: &'static str,
}

impl<R: Read> LimitedReader<R> {
    pub fn new(inner: R, limit: u64, what: &'static str) -> Self {
        Self {
            inner,
            left: limit,
            limit,
            what,
        }
    }
}

impl<R> LimitedReader<R> {
    /// Bytes that may still pass.
    pub fn left(&self) -> u64 {
        self.left
    }
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // One byte more than allowed tells "exactly at the limit" from "over".
        let room = usize::try_from(self.left.saturating_add(1)).unwrap_or(usize::MAX);
        let want = buf.len().min(room);
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!(
                    "{} holds more than {} ({} bytes) once decompressed",
                    self.what,
                    Limit(&self.limit),
                    self.limit
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_within_the_limit_are_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("post.sh");
        std::fs::write(&p, b"echo hi\n").unwrap();
        assert_eq!(read_input(&p, InputKind::PostScript).unwrap(), b"echo hi\n");
        std::fs::write(&p, vec![b'#'; (MAX_POST_SCRIPT + 1) as usize]).unwrap();
        let e = read_input(&p, InputKind::PostScript).unwrap_err();
        assert!(
            e.to_string()
                .contains("is larger than 2 MiB (2097152 bytes)"),
            "{e}"
        );
    }

    #[test]
    fn odd_files_are_named_for_what_they_are() {
        let d = tempfile::tempdir().unwrap();
        let e = read_input(d.path(), InputKind::SiteConfig).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not a regular file: it is a directory")
        );
        let fifo = d.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let e = read_input(&fifo, InputKind::SiteConfig).unwrap_err();
        assert!(e.to_string().contains("it is a FIFO"), "{e}");
        let zero = d.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_input(&zero, InputKind::SiteConfig).unwrap_err();
        assert!(e.to_string().contains("it is a character device"), "{e}");
        let e = read_input(&zero, InputKind::StateFile).unwrap_err();
        assert!(e.to_string().contains("does not follow"), "{e}");
        let dangling = d.path().join("dangling.yaml");
        std::os::unix::fs::symlink("nowhere.yaml", &dangling).unwrap();
        let e = read_input(&dangling, InputKind::ExtraManifest).unwrap_err();
        assert!(
            e.to_string()
                .contains("is a symbolic link to nowhere.yaml, which does not exist"),
            "{e}"
        );
        let a = d.path().join("a");
        std::os::unix::fs::symlink("b", &a).unwrap();
        std::os::unix::fs::symlink("a", d.path().join("b")).unwrap();
        let e = read_input(&a, InputKind::ExtraManifest).unwrap_err();
        assert!(e.to_string().contains("loops"), "{e}");
        let e = read_input(&d.path().join("none"), InputKind::ExtraManifest).unwrap_err();
        assert!(e.is_not_found());
    }

    #[test]
    fn limited_reader_stops_at_its_limit() {
        let mut out = Vec::new();
        LimitedReader::new(&[1u8; 10][..], 10, "x")
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 10);
        let e = LimitedReader::new(std::io::repeat(0), 1000, "the embed area")
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(e.to_string().contains("more than 1000 bytes"), "{e}");
    }
}
