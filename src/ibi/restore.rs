//! Restoring a seed onto the target's ostree sysroot (lifecycle-agent.md
//! §2.4 C.5–C.18): each piece a function an ibi step runs, each with the
//! predicate that tells whether it is already done, so a resumed run skips
//! what a crash did not undo.
//!
//! The extractions are safe to redo over a partial earlier one: the seed
//! extractor replaces files and links as tar does and re-applies directory
//! metadata at the end, so the result equals a clean run. Their "done"
//! markers live in `ostree/deploy/<stateroot>/.sprout/` (the deployment
//! root is immutable) and name the seed commit, so a marker left by
//! another seed never counts.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::host::fs::{PUBLIC_MODE, SECRET_MODE, create_dir_with_mode, write_atomic};
use crate::host::ostree::{
    DeploymentInfo, OstreeSysroot, PullProgress, Stateroot, seed_kernel_args,
};
use crate::seed::files::CONTAINERS_LIST;
use crate::seed::{ExtractOptions, ExtractReport, Seed, Tarball};

/// Where sprout keeps its markers, inside the stateroot directory.
pub const MARKER_DIR: &str = ".sprout";
/// Where the live system gets the seed's lists (§2.6: upstream's
/// CWD-relative `var/tmp/…`, made absolute under the live root).
pub const LIVE_CONTAINERS_LIST: &str = "var/tmp/containers.list";
pub const LIVE_MANIFEST: &str = "var/tmp/manifest.json";

/// What a marker records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub seed: String,
    pub commit: String,
    pub members: u64,
    pub bytes: u64,
}

fn commit(seed: &Seed) -> &str {
    &seed.booted_deployment().checksum
}

fn marker_path(sysroot: &OstreeSysroot, s: &Stateroot, name: &str) -> PathBuf {
    sysroot.stateroot_dir(s).join(MARKER_DIR).join(name)
}

fn write_marker(
    sysroot: &OstreeSysroot,
    s: &Stateroot,
    name: &str,
    seed: &Seed,
    r: &ExtractReport,
) -> Result<()> {
    let p = marker_path(sysroot, s, name);
    if let Some(dir) = p.parent() {
        create_dir_with_mode(dir, 0o700)?;
    }
    let m = Marker {
        seed: seed.reference().to_string(),
        commit: commit(seed).to_string(),
        members: r.members,
        bytes: r.bytes,
    };
    write_atomic(&p, &serde_json::to_vec_pretty(&m)?, SECRET_MODE)
}

fn has_marker(sysroot: &OstreeSysroot, s: &Stateroot, name: &str, seed: &Seed) -> bool {
    fs::read(marker_path(sysroot, s, name))
        .ok()
        .and_then(|b| serde_json::from_slice::<Marker>(&b).ok())
        .is_some_and(|m| m.commit == commit(seed))
}

/// C.5–C.9 in one pass: `ostree.tgz` read once from the seed and its
/// objects written straight into the sysroot's repository, every checksum
/// verified, with no workspace copy (issue 14: the extract-then-pull-local
/// sequence wrote each object twice). Done when [`is_imported`].
pub fn import_seed(
    seed: &Seed,
    sysroot: &OstreeSysroot,
    progress: impl FnMut(PullProgress),
) -> Result<PullProgress> {
    let r = seed.open_file(Tarball::Ostree.file_name())?;
    sysroot
        .import_tgz(r, commit(seed), progress)
        .with_context(|| format!("importing the seed {}", seed.reference()))
}

/// C.5–C.6: extracts `ostree.tgz` into `workspace/ostree` (recreated: a
/// partial extraction is never reused) and returns that repository. The
/// workspace should be on the target disk, not the live system's RAM.
pub fn extract_seed_repo(seed: &Seed, workspace: &Path, opts: &ExtractOptions) -> Result<PathBuf> {
    let dir = workspace.join("ostree");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing the old {}", dir.display()))?;
    }
    create_dir_with_mode(&dir, 0o700)?;
    seed.extract(Tarball::Ostree, &dir, opts)?;
    Ok(dir)
}

/// C.9: imports the extracted repository into the sysroot, verifying
/// every object. Done when [`is_imported`].
pub fn import_seed_repo(
    seed: &Seed,
    sysroot: &OstreeSysroot,
    repo: &Path,
    progress: impl FnMut(PullProgress) + 'static,
) -> Result<PullProgress> {
    sysroot.import_repo(repo, commit(seed), progress)
}

/// The seed's commit is complete in the sysroot's repository.
pub fn is_imported(seed: &Seed, sysroot: &OstreeSysroot) -> Result<bool> {
    sysroot.has_commit(commit(seed))
}

/// C.10: creates the stateroot. Done when `sysroot.has_stateroot(s)`.
pub fn init_stateroot(sysroot: &OstreeSysroot, s: &Stateroot) -> Result<()> {
    sysroot.init_stateroot(s)
}

/// C.11–C.13: deploys the seed's booted commit in `s` with the seed's
/// kernel arguments and origin, as the default deployment. Done when
/// [`seed_deployment`] is `Some`.
pub fn deploy_seed(seed: &Seed, sysroot: &OstreeSysroot, s: &Stateroot) -> Result<DeploymentInfo> {
    if !is_imported(seed, sysroot)? {
        bail!(
            "the seed commit {} is not imported yet; import it first",
            commit(seed)
        );
    }
    sysroot.deploy(
        s,
        commit(seed),
        &seed_kernel_args(seed.machine_config()),
        seed.origin(),
    )
}

