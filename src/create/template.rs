//! `create config-template`: a commented sample image-based-config.yaml.

use anyhow::Result;

use crate::api::image_based_config::FILE;
use crate::host::fs::write_sample;

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

/// Where a sample file goes (both `create config-template` and `create
/// image-config-template`).
#[derive(Debug, Clone)]
pub struct TemplateOptions {
    /// Directory to write into (created if missing).
    pub dir: std::path::PathBuf,
    /// Replace an existing file.
    pub force: bool,
}

pub fn write_config_template(args: &TemplateOptions) -> Result<()> {
    write_sample(&args.dir, FILE, CONFIG_TEMPLATE, args.force)?;
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
