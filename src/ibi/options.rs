//! What `sprout ibi` is asked to do, as a plain struct (the CLI fills it,
//! tests build it directly).

use std::path::PathBuf;

use crate::engine::ProgressTarget;

/// Where upstream's install unit finds the pull secret (relative to the
/// live system's root).
pub const PULL_SECRET: &str = "var/tmp/pull-secret.json";
/// The post-install script the installation ISO carries.
pub const POST_SCRIPT: &str = "var/tmp/post.sh";
/// Where the target's root partition is mounted (upstream: `/mnt`).
pub const TARGET_MOUNT: &str = "mnt";
/// The live system's container storage, on the extra partition once mounted.
pub const CONTAINER_STORAGE: &str = "var/lib/containers";
/// The journal before the disk exists.
pub const RUN_JOURNAL: &str = "run/sprout/ibi-journal.json";
/// The journal and the report on the target's root partition (visible as
/// `/sysroot/var/lib/sprout/` on the installed node).
pub const TARGET_JOURNAL: &str = "var/lib/sprout/ibi-journal.json";
/// Below the container storage: podman's `TMPDIR` while ibi pulls
/// (`IbiState::pull_staging`), removed when empty.
pub const PULL_STAGING: &str = "sprout-pull-tmp";
pub const TARGET_REPORT: &str = "var/lib/sprout/ibi-report.json";
/// Upstream's precache progress file (below the live root).
pub const PRECACHE_STATUS: &str = "var/lib/lca/workspace/precache_status.json";

#[derive(Debug, Clone)]
pub struct Options {
    /// `ibi-configuration.json` (YAML or JSON).
    pub config_file: PathBuf,
    /// The live system's root (`/`; a directory in tests).
    pub root: PathBuf,
    /// Preflight and the plan; nothing is changed.
    pub dry_run: bool,
    /// Forget a journal of an earlier, different run and start over.
    pub restart: bool,
    pub progress_json: Option<ProgressTarget>,
    /// Keep the seed's own `lca-cli` instead of installing sprout as it.
    pub keep_seed_agent: bool,
    /// Where `Seed::open` would copy a registry seed; the preflight reads
    /// only a registry seed's manifest now, so this is unused in practice
    /// (kept for `--workdir` command lines).
    pub workdir: Option<PathBuf>,
    /// The binary installed as `lca-cli` (default: this one).
    pub agent_binary: Option<PathBuf>,
    /// Stop after this step (`--until STEP`); a later run goes on from there.
    pub until: Option<String>,
    /// Where each step's outcome is POSTed (`--report-url`), if anywhere.
    pub report: Option<crate::ibi::report_url::ReportTarget>,
    /// Print the report document on stdout at the end (`--json`).
    pub json: bool,
}

impl Options {
    pub fn new(config_file: impl Into<PathBuf>) -> Self {
        Options {
            config_file: config_file.into(),
            root: PathBuf::from("/"),
            dry_run: false,
            restart: false,
            progress_json: None,
            keep_seed_agent: false,
            workdir: None,
            agent_binary: None,
            until: None,
            report: None,
            json: false,
        }
    }
}
