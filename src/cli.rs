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
    /// Check seed images before they go to a factory
    #[command(subcommand)]
    Seed(SeedCommand),
    /// Look into live ISOs
    #[command(subcommand)]
    Iso(IsoCommand),
    /// First boot of an installed node: find the site configuration
    #[command(
        long_about = "First boot of an installed node (the installation-configuration.service \
        job).\n\nFinds the site configuration: /opt/openshift/cluster-configuration if it is \
        already there, else a disk or partition labelled cluster-config (or the legacy \
        relocation-config), present at start or attached later; mounts it read-only, copies it \
        to /opt/openshift and unmounts it. Gives up after --timeout seconds with a message \
        saying what it saw.\n\nOnly this first step exists so far: pass --until discovered."
    )]
    PostPivot(PostPivotArgs),
    /// Factory install: write RHCOS and the seed to a disk (lca-cli ibi)
    #[command(
        long_about = "Factory install (drop-in for `lca-cli ibi -f FILE`).\n\n\
        Checks everything first (disk, seed, versions, pull secret, tools) and writes nothing \
        when something is wrong; then wipes the disk, installs RHCOS with coreos-installer, adds \
        the container-storage partition, restores the seed into a new stateroot, pre-caches the \
        seed's images, runs post.sh and removes the original stateroot. A killed run resumes \
        where it stopped (journal in /run, then on the disk)."
    )]
    Ibi(IbiArgs),
}

#[derive(Debug, Clone, Args)]
pub struct IbiArgs {
    /// ibi-configuration.json (YAML or JSON)
    #[arg(short = 'f', long = "configuration-file", value_name = "FILE")]
    pub configuration_file: PathBuf,
    /// Run the checks and print every command of the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Start over even if a journal of a different run is found
    #[arg(long)]
    pub restart: bool,
    /// Write one JSON object per event to FILE or fd:N
    #[arg(long, value_name = "FILE|fd:N")]
    pub progress_json: Option<String>,
    /// Keep the seed's own lca-cli instead of installing sprout as it
    #[arg(long)]
    pub keep_seed_agent: bool,
    /// Scratch space for a registry seed's preflight copy
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// The live system's root (for tests)
    #[arg(long, value_name = "DIR", default_value = "/", hide = true)]
    pub root: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum IsoCommand {
    /// Print the Ignition config embedded in a live ISO (to check an
    /// installation ISO before it goes to a factory)
    ShowIgnition(ShowIgnitionArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ShowIgnitionArgs {
    /// The ISO, e.g. rhcos-ibi.iso
    pub iso: PathBuf,
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
    /// Write a commented sample image-based-installation-config.yaml
    ImageConfigTemplate(ConfigTemplateArgs),
    /// Build the installation ISO (rhcos-ibi.iso) that installs a seed at the factory
    #[command(
        long_about = "Build the installation ISO that installs a seed at the factory.\n\n\
        Reads image-based-installation-config.yaml (and optional post.sh, and install-config.yaml \
        for dual-stack DHCP kernel arguments) from --dir, checks them, embeds an Ignition config into \
        an RHCOS live ISO and writes rhcos-ibi.iso to --dir. The base ISO is --base-iso, else \
        SPROUT_OS_IMAGE_OVERRIDE, else the RHCOS stream metadata (SPROUT_STREAM_URL), downloaded \
        into ~/.cache/sprout and checked against its SHA-256 on every use."
    )]
    Image(ImageArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ImageArgs {
    /// Directory holding the inputs; rhcos-ibi.iso is written there
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// RHCOS live ISO to start from (no download)
    #[arg(long)]
    pub base_iso: Option<PathBuf>,
    /// Replace an Ignition config the base ISO already carries
    #[arg(long)]
    pub force: bool,
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
    /// OpenShift version of the seed the ISO is for (e.g. 4.18.7): refuse
    /// settings that release's lca-cli cannot apply
    #[arg(long, value_name = "X.Y.Z")]
    pub seed_version: Option<crate::create::seed_version::OcpVersion>,
}

#[derive(Debug, Clone, Args)]
pub struct PostPivotArgs {
    /// Stop after this step (required until the later steps exist)
    #[arg(long, value_enum, value_name = "STEP")]
    pub until: Option<PostPivotStep>,
    /// Seconds to wait for the configuration medium before giving up
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub timeout: u64,
    /// Directory to treat as / for the files read and written (for tests)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

/// The steps of post-pivot that `--until` can stop after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PostPivotStep {
    /// The configuration is in /opt/openshift/cluster-configuration
    Discovered,
}

#[derive(Debug, Subcommand)]
pub enum SeedCommand {
    /// Check a seed image and show what a factory needs to know about it
    #[command(
        long_about = "Check a seed image and show what a factory needs to know about it.\n\n\
        Reads the labels, the seed's files and every member of ostree.tgz, var.tgz and etc.tgz \
        (without extracting), then prints the OpenShift version, the seed cluster, FIPS, proxy, \
        container storage and the extraPartitionLabel it needs, the recert image, kernel \
        arguments, sizes, and every problem found with what to do about it. Exits non-zero \
        when the seed cannot be installed.\n\n\
        SEED is docker://REGISTRY/REPO:TAG (copied with skopeo into --workdir first; \
        registries.conf, certs.d and the auth file work as for podman), oci:DIR[:TAG], \
        oci-archive:FILE[:TAG], or a directory holding a mounted seed image."
    )]
    Inspect(SeedInspectArgs),
}

#[derive(Debug, Clone, Args)]
pub struct SeedInspectArgs {
    /// docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG], or a directory
    pub seed: String,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Registry credentials, e.g. the pull secret (default: podman's)
    #[arg(long, value_name = "FILE", env = "REGISTRY_AUTH_FILE")]
    pub authfile: Option<PathBuf>,
    /// Directory of *.crt CAs and *.cert/*.key client certificates for the registry
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// Require HTTPS with verified certificates (--tls-verify=false allows neither)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub tls_verify: bool,
    /// registries.conf to use instead of /etc/containers/registries.conf
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
    /// Where a docker:// seed is copied; needs room for the whole image
    #[arg(long, value_name = "DIR", default_value = "/var/tmp")]
    pub workdir: PathBuf,
    /// The seedVersion the installation will ask for; a different seed is an error
    #[arg(long, value_name = "VERSION")]
    pub seed_version: Option<String>,
    /// The extraPartitionLabel the installation will use; the seed must mount
    /// its container storage from a partition with this label
    #[arg(long, value_name = "LABEL")]
    pub extra_partition_label: Option<String>,
}
