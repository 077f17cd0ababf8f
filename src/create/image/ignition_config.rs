//! Assembles the installation ISO's Ignition config and the
//! `ibi-configuration.json` it carries, in upstream's order: base config,
//! optional files, the user's override merged over them, then the fixed
//! files (which win) and the two units.

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::units::{self, Agent};
use crate::api::ibi_config::{self, IbiConfig};
use crate::api::ignition;
use crate::api::install_config::InstallConfig;
use crate::api::installation_config::InstallationConfig;
use crate::api::nmstate;

/// Everything the config is made from.
#[derive(Debug)]
pub struct IgnitionInputs<'a> {
    pub config: &'a InstallationConfig,
    pub post_sh: Option<&'a [u8]>,
    /// `install-config.yaml`, when present in the directory (dual-stack).
    pub install_config: Option<&'a InstallConfig>,
}

/// The results: the Ignition config and the live kernel arguments to add.
#[derive(Debug)]
pub struct Generated {
    pub ignition: Value,
    pub ibi_config: IbiConfig,
    pub live_kargs: Vec<String>,
}

pub fn generate(inputs: &IgnitionInputs<'_>) -> Result<Generated> {
    let c = inputs.config;
    let mut config = json!({"ignition": {"version": ignition::VERSION}});
    if !c.ssh_key.trim().is_empty() {
        let keys: Vec<&str> = c
            .ssh_key
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        config["passwd"] = json!({"users": [{"name": "core", "sshAuthorizedKeys": keys}]});
    }
    let mut files = Vec::new();
    if let Some(conf) = units::registries_conf(&c.image_digest_sources) {
        files.push(ignition::file(
            units::REGISTRIES_CONF_PATH,
            0o644,
            conf.as_bytes(),
        ));
    }
    if !c.additional_trust_bundle.is_empty() {
        files.push(ignition::file(
            units::TRUST_BUNDLE_PATH,
            0o600,
            c.additional_trust_bundle.as_bytes(),
        ));
    }
    if let Some(post) = inputs.post_sh {
        files.push(ignition::file(units::POST_SCRIPT_PATH, 0o755, post));
    }
    if !files.is_empty() {
        config["storage"] = json!({"files": files});
    }
    if !c.ignition_config_override.is_empty() {
        let over = ignition::parse_override(&c.ignition_config_override)
            .map_err(|e| anyhow::anyhow!("ignitionConfigOverride {e}"))?;
        ignition::merge(&mut config, &over);
        config["ignition"]["version"] = json!(ignition::VERSION);
    }

    let dual_stack_karg = dual_stack_karg(inputs);
    let ibi_config = ibi_config(c, dual_stack_karg.as_deref());
    let network_yaml = if nmstate::is_empty(&c.network_config) {
        "\n".to_string()
    } else {
        nmstate::normalized_yaml(&c.network_config).map_err(anyhow::Error::msg)? + "\n"
    };
    let fixed = [
        ignition::file(
            units::INSTALL_SCRIPT_PATH,
            0o555,
            units::install_script().as_bytes(),
        ),
        ignition::file(
            ibi_config::PATH,
            0o600,
            ibi_config.to_file_contents()?.as_bytes(),
        ),
        ignition::file(units::NETWORK_CONFIG_PATH, 0o600, network_yaml.as_bytes()),
        ignition::file(
            units::PULL_SECRET_PATH,
            0o600,
            format!("{}\n", c.pull_secret).as_bytes(),
        ),
    ];
    for f in fixed {
        ignition::upsert(&mut config, "storage", "files", f);
    }

    let agent = if c.agent_image.is_empty() {
        Agent::SeedLcaCli
    } else {
        Agent::Sprout {
            image: c.agent_image.clone(),
        }
    };
    let new_units = [
        ignition::unit(
            units::INSTALL_UNIT,
            &units::install_unit(&c.seed_image, &agent, c.proxy.as_ref()),
            true,
        ),
        ignition::unit(
            units::NETWORK_UNIT,
            &units::network_unit(),
            !nmstate::is_empty(&c.network_config),
        ),
    ];
    for u in new_units {
        let name = u["name"].as_str().unwrap_or_default().to_string();
        let existing = config["systemd"]["units"]
            .as_array()
            .map(|a| a.iter().any(|x| x["name"] == json!(name)));
        if existing == Some(true) {
            // Upstream appends a duplicate, which Ignition rejects at boot.
            bail!(
                "ignitionConfigOverride defines the unit {name}, which the installation ISO needs for itself; \
                 remove it from the override"
            );
        }
        match config["systemd"]["units"].as_array_mut() {
            Some(list) => list.push(u),
            None => config["systemd"]["units"] = json!([u]),
        }
    }
    ignition::check(&config)
        .map_err(|e| anyhow::anyhow!("the generated Ignition config is invalid: {e}"))?;
    Ok(Generated {
        ignition: config,
        ibi_config,
        live_kargs: dual_stack_karg.into_iter().collect(),
    })
}

