//! Reading and checking a seed's labels and small files, collecting every
//! problem instead of stopping at the first, so `seed inspect` can list
//! them all and `Seed::open` can refuse with all of them.

use std::collections::BTreeMap;

use anyhow::Result;

use super::files::{self, BootedDeployment, EtcPath, MachineConfigSummary, REQUIRED};
use super::source::Source;
use super::{CLUSTER_INFO_LABEL, FORMAT_LABEL, SUPPORTED_FORMAT_VERSIONS};
use crate::api::contract::seed_image;
use crate::api::diag::Problems;
use crate::api::seed_cluster_info::SeedClusterInfo;

/// The fix for a seed whose content is wrong: only its maker can fix it.
pub const REMAKE: &str = "make the seed again with the Lifecycle Agent (SeedGenerator, \
     `lca-cli create`) and push it unmodified";

/// Everything read; a field is `None` when its file is missing or bad, and
/// `findings` says why.
#[derive(Debug, Default)]
pub struct Loaded {
    pub format_version: Option<u32>,
    pub cluster_info: Option<SeedClusterInfo>,
    /// manifest.json's bytes, to copy verbatim.
    pub cluster_info_json: Option<Vec<u8>>,
    pub booted: Option<BootedDeployment>,
    pub machine_config: Option<MachineConfigSummary>,
    pub origin: Option<Vec<u8>>,
    pub containers: Option<Vec<String>>,
    pub etc_deletions: Option<Vec<EtcPath>>,
    /// The size of every root file.
    pub sizes: BTreeMap<String, u64>,
    pub findings: Problems,
}

pub fn load(source: &Source) -> Result<Loaded> {
    let mut l = Loaded::default();
    for name in source.names()? {
        if let Some(info) = source.info(&name)? {
            l.sizes.insert(name, info.size);
        }
    }
    check_required(source, &mut l)?;
    let manifest = read(source, files::MANIFEST, &mut l.findings);
    if let Some(bytes) = &manifest {
        match files::parse_cluster_info(bytes) {
            Ok(info) => {
                if info.seed_cluster_ocp_version.is_empty() {
                    l.findings.error(
                        "manifest.json has no seed_cluster_ocp_version: the seed's OpenShift version is unknown",
                        REMAKE,
                    );
                }
                l.cluster_info = Some(info);
                l.cluster_info_json = Some(bytes.clone());
            }
            Err(e) => l.findings.error(format!("manifest.json {e}"), REMAKE),
        }
    }
    check_labels(source, manifest.as_deref(), &mut l);

    if let Some(bytes) = read(source, files::RPM_OSTREE, &mut l.findings) {
        match files::parse_rpm_ostree(&bytes) {
            Ok(b) => l.booted = Some(b),
            Err(e) => l.findings.error(format!("rpm-ostree.json {e}"), REMAKE),
        }
    }
    if let Some(booted) = l.booted.clone() {
        load_origin(source, &booted, &mut l)?;
    }
    if let Some(bytes) = read(source, files::MCO_CONFIG, &mut l.findings) {
        match files::parse_machine_config(&bytes) {
            Ok(mc) => l.machine_config = Some(mc),
            Err(e) => l
                .findings
                .error(format!("mco-currentconfig.json {e}"), REMAKE),
        }
    }
    if let Some(bytes) = read(source, files::CONTAINERS_LIST, &mut l.findings) {
        let (images, bad) = files::parse_containers_list(&bytes);
        for line in bad {
            l.findings.warning(
                format!("containers.list has a line that is not an image reference: {line:?}"),
                "precaching will fail for it; remove the line or make the seed again",
            );
        }
        l.containers = Some(images);
    }
    if let Some(bytes) = read(source, files::ETC_DELETIONS, &mut l.findings) {
        match files::parse_etc_deletions(&bytes) {
            Ok(d) => l.etc_deletions = Some(d),
            Err(e) => l.findings.error(
                format!("etc.deletions {e}; a seed must not delete files outside /etc"),
                REMAKE,
            ),
        }
    }
    Ok(l)
}

/// Only what the labels say (a registry seed before its pull): the format
/// version and the cluster info, from `seed_cluster_info`, which carries
/// the same bytes as manifest.json.
pub fn load_labels(source: &Source) -> Loaded {
    let mut l = Loaded::default();
    check_labels(source, None, &mut l);
    let Some(label) = source.labels().and_then(|m| m.get(CLUSTER_INFO_LABEL)) else {
        return l;
    };
    match files::parse_cluster_info(label.as_bytes()) {
        Ok(info) => {
            if info.seed_cluster_ocp_version.is_empty() {
                l.findings.error(
                    format!("the label {CLUSTER_INFO_LABEL} has no seed_cluster_ocp_version: the seed's OpenShift version is unknown"),
                    REMAKE,
                );
            }
            l.cluster_info = Some(info);
            l.cluster_info_json = Some(label.as_bytes().to_vec());
        }
        Err(e) => l
            .findings
            .error(format!("the label {CLUSTER_INFO_LABEL} {e}"), REMAKE),
    }
    l
}

