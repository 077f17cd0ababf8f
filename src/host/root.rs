//! A directory tree held open: every path a flow touches is relative to a
//! `Root`, so the same code runs on `/` in production and on a temporary
//! directory in tests.
//!
//! Paths are resolved by the kernel with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS)`: a path that leaves the root — through `..`
//! above it, an absolute symlink, or a `/proc` magic link — is an error, not
//! silently re-anchored. We chose BENEATH over IN_ROOT because a tree that
//! tries to redirect us (a seed's `etc` with `passwd -> /etc/passwd`) is
//! hostile or broken, and either way the step must stop and say so; a flow
//! that really wants chroot semantics reads the link (`read_link`) and
//! decides. Relative symlinks that stay inside are followed.
//!
//! Leaves are never followed when they are replaced or removed: writes
//! create a temporary file in the (securely opened) parent and `renameat`
//! over the name, removals `unlinkat` the name.

use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// How every path below a root is resolved.
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);

/// One entry of `Root::read_dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: OsString,
    /// As the directory reports it (`Unknown` on some filesystems).
    pub file_type: rustix::fs::FileType,
}

/// A directory held open by file descriptor.
#[derive(Clone)]
pub struct Root {
    fd: Arc<OwnedFd>,
    path: PathBuf,
}

impl std::fmt::Debug for Root {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Root({})", self.path.display())
    }
}

impl Root {
    /// Opens the directory `path` (trusted: given by the operator or the
    /// flow, e.g. `/` or the mounted target disk).
    pub fn open(path: impl AsRef<Path>) -> Result<Root> {
        let path = path.as_ref();
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening directory {}", path.display()))?;
        Ok(Root {
            fd: Arc::new(fd),
            path: path.to_path_buf(),
        })
    }

    /// The root's own path on the host.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `rel` as a host path, for the argv of an external command. `rel`
    /// must not contain `..`, and must not pass through a symlink leading
    /// out of the root *now*; the command resolves the path again later,
    /// so this is a guard against mistakes and hostile trees, not a lock.
    pub fn host_path(&self, rel: impl AsRef<Path>) -> Result<PathBuf> {
        let rel = relative(rel.as_ref())?;
        if rel.components().any(|c| c == Component::ParentDir) {
            bail!(
                "{} contains `..`; give paths below {} without it",
                rel.display(),
                self.path.display()
            );
        }
        match self.resolve(rel, OFlags::PATH) {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
        Ok(self.path.join(rel))
    }

    /// The directory `rel` below this root, as a root of its own.
    pub fn sub(&self, rel: impl AsRef<Path>) -> Result<Root> {
        let rel = relative(rel.as_ref())?;
        let fd = self.resolve(rel, OFlags::RDONLY | OFlags::DIRECTORY)?;
        Ok(Root {
            fd: Arc::new(fd),
            path: self.path.join(rel),
        })
    }

    /// Opens `rel` for reading.
    pub fn open_read(&self, rel: impl AsRef<Path>) -> Result<File> {
        let rel = relative(rel.as_ref())?;
        Ok(File::from(self.resolve(rel, OFlags::RDONLY)?))
    }

    /// The bytes of `rel`; an error if it holds more than `max` bytes.
    pub fn read(&self, rel: impl AsRef<Path>, max: u64) -> Result<Vec<u8>> {
        let rel = rel.as_ref();
        let file = self.open_read(rel)?;
        let mut out = Vec::new();
        file.take(max.saturating_add(1))
            .read_to_end(&mut out)
            .with_context(|| format!("reading {}", self.display(rel)))?;
        if u64::try_from(out.len()).unwrap_or(u64::MAX) > max {
            bail!(
                "{} is larger than {max} bytes; it is not the file sprout expects",
                self.display(rel)
            );
        }
        Ok(out)
    }

    /// The text of `rel` (UTF-8, at most `max` bytes).
    pub fn read_to_string(&self, rel: impl AsRef<Path>, max: u64) -> Result<String> {
        let rel = rel.as_ref();
        String::from_utf8(self.read(rel, max)?)
            .with_context(|| format!("{} is not UTF-8 text", self.display(rel)))
    }

    /// Opens `rel` read-write, creating it with `mode` if it is missing (a
    /// symlink leaf is refused): for lock files and append-only logs.
    pub fn open_or_create(&self, rel: impl AsRef<Path>, mode: u32) -> Result<File> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent_and_name(rel)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_os_str(),
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .with_context(|| format!("opening {}", self.display(rel)))?;
        Ok(File::from(fd))
    }

