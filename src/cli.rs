//! The command line. One schema: every subcommand's options are a struct the
//! library takes as its configuration.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sprout",
    version,
    about = "Image-based installation of single-node OpenShift",
    long_about = "Image-based installation of single-node OpenShift.\n\n\
        On a workstation, `sprout create config-image` turns an install-config.yaml and an \
        image-based-config.yaml into the configuration ISO (label cluster-config) that a \
        pre-installed node reads at its first boot, plus the cluster's admin kubeconfig."
)]
pub struct Cli {
    /// More messages (-v debug, -vv trace); SPROUT_LOG overrides with a filter
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Fewer messages (-q warnings and errors only, -qq errors only)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build installation media on a workstation
    #[command(subcommand)]
    Create(CreateCommand),
}

#[derive(Debug, Subcommand)]
pub enum CreateCommand {
    /// Write a commented sample image-based-config.yaml to start from
    ConfigTemplate(ConfigTemplateArgs),
    /// Build the configuration ISO and the cluster's admin credentials
    #[command(
        long_about = "Build the configuration ISO and the cluster's admin credentials.\n\n\
        Reads install-config.yaml, image-based-config.yaml and optional extra-manifests/*.yaml|yml|json \
        from --dir, checks all of them, and writes:\n  \
        imagebasedconfig.iso      the ISO (label cluster-config) to attach to the node\n  \
        auth/kubeconfig           admin kubeconfig, valid once the node is configured\n  \
        auth/kubeadmin-password   the kubeadmin password\n\n\
        Inputs are never deleted. The cluster identity (IDs, keys, password) is kept in \
        .sprout-state.json in --dir and reused by later runs, so a kubeconfig already handed \
        out stays valid; --regenerate starts a new identity."
    )]
    ConfigImage(ConfigImageArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ConfigTemplateArgs {
    /// Directory to write image-based-config.yaml into (created if missing)
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Replace an existing image-based-config.yaml
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConfigImageArgs {
    /// Directory holding the inputs; the outputs are written there too
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Forget the saved cluster identity and generate new IDs, keys and
    /// password (kubeconfigs from earlier runs stop working)
    #[arg(long)]
    pub regenerate: bool,
}
