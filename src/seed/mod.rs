//! Seed images: open, check, inspect and extract the seed OCI image the
//! Lifecycle Agent makes (lifecycle-agent.md §1).
//!
//! A seed is reached through [`SeedRef`]: a registry (copied with skopeo,
//! see [`pull`]), an OCI layout, an OCI archive, or a directory holding a
//! mounted image. [`Seed::open`] reads the labels and the small root files
//! and refuses a seed with any blocking problem, listing all of them;
//! [`Seed::extract`] unpacks one of its three tarballs safely;
//! [`inspect::inspect`] additionally reads every tarball member and reports
//! what a factory lead checks before burning ISOs.
//!
//! Module map: `reference` (the forms), `oci` (image layouts), `layer`
//! (root files inside layers), `source` (one interface over all of them),
//! `files` (the root files' formats), `load` and `checks` (problems found, as
//! [`crate::api::diag::Problem`]s),
//! `member`, `meta`, `extract`, `scan` (tarballs), `inspect` (the report).

pub mod checks;
pub mod extract;
pub mod files;
pub mod inspect;
mod inspect_text;
mod io;
mod layer;
mod load;
pub mod member;
mod meta;
mod oci;
pub mod pull;
pub mod reference;
pub mod remote;
pub mod scan;
mod source;

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};

pub use crate::api::diag::{Problem, Severity};
pub use checks::Expectations;
pub use extract::{ExtractOptions, ExtractReport};
pub use files::{BootedDeployment, EtcPath, MachineConfigSummary, Tarball};
pub use pull::PullOptions;
pub use reference::SeedRef;

use crate::api::excerpt::escape_text;
use crate::api::seed_cluster_info::SeedClusterInfo;
use source::Source;

/// The label holding the seed format version.
pub const FORMAT_LABEL: &str = crate::api::contract::seed_image::FORMAT_LABEL;
/// The label holding the seed's `manifest.json` (SeedClusterInfo).
pub const CLUSTER_INFO_LABEL: &str = crate::api::contract::seed_image::CLUSTER_INFO_LABEL;
/// Seed format versions sprout reads. Upstream bumps the version on every
/// incompatible change, so anything else is refused.
pub const SUPPORTED_FORMAT_VERSIONS: &[u32] = &[crate::api::contract::seed_image::FORMAT_VERSION];

/// An opened seed whose labels and small files were read and found usable.
#[derive(Debug)]
pub struct Seed {
    reference: SeedRef,
    source: Source,
    format_version: Option<u32>,
    cluster_info: SeedClusterInfo,
    cluster_info_json: Vec<u8>,
    booted: BootedDeployment,
    machine_config: MachineConfigSummary,
    origin: Vec<u8>,
    containers: Vec<String>,
    etc_deletions: Vec<EtcPath>,
    notes: Vec<Problem>,
}

impl Seed {
    /// Opens a seed, copying it from its registry first for `docker://`
    /// (the copy lives in `pull.workdir` until the `Seed` is dropped).
    /// Fails with [`SeedUnusable`] listing every blocking problem, including
    /// a mismatch with `expect`. The tarballs are not read here: extraction
    /// checks each member as it goes, [`inspect::inspect`] reads them all.
    pub fn open(reference: &SeedRef, pull: &PullOptions, expect: &Expectations) -> Result<Self> {
        let source = Source::open(reference, pull)
            .with_context(|| format!("opening the seed {reference}"))?;
        let mut l = load::load(&source).with_context(|| format!("reading the seed {reference}"))?;
        let mut findings = std::mem::take(&mut l.findings);
        checks::check(&l, expect, &mut findings);
        l.findings = findings;
        let unusable = || SeedUnusable {
            seed: reference.to_string(),
            findings: l.findings.errors(),
        };
        if l.findings.has_errors() {
            return Err(unusable().into());
        }
        let (
            Some(cluster_info),
            Some(cluster_info_json),
            Some(booted),
            Some(machine_config),
            Some(origin),
            Some(containers),
            Some(etc_deletions),
        ) = (
            l.cluster_info.clone(),
            l.cluster_info_json.clone(),
            l.booted.clone(),
            l.machine_config.clone(),
            l.origin.clone(),
            l.containers.clone(),
            l.etc_deletions.clone(),
        )
        else {
            // Every missing piece has an error finding; this is a backstop.
            return Err(unusable().into());
        };
        for n in l.findings.as_slice() {
            if n.severity == Severity::Warning {
                tracing::warn!(
                    "seed {reference}: {} ({})",
                    escape_text(&n.message),
                    escape_text(n.fix.as_deref().unwrap_or_default())
                );
            }
        }
        Ok(Self {
            reference: reference.clone(),
            source,
            format_version: l.format_version,
            cluster_info,
            cluster_info_json,
            booted,
            machine_config,
            origin,
            containers,
            etc_deletions,
            notes: l.findings.into_vec(),
        })
    }

    /// A registry seed from its manifest and labels only, nothing copied
    /// (`remote`): the label checks and `expect` are applied; the files
    /// (commit, kernel arguments, image list) are empty until the seed is
    /// pulled and opened again from its mount. Other references: `open`.
    pub fn open_remote(
        reference: &SeedRef,
        pull: &PullOptions,
        expect: &Expectations,
    ) -> Result<Self> {
        let SeedRef::Docker(r) = reference else {
            return Self::open(reference, pull, expect);
        };
        let image = remote::inspect(r, pull)?;
        let source = Source::Remote(image);
        let mut l = load::load_labels(&source);
        let mut findings = std::mem::take(&mut l.findings);
        checks::check(&l, expect, &mut findings);
        let (Some(cluster_info), Some(cluster_info_json), false) = (
            l.cluster_info.clone(),
            l.cluster_info_json.clone(),
            findings.has_errors(),
        ) else {
            return Err(SeedUnusable {
                seed: reference.to_string(),
                findings: findings.errors(),
            }
            .into());
        };
        Ok(Self {
            reference: reference.clone(),
            source,
            format_version: l.format_version,
            cluster_info,
            cluster_info_json,
            booted: BootedDeployment {
                id: String::new(),
                deployment: String::new(),
                checksum: String::new(),
                serial: 0,
                osname: String::new(),
            },
            machine_config: MachineConfigSummary::default(),
            origin: Vec::new(),
            containers: Vec::new(),
            etc_deletions: Vec::new(),
            notes: findings.into_vec(),
        })
    }

