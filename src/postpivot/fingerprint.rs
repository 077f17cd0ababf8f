//! What a post-pivot run is for, as the journal's fingerprint: the
//! SeedReconfiguration (`cluster-configuration/manifest.json`) and the seed
//! (`/var/seed_data/manifest.json`), by SHA-256 of their bytes.
//!
//! A journal written for other inputs is never resumed: its steps were
//! done for another configuration (hostname, IPs, certificates), and the
//! journal-decided steps would be skipped for this one. The run is refused
//! for good with what to do — deliberately not restarted, since the node
//! is already partly the other cluster and only a re-install undoes that.
//!
//! The configuration must be in place for the fingerprint, so the flow
//! runs the discovery before it opens the journal (the `discover` step then
//! finds it done).

use std::path::Path;

use anyhow::{Result, anyhow};

use super::discovery::CONFIG_DIR;
use super::status::{JOURNAL_FILE, STATUS_FILE};
use super::steps::{WD, terminal};
use crate::engine::{Fingerprint, Journal, Location};
use crate::host::root::Root;

/// The seed's information, below the root.
pub const SEED_INFO: &str = "var/seed_data/manifest.json";
/// The reconfiguration, below the working directory.
pub const RECONFIG: &str = "manifest.json";

/// Files are small; anything bigger is refused by validation anyway.
const MAX_INPUT: u64 = 64 << 20;

/// The relative path of the reconfiguration.
pub fn reconfig_path() -> std::path::PathBuf {
    Path::new(WD).join(CONFIG_DIR).join(RECONFIG)
}

/// The fingerprint of the inputs under `root` (`none` for a missing file).
pub fn inputs(root: &Root) -> Result<Fingerprint> {
    let mut fp = Fingerprint::new().with("job", "post-pivot");
    for (name, rel) in [
        ("config", reconfig_path()),
        ("seed", Path::new(SEED_INFO).to_path_buf()),
    ] {
        fp = if root.exists(&rel)? {
            fp.with_sha256(name, &root.read(&rel, MAX_INPUT)?)
        } else {
            fp.with(name, "none")
        };
    }
    Ok(fp)
}

/// Refuses (terminally) a journal written for other inputs than `now`.
pub fn check_journal(at: &Location, now: &Fingerprint) -> Result<()> {
    let Some(doc) = Journal::load(at)? else {
        return Ok(());
    };
    let diffs = doc.fingerprint.differences(now);
    if diffs.is_empty() {
        return Ok(());
    }
    Err(terminal(anyhow!(
        "the journal /{JOURNAL_FILE} (started {}) is of a run for other inputs ({}): this node \
         was already partly reconfigured for that configuration, and resuming would mix the two, \
         so nothing was done. Re-install the node from the seed (sprout ibi) with the new \
         configuration; or, to run this configuration over what is there, remove \
         /{JOURNAL_FILE}, /{STATUS_FILE} and /{WD}/*.done and start the unit again",
        doc.created,
        diffs.join("; ")
    )))
}
