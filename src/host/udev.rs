//! Block devices as udev sees them: an enumeration now, and a monitor for
//! the devices that appear or change later.
//!
//! The filesystem label comes from udev's database (`ID_FS_LABEL`, filled by
//! its blkid builtin), so both need `systemd-udevd` running; without it the
//! devices are listed but carry no label.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Whole disk or partition (udev's `DEVTYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BlockKind {
    Disk,
    Partition,
}

impl std::fmt::Display for BlockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlockKind::Disk => "disk",
            BlockKind::Partition => "partition",
        })
    }
}

/// A block device node with what udev's probe found on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    pub devnode: PathBuf,
    pub kind: BlockKind,
    /// `ID_FS_LABEL`: the filesystem label, if there is a filesystem.
    pub fs_label: Option<String>,
    /// `ID_FS_TYPE`: e.g. `iso9660`, `ext4`.
    pub fs_type: Option<String>,
}

impl BlockDevice {
    fn from_udev(d: &udev::Device) -> Option<Self> {
        let kind = match d.devtype()?.to_str()? {
            "disk" => BlockKind::Disk,
            "partition" => BlockKind::Partition,
            _ => return None,
        };
        let prop = |name: &str| {
            d.property_value(name)
                .and_then(|v| v.to_str())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Some(BlockDevice {
            devnode: d.devnode()?.to_path_buf(),
            kind,
            fs_label: prop("ID_FS_LABEL"),
            fs_type: prop("ID_FS_TYPE"),
        })
    }
}

/// Every block device udev knows now, disks and partitions alike.
pub fn enumerate_block_devices() -> Result<Vec<BlockDevice>> {
    let mut e = udev::Enumerator::new().context("opening a udev enumerator")?;
    e.match_subsystem("block")
        .context("filtering the udev enumeration on block devices")?;
    let devices = e
        .scan_devices()
        .context("enumerating block devices through udev")?;
    Ok(devices.filter_map(|d| BlockDevice::from_udev(&d)).collect())
}

/// What happened to a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Change,
    Remove,
    Other,
}

/// A block device event, after udevd has processed it (so the device's
/// properties, the label among them, are those of the new state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEvent {
    pub action: Action,
    pub device: BlockDevice,
}

/// Block device events from udevd. Open it before enumerating, so that no
/// device falls between the enumeration and the first event.
pub struct BlockMonitor {
    socket: udev::MonitorSocket,
}

impl BlockMonitor {
    pub fn open() -> Result<Self> {
        let socket = udev::MonitorBuilder::new()
            .and_then(|b| b.match_subsystem("block"))
            .and_then(|b| b.listen())
            .context("opening a udev monitor for block devices")?;
        Ok(BlockMonitor { socket })
    }

    /// Waits up to `timeout` for events and returns those that arrived (none
    /// when the time ran out). Sleeps in poll(2) on the monitor's socket: no
    /// polling of devices.
    pub fn wait(&mut self, timeout: Duration) -> Result<Vec<BlockEvent>> {
        // Whole milliseconds, rounded up so a short remainder still waits.
        let ms = timeout.as_micros().div_ceil(1000);
        let ms = i32::try_from(ms).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(Vec::new()),
            Ok(_) => {}
            Err(e) => return Err(e).context("waiting for udev events"),
        }
        // The socket is non-blocking: drain what is there.
        let mut out = Vec::new();
        for event in self.socket.iter() {
            let action = match event.event_type() {
                udev::EventType::Add => Action::Add,
                udev::EventType::Change => Action::Change,
                udev::EventType::Remove => Action::Remove,
                _ => Action::Other,
            };
            if let Some(device) = BlockDevice::from_udev(&event.device()) {
                out.push(BlockEvent { action, device });
            }
        }
        Ok(out)
    }
}