/// The deployment of `s` at the seed's commit with the seed's kernel
/// arguments, if there is one.
pub fn seed_deployment(
    seed: &Seed,
    sysroot: &OstreeSysroot,
    s: &Stateroot,
) -> Result<Option<DeploymentInfo>> {
    let want = seed_kernel_args(seed.machine_config()).join(" ");
    Ok(sysroot.deployment_of(s)?.filter(|d| {
        d.checksum == commit(seed) && d.kernel_args.as_deref().unwrap_or("").starts_with(&want)
    }))
}

/// C.14: the seed's `.origin`, byte for byte, as the deployment's origin.
pub fn restore_origin(seed: &Seed, dep: &DeploymentInfo) -> Result<()> {
    write_atomic(&dep.origin_path(), seed.origin(), PUBLIC_MODE)
}

pub fn is_origin_restored(seed: &Seed, dep: &DeploymentInfo) -> bool {
    fs::read(dep.origin_path()).is_ok_and(|b| b == seed.origin())
}

/// C.15: `var.tgz` into the stateroot directory. Done when
/// [`is_var_restored`].
pub fn restore_var(
    seed: &Seed,
    sysroot: &OstreeSysroot,
    s: &Stateroot,
    opts: &ExtractOptions,
) -> Result<ExtractReport> {
    let r = seed.extract(Tarball::Var, &sysroot.stateroot_dir(s), opts)?;
    write_marker(sysroot, s, "var.json", seed, &r)?;
    Ok(r)
}

pub fn is_var_restored(seed: &Seed, sysroot: &OstreeSysroot, s: &Stateroot) -> bool {
    has_marker(sysroot, s, "var.json", seed)
}

fn etc_marker(dep: &DeploymentInfo) -> String {
    format!("etc-{}.json", dep.name())
}

fn deletions_marker(dep: &DeploymentInfo) -> String {
    format!("etc-deletions-{}.json", dep.name())
}

/// C.16: `etc.tgz` into the deployment. Done when [`is_etc_restored`].
pub fn restore_etc(
    seed: &Seed,
    sysroot: &OstreeSysroot,
    s: &Stateroot,
    dep: &DeploymentInfo,
    opts: &ExtractOptions,
) -> Result<ExtractReport> {
    let r = seed.extract(Tarball::Etc, &dep.dir, opts)?;
    write_marker(sysroot, s, &etc_marker(dep), seed, &r)?;
    Ok(r)
}

pub fn is_etc_restored(
    seed: &Seed,
    sysroot: &OstreeSysroot,
    s: &Stateroot,
    dep: &DeploymentInfo,
) -> bool {
    has_marker(sysroot, s, &etc_marker(dep), seed)
}

/// C.17: removes each `etc.deletions` path from the deployment. A path
/// already absent is a warning, returned (W13: upstream fails the whole
/// installation on it). Never follows a symbolic link out of the
/// deployment. Done when [`are_etc_deletions_applied`].
pub fn apply_etc_deletions(
    seed: &Seed,
    sysroot: &OstreeSysroot,
    s: &Stateroot,
    dep: &DeploymentInfo,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let mut removed = 0u64;
    for d in seed.etc_deletions() {
        let rel = d.relative();
        let mut here = dep.dir.clone();
        let mut components = rel.components().peekable();
        let mut missing = false;
        while let Some(c) = components.next() {
            here.push(c);
            let last = components.peek().is_none();
            match here.symlink_metadata() {
                Ok(md) if !last && md.file_type().is_symlink() => bail!(
                    "etc.deletions: /{} goes through the symbolic link {}; refusing to follow it",
                    rel.display(),
                    here.display()
                ),
                Ok(md) if last && md.is_dir() => bail!(
                    "etc.deletions: /{} is a directory in the deployment; the seed lists only files",
                    rel.display()
                ),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    missing = true;
                    break;
                }
                Err(e) => return Err(e).with_context(|| format!("reading {}", here.display())),
            }
        }
        if missing {
            warnings.push(format!(
                "etc.deletions: /{} is already absent from the deployment; nothing to delete",
                rel.display()
            ));
            continue;
        }
        fs::remove_file(&here).with_context(|| format!("removing {}", here.display()))?;
        removed += 1;
    }
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let r = ExtractReport {
        members: removed,
        ..ExtractReport::default()
    };
    write_marker(sysroot, s, &deletions_marker(dep), seed, &r)?;
    Ok(warnings)
}

pub fn are_etc_deletions_applied(
    seed: &Seed,
    sysroot: &OstreeSysroot,
    s: &Stateroot,
    dep: &DeploymentInfo,
) -> bool {
    has_marker(sysroot, s, &deletions_marker(dep), seed)
}

/// C.18: `containers.list` and `manifest.json` to `/var/tmp/…` of the
/// live system whose root is `live_root` (`/`, or `/host` in container
/// mode), where the precache step reads them.
pub fn copy_seed_lists(seed: &Seed, live_root: &Path) -> Result<()> {
    let list = live_root.join(LIVE_CONTAINERS_LIST);
    if let Some(dir) = list.parent()
        && !dir.exists()
    {
        create_dir_with_mode(dir, 0o1777)?;
    }
    seed.copy_file(CONTAINERS_LIST, &list, SECRET_MODE)?;
    write_atomic(
        &live_root.join(LIVE_MANIFEST),
        seed.cluster_info_json(),
        SECRET_MODE,
    )
}

pub fn are_seed_lists_copied(seed: &Seed, live_root: &Path) -> Result<bool> {
    let mut want = Vec::new();
    seed.open_file(CONTAINERS_LIST)?
        .read_to_end(&mut want)
        .with_context(|| format!("reading {CONTAINERS_LIST} from the seed"))?;
    let same = |rel: &str, bytes: &[u8]| fs::read(live_root.join(rel)).is_ok_and(|b| b == bytes);
    Ok(same(LIVE_CONTAINERS_LIST, &want) && same(LIVE_MANIFEST, seed.cluster_info_json()))
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
