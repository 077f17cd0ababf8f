//! Finding the site configuration at first boot (spec lifecycle-agent §3.3).
//!
//! Done when `/opt/openshift/cluster-configuration` exists (placed in
//! advance, or copied by an earlier run). Otherwise the configuration comes
//! from a block device labelled `cluster-config` (or the legacy
//! `relocation-config`): a whole disk such as the virtual CD-ROM, or, unlike
//! upstream, a partition (a USB stick). Devices present at start are found by
//! enumeration, later ones through udev events; there is no polling. The
//! medium is mounted read-only, copied safely into `/opt/openshift` and
//! unmounted. Unlike upstream's endless 1 s loop (W5), the wait has a
//! deadline, says what it waits for, and ends with an error saying what to
//! do.
//!
//! The wait is synchronous, poll(2) on the udev monitor's socket with a
//! timeout: one fd and one deadline need no async runtime, and a blocking
//! loop keeps the order of events and log lines obvious.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::copy::{self, Copied, Limits};
use crate::host::mount::{self as hostmount, Mounted};
use crate::host::outdir::{OutputDir, TempSubdir};
use crate::host::systemd;
use crate::host::udev::{Action, BlockDevice, BlockEvent, BlockMonitor};

/// Labels of a configuration medium: the installer's, then the legacy one.
pub const LABELS: &[&str] = crate::api::contract::config_iso::LABELS;
/// The working directory, relative to the root.
pub const WORK_DIR: &str = crate::api::contract::work_dir::DIR.relative();
/// The directory whose presence means "configuration discovered".
pub const CONFIG_DIR: &str = crate::api::contract::config_iso::CONFIG_DIR;
/// The one file a medium must hold to be taken.
pub const MANIFEST: &str = crate::api::contract::config_iso::MANIFEST;
/// Where media are mounted, relative to the root (a tmpfs on a node).
pub const MOUNT_PARENT: &str = "run/sprout";

/// How discovery runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Root of every path read and written (`/` on a node).
    pub root: PathBuf,
    /// How long to wait for a medium.
    pub timeout: Duration,
    /// How often to say what is awaited while waiting.
    pub announce_every: Duration,
}

/// How a medium was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    /// It was there at start.
    Enumeration,
    /// It appeared later and udev told us.
    UdevEvent,
}

impl std::fmt::Display for FoundBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FoundBy::Enumeration => "enumeration",
            FoundBy::UdevEvent => "udev-event",
        })
    }
}

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    AlreadyPresent,
    Medium {
        device: BlockDevice,
        found_by: FoundBy,
        copied: Copied,
    },
}

/// The result: the configuration is in `dir`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub dir: PathBuf,
    pub source: Source,
}

/// The machine as discovery needs it: udev and mount(2) on a node, fakes in
/// tests.
pub trait Host {
    type Mounted: MountedMedium;
    /// Block devices present now.
    fn enumerate(&mut self) -> Result<Vec<BlockDevice>>;
    /// Events arriving within `timeout` (empty if none).
    fn wait(&mut self, timeout: Duration) -> Result<Vec<BlockEvent>>;
    /// Mounts `device` read-only at `at`.
    fn mount(&mut self, device: &BlockDevice, fstype: &str, at: &Path) -> Result<Self::Mounted>;
}

/// A mounted medium; dropping it without `unmount` must still unmount.
pub trait MountedMedium {
    fn unmount(self) -> Result<()>;
}

impl MountedMedium for Mounted {
    fn unmount(self) -> Result<()> {
        Mounted::unmount(self)
    }
}

/// The real machine: udevd's database and events, the kernel's mount.
pub struct UdevHost {
    monitor: BlockMonitor,
}

impl UdevHost {
    /// Opens the udev monitor (before any enumeration, so nothing is missed).
    pub fn open() -> Result<Self> {
        Ok(UdevHost {
            monitor: BlockMonitor::open()?,
        })
    }
}

