//! `sprout seed inspect`: everything a factory lead checks before burning
//! ISOs, and every problem found, each with what to do about it.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::checks::{self, Expectations};
use super::files::{BootedDeployment, Tarball};
use super::load::{self, Loaded, REMAKE};
use super::pull::PullOptions;
use super::reference::SeedRef;
use super::scan::{self, TarballScan};
use super::source::Source;
use crate::api::contract::seed_image;
use crate::api::diag::{Problem, Problems};
use crate::api::seed_cluster_info::SeedClusterInfo;

/// The `schema` of `seed inspect --json` (docs/schema/seed-inspect.v1.json).
pub const SCHEMA: &str = "sprout/seed-inspect/v1";

/// The report, as printed by `--json`. Values the seed does not provide are
/// `null`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InspectReport {
    /// The document and its version (docs/json-output.md).
    pub schema: &'static str,
    pub seed: String,
    /// False when any problem is an error: the seed cannot be installed.
    pub usable: bool,
    pub format_version: Option<u32>,
    pub ocp_version: Option<String>,
    pub cluster_name: Option<String>,
    pub base_domain: Option<String>,
    pub seed_hostname: Option<String>,
    pub node_ips: Vec<String>,
    pub fips: Option<bool>,
    pub proxy: Option<bool>,
    pub container_storage_mountpoint_target: Option<String>,
    /// The `extraPartitionLabel` the installation must use.
    pub extra_partition_label: Option<String>,
    pub recert_image: Option<String>,
    pub release_registry: Option<String>,
    pub mirror_registry_configured: Option<bool>,
    pub kernel_args: Vec<String>,
    pub booted_deployment: Option<BootedDeployment>,
    /// Images listed in containers.list (precached at the factory).
    pub image_count: Option<usize>,
    pub sizes: Sizes,
    /// The seed's manifest.json as read.
    pub seed_cluster_info: Option<SeedClusterInfo>,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Sizes {
    /// Bytes of the image's layers; `null` for a directory.
    pub image: Option<u64>,
    /// Bytes of every root file.
    pub files: BTreeMap<String, u64>,
    /// Members and extracted bytes of each tarball read.
    pub tarballs: BTreeMap<Tarball, TarballScan>,
}

/// What `seed inspect` is asked to look at; the CLI builds it from its
/// arguments.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: SeedRef,
    /// How a `docker://` seed is copied.
    pub pull: PullOptions,
    /// What the installation will ask of the seed.
    pub expect: Expectations,
}

/// Runs `seed inspect`.
pub fn run(opts: &Options) -> Result<InspectReport> {
    inspect(&opts.seed, &opts.pull, &opts.expect)
}

/// Opens the seed, reads everything in it, and reports. A seed that cannot
/// be reached or is not an image at all is an error; a seed that is
/// readable but broken gives a report with `usable: false`.
pub fn inspect(
    reference: &SeedRef,
    pull: &PullOptions,
    expect: &Expectations,
) -> Result<InspectReport> {
    let source =
        Source::open(reference, pull).with_context(|| format!("opening the seed {reference}"))?;
    let mut l = load::load(&source).with_context(|| format!("reading the seed {reference}"))?;
    let mut findings = std::mem::take(&mut l.findings);
    checks::check(&l, expect, &mut findings);
    let (scans, more) = verify_tarballs(&source, &l)?;
    findings.extend(more.into_vec());
    Ok(report(reference, &source, l, scans, findings))
}

/// Reads every member of the three tarballs and checks them against the
/// seed's metadata; what `Seed::verify` and `inspect` share.
pub(crate) fn verify_tarballs(
    source: &Source,
    l: &Loaded,
) -> Result<(BTreeMap<Tarball, TarballScan>, Problems)> {
    let mut findings = Problems::default();
    let scans = scan_tarballs(source, l, &mut findings)?;
    cross_check(l, &scans, &mut findings);
    Ok((scans, findings))
}

fn scan_tarballs(
    source: &Source,
    l: &Loaded,
    findings: &mut Problems,
) -> Result<BTreeMap<Tarball, TarballScan>> {
    let mut names = Vec::new();
    for t in Tarball::ALL {
        if matches!(source.info(t.file_name())?, Some(i) if i.odd_type.is_none()) {
            names.push(t.file_name());
        }
    }
    let checksum = l.booted.as_ref().map(|b| b.checksum.as_str());
    let mut scans = BTreeMap::new();
    let visited = source.visit(&names, &mut |name: &str, r: &mut dyn Read| {
        if let Some(t) = Tarball::ALL.into_iter().find(|t| t.file_name() == name) {
            tracing::info!("reading every member of {name}");
            scans.insert(t, scan::scan_tgz(r, t, &scan::wanted_members(t, checksum)));
        }
        Ok(())
    });
    if let Err(e) = visited {
        findings.error(
            format!("{e:#}"),
            "copy the seed again (this copy is damaged); if that does not help, make the seed again",
        );
    }
    Ok(scans)
}

