//! `ibi-configuration.json`: what the installation ISO hands to the factory
//! installer (`lca-cli ibi` or `sprout ibi`).
//!
//! The builder writes exactly the keys the OpenShift installer writes, in its
//! order, with its omission rules, so an ISO made by sprout drives the
//! upstream agent unchanged. LCA's extra keys are read too (the agent side).

use serde::{Deserialize, Serialize};

/// Where the ISO puts the file, and where the install unit reads it.
pub const PATH: &str = super::contract::live_iso::IBI_CONFIGURATION.absolute();

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IbiConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub extra_partition_label: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub extra_partition_number: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub extra_partition_start: String,
    pub installation_disk: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_registry: String,
    pub seed_image: String,
    pub seed_version: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub shutdown: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip_disk_cleanup: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coreos_installer_args: Vec<String>,
    // LCA's own keys; the installer never writes them.
    #[serde(default, skip_serializing_if = "is_false")]
    pub precache_best_effort: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub precache_disabled: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_containers_folder: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl IbiConfig {
    /// The file as the installer writes it: compact JSON and a newline.
    pub fn to_file_contents(&self) -> serde_json::Result<String> {
        Ok(serde_json::to_string(self)? + "\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_installer_example_byte_for_byte() {
        let c = IbiConfig {
            extra_partition_label: "var-lib-containers".into(),
            extra_partition_number: 5,
            extra_partition_start: "-40G".into(),
            installation_disk: "/dev/vda".into(),
            release_registry: "mirror.quay.io".into(),
            seed_image: "quay.io/openshift-kni/seed-image:4.16.0".into(),
            seed_version: "4.16.0".into(),
            ..Default::default()
        };
        assert_eq!(
            c.to_file_contents().unwrap(),
            "{\"extraPartitionLabel\":\"var-lib-containers\",\"extraPartitionNumber\":5,\"extraPartitionStart\":\"-40G\",\"installationDisk\":\"/dev/vda\",\"releaseRegistry\":\"mirror.quay.io\",\"seedImage\":\"quay.io/openshift-kni/seed-image:4.16.0\",\"seedVersion\":\"4.16.0\"}\n"
        );
    }
}