impl Host for UdevHost {
    type Mounted = Mounted;
    fn enumerate(&mut self) -> Result<Vec<BlockDevice>> {
        crate::host::udev::enumerate_block_devices()
    }
    fn wait(&mut self, timeout: Duration) -> Result<Vec<BlockEvent>> {
        self.monitor.wait(timeout)
    }
    fn mount(&mut self, device: &BlockDevice, fstype: &str, at: &Path) -> Result<Mounted> {
        hostmount::mount_media_read_only(&device.devnode, fstype, at)
    }
}

/// The configuration label of `device`, if it carries one.
fn config_label(device: &BlockDevice) -> Option<&'static str> {
    let label = device.fs_label.as_deref()?;
    LABELS.iter().copied().find(|l| *l == label)
}

fn waiting_message(left: Duration) -> String {
    format!(
        "waiting for a block device labelled {} ({} s left)",
        LABELS.join(" or "),
        left.as_millis().div_ceil(1000)
    )
}

/// Finds the configuration, waiting for a medium if needed. `open` is called
/// only when no configuration is present yet.
pub fn discover<H: Host>(opts: &Options, open: impl FnOnce() -> Result<H>) -> Result<Discovered> {
    let work = opts.root.join(WORK_DIR);
    let dir = work.join(CONFIG_DIR);
    if dir.is_dir() {
        let msg = format!("configuration already present in {}", dir.display());
        tracing::info!("{msg}");
        systemd::status(&msg);
        return Ok(Discovered {
            dir,
            source: Source::AlreadyPresent,
        });
    }
    // A caller's timeout too large for the clock waits as long as it can.
    let start = Instant::now();
    let deadline = start
        .checked_add(opts.timeout)
        .or_else(|| start.checked_add(super::MAX_TIMEOUT))
        .unwrap_or(start);
    let mut host = open()?;
    let mut seen: BTreeMap<PathBuf, BlockDevice> = BTreeMap::new();
    let mut rejected: Vec<(PathBuf, String)> = Vec::new();

    let mut present = host.enumerate()?;
    // Whole disks first: an ISO written to a USB stick carries the label on
    // the disk and, through its hybrid table, on a partition too.
    present.sort_by(|a, b| (a.kind, &a.devnode).cmp(&(b.kind, &b.devnode)));
    let mut candidates = Vec::new();
    for d in present {
        seen.insert(d.devnode.clone(), d.clone());
        candidates.push((d, FoundBy::Enumeration));
    }

    let mut next_announce = Instant::now();
    loop {
        for (device, found_by) in candidates.drain(..) {
            let Some(label) = config_label(&device) else {
                continue;
            };
            tracing::info!(
                config_device = %device.devnode.display(),
                config_label = label,
                found_by = %found_by,
                "found {} ({}, label {label}) by {found_by}",
                device.devnode.display(),
                device.kind,
            );
            match take(&mut host, &opts.root, &device) {
                Ok(copied) => {
                    let msg = format!(
                        "configuration copied from {} to {}",
                        device.devnode.display(),
                        work.display()
                    );
                    tracing::info!(
                        "{msg}: {} files, {} bytes{}",
                        copied.files,
                        copied.bytes,
                        if copied.skipped.is_empty() {
                            String::new()
                        } else {
                            format!(", skipped {}", copied.skipped.join(", "))
                        }
                    );
                    systemd::status(&msg);
                    return Ok(Discovered {
                        dir,
                        source: Source::Medium {
                            device,
                            found_by,
                            copied,
                        },
                    });
                }
                Err(e) => {
                    tracing::warn!(
                        "not using {}: {e:#}; still waiting for another device",
                        device.devnode.display()
                    );
                    rejected.push((device.devnode.clone(), format!("{e:#}")));
                }
            }
        }

        let now = Instant::now();
        if now >= deadline {
            bail!(timeout_message(opts.timeout, &seen, &rejected));
        }
        if now >= next_announce {
            let msg = waiting_message(deadline - now);
            tracing::info!("{msg}");
            systemd::status(&msg);
            next_announce = now.checked_add(opts.announce_every).unwrap_or(deadline);
        }
        let wake = deadline.min(next_announce);
        for event in host.wait(wake.saturating_duration_since(Instant::now()))? {
            match event.action {
                Action::Remove => {
                    seen.remove(&event.device.devnode);
                }
                Action::Add | Action::Change => {
                    seen.insert(event.device.devnode.clone(), event.device.clone());
                    candidates.push((event.device, FoundBy::UdevEvent));
                }
                Action::Other => {}
            }
        }
    }
}

