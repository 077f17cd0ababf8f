//! Copying the configuration out of a mounted medium, safely.
//!
//! The medium is untrusted: only directories and regular files are copied,
//! never followed symlinks (nothing outside the medium is ever read), with
//! bounds on size, count and depth so a hostile or broken medium cannot fill
//! the disk. Everything lands owner-only (0700 directories, 0600 files): the
//! configuration holds the pull secret and private keys.

use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::host::outdir::OutputDir;

/// Bounds of one copy.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_entries: u64,
    pub max_depth: usize,
}

impl Default for Limits {
    /// A config ISO holds a few JSON and YAML files; these leave room for
    /// large extra manifests while refusing absurd media.
    fn default() -> Self {
        Limits {
            max_bytes: 512 << 20,
            max_entries: 100_000,
            max_depth: 32,
        }
    }
}

/// What a copy did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
    /// Entries left out: symlinks, devices, sockets, FIFOs (paths relative
    /// to the source).
    pub skipped: Vec<String>,
}

/// Copies the tree under `from` into the existing empty directory `to`.
pub fn copy_tree(from: &Path, to: &Path, limits: Limits) -> Result<Copied> {
    copy_tree_into(from, &OutputDir::open(to)?, limits)
}

/// Copies the tree under `from` into the empty directory held by `to`.
/// Everything is created through directory descriptors, new (`O_EXCL`,
/// `mkdirat`), never through a symlink.
pub fn copy_tree_into(from: &Path, to: &OutputDir, limits: Limits) -> Result<Copied> {
    let mut done = Copied::default();
    walk(from, to, Path::new(""), 0, limits, &mut done)?;
    Ok(done)
}

fn walk(
    src: &Path,
    dst: &OutputDir,
    rel: &Path,
    depth: usize,
    limits: Limits,
    done: &mut Copied,
) -> Result<()> {
    if depth > limits.max_depth {
        bail!(
            "the configuration medium nests directories deeper than {} levels at {}; \
             rebuild it with `sprout create config-image`",
            limits.max_depth,
            rel.display()
        );
    }
    let mut entries = fs::read_dir(src)
        .with_context(|| format!("reading directory {}", src.display()))?
        .collect::<io::Result<Vec<_>>>()
        .with_context(|| format!("reading directory {}", src.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        if done.files + done.dirs >= limits.max_entries {
            bail!(
                "the configuration medium holds more than {} entries; \
                 rebuild it with `sprout create config-image`",
                limits.max_entries
            );
        }
        let name = entry.file_name();
        let (s, d, r) = (entry.path(), dst.display(&name), rel.join(&name));
        // symlink_metadata: the entry itself, never what a link points to.
        let meta =
            fs::symlink_metadata(&s).with_context(|| format!("inspecting {}", s.display()))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            let sub = dst.create_subdir(&name, 0o700)?;
            done.dirs += 1;
            walk(&s, &sub, &r, depth + 1, limits, done)?;
        } else if kind.is_file() {
            let budget = limits.max_bytes.saturating_sub(done.bytes);
            done.bytes += copy_file(&s, dst, &name, budget)
                .with_context(|| format!("copying {} to {}", s.display(), d.display()))?;
            done.files += 1;
        } else {
            tracing::warn!(
                "skipping {} on the configuration medium: not a regular file or directory",
                r.display()
            );
            done.skipped.push(r.display().to_string());
        }
    }
    Ok(())
}

/// Copies one regular file to the new file `dst/name`, at most `budget`
/// bytes; returns its size.
fn copy_file(src: &Path, dst: &OutputDir, name: &OsStr, budget: u64) -> Result<u64> {
    // O_NOFOLLOW: if the entry was swapped for a link since it was
    // inspected, the open fails instead of reading elsewhere.
    let input = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(src)?;
    let mut output = dst.create_file(name, 0o600)?;
    // One byte more than the budget tells "too big" from "exactly fits".
    let copied = io::copy(&mut input.take(budget.saturating_add(1)), &mut output)?;
    if copied > budget {
        drop(output);
        let _ = dst.remove_entry(name);
        bail!(
            "the configuration medium holds more than {} MiB; \
             rebuild it with `sprout create config-image`",
            budget >> 20
        );
    }
    output.flush()?;
    output.sync_all()?;
    Ok(copied)
}