fn ibi_config(c: &InstallationConfig, dual_stack_karg: Option<&str>) -> IbiConfig {
    let mut args = c.coreos_installer_args.clone();
    if let Some(k) = dual_stack_karg {
        args.push("--append-karg".into());
        args.push(k.into());
    }
    IbiConfig {
        extra_partition_label: c.extra_partition_label.clone(),
        extra_partition_number: c.extra_partition_number,
        extra_partition_start: c.extra_partition_start.clone(),
        installation_disk: c.installation_disk.clone(),
        release_registry: c.release_registry.clone(),
        seed_image: c.seed_image.clone(),
        seed_version: c.seed_version.clone(),
        shutdown: c.shutdown,
        skip_disk_cleanup: c.skip_disk_cleanup,
        coreos_installer_args: args,
        ..Default::default()
    }
}

/// For a dual-stack cluster (install-config.yaml with one IPv4 and one IPv6
/// machine network) the `ip=` kernel argument that gets DHCP on the families
/// that are not static, unless the user already gave an `ip=` argument.
fn dual_stack_karg(inputs: &IgnitionInputs<'_>) -> Option<String> {
    let ic = inputs.install_config?;
    let nets = ic.machine_networks();
    let families: Vec<bool> = nets
        .iter()
        .filter_map(|n| n.parse::<ipnet::IpNet>().ok())
        .map(|n| n.addr().is_ipv4())
        .collect();
    if families.len() != 2 || families[0] == families[1] {
        return None;
    }
    if inputs
        .config
        .coreos_installer_args
        .iter()
        .any(|a| a.starts_with("ip="))
    {
        return None;
    }
    let nc = &inputs.config.network_config;
    let is_static = |family: &str| {
        let ifaces = nc.get("interfaces").and_then(Value::as_array);
        ifaces
            .and_then(|list| list.iter().find_map(|i| i.get(family)))
            .is_some_and(|sec| {
                let has_address = sec
                    .get("address")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
                let dhcp = sec.get("dhcp").and_then(Value::as_bool).unwrap_or(false);
                has_address && !dhcp
            })
    };
    match (is_static("ipv4"), is_static("ipv6")) {
        (false, false) => Some("ip=dhcp,dhcp6".into()),
        (true, false) => Some("ip=dhcp6".into()),
        (false, true) => Some("ip=dhcp".into()),
        (true, true) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> InstallationConfig {
        let text = format!(
            "seedImage: quay.io/a/seed:4.16.0\nseedVersion: 4.16.0\ninstallationDisk: /dev/vda\n\
             pullSecret: '{{\"auths\":{{\"q.io\":{{\"auth\":\"eDp5\"}}}}}}'\n{extra}"
        );
        crate::api::yaml::decode_strict(crate::api::installation_config::FILE, &text).unwrap()
    }

    fn generate_for(c: &InstallationConfig) -> Generated {
        generate(&IgnitionInputs {
            config: c,
            post_sh: None,
            install_config: None,
        })
        .unwrap()
    }

    #[test]
    fn fixed_files_win_over_the_override() {
        let c = config(
            "ignitionConfigOverride: '{\"ignition\":{\"version\":\"3.1.0\"},\"storage\":{\"files\":[\
             {\"path\":\"/var/tmp/pull-secret.json\",\"contents\":{\"source\":\"data:,stolen\"}},\
             {\"path\":\"/etc/extra\",\"contents\":{\"source\":\"data:,x\"}}]}}'\n",
        );
        let g = generate_for(&c);
        let files = g.ignition["storage"]["files"].as_array().unwrap();
        let ps: Vec<_> = files
            .iter()
            .filter(|f| f["path"] == "/var/tmp/pull-secret.json")
            .collect();
        assert_eq!(ps.len(), 1);
        assert_ne!(ps[0]["contents"]["source"], "data:,stolen");
        assert_eq!(ps[0]["mode"], 0o600);
        assert!(files.iter().any(|f| f["path"] == "/etc/extra"));
        assert_eq!(g.ignition["ignition"]["version"], "3.2.0");
    }

    #[test]
    fn no_ssh_key_means_no_empty_key() {
        let g = generate_for(&config(""));
        assert!(g.ignition.get("passwd").is_none());
        // The network unit is present but not enabled without a networkConfig.
        let units = g.ignition["systemd"]["units"].as_array().unwrap();
        assert_eq!(units[1]["name"], "network-config.service");
        assert!(units[1].get("enabled").is_none());
        assert_eq!(units[0]["enabled"], true);
    }

    #[test]
    fn defaults_reach_ibi_configuration() {
        let g = generate_for(&config(""));
        assert_eq!(
            g.ibi_config.to_file_contents().unwrap(),
            "{\"extraPartitionLabel\":\"var-lib-containers\",\"extraPartitionNumber\":5,\"extraPartitionStart\":\"-40G\",\
             \"installationDisk\":\"/dev/vda\",\"seedImage\":\"quay.io/a/seed:4.16.0\",\"seedVersion\":\"4.16.0\"}\n"
        );
    }
}
