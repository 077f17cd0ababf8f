//! The files at a seed's root (lifecycle-agent.md §1.2) and how each is
//! read. Parsers return a sentence naming what is wrong; the caller adds
//! the file name and what to do.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::contract::seed_image;
use crate::api::seed_cluster_info::SeedClusterInfo;

pub const LCA_CLI: &str = seed_image::LCA_CLI;
pub const MANIFEST: &str = seed_image::MANIFEST;
pub const CONTAINERS_LIST: &str = seed_image::CONTAINERS_LIST;
pub const RPM_OSTREE: &str = seed_image::RPM_OSTREE;
pub const MCO_CONFIG: &str = seed_image::MCO_CONFIG;
pub const ETC_DELETIONS: &str = seed_image::ETC_DELETIONS;
pub const RECERT_CONFIG: &str = seed_image::RECERT_CONFIG;

/// The files every seed has (the `.origin` file's name depends on the
/// booted deployment and is checked separately).
pub const REQUIRED: [&str; 9] = [
    LCA_CLI,
    MANIFEST,
    CONTAINERS_LIST,
    RPM_OSTREE,
    MCO_CONFIG,
    ETC_DELETIONS,
    seed_image::OSTREE_TGZ,
    seed_image::VAR_TGZ,
    seed_image::ETC_TGZ,
];

/// Root files read whole when a seed is opened.
pub fn is_small(name: &str) -> bool {
    [
        MANIFEST,
        CONTAINERS_LIST,
        RPM_OSTREE,
        MCO_CONFIG,
        ETC_DELETIONS,
    ]
    .contains(&name)
        || seed_image::is_origin_file(name)
}

/// The three tarballs of a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tarball {
    /// `ostree.tgz`: the seed's `/ostree/repo`, members `./…`.
    Ostree,
    /// `var.tgz`: the seed's `/var`, members `var/…`.
    Var,
    /// `etc.tgz`: the seed's changed `/etc` files, members `etc/…`.
    Etc,
}

impl Tarball {
    pub const ALL: [Tarball; 3] = [Tarball::Ostree, Tarball::Var, Tarball::Etc];

    pub fn file_name(self) -> &'static str {
        match self {
            Self::Ostree => seed_image::OSTREE_TGZ,
            Self::Var => seed_image::VAR_TGZ,
            Self::Etc => seed_image::ETC_TGZ,
        }
    }

    /// The top directory every member must be under, if any.
    pub fn top_dir(self) -> Option<&'static str> {
        match self {
            Self::Ostree => None,
            Self::Var => Some("var"),
            Self::Etc => Some("etc"),
        }
    }
}

impl fmt::Display for Tarball {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.file_name())
    }
}

/// A JSON parse error as "line L column C: what".
fn json_error(e: &serde_json::Error) -> String {
    format!(
        "is not valid JSON (line {} column {}: {e})",
        e.line(),
        e.column()
    )
}

pub fn parse_cluster_info(bytes: &[u8]) -> Result<SeedClusterInfo, String> {
    serde_json::from_slice(bytes).map_err(|e| json_error(&e))
}

/// The deployment the seed was booted into, from `rpm-ostree.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootedDeployment {
    /// `<stateroot>-<checksum>.<serial>` as rpm-ostree writes it.
    pub id: String,
    /// `<checksum>.<serial>`: what follows the last `-` of the id, as IBI
    /// splits it; also names the `.origin` file.
    pub deployment: String,
    /// The ostree commit to deploy.
    pub checksum: String,
    pub serial: u32,
    /// The `osname` field, when present.
    pub osname: String,
}

impl BootedDeployment {
    /// `ostree-<deployment>.origin`, the seed's copy of the origin file.
    pub fn origin_file(&self) -> String {
        seed_image::origin_file(&self.deployment)
    }
}

#[derive(Deserialize)]
struct RpmOstreeStatus {
    deployments: Option<Vec<RpmOstreeDeployment>>,
}

#[derive(Deserialize)]
struct RpmOstreeDeployment {
    #[serde(default)]
    id: String,
    #[serde(default)]
    osname: String,
    #[serde(default)]
    booted: bool,
}

pub fn parse_rpm_ostree(bytes: &[u8]) -> Result<BootedDeployment, String> {
    let status: RpmOstreeStatus = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    let deployments = status
        .deployments
        .ok_or("has no \"deployments\" list; it is not `rpm-ostree status --json` output")?;
    let booted: Vec<&RpmOstreeDeployment> = deployments.iter().filter(|d| d.booted).collect();
    let d = match booted.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "has no booted deployment (none of its {} deployments has \"booted\": true)",
                deployments.len()
            ));
        }
        many => return Err(format!("has {} booted deployments", many.len())),
    };
    let (_, deployment) =
        d.id.rsplit_once('-')
            .ok_or_else(|| format!("booted deployment id {:?} has no '-'", d.id))?;
    let (checksum, serial) = deployment.split_once('.').ok_or_else(|| {
        format!(
            "booted deployment id {:?} does not end in <checksum>.<serial>",
            d.id
        )
    })?;
    let hex = checksum.len() == 64
        && checksum
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let serial = serial.parse::<u32>().ok().filter(|_| hex).ok_or_else(|| {
        format!(
            "booted deployment id {:?} does not end in <64 hex digit checksum>.<serial>",
            d.id
        )
    })?;
    Ok(BootedDeployment {
        id: d.id.clone(),
        deployment: deployment.to_string(),
        checksum: checksum.to_string(),
        serial,
        osname: d.osname.clone(),
    })
}

