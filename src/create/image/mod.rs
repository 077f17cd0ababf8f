//! `create image`: the installation ISO, an RHCOS live ISO whose embedded
//! Ignition config installs the seed when the machine boots it.
//!
//! Everything is checked before anything is written: the inputs, the base
//! ISO's embed areas, and that the payload fits. The output is the base ISO
//! copied (with `copy_file_range`, so reflinked where the filesystem can)
//! into a temporary file, patched in place and renamed: bytes outside the
//! embed areas are the base ISO's own. The run holds `--dir`'s lock and
//! writes through `host::outdir` (no symlink followed, 0600: the ISO carries
//! the pull secret).

pub mod ignition_config;
pub mod template;
pub mod units;

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use self::ignition_config::{Generated, IgnitionInputs};
use super::base_iso::{self, BaseIsoOptions};
use crate::api::diag::{self, Problem};
use crate::api::install_config::{self, InstallConfig};
use crate::api::installation_config::{self, InstallationConfig};
use crate::api::yaml;
use crate::host::fs::SECRET_MODE;
use crate::host::input::{InputKind, open_input, read_input};
use crate::host::outdir::{OutputDir, Transaction};
use crate::iso::embed::{self, CONFIG_IGN, KargsAreas};
use crate::iso::iso9660::Iso9660;

pub const ISO_FILE: &str = "rhcos-ibi.iso";
pub const POST_SCRIPT: &str = "post.sh";

/// What `create image` is asked to do; the CLI builds it from `--dir`,
/// `--base-iso` and `--force`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory holding the inputs; rhcos-ibi.iso is written there.
    pub dir: PathBuf,
    /// RHCOS live ISO to start from (no download); else the environment
    /// and the stream metadata decide.
    pub base_iso: Option<PathBuf>,
    /// Replace an Ignition config the base ISO already carries.
    pub force: bool,
}

struct Inputs {
    config: InstallationConfig,
    post_sh: Option<Vec<u8>>,
    install_config: Option<InstallConfig>,
}

pub fn run(args: &Options) -> Result<PathBuf> {
    let dir = args.dir.as_path();
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; pass --dir with the directory holding {}",
            dir.display(),
            installation_config::FILE
        );
    }
    let inputs = read_inputs(dir)?;
    let generated = ignition_config::generate(&IgnitionInputs {
        config: &inputs.config,
        post_sh: inputs.post_sh.as_deref(),
        install_config: inputs.install_config.as_ref(),
    })?;
    let opts = BaseIsoOptions::from_env(
        args.base_iso.clone(),
        inputs.config.architecture().rpm_arch(),
    )?;
    let base = base_iso::resolve(&opts)?;
    let out = OutputDir::open(dir)?;
    let _lock = out.lock("create image")?;
    out.remove_stale_temps(&[ISO_FILE])?;
    build_iso(&base, &out, ISO_FILE, &generated, args.force)?;
    let iso = out.display(ISO_FILE);
    tracing::info!("Image-based installation ISO created: {}", iso.display());
    Ok(iso)
}

fn read_inputs(dir: &Path) -> Result<Inputs> {
    let mut problems: Vec<Problem> = Vec::new();
    let config = yaml::read_strict::<InstallationConfig>(dir, installation_config::FILE)
        .map_err(|p| problems.push(p))
        .ok();
    if let Some(c) = &config {
        problems.extend(c.validate());
    }
    let post_path = dir.join(POST_SCRIPT);
    // Bounded before anything is compressed: a script too large for the
    // embed area is refused at once, not after minutes of xz.
    let post_sh = match read_input(&post_path, InputKind::PostScript) {
        Ok(b) => Some(b),
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            problems.push(Problem::in_input(POST_SCRIPT, "", e.to_string()));
            None
        }
    };
    // install-config.yaml is optional here: it only tells whether the
    // cluster is dual-stack. When present it must be valid.
    // symlink_metadata: a dangling link is reported, not taken as absent.
    let install_config = if dir.join(install_config::FILE).symlink_metadata().is_ok() {
        match yaml::read_strict::<InstallConfig>(dir, install_config::FILE) {
            Ok(ic) => {
                problems.extend(ic.validate());
                Some(ic)
            }
            Err(p) => {
                problems.push(p);
                None
            }
        }
    } else {
        None
    };
    diag::finish(problems)?;
    let config =
        config.context("reading the installation config failed without a reported problem")?;
    Ok(Inputs {
        config,
        post_sh,
        install_config,
    })
}

