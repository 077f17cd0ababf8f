//! Safe, streamed extraction of a seed tarball into a directory.
//!
//! The gzip stream is read once, member by member, with a fixed buffer: a
//! multi-GiB `var.tgz` costs a few MiB of memory and no temporary copy.
//! Every member passes [`member::Policy`] first; on top of that nothing is
//! ever written through a symbolic link, whether the archive made it or it
//! was in the destination before: each parent directory is checked with
//! `lstat` and files are created with `O_NOFOLLOW | O_EXCL`. Ownership (as
//! root), permissions including set-id bits, times, extended attributes and
//! SELinux labels are kept where the destination filesystem supports them.
//!
//! An error stops the extraction; the destination then holds the members
//! before the bad one, so callers extract into a directory of their own.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::read::MultiGzDecoder;
use rustix::fs::{AtFlags, CWD, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use serde::Serialize;

use super::files::Tarball;
use super::member::{Kind, Member, Policy};
use super::meta::Meta;

#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Give members their recorded owners (needs root; the default when
    /// running as root).
    pub same_owner: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            same_owner: rustix::process::geteuid().is_root(),
        }
    }
}

/// What an extraction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExtractReport {
    pub members: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    pub xattrs: u64,
    /// Extended attributes the destination does not support.
    pub xattrs_skipped: u64,
    /// POSIX ACLs in the tarball. They are not restored: no seed directory
    /// the installation reads depends on one.
    pub acls_skipped: u64,
}

