//! The journal: what a run has done so far, on durable storage, rewritten
//! atomically after every step.
//!
//! It is a hint for resuming, never the truth: every step's `check` looks
//! at the machine. What the journal adds is (1) which step was interrupted
//! (so a `RedoFromClean` step is cleaned first), (2) a decision for steps
//! whose effect cannot be observed, and (3) the fingerprint of what the run
//! was for, so a run for another config, seed or disk refuses to "resume"
//! someone else's work.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::clock;
use crate::host::root::Root;

/// The journal format version this sprout writes and reads.
pub const JOURNAL_VERSION: u32 = 1;

/// Journals are small; anything bigger is not one.
const MAX_JOURNAL_BYTES: u64 = 16 << 20;

/// Where a journal lives: a path below a root (movable, e.g. from /run to
/// the target disk once it is mounted).
#[derive(Debug, Clone)]
pub struct Location {
    pub root: Root,
    pub path: PathBuf,
}

impl Location {
    pub fn new(root: Root, path: impl Into<PathBuf>) -> Self {
        Location {
            root,
            path: path.into(),
        }
    }

    pub fn display(&self) -> String {
        self.root.path().join(&self.path).display().to_string()
    }
}

/// What a run is for, as named hashes (`config`, `seed-digest`,
/// `disk-wwn`, …). Two runs with different fingerprints are different runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint(BTreeMap<String, String>);

impl Fingerprint {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `name` = `value` (already a digest or a stable identity).
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Adds `name` = SHA-256 of `bytes` (e.g. the canonical config JSON).
    pub fn with_sha256(self, name: impl Into<String>, bytes: &[u8]) -> Self {
        self.with(
            name,
            format!("sha256:{}", crate::hash::hex(&crate::hash::sha256(bytes))),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// One line per difference between `self` (the journal's) and `now`.
    pub fn differences(&self, now: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        for (k, old) in &self.0 {
            match now.0.get(k) {
                None => out.push(format!("{k} was {old}, this run has none")),
                Some(new) if new != old => {
                    out.push(format!("{k} differs (journal {old}, this run {new})"))
                }
                Some(_) => {}
            }
        }
        for (k, new) in &now.0 {
            if !self.0.contains_key(k) {
                out.push(format!("{k} is {new}, the journal has none"));
            }
        }
        out
    }
}

/// Where a step stands in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Started and not finished: the run was interrupted during it.
    Running,
    Done,
    Skipped,
    Failed,
}

/// One step as the journal remembers it (its latest attempt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalStep {
    pub id: String,
    pub state: StepState,
    /// How many times it was started, across runs.
    pub attempts: u32,
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
}

/// The journal document (`docs/architecture.md`, "Engine").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalDoc {
    pub version: u32,
    pub plan: String,
    pub fingerprint: Fingerprint,
    pub created: String,
    pub updated: String,
    pub steps: Vec<JournalStep>,
}

/// The journal of the current run and where it is written.
#[derive(Debug)]
pub struct Journal {
    doc: JournalDoc,
    at: Location,
    /// Whether leftovers of killed saves were looked for already.
    swept: bool,
    /// The locks (`<journal>.lock`, where it started and where it moved)
    /// held while this run owns the journal.
    locks: Vec<std::fs::File>,
}

