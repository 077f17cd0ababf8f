//! `create config-template`: a commented sample image-based-config.yaml.

use anyhow::{Result, bail};

use crate::api::image_based_config::FILE;
use crate::cli::ConfigTemplateArgs;
use crate::host::fs::{SECRET_MODE, create_dir_with_mode, write_atomic};

/// The sample. It must stay valid input: a test decodes and validates it.
pub const CONFIG_TEMPLATE: &str = r#"#
# Note: This is a sample ImageBasedConfig file showing
# which fields are available to aid you in creating your
# own image-based-config.yaml file.
#
apiVersion: v1beta1
kind: ImageBasedConfig
metadata:
  name: example-image-based-config
additionalNTPSources:
  - 0.rhel.pool.ntp.org
  - 1.rhel.pool.ntp.org
hostname: change-to-hostname
releaseRegistry: quay.io
# networkConfig contains the network configuration for the host in NMState format.
# See https://nmstate.io/examples.html for examples.
networkConfig:
  interfaces:
    - name: eth0
      type: ethernet
      state: up
      mac-address: 00:00:00:00:00:00
      ipv4:
        enabled: true
        address:
          - ip: 192.168.122.2
            prefix-length: 23
        dhcp: false
      ipv6:
        enabled: true
        address:
          - ip: 2001:db8::2
            prefix-length: 64
        dhcp: false
# nodeLabels:
#   node-role.kubernetes.io/edge: ""
"#;

pub fn write_config_template(args: &ConfigTemplateArgs) -> Result<()> {
    let path = args.dir.join(FILE);
    if path.exists() && !args.force {
        bail!(
            "{} already exists; edit it, or use --force to replace it with the sample",
            path.display()
        );
    }
    if !args.dir.exists() {
        create_dir_with_mode(&args.dir, 0o755)?;
    }
    // 0600 like upstream: the file will hold the cluster's network details.
    write_atomic(&path, CONFIG_TEMPLATE.as_bytes(), SECRET_MODE)?;
    tracing::info!("Config-Template created in: {}", args.dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::image_based_config::ImageBasedConfig;

    #[test]
    fn template_is_valid_input() {
        let c: ImageBasedConfig = crate::api::yaml::decode_strict(FILE, CONFIG_TEMPLATE).unwrap();
        assert_eq!(c.validate(), vec![]);
        assert_eq!(c.hostname, "change-to-hostname");
    }
}