/// A small root file's bytes, or a finding saying why not. A missing file
/// was already reported by `check_required`.
fn read(source: &Source, name: &str, findings: &mut Problems) -> Option<Vec<u8>> {
    match source.read_small(name) {
        Ok(bytes) => bytes,
        Err(e) => {
            findings.error(format!("{e:#}"), REMAKE);
            None
        }
    }
}

fn check_required(source: &Source, l: &mut Loaded) -> Result<()> {
    for name in REQUIRED {
        match source.info(name)? {
            None => l
                .findings
                .error(format!("{name} is missing from the seed"), REMAKE),
            Some(info) => {
                if let Some(t) = info.odd_type {
                    l.findings.error(
                        format!("{name} is a {t} in the seed, not a regular file"),
                        REMAKE,
                    );
                } else if name == files::LCA_CLI && info.mode & 0o111 == 0 {
                    l.findings.warning(
                        "lca-cli is not executable in the seed; an installation ISO that runs the seed's own lca-cli will fail",
                        REMAKE,
                    );
                }
            }
        }
    }
    Ok(())
}

fn check_labels(source: &Source, manifest: Option<&[u8]>, l: &mut Loaded) {
    let Some(labels) = source.labels() else {
        l.findings.warning(
            "a plain directory has no image labels: the seed format version and the seed_cluster_info label were not checked",
            "inspect the image itself (docker://, oci: or oci-archive:) to check them",
        );
        return;
    };
    let supported = SUPPORTED_FORMAT_VERSIONS
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match labels.get(FORMAT_LABEL).map(|v| v.trim()) {
        None => l.findings.error(
            format!("the image has no label {FORMAT_LABEL}: it was not made by the Lifecycle Agent, or was rebuilt without its labels"),
            REMAKE,
        ),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if SUPPORTED_FORMAT_VERSIONS.contains(&n) => l.format_version = Some(n),
            Ok(n) => l.findings.error(
                format!("seed format version {n} (label {FORMAT_LABEL}) is not supported; sprout reads format {supported}"),
                format!("make the seed with a Lifecycle Agent release that writes seed format {supported}, or use a sprout release that reads format {n}"),
            ),
            Err(_) => l.findings.error(
                format!("the label {FORMAT_LABEL} is {v:?}, not a format version number"),
                REMAKE,
            ),
        },
    }
    match labels.get(CLUSTER_INFO_LABEL) {
        None => l.findings.error(
            format!("the image has no label {CLUSTER_INFO_LABEL}: it was not made by the Lifecycle Agent, or was rebuilt without its labels"),
            REMAKE,
        ),
        Some(label) => {
            let label: Option<serde_json::Value> = serde_json::from_str(label).ok();
            let file: Option<serde_json::Value> =
                manifest.and_then(|m| serde_json::from_slice(m).ok());
            match (label, file) {
                (None, _) => l.findings.error(
                    format!("the label {CLUSTER_INFO_LABEL} is not valid JSON"),
                    REMAKE,
                ),
                (Some(a), Some(b)) if a != b => l.findings.error(
                    format!("the label {CLUSTER_INFO_LABEL} and manifest.json disagree: the image was changed after the Lifecycle Agent made it"),
                    REMAKE,
                ),
                _ => {}
            }
        }
    }
}

fn load_origin(source: &Source, booted: &BootedDeployment, l: &mut Loaded) -> Result<()> {
    let name = booted.origin_file();
    match source.info(&name)? {
        Some(_) => {
            if let Some(bytes) = read(source, &name, &mut l.findings) {
                if !String::from_utf8_lossy(&bytes).contains("[origin]") {
                    l.findings.warning(
                        format!("{name} has no [origin] group; ostree will not know where the deployment came from"),
                        REMAKE,
                    );
                }
                l.origin = Some(bytes);
            }
        }
        None => {
            let others: Vec<String> = source
                .names()?
                .into_iter()
                .filter(|n| seed_image::is_origin_file(n))
                .collect();
            let has = if others.is_empty() {
                "the seed has no .origin file".to_string()
            } else {
                format!("the seed has {}", others.join(", "))
            };
            l.findings.error(
                format!("{name}, the origin of the booted deployment {} in rpm-ostree.json, is missing ({has})", booted.id),
                REMAKE,
            );
        }
    }
    Ok(())
}
