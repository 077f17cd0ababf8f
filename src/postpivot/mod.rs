//! The first-boot agent (`post-pivot`): configuration discovery and the reconfiguration steps.
//!
//! So far only the first step exists: finding the site configuration
//! ([`discovery`]). The command line says so (`--until discovered`) rather
//! than pretending to run the rest.

pub mod apply;
pub mod copy;
pub mod discovery;
pub mod effective;
pub mod inputs;
pub mod kubeconfig_crypto;
pub mod markers;
pub mod recert_config;
pub mod recert_run;
pub mod validate;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::host::systemd;

/// How often the wait says what it waits for.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(15);
/// The longest wait `--timeout` gives: ten years is "forever" for a boot,
/// and keeps `now + timeout` far from `Instant`'s range.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// What post-pivot is asked to do; the CLI builds it from `--until`,
/// `--timeout` and `--root`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop after this step (required until the later steps exist).
    pub until: Option<Step>,
    /// How long to wait for the configuration medium.
    pub timeout: Duration,
    /// Root of every path read and written (`/` on a node).
    pub root: PathBuf,
}

/// The steps of post-pivot that a run can stop after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The configuration is in /opt/openshift/cluster-configuration.
    Discovered,
}

/// Runs post-pivot up to `args.until`.
pub fn run(args: &Options) -> Result<discovery::Discovered> {
    let Some(until) = args.until else {
        bail!(
            "post-pivot runs only up to the `discovered` step so far (finding and copying \
             the configuration); the reconfiguration steps are not implemented yet. \
             Pass --until discovered"
        );
    };
    if !args.root.is_dir() {
        bail!(
            "--root {} is not a directory; give the directory to treat as /",
            args.root.display()
        );
    }
    let opts = discovery::Options {
        root: args.root.clone(),
        timeout: args.timeout.min(MAX_TIMEOUT),
        announce_every: ANNOUNCE_EVERY,
    };
    // Ready as soon as the arguments hold: the wait that follows is the
    // service's work, shown in its status line, not its start-up.
    systemd::ready("finding the configuration");
    let result = match until {
        Step::Discovered => discovery::discover(&opts, discovery::UdevHost::open),
    };
    if let Err(e) = &result {
        // The unit's status line keeps the reason after the process ends.
        systemd::status(&format!("failed: {e:#}"));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(until: Option<Step>, root: &std::path::Path) -> Options {
        Options {
            until,
            timeout: Duration::from_secs(1),
            root: root.to_path_buf(),
        }
    }

    #[test]
    fn without_until_it_says_what_exists() {
        let root = tempfile::tempdir().unwrap();
        let err = run(&args(None, root.path())).unwrap_err();
        assert!(
            format!("{err:#}").contains("Pass --until discovered"),
            "{err:#}"
        );
    }

    #[test]
    fn a_root_that_is_not_a_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = run(&args(Some(Step::Discovered), &file)).unwrap_err();
        assert!(format!("{err:#}").contains("is not a directory"), "{err:#}");
    }

    #[test]
    fn until_discovered_with_the_configuration_in_place() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("opt/openshift/cluster-configuration");
        std::fs::create_dir_all(&dir).unwrap();
        let found = run(&args(Some(Step::Discovered), root.path())).unwrap();
        assert_eq!(found.dir, dir);
        assert_eq!(found.source, discovery::Source::AlreadyPresent);
    }
}
