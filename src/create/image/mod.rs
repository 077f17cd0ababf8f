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
pub mod patches;
pub mod template;
pub mod units;

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use self::ignition_config::{Generated, IgnitionInputs};
use self::patches::Patches;
use super::base_iso::{self, BaseIsoOptions};
use super::config_image::{IsoOutput, open_output_path};
use super::report::{self, ImageReport, IsoReport};
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
    /// Where the ISO goes.
    pub output: IsoOutput,
}

impl Options {
    /// Defaults for `dir`: the base ISO from the environment, no --force,
    /// the ISO in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            base_iso: None,
            force: false,
            output: IsoOutput::InDir,
        }
    }
}

/// Where [`build_iso`] puts the patched ISO.
pub enum Sink<'a> {
    /// `dir/name`, replaced atomically.
    File { dir: &'a OutputDir, name: &'a str },
    /// Standard output, streamed from the base ISO (no copy on disk).
    Stdout,
}

struct Inputs {
    config: InstallationConfig,
    post_sh: Option<Vec<u8>>,
    install_config: Option<InstallConfig>,
}

/// Builds the ISO; returns its path (`None` when it went to stdout).
pub fn run(args: &Options) -> Result<Option<PathBuf>> {
    let dir = args.dir.as_path();
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; pass --dir with the directory holding {}",
            dir.display(),
            installation_config::FILE
        );
    }
    if args.output == IsoOutput::Stdout {
        crate::host::stdout::check_not_terminal()?;
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
    let (out, name) = match &args.output {
        IsoOutput::Stdout => {
            build_iso(&base, Sink::Stdout, &generated, args.force)?;
            tracing::info!("Image-based installation ISO written to stdout");
            return Ok(None);
        }
        IsoOutput::Path(p) => open_output_path(p)?,
        IsoOutput::InDir => (OutputDir::open(dir)?, ISO_FILE.to_string()),
    };
    let _lock = out.lock("create image")?;
    if args.output == IsoOutput::InDir {
        // Only in --dir: other runs may be staging in an --output directory.
        out.remove_stale_temps(&[ISO_FILE])?;
    }
    build_iso(
        &base,
        Sink::File {
            dir: &out,
            name: &name,
        },
        &generated,
        args.force,
    )?;
    let iso = out.display(&name);
    tracing::info!("Image-based installation ISO created: {}", iso.display());
    Ok(Some(iso))
}

/// `create image`: builds, then prints `iso: PATH` or the JSON document.
pub fn main(args: &Options, json: bool) -> Result<()> {
    if json && args.output == IsoOutput::Stdout {
        bail!(
            "--json and --output - both want stdout; write the ISO with --output PATH, or drop --json"
        );
    }
    let built = run(args);
    if json {
        let result = built.and_then(|p| match p {
            Some(p) => digest(&p),
            None => bail!("the ISO went to stdout"),
        });
        crate::host::stdout::write(&report::to_json(&ImageReport::new(&args.dir, &result))?)?;
        return result.map(|_| ());
    }
    if let Some(p) = built? {
        crate::host::stdout::write(&format!("iso: {}\n", p.display()))?;
    }
    Ok(())
}

/// The SHA-256 and size of the written ISO, read back from disk.
fn digest(path: &Path) -> Result<IsoReport> {
    let (mut f, _) = open_input(path, InputKind::LiveIso)
        .with_context(|| format!("reading back {}", path.display()))?;
    let mut sha = crate::hash::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)
            .with_context(|| format!("reading back {}", path.display()))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        size += n as u64;
    }
    Ok(IsoReport {
        path: Some(path.display().to_string()),
        sha256: crate::hash::hex(&sha.finish()),
        size,
    })
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

/// Checks the base ISO, then writes the patched copy to `sink`. A file is
/// one transaction: staged in full (anonymous where the filesystem allows,
/// so a killed run leaves nothing), then renamed into place, 0600 (it
/// carries the pull secret). Stdout gets the same bytes, streamed.
pub fn build_iso(base: &Path, sink: Sink<'_>, generated: &Generated, force: bool) -> Result<()> {
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
    // Everything that differs from the base ISO, recorded by offset.
    let mut patches = Patches::default();
    embed::write_area(&mut patches, area, &payload)?;
    if let (Some(k), Some(text)) = (&kargs, &new_kargs) {
        k.write(&mut patches, text)?;
    }

    let size = src.metadata().context("reading the base ISO size")?.len();
    src.seek(SeekFrom::Start(0))
        .context("rewinding the base ISO")?;
    let (out, name) = match sink {
        Sink::Stdout => {
            crate::host::stdout::with_stdout(|out| patches.stream(&mut src, size, out))?;
            return Ok(());
        }
        Sink::File { dir, name } => (dir, name),
    };
    tracing::info!(
        "copying the base ISO ({} MiB) to {}",
        size / (1024 * 1024),
        out.display(name).display()
    );
    let mut tx = Transaction::new();
    tx.stage_with(out, name, SECRET_MODE, |tmp| {
        // The transaction syncs the staged file once, after the patches.
        let copied = crate::host::copy::copy_for_sync(&mut src, tmp)?.bytes;
        if copied != size {
            bail!(
                "copied {copied} bytes of the base ISO, expected {size}; was it changed while being read?"
            );
        }
        patches.apply(tmp, size)
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