fn cross_check(l: &Loaded, scans: &BTreeMap<Tarball, TarballScan>, f: &mut Problems) {
    for (t, s) in scans {
        for r in &s.refusals {
            f.error(
                r.clone(),
                format!("do not use this seed: its {t} would write outside its destination or holds entries no seed has; {REMAKE}"),
            );
        }
        if s.refused > s.refusals.len() as u64 {
            f.error(
                format!(
                    "{t}: {} more members refused",
                    s.refused - s.refusals.len() as u64
                ),
                "do not use this seed",
            );
        }
        if let Some(e) = &s.error {
            f.error(
                e.clone(),
                "copy the seed again (this copy is damaged); if that does not help, make the seed again",
            );
        }
    }
    if let Some(s) = scans.get(&Tarball::Ostree) {
        if !s.found.contains_key("config") {
            f.error(
                "ostree.tgz has no config file: it is not an ostree repository",
                REMAKE,
            );
        }
        if let Some(b) = &l.booted
            && !s.found.keys().any(|k| k.ends_with(".commit"))
        {
            f.error(
                format!(
                    "ostree.tgz does not hold the booted commit {} named by rpm-ostree.json",
                    b.checksum
                ),
                REMAKE,
            );
        }
    }
    if let Some(s) = scans.get(&Tarball::Var) {
        match s.found.get(seed_image::VAR_SEED_MANIFEST) {
            None => f.error(
                "var.tgz has no var/seed_data/manifest.json, which the first boot reads",
                REMAKE,
            ),
            Some(Some(inner)) => {
                let a: Option<serde_json::Value> = serde_json::from_slice(inner).ok();
                let b: Option<serde_json::Value> = l
                    .cluster_info_json
                    .as_deref()
                    .and_then(|m| serde_json::from_slice(m).ok());
                if b.is_some() && a != b {
                    f.error(
                        "var.tgz's var/seed_data/manifest.json differs from manifest.json: the seed was changed after it was made",
                        REMAKE,
                    );
                }
            }
            Some(None) => {}
        }
        if !s.found.contains_key(seed_image::VAR_LCA_CLI) {
            f.error(
                "var.tgz has no var/usrlocal/bin/lca-cli, the agent that configures the node at first boot",
                REMAKE,
            );
        }
    }
    if let Some(s) = scans.get(&Tarball::Etc) {
        if !s.found.contains_key(seed_image::ETC_INSTALLATION_UNIT) {
            f.warning(
                "etc.tgz has no etc/systemd/system/installation-configuration.service: nothing configures the node at its first boot",
                REMAKE,
            );
        }
        check_mount_unit(l, s, f);
    }
}

/// The seed's mount unit is what the installed node really uses; it must
/// agree with the manifest that the extra partition is checked against.
fn check_mount_unit(l: &Loaded, s: &TarballScan, f: &mut Problems) {
    let Some(info) = &l.cluster_info else { return };
    let target = &info.container_storage_mountpoint_target;
    match s.found.get(seed_image::ETC_CONTAINERS_MOUNT) {
        None if !target.is_empty() => f.warning(
            format!("manifest.json says container storage is mounted from {target} but etc.tgz has no var-lib-containers.mount"),
            REMAKE,
        ),
        Some(Some(unit)) => {
            let text = String::from_utf8_lossy(unit);
            let what = text
                .lines()
                .filter_map(|line| line.trim().strip_prefix("What="))
                .next_back()
                .map(str::trim);
            if let Some(what) = what
                && what != target
            {
                f.error(
                    format!("etc.tgz's var-lib-containers.mount mounts {what} but manifest.json says {target:?}"),
                    REMAKE,
                );
            }
        }
        _ => {}
    }
}

fn report(
    reference: &SeedRef,
    source: &Source,
    l: Loaded,
    scans: BTreeMap<Tarball, TarballScan>,
    mut findings: Problems,
) -> InspectReport {
    findings.sort_by_severity();
    let info = l.cluster_info.clone();
    let s = |get: fn(&SeedClusterInfo) -> &String| {
        info.as_ref().map(get).filter(|v| !v.is_empty()).cloned()
    };
    InspectReport {
        schema: SCHEMA,
        seed: reference.to_string(),
        usable: !findings.has_errors(),
        format_version: l.format_version,
        ocp_version: s(|i| &i.seed_cluster_ocp_version),
        cluster_name: s(|i| &i.cluster_name),
        base_domain: s(|i| &i.base_domain),
        seed_hostname: s(|i| &i.sno_hostname),
        node_ips: info
            .as_ref()
            .map(SeedClusterInfo::node_ips)
            .unwrap_or_default(),
        fips: info.as_ref().map(|i| i.has_fips),
        proxy: info.as_ref().map(|i| i.has_proxy),
        container_storage_mountpoint_target: s(|i| &i.container_storage_mountpoint_target),
        extra_partition_label: info
            .as_ref()
            .and_then(|i| i.extra_partition_label())
            .map(str::to_string),
        recert_image: s(|i| &i.recert_image_pull_spec),
        release_registry: s(|i| &i.release_registry),
        mirror_registry_configured: info.as_ref().map(|i| i.mirror_registry_configured),
        kernel_args: l
            .machine_config
            .as_ref()
            .map(|m| m.kernel_arguments.clone())
            .unwrap_or_default(),
        booted_deployment: l.booted.clone(),
        image_count: l.containers.as_ref().map(Vec::len),
        sizes: Sizes {
            image: source.image_size(),
            files: l.sizes.clone(),
            tarballs: scans,
        },
        seed_cluster_info: info,
        problems: findings.into_vec(),
    }
}

impl InspectReport {
    /// The report as printed: JSON, or aligned text for people.
    pub fn render(&self, json: bool) -> Result<String> {
        if json {
            let mut s =
                serde_json::to_string_pretty(self).context("serialising the report as JSON")?;
            s.push('\n');
            return Ok(s);
        }
        Ok(super::inspect_text::render(self))
    }

    /// An error when the seed cannot be installed (after printing).
    pub fn verdict(&self) -> Result<()> {
        let errors = self.problems.iter().filter(|p| p.is_error()).count();
        if errors > 0 {
            bail!(
                "the seed {} cannot be installed: {errors} problem{} (listed above)",
                self.seed,
                if errors == 1 { "" } else { "s" }
            );
        }
        Ok(())
    }
}
