//! A directory ostree sysroot as `coreos-installer` leaves it on the target
//! disk: `ostree admin init-fs`, then an `rhcos` stateroot with one
//! deployment of a small commit, all made with the ostree CLI (the oracle
//! the libostree code is compared with).
//!
//! ostree sets the immutable attribute on deployment roots; dropping a
//! [`TestSysroot`] clears it first so the temporary directory can go.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::seed::KERNEL_VERSION;
use crate::host::command::{Cmd, find_program};
use crate::host::ostree::clear_immutable_below;

/// The ref of the "metal image" commit in the sysroot's repository.
pub const METAL_REF: &str = "rhcos/metal/x86_64";
/// Kernel arguments of the original deployment.
pub const METAL_KARGS: [&str; 2] = ["root=UUID=00000000-0000-4000-8000-000000000004", "rw"];

/// False (with a loud `SKIP:` line) when a tool is missing; an error
/// instead under `CI=true`, where nothing may be skipped.
pub fn tools_or_skip(test: &str, tools: &[&str]) -> Result<bool> {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_program(t).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(true);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        bail!(
            "{test}: {} not installed, and CI=true forbids skipping",
            missing.join(", ")
        );
    }
    eprintln!(
        "SKIP: {test}: {} not installed (run scripts/setup.sh)",
        missing.join(", ")
    );
    Ok(false)
}

#[derive(Debug)]
pub struct TestSysroot {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    /// The commit of the `rhcos` deployment.
    pub metal_commit: String,
}

impl TestSysroot {
    /// An initialised sysroot with the `rhcos` stateroot deployed.
    pub fn with_rhcos() -> Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let path = dir.path().join("sysroot");
        fs::create_dir(&path)?;
        let mut s = Self {
            dir: Some(dir),
            path,
            metal_commit: String::new(),
        };
        Cmd::new("ostree")
            .args(["admin", "init-fs"])
            .arg(&s.path)
            .run()?;
        let tree = s.path.parent().unwrap_or(&s.path).join("metal-tree");
        let modules = tree.join("usr/lib/modules").join(KERNEL_VERSION);
        fs::create_dir_all(&modules)?;
        fs::create_dir_all(tree.join("usr/etc"))?;
        fs::write(modules.join("vmlinuz"), b"metal kernel")?;
        fs::write(modules.join("initramfs.img"), b"metal initramfs")?;
        fs::write(
            tree.join("usr/etc/os-release"),
            "NAME=\"RHCOS metal\"\nID=rhcos\n",
        )?;
        let out = s.ostree(
            &[
                "commit",
                "--branch",
                METAL_REF,
                "--subject=metal image",
                "--owner-uid=0",
                "--owner-gid=0",
                &format!("--tree=dir={}", tree.display()),
            ],
            false,
        )?;
        s.metal_commit = out.trim().to_string();
        s.ostree(&["admin", "os-init", "rhcos"], true)?;
        let mut deploy = vec!["admin", "deploy", "--os=rhcos", "--karg-none"];
        let kargs: Vec<String> = METAL_KARGS.iter().map(|k| format!("--karg={k}")).collect();
        deploy.extend(kargs.iter().map(String::as_str));
        deploy.push(METAL_REF);
        s.ostree(&deploy, true)?;
        Ok(s)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs the ostree CLI on this sysroot (`--sysroot` for `admin`
    /// commands, `--repo` otherwise) and returns its stdout.
    pub fn ostree(&self, args: &[&str], admin: bool) -> Result<String> {
        let mut cmd = Cmd::new("ostree");
        if admin {
            cmd = cmd
                .args(args)
                .arg(format!("--sysroot={}", self.path.display()));
        } else {
            cmd = cmd
                .arg(format!(
                    "--repo={}",
                    self.path.join("ostree/repo").display()
                ))
                .args(args);
        }
        let out = cmd.run()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `ostree admin status` as the CLI prints it.
    pub fn status(&self) -> Result<String> {
        self.ostree(&["admin", "status"], true)
    }

    /// The `options` lines of every BLS entry, by file name.
    pub fn bls_options(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let boot = self.path.join("boot");
        for e in fs::read_dir(&boot)? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("loader.") {
                continue;
            }
            let entries = e.path().join("entries");
            for f in fs::read_dir(&entries)? {
                let f = f?;
                let text = fs::read_to_string(f.path())?;
                for l in text.lines() {
                    if let Some(o) = l.strip_prefix("options ") {
                        out.push((f.file_name().to_string_lossy().into_owned(), o.to_string()));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

impl Drop for TestSysroot {
    fn drop(&mut self) {
        if let Ok(states) = fs::read_dir(self.path.join("ostree/deploy")) {
            for s in states.flatten() {
                let _ = clear_immutable_below(&s.path().join("deploy"));
            }
        }
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }
}
