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
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags, ResolveFlags};
use rustix::io::Errno;

use crate::api::excerpt::excerpt;

/// The lock file every writing run holds in its output directory.
pub const LOCK_FILE: &str = ".sprout.lock";
/// Prefix of every temporary file sprout names; stale ones are removed.
pub const TEMP_PREFIX: &str = ".sprout-tmp.";
/// Staging directories of post-pivot before this module existed.
const LEGACY_STAGING_PREFIX: &str = ".sprout-incoming.";
/// Longest holder description read back from a lock file.
const HOLDER_MAX_BYTES: u64 = 256;
/// Tries at taking a lock whose file other runs keep removing.
const LOCK_ATTEMPTS: usize = 5;

/// How temporary files are made: anonymous where the filesystem allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staging {
    /// `O_TMPFILE`, falling back to named files where unsupported.
    Anonymous,
    /// Always a `.sprout-tmp.*` file (what filesystems without `O_TMPFILE` get).
    Named,
}

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
            let fd = rustix::fs::openat2(
                root_dir.fd(),
                prefix.as_str(),
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
                ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
            )
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

    /// Takes the directory's lock for `command` (e.g. `create image`), or
    /// fails at once if another run holds it. The lock file names its holder
    /// and is removed when the lock is dropped, so a finished run leaves the
    /// directory as it was.
    pub fn lock(&self, command: &str) -> Result<DirLock> {
        let shown = self.display(LOCK_FILE);
        // A holder removes the file on release; a run that opened it just
        // before that holds a lock on a removed file, so it checks that the
        // name still leads to what it locked, and tries again if not.
        for _ in 0..LOCK_ATTEMPTS {
            let fd = open_at(
                self.fd(),
                OsStr::new(LOCK_FILE),
                OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NONBLOCK,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| self.refusal(OsStr::new(LOCK_FILE), e, "opening the lock file"))?;
            let st = rustix::fs::fstat(&fd)
                .map_err(io_error)
                .with_context(|| format!("inspecting {}", shown.display()))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                bail!(
                    "{} is not a regular file; remove it and run again",
                    shown.display()
                );
            }
            let mut file = File::from(fd);
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => {
                    let mut holder = Vec::new();
                    let _ = (&file).take(HOLDER_MAX_BYTES).read_to_end(&mut holder);
                    let holder = String::from_utf8_lossy(&holder).trim().to_string();
                    let holder = if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        format!("held by {}", excerpt(&holder))
                    };
                    bail!(
                        "another sprout run is writing in {} ({holder}, lock file {}); \
                         wait for it to finish and run again",
                        self.path.display(),
                        shown.display()
                    );
                }
                Err(e) => {
                    return Err(io_error(e))
                        .with_context(|| format!("locking {}", shown.display()));
                }
            }
            let same = rustix::fs::statat(self.fd(), LOCK_FILE, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|now| now.st_dev == st.st_dev && now.st_ino == st.st_ino);
            if !same {
                continue;
            }
            // Who holds it, for the message of a run that finds it taken.
            let line = format!("pid {}: sprout {command}\n", std::process::id());
            let noted = file
                .set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(line.as_bytes()));
            if let Err(e) = noted {
                tracing::debug!("could not note the holder in {}: {e}", shown.display());
            }
            return Ok(DirLock {
                _fd: file.into(),
                file_in: Some(self.clone()),
            });
        }
        bail!(
            "could not take the lock {}: it was replaced {LOCK_ATTEMPTS} times while being taken; \
             is another program removing it?",
            shown.display()
        )
    }

    /// Takes the directory's lock on the directory itself, leaving no lock
    /// file behind (for directories other tools read, such as
    /// `/opt/openshift`); a run finding it taken cannot name the holder.
    pub fn lock_in_place(&self) -> Result<DirLock> {
        let fd = open_at(self.fd(), OsStr::new("."), dir_flags(), Mode::empty())
            .map_err(io_error)
            .with_context(|| format!("opening {}", self.path.display()))?;
        match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DirLock {
                _fd: fd,
                file_in: None,
            }),
            Err(Errno::WOULDBLOCK) => bail!(
                "another sprout run is writing in {}; wait for it to finish and run again",
                self.path.display()
            ),
            Err(e) => Err(io_error(e)).with_context(|| format!("locking {}", self.path.display())),
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