    /// Writes `contents` to `rel` atomically with `mode`.
    pub fn write_atomic(&self, rel: impl AsRef<Path>, contents: &[u8], mode: u32) -> Result<()> {
        let rel = rel.as_ref();
        self.write_atomic_with(rel, mode, |f| {
            f.write_all(contents)
                .with_context(|| format!("writing {}", self.display(rel)))
        })
    }

    /// Creates `rel` atomically with `mode`, its content produced by
    /// `fill`: a temporary file (0600 until filled) in the same directory,
    /// fsync, rename over the name, fsync of the directory. Readers see the
    /// old file or the new one, never a mix.
    pub fn write_atomic_with(
        &self,
        rel: impl AsRef<Path>,
        mode: u32,
        fill: impl FnOnce(&mut File) -> Result<()>,
    ) -> Result<()> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let rel = rel.as_ref();
        let (dir, name) = self.parent_and_name(rel)?;
        let mut tmp_name = OsString::from(".");
        tmp_name.push(&name);
        tmp_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let fd = rustix::fs::openat(
            &dir,
            tmp_name.as_os_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .with_context(|| format!("creating a temporary file next to {}", self.display(rel)))?;
        let mut file = File::from(fd);
        let written = fill(&mut file)
            .and_then(|()| {
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode))
                    .with_context(|| format!("setting the mode of {}", self.display(rel)))
            })
            .and_then(|()| {
                file.sync_all()
                    .with_context(|| format!("syncing {}", self.display(rel)))
            })
            .and_then(|()| {
                rustix::fs::renameat(&dir, tmp_name.as_os_str(), &dir, name.as_os_str())
                    .with_context(|| {
                        format!("renaming the temporary file to {}", self.display(rel))
                    })
            });
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(&dir, tmp_name.as_os_str(), AtFlags::empty());
            return Err(e);
        }
        // Makes the rename durable; a failure only weakens crash safety.
        let _ = rustix::fs::fsync(&dir);
        Ok(())
    }

    /// Creates directory `rel` and its missing parents with `mode` (set
    /// exactly, not masked by the umask, on the directories it creates).
    /// `..` is refused; a component that is a symlink must stay below it.
    pub fn create_dir_all(&self, rel: impl AsRef<Path>, mode: u32) -> Result<()> {
        let rel = relative(rel.as_ref())?;
        let mut cur = self.resolve(Path::new("."), OFlags::RDONLY | OFlags::DIRECTORY)?;
        for c in rel.components() {
            let name = match c {
                Component::CurDir => continue,
                Component::Normal(n) => n,
                _ => bail!("{} contains `..`; refusing to create it", rel.display()),
            };
            let created = match rustix::fs::mkdirat(&cur, name, Mode::from_raw_mode(mode)) {
                Ok(()) => true,
                Err(Errno::EXIST) => false,
                Err(e) => {
                    return Err(e).with_context(|| format!("creating {}", self.display(rel)));
                }
            };
            cur = rustix::fs::openat2(
                &cur,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
                RESOLVE,
            )
            .map_err(|e| self.resolve_error(e, rel))?;
            if created {
                rustix::fs::fchmod(&cur, Mode::from_raw_mode(mode))
                    .with_context(|| format!("setting the mode of {}", self.display(rel)))?;
            }
        }
        Ok(())
    }

    /// Removes the file, symlink or empty directory `rel`; false if it was
    /// not there.
    pub fn remove(&self, rel: impl AsRef<Path>) -> Result<bool> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent_and_name(rel)?;
        let r = match rustix::fs::unlinkat(&dir, name.as_os_str(), AtFlags::empty()) {
            Err(Errno::ISDIR) => rustix::fs::unlinkat(&dir, name.as_os_str(), AtFlags::REMOVEDIR),
            r => r,
        };
        match r {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("removing {}", self.display(rel))),
        }
    }

    /// Removes `rel` and everything below it, never following a symlink;
    /// false if it was not there.
    pub fn remove_all(&self, rel: impl AsRef<Path>) -> Result<bool> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent_and_name(rel)?;
        match rustix::fs::openat(
            &dir,
            name.as_os_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(sub) => {
                remove_contents(&sub).with_context(|| format!("removing {}", self.display(rel)))?
            }
            Err(Errno::NOENT) => return Ok(false),
            // A file or a symlink: removed by name below.
            Err(Errno::NOTDIR | Errno::LOOP) => {}
            Err(e) => return Err(e).with_context(|| format!("opening {}", self.display(rel))),
        }
        self.remove(rel)
    }

    /// Renames `from` to `to` (both below this root), replacing `to`.
    pub fn rename(&self, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<()> {
        let (from, to) = (from.as_ref(), to.as_ref());
        let (from_dir, from_name) = self.parent_and_name(from)?;
        let (to_dir, to_name) = self.parent_and_name(to)?;
        rustix::fs::renameat(
            &from_dir,
            from_name.as_os_str(),
            &to_dir,
            to_name.as_os_str(),
        )
        .with_context(|| format!("renaming {} to {}", self.display(from), self.display(to)))
    }

    /// The target of the symlink `rel`, as written in the link.
    pub fn read_link(&self, rel: impl AsRef<Path>) -> Result<PathBuf> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent_and_name(rel)?;
        let target = rustix::fs::readlinkat(&dir, name.as_os_str(), Vec::new())
            .with_context(|| format!("reading the symlink {}", self.display(rel)))?;
        Ok(PathBuf::from(OsStr::from_bytes(target.as_bytes())))
    }

    /// Creates the symlink `rel` pointing to `target` (stored as given).
    pub fn symlink(&self, target: impl AsRef<Path>, rel: impl AsRef<Path>) -> Result<()> {
        let rel = rel.as_ref();
        let (dir, name) = self.parent_and_name(rel)?;
        rustix::fs::symlinkat(target.as_ref(), &dir, name.as_os_str())
            .with_context(|| format!("creating the symlink {}", self.display(rel)))
    }

    /// The entries of directory `rel` (without `.` and `..`), sorted by
    /// name so that what is done with them happens in a stable order.
    pub fn read_dir(&self, rel: impl AsRef<Path>) -> Result<Vec<DirEntry>> {
        let rel = relative(rel.as_ref())?;
        let dir = self.resolve(rel, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut entries = rustix::fs::Dir::read_from(&dir)
            .with_context(|| format!("listing {}", self.display(rel)))?;
        let mut out = Vec::new();
        while let Some(entry) = entries.read() {
            let entry = entry.with_context(|| format!("listing {}", self.display(rel)))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                out.push(DirEntry {
                    name: OsStr::from_bytes(name).to_owned(),
                    file_type: entry.file_type(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Metadata of `rel`, following symlinks that stay below the root.
    pub fn metadata(&self, rel: impl AsRef<Path>) -> Result<Metadata> {
        let rel = relative(rel.as_ref())?;
        let file = File::from(self.resolve(rel, OFlags::PATH)?);
        file.metadata()
            .with_context(|| format!("reading the metadata of {}", self.display(rel)))
    }

    /// Metadata of `rel` itself (a symlink is not followed).
    pub fn symlink_metadata(&self, rel: impl AsRef<Path>) -> Result<Metadata> {
        let rel = relative(rel.as_ref())?;
        let file = File::from(self.resolve(rel, OFlags::PATH | OFlags::NOFOLLOW)?);
        file.metadata()
            .with_context(|| format!("reading the metadata of {}", self.display(rel)))
    }

    /// Whether `rel` exists below the root. A path that would leave the
    /// root is an error, not `false`.
    pub fn exists(&self, rel: impl AsRef<Path>) -> Result<bool> {
        let rel = relative(rel.as_ref())?;
        match self.resolve(rel, OFlags::PATH | OFlags::NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets the permission bits of `rel` (a symlink leaf is refused).
    pub fn set_mode(&self, rel: impl AsRef<Path>, mode: u32) -> Result<()> {
        let rel = relative(rel.as_ref())?;
        // fchmod does not work on O_PATH descriptors; NONBLOCK keeps a FIFO
        // from blocking the open.
        let fd = self.resolve(rel, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW)?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .with_context(|| format!("setting the mode of {}", self.display(rel)))
    }

    /// Opens `rel` below the root with `oflags`.
    fn resolve(&self, rel: &Path, oflags: OFlags) -> Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        rustix::fs::openat2(
            self.fd.as_fd(),
            rel,
            oflags | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(|e| self.resolve_error(e, rel))
    }

    fn resolve_error(&self, e: Errno, rel: &Path) -> anyhow::Error {
        match e {
            Errno::XDEV => anyhow::anyhow!(
                "{} leads out of {} (through `..` or an absolute symlink); refusing to follow it",
                rel.display(),
                self.path.display()
            ),
            Errno::NOSYS => anyhow::anyhow!(
                "the kernel lacks openat2 (Linux 5.6 or later is needed) to open {} safely",
                self.display(rel)
            ),
            e => anyhow::Error::new(std::io::Error::from(e))
                .context(format!("opening {}", self.display(rel))),
        }
    }

    /// The parent directory of `rel`, opened below the root, and the last
    /// component (which must be a plain name).
    fn parent_and_name(&self, rel: &Path) -> Result<(OwnedFd, OsString)> {
        let rel = relative(rel)?;
        let name = match rel.components().next_back() {
            Some(Component::Normal(n)) => n.to_owned(),
            _ => bail!(
                "{} does not end in a file name; name the file itself",
                rel.display()
            ),
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        Ok((
            self.resolve(parent, OFlags::RDONLY | OFlags::DIRECTORY)?,
            name,
        ))
    }

    fn display(&self, rel: &Path) -> String {
        self.path.join(rel).display().to_string()
    }
}

/// `rel`, if it is relative.
fn relative(rel: &Path) -> Result<&Path> {
    if rel.is_absolute() {
        bail!(
            "{} is absolute; paths below a root are relative to it",
            rel.display()
        );
    }
    Ok(rel)
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
}

/// Empties the directory `dir`, depth first, without following symlinks.
fn remove_contents(dir: &OwnedFd) -> Result<()> {
    let mut entries = rustix::fs::Dir::read_from(dir).context("listing a directory")?;
    let mut names = Vec::new();
    while let Some(entry) = entries.read() {
        let entry = entry.context("listing a directory")?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    for name in names {
        match rustix::fs::openat(
            dir,
            name.as_os_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(sub) => {
                remove_contents(&sub)?;
                rustix::fs::unlinkat(dir, name.as_os_str(), AtFlags::REMOVEDIR)
            }
            Err(Errno::NOTDIR | Errno::LOOP) => {
                rustix::fs::unlinkat(dir, name.as_os_str(), AtFlags::empty())
            }
            Err(e) => Err(e),
        }
        .with_context(|| format!("removing {}", name.to_string_lossy()))?;
    }
    Ok(())
}
