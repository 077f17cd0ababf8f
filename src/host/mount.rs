//! Read-only mounts of removable media, undone even when the caller fails.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// Filesystems a configuration medium may carry. Mounting is kernel code
/// parsing untrusted bytes, so only the usual media filesystems are tried.
pub const MEDIA_FILESYSTEMS: &[&str] = &[
    "iso9660", "udf", "vfat", "exfat", "ext4", "ext3", "ext2", "xfs",
];

/// A mounted filesystem, unmounted on drop if `unmount` was not called.
#[derive(Debug)]
pub struct Mounted {
    target: PathBuf,
    active: bool,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Unmounts and reports failure (drop only tries, lazily). A busy
    /// filesystem is still detached lazily, so it never stays in the tree.
    pub fn unmount(mut self) -> Result<()> {
        self.active = false;
        umount2(&self.target, MntFlags::empty())
            .inspect_err(|_| {
                let _ = umount2(&self.target, MntFlags::MNT_DETACH);
            })
            .with_context(|| format!("unmounting {}", self.target.display()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.active {
            // Lazy: detaches now even if something still holds a file open.
            let _ = umount2(&self.target, MntFlags::MNT_DETACH);
        }
    }
}

/// Mounts `device` (a filesystem of type `fstype`) on `target`, read-only,
/// with no set-user-ID programs, device nodes or executables honoured.
pub fn mount_media_read_only(device: &Path, fstype: &str, target: &Path) -> Result<Mounted> {
    if !MEDIA_FILESYSTEMS.contains(&fstype) {
        bail!(
            "{} holds a {fstype} filesystem, which is not a removable-media filesystem \
             ({}); write the configuration image as is (an ISO) to the device",
            device.display(),
            MEDIA_FILESYSTEMS.join(", ")
        );
    }
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some(device), target, Some(fstype), flags, None::<&str>).with_context(|| {
        format!(
            "mounting {} ({fstype}) read-only on {}",
            device.display(),
            target.display()
        )
    })?;
    Ok(Mounted {
        target: target.to_path_buf(),
        active: true,
    })
}
