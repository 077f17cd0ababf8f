//! Typed `lsblk --json -O -b` and `sfdisk --json` output, and finding a
//! partition by its GPT name (LCA weakness W9: upstream takes
//! `children[N-1]` of `lsblk | jq`, which is the wrong partition as soon as
//! `--save-partindex` kept one).
//!
//! Only the fields sprout reads are declared; the rest are ignored, so
//! newer util-linux versions with more columns still parse. Numbers are
//! accepted as JSON numbers or strings (util-linux before 2.33 printed
//! sizes as strings).

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Deserializer};

/// `lsblk --json -O -b [DEVICE]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Lsblk {
    #[serde(default)]
    pub blockdevices: Vec<LsblkDevice>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LsblkDevice {
    pub name: String,
    #[serde(default)]
    pub kname: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default, rename = "maj:min")]
    pub maj_min: Option<String>,
    /// `disk`, `part`, `lvm`, `raid1`, `loop`, `rom`, `crypt`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub size: Option<u64>,
    #[serde(default, rename = "log-sec", deserialize_with = "opt_u64")]
    pub logical_sector_size: Option<u64>,
    #[serde(default)]
    pub fstype: Option<String>,
    /// Filesystem label.
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// GPT partition name.
    #[serde(default)]
    pub partlabel: Option<String>,
    #[serde(default)]
    pub partuuid: Option<String>,
    #[serde(default)]
    pub pttype: Option<String>,
    #[serde(default)]
    pub ptuuid: Option<String>,
    #[serde(default)]
    pub pkname: Option<String>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub rm: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    pub ro: Option<bool>,
    #[serde(default)]
    pub tran: Option<String>,
    /// Older util-linux: one mount point.
    #[serde(default)]
    pub mountpoint: Option<String>,
    /// util-linux ≥ 2.37: every mount point (`[null]` when none).
    #[serde(default)]
    pub mountpoints: Vec<Option<String>>,
    #[serde(default)]
    pub children: Vec<LsblkDevice>,
}

impl LsblkDevice {
    /// `/dev/<name>` when lsblk did not print `path` (util-linux < 2.33).
    pub fn dev_path(&self) -> String {
        self.path
            .clone()
            .unwrap_or_else(|| format!("/dev/{}", self.name))
    }

    /// Every mount point of this device (not of its children).
    pub fn mount_points(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .mountpoints
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if let Some(m) = &self.mountpoint
            && !out.contains(&m.as_str())
        {
            out.push(m);
        }
        out
    }

    /// This device and everything below it, depth first.
    pub fn walk(&self) -> Vec<&LsblkDevice> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.walk());
        }
        out
    }
}

impl Lsblk {
    pub fn parse(json: &[u8]) -> Result<Self> {
        serde_json::from_slice(json).context("parsing the output of lsblk --json")
    }

    /// The top-level device called `name` (`vda`) or with path `/dev/vda`.
    pub fn device(&self, name_or_path: &str) -> Option<&LsblkDevice> {
        self.blockdevices
            .iter()
            .find(|d| d.name == name_or_path || d.path.as_deref() == Some(name_or_path))
    }
}

/// The one partition of `disk` whose GPT name is `label`. None or two are
/// errors naming the partitions seen, since picking one by position is
/// exactly the upstream bug.
pub fn partition_by_partlabel<'a>(disk: &'a LsblkDevice, label: &str) -> Result<&'a LsblkDevice> {
    let parts: Vec<&LsblkDevice> = disk
        .children
        .iter()
        .filter(|c| c.kind.as_deref().is_none_or(|k| k == "part"))
        .collect();
    let found: Vec<&&LsblkDevice> = parts
        .iter()
        .filter(|c| c.partlabel.as_deref() == Some(label))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => bail!(
            "{} has no partition named {label:?} (its partitions: {})",
            disk.dev_path(),
            describe(&parts)
        ),
        many => bail!(
            "{} has {} partitions named {label:?} ({}); remove the extra ones or pick another \
             extraPartitionLabel",
            disk.dev_path(),
            many.len(),
            many.iter()
                .map(|d| d.dev_path())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn describe(parts: &[&LsblkDevice]) -> String {
    if parts.is_empty() {
        return "none".into();
    }
    parts
        .iter()
        .map(|p| {
            format!(
                "{} {:?}",
                p.dev_path(),
                p.partlabel.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `sfdisk --json DEVICE`.
#[derive(Debug, Clone, Deserialize)]
pub struct Sfdisk {
    pub partitiontable: PartitionTable,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PartitionTable {
    /// `gpt` or `dos`.
    pub label: String,
    #[serde(default)]
    pub id: Option<String>,
    pub device: String,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub firstlba: Option<u64>,
    #[serde(default, deserialize_with = "opt_u64")]
    pub lastlba: Option<u64>,
    /// util-linux ≥ 2.38.
    #[serde(default, deserialize_with = "opt_u64")]
    pub sectorsize: Option<u64>,
    #[serde(default)]
    pub partitions: Vec<SfdiskPartition>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SfdiskPartition {
    pub node: String,
    #[serde(deserialize_with = "req_u64")]
    pub start: u64,
    #[serde(deserialize_with = "req_u64")]
    pub size: u64,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
    /// GPT partition name.
    #[serde(default)]
    pub name: Option<String>,
}

impl Sfdisk {
    pub fn parse(json: &[u8]) -> Result<Self> {
        serde_json::from_slice(json).context("parsing the output of sfdisk --json")
    }

    /// The one partition named `label`; see [`partition_by_partlabel`].
    pub fn partition_by_name(&self, label: &str) -> Result<&SfdiskPartition> {
        let t = &self.partitiontable;
        let found: Vec<&SfdiskPartition> = t
            .partitions
            .iter()
            .filter(|p| p.name.as_deref() == Some(label))
            .collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => bail!("{} has no partition named {label:?}", t.device),
            many => bail!("{} has {} partitions named {label:?}", t.device, many.len()),
        }
    }

    /// The end of the last partition, in sectors (exclusive).
    pub fn end_of_partitions(&self) -> Option<u64> {
        self.partitiontable
            .partitions
            .iter()
            .filter_map(|p| p.start.checked_add(p.size))
            .max()
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Num(u64),
    Text(String),
}

fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<NumOrText>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrText::Num(n)) => Ok(Some(n)),
        Some(NumOrText::Text(t)) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{t:?} is not a number"))),
    }
}

fn req_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    opt_u64(d)?.ok_or_else(|| serde::de::Error::custom("a number is required"))
}

fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum BoolOrText {
        Bool(bool),
        Text(String),
    }
    Ok(match Option::<BoolOrText>::deserialize(d)? {
        None => None,
        Some(BoolOrText::Bool(b)) => Some(b),
        // util-linux < 2.33 printed "0"/"1".
        Some(BoolOrText::Text(t)) => Some(t == "1" || t == "true"),
    })
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;
