//! The first-boot agent (`post-pivot`): configuration discovery and the reconfiguration steps.
//!
//! [`flow`] runs the steps of spec §3.4 ([`steps`]) on the step engine;
//! `--until discovered` still runs only the discovery on its own (what the
//! vm-tests scenarios use).

pub mod apply;
pub mod cluster;
pub mod copy;
pub mod discovery;
pub mod effective;
pub mod fingerprint;
pub mod flow;
pub mod inputs;
pub mod kubeconfig_crypto;
pub mod markers;
pub mod recert_config;
pub mod recert_run;
pub mod settings;
pub mod status;
pub mod steps;
pub mod validate;

use std::time::Duration;

use anyhow::{Result, bail};

use crate::host::systemd;

/// How often the wait says what it waits for.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(15);
/// The longest wait `--timeout` gives: ten years is "forever" for a boot,
/// and keeps `now + timeout` far from `Instant`'s range.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// `--until discovered`: the discovery alone, without the engine.
pub const UNTIL_DISCOVERED: &str = "discovered";

/// What post-pivot is asked to do: the flow's options (the CLI builds them
/// in `cli.rs`; any other caller directly).
pub use flow::Options;

/// Runs `sprout post-pivot`; returns what goes to stdout.
pub fn run(opts: &Options) -> Result<String> {
    if !opts.root.is_dir() {
        bail!(
            "--root {} is not a directory; give the directory to treat as /",
            opts.root.display()
        );
    }
    if opts.until.as_deref() == Some(UNTIL_DISCOVERED) && !opts.dry_run {
        return run_discovery(opts)
            .map(|found| format!("configuration: {}\n", found.dir.display()));
    }
    flow::run(opts).map(|f| f.stdout)
}

/// The discovery step alone (`--until discovered`).
pub fn run_discovery(opts: &Options) -> Result<discovery::Discovered> {
    if !opts.root.is_dir() {
        bail!(
            "--root {} is not a directory; give the directory to treat as /",
            opts.root.display()
        );
    }
    let timeout = match opts.config_medium_timeout {
        Some(t) => t,
        None => Duration::from_secs(settings::Settings::load(&opts.root)?.config_medium),
    };
    let opts = discovery::Options {
        root: opts.root.clone(),
        timeout: timeout.min(MAX_TIMEOUT),
        announce_every: ANNOUNCE_EVERY,
    };
    // Ready as soon as the arguments hold: the wait that follows is the
    // service's work, shown in its status line, not its start-up.
    systemd::ready("finding the configuration");
    let result = discovery::discover(&opts, discovery::UdevHost::open);
    if let Err(e) = &result {
        // The unit's status line keeps the reason after the process ends.
        systemd::status(&format!("failed: {e:#}"));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(until: Option<&str>, root: &std::path::Path) -> Options {
        let mut o = Options::new(root.to_path_buf());
        o.until = until.map(String::from);
        o.config_medium_timeout = Some(Duration::from_secs(1));
        o
    }

    #[test]
    fn an_unknown_step_is_refused_with_the_list() {
        let root = tempfile::tempdir().unwrap();
        let err = run(&args(Some("nope"), root.path())).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("has no step `nope`"), "{text}");
        assert!(text.contains("discover, validate, ssh-key"), "{text}");
    }

    #[test]
    fn a_root_that_is_not_a_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = run(&args(Some(UNTIL_DISCOVERED), &file)).unwrap_err();
        assert!(format!("{err:#}").contains("is not a directory"), "{err:#}");
    }

    #[test]
    fn until_discovered_with_the_configuration_in_place() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("opt/openshift/cluster-configuration");
        std::fs::create_dir_all(&dir).unwrap();
        let found = run_discovery(&args(Some(UNTIL_DISCOVERED), root.path())).unwrap();
        assert_eq!(found.dir, dir);
        assert_eq!(found.source, discovery::Source::AlreadyPresent);
    }
}