/// What IBI reads from `mco-currentconfig.json` (a MachineConfig).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MachineConfigSummary {
    pub kernel_arguments: Vec<String>,
    pub fips: bool,
}

#[derive(Deserialize)]
struct MachineConfig {
    spec: Option<MachineConfigSpec>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MachineConfigSpec {
    #[serde(default)]
    kernel_arguments: Option<Vec<String>>,
    #[serde(default)]
    fips: bool,
}

pub fn parse_machine_config(bytes: &[u8]) -> Result<MachineConfigSummary, String> {
    let mc: MachineConfig = serde_json::from_slice(bytes).map_err(|e| json_error(&e))?;
    let spec = mc
        .spec
        .ok_or("has no \"spec\"; it is not a MachineConfig")?;
    Ok(MachineConfigSummary {
        kernel_arguments: spec.kernel_arguments.unwrap_or_default(),
        fips: spec.fips,
    })
}

/// `containers.list`: one image reference a line, no trailing newline.
/// Returns the references and the lines that are not one.
pub fn parse_containers_list(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let text = String::from_utf8_lossy(bytes);
    let mut images = Vec::new();
    let mut bad = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.bytes().all(|b| b.is_ascii_graphic()) {
            images.push(line.to_string());
        } else {
            bad.push(line.to_string());
        }
    }
    (images, bad)
}

/// A path under `/etc` that the seed deleted, as a checked relative path
/// (`etc/…`) safe to join to a deployment directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcPath(PathBuf);

impl EtcPath {
    /// `etc/…`, relative.
    pub fn relative(&self) -> &Path {
        &self.0
    }
}

/// `etc.deletions`: one absolute `/etc/…` path a line. A line that climbs
/// out of `/etc` would let a seed delete any file of the installed system,
/// so it is refused.
pub fn parse_etc_deletions(bytes: &[u8]) -> Result<Vec<EtcPath>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8 text".to_string())?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let rel = line
            .strip_prefix('/')
            .map(Path::new)
            .filter(|p| {
                p.components().all(|c| matches!(c, Component::Normal(_)))
                    && p.starts_with("etc")
                    && p.components().count() > 1
            })
            .ok_or_else(|| {
                format!(
                    "line {}: {line:?} is not a path below /etc without '..'",
                    n + 1
                )
            })?;
        out.push(EtcPath(rel.to_path_buf()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSUM: &str = "ed4ab7c3d9a2a0b3f6e8c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e19c";

    #[test]
    fn booted_deployment_is_split_like_ibi() {
        let json = format!(
            r#"{{"deployments":[{{"id":"rhcos-{CSUM}.0","osname":"rhcos","booted":false}},
                {{"id":"rhcos-{CSUM}.1","osname":"rhcos","booted":true}}]}}"#
        );
        let b = parse_rpm_ostree(json.as_bytes()).unwrap();
        assert_eq!(b.deployment, format!("{CSUM}.1"));
        assert_eq!(b.checksum, CSUM);
        assert_eq!(b.serial, 1);
        assert_eq!(b.origin_file(), format!("ostree-{CSUM}.1.origin"));
    }

    #[test]
    fn rpm_ostree_problems_are_named() {
        let none = format!(r#"{{"deployments":[{{"id":"rhcos-{CSUM}.0"}}]}}"#);
        assert!(
            parse_rpm_ostree(none.as_bytes())
                .unwrap_err()
                .contains("no booted deployment")
        );
        assert!(
            parse_rpm_ostree(br#"{"deployments":[{"id":"nodash","booted":true}]}"#)
                .unwrap_err()
                .contains("has no '-'")
        );
        assert!(
            parse_rpm_ostree(b"{\"deployments\": [")
                .unwrap_err()
                .contains("not valid JSON (line 1")
        );
    }

    #[test]
    fn machine_config_kargs_and_fips() {
        let mc = parse_machine_config(
            br#"{"kind":"MachineConfig","spec":{"kernelArguments":["a=1","b"],"fips":true}}"#,
        )
        .unwrap();
        assert_eq!(mc.kernel_arguments, ["a=1", "b"]);
        assert!(mc.fips);
        let mc = parse_machine_config(br#"{"spec":{"kernelArguments":null}}"#).unwrap();
        assert!(mc.kernel_arguments.is_empty() && !mc.fips);
    }

    #[test]
    fn containers_list_lines() {
        let (images, bad) = parse_containers_list(b"quay.io/a:1\n\nquay.io/b@sha256:00\nbad line");
        assert_eq!(images, ["quay.io/a:1", "quay.io/b@sha256:00"]);
        assert_eq!(bad, ["bad line"]);
    }

    #[test]
    fn etc_deletions_stay_in_etc() {
        let d = parse_etc_deletions(b"/etc/motd\n  /etc/a/b  \n\n").unwrap();
        assert_eq!(d[0].relative(), Path::new("etc/motd"));
        assert_eq!(d[1].relative(), Path::new("etc/a/b"));
        for bad in [
            "/etc/../usr/bin/x",
            "etc/motd",
            "/usr/x",
            "/etc",
            "/etcetera/x",
        ] {
            assert!(parse_etc_deletions(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