/// A new staging directory `.sprout-tmp.<label>.*` in a directory, removed
/// with its content when dropped (a run killed
/// before that leaves it to [`OutputDir::remove_stale_temps`]).
#[derive(Debug)]
pub struct TempSubdir {
    parent: OutputDir,
    name: String,
    dir: OutputDir,
}

impl TempSubdir {
    pub fn new(parent: &OutputDir, label: &str, mode: u32) -> Result<Self> {
        let name = temp_name(label);
        let dir = parent.create_subdir(&name, mode)?;
        Ok(Self {
            parent: parent.clone(),
            name,
            dir,
        })
    }

    pub fn dir(&self) -> &OutputDir {
        &self.dir
    }
}

impl Drop for TempSubdir {
    fn drop(&mut self) {
        if let Err(e) = self.parent.remove_entry(&self.name) {
            tracing::warn!("{e:#}");
        }
    }
}

/// The lock of one output directory, released when dropped (or when the
/// process ends, however it ends).
#[derive(Debug)]
pub struct DirLock {
    _fd: OwnedFd,
    /// The directory whose lock file this is (none for a lock in place).
    file_in: Option<OutputDir>,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Removed while still held (the descriptor closes after this).
        if let Some(dir) = &self.file_in {
            let _ = rustix::fs::unlinkat(dir.fd(), LOCK_FILE, AtFlags::empty());
        }
    }
}

/// One output written in full but not yet in place.
struct Staged {
    dir: OutputDir,
    name: String,
    file: File,
    /// The temporary name, when the file has one.
    named: Option<String>,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some(tmp) = self.named.take() {
            let _ = rustix::fs::unlinkat(self.dir.fd(), tmp.as_str(), AtFlags::empty());
        }
    }
}

/// The outputs of one run, put in place together; see the module docs.
#[derive(Default)]
pub struct Transaction {
    staged: Vec<Staged>,
    staging: Option<Staging>,
}

impl Transaction {
    pub fn new() -> Self {
        Self::default()
    }

    /// A transaction whose temporary files are made the way `staging` says.
    pub fn with_staging(staging: Staging) -> Self {
        Self {
            staged: Vec::new(),
            staging: Some(staging),
        }
    }

    /// Stages `dir/name` with `contents` and `mode`.
    pub fn stage(&mut self, dir: &OutputDir, name: &str, mode: u32, contents: &[u8]) -> Result<()> {
        self.stage_with(dir, name, mode, |f| {
            f.write_all(contents).context("writing the temporary file")
        })
    }

    /// Stages `dir/name` with `mode`, its content produced by `fill` (on a
    /// file opened read-write at offset 0).
    pub fn stage_with(
        &mut self,
        dir: &OutputDir,
        name: &str,
        mode: u32,
        fill: impl FnOnce(&mut File) -> Result<()>,
    ) -> Result<()> {
        check_name(OsStr::new(name))?;
        let shown = dir.display(name);
        // A file can replace a file or a symlink (the link itself, never its
        // target), but not a directory: find that out before anything moves.
        if let Ok(st) = rustix::fs::statat(dir.fd(), name, AtFlags::SYMLINK_NOFOLLOW)
            && FileType::from_raw_mode(st.st_mode) == FileType::Directory
        {
            bail!(
                "{} is a directory, where sprout writes a file; move it away and run again",
                shown.display()
            );
        }
        let mut staged = self.create_temp(dir, name)?;
        fill(&mut staged.file).with_context(|| format!("writing {}", shown.display()))?;
        rustix::fs::fchmod(&staged.file, Mode::from_raw_mode(mode))
            .map_err(io_error)
            .with_context(|| format!("setting the mode of {}", shown.display()))?;
        staged
            .file
            .sync_all()
            .with_context(|| format!("syncing {}", shown.display()))?;
        self.staged.push(staged);
        Ok(())
    }

