//! The target's ostree sysroot, through libostree (no `ostree` CLI, no
//! shell): import a seed's repository, create a stateroot, deploy a commit
//! with kernel arguments passed one by one, and find or remove deployments
//! by stateroot name (lifecycle-agent.md §2.4 C.9–C.13 and F; W1, W9).
//!
//! Every function takes the sysroot path explicitly (W7: upstream sets a
//! process-wide `/mnt/` prefix). Mutations hold ostree's sysroot lock, as
//! the `ostree admin` commands do.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ::ostree::gio;
use ::ostree::glib;
use anyhow::{Context, Result, bail};

use crate::seed::MachineConfigSummary;

/// The stateroot `coreos-installer` writes.
pub const ORIGINAL_STATEROOT: &str = "rhcos";

/// A stateroot (osname) name, checked to be one directory name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Stateroot(String);

impl Stateroot {
    pub fn new(name: &str) -> Result<Self> {
        let ok = !name.is_empty()
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
        if !ok {
            bail!("{name:?} is not a usable stateroot name (letters, digits, '.', '_', '-', '+')");
        }
        Ok(Self(name.to_string()))
    }

    /// `rhcos_<version>` with every `-` replaced by `_`, as upstream names
    /// the seed's stateroot (`4.16.0-rc.1` → `rhcos_4.16.0_rc.1`).
    pub fn for_seed_version(version: &str) -> Result<Self> {
        Self::new(&format!("rhcos_{}", version.replace('-', "_")))
            .with_context(|| format!("naming the stateroot for seedVersion {version:?}"))
    }

    pub fn original() -> Self {
        Self(ORIGINAL_STATEROOT.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Stateroot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kernel arguments IBI deploys the seed with: each
/// `spec.kernelArguments` entry as one argument, exactly as written (no
/// shell in between, so quotes and `$` stay), plus `fips=1` and
/// `boot=LABEL=boot` when `spec.fips` (§2.4 C.11).
pub fn seed_kernel_args(mc: &MachineConfigSummary) -> Vec<String> {
    let mut out = mc.kernel_arguments.clone();
    if mc.fips {
        out.push("fips=1".into());
        out.push("boot=LABEL=boot".into());
    }
    out
}

/// One deployment, as `ostree admin status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentInfo {
    /// Position in the boot order; 0 is the default.
    pub index: usize,
    pub stateroot: String,
    pub checksum: String,
    pub serial: i32,
    /// The deployment's root directory.
    pub dir: PathBuf,
    /// The BLS `options` line.
    pub kernel_args: Option<String>,
}

impl DeploymentInfo {
    /// `<checksum>.<serial>`, the deployment's directory name.
    pub fn name(&self) -> String {
        format!("{}.{}", self.checksum, self.serial)
    }

    /// `<dir>.origin`.
    pub fn origin_path(&self) -> PathBuf {
        let mut p = self.dir.clone().into_os_string();
        p.push(".origin");
        PathBuf::from(p)
    }
}

/// Progress of an import, as libostree reports it. From a local
/// repository objects are imported rather than fetched: libostree then
/// counts the metadata objects scanned and ends with a status line such
/// as "10 metadata, 7 content objects imported; 458.8 kB content written";
/// the fetch counters only move for remote pulls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullProgress {
    pub metadata_scanned: u32,
    pub objects_fetched: u32,
    pub objects_requested: u32,
    pub bytes_transferred: u64,
    pub status: Option<String>,
}

/// An ostree sysroot (a directory holding `ostree/repo` and `ostree/deploy`).
pub struct OstreeSysroot {
    path: PathBuf,
    sysroot: ::ostree::Sysroot,
}

impl fmt::Debug for OstreeSysroot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OstreeSysroot")
            .field("path", &self.path)
            .finish()
    }
}

