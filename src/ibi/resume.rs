//! Resuming after a reboot. The journal starts in `/run` and moves to the
//! target's root partition once it is mounted; after a reboot `/run` is
//! empty and nothing is mounted, so before anything is cleaned up `ibi`
//! looks on the target disk itself: the partition named `root` is mounted
//! read-only, the journal and the record of the disk's partitions read,
//! and the disk unmounted again. The same install (same config hash, seed
//! digest and disk in the journal's fingerprint, and the same partition
//! table and partition UUIDs as recorded) continues; another install is
//! refused unless `--restart`, which starts over.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::options::{RUN_JOURNAL, TARGET_JOURNAL};
use super::steps::IbiState;
use crate::engine::journal::JournalDoc;
use crate::engine::{Fingerprint, Journal, Location};
use crate::host::command::Cmd;
use crate::host::disk::Sfdisk;
use crate::host::disk::inventory::parse_mountinfo;
use crate::host::root::Root;

/// The record of the target's partitions, next to the journal on the disk.
pub const TARGET_DISK_RECORD: &str = "var/lib/sprout/ibi-disk.json";
/// Where the root partition is mounted read-only to look (below the live root).
const PROBE: &str = "run/sprout/ibi-probe";

/// The partition table's identity: its id and the UUIDs of the partitions
/// the install made, by GPT name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRecord {
    pub table_id: Option<String>,
    pub partitions: BTreeMap<String, Option<String>>,
}

impl DiskRecord {
    pub fn of(table: &Sfdisk, names: &[&str]) -> DiskRecord {
        DiskRecord {
            table_id: table.partitiontable.id.clone(),
            partitions: names
                .iter()
                .map(|n| {
                    let uuid = table.partition_by_name(n).ok().and_then(|p| p.uuid.clone());
                    ((*n).to_string(), uuid)
                })
                .collect(),
        }
    }

    /// One line per difference (`self` is the record on the disk).
    fn differences(&self, now: &DiskRecord) -> Vec<String> {
        let mut out = Vec::new();
        if self.table_id != now.table_id {
            out.push(format!(
                "the partition table id was {}, it is {}",
                shown(&self.table_id),
                shown(&now.table_id)
            ));
        }
        for (name, uuid) in &self.partitions {
            let cur = now.partitions.get(name).cloned().flatten();
            if *uuid != cur {
                out.push(format!(
                    "partition {name} had UUID {}, it has {}",
                    shown(uuid),
                    shown(&cur)
                ));
            }
        }
        out
    }
}

fn shown(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("none")
}

/// The GPT names the install creates (and the record covers).
pub fn recorded_names(s: &IbiState) -> Vec<&str> {
    let mut v = vec!["boot", "root"];
    if s.checked.extra_start.is_some() {
        v.push(s.label());
    }
    v
}

/// Writes the record of the partitions onto the mounted target (before the
/// journal moves there, so a journal on the disk always has one).
pub fn record_disk(s: &IbiState, table: &Sfdisk) -> Result<()> {
    let rec = DiskRecord::of(table, &recorded_names(s));
    let mut bytes = serde_json::to_vec_pretty(&rec).context("serialising the disk record")?;
    bytes.push(b'\n');
    let root = Root::open(s.target())?;
    if let Some(dir) = Path::new(TARGET_DISK_RECORD).parent() {
        root.create_dir_all(dir, 0o755)?;
    }
    root.write_atomic(TARGET_DISK_RECORD, &bytes, 0o644)
        .with_context(|| format!("writing {}", s.target().join(TARGET_DISK_RECORD).display()))
}

/// What was found on the disk before the run.
pub enum Earlier {
    /// Nothing to resume: a fresh run (which wipes the disk).
    None,
    /// The same install: the runner also looks for its journal here.
    Resume(Location),
}

