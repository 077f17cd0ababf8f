//! The files and systemd units the installation ISO's Ignition config
//! carries: the install script and unit, the live network unit, and
//! registries.conf for mirrors.

use std::fmt::Write as _;

use crate::api::install_config::{ImageDigestSource, MirrorSourcePolicy, Proxy};

pub const INSTALL_SCRIPT_PATH: &str = crate::api::contract::live_iso::INSTALL_SCRIPT.absolute();
pub const INSTALL_UNIT: &str = crate::api::contract::units::INSTALL_RHCOS;
pub const NETWORK_UNIT: &str = crate::api::contract::units::NETWORK_CONFIG;
pub const PULL_SECRET_PATH: &str = crate::api::contract::live_iso::PULL_SECRET.absolute();
pub const NETWORK_CONFIG_PATH: &str = crate::api::contract::live_iso::NETWORK_CONFIG.absolute();
pub const POST_SCRIPT_PATH: &str = crate::api::contract::live_iso::POST_SCRIPT.absolute();
pub const REGISTRIES_CONF_PATH: &str = "/etc/containers/registries.conf";
pub const TRUST_BUNDLE_PATH: &str = "/etc/pki/ca-trust/source/anchors/additional-trust-bundle.pem";

/// Where the factory agent comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agent {
    /// Upstream's way: `/lca-cli` copied out of the seed image itself.
    SeedLcaCli,
    /// sprout's agent: `/sprout` copied out of this image.
    Sprout { image: String },
}

/// The install script. Upstream retries the pull forever; this one gives up
/// after 30 minutes with a message saying what to check, so the unit ends
/// in a visible failed state instead of looping silently.
pub fn install_script() -> String {
    r#"#!/bin/bash
# Installs RHCOS and restores the seed on this machine. Written by
# `sprout create image`; run by install-rhcos-and-restore-seed.service.
set -euo pipefail

seed_image="${1:-${SEED_IMAGE:?SEED_IMAGE is not set}}"
authfile="${PULL_SECRET_FILE:-/var/tmp/pull-secret.json}"
ibi_config="${IBI_CONFIGURATION_FILE:-/var/tmp/ibi-configuration.json}"
# The agent is lca-cli from the seed (upstream), or sprout from AGENT_IMAGE.
agent_image="${AGENT_IMAGE:-$seed_image}"
agent_path="${AGENT_PATH:-/lca-cli}"
agent_bin="/usr/local/bin/$(basename "$agent_path")"
attempts=180
delay=10

podman rm --force ibi-agent >/dev/null 2>&1 || true
for attempt in $(seq 1 "$attempts"); do
    if podman create --authfile "$authfile" --name ibi-agent "$agent_image" "$agent_path"; then
        break
    fi
    if [ "$attempt" -eq "$attempts" ]; then
        echo "giving up: could not pull $agent_image after $attempts attempts; check the network, proxy, mirrors and pull secret" >&2
        exit 1
    fi
    echo "pulling $agent_image failed (attempt $attempt of $attempts); retrying in ${delay}s" >&2
    sleep "$delay"
done
podman cp "ibi-agent:$agent_path" "$agent_bin"
podman rm ibi-agent
exec "$agent_bin" ibi -f "$ibi_config"
"#
    .to_string()
}

/// systemd unit text for `Environment="K=V"`: `%` and quotes escaped.
fn env_line(key: &str, value: &str) -> String {
    let v = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%");
    format!("Environment=\"{key}={v}\"\n")
}