impl OstreeSysroot {
    /// Opens and loads the sysroot at `path` (`/mnt` on the live system).
    pub fn open(path: &Path) -> Result<Self> {
        let path = std::path::absolute(path)
            .with_context(|| format!("resolving the sysroot path {}", path.display()))?;
        let sysroot = ::ostree::Sysroot::new(Some(&gio::File::for_path(&path)));
        sysroot
            .load(gio::Cancellable::NONE)
            .with_context(|| format!("loading the ostree sysroot {}", path.display()))?;
        Ok(Self { path, sysroot })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `ostree/deploy/<stateroot>`, where `var/` lives.
    pub fn stateroot_dir(&self, s: &Stateroot) -> PathBuf {
        self.path.join("ostree/deploy").join(s.as_str())
    }

    fn locked<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.sysroot
            .lock()
            .with_context(|| format!("locking the sysroot {} to {what}", self.path.display()))?;
        let r = f();
        self.sysroot.unlock();
        r
    }

    fn reload(&self) -> Result<()> {
        self.sysroot
            .load(gio::Cancellable::NONE)
            .with_context(|| format!("reloading the ostree sysroot {}", self.path.display()))
    }

    /// True when the sysroot's repository holds the whole commit
    /// `checksum` (an interrupted import leaves it marked partial).
    pub fn has_commit(&self, checksum: &str) -> Result<bool> {
        let repo = self.sysroot.repo();
        let ctx = || format!("looking for commit {checksum} in {}", self.path.display());
        if !repo
            .has_object(
                ::ostree::ObjectType::Commit,
                checksum,
                gio::Cancellable::NONE,
            )
            .with_context(ctx)?
        {
            return Ok(false);
        }
        let (_, state) = repo.load_commit(checksum).with_context(ctx)?;
        Ok(!state.contains(::ostree::RepoCommitState::PARTIAL))
    }

    /// Imports every ref of the repository at `source` (an extracted seed
    /// `ostree.tgz`, archive mode) and the commit `checksum` into the
    /// sysroot's repository, like `ostree pull-local`, but verifying every
    /// object's checksum (`UNTRUSTED`). `progress` is called as libostree
    /// reports progress, at least once at the end.
    pub fn import_repo(
        &self,
        source: &Path,
        checksum: &str,
        progress: impl FnMut(PullProgress) + 'static,
    ) -> Result<PullProgress> {
        let source = std::path::absolute(source)?;
        let src = ::ostree::Repo::new_for_path(&source);
        src.open(gio::Cancellable::NONE).with_context(|| {
            format!("opening the seed's ostree repository {}", source.display())
        })?;
        let refs = src
            .list_refs(None, gio::Cancellable::NONE)
            .with_context(|| format!("listing the refs of {}", source.display()))?;
        let mut wanted: Vec<String> = refs.into_keys().collect();
        wanted.sort();
        if !wanted.iter().any(|r| r == checksum) {
            wanted.push(checksum.to_string());
        }
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let url = url::Url::from_file_path(&source)
            .map_err(|()| anyhow::anyhow!("{} is not an absolute path", source.display()))?;
        let last = Rc::new(RefCell::new(PullProgress::default()));
        let reporter = Rc::new(RefCell::new(progress));
        let p = ::ostree::AsyncProgress::new();
        {
            let last = last.clone();
            p.connect_changed(move |p| {
                let now = PullProgress {
                    metadata_scanned: p.uint("scanned-metadata"),
                    objects_fetched: p.uint("fetched"),
                    objects_requested: p.uint("requested"),
                    bytes_transferred: p.uint64("bytes-transferred"),
                    status: p.status().map(|s| s.to_string()),
                };
                *last.borrow_mut() = now.clone();
                if let Ok(mut f) = reporter.try_borrow_mut() {
                    f(now);
                }
            });
        }
        let flags = ::ostree::RepoPullFlags::MIRROR | ::ostree::RepoPullFlags::UNTRUSTED;
        let repo = self.sysroot.repo();
        self.locked("import the seed", || {
            repo.pull(
                url.as_str(),
                &wanted,
                flags,
                Some(&p),
                gio::Cancellable::NONE,
            )
            .with_context(|| {
                format!(
                    "importing {} into {}/ostree/repo",
                    source.display(),
                    self.path.display()
                )
            })
        })?;
        p.finish();
        if !self.has_commit(checksum)? {
            bail!(
                "the seed's ostree repository has no commit {checksum} (the booted deployment of \
                 its rpm-ostree.json): the seed is inconsistent; recreate it"
            );
        }
        let out = last.borrow().clone();
        Ok(out)
    }