impl Journal {
    /// The document at `at`, if there is one.
    pub fn load(at: &Location) -> Result<Option<JournalDoc>> {
        if !at.root.exists(&at.path)? {
            return Ok(None);
        }
        let bytes = at.root.read(&at.path, MAX_JOURNAL_BYTES)?;
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let v: Versioned = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a sprout journal; remove it or run again with --restart",
                at.display()
            )
        })?;
        if v.version != JOURNAL_VERSION {
            bail!(
                "{} is journal version {}, this sprout reads version {JOURNAL_VERSION}; \
                 finish the run with the sprout that started it, or run again with --restart",
                at.display(),
                v.version
            );
        }
        let doc = serde_json::from_slice(&bytes)
            .with_context(|| format!("reading the journal {}", at.display()))?;
        Ok(Some(doc))
    }

    /// The journal of `plan` for `fingerprint`: the one at the first of
    /// `candidates` that exists (it is resumed, and written there), else a
    /// new one at `candidates[0]`. A journal with another fingerprint is an
    /// error naming the differences, unless `restart`.
    pub fn open(
        candidates: &[Location],
        plan: &str,
        fingerprint: &Fingerprint,
        restart: bool,
    ) -> Result<Journal> {
        let Some(first) = candidates.first() else {
            bail!("no journal location given");
        };
        if !restart {
            for at in candidates {
                if let Some(doc) = Self::load(at)? {
                    Self::check_same_run(&doc, at, plan, fingerprint)?;
                    return Ok(Journal {
                        doc,
                        at: at.clone(),
                        swept: false,
                        locks: Vec::new(),
                    });
                }
            }
        }
        let now = clock::rfc3339(clock::now_ms());
        let journal = Journal {
            doc: JournalDoc {
                version: JOURNAL_VERSION,
                plan: plan.to_string(),
                fingerprint: fingerprint.clone(),
                created: now.clone(),
                updated: now,
                steps: Vec::new(),
            },
            at: first.clone(),
            swept: false,
            locks: Vec::new(),
        };
        if restart {
            for at in &candidates[1..] {
                at.root.remove(&at.path)?;
            }
        }
        Ok(journal)
    }

    fn check_same_run(
        doc: &JournalDoc,
        at: &Location,
        plan: &str,
        fingerprint: &Fingerprint,
    ) -> Result<()> {
        let mut diffs = Vec::new();
        if doc.plan != plan {
            diffs.push(format!("it is a journal of `{}`, not `{plan}`", doc.plan));
        }
        diffs.extend(doc.fingerprint.differences(fingerprint));
        if diffs.is_empty() {
            return Ok(());
        }
        bail!(
            "the journal {} (started {}) is of a different run, so it is not resumed: {}. \
             Nothing was done. If that run is abandoned, run again with --restart to start over",
            at.display(),
            doc.created,
            diffs.join("; ")
        )
    }

    pub fn doc(&self) -> &JournalDoc {
        &self.doc
    }

    pub fn location(&self) -> &Location {
        &self.at
    }

    /// The journal's entry for step `id`.
    pub fn step(&self, id: &str) -> Option<&JournalStep> {
        self.doc.steps.iter().find(|s| s.id == id)
    }

    /// Replaces (or appends) the entry of `entry.id`.
    pub fn record(&mut self, entry: JournalStep) {
        match self.doc.steps.iter_mut().find(|s| s.id == entry.id) {
            Some(s) => *s = entry,
            None => self.doc.steps.push(entry),
        }
    }

    /// Writes the document atomically (temp, fsync, rename, fsync dir).
    pub fn save(&mut self) -> Result<()> {
        self.doc.updated = clock::rfc3339(clock::now_ms());
        let mut bytes = serde_json::to_vec_pretty(&self.doc).context("serialising the journal")?;
        bytes.push(b'\n');
        if let Some(dir) = self.at.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.at.root.create_dir_all(dir, 0o700)?;
        }
        self.at
            .root
            .write_atomic(&self.at.path, &bytes, 0o600)
            .with_context(|| format!("writing the journal {}", self.at.display()))?;
        if !self.swept {
            self.swept = true;
            self.remove_stale_temporaries();
        }
        Ok(())
    }

    /// Removes the temporary files of saves a kill interrupted
    /// (`.journal.json.<pid>.<n>.tmp` next to it); best effort.
    fn remove_stale_temporaries(&self) {
        let Some(name) = self.at.path.file_name() else {
            return;
        };
        let dir = self.at.path.parent().unwrap_or(std::path::Path::new(""));
        let prefix = format!(".{}.", name.to_string_lossy());
        let own = format!("{prefix}{}.", std::process::id());
        let Ok(entries) = self.at.root.read_dir(dir) else {
            return;
        };
        for e in entries {
            let n = e.name.to_string_lossy();
            if n.starts_with(&prefix) && !n.starts_with(&own) && n.ends_with(".tmp") {
                let _ = self.at.root.remove(dir.join(&e.name));
            }
        }
    }

    /// `open`, holding the lock `<journal>.lock` next to `candidates[0]`
    /// (before anything is read or removed) for as long as the journal
    /// lives, so that a second sprout started while this one runs (a unit
    /// restarted, an operator at another console) stops instead of doing
    /// the same steps at once.
    pub fn open_locked(
        candidates: &[Location],
        plan: &str,
        fingerprint: &Fingerprint,
        restart: bool,
    ) -> Result<Journal> {
        let Some(first) = candidates.first() else {
            bail!("no journal location given");
        };
        let lock = lock_at(first)?;
        let mut journal = Self::open(candidates, plan, fingerprint, restart)?;
        journal.locks.push(lock);
        Ok(journal)
    }

    /// Writes the journal at `to` and removes it from where it was.
    pub fn relocate(&mut self, to: Location) -> Result<()> {
        if to.display() == self.at.display() {
            return self.save();
        }
        if !self.locks.is_empty() {
            self.locks.push(lock_at(&to)?);
        }
        let from = std::mem::replace(&mut self.at, to);
        self.save()?;
        if let Err(e) = from.root.remove(&from.path) {
            tracing::warn!(
                "the journal was moved to {}, but the old copy {} stays: {e:#}",
                self.at.display(),
                from.display()
            );
        }
        Ok(())
    }
}

