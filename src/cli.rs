//! The command line: the clap types, and their conversion into the plain
//! options structs the library's jobs take (`create::config_image::Options`,
//! …), so that an operator or a test can call the library without a command
//! line.

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
        saying what it saw.\n\nThen validates the whole configuration before changing anything, and \
        runs the steps (SSH key, pull secret, network, hostname, node IPs, dnsmasq, trust, recert, \
        chrony, kubelet, the API, manifests, cluster ID, labels, LVM, cleanup), resuming where \
        an earlier start stopped. Status: /var/lib/sprout/post-pivot-status.json; deadlines: \
        /etc/sprout/post-pivot.json. --dry-run prints the plan and recert_config.json."
    )]
    PostPivot(PostPivotArgs),
    /// Factory install: write RHCOS and the seed to a disk (lca-cli ibi)
    #[command(
        long_about = "Factory install (drop-in for `lca-cli ibi -f FILE`).\n\n\
        Checks everything first (disk, seed, versions, pull secret, tools) and writes nothing \
        when something is wrong; then wipes the disk, installs RHCOS with coreos-installer, adds \
        the container-storage partition, restores the seed into a new stateroot, pre-caches the \
        seed's images, runs post.sh and removes the original stateroot. A killed run resumes \
        where it stopped (journal in /run, then on the disk, where a run after a reboot finds \
        it; another install's journal there is refused unless --restart)."
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
    /// Print the run report as one JSON document on stdout at the end,
    /// also after a failure (docs/json-output.md); messages go to stderr
    #[arg(long, conflicts_with = "dry_run")]
    pub json: bool,
    /// Start over (wipe and install again), even over an earlier run found in /run or on the disk
    #[arg(long)]
    pub restart: bool,
    /// Write one JSON object per event to FILE or fd:N
    #[arg(long, value_name = "FILE|fd:N")]
    pub progress_json: Option<String>,
    /// Keep the seed's own lca-cli instead of installing sprout as it
    #[arg(long)]
    pub keep_seed_agent: bool,
    /// No longer used: the preflight reads a registry seed's manifest only
    /// (accepted so existing command lines keep working)
    #[arg(long, value_name = "DIR", hide = true)]
    pub workdir: Option<PathBuf>,
    /// Stop after step STEP (the ids `--dry-run` prints); run again to go on
    #[arg(long, value_name = "STEP")]
    pub until: Option<String>,
    /// POST {step, state, message} as JSON to this https:// URL on each step and at the end
    #[arg(long, value_name = "URL", requires = "report_token_file")]
    pub report_url: Option<String>,
    /// The bearer token for --report-url (a file, read once; never logged)
    #[arg(long, value_name = "FILE", requires = "report_url")]
    pub report_token_file: Option<PathBuf>,
    /// PEM CA certificates to trust for --report-url instead of the system's
    #[arg(long, value_name = "FILE", requires = "report_url")]
    pub report_ca_file: Option<PathBuf>,
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
    ImageConfigTemplate(ImageConfigTemplateArgs),
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
    /// Write the ISO to PATH instead of --dir, or to stdout with `-`
    /// (nothing else goes to stdout then)
    #[arg(long, value_name = "PATH|-")]
    pub output: Option<PathBuf>,
    /// Print one JSON document (docs/json-output.md) instead of the text line
    #[arg(long)]
    pub json: bool,
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
pub struct ImageConfigTemplateArgs {
    /// Directory to write image-based-installation-config.yaml into (created if missing)
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Replace an existing image-based-installation-config.yaml
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ConfigImageArgs {
    /// Directory holding the inputs; the outputs are written there too.
    /// Repeat for several sites, built in parallel
    #[arg(long, default_value = ".", conflicts_with = "sites")]
    pub dir: Vec<PathBuf>,
    /// Build every subdirectory of DIR as a site (like one --dir each)
    #[arg(long, value_name = "DIR")]
    pub sites: Option<PathBuf>,
    /// Sites built at once (default: the number of cores)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Write the ISO to PATH instead of --dir, or to stdout with `-`
    /// (nothing else goes to stdout then); one site only
    #[arg(long, value_name = "PATH|-")]
    pub output: Option<PathBuf>,
    /// Print one JSON document (docs/json-output.md) instead of the text lines
    #[arg(long)]
    pub json: bool,
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
    /// Stop after this step (an engine step id, e.g. `recert`; `discovered`
    /// runs only the discovery)
    #[arg(long, value_name = "STEP")]
    pub until: Option<String>,
    /// Seconds to wait for the configuration medium before giving up
    /// (default: `config_medium` of /etc/sprout/post-pivot.json, else 1800)
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Directory to treat as / for the files read and written (for tests)
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
    /// Discover and validate, then print every step, command and file it
    /// would write and the exact recert_config.json; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the final status (post-pivot-status.json) as one JSON document
    /// on stdout, also after a failure (docs/json-output.md)
    #[arg(long, conflicts_with = "dry_run")]
    pub json: bool,
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

// The library takes plain options; these build them from the command line.

impl From<&ConfigTemplateArgs> for crate::create::template::TemplateOptions {
    fn from(a: &ConfigTemplateArgs) -> Self {
        Self {
            dir: a.dir.clone(),
            force: a.force,
        }
    }
}

impl From<&ImageConfigTemplateArgs> for crate::create::template::TemplateOptions {
    fn from(a: &ImageConfigTemplateArgs) -> Self {
        Self {
            dir: a.dir.clone(),
            force: a.force,
        }
    }
}

impl TryFrom<&ConfigImageArgs> for crate::create::batch::Request {
    type Error = anyhow::Error;

    /// Fails when `--sites` cannot be listed or holds no site.
    fn try_from(a: &ConfigImageArgs) -> anyhow::Result<Self> {
        let dirs = match &a.sites {
            Some(parent) => crate::create::batch::site_dirs(parent)?,
            None => a.dir.clone(),
        };
        let output = crate::create::config_image::IsoOutput::parse(a.output.as_deref());
        let sites = dirs
            .into_iter()
            .map(|dir| crate::create::config_image::Options {
                dir,
                regenerate: a.regenerate,
                seed_version: a.seed_version.clone(),
                output: output.clone(),
            })
            .collect();
        Ok(Self {
            sites,
            jobs: a
                .jobs
                .map_or_else(crate::create::batch::default_jobs, usize::from),
            json: a.json,
        })
    }
}

impl From<&ImageArgs> for crate::create::image::Options {
    fn from(a: &ImageArgs) -> Self {
        Self {
            dir: a.dir.clone(),
            base_iso: a.base_iso.clone(),
            force: a.force,
            output: crate::create::config_image::IsoOutput::parse(a.output.as_deref()),
        }
    }
}

impl TryFrom<&SeedInspectArgs> for crate::seed::inspect::Options {
    type Error = anyhow::Error;

    /// Fails when SEED is none of the accepted forms.
    fn try_from(a: &SeedInspectArgs) -> anyhow::Result<Self> {
        Ok(Self {
            seed: crate::seed::SeedRef::parse(&a.seed)?,
            pull: crate::seed::PullOptions {
                authfile: a.authfile.clone(),
                cert_dir: a.cert_dir.clone(),
                tls_verify: a.tls_verify,
                registries_conf: a.registries_conf.clone(),
                workdir: a.workdir.clone(),
            },
            expect: crate::seed::Expectations {
                seed_version: a.seed_version.clone(),
                extra_partition_label: a.extra_partition_label.clone(),
            },
        })
    }
}

impl From<&PostPivotArgs> for crate::postpivot::Options {
    fn from(a: &PostPivotArgs) -> Self {
        let mut o = Self::new(a.root.clone());
        o.until.clone_from(&a.until);
        o.dry_run = a.dry_run;
        o.config_medium_timeout = a.timeout.map(std::time::Duration::from_secs);
        o
    }
}

impl TryFrom<&IbiArgs> for crate::ibi::Options {
    type Error = anyhow::Error;

    fn try_from(a: &IbiArgs) -> anyhow::Result<Self> {
        let mut o = Self::new(&a.configuration_file);
        o.root = a.root.clone();
        o.dry_run = a.dry_run;
        o.restart = a.restart;
        o.progress_json = a.progress_json.as_deref().map(str::parse).transpose()?;
        if a.json && o.progress_json == Some(crate::engine::ProgressTarget::Fd(1)) {
            anyhow::bail!(
                "--json and --progress-json fd:1 both want stdout; send the events to another fd or a file"
            );
        }
        o.json = a.json;
        o.keep_seed_agent = a.keep_seed_agent;
        o.workdir = a.workdir.clone();
        o.until = a.until.clone();
        o.report = match (&a.report_url, &a.report_token_file) {
            (Some(url), Some(token)) => Some(crate::ibi::report_url::ReportTarget::new(
                url,
                token,
                a.report_ca_file.as_deref(),
            )?),
            _ => None,
        };
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> Command {
        Cli::try_parse_from(argv).unwrap().command
    }

    #[test]
    fn post_pivot_arguments_become_options() {
        let Command::PostPivot(a) = parse(&[
            "sprout",
            "post-pivot",
            "--until",
            "discovered",
            "--timeout",
            "7",
            "--root",
            "/srv/node",
        ]) else {
            unreachable!("post-pivot parses as post-pivot")
        };
        let o = crate::postpivot::Options::from(&a);
        assert_eq!(o.until.as_deref(), Some(crate::postpivot::UNTIL_DISCOVERED));
        assert_eq!(
            o.config_medium_timeout,
            Some(std::time::Duration::from_secs(7))
        );
        assert_eq!(o.root, PathBuf::from("/srv/node"));
    }

    #[test]
    fn config_image_arguments_become_one_request_for_every_site() {
        use crate::create::config_image::IsoOutput;
        let Command::Create(CreateCommand::ConfigImage(a)) = parse(&[
            "sprout",
            "create",
            "config-image",
            "--dir",
            "a",
            "--dir",
            "b",
            "--jobs",
            "3",
            "--json",
        ]) else {
            unreachable!("config-image parses as config-image")
        };
        let r = crate::create::batch::Request::try_from(&a).unwrap();
        let dirs: Vec<&str> = r.sites.iter().map(|s| s.dir.to_str().unwrap()).collect();
        assert_eq!(dirs, ["a", "b"]);
        assert_eq!(r.jobs, 3);
        assert!(r.json);
        assert!(r.check().is_ok());

        let Command::Create(CreateCommand::ConfigImage(a)) =
            parse(&["sprout", "create", "config-image", "--output", "-"])
        else {
            unreachable!("config-image parses as config-image")
        };
        let r = crate::create::batch::Request::try_from(&a).unwrap();
        assert_eq!(r.sites[0].dir, PathBuf::from("."));
        assert_eq!(r.sites[0].output, IsoOutput::Stdout);
        assert!(Cli::try_parse_from(["sprout", "create", "config-image", "--jobs", "0"]).is_err());
        assert!(
            Cli::try_parse_from([
                "sprout",
                "create",
                "config-image",
                "--dir",
                "a",
                "--sites",
                "s"
            ])
            .is_err()
        );
    }

    #[test]
    fn seed_inspect_arguments_become_options_and_a_bad_seed_is_refused() {
        let Command::Seed(SeedCommand::Inspect(a)) = parse(&[
            "sprout",
            "seed",
            "inspect",
            "oci:/srv/seed:4.18",
            "--tls-verify=false",
            "--seed-version",
            "4.18.1",
        ]) else {
            unreachable!("seed inspect parses as seed inspect")
        };
        let o = crate::seed::inspect::Options::try_from(&a).unwrap();
        assert_eq!(o.seed.to_string(), "oci:/srv/seed:4.18");
        assert!(!o.pull.tls_verify);
        assert_eq!(o.pull.workdir, PathBuf::from("/var/tmp"));
        assert_eq!(o.expect.seed_version.as_deref(), Some("4.18.1"));

        let Command::Seed(SeedCommand::Inspect(bad)) =
            parse(&["sprout", "seed", "inspect", "ftp://x"])
        else {
            unreachable!("seed inspect parses as seed inspect")
        };
        assert!(crate::seed::inspect::Options::try_from(&bad).is_err());
    }
}
