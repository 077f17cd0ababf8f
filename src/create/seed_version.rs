//! `create config-image --seed-version`: refuses what the named seed's
//! lca-cli cannot apply.
//!
//! The configuration ISO is read by the `lca-cli post-pivot` inside the
//! seed, so its release decides which `manifest.json` keys count. sprout
//! writes every key any release from 4.16 on reads (see
//! docs/compatibility.md), but some settings have no key an older release
//! reads: those are refused when the user names the seed's version, and
//! warned about when they do not.

use std::fmt;
use std::str::FromStr;

use crate::api::diag::{InvalidInput, Problem};
use crate::api::install_config;
use crate::api::seed_reconfig::SeedReconfiguration;

/// An OpenShift release as `seed_cluster_ocp_version` spells it:
/// `4.18.7`, `4.20.0-ec.3`, `4.19.0-rc.1+build`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcpVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// What follows the patch number (`-ec.3`), kept for messages.
    pub suffix: String,
}

impl OcpVersion {
    /// The release line (`4.18`) the version belongs to.
    pub fn line(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl FromStr for OcpVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not an OpenShift version; give the seed's version as X.Y.Z, e.g. 4.18.7 \
                 (`sprout seed inspect` shows it)"
            )
        };
        let end = s.find(['-', '+']).unwrap_or(s.len());
        let (numbers, suffix) = s.split_at(end);
        let parts: Vec<&str> = numbers.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(bad());
        };
        let num = |p: &str| {
            if p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
            {
                None
            } else {
                p.parse::<u32>().ok()
            }
        };
        match (num(major), num(minor), num(patch)) {
            (Some(major), Some(minor), Some(patch)) if suffix != "-" && suffix != "+" => Ok(Self {
                major,
                minor,
                patch,
                suffix: suffix.to_string(),
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for OcpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}{}",
            self.major, self.minor, self.patch, self.suffix
        )
    }
}

/// The oldest release whose lca-cli sprout's output was checked against.
pub const OLDEST_SUPPORTED: (u32, u32) = (4, 16);
/// The release whose SeedReconfiguration first has `machine_networks` and
/// `node_ips` (lifecycle-agent release-4.20).
pub const DUAL_STACK_SINCE: (u32, u32) = (4, 20);

/// A setting in the manifest that needs a newer seed than some releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub since: (u32, u32),
    pub file: &'static str,
    pub field: &'static str,
    /// What the setting is, as a noun phrase ("2 machine networks ...").
    pub what: String,
    /// What an older release does with it instead.
    pub older_does: String,
}

/// The settings of `sr` that not every supported release can apply.
pub fn requirements(sr: &SeedReconfiguration) -> Vec<Requirement> {
    let mut out = Vec::new();
    if sr.machine_networks.len() > 1 {
        out.push(Requirement {
            since: DUAL_STACK_SINCE,
            file: install_config::FILE,
            field: "networking.machineNetwork",
            what: format!(
                "{} machine networks (dual-stack: {})",
                sr.machine_networks.len(),
                sr.machine_networks.join(", ")
            ),
            older_does: format!(
                "reads only machine_network ({}) and leaves the other families unconfigured",
                sr.machine_network
            ),
        });
    }
    if sr.node_ips.len() > 1 {
        out.push(Requirement {
            since: DUAL_STACK_SINCE,
            file: crate::create::config_image::ISO_MANIFEST,
            field: "node_ips",
            what: format!(
                "{} node IPs ({})",
                sr.node_ips.len(),
                sr.node_ips.join(", ")
            ),
            older_does: format!("reads only node_ip ({})", sr.node_ip),
        });
    }
    out
}

fn line(v: (u32, u32)) -> String {
    format!("{}.{}", v.0, v.1)
}

/// Checks `sr` against the seed release, if the user named it. Refusals
/// come back as problems; without a version, what would be refused for
/// some release is returned as warnings.
pub fn check(
    sr: &SeedReconfiguration,
    seed: Option<&OcpVersion>,
) -> Result<Vec<String>, InvalidInput> {
    let reqs = requirements(sr);
    let Some(seed) = seed else {
        return Ok(reqs
            .iter()
            .map(|r| {
                format!(
                    "{}: {}: {} need a seed of OpenShift {} or later; lca-cli {}–{} {}. \
                     Pass --seed-version to have this checked against the seed",
                    r.file,
                    r.field,
                    r.what,
                    line(r.since),
                    line(OLDEST_SUPPORTED),
                    line((r.since.0, r.since.1.saturating_sub(1))),
                    r.older_does
                )
            })
            .collect());
    };
    let mut problems = Vec::new();
    if seed.line() < OLDEST_SUPPORTED {
        problems.push(Problem::in_input(
            "--seed-version",
            "",
            format!(
                "seed {seed} is older than OpenShift {}, the oldest release whose lca-cli the \
                 configuration ISO is checked against; use a {} or later seed",
                line(OLDEST_SUPPORTED),
                line(OLDEST_SUPPORTED)
            ),
        ));
    }
    for r in reqs.iter().filter(|r| seed.line() < r.since) {
        problems.push(Problem::in_input(
            r.file,
            r.field,
            format!(
                "{} need a seed of OpenShift {} or later, but the seed is {seed}, whose lca-cli \
                 {}; use a {} or later seed, or a single-stack configuration",
                r.what,
                line(r.since),
                r.older_does,
                line(r.since)
            ),
        ));
    }
    if problems.is_empty() {
        Ok(Vec::new())
    } else {
        Err(InvalidInput(problems))
    }
}

