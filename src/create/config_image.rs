//! `create config-image`: the configuration ISO and the admin credentials.
//!
//! Everything is read and checked before anything is written: a run with bad
//! input reports every problem at once and leaves `--dir` untouched. The
//! outputs are written as one transaction (`host::outdir`): all staged, then
//! renamed into place with the state file last, under the directory's lock,
//! never through a symlink. Inputs are never deleted.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::extra_manifests::{self, ExtraManifest};
use super::identity::{ClusterIdentity, Origin, STATE_FILE};
use super::{kubeconfig, manifest};
use crate::api::diag::{self, Problem};
use crate::api::image_based_config::{self, ImageBasedConfig};
use crate::api::install_config::{self, InstallConfig};
use crate::api::seed_reconfig::BLOCK_DEVICE_LABEL;
use crate::api::yaml;
use crate::host::fs::SECRET_MODE;
use crate::host::outdir::{OutputDir, Transaction};
use crate::iso::writer::{IsoTime, IsoTree, build_image};

pub const ISO_FILE: &str = crate::api::contract::config_iso::FILE_NAME;
pub const AUTH_DIR: &str = "auth";
pub const KUBECONFIG_FILE: &str = "kubeconfig";
pub const PASSWORD_FILE: &str = "kubeadmin-password";

/// Paths inside the ISO, as the first-boot agent expects them.
pub const ISO_MANIFEST: &str = crate::api::contract::config_iso::MANIFEST;
pub const ISO_MANIFESTS_DIR: &str = crate::api::contract::config_iso::MANIFESTS_DIR;
pub const ISO_MIRROR_SET: &str = crate::api::contract::config_iso::MIRROR_SET;
pub const ISO_EXTRA_MANIFESTS_DIR: &str = crate::api::contract::config_iso::EXTRA_MANIFESTS_DIR;

/// What `create config-image` is asked to do; the CLI builds it from
/// `--dir`, `--regenerate`, `--seed-version` and `--output`, any other caller
/// directly.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory holding the inputs; the outputs are written there too.
    pub dir: PathBuf,
    /// Forget the saved cluster identity and generate new IDs, keys and
    /// password (kubeconfigs from earlier runs stop working).
    pub regenerate: bool,
    /// The OpenShift release of the seed the ISO is for, when known:
    /// features its lca-cli cannot apply are refused instead of warned about.
    pub seed_version: Option<super::seed_version::OcpVersion>,
    /// Where the ISO goes.
    pub output: IsoOutput,
}

impl Options {
    /// Defaults for `dir`: keep the identity, no seed version, ISO in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            regenerate: false,
            seed_version: None,
            output: IsoOutput::InDir,
        }
    }
}

/// Where an ISO is written (`--output`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IsoOutput {
    /// Its usual name in `--dir`.
    #[default]
    InDir,
    /// This file (`--output PATH`), replaced atomically.
    Path(PathBuf),
    /// Standard output (`--output -`), for a server that streams it; nothing
    /// else is written there.
    Stdout,
}

impl IsoOutput {
    /// `-` is stdout, anything else a path.
    pub fn parse(arg: Option<&Path>) -> Self {
        match arg {
            None => Self::InDir,
            Some(p) if p.as_os_str() == "-" => Self::Stdout,
            Some(p) => Self::Path(p.to_path_buf()),
        }
    }
}

/// What a successful run wrote.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// The ISO's path; `None` when it went to stdout.
    pub iso: Option<PathBuf>,
    /// Lower-case hex SHA-256 of the ISO's bytes.
    pub iso_sha256: String,
    pub iso_size: u64,
    pub kubeconfig: PathBuf,
    pub kubeadmin_password: PathBuf,
    pub state: PathBuf,
    pub identity: Origin,
    pub cluster_id: String,
    pub infra_id: String,
    /// The API server URL in the kubeconfig.
    pub server: String,
}