    /// A temporary file (0600 from the start: secrets are never readable by
    /// others, not even for a moment) in `dir`.
    fn create_temp(&self, dir: &OutputDir, name: &str) -> Result<Staged> {
        let mode = Mode::from_raw_mode(0o600);
        if self.staging != Some(Staging::Named) {
            match rustix::fs::openat(
                dir.fd(),
                ".",
                OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
                mode,
            ) {
                Ok(fd) => {
                    return Ok(Staged {
                        dir: dir.clone(),
                        name: name.to_string(),
                        file: File::from(fd),
                        named: None,
                    });
                }
                // The filesystem has no O_TMPFILE: a named file it is.
                Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::NOSYS) => {}
                Err(e) => {
                    return Err(io_error(e)).with_context(|| {
                        format!("creating a temporary file in {}", dir.path().display())
                    });
                }
            }
        }
        let tmp = temp_name(name);
        let fd = open_at(
            dir.fd(),
            OsStr::new(&tmp),
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            mode,
        )
        .map_err(io_error)
        .with_context(|| format!("creating a temporary file in {}", dir.path().display()))?;
        Ok(Staged {
            dir: dir.clone(),
            name: name.to_string(),
            file: File::from(fd),
            named: Some(tmp),
        })
    }

    /// Puts every staged output in place, in the order staged. Returns the
    /// paths replaced; on failure the error lists what was and was not.
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        let mut done: Vec<PathBuf> = Vec::new();
        let staged = std::mem::take(&mut self.staged);
        let mut rest = staged.into_iter();
        while let Some(mut s) = rest.next() {
            let shown = s.dir.display(&s.name);
            if let Err(e) = put_in_place(&mut s) {
                let not: Vec<String> = std::iter::once(shown.display().to_string())
                    .chain(rest.map(|r| r.dir.display(&r.name).display().to_string()))
                    .collect();
                let replaced: Vec<String> = done.iter().map(|p| p.display().to_string()).collect();
                return Err(e.context(format!(
                    "putting the outputs in place failed at {}. Replaced: {}. Not replaced \
                     (any previous version is still there): {}. Fix the cause and run again: \
                     the next run rewrites every output",
                    shown.display(),
                    if replaced.is_empty() {
                        "nothing".to_string()
                    } else {
                        replaced.join(", ")
                    },
                    not.join(", ")
                )));
            }
            s.dir.sync();
            done.push(shown);
        }
        Ok(done)
    }
}

/// Gives a staged file its final name, replacing what had it.
fn put_in_place(s: &mut Staged) -> Result<()> {
    let dir = s.dir.fd();
    let shown = s.dir.display(&s.name);
    let tmp = match &s.named {
        Some(tmp) => tmp.clone(),
        None => {
            let tmp = temp_name(&s.name);
            link_anonymous(&s.file, dir, &tmp)
                .with_context(|| format!("giving the new {} a name", shown.display()))?;
            // From here the name exists; Drop removes it if the rename fails.
            s.named = Some(tmp.clone());
            tmp
        }
    };
    rustix::fs::renameat(dir, tmp.as_str(), dir, s.name.as_str())
        .map_err(io_error)
        .with_context(|| format!("renaming the new file to {}", shown.display()))?;
    s.named = None;
    Ok(())
}

/// Links an `O_TMPFILE` file into `dir` as `name`.
fn link_anonymous(file: &File, dir: BorrowedFd<'_>, name: &str) -> Result<()> {
    match rustix::fs::linkat(file, "", dir, name, AtFlags::EMPTY_PATH) {
        Ok(()) => Ok(()),
        // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; the /proc link does not.
        Err(Errno::NOENT | Errno::PERM | Errno::ACCESS) => {
            let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
            rustix::fs::linkat(
                rustix::fs::CWD,
                proc_path.as_str(),
                dir,
                name,
                AtFlags::SYMLINK_FOLLOW,
            )
            .map_err(io_error)
            .context("linking the temporary file")
        }
        Err(e) => Err(io_error(e)).context("linking the temporary file"),
    }
}

#[cfg(test)]
#[path = "outdir_tests.rs"]
mod tests;
