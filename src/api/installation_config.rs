//! `image-based-installation-config.yaml`: the settings of the installation
//! ISO (seed, disk, credentials, live-environment network).

use serde::Deserialize;

use super::diag::{Problem, Problems};
use super::install_config::{ImageDigestSource, Proxy, validate_digest_sources};
use super::{nmstate, validate};

pub const FILE: &str = "image-based-installation-config.yaml";

/// Upstream's defaults, applied when a key is absent (an explicit `""`
/// overrides them, as upstream).
pub const DEFAULT_EXTRA_PARTITION_LABEL: &str =
    super::contract::partitions::DEFAULT_EXTRA_PARTITION_LABEL;
pub const DEFAULT_EXTRA_PARTITION_START: &str = "-40G";
pub const DEFAULT_EXTRA_PARTITION_NUMBER: u32 = 5;

/// Flags `coreosInstallerArgs` may hold, each followed by its value.
pub const ALLOWED_INSTALLER_FLAGS: &[&str] = &[
    "--append-karg",
    "--delete-karg",
    "--save-partlabel",
    "--save-partindex",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    #[default]
    Amd64,
    Arm64,
}

impl Architecture {
    /// The name CoreOS stream metadata and RPMs use.
    pub fn rpm_arch(self) -> &'static str {
        match self {
            Self::Amd64 => "x86_64",
            Self::Arm64 => "aarch64",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallationConfig {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub seed_image: String,
    #[serde(default)]
    pub seed_version: String,
    #[serde(default)]
    pub installation_disk: String,
    #[serde(default)]
    pub pull_secret: String,
    #[serde(default)]
    pub ssh_key: String,
    #[serde(default)]
    pub additional_trust_bundle: String,
    #[serde(default)]
    pub architecture: Option<Architecture>,
    #[serde(default = "default_label")]
    pub extra_partition_label: String,
    #[serde(default = "default_number")]
    pub extra_partition_number: u32,
    #[serde(default = "default_start")]
    pub extra_partition_start: String,
    #[serde(default)]
    pub ignition_config_override: String,
    #[serde(default)]
    pub image_digest_sources: Vec<ImageDigestSource>,
    #[serde(default)]
    pub network_config: serde_json::Value,
    pub proxy: Option<Proxy>,
    #[serde(default)]
    pub release_registry: String,
    #[serde(default)]
    pub shutdown: bool,
    #[serde(default)]
    pub skip_disk_cleanup: bool,
    #[serde(default)]
    pub coreos_installer_args: Vec<String>,
    /// sprout's addition: an OCI image whose `/sprout` runs the factory
    /// install instead of the seed's `/lca-cli`.
    #[serde(default)]
    pub agent_image: String,
}

fn default_label() -> String {
    DEFAULT_EXTRA_PARTITION_LABEL.to_string()
}
fn default_number() -> u32 {
    DEFAULT_EXTRA_PARTITION_NUMBER
}
fn default_start() -> String {
    DEFAULT_EXTRA_PARTITION_START.to_string()
}

impl InstallationConfig {
    pub fn architecture(&self) -> Architecture {
        self.architecture.unwrap_or_default()
    }

    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Problems::new(FILE);
        if self.seed_image.is_empty() {
            p.required("seedImage", "you must specify a seedImage");
        } else if self.seed_image.contains(char::is_whitespace) {
            p.invalid(
                "seedImage",
                &self.seed_image,
                "an image reference has no spaces, e.g. quay.io/org/seed:4.16.0",
            );
        }
        if self.seed_version.is_empty() {
            p.required("seedVersion", "you must specify a seedVersion");
        }
        if self.installation_disk.is_empty() {
            p.required(
                "installationDisk",
                "you must specify an installationDisk (prefer a stable /dev/disk/by-id/… path)",
            );
        } else if !self.installation_disk.starts_with("/dev/") {
            p.invalid(
                "installationDisk",
                &self.installation_disk,
                "must be a device path such as /dev/disk/by-id/wwn-0x… or /dev/sda",
            );
        }
        validate::credentials(
            &mut p,
            &self.pull_secret,
            &self.ssh_key,
            &self.additional_trust_bundle,
        );
        validate_partition_start(&mut p, &self.extra_partition_start);
        if self.extra_partition_label.is_empty() {
            p.required(
                "extraPartitionLabel",
                "the label of the seed's /var/lib/containers partition, usually var-lib-containers",
            );
        }
        if !self.ignition_config_override.is_empty()
            && let Err(e) = super::ignition::parse_override(&self.ignition_config_override)
        {
            p.add("ignitionConfigOverride", format!("Invalid value: {e}"));
        }
        validate_digest_sources(&mut p, "imageDigestSources", &self.image_digest_sources);
        if !nmstate::is_empty(&self.network_config)
            && let Err(e) = nmstate::validate(&self.network_config)
        {
            p.add("networkConfig", format!("Invalid value: {e}"));
        }
        if let Some(proxy) = &self.proxy {
            super::install_config::validate_proxy(&mut p, proxy);
        }
        if !self.release_registry.is_empty()
            && let Err(e) = validate::repository_name(&self.release_registry)
        {
            p.invalid("releaseRegistry", &self.release_registry, &e);
        }
        validate_installer_args(&mut p, &self.coreos_installer_args);
        if !self.agent_image.is_empty() && self.agent_image.contains(char::is_whitespace) {
            p.invalid(
                "agentImage",
                &self.agent_image,
                "an image reference has no spaces, e.g. quay.io/org/sprout:latest",
            );
        }
        p.into_vec()
    }
}

/// `"0"` or `[+-]<number>[KMGTP]`, as sfdisk takes it.
fn validate_partition_start(p: &mut Problems, start: &str) {
    if start.is_empty() {
        p.required(
            "extraPartitionStart",
            "partition start sector cannot be empty; use e.g. -40G (40 GiB at the end of the disk)",
        );
        return;
    }
    if start == "0" {
        return;
    }
    let body = start.strip_prefix(['+', '-']).unwrap_or(start);
    let ok = body.len() >= 2
        && body.ends_with(['K', 'M', 'G', 'T', 'P'])
        && body[..body.len() - 1].bytes().all(|b| b.is_ascii_digit());
    if !ok {
        p.invalid(
            "extraPartitionStart",
            start,
            "partition start must be '0' or match pattern [+-]?<number>[KMGTP], e.g. -40G for the last 40 GiB of the disk",
        );
    }
}

/// Only the four flags upstream allows, and values without shell or
/// whitespace characters: the factory agent passes them on as arguments.
fn validate_installer_args(p: &mut Problems, args: &[String]) {
    let allowed_value = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"@!#$%*()_+,-./:;<=\"'{}[]".contains(&b))
    };
    for (i, a) in args.iter().enumerate() {
        let field = format!("coreosInstallerArgs[{i}]");
        if a.starts_with('-') {
            if !ALLOWED_INSTALLER_FLAGS.contains(&a.as_str()) {
                p.add(
                    field,
                    format!(
                        "Required value: found unexpected flag {a} for coreosInstallerArgs - allowed flags are [{}]; give the flag and its value as two items",
                        ALLOWED_INSTALLER_FLAGS.join(" ")
                    ),
                );
            }
        } else if !allowed_value(a) {
            p.add(
                field,
                format!("Required value: found unexpected chars in value {a} for installer"),
            );
        }
    }
    if let Some(last) = args.last()
        && ALLOWED_INSTALLER_FLAGS.contains(&last.as_str())
    {
        p.add(
            format!("coreosInstallerArgs[{}]", args.len() - 1),
            format!("Required value: {last} needs a value after it"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_for(yaml: &str) -> Vec<String> {
        let c: InstallationConfig = crate::api::yaml::decode_strict(FILE, yaml).unwrap();
        c.validate().into_iter().map(|p| p.to_string()).collect()
    }

    const BASE: &str = "seedImage: quay.io/a/seed:4.16.0\nseedVersion: 4.16.0\ninstallationDisk: /dev/vda\npullSecret: '{\"auths\":{\"q.io\":{\"auth\":\"eDp5\"}}}'\n";

    #[test]
    fn defaults_apply_when_absent() {
        let c: InstallationConfig = crate::api::yaml::decode_strict(FILE, BASE).unwrap();
        assert_eq!(c.extra_partition_label, "var-lib-containers");
        assert_eq!(c.extra_partition_number, 5);
        assert_eq!(c.extra_partition_start, "-40G");
        assert_eq!(c.architecture(), Architecture::Amd64);
        assert!(c.validate().is_empty());
    }

    #[test]
    fn partition_start_rules() {
        for ok in ["0", "-40G", "+100M", "500G"] {
            assert!(
                problems_for(&format!("{BASE}extraPartitionStart: \"{ok}\"\n")).is_empty(),
                "{ok}"
            );
        }
        assert_eq!(
            problems_for(&format!("{BASE}extraPartitionStart: \"-10\"\n")),
            [
                "image-based-installation-config.yaml: extraPartitionStart: Invalid value: \"-10\": partition start must be '0' or match pattern [+-]?<number>[KMGTP], e.g. -40G for the last 40 GiB of the disk"
            ]
        );
    }

    #[test]
    fn installer_args_rules() {
        assert!(
            problems_for(&format!(
                "{BASE}coreosInstallerArgs: [--append-karg, ip=dhcp6, --save-partindex, '6']\n"
            ))
            .is_empty()
        );
        let e = problems_for(&format!("{BASE}coreosInstallerArgs: [--append-karg=x]\n"));
        assert!(
            e[0].contains("found unexpected flag --append-karg=x"),
            "{e:?}"
        );
        let e = problems_for(&format!(
            "{BASE}coreosInstallerArgs: [--append-karg, 'a b']\n"
        ));
        assert!(
            e[0].ends_with("found unexpected chars in value a b for installer"),
            "{e:?}"
        );
        let e = problems_for(&format!("{BASE}coreosInstallerArgs: [--delete-karg]\n"));
        assert!(
            e[0].ends_with("--delete-karg needs a value after it"),
            "{e:?}"
        );
    }
}
