//! Compatibility between a seed and the installation it is meant for: the
//! checks upstream IBI skips or makes only after wiping the disk (W11).

use super::load::{Loaded, REMAKE};
use crate::api::diag::Problems;
use crate::api::seed_cluster_info::SeedClusterInfo;

/// The extra partition label IBI uses when the configuration names none.
pub const DEFAULT_EXTRA_PARTITION_LABEL: &str =
    crate::api::contract::partitions::DEFAULT_EXTRA_PARTITION_LABEL;

/// What the installation configuration asks of the seed; unset fields are
/// not checked.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    /// `seedVersion`: must equal the seed's OpenShift version.
    pub seed_version: Option<String>,
    /// `extraPartitionLabel`: must be the partition the seed mounts as
    /// `/var/lib/containers`.
    pub extra_partition_label: Option<String>,
}

pub fn check(l: &Loaded, expect: &Expectations, f: &mut Problems) {
    if let Some(info) = &l.cluster_info {
        check_version(info, expect, f);
        check_container_storage(info, expect, f);
        check_fips_and_proxy(l, info, f);
        check_recert(l, info, f);
    }
    if let Some(images) = &l.containers
        && images.is_empty()
    {
        f.warning(
            "containers.list is empty: nothing will be precached, so the node pulls every image at first boot",
            REMAKE,
        );
    }
    if let Some(mc) = &l.machine_config {
        for arg in &mc.kernel_arguments {
            if arg.contains(['$', '`', '\\']) {
                f.warning(
                    format!("kernel argument {arg:?} holds a shell character: upstream lca-cli passes kernel arguments through bash, which alters it (sprout passes it unchanged)"),
                    "install with sprout, or remove the character from the seed cluster's MachineConfig kernelArguments and make the seed again",
                );
            }
        }
    }
}

fn check_version(info: &SeedClusterInfo, expect: &Expectations, f: &mut Problems) {
    if let Some(want) = &expect.seed_version
        && *want != info.seed_cluster_ocp_version
    {
        // Upstream's wording, so people searching for it find this.
        f.error(
            format!(
                "version specified in seed image ({}) differs from version in spec ({want})",
                info.seed_cluster_ocp_version
            ),
            format!(
                "set seedVersion: {} in the installation configuration, or use a seed made for {want}",
                info.seed_cluster_ocp_version
            ),
        );
    }
}

fn check_container_storage(info: &SeedClusterInfo, expect: &Expectations, f: &mut Problems) {
    let target = &info.container_storage_mountpoint_target;
    if target.is_empty() {
        f.warning(
            "the seed cluster kept /var/lib/containers on its root filesystem (manifest.json has no container_storage_mountpoint_target): images precached at the factory go to a partition the installed node does not mount",
            "make the seed from a cluster that mounts /var/lib/containers from a separate partition (a var-lib-containers.mount unit), as the image-based installation prerequisites require",
        );
        return;
    }
    let Some(label) = info.extra_partition_label() else {
        f.error(
            format!("the seed mounts /var/lib/containers from {target}, which an installation cannot create: the extra partition is found by its GPT partition label only"),
            "make the seed from a cluster whose var-lib-containers.mount uses What=/dev/disk/by-partlabel/<label>",
        );
        return;
    };
    match &expect.extra_partition_label {
        Some(want) if want != label => f.error(
            format!("the seed mounts /var/lib/containers from partition label {label:?} but extraPartitionLabel is {want:?}: the installed node would not find its container storage and hang at boot"),
            format!("set extraPartitionLabel: {label} in the installation configuration"),
        ),
        None if label != DEFAULT_EXTRA_PARTITION_LABEL => f.warning(
            format!("the seed mounts /var/lib/containers from partition label {label:?}, not the default {DEFAULT_EXTRA_PARTITION_LABEL:?}"),
            format!("set extraPartitionLabel: {label} in the installation configuration"),
        ),
        _ => {}
    }
}

fn check_fips_and_proxy(l: &Loaded, info: &SeedClusterInfo, f: &mut Problems) {
    if info.has_fips {
        f.info(
            "the seed cluster runs in FIPS mode",
            "set fips: true in install-config.yaml; a cluster without FIPS cannot be installed from this seed",
        );
    } else {
        f.info(
            "the seed cluster does not run in FIPS mode",
            "leave fips unset in install-config.yaml; a FIPS cluster needs a seed made with FIPS",
        );
    }
    if info.has_proxy {
        f.info(
            "the seed cluster uses a cluster-wide proxy",
            "configure proxy in install-config.yaml; a cluster without a proxy cannot be installed from this seed",
        );
    } else {
        f.info(
            "the seed cluster uses no proxy",
            "leave proxy unset in install-config.yaml; a cluster with a proxy needs a seed made with one",
        );
    }
    if let Some(mc) = &l.machine_config
        && mc.fips != info.has_fips
    {
        f.warning(
            format!(
                "mco-currentconfig.json says fips: {} but manifest.json says has_fips: {}",
                mc.fips, info.has_fips
            ),
            REMAKE,
        );
    }
}

fn check_recert(l: &Loaded, info: &SeedClusterInfo, f: &mut Problems) {
    let image = &info.recert_image_pull_spec;
    if image.is_empty() {
        f.warning(
            "manifest.json has no recert_image_pull_spec: the first boot does not know which recert image to run",
            REMAKE,
        );
    } else if let Some(list) = &l.containers
        && !list.iter().any(|i| i == image)
    {
        f.warning(
            format!("the recert image {image} is not in containers.list, so it is not precached: the first boot must pull it from a registry"),
            REMAKE,
        );
    }
}
