//! Output directories held open, and all-or-nothing runs that write into them.
//!
//! An [`OutputDir`] is a directory file descriptor. Everything sprout writes
//! into it (files, subdirectories, modes, renames, the lock) goes through that
//! descriptor and one path component at a time, opened with `openat2`
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`: a symlink planted inside the
//! directory (`auth -> /etc`) is refused, never followed, and no `chmod` ever
//! takes a path. Only the directory itself is named by path, once, by the
//! caller who chose it (`--dir`, or `--root` for [`OutputDir::open_beneath`]).
//!
//! A [`Transaction`] stages every output of a run as an anonymous
//! `O_TMPFILE` in its destination directory (so a killed run leaves nothing
//! behind), or, where the filesystem has no `O_TMPFILE`, as a temporary file
//! named `.sprout-tmp.*` that the next run removes. Only once every output is
//! complete and synced are they renamed into place, in the order staged (the
//! caller stages its state file last); a failure then reports exactly which
//! outputs were replaced and which were not.
//!
//! [`DirLock`] serialises runs writing into one directory (`flock` on
//! `.sprout.lock`): a second run fails at once, naming the holder.
//!
//! This type is deliberately small and output-only; a general `host::Root`
//! (a root held open for the engine) can absorb it later.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;

/// The lock file every writing run holds in its output directory.
pub const LOCK_FILE: &str = ".sprout.lock";
/// Prefix of every temporary file sprout names; stale ones are removed.
pub const TEMP_PREFIX: &str = ".sprout-tmp.";
/// Staging directories of post-pivot before this module existed.
const LEGACY_STAGING_PREFIX: &str = ".sprout-incoming.";
/// A directory held open by descriptor; see the module documentation.
#[derive(Debug, Clone)]
pub struct OutputDir {
    fd: Arc<OwnedFd>,
    path: PathBuf,
}

fn resolve_flags() -> ResolveFlags {
    ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS
}

fn dir_flags() -> OFlags {
    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW
}

/// Opens one component below `dir`, never through a symlink.
fn open_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    flags: OFlags,
    mode: Mode,
) -> rustix::io::Result<OwnedFd> {
    match rustix::fs::openat2(dir, name, flags, mode, resolve_flags()) {
        // Kernels before 5.6: one component with O_NOFOLLOW is as strict.
        Err(Errno::NOSYS) => rustix::fs::openat(dir, name, flags | OFlags::NOFOLLOW, mode),
        r => r,
    }
}

/// Refuses anything but one plain path component.
fn check_name(name: &OsStr) -> Result<()> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') || b.contains(&0) {
        bail!("{name:?} is not a plain file name");
    }
    Ok(())
}

fn io_error(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

impl OutputDir {
    /// Opens the existing directory `path` (the caller's choice of directory).
    pub fn open(path: &Path) -> Result<Self> {
        let fd = rustix::fs::open(
            path,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_error)
        .with_context(|| format!("opening the output directory {}", path.display()))?;
        Ok(Self {
            fd: Arc::new(fd),
            path: path.to_path_buf(),
        })
    }

    /// Opens `path`, creating it (and its parents) with `mode` if missing.
    pub fn open_or_create(path: &Path, mode: u32) -> Result<Self> {
        if std::fs::symlink_metadata(path).is_err() {
            std::fs::create_dir_all(path)
                .with_context(|| format!("creating directory {}", path.display()))?;
            let dir = Self::open(path)?;
            rustix::fs::fchmod(dir.fd(), Mode::from_raw_mode(mode))
                .map_err(io_error)
                .with_context(|| format!("setting the mode of {}", path.display()))?;
            return Ok(dir);
        }
        Self::open(path)
    }

    /// Opens (creating as needed) the directory `rel` below `root` and gives
    /// it `mode`. `root` itself is trusted (e.g. `--root`). Symlinks among
    /// the parents are resolved as if `root` were `/` (`RESOLVE_IN_ROOT`:
    /// RHCOS has `/opt -> var/opt`) and can never lead out of it; the last
    /// component must be a real directory, never a link.
    pub fn open_beneath(root: &Path, rel: &str, mode: u32) -> Result<Self> {
        let root_dir = Self::open(root)?;
        let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        let Some((last, parents)) = parts.split_last() else {
            return Ok(root_dir);
        };
        let mut dir = root_dir.clone();
        for (i, part) in parents.iter().enumerate() {
            check_name(OsStr::new(part))?;
            match rustix::fs::mkdirat(dir.fd(), *part, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(io_error(e)).with_context(|| {
                        format!("creating directory {}", dir.display(part).display())
                    });
                }
            }
            let prefix = parts[..=i].join("/");
            let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
            let fd = match rustix::fs::openat2(
                root_dir.fd(),
                prefix.as_str(),
                flags,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            ) {
                // Kernels before 5.6 (RHCOS has 5.14): parents by path, the
                // last component still never through a link.
                Err(Errno::NOSYS) => {
                    rustix::fs::openat(root_dir.fd(), prefix.as_str(), flags, Mode::empty())
                }
                r => r,
            }
            .map_err(io_error)
            .with_context(|| format!("opening directory {}", root.join(&prefix).display()))?;
            dir = Self {
                fd: Arc::new(fd),
                path: root.join(&prefix),
            };
        }
        dir.subdir(last, mode)
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `path()/name`, for messages.
    pub fn display(&self, name: impl AsRef<OsStr>) -> PathBuf {
        self.path.join(name.as_ref())
    }

    /// The subdirectory `name`, created if missing, given `mode` (through
    /// its descriptor). A symlink or a file in its place is refused.
    pub fn subdir(&self, name: impl AsRef<OsStr>, mode: u32) -> Result<Self> {
        self.subdir_inner(name.as_ref(), mode, false)
    }

    /// The new subdirectory `name` with `mode`; an existing entry is an error.
    pub fn create_subdir(&self, name: impl AsRef<OsStr>, mode: u32) -> Result<Self> {
        self.subdir_inner(name.as_ref(), mode, true)
    }

    fn subdir_inner(&self, name: &OsStr, mode: u32, must_be_new: bool) -> Result<Self> {
        check_name(name)?;
        let shown = self.display(name);
        match rustix::fs::mkdirat(self.fd(), name, Mode::from_raw_mode(mode)) {
            Ok(()) => {}
            Err(Errno::EXIST) if !must_be_new => {}
            Err(e) => {
                return Err(io_error(e))
                    .with_context(|| format!("creating directory {}", shown.display()));
            }
        }
        let fd = open_at(self.fd(), name, dir_flags(), Mode::empty())
            .map_err(|e| self.refusal(name, e, "opening directory"))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .map_err(io_error)
            .with_context(|| format!("setting the mode of {}", shown.display()))?;
        Ok(Self {
            fd: Arc::new(fd),
            path: shown,
        })
    }

    /// The error for a failed open of `name`, saying plainly when the
    /// entry is a symlink or not a directory.
    fn refusal(&self, name: &OsStr, e: Errno, doing: &str) -> anyhow::Error {
        let shown = self.display(name);
        let kind = rustix::fs::statat(self.fd(), name, AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| FileType::from_raw_mode(st.st_mode));
        match (e, kind) {
            (Errno::LOOP | Errno::XDEV | Errno::NOTDIR, Ok(FileType::Symlink)) => anyhow::anyhow!(
                "{} is a symbolic link; sprout never follows links inside {}, so that it cannot \
                 be made to write elsewhere: remove the link (or replace it with a real directory) \
                 and run again",
                shown.display(),
                self.path.display()
            ),
            (Errno::NOTDIR, Ok(_)) => anyhow::anyhow!(
                "{} is not a directory; move it away and run again",
                shown.display()
            ),
            _ => anyhow::Error::new(io_error(e)).context(format!("{doing} {}", shown.display())),
        }
    }

    /// Removes what an interrupted run left here: every `.sprout-tmp.*`
    /// entry (files and staging directories), and the `.<name>.XXXXXX.tmp`
    /// files that earlier sprout versions used for each of `outputs`. Call it
    /// with the lock held.
    pub fn remove_stale_temps(&self, outputs: &[&str]) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for name in self.entry_names()? {
            let Some(text) = name.to_str() else {
                continue;
            };
            let ours = text.starts_with(TEMP_PREFIX) || text.starts_with(LEGACY_STAGING_PREFIX);
            // Legacy temporary names are files; a directory so named is the user's.
            let legacy_file = outputs.iter().any(|o| is_legacy_temp(text, o))
                && self.entry_type(&name) != Some(FileType::Directory);
            if !ours && !legacy_file {
                continue;
            }
            self.remove_entry(&name).with_context(|| {
                format!(
                    "removing {}, left by an interrupted run",
                    self.display(&name).display()
                )
            })?;
            removed.push(text.to_string());
        }
        if !removed.is_empty() {
            tracing::info!(
                "removed {} temporary file(s) an interrupted run left in {}: {}",
                removed.len(),
                self.path.display(),
                removed.join(", ")
            );
        }
        Ok(removed)
    }

    /// The names of the directory's entries (without `.` and `..`).
    pub fn entry_names(&self) -> Result<Vec<OsString>> {
        let entries = rustix::fs::Dir::read_from(self.fd())
            .map_err(io_error)
            .with_context(|| format!("listing {}", self.path.display()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry
                .map_err(io_error)
                .with_context(|| format!("listing {}", self.path.display()))?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                names.push(name.to_os_string());
            }
        }
        Ok(names)
    }

    /// The type of the entry `name` itself (a link is a link), if it exists.
    pub fn entry_type(&self, name: impl AsRef<OsStr>) -> Option<FileType> {
        rustix::fs::statat(self.fd(), name.as_ref(), AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| FileType::from_raw_mode(st.st_mode))
    }

    /// Creates the new regular file `name` with `mode` (never through a
    /// link: an existing entry of any kind is an error).
    pub fn create_file(&self, name: impl AsRef<OsStr>, mode: u32) -> Result<File> {
        let name = name.as_ref();
        check_name(name)?;
        let fd = open_at(
            self.fd(),
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| self.refusal(name, e, "creating"))?;
        Ok(File::from(fd))
    }

    /// Removes the entry `name`: a file or link (never what a link points
    /// to), or a directory with everything below it.
    pub fn remove_entry(&self, name: impl AsRef<OsStr>) -> Result<()> {
        let name = name.as_ref();
        check_name(name)?;
        if self.entry_type(name) == Some(FileType::Directory) {
            let sub = self.subdir_open(name)?;
            for child in sub.entry_names()? {
                sub.remove_entry(&child)?;
            }
            rustix::fs::unlinkat(self.fd(), name, AtFlags::REMOVEDIR)
        } else {
            rustix::fs::unlinkat(self.fd(), name, AtFlags::empty())
        }
        .or_else(|e| if e == Errno::NOENT { Ok(()) } else { Err(e) })
        .map_err(io_error)
        .with_context(|| format!("removing {}", self.display(name).display()))
    }

    /// Opens the existing subdirectory `name` without changing it.
    fn subdir_open(&self, name: &OsStr) -> Result<Self> {
        let fd = open_at(self.fd(), name, dir_flags(), Mode::empty())
            .map_err(|e| self.refusal(name, e, "opening directory"))?;
        Ok(Self {
            fd: Arc::new(fd),
            path: self.display(name),
        })
    }

    /// Moves `name` from `self` to `target`, replacing what `target` has
    /// under that name (swapped atomically where the filesystem can, the old
    /// entry then removed).
    pub fn move_into(&self, name: impl AsRef<OsStr>, target: &OutputDir) -> Result<()> {
        let name = name.as_ref();
        check_name(name)?;
        let what = || {
            format!(
                "moving {} to {}",
                self.display(name).display(),
                target.display(name).display()
            )
        };
        if target.entry_type(name).is_some() {
            match rustix::fs::renameat_with(
                self.fd(),
                name,
                target.fd(),
                name,
                RenameFlags::EXCHANGE,
            ) {
                // The old entry is now here, under the same name.
                Ok(()) => return self.remove_entry(name),
                Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => target.remove_entry(name)?,
                Err(e) => return Err(io_error(e)).with_context(what),
            }
        }
        rustix::fs::renameat(self.fd(), name, target.fd(), name)
            .map_err(io_error)
            .with_context(what)
    }

    /// Syncs the directory, making renames in it durable.
    pub fn sync(&self) {
        // Failure only weakens crash safety.
        let _ = rustix::fs::fsync(self.fd());
    }
}

/// `.{output}.XXXXXX.tmp`: the temporary name of the former `write_atomic`.
fn is_legacy_temp(name: &str, output: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_prefix(output))
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(".tmp"))
        .is_some_and(|mid| mid.len() == 6 && mid.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A new name `.sprout-tmp.<name>.<pid>.<random>`.
fn temp_name(name: &str) -> String {
    let short: String = name.chars().take(96).collect();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "{TEMP_PREFIX}{short}.{}.{}",
        std::process::id(),
        &random[..12]
    )
}

mod lock;
mod transaction;

pub use lock::DirLock;
pub use transaction::{Staging, TempSubdir, Transaction};

#[cfg(test)]
#[path = "outdir_tests.rs"]
mod tests;