/// The validated inputs of one run.
struct Inputs {
    install_config: InstallConfig,
    image_based_config: ImageBasedConfig,
    extra_manifests: Vec<ExtraManifest>,
}

pub fn run(args: &Options) -> Result<Outputs> {
    let dir = args.dir.as_path();
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; pass --dir with the directory holding install-config.yaml and image-based-config.yaml",
            dir.display()
        );
    }
    if args.output == IsoOutput::Stdout {
        crate::host::stdout::check_not_terminal()?;
    }
    let inputs = read_inputs(dir)?;
    let ic = &inputs.install_config;
    // Resolved before anything is written: a bad --output changes nothing.
    let iso_dest = match &args.output {
        IsoOutput::Path(p) => Some(open_output_path(p)?),
        _ => None,
    };
    // From here on the run writes: one run at a time in a directory, and
    // the state it reads is the state it replaces.
    let out = OutputDir::open(dir)?;
    let _lock = out.lock("create config-image")?;
    out.remove_stale_temps(&[ISO_FILE, STATE_FILE])?;
    let (identity, origin) =
        ClusterIdentity::load_or_generate(dir, &ic.metadata.name, args.regenerate)?;
    match origin {
        Origin::Generated => tracing::info!("generated a new cluster identity"),
        Origin::Reused => tracing::info!("reusing the cluster identity saved in {}", STATE_FILE),
    }

    // Build every output in memory first.
    let seed_reconfig = manifest::seed_reconfiguration(ic, &inputs.image_based_config, &identity)?;
    super::seed_version::check_and_warn(&seed_reconfig, args.seed_version.as_ref())?;
    let tree = iso_tree(
        &seed_reconfig,
        manifest::image_digest_mirror_set(ic),
        &inputs.extra_manifests,
    )?;
    // Dated from the identity (or SOURCE_DATE_EPOCH), never the clock.
    let time = IsoTime::from_unix(identity.image_time()?)
        .context("choosing the date written into the ISO")?;
    let image =
        build_image(BLOCK_DEVICE_LABEL, &tree, time).context("writing the configuration ISO")?;
    let kubeconfig = kubeconfig::admin_kubeconfig(
        &ic.metadata.name,
        &ic.base_domain,
        &identity.api_crypto,
        &identity.ingress_signer,
    )?;

    // One transaction: every output is staged in full, then all are renamed
    // into place, the state last, so a failure before the renames changes
    // nothing. An ISO for stdout is sent only once the identity it was
    // made with is saved, so what was streamed always matches the state.
    let iso_target = match (&args.output, &iso_dest) {
        (IsoOutput::Stdout, _) => None,
        (_, Some((d, name))) => Some((d, name.as_str())),
        _ => Some((&out, ISO_FILE)),
    };
    let tx =
        stage_outputs(&out, iso_target, &image, &kubeconfig, &identity).with_context(|| {
            format!(
                "preparing the outputs in {} (nothing was replaced)",
                dir.display()
            )
        })?;
    tx.commit()?;
    let iso = match iso_target {
        None => {
            crate::host::stdout::write_raw(&image)?;
            None
        }
        Some((d, name)) => Some(d.display(name)),
    };
    let auth = out.display(AUTH_DIR);
    tracing::info!("Config-Image created in: {}", auth.display());
    Ok(Outputs {
        iso,
        iso_sha256: crate::hash::hex(&crate::hash::sha256(&image)),
        iso_size: image.len() as u64,
        kubeconfig: auth.join(KUBECONFIG_FILE),
        kubeadmin_password: auth.join(PASSWORD_FILE),
        state: out.display(STATE_FILE),
        identity: origin,
        server: kubeconfig::server_url(&ic.metadata.name, &ic.base_domain),
        cluster_id: identity.cluster_id,
        infra_id: identity.infra_id,
    })
}