/// How often, and how long apart, a taken journal lock is tried again
/// before the run is refused (about one second in all).
const LOCK_GRACE_TRIES: u32 = 20;
const LOCK_GRACE_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// Takes the lock `<journal>.lock` next to the journal at `at`.
fn lock_at(at: &Location) -> Result<std::fs::File> {
    let Some(name) = at.path.file_name() else {
        bail!("the journal path {} has no file name", at.display());
    };
    let mut lock_name = name.to_owned();
    lock_name.push(".lock");
    let rel = at.path.with_file_name(lock_name);
    let shown = at.root.path().join(&rel).display().to_string();
    if let Some(dir) = rel.parent().filter(|p| !p.as_os_str().is_empty()) {
        at.root.create_dir_all(dir, 0o700)?;
    }
    let file = at.root.open_or_create(&rel, 0o600)?;
    // A child forked by this process just before the previous holder let go
    // keeps the lock's open file until its exec closes it (close-on-exec), so
    // a run that follows another in the same process may find it taken for a
    // moment. A real second run holds it for minutes: a short grace tells
    // the two apart without waiting on the real one.
    let mut attempt = 0;
    let locked = loop {
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Err(rustix::io::Errno::WOULDBLOCK) if attempt < LOCK_GRACE_TRIES => {
                attempt += 1;
                std::thread::sleep(LOCK_GRACE_PAUSE);
            }
            other => break other,
        }
    };
    match locked {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => bail!(
            "another sprout run is using the journal {} (it holds {shown}); wait for it to \
             finish, or stop it first",
            at.display()
        ),
        Err(e) => Err(e).with_context(|| format!("locking {shown}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_key() {
        let old = Fingerprint::new()
            .with("config", "a")
            .with("disk", "d1")
            .with("seed", "s");
        let new = Fingerprint::new()
            .with("config", "a")
            .with("disk", "d2")
            .with("extra", "e");
        assert_eq!(
            old.differences(&new),
            [
                "disk differs (journal d1, this run d2)",
                "seed was s, this run has none",
                "extra is e, the journal has none",
            ]
        );
        assert!(old.differences(&old.clone()).is_empty());
        let h = Fingerprint::new().with_sha256("config", b"abc");
        assert_eq!(
            h.get("config"),
            Some("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }

    #[test]
    fn a_journal_of_another_version_or_not_a_journal_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::open(d.path()).unwrap();
        let at = [Location::new(root.clone(), "j.json")];
        root.write_atomic("j.json", br#"{"version": 2, "x": 1}"#, 0o600)
            .unwrap();
        let e = Journal::open(&at, "p", &Fingerprint::new(), false).unwrap_err();
        assert!(
            e.to_string()
                .contains("journal version 2, this sprout reads version 1"),
            "{e}"
        );
        root.write_atomic("j.json", b"garbage", 0o600).unwrap();
        let e = Journal::open(&at, "p", &Fingerprint::new(), false).unwrap_err();
        assert!(e.to_string().contains("is not a sprout journal"), "{e}");
        // A second run is refused while the first holds the lock.
        let first = Journal::open_locked(&at, "p", &Fingerprint::new(), true).unwrap();
        let e = Journal::open_locked(&at, "p", &Fingerprint::new(), true).unwrap_err();
        assert!(
            e.to_string()
                .contains("another sprout run is using the journal"),
            "{e}"
        );
        drop(first);
        // --restart starts over instead.
        let mut j = Journal::open(&at, "p", &Fingerprint::new(), true).unwrap();
        j.save().unwrap();
        assert_eq!(Journal::load(&at[0]).unwrap().unwrap().plan, "p");
    }
}