/// Extracts the gzip tarball `reader` (a seed's `tarball`) into `dest`,
/// which must exist.
pub fn extract_tgz(
    reader: impl Read,
    tarball: Tarball,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractReport> {
    let mut buffered = BufReader::with_capacity(256 << 10, reader);
    let head = buffered
        .fill_buf()
        .with_context(|| format!("reading {tarball}"))?;
    if !head.starts_with(&[0x1f, 0x8b]) {
        bail!("{tarball} is not a gzip file");
    }
    extract_tar(MultiGzDecoder::new(buffered), tarball, dest, opts)
}

/// Extracts the plain tar stream `reader` into `dest`.
pub fn extract_tar(
    reader: impl Read,
    tarball: Tarball,
    dest: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractReport> {
    if !dest.is_dir() {
        bail!("{} is not a directory", dest.display());
    }
    let mut x = Extractor {
        dest: dest.to_path_buf(),
        opts: opts.clone(),
        policy: Policy::new(tarball),
        report: ExtractReport::default(),
        dirs_ok: HashSet::new(),
        deferred: Vec::new(),
        buf: vec![0; 256 << 10],
        first_skipped_xattr: None,
    };
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .with_context(|| format!("reading {tarball}"))?;
    for entry in entries {
        let mut entry = entry.with_context(|| {
            format!(
                "reading {tarball} after {} members: it is corrupt or truncated",
                x.report.members
            )
        })?;
        let raw_path = entry.path_bytes().into_owned();
        let raw_link = entry.link_name_bytes().map(|l| l.into_owned());
        let kind = entry.header().entry_type();
        let Some(member) = x.policy.check(kind, &raw_path, raw_link.as_deref())? else {
            continue;
        };
        let meta =
            Meta::of(&mut entry).with_context(|| format!("{tarball}: member {:?}", member.path))?;
        x.member(&member, meta, &mut entry).with_context(|| {
            format!(
                "extracting {tarball} member {} into {}",
                member.path.display(),
                dest.display()
            )
        })?;
        x.report.members += 1;
    }
    x.finish_dirs()?;
    if x.report.xattrs_skipped > 0 {
        tracing::warn!(
            "{tarball}: {} extended attributes (e.g. {}) were not kept: {} does not support them",
            x.report.xattrs_skipped,
            x.first_skipped_xattr.as_deref().unwrap_or("?"),
            dest.display()
        );
    }
    if x.report.acls_skipped > 0 {
        tracing::debug!(
            "{tarball}: {} POSIX ACLs not restored",
            x.report.acls_skipped
        );
    }
    Ok(x.report)
}

struct Extractor {
    dest: PathBuf,
    opts: ExtractOptions,
    policy: Policy,
    report: ExtractReport,
    /// Directories already checked to be real directories (bounded).
    dirs_ok: HashSet<PathBuf>,
    /// Directory metadata, applied last so writing children does not
    /// undo times and read-only modes do not block writing them.
    deferred: Vec<(PathBuf, Meta)>,
    buf: Vec<u8>,
    first_skipped_xattr: Option<String>,
}

impl Extractor {
    fn member(&mut self, m: &Member, meta: Meta, data: &mut impl Read) -> Result<()> {
        self.report.acls_skipped += u64::from(meta.acls);
        self.make_parents(&m.path)?;
        let path = self.dest.join(&m.path);
        match &m.kind {
            Kind::Dir => {
                match path.symlink_metadata() {
                    Ok(md) if md.is_dir() => {}
                    Ok(_) => {
                        remove(&path)?;
                        mkdir(&path)?;
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => mkdir(&path)?,
                    Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
                }
                self.dirs_ok.insert(m.path.clone());
                self.deferred.push((path, meta));
            }
            Kind::File => {
                self.clear(&path)?;
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(no_follow())
                    .open(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                loop {
                    let n = data
                        .read(&mut self.buf)
                        .context("reading the member's data")?;
                    if n == 0 {
                        break;
                    }
                    f.write_all(&self.buf[..n])
                        .with_context(|| format!("writing {}", path.display()))?;
                    self.report.bytes = self.report.bytes.saturating_add(n as u64);
                }
                self.apply_fd(&path, &f, &meta)?;
            }
            Kind::Symlink(target) => {
                self.clear(&path)?;
                std::os::unix::fs::symlink(target, &path)
                    .with_context(|| format!("creating the symbolic link {}", path.display()))?;
                self.apply_path(&path, &meta, true)?;
            }
            Kind::HardLink(target) => {
                let source = self.dest.join(target);
                self.check_parents(target)?;
                match source.symlink_metadata() {
                    Ok(md) if !md.is_dir() => {}
                    _ => bail!(
                        "it is a hard link to {}, which is not a file in the destination",
                        target.display()
                    ),
                }
                self.clear(&path)?;
                // linkat without AT_SYMLINK_FOLLOW: a link to a symbolic
                // link links the link itself.
                fs::hard_link(&source, &path).with_context(|| {
                    format!("linking {} to {}", path.display(), source.display())
                })?;
            }
            Kind::Fifo => {
                self.clear(&path)?;
                rustix::fs::mkfifoat(CWD, &path, Mode::from_raw_mode(0o600))
                    .with_context(|| format!("creating the FIFO {}", path.display()))?;
                self.apply_path(&path, &meta, false)?;
            }
        }
        Ok(())
    }

    /// Creates the member's missing parents; refuses any that is not a
    /// real directory.
    fn make_parents(&mut self, rel: &Path) -> Result<()> {
        self.walk_parents(rel, true)
    }

    /// Like `make_parents` but creates nothing.
    fn check_parents(&mut self, rel: &Path) -> Result<()> {
        self.walk_parents(rel, false)
    }

    fn walk_parents(&mut self, rel: &Path, create: bool) -> Result<()> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        if self.dirs_ok.contains(parent) {
            return Ok(());
        }
        let mut prefix = PathBuf::new();
        for c in parent.components() {
            prefix.push(c);
            if self.dirs_ok.contains(&prefix) {
                continue;
            }
            let p = self.dest.join(&prefix);
            match p.symlink_metadata() {
                Ok(md) if md.is_dir() => {}
                Ok(md) if md.file_type().is_symlink() => bail!(
                    "{} is a symbolic link in the destination; sprout never writes through one",
                    prefix.display()
                ),
                Ok(_) => bail!("{} is not a directory in the destination", prefix.display()),
                Err(e) if e.kind() == ErrorKind::NotFound && create => {
                    DirBuilder::new()
                        .mode(0o755)
                        .create(&p)
                        .with_context(|| format!("creating {}", p.display()))?;
                }
                Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
            }
            if self.dirs_ok.len() > 100_000 {
                // Bounds memory on archives with huge numbers of directories.
                self.dirs_ok.clear();
            }
            self.dirs_ok.insert(prefix.clone());
        }
        Ok(())
    }

    /// Makes room for a non-directory member: an existing file or link is
    /// replaced, as tar does; a directory is not.
    fn clear(&mut self, path: &Path) -> Result<()> {
        match path.symlink_metadata() {
            Ok(md) if md.is_dir() => bail!(
                "{} is a directory; a member cannot replace it",
                path.display()
            ),
            Ok(_) => remove(path),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    fn apply_fd(&mut self, path: &Path, f: &File, m: &Meta) -> Result<()> {
        let ctx = || format!("setting the metadata of {}", path.display());
        if self.opts.same_owner {
            // Before chmod: chown clears set-id bits.
            rustix::fs::fchown(f, Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)))
                .with_context(ctx)?;
        }
        rustix::fs::fchmod(f, Mode::from_raw_mode(m.mode)).with_context(ctx)?;
        // After chown, which clears security.capability.
        for (name, value) in &m.xattrs {
            let r = rustix::fs::fsetxattr(f.as_fd(), name.as_str(), value, XattrFlags::empty());
            self.xattr_result(path, name, r)?;
        }
        rustix::fs::futimens(f, &times(m.mtime)).with_context(ctx)
    }

    fn apply_path(&mut self, path: &Path, m: &Meta, is_link: bool) -> Result<()> {
        let ctx = || format!("setting the metadata of {}", path.display());
        if self.opts.same_owner {
            let (u, g) = (Some(Uid::from_raw(m.uid)), Some(Gid::from_raw(m.gid)));
            rustix::fs::chownat(CWD, path, u, g, AtFlags::SYMLINK_NOFOLLOW).with_context(ctx)?;
        }
        if !is_link {
            rustix::fs::chmodat(CWD, path, Mode::from_raw_mode(m.mode), AtFlags::empty())
                .with_context(ctx)?;
        }
        for (name, value) in &m.xattrs {
            let r = rustix::fs::lsetxattr(path, name.as_str(), value, XattrFlags::empty());
            self.xattr_result(path, name, r)?;
        }
        rustix::fs::utimensat(CWD, path, &times(m.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .with_context(ctx)
    }

    /// Counts an attribute the destination cannot hold instead of failing;
    /// a label the running SELinux policy forbids setting is an error, as
    /// the installed system would boot with wrong labels.
    fn xattr_result(&mut self, path: &Path, name: &str, r: rustix::io::Result<()>) -> Result<()> {
        match r {
            Ok(()) => {
                self.report.xattrs += 1;
                Ok(())
            }
            Err(Errno::NOTSUP) => self.skip_xattr(name),
            Err(Errno::PERM | Errno::ACCESS)
                if !(self.opts.same_owner && name == "security.selinux") =>
            {
                // user.* on a link, trusted.* without root.
                self.skip_xattr(name)
            }
            Err(e) => Err(e).with_context(|| {
                format!(
                    "setting {name} on {}; if SELinux denied it, run sprout in a domain allowed \
                     to relabel files (upstream runs its tar as install_exec_t)",
                    path.display()
                )
            }),
        }
    }

    fn skip_xattr(&mut self, name: &str) -> Result<()> {
        self.report.xattrs_skipped += 1;
        if self.first_skipped_xattr.is_none() {
            self.first_skipped_xattr = Some(name.to_string());
        }
        Ok(())
    }

    fn finish_dirs(&mut self) -> Result<()> {
        let deferred = std::mem::take(&mut self.deferred);
        for (path, meta) in deferred.iter().rev() {
            let dir = OpenOptions::new()
                .read(true)
                .custom_flags((OFlags::DIRECTORY | OFlags::NOFOLLOW).bits() as i32)
                .open(path)
                .with_context(|| format!("opening the directory {}", path.display()))?;
            self.apply_fd(path, &dir, meta)?;
        }
        Ok(())
    }
}

fn no_follow() -> i32 {
    OFlags::NOFOLLOW.bits() as i32
}

fn mkdir(p: &Path) -> Result<()> {
    DirBuilder::new()
        .mode(0o700)
        .create(p)
        .with_context(|| format!("creating {}", p.display()))
}

fn remove(p: &Path) -> Result<()> {
    fs::remove_file(p).with_context(|| format!("removing {}", p.display()))
}

fn times(mtime: i64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}
