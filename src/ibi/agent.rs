//! The first-boot agent the installed system runs: the seed's unchanged
//! `installation-configuration.service` starts `/usr/local/bin/lca-cli
//! post-pivot`, and `/usr/local` is `/var/usrlocal` on RHCOS, which comes
//! from the seed's `var.tgz`. Installing sprout there (after the var
//! restore) makes the edge boot run sprout's `post-pivot`;
//! `--keep-seed-agent` skips this step and keeps the seed's own binary.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::hash::{Sha256, hex};
use crate::host::fs::{create_dir_with_mode, write_atomic_with};
use crate::host::ostree::{OstreeSysroot, Stateroot};

/// Where the agent goes, relative to the stateroot directory.
pub const AGENT_PATH: &str = "var/usrlocal/bin/lca-cli";

pub fn agent_path(sysroot: &OstreeSysroot, s: &Stateroot) -> PathBuf {
    sysroot.stateroot_dir(s).join(AGENT_PATH)
}

/// Copies `binary` (normally `/proc/self/exe`) to the stateroot's
/// `var/usrlocal/bin/lca-cli`, 0755, atomically.
pub fn install_agent(sysroot: &OstreeSysroot, s: &Stateroot, binary: &Path) -> Result<()> {
    let dest = agent_path(sysroot, s);
    if let Some(dir) = dest.parent()
        && !dir.exists()
    {
        create_dir_with_mode(dir, 0o755)?;
    }
    let mut src = File::open(binary).with_context(|| format!("opening {}", binary.display()))?;
    write_atomic_with(&dest, 0o755, |f| {
        std::io::copy(&mut src, f)
            .map(|_| ())
            .with_context(|| format!("copying {} to {}", binary.display(), dest.display()))
    })
}

/// True when the installed agent has the same bytes as `binary`.
pub fn is_agent_installed(sysroot: &OstreeSysroot, s: &Stateroot, binary: &Path) -> Result<bool> {
    let dest = agent_path(sysroot, s);
    if !dest.exists() {
        return Ok(false);
    }
    Ok(sha256_file(&dest)? == sha256_file(binary)?)
}

fn sha256_file(p: &Path) -> Result<String> {
    let mut f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", p.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finish()))
}