/// [`check`], with the warnings logged.
pub fn check_and_warn(
    sr: &SeedReconfiguration,
    seed: Option<&OcpVersion>,
) -> Result<(), InvalidInput> {
    for w in check(sr, seed)? {
        tracing::warn!("{w}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> OcpVersion {
        s.parse().unwrap()
    }

    fn dual_stack() -> SeedReconfiguration {
        let mut sr = SeedReconfiguration {
            machine_networks: vec!["10.20.0.0/24".into(), "fd00:20::/64".into()],
            ..Default::default()
        };
        crate::create::manifest::fill_legacy_fields(&mut sr);
        sr
    }

    #[test]
    fn parses_release_versions() {
        assert_eq!(v("4.18.7").line(), (4, 18));
        assert_eq!(v("4.20.0-ec.3").to_string(), "4.20.0-ec.3");
        assert_eq!(v("4.19.0-rc.1+b1").patch, 0);
        for bad in [
            "4.18", "4", "4.18.x", "v4.18.7", "4.18.7.1", "", "4.018.1", "4.18.7-", " 4.18.7",
        ] {
            let e = bad.parse::<OcpVersion>().unwrap_err();
            assert!(e.contains("X.Y.Z"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn dual_stack_machine_networks_need_4_20() {
        let sr = dual_stack();
        for old in ["4.16.0", "4.18.7", "4.19.12", "4.20.0-ec.1"] {
            let v = v(old);
            if v.line() >= DUAL_STACK_SINCE {
                assert!(check(&sr, Some(&v)).is_ok(), "{old}");
                continue;
            }
            let e = check(&sr, Some(&v)).unwrap_err();
            assert_eq!(e.0.len(), 1, "{old}");
            let p = &e.0[0];
            assert_eq!(p.file(), "install-config.yaml");
            assert_eq!(p.field(), "networking.machineNetwork");
            assert!(
                p.message.contains("OpenShift 4.20 or later"),
                "{}",
                p.message
            );
            assert!(p.message.contains(old), "{}", p.message);
            assert!(
                p.message.contains("machine_network (10.20.0.0/24)"),
                "{}",
                p.message
            );
        }
        for new in ["4.20.0", "4.21.3", "4.22.0", "5.0.0"] {
            assert_eq!(
                check(&sr, Some(&v(new))).unwrap(),
                Vec::<String>::new(),
                "{new}"
            );
        }
    }

    #[test]
    fn several_node_ips_need_4_20() {
        let mut sr = SeedReconfiguration {
            node_ips: vec!["10.20.0.10".into(), "fd00:20::10".into()],
            ..Default::default()
        };
        crate::create::manifest::fill_legacy_fields(&mut sr);
        let e = check(&sr, Some(&v("4.19.1"))).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].field(), "node_ips");
        assert!(
            e.0[0].message.contains("node_ip (10.20.0.10)"),
            "{}",
            e.0[0].message
        );
        assert!(check(&sr, Some(&v("4.20.1"))).is_ok());
    }

    #[test]
    fn seeds_before_4_16_are_refused() {
        let sr = SeedReconfiguration::default();
        let e = check(&sr, Some(&v("4.15.9"))).unwrap_err();
        assert_eq!(e.0[0].file(), "--seed-version");
        assert!(e.0[0].message.contains("4.15.9"), "{}", e.0[0].message);
        assert!(e.0[0].message.contains("4.16"), "{}", e.0[0].message);
        assert!(check(&sr, Some(&v("4.16.0"))).is_ok());
    }

    #[test]
    fn without_a_version_only_warnings() {
        let w = check(&dual_stack(), None).unwrap();
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("4.20 or later") && w[0].contains("--seed-version"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("lca-cli 4.16–4.19"), "{}", w[0]);
        assert!(
            check(&SeedReconfiguration::default(), None)
                .unwrap()
                .is_empty()
        );
    }
}