/// Looks for an earlier run's journal when `/run` has none (not with
/// `restart`, which starts over anyway). `scratch` is where a dry run may
/// put a copy (a real run copies it into `/run`). A root partition that
/// cannot be mounted or holds no journal is a fresh install.
pub fn find_earlier(
    s: &IbiState,
    fingerprint: &Fingerprint,
    restart: bool,
    scratch: &Path,
) -> Result<Earlier> {
    let live = s.live();
    if live.join(RUN_JOURNAL).exists() {
        // This boot's run: the runner reads it (and the disk's, if it moved).
        return Ok(match target_journal_if_mounted(s)? {
            Some(at) => Earlier::Resume(at),
            None => Earlier::None,
        });
    }
    if restart {
        // Starting over whatever the disk holds: no need to look.
        return Ok(Earlier::None);
    }
    let Some(table) = read_table(s.disk()) else {
        return Ok(Earlier::None);
    };
    let Ok(root_part) = table.partition_by_name("root") else {
        return Ok(Earlier::None);
    };
    let (doc, record, from) = if is_mounted(live, &s.target()) {
        let (d, r) = read_from(&s.target())?;
        (d, r, s.target())
    } else {
        match probe(live, &root_part.node) {
            Ok((d, r)) => (d, r, PathBuf::from(&root_part.node)),
            Err(e) => {
                // Half-written by an install killed early, or not ours: there
                // is nothing to resume on it.
                tracing::warn!(
                    "{} has a partition named root, but no sprout journal could be read from it                      ({e:#}); installing from the start",
                    s.disk()
                );
                return Ok(Earlier::None);
            }
        }
    };
    let Some(doc) = doc else {
        return Ok(Earlier::None);
    };
    let mut diffs = Vec::new();
    if doc.plan != "ibi" {
        diffs.push(format!("it is a journal of `{}`", doc.plan));
    }
    diffs.extend(doc.fingerprint.differences(fingerprint));
    match &record {
        Some(r) => diffs.extend(r.differences(&DiskRecord::of(&table, &recorded_names(s)))),
        None => diffs.push(format!("{TARGET_DISK_RECORD} is missing")),
    }
    if !diffs.is_empty() {
        bail!(
            "{} holds an earlier sprout ibi install (journal started {}, found on {}) that is not \
             this one: {}. Nothing was done. To install over it, run again with --restart; to \
             finish that install, run it with its own configuration and seed",
            s.disk(),
            doc.created,
            from.display(),
            diffs.join("; ")
        );
    }
    let done = doc
        .steps
        .iter()
        .filter(|st| st.state != crate::engine::journal::StepState::Running)
        .count();
    tracing::info!(
        "resuming the install found on {} (journal started {}, {done} steps recorded)",
        s.disk(),
        doc.created
    );
    if is_mounted(live, &s.target()) {
        return Ok(Earlier::Resume(Location::new(
            Root::open(s.target())?,
            TARGET_JOURNAL,
        )));
    }
    // Not mounted: the copy goes where a run of this boot keeps it until
    // the mount step moves it back onto the disk.
    let mut bytes = serde_json::to_vec_pretty(&doc).context("serialising the journal")?;
    bytes.push(b'\n');
    let (root, rel) = if s.opts.dry_run {
        (Root::open(scratch)?, PathBuf::from("ibi-journal.json"))
    } else {
        (Root::open(live)?, PathBuf::from(RUN_JOURNAL))
    };
    if let Some(dir) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        root.create_dir_all(dir, 0o700)?;
    }
    root.write_atomic(&rel, &bytes, 0o600).with_context(|| {
        format!(
            "copying the journal to {}",
            root.path().join(&rel).display()
        )
    })?;
    Ok(Earlier::Resume(Location::new(root, rel)))
}

fn target_journal_if_mounted(s: &IbiState) -> Result<Option<Location>> {
    let t = s.target();
    Ok(if t.join(TARGET_JOURNAL).exists() {
        Some(Location::new(Root::open(&t)?, TARGET_JOURNAL))
    } else {
        None
    })
}

fn read_table(disk: &str) -> Option<Sfdisk> {
    let out = Cmd::new("sfdisk")
        .arg("--json")
        .arg(disk)
        .describe("reading the partition table")
        .run_capture(4 << 20)
        .ok()?;
    Sfdisk::parse(&out).ok()
}

fn is_mounted(live: &Path, at: &Path) -> bool {
    let text = std::fs::read_to_string(live.join("proc/self/mountinfo")).unwrap_or_default();
    let want = at.display().to_string();
    parse_mountinfo(&text).iter().any(|m| m.target == want)
}

/// The journal and the disk record below `dir`, if there.
fn read_from(dir: &Path) -> Result<(Option<JournalDoc>, Option<DiskRecord>)> {
    let root = Root::open(dir)?;
    let doc = Journal::load(&Location::new(root.clone(), TARGET_JOURNAL))?;
    let record = if root.exists(TARGET_DISK_RECORD)? {
        let bytes = root.read(TARGET_DISK_RECORD, 1 << 20)?;
        Some(
            serde_json::from_slice(&bytes)
                .with_context(|| format!("reading {}", dir.join(TARGET_DISK_RECORD).display()))?,
        )
    } else {
        None
    };
    Ok((doc, record))
}

/// Mounts `node` read-only below the live root, reads, unmounts.
fn probe(live: &Path, node: &str) -> Result<(Option<JournalDoc>, Option<DiskRecord>)> {
    let at = live.join(PROBE);
    std::fs::create_dir_all(&at).with_context(|| format!("creating {}", at.display()))?;
    Cmd::new("mount")
        .args(["-o", "ro", node])
        .arg(&at)
        .describe("mounting the target's root partition read-only to look for a journal")
        .run_streaming(|_| {})?;
    let found = read_from(&at);
    let unmounted = Cmd::new("umount")
        .arg(&at)
        .describe("unmounting the target's root partition")
        .run_streaming(|_| {});
    let found = found?;
    unmounted?;
    if let Err(e) = std::fs::remove_dir(&at) {
        tracing::debug!("removing {}: {e}", at.display());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(id: &str, root_uuid: &str) -> Sfdisk {
        Sfdisk::parse(
            format!(
                r#"{{"partitiontable":{{"label":"gpt","id":"{id}","device":"/dev/vda","partitions":[
                {{"node":"/dev/vda3","start":2048,"size":10,"name":"boot","uuid":"b"}},
                {{"node":"/dev/vda4","start":4096,"size":10,"name":"root","uuid":"{root_uuid}"}}]}}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn the_record_names_each_partition_that_changed() {
        let names = ["boot", "root", "var-lib-containers"];
        let rec = DiskRecord::of(&table("T1", "r1"), &names);
        assert_eq!(rec.partitions["var-lib-containers"], None);
        assert!(
            rec.differences(&DiskRecord::of(&table("T1", "r1"), &names))
                .is_empty()
        );
        assert_eq!(
            rec.differences(&DiskRecord::of(&table("T2", "r2"), &names)),
            [
                "the partition table id was T1, it is T2",
                "partition root had UUID r1, it has r2"
            ]
        );
        // It round-trips through the file on the disk.
        let back: DiskRecord = serde_json::from_slice(&serde_json::to_vec(&rec).unwrap()).unwrap();
        assert_eq!(back, rec);
    }
}
