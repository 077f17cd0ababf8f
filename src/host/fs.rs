//! File outputs that are never half-written.
//!
//! Outputs in a directory the user names (`--dir`, `--root`) go through
//! [`super::outdir`] instead: no symlink followed, one transaction per run,
//! a lock. What is here serves sprout's own caches.
//!
//! Every output goes to a temporary file in its destination directory, is
//! synced, gets its final mode, and is renamed over the destination. A crash
//! or error leaves either the old file or the new one, never a torn mix.

use std::fs::{self, File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};

use super::outdir::{OutputDir, Transaction};

/// Mode of files holding secrets: keys, passwords, pull secrets, kubeconfigs.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of ordinary outputs.
pub const PUBLIC_MODE: u32 = 0o644;

/// Writes `contents` to `path` atomically with `mode`.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_atomic_with(path, mode, |f| {
        f.write_all(contents)
            .with_context(|| format!("writing {}", path.display()))
    })
}

/// Creates `path` atomically with `mode`, its content produced by `fill`.
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<()>,
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The temporary file is created 0600, so a secret is never readable by
    // others, not even for a moment.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    fill(tmp.as_file_mut())?;
    tmp.as_file()
        .set_permissions(Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("renaming the temporary file to {}", path.display()))?;
    if let Ok(d) = File::open(dir) {
        // Makes the rename durable; failure only weakens crash safety.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes a sample input file `dir/name` (0600: samples become files with
/// secrets or site details), refusing to replace an existing one unless
/// `force`.
///
/// The sample is written through [`OutputDir`] under the directory's lock:
/// never through a symlink, never half-written.
pub fn write_sample(dir: &Path, name: &str, text: &str, force: bool) -> Result<()> {
    let path = dir.join(name);
    // symlink_metadata: a dangling link in its place exists too.
    if fs::symlink_metadata(&path).is_ok() && !force {
        anyhow::bail!(
            "{} already exists; edit it, or use --force to replace it with the sample",
            path.display()
        );
    }
    let out = OutputDir::open_or_create(dir, 0o755)?;
    let _lock = out.lock("create template")?;
    out.remove_stale_temps(&[name])?;
    let mut tx = Transaction::new();
    tx.stage(&out, name, SECRET_MODE, text.as_bytes())?;
    tx.commit()?;
    Ok(())
}

/// Creates `dir` (and parents) and sets its mode, by path: a symlink in
/// its place is followed. For directories inside an output directory use
/// [`OutputDir::subdir`], which never follows one.
pub fn create_dir_with_mode(dir: &Path, mode: u32) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))?;
    fs::set_permissions(dir, Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_mode_and_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("secret");
        write_atomic(&p, b"one", SECRET_MODE).unwrap();
        write_atomic(&p, b"two", SECRET_MODE).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Nothing else is left in the directory.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_fill_leaves_old_content_and_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out");
        write_atomic(&p, b"old", PUBLIC_MODE).unwrap();
        let r = write_atomic_with(&p, PUBLIC_MODE, |f| {
            f.write_all(b"partial").unwrap();
            anyhow::bail!("boom")
        });
        assert!(r.is_err());
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