/// Checks the base ISO, then writes the patched copy to `out/name` as one
/// transaction: staged in full (anonymous where the filesystem allows, so a
/// killed run leaves nothing), then renamed into place. The file is 0600: it
/// carries the pull secret.
pub fn build_iso(
    base: &Path,
    out: &OutputDir,
    name: &str,
    generated: &Generated,
    force: bool,
) -> Result<()> {
    let (mut src, _) = open_input(base, InputKind::LiveIso)
        .with_context(|| format!("opening the base ISO {}", base.display()))?;
    let iso = Iso9660::open(&mut src)
        .with_context(|| format!("reading the base ISO {}", base.display()))?;
    let area = embed::ignition_area(&mut src, &iso)?;
    let mut members: BTreeMap<String, Vec<u8>> =
        embed::read_members(&embed::read_area(&mut src, area)?)
            .with_context(|| format!("reading the Ignition embed area of {}", base.display()))?;
    if members.contains_key(CONFIG_IGN) && !force {
        bail!(
            "{} already has an embedded Ignition config; start from a pristine RHCOS live ISO, or use --force to replace it",
            base.display()
        );
    }
    // Other members (e.g. network keyfiles from `coreos-installer iso
    // customize`) stay, as coreos-installer keeps them.
    let ign = serde_json::to_vec(&generated.ignition).context("encoding the Ignition config")?;
    members.insert(CONFIG_IGN.to_string(), ign);
    let payload = embed::build_payload(&members)?;
    embed::check_fits(&payload, area)?;
    let kargs = KargsAreas::for_iso(&mut src, &iso)?;
    let new_kargs = match (&kargs, generated.live_kargs.is_empty()) {
        (_, true) => None,
        (None, false) => {
            tracing::warn!(
                "the base ISO has no kernel-argument areas (coreos/kargs.json); the live environment will not get {}",
                generated.live_kargs.join(" ")
            );
            None
        }
        (Some(k), false) => {
            let mut current = k.read(&mut src)?;
            for karg in &generated.live_kargs {
                if !current.split_whitespace().any(|a| a == karg) {
                    current = format!("{current} {karg}");
                }
            }
            Some(current.trim().to_string())
        }
    };

    let size = src.metadata().context("reading the base ISO size")?.len();
    tracing::info!(
        "copying the base ISO ({} MiB) to {}",
        size / (1024 * 1024),
        out.display(name).display()
    );
    let mut tx = Transaction::new();
    tx.stage_with(out, name, SECRET_MODE, |tmp| {
        src.seek(SeekFrom::Start(0))
            .context("rewinding the base ISO")?;
        // The transaction syncs the staged file once, after the patches.
        let copied = crate::host::copy::copy_for_sync(&mut src, tmp)?.bytes;
        if copied != size {
            bail!(
                "copied {copied} bytes of the base ISO, expected {size}; was it changed while being read?"
            );
        }
        embed::write_area(tmp, area, &payload)?;
        if let (Some(k), Some(text)) = (&kargs, &new_kargs) {
            k.write(tmp, text)?;
        }
        Ok(())
    })
    .with_context(|| {
        format!(
            "preparing {} (any previous one is unchanged)",
            out.display(name).display()
        )
    })?;
    tx.commit()?;
    Ok(())
}