/// The install unit. Its `chcon` is allowed to fail (`-`), unlike
/// upstream's: without SELinux (a live system booted with it disabled)
/// there is no label to set and the script runs anyway; with SELinux on, a
/// label that could not be set fails the script's own start readably.
pub fn install_unit(seed_image: &str, agent: &Agent, proxy: Option<&Proxy>) -> String {
    let mut env = String::new();
    env.push_str(&env_line("SEED_IMAGE", seed_image));
    env.push_str(&env_line(
        "IBI_CONFIGURATION_FILE",
        crate::api::ibi_config::PATH,
    ));
    env.push_str(&env_line("PULL_SECRET_FILE", PULL_SECRET_PATH));
    if let Agent::Sprout { image } = agent {
        env.push_str(&env_line("AGENT_IMAGE", image));
        env.push_str(&env_line("AGENT_PATH", "/sprout"));
    }
    if let Some(p) = proxy {
        for (upper, lower, value) in [
            ("HTTP_PROXY", "http_proxy", &p.http_proxy),
            ("HTTPS_PROXY", "https_proxy", &p.https_proxy),
            ("NO_PROXY", "no_proxy", &p.no_proxy),
        ] {
            if !value.is_empty() {
                env.push_str(&env_line(upper, value));
                env.push_str(&env_line(lower, value));
            }
        }
    }
    format!(
        "[Unit]\n\
         Description=SNO Image-based Installation\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         {env}\
         ExecStartPre=-/usr/bin/chcon -t install_exec_t {INSTALL_SCRIPT_PATH}\n\
         ExecStart={INSTALL_SCRIPT_PATH}\n\
         StandardOutput=journal+console\n\
         StandardError=journal+console\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// Applies the live network config. Upstream loops in `bash -c` inside a
/// 60 s timeout; systemd's own restart logic, bounded, does the same job
/// and leaves a readable failed state.
pub fn network_unit() -> String {
    format!(
        "[Unit]\n\
         Description=Pre Network Manager Config\n\
         After=NetworkManager.service\n\
         Before={INSTALL_UNIT}\n\
         StartLimitIntervalSec=300\n\
         StartLimitBurst=60\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         RemainAfterExit=yes\n\
         TimeoutStartSec=60\n\
         ExecStart=/usr/bin/nmstatectl apply {NETWORK_CONFIG_PATH}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// registries.conf for `imageDigestSources`: entries merged by (source,
/// policy) in first-seen order, mirrors de-duplicated, mirror-less ones
/// dropped. `None` when nothing is left.
pub fn registries_conf(sources: &[ImageDigestSource]) -> Option<String> {
    let mut groups: Vec<(&str, Option<MirrorSourcePolicy>, Vec<&str>)> = Vec::new();
    for s in sources {
        let idx = match groups
            .iter()
            .position(|g| g.0 == s.source && g.1 == s.source_policy)
        {
            Some(i) => i,
            None => {
                groups.push((&s.source, s.source_policy, Vec::new()));
                groups.len() - 1
            }
        };
        for m in &s.mirrors {
            if !groups[idx].2.contains(&m.as_str()) {
                groups[idx].2.push(m);
            }
        }
    }
    groups.retain(|g| !g.2.is_empty());
    if groups.is_empty() {
        return None;
    }
    let mut out = String::from(
        "credential-helpers = []\nshort-name-mode = \"\"\nunqualified-search-registries = []\n",
    );
    for (source, policy, mirrors) in groups {
        out.push_str("\n[[registry]]\n");
        let _ = writeln!(out, "  location = {}", toml_string(source));
        out.push_str("  mirror-by-digest-only = true\n  prefix = \"\"\n");
        if policy == Some(MirrorSourcePolicy::NeverContactSource) {
            out.push_str("  blocked = true\n");
        }
        for m in mirrors {
            let _ = write!(
                out,
                "\n  [[registry.mirror]]\n    location = {}\n",
                toml_string(m)
            );
        }
    }
    Some(out)
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(
        source: &str,
        mirrors: &[&str],
        policy: Option<MirrorSourcePolicy>,
    ) -> ImageDigestSource {
        ImageDigestSource {
            source: source.into(),
            mirrors: mirrors.iter().map(|m| m.to_string()).collect(),
            source_policy: policy,
        }
    }

    #[test]
    fn registries_are_grouped_and_deduplicated() {
        let conf = registries_conf(&[
            src("quay.io/a", &["m.example/a"], None),
            src("quay.io/b", &[], None),
            src("quay.io/a", &["m.example/a", "m2.example/a"], None),
            src(
                "quay.io/c",
                &["m.example/c"],
                Some(MirrorSourcePolicy::NeverContactSource),
            ),
        ])
        .unwrap();
        assert_eq!(
            conf,
            "credential-helpers = []\nshort-name-mode = \"\"\nunqualified-search-registries = []\n\
             \n[[registry]]\n  location = \"quay.io/a\"\n  mirror-by-digest-only = true\n  prefix = \"\"\n\
             \n  [[registry.mirror]]\n    location = \"m.example/a\"\n\
             \n  [[registry.mirror]]\n    location = \"m2.example/a\"\n\
             \n[[registry]]\n  location = \"quay.io/c\"\n  mirror-by-digest-only = true\n  prefix = \"\"\n  blocked = true\n\
             \n  [[registry.mirror]]\n    location = \"m.example/c\"\n"
        );
        assert_eq!(registries_conf(&[src("quay.io/b", &[], None)]), None);
    }

    #[test]
    fn proxy_goes_into_the_environment_escaped() {
        let p = Proxy {
            http_proxy: "http://p:3128".into(),
            https_proxy: String::new(),
            no_proxy: "a%b".into(),
        };
        let u = install_unit("quay.io/s:1", &Agent::SeedLcaCli, Some(&p));
        assert!(u.contains(
            "Environment=\"HTTP_PROXY=http://p:3128\"\nEnvironment=\"http_proxy=http://p:3128\"\n"
        ));
        assert!(u.contains("Environment=\"NO_PROXY=a%%b\""));
        assert!(!u.contains("HTTPS_PROXY"));
        assert!(!u.contains("AGENT_IMAGE"));
    }

    #[test]
    fn the_install_script_defaults_to_the_contract_paths() {
        // The script is a literal template; its defaults must be the paths
        // the Ignition config writes the files to.
        let script = install_script();
        for (var, path) in [
            ("PULL_SECRET_FILE", PULL_SECRET_PATH),
            ("IBI_CONFIGURATION_FILE", crate::api::ibi_config::PATH),
        ] {
            assert!(script.contains(&format!("${{{var}:-{path}}}")), "{var}");
        }
    }
}
