//! What the live system knows about its block devices, read from files
//! under a root directory (`/` on the machine, a fixture tree in tests):
//! `sys/class/block`, `proc/self/mountinfo`, `proc/mounts`, `proc/swaps`,
//! `proc/cmdline` and, when given, `lsblk --json -O -b` output (for
//! filesystem labels, which sysfs does not have).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::json::Lsblk;

/// One entry of `/sys/class/block`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysBlock {
    pub name: String,
    /// `major:minor`.
    pub dev: Option<String>,
    /// Bytes (sysfs counts 512-byte units whatever the sector size).
    pub size_bytes: u64,
    pub logical_block_size: u64,
    /// The whole disk a partition is on; `None` for a whole disk.
    pub parent: Option<String>,
    /// Devices built on this one (`dm-0`, `md127`).
    pub holders: Vec<String>,
    pub read_only: bool,
    pub removable: bool,
}

/// One line of `/proc/self/mountinfo` (or `/proc/mounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// `major:minor`; empty when read from `/proc/mounts`.
    pub dev: String,
    pub source: String,
    pub target: String,
    pub fstype: String,
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    root: PathBuf,
    pub devices: BTreeMap<String, SysBlock>,
    pub mounts: Vec<MountEntry>,
    /// Sources of active swap areas.
    pub swaps: Vec<String>,
    pub cmdline: String,
    pub lsblk: Option<Lsblk>,
}