/// Moves every entry of `staging` into `target`, replacing entries of the
/// same name, and `last` (when present) after all others: readers that wait
/// for `last` see a complete tree.
pub fn install_entries(staging: &Path, target: &Path, last: &str) -> Result<()> {
    install_entries_at(&OutputDir::open(staging)?, &OutputDir::open(target)?, last)
}

/// [`install_entries`] on held directories: each entry is swapped into place
/// (atomically where the filesystem can) and the stale one removed, never
/// through a symlink.
pub fn install_entries_at(staging: &OutputDir, target: &OutputDir, last: &str) -> Result<()> {
    let mut names = staging.entry_names()?;
    // Stable order, `last` at the end.
    names.sort_by_key(|n| (n == last, n.clone()));
    for name in names {
        staging.move_into(&name, target)?;
    }
    target.sync();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn copies_files_and_dirs_owner_only_and_skips_links() {
        let src = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "host secret").unwrap();
        fs::create_dir_all(src.path().join("cluster-configuration/manifests")).unwrap();
        fs::write(src.path().join("cluster-configuration/manifest.json"), "{}").unwrap();
        fs::write(
            src.path().join("cluster-configuration/manifests/a.json"),
            "a",
        )
        .unwrap();
        symlink(outside.path().join("secret"), src.path().join("leak")).unwrap();
        symlink(outside.path(), src.path().join("leakdir")).unwrap();

        let dst = tempfile::tempdir().unwrap();
        let done = copy_tree(src.path(), dst.path(), Limits::default()).unwrap();
        assert_eq!((done.files, done.dirs, done.bytes), (2, 2, 3));
        assert_eq!(done.skipped, vec!["leak", "leakdir"]);
        assert!(!dst.path().join("leak").exists());
        assert!(!dst.path().join("leakdir").exists());
        let m = dst.path().join("cluster-configuration/manifest.json");
        assert_eq!(fs::read_to_string(&m).unwrap(), "{}");
        assert_eq!(mode(&m), 0o600);
        assert_eq!(mode(&dst.path().join("cluster-configuration")), 0o700);
    }

    #[test]
    fn refuses_a_medium_over_the_size_limit() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("big"), vec![0u8; 4096]).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_bytes: 4095,
            ..Limits::default()
        };
        let err = copy_tree(src.path(), dst.path(), limits).unwrap_err();
        assert!(format!("{err:#}").contains("holds more than"), "{err:#}");
        assert!(!dst.path().join("big").exists());
        // Exactly at the limit is fine.
        let limits = Limits {
            max_bytes: 4096,
            ..Limits::default()
        };
        copy_tree(src.path(), dst.path(), limits).unwrap();
    }

    #[test]
    fn refuses_deep_nesting() {
        let src = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("a/b/c/d")).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_depth: 2,
            ..Limits::default()
        };
        let err = copy_tree(src.path(), dst.path(), limits).unwrap_err();
        assert!(format!("{err:#}").contains("deeper than 2"), "{err:#}");
    }

    #[test]
    fn installs_the_marker_entry_last_and_replaces_stale_ones() {
        let staging = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        fs::create_dir(staging.path().join("cluster-configuration")).unwrap();
        fs::create_dir(staging.path().join("extra-manifests")).unwrap();
        fs::write(staging.path().join("extra-manifests/new.yaml"), "new").unwrap();
        // Left by an interrupted earlier run.
        fs::create_dir(target.path().join("extra-manifests")).unwrap();
        fs::write(target.path().join("extra-manifests/old.yaml"), "old").unwrap();

        install_entries(staging.path(), target.path(), "cluster-configuration").unwrap();
        assert!(target.path().join("cluster-configuration").is_dir());
        assert!(target.path().join("extra-manifests/new.yaml").is_file());
        assert!(!target.path().join("extra-manifests/old.yaml").exists());
        assert_eq!(fs::read_dir(staging.path()).unwrap().count(), 0);
    }
}