/// The directory and file name of `--output PATH`, the directory held open.
pub fn open_output_path(path: &Path) -> Result<(OutputDir, String)> {
    if path.is_dir() {
        bail!(
            "--output {} is a directory; give the ISO's file name, e.g. {}",
            path.display(),
            path.join("site.iso").display()
        );
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.starts_with('.'))
        .with_context(|| {
            format!(
                "--output {}: give a file name (not a directory, not starting with '.'), or - for stdout",
                path.display()
            )
        })?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let d = OutputDir::open(parent).with_context(|| {
        format!(
            "--output {}: opening the directory it goes in (create it first)",
            path.display()
        )
    })?;
    Ok((d, name.to_string()))
}

/// Stages every output of the run, the state file last. The ISO is 0600:
/// it carries signer keys, the pull secret and the password hash.
fn stage_outputs(
    out: &OutputDir,
    iso: Option<(&OutputDir, &str)>,
    image: &[u8],
    kubeconfig: &str,
    identity: &ClusterIdentity,
) -> Result<Transaction> {
    let mut tx = Transaction::new();
    // (No stale-temp sweep in another --output directory: other runs may
    // be staging there right now.)
    if let Some((d, name)) = iso {
        tx.stage(d, name, SECRET_MODE, image)?;
    }
    let auth = out.subdir(AUTH_DIR, 0o700)?;
    auth.remove_stale_temps(&[KUBECONFIG_FILE, PASSWORD_FILE])?;
    tx.stage(&auth, KUBECONFIG_FILE, SECRET_MODE, kubeconfig.as_bytes())?;
    // No trailing newline, as upstream writes it.
    tx.stage(
        &auth,
        PASSWORD_FILE,
        SECRET_MODE,
        identity.kubeadmin_password.as_bytes(),
    )?;
    identity.stage(out, &mut tx)?;
    Ok(tx)
}

/// Reads and checks every input, collecting all problems.
fn read_inputs(dir: &Path) -> Result<Inputs> {
    let mut problems: Vec<Problem> = Vec::new();
    let ic = yaml::read_strict::<InstallConfig>(dir, install_config::FILE)
        .map_err(|p| problems.push(p))
        .ok();
    if let Some(ic) = &ic {
        problems.extend(ic.validate());
    }
    let ibc = yaml::read_strict::<ImageBasedConfig>(dir, image_based_config::FILE)
        .map_err(|p| problems.push(p))
        .ok();
    if let Some(ibc) = &ibc {
        problems.extend(ibc.validate());
    }
    let extra = extra_manifests::read(dir)
        .map_err(|p| problems.extend(p))
        .ok();
    diag::finish(problems)?;
    match (ic, ibc, extra) {
        (Some(install_config), Some(image_based_config), Some(extra_manifests)) => Ok(Inputs {
            install_config,
            image_based_config,
            extra_manifests,
        }),
        // finish() returned Ok, so every reader succeeded.
        _ => bail!("reading the inputs failed without a reported problem"),
    }
}

fn iso_tree(
    seed_reconfig: &crate::api::seed_reconfig::SeedReconfiguration,
    mirror_set: Option<crate::api::seed_reconfig::ImageDigestMirrorSet>,
    extra: &[ExtraManifest],
) -> Result<IsoTree> {
    let mut tree = IsoTree::new();
    tree.add_file(
        ISO_MANIFEST,
        serde_json::to_vec(seed_reconfig).context("encoding manifest.json")?,
    )?;
    // Both directories exist even when empty: the agent lists them.
    tree.add_dir(ISO_MANIFESTS_DIR)?;
    tree.add_dir(ISO_EXTRA_MANIFESTS_DIR)?;
    if let Some(ms) = mirror_set {
        tree.add_file(
            ISO_MIRROR_SET,
            serde_json::to_vec(&ms).context("encoding the mirror set")?,
        )?;
    }
    for m in extra {
        tree.add_file(
            &format!("{ISO_EXTRA_MANIFESTS_DIR}/{}", m.file_name),
            m.contents.clone(),
        )?;
    }
    Ok(tree)
}
