//! The first-boot agent (`post-pivot`): configuration discovery and the reconfiguration steps.
//!
//! So far only the first step exists: finding the site configuration
//! ([`discovery`]). The command line says so (`--until discovered`) rather
//! than pretending to run the rest.

pub mod copy;
pub mod discovery;

use std::time::Duration;

use anyhow::{Result, bail};

use crate::cli::{PostPivotArgs, PostPivotStep};
use crate::host::systemd;

/// How often the wait says what it waits for.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(15);
/// The longest wait `--timeout` gives: ten years is "forever" for a boot,
/// and keeps `now + timeout` far from `Instant`'s range.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Runs post-pivot up to `args.until`.
pub fn run(args: &PostPivotArgs) -> Result<discovery::Discovered> {
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
        timeout: Duration::from_secs(args.timeout).min(MAX_TIMEOUT),
        announce_every: ANNOUNCE_EVERY,
    };
    // Ready as soon as the arguments hold: the wait that follows is the
    // service's work, shown in its status line, not its start-up.
    systemd::ready("finding the configuration");
    let result = match until {
        PostPivotStep::Discovered => discovery::discover(&opts, discovery::UdevHost::open),
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

    fn args(until: Option<PostPivotStep>, root: &std::path::Path) -> PostPivotArgs {
        PostPivotArgs {
            until,
            timeout: 1,
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
        let err = run(&args(Some(PostPivotStep::Discovered), &file)).unwrap_err();
        assert!(format!("{err:#}").contains("is not a directory"), "{err:#}");
    }

    #[test]
    fn until_discovered_with_the_configuration_in_place() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("opt/openshift/cluster-configuration");
        std::fs::create_dir_all(&dir).unwrap();
        let found = run(&args(Some(PostPivotStep::Discovered), root.path())).unwrap();
        assert_eq!(found.dir, dir);
        assert_eq!(found.source, discovery::Source::AlreadyPresent);
    }
}