    /// Imports the gzip tarball `reader` of an archive-mode repository (a
    /// seed's `ostree.tgz`) straight into the sysroot's repository, without
    /// extracting it first: every object's checksum verified by libostree,
    /// one filesystem sync at the end, the commit marked partial until all
    /// its objects are in (see [`super::ostree_tar`]). Refs in the tarball
    /// are set as `pull --mirror` sets them.
    pub fn import_tgz(
        &self,
        reader: Box<dyn std::io::Read + Send>,
        checksum: &str,
        progress: impl FnMut(PullProgress),
    ) -> Result<PullProgress> {
        let repo = self.sysroot.repo();
        let mut last = PullProgress::default();
        let mut progress = progress;
        self.locked("import the seed", || {
            super::ostree_tar::import_tgz(&repo, reader, checksum, |p| {
                last = p.clone();
                progress(p);
            })
            .with_context(|| {
                format!(
                    "importing ostree.tgz into {}/ostree/repo",
                    self.path.display()
                )
            })
        })?;
        if !self.has_commit(checksum)? {
            bail!("commit {checksum} is still partial after importing ostree.tgz");
        }
        Ok(last)
    }

    /// True when the stateroot exists (`ostree admin os-init` was run).
    pub fn has_stateroot(&self, s: &Stateroot) -> bool {
        self.stateroot_dir(s).join("var").is_dir()
    }

    /// `ostree admin os-init <stateroot>`; nothing to do if it exists.
    pub fn init_stateroot(&self, s: &Stateroot) -> Result<()> {
        if self.has_stateroot(s) {
            return Ok(());
        }
        self.locked("create a stateroot", || {
            self.sysroot
                .init_osname(s.as_str(), gio::Cancellable::NONE)
                .with_context(|| format!("creating the stateroot {s} in {}", self.path.display()))
        })?;
        self.reload()
    }

    /// Deploys `checksum` in stateroot `s` with exactly `kernel_args` and
    /// the origin file `origin`, and makes it the default deployment; the
    /// others stay, after it (like `ostree admin deploy --no-prune`).
    pub fn deploy(
        &self,
        s: &Stateroot,
        checksum: &str,
        kernel_args: &[String],
        origin: &[u8],
    ) -> Result<DeploymentInfo> {
        let text = std::str::from_utf8(origin).context("the seed's .origin file is not UTF-8")?;
        let keyfile = glib::KeyFile::new();
        keyfile
            .load_from_data(text, glib::KeyFileFlags::KEEP_COMMENTS)
            .context("parsing the seed's .origin file")?;
        let args: Vec<&str> = kernel_args.iter().map(String::as_str).collect();
        let opts = ::ostree::SysrootDeployTreeOpts {
            override_kernel_argv: Some(&args),
            ..Default::default()
        };
        self.locked("deploy", || {
            let new = self
                .sysroot
                .deploy_tree_with_options(
                    Some(s.as_str()),
                    checksum,
                    Some(&keyfile),
                    None,
                    Some(&opts),
                    gio::Cancellable::NONE,
                )
                .with_context(|| format!("deploying {checksum} in stateroot {s}"))?;
            let mut all = vec![new];
            all.extend(self.sysroot.deployments());
            let write = ::ostree::SysrootWriteDeploymentsOpts {
                do_postclean: false,
            };
            self.sysroot
                .write_deployments_with_options(&all, &write, gio::Cancellable::NONE)
                .with_context(|| format!("writing the boot entries in {}", self.path.display()))?;
            // What `ostree admin deploy --no-prune` does next: old boot
            // entries and unreferenced deployments go, the repo is not pruned.
            self.sysroot
                .prepare_cleanup(gio::Cancellable::NONE)
                .with_context(|| format!("cleaning up old boot entries in {}", self.path.display()))
        })?;
        self.reload()?;
        self.deployment_of(s)?
            .with_context(|| format!("the new deployment of {s} is not listed after deploying"))
    }