    /// The registry's view of a seed opened with `open_remote` (its files
    /// are not read yet); `None` otherwise.
    pub fn remote(&self) -> Option<&remote::RemoteImage> {
        match &self.source {
            Source::Remote(r) => Some(r),
            _ => None,
        }
    }

    /// The bytes the image's layers take (`None` for a directory), for
    /// free-space estimates.
    pub fn image_size(&self) -> Option<u64> {
        self.source.image_size()
    }

    /// The size of root file `name` (a tarball), if the seed has it.
    pub fn file_size(&self, name: &str) -> Option<u64> {
        self.source.info(name).ok().flatten().map(|i| i.size)
    }

    pub fn reference(&self) -> &SeedRef {
        &self.reference
    }

    /// The format label's value; `None` for a plain directory.
    pub fn format_version(&self) -> Option<u32> {
        self.format_version
    }

    pub fn cluster_info(&self) -> &SeedClusterInfo {
        &self.cluster_info
    }

    /// `manifest.json` verbatim (IBI copies it to `/var/tmp/manifest.json`).
    pub fn cluster_info_json(&self) -> &[u8] {
        &self.cluster_info_json
    }

    pub fn booted_deployment(&self) -> &BootedDeployment {
        &self.booted
    }

    /// Kernel arguments and FIPS from `mco-currentconfig.json`.
    pub fn machine_config(&self) -> &MachineConfigSummary {
        &self.machine_config
    }

    /// The booted deployment's `.origin` file, verbatim.
    pub fn origin(&self) -> &[u8] {
        &self.origin
    }

    /// The images to precache, from `containers.list`.
    pub fn containers(&self) -> &[String] {
        &self.containers
    }

    /// Paths the seed deleted from `/etc`, checked to stay below `etc/`.
    pub fn etc_deletions(&self) -> &[EtcPath] {
        &self.etc_deletions
    }

    /// Warnings and notes found when opening (no errors: those refuse).
    pub fn notes(&self) -> &[Problem] {
        &self.notes
    }

    /// Reads every member of the three tarballs without extracting (and,
    /// for an image, checks its layer digests), as `seed inspect` does: an
    /// installer calls this before wiping a disk. Fails with
    /// [`SeedUnusable`] naming every refused member or inconsistency.
    pub fn verify(&self) -> Result<()> {
        let loaded = load::Loaded {
            cluster_info: Some(self.cluster_info.clone()),
            cluster_info_json: Some(self.cluster_info_json.clone()),
            booted: Some(self.booted.clone()),
            ..load::Loaded::default()
        };
        let (_, findings) = inspect::verify_tarballs(&self.source, &loaded)
            .with_context(|| format!("reading the seed {}", self.reference))?;
        if findings.has_errors() {
            return Err(SeedUnusable {
                seed: self.reference.to_string(),
                findings: findings.errors(),
            }
            .into());
        }
        Ok(())
    }

    /// A reader of any root file, e.g. `lca-cli`.
    pub fn open_file(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        self.source
            .open_file(name)
            .with_context(|| format!("reading {name} from the seed {}", self.reference))
    }

    /// Extracts `tarball` into the existing directory `dest` (see
    /// [`extract`] for what is refused and kept).
    pub fn extract(
        &self,
        tarball: Tarball,
        dest: &Path,
        opts: &ExtractOptions,
    ) -> Result<ExtractReport> {
        let r = self.open_file(tarball.file_name())?;
        extract::extract_tgz(r, tarball, dest, opts).with_context(|| {
            format!(
                "extracting {tarball} of the seed {} into {}",
                self.reference,
                dest.display()
            )
        })
    }

    /// Copies a root file (e.g. `lca-cli`) to `dest` atomically with `mode`.
    pub fn copy_file(&self, name: &str, dest: &Path, mode: u32) -> Result<()> {
        let mut r = self.open_file(name)?;
        crate::host::fs::write_atomic_with(dest, mode, |f| {
            std::io::copy(&mut r, f)
                .map(|_| ())
                .with_context(|| format!("copying {name} to {}", dest.display()))
        })
    }
}

/// The error when a seed cannot be used: every blocking problem found.
#[derive(Debug, thiserror::Error)]
pub struct SeedUnusable {
    pub seed: String,
    pub findings: Vec<Problem>,
}

impl std::fmt::Display for SeedUnusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.findings.len();
        write!(
            f,
            "the seed {} cannot be used ({n} problem{}):",
            self.seed,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.findings {
            // The problem, then its fix on the next line.
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::diag::Problems;

    #[test]
    fn unusable_lists_problem_and_fix() {
        let mut f = Problems::default();
        f.warning("w", "x");
        f.error("manifest.json is missing", "make the seed again");
        assert!(f.has_errors());
        let e = SeedUnusable {
            seed: "oci:/s".into(),
            findings: f.errors(),
        };
        assert_eq!(
            e.to_string(),
            "the seed oci:/s cannot be used (1 problem):\n  - manifest.json is missing\n    fix: make the seed again"
        );
    }
}
