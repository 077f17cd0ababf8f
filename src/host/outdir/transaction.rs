//! All outputs of a run staged, then put in place together.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{OutputDir, check_name, io_error, open_at, temp_name};

/// How temporary files are made: anonymous where the filesystem allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staging {
    /// `O_TMPFILE`, falling back to named files where unsupported.
    Anonymous,
    /// Always a `.sprout-tmp.*` file (what filesystems without `O_TMPFILE` get).
    Named,
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
