//! Checks on the installation disk before a byte is written: every
//! problem found, each naming the device and the fix.

use std::fmt;

use super::inventory::Inventory;
use super::start::ExtraPartitionStart;

/// Room the RHCOS image and its root filesystem need before the extra
/// partition when no better figure is known: the metal image is about
/// 4 GiB and the root filesystem also receives the seed's ostree commit
/// and `/var`; upstream documents 120 GB disks for SNO.
pub const DEFAULT_OS_RESERVE_BYTES: u64 = 20 << 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskProblem {
    /// The device as configured (e.g. `/dev/disk/by-id/…`).
    pub device: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for DiskProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "installationDisk {}: {}; {}",
            self.device, self.problem, self.fix
        )
    }
}

/// What the disk must allow.
#[derive(Debug, Clone)]
pub struct DiskRequirements {
    /// Where the extra partition starts; `None` with `useContainersFolder`.
    pub extra_partition: Option<ExtraPartitionStart>,
    pub os_reserve_bytes: u64,
    /// With `skipDiskCleanup` nothing removes LVM/MD/DM from the disk, so
    /// any holder makes `coreos-installer` fail ("found busy partitions").
    pub skip_disk_cleanup: bool,
}

/// The disk that passed, as the install steps need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedDisk {
    /// The kernel name (`vda`).
    pub name: String,
    pub dev_path: String,
    pub size_bytes: u64,
    pub sector_size: u64,
}

/// Runs every check on `configured` (the installationDisk value) and
/// returns the disk, or all the problems found.
pub fn check_disk(
    inv: &Inventory,
    configured: &str,
    req: &DiskRequirements,
) -> Result<CheckedDisk, Vec<DiskProblem>> {
    let problem = |p: String, fix: &str| DiskProblem {
        device: configured.to_string(),
        problem: p,
        fix: fix.to_string(),
    };
    let name = match inv.resolve(configured) {
        Ok(n) => n,
        Err(e) => {
            return Err(vec![problem(
                format!("{e:#}"),
                "set installationDisk to a disk of this machine (see `lsblk -d -o NAME,SIZE,MODEL` \
                 and /dev/disk/by-id)",
            )]);
        }
    };
    let Some(dev) = inv.devices.get(&name) else {
        return Err(vec![problem(
            format!("{name} vanished while being checked"),
            "retry",
        )]);
    };
    let mut out = Vec::new();
    if let Some(parent) = &dev.parent {
        out.push(problem(
            format!("/dev/{name} is a partition of /dev/{parent}, not a whole disk"),
            &format!("set installationDisk to the whole disk /dev/{parent}"),
        ));
        return Err(out);
    }
    if dev.read_only {
        out.push(problem(
            format!("/dev/{name} is read-only"),
            "pick a writable disk (a CD drive or write-protected medium cannot be installed to)",
        ));
    }
    let members: Vec<String> = std::iter::once(name.clone())
        .chain(inv.partitions(&name).iter().map(|p| p.name.clone()))
        .collect();
    for m in &members {
        for u in inv.uses_of(m) {
            out.push(problem(
                format!("/dev/{m} is {u}"),
                "unmount it (or pick another disk); sprout never installs over a disk in use",
            ));
        }
        for h in inv.holders_deep(m) {
            let uses = inv.uses_of(&h);
            if !uses.is_empty() {
                out.push(problem(
                    format!("/dev/{m} belongs to /dev/{h}, which is {}", uses.join(", ")),
                    "stop using it (unmount, swapoff, vgchange -an, mdadm --stop) or pick another disk",
                ));
            } else if req.skip_disk_cleanup {
                out.push(problem(
                    format!("/dev/{m} belongs to /dev/{h} (LVM, RAID or device-mapper)"),
                    "remove skipDiskCleanup so sprout cleans it, or remove it by hand",
                ));
            }
        }
    }
    if let Some(label) = inv.live_medium_label() {
        for m in &members {
            if inv.fs_label(m).as_deref() == Some(label.as_str()) {
                out.push(problem(
                    format!(
                        "/dev/{m} holds the live system this machine booted from (label {label:?})"
                    ),
                    "install to another disk; the live medium must stay readable until the end",
                ));
            }
        }
    }
    let sector_size = match dev.logical_block_size {
        0 => 512,
        n => n,
    };
    if let Some(start) = &req.extra_partition {
        let need = match start {
            ExtraPartitionStart::FromEnd { bytes } => req.os_reserve_bytes.checked_add(*bytes),
            ExtraPartitionStart::Verbatim(v) => {
                sfdisk_offset_bytes(v, sector_size).map(|s| s.max(req.os_reserve_bytes))
            }
        };
        match need {
            Some(need) if need > dev.size_bytes => out.push(problem(
                format!(
                    "/dev/{name} has {} bytes; RHCOS ({} bytes) plus the extra partition \
                     ({start}) need {need}",
                    dev.size_bytes, req.os_reserve_bytes
                ),
                "use a larger disk or a smaller extraPartitionStart",
            )),
            Some(_) => {}
            None if matches!(start, ExtraPartitionStart::FromEnd { .. }) => out.push(problem(
                "the size computation overflowed".into(),
                "use a smaller extraPartitionStart",
            )),
            None => {}
        }
        if let ExtraPartitionStart::Verbatim(v) = start
            && let Some(s) = sfdisk_offset_bytes(v, sector_size)
            && s < req.os_reserve_bytes
        {
            out.push(problem(
                format!("extraPartitionStart {v:?} is inside the space RHCOS needs"),
                &format!(
                    "start the extra partition at {} bytes or later",
                    req.os_reserve_bytes
                ),
            ));
        }
    } else if dev.size_bytes < req.os_reserve_bytes {
        out.push(problem(
            format!(
                "/dev/{name} has {} bytes, less than RHCOS needs ({})",
                dev.size_bytes, req.os_reserve_bytes
            ),
            "use a larger disk",
        ));
    }
    if out.is_empty() {
        Ok(CheckedDisk {
            dev_path: format!("/dev/{name}"),
            name,
            size_bytes: dev.size_bytes,
            sector_size,
        })
    } else {
        Err(out)
    }
}

/// Bytes of an sfdisk `start=` value as sfdisk reads it: a plain number
/// counts sectors, a K/M/G/T/P suffix (optionally `iB`) is 1024-based,
/// with `B` 1000-based. `None` when sfdisk's syntax is not recognised.
pub fn sfdisk_offset_bytes(value: &str, sector_size: u64) -> Option<u64> {
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let (num, suffix) = value.split_at(digits);
    let n: u64 = num.parse().ok()?;
    if suffix.is_empty() {
        return n.checked_mul(sector_size);
    }
    let mut chars = suffix.chars();
    let power = match chars.next()?.to_ascii_uppercase() {
        'K' => 1,
        'M' => 2,
        'G' => 3,
        'T' => 4,
        'P' => 5,
        _ => return None,
    };
    let base: u64 = match chars.as_str() {
        "" | "iB" => 1024,
        "B" => 1000,
        _ => return None,
    };
    n.checked_mul(base.checked_pow(power)?)
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;