/// Mounts `device`, checks it is a configuration medium, copies it into
/// `root`/[`WORK_DIR`] and unmounts it.
fn take<H: Host>(host: &mut H, root: &Path, device: &BlockDevice) -> Result<Copied> {
    let fstype = device
        .fs_type
        .as_deref()
        .context("udev reports no filesystem type on it")?;
    // Below --root nothing is reached through a symlink that leads out of
    // it, and no mode is set through a path (host::outdir).
    let parent = OutputDir::open_beneath(root, MOUNT_PARENT, 0o700)?;
    // Declared before the mount, so it is removed after the unmount.
    let mountpoint = tempfile::Builder::new()
        .prefix("config-media.")
        .tempdir_in(parent.path())
        .with_context(|| format!("creating a mount point in {}", parent.path().display()))?;
    let mounted = host.mount(device, fstype, mountpoint.path())?;
    let manifest = mountpoint.path().join(MANIFEST);
    if !std::fs::symlink_metadata(&manifest).is_ok_and(|m| m.is_file()) {
        bail!(
            "it is labelled {} but holds no {MANIFEST}; attach the ISO that \
             `sprout create config-image` (or `openshift-install image-based create config-image`) wrote",
            device.fs_label.as_deref().unwrap_or_default()
        );
    }
    let work_dir = OutputDir::open_beneath(root, WORK_DIR, 0o700)?;
    let _lock = work_dir.lock_in_place()?;
    work_dir.remove_stale_temps(&[])?;
    let staging = TempSubdir::new(&work_dir, "incoming", 0o700)?;
    let copied = copy::copy_tree_into(mountpoint.path(), staging.dir(), Limits::default())
        .with_context(|| {
            format!(
                "copying the configuration from {}",
                device.devnode.display()
            )
        })?;
    if let Err(e) = mounted.unmount() {
        // The copy is complete; a medium left mounted is only untidy.
        tracing::warn!("{e:#}");
    }
    copy::install_entries_at(staging.dir(), &work_dir, CONFIG_DIR)?;
    Ok(copied)
}

fn timeout_message(
    timeout: Duration,
    seen: &BTreeMap<PathBuf, BlockDevice>,
    rejected: &[(PathBuf, String)],
) -> String {
    let mut msg = format!(
        "no configuration: no usable block device labelled {} appeared within {} s",
        LABELS.join(" or "),
        timeout.as_secs()
    );
    for (dev, why) in rejected {
        msg.push_str(&format!("; {} was not used: {why}", dev.display()));
    }
    let filesystems: Vec<String> = seen
        .values()
        .filter(|d| d.fs_type.is_some())
        .map(|d| {
            format!(
                "{} ({}{})",
                d.devnode.display(),
                d.fs_type.as_deref().unwrap_or_default(),
                d.fs_label
                    .as_deref()
                    .map(|l| format!(", label {l}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    if filesystems.is_empty() {
        msg.push_str(
            "; udev reported no filesystem on any block device (is systemd-udevd running?)",
        );
    } else {
        msg.push_str(&format!("; filesystems seen: {}", filesystems.join(", ")));
    }
    msg.push_str(
        ". Attach the configuration ISO (imagebasedconfig.iso from `sprout create config-image`, \
         label cluster-config) as a CD-ROM or USB stick, then run post-pivot again \
         (systemctl restart installation-configuration.service)",
    );
    msg
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
