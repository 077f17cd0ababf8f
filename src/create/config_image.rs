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
use crate::iso::writer::{IsoTree, write_iso};

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
/// `--dir`, `--regenerate` and `--seed-version`, any other caller directly.
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
}

/// What a successful run wrote.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub iso: PathBuf,
    pub kubeconfig: PathBuf,
    pub kubeadmin_password: PathBuf,
    pub identity: Origin,
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
    let inputs = read_inputs(dir)?;
    let ic = &inputs.install_config;
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
    let kubeconfig = kubeconfig::admin_kubeconfig(
        &ic.metadata.name,
        &ic.base_domain,
        &identity.api_crypto,
        &identity.ingress_signer,
    )?;

    // One transaction: every output is staged in full, then all are renamed
    // into place, the state last, so a failure before the renames changes
    // nothing.
    let tx = stage_outputs(&out, &tree, &kubeconfig, &identity).with_context(|| {
        format!(
            "preparing the outputs in {} (nothing was replaced)",
            dir.display()
        )
    })?;
    tx.commit()?;
    let auth = out.display(AUTH_DIR);
    tracing::info!("Config-Image created in: {}", auth.display());
    Ok(Outputs {
        iso: out.display(ISO_FILE),
        kubeconfig: auth.join(KUBECONFIG_FILE),
        kubeadmin_password: auth.join(PASSWORD_FILE),
        identity: origin,
    })
}

/// Stages every output of the run, the state file last. The ISO is 0600:
/// it carries signer keys, the pull secret and the password hash.
fn stage_outputs(
    out: &OutputDir,
    tree: &IsoTree,
    kubeconfig: &str,
    identity: &ClusterIdentity,
) -> Result<Transaction> {
    let mut tx = Transaction::new();
    tx.stage_with(out, ISO_FILE, SECRET_MODE, |f| {
        write_iso(BLOCK_DEVICE_LABEL, tree, f).context("writing the configuration ISO")
    })?;
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
