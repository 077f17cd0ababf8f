//! `create image-config-template`: a commented sample
//! image-based-installation-config.yaml.

use anyhow::Result;

use crate::api::installation_config::FILE;
use crate::cli::ImageConfigTemplateArgs;
use crate::host::fs::write_sample;

/// The sample. It must stay decodable: a test decodes it.
pub const IMAGE_CONFIG_TEMPLATE: &str = r#"#
# Note: This is a sample ImageBasedInstallationConfig file showing
# which fields are available to aid you in creating your
# own image-based-installation-config.yaml file.
#
apiVersion: v1beta1
kind: ImageBasedInstallationConfig
metadata:
  name: example-image-based-installation-config
# The seed OCI image and its OpenShift version (must match the seed).
seedImage: quay.io/openshift-kni/seed-image:4.16.0
seedVersion: 4.16.0
# The disk to install to; prefer a stable /dev/disk/by-id/... path.
installationDisk: /dev/vda
# Must equal the label of the seed's /var/lib/containers partition
# (`sprout seed inspect` shows it).
extraPartitionLabel: var-lib-containers
# A pull secret that can pull the seed and the release images.
pullSecret: '<your-pull-secret>'
# sshKey: ssh-ed25519 AAAA... core user's key on the live ISO
# shutdown: true                  # power off when the installation is done
# coreosInstallerArgs: [--append-karg, console=ttyS0]
# agentImage: quay.io/example/sprout:latest   # run sprout's ibi instead of the seed's lca-cli
#
# networkConfig configures the live ISO's network (nmstate); for a dual-stack
# cluster with install-config.yaml in this directory, DHCP kernel arguments
# (ip=dhcp,dhcp6) are added for the families that are not static.
# networkConfig:
#   interfaces:
#     - name: eth0
#       type: ethernet
#       state: up
#       mac-address: 00:00:00:00:00:00
#       ipv4:
#         enabled: true
#         address:
#           - ip: 192.168.122.2
#             prefix-length: 23
#         dhcp: false
"#;

pub fn write_image_config_template(args: &ImageConfigTemplateArgs) -> Result<()> {
    write_sample(&args.dir, FILE, IMAGE_CONFIG_TEMPLATE, args.force)?;
    tracing::info!("Image-Config-Template created in: {}", args.dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::installation_config::InstallationConfig;

    #[test]
    fn template_decodes() {
        let c: InstallationConfig =
            crate::api::yaml::decode_strict(FILE, IMAGE_CONFIG_TEMPLATE).unwrap();
        assert_eq!(c.seed_version, "4.16.0");
        // The placeholder pull secret is the one thing the user must replace.
        let problems = c.validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "pullSecret");
    }
}