    /// Every deployment, default first, read fresh from disk.
    pub fn deployments(&self) -> Result<Vec<DeploymentInfo>> {
        self.reload()?;
        Ok(self
            .sysroot
            .deployments()
            .iter()
            .enumerate()
            .map(|(index, d)| DeploymentInfo {
                index,
                stateroot: d.osname().to_string(),
                checksum: d.csum().to_string(),
                serial: d.deployserial(),
                dir: self.path.join(self.sysroot.deployment_dirpath(d).as_str()),
                kernel_args: d
                    .bootconfig()
                    .and_then(|b| b.get("options"))
                    .map(|o| o.to_string()),
            })
            .collect())
    }

    /// The first (newest in boot order) deployment of stateroot `s`.
    pub fn deployment_of(&self, s: &Stateroot) -> Result<Option<DeploymentInfo>> {
        Ok(self
            .deployments()?
            .into_iter()
            .find(|d| d.stateroot == s.as_str()))
    }

    /// Removes every deployment of stateroot `s` and its directory
    /// (`ostree/deploy/<s>`, with its `var`), found by name, never by
    /// index (W9). Refuses to remove the last bootable deployments.
    /// Nothing to do when the stateroot is already gone.
    pub fn remove_stateroot(&self, s: &Stateroot) -> Result<()> {
        let all = self.sysroot.deployments();
        let keep: Vec<::ostree::Deployment> = all
            .iter()
            .filter(|d| d.osname() != s.as_str())
            .cloned()
            .collect();
        if keep.len() != all.len() {
            if keep.is_empty() {
                bail!(
                    "removing stateroot {s} would leave {} with nothing to boot",
                    self.path.display()
                );
            }
            self.locked("remove a stateroot", || {
                let write = ::ostree::SysrootWriteDeploymentsOpts { do_postclean: true };
                self.sysroot
                    .write_deployments_with_options(&keep, &write, gio::Cancellable::NONE)
                    .with_context(|| format!("removing the deployments of stateroot {s}"))
            })?;
            self.reload()?;
        }
        let dir = self.stateroot_dir(s);
        if dir.exists() {
            clear_immutable_below(&dir.join("deploy"))?;
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        Ok(())
    }
}

/// Clears the immutable attribute ostree sets on deployment roots, on
/// every directory directly below `deploy_dir` (`…/ostree/deploy/<s>/deploy`),
/// so they can be removed. A missing directory is nothing to do.
pub fn clear_immutable_below(deploy_dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(deploy_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", deploy_dir.display())),
    };
    for e in entries {
        let p = e
            .with_context(|| format!("listing {}", deploy_dir.display()))?
            .path();
        if p.symlink_metadata().map(|m| m.is_dir()).unwrap_or(false) {
            clear_immutable(&p)?;
        }
    }
    Ok(())
}

/// Clears the immutable attribute of the directory `dir`.
pub fn clear_immutable(dir: &Path) -> Result<()> {
    use rustix::fs::{IFlags, Mode, OFlags};
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("opening {}", dir.display()))?;
    let flags = rustix::fs::ioctl_getflags(&fd)
        .with_context(|| format!("reading the attributes of {}", dir.display()))?;
    if flags.contains(IFlags::IMMUTABLE) {
        rustix::fs::ioctl_setflags(&fd, flags - IFlags::IMMUTABLE)
            .with_context(|| format!("clearing the immutable attribute of {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "ostree_tests.rs"]
mod tests;