impl Inventory {
    /// Reads the inventory under `root`. A missing `proc` file reads as
    /// empty (a fixture may leave it out); a missing `sys/class/block` is
    /// an error.
    pub fn read(root: &Path, lsblk: Option<Lsblk>) -> Result<Self> {
        let class = root.join("sys/class/block");
        let mut devices = BTreeMap::new();
        let entries =
            fs::read_dir(&class).with_context(|| format!("listing {}", class.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("listing {}", class.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let dir = fs::canonicalize(e.path())
                .with_context(|| format!("resolving {}", e.path().display()))?;
            devices.insert(name.clone(), read_sys_block(&name, &dir)?);
        }
        // Partitions have no queue/: they use their disk's sector size.
        let sizes: BTreeMap<String, u64> = devices
            .iter()
            .map(|(n, d)| (n.clone(), d.logical_block_size))
            .collect();
        for d in devices.values_mut() {
            if d.logical_block_size == 0
                && let Some(p) = &d.parent
            {
                d.logical_block_size = sizes.get(p).copied().unwrap_or(0);
            }
        }
        let proc = root.join("proc");
        let mut mounts = parse_mountinfo(&read_or_empty(&proc.join("self/mountinfo"))?);
        for m in parse_proc_mounts(&read_or_empty(&proc.join("mounts"))?) {
            if !mounts
                .iter()
                .any(|x| x.target == m.target && x.source == m.source)
            {
                mounts.push(m);
            }
        }
        let swaps = read_or_empty(&proc.join("swaps"))?
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next().map(unescape))
            .collect();
        Ok(Self {
            root: root.to_path_buf(),
            devices,
            mounts,
            swaps,
            cmdline: read_or_empty(&proc.join("cmdline"))?.trim().to_string(),
            lsblk,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The sysfs name of the device `path` (`/dev/vda`,
    /// `/dev/disk/by-id/virtio-x`, `/dev/disk/by-path/…`), following
    /// symbolic links inside the root.
    pub fn resolve(&self, path: &str) -> Result<String> {
        let real = resolve_in_root(&self.root, Path::new(path))?;
        let md = fs::metadata(&real).with_context(|| format!("reading {}", real.display()))?;
        if md.file_type().is_block_device() {
            let rdev = md.rdev();
            let dev = format!("{}:{}", rustix::fs::major(rdev), rustix::fs::minor(rdev));
            if let Some(d) = self
                .devices
                .values()
                .find(|d| d.dev.as_deref() == Some(&dev))
            {
                return Ok(d.name.clone());
            }
        }
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if self.devices.contains_key(&name) {
            Ok(name)
        } else {
            bail!(
                "{path} ({}) is not a block device the kernel knows",
                real.strip_prefix(&self.root).unwrap_or(&real).display()
            )
        }
    }

    /// The partitions of the whole disk `disk`.
    pub fn partitions(&self, disk: &str) -> Vec<&SysBlock> {
        self.devices
            .values()
            .filter(|d| d.parent.as_deref() == Some(disk))
            .collect()
    }

    /// Where `name` is mounted or used as swap, by device number or by
    /// source path.
    pub fn uses_of(&self, name: &str) -> Vec<String> {
        let Some(d) = self.devices.get(name) else {
            return Vec::new();
        };
        let dev_path = format!("/dev/{name}");
        let mut out: Vec<String> = self
            .mounts
            .iter()
            .filter(|m| {
                (!m.dev.is_empty() && d.dev.as_deref() == Some(m.dev.as_str()))
                    || m.source == dev_path
                    || self.resolve(&m.source).ok().as_deref() == Some(name)
            })
            .map(|m| format!("mounted on {}", m.target))
            .collect();
        out.dedup();
        for s in &self.swaps {
            if *s == dev_path || self.resolve(s).ok().as_deref() == Some(name) {
                out.push("used as swap".into());
            }
        }
        out
    }

    /// `name`'s holders, their holders and so on.
    pub fn holders_deep(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            for h in self
                .devices
                .get(&n)
                .map(|d| d.holders.clone())
                .unwrap_or_default()
            {
                if !out.contains(&h) && out.len() < 1000 {
                    todo.push(h.clone());
                    out.push(h);
                }
            }
        }
        out
    }

    /// Filesystem labels of `name` from lsblk, if lsblk output was given.
    pub fn fs_label(&self, name: &str) -> Option<String> {
        let l = self.lsblk.as_ref()?;
        l.blockdevices
            .iter()
            .flat_map(|d| d.walk())
            .find(|d| d.name == name || d.kname.as_deref() == Some(name))
            .and_then(|d| d.label.clone())
    }

    /// The label of the live medium from the kernel command line
    /// (`coreos.liveiso=LABEL`, or dracut's `root=live:LABEL=…`).
    pub fn live_medium_label(&self) -> Option<String> {
        self.cmdline.split_whitespace().find_map(|a| {
            a.strip_prefix("coreos.liveiso=")
                .or_else(|| a.strip_prefix("root=live:CDLABEL="))
                .or_else(|| a.strip_prefix("root=live:LABEL="))
                .map(|l| l.replace("\\x20", " "))
        })
    }
}

fn read_sys_block(name: &str, dir: &Path) -> Result<SysBlock> {
    let text = |f: &str| {
        fs::read_to_string(dir.join(f))
            .ok()
            .map(|s| s.trim().to_string())
    };
    let num = |f: &str| -> Result<u64> {
        match text(f) {
            None => Ok(0),
            Some(t) => t
                .parse()
                .with_context(|| format!("{}/{f} holds {t:?}, not a number", dir.display())),
        }
    };
    let sectors = num("size")?;
    let holders = match fs::read_dir(dir.join("holders")) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    let parent = if dir.join("partition").exists() {
        dir.parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
    } else {
        None
    };
    Ok(SysBlock {
        name: name.to_string(),
        dev: text("dev"),
        size_bytes: sectors
            .checked_mul(512)
            .with_context(|| format!("{}/size is too large", dir.display()))?,
        logical_block_size: num("queue/logical_block_size")?,
        parent,
        holders,
        read_only: text("ro").as_deref() == Some("1"),
        removable: text("removable").as_deref() == Some("1"),
    })
}

fn read_or_empty(p: &Path) -> Result<String> {
    match fs::read_to_string(p) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// `/proc/self/mountinfo`: `id parent maj:min root target opts [tags] -
/// fstype source superopts`, with `\040`-style escapes.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountEntry {
                dev: f.get(2)?.to_string(),
                target: unescape(f.get(4)?),
                fstype: r.first()?.to_string(),
                source: unescape(r.get(1)?),
            })
        })
        .collect()
}

/// `/proc/mounts`: `source target fstype opts 0 0`.
pub fn parse_proc_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some(MountEntry {
                dev: String::new(),
                source: unescape(f.first()?),
                target: unescape(f.get(1)?),
                fstype: f.get(2)?.to_string(),
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Follows `path` (absolute, as on the machine) inside `root`: absolute
/// link targets are taken relative to `root` too, and `..` never climbs
/// above it.
pub fn resolve_in_root(root: &Path, path: &Path) -> Result<PathBuf> {
    let mut parts: Vec<std::ffi::OsString> = Vec::new();
    let mut todo: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            parts.pop();
            continue;
        }
        let mut here = root.to_path_buf();
        here.extend(&parts);
        here.push(&c);
        match fs::symlink_metadata(&here) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    bail!("{} has too many levels of symbolic links", path.display());
                }
                let target = fs::read_link(&here)
                    .with_context(|| format!("reading the link {}", here.display()))?;
                if target.is_absolute() {
                    parts.clear();
                }
                for t in target.components().rev() {
                    match t {
                        Component::Normal(n) => todo.push(n.to_os_string()),
                        Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            Ok(_) => parts.push(c),
            Err(e) => {
                return Err(e).with_context(|| format!("{} does not exist", path.display()));
            }
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&parts);
    Ok(out)
}
