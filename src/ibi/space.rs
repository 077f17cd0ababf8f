//! The free-space estimate of the preflight: what the seed unpacks to on
//! the root partition and what the container storage (the extra
//! partition, or root with `useContainersFolder`) receives, against what
//! the partitions will hold. Nothing is measured on a disk that does not
//! exist yet, so both sides are computed from the configuration and the
//! seed's sizes, and the needs are lower bounds: a refusal means the
//! install cannot fit, not that it might not.

use std::fmt;

/// A gzip'd tarball of ostree objects or of `/var` unpacks to at least
/// this many times its size (RHCOS seeds: 2.5–4×).
pub const TARBALL_EXPANSION: u64 = 2;
/// A precache image takes at least this much in the container storage on
/// average (an OpenShift release's images average 200–400 MiB).
pub const PRECACHE_BYTES_PER_IMAGE: u64 = 100 << 20;
/// What the RHCOS metal image itself fills of the root partition.
pub const METAL_IMAGE_BYTES: u64 = 4 << 30;
/// What XFS keeps for itself (log, metadata): about 1%.
const XFS_OVERHEAD_PERCENT: u64 = 1;

/// What the seed is, as far as the estimate needs.
#[derive(Debug, Clone, Default)]
pub struct SeedSizes {
    /// `ostree.tgz`, `var.tgz`, `etc.tgz` as stored (`None`: unknown).
    pub ostree_tgz: Option<u64>,
    pub var_tgz: Option<u64>,
    pub etc_tgz: Option<u64>,
    /// The image's layers (what a registry seed puts in the storage).
    pub image: Option<u64>,
    /// Whether podman pulls the seed into the storage (a registry seed).
    pub pulled_into_storage: bool,
    pub precache_images: usize,
}

/// The estimate, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Estimate {
    /// Peak use of the root partition by the seed: its repository twice
    /// while it is imported, then `/var` and `/etc`.
    pub root_needed: u64,
    /// The root partition less the metal image.
    pub root_free: u64,
    /// The seed image (registry seed) and the precache images.
    pub storage_needed: u64,
    /// The extra partition less the file system's share; `None` with
    /// `useContainersFolder` (the storage is on root, counted there).
    pub storage_free: Option<u64>,
    pub precache_images: usize,
}

impl Estimate {
    /// `root_bytes`: the root partition's size once grown (up to the extra
    /// partition, or the whole disk); `extra_bytes`: the extra partition.
    pub fn new(seed: &SeedSizes, root_bytes: u64, extra_bytes: Option<u64>) -> Estimate {
        let unpacked = |v: Option<u64>| v.unwrap_or(0).saturating_mul(TARBALL_EXPANSION);
        let ostree = unpacked(seed.ostree_tgz);
        let rest = unpacked(seed.var_tgz).saturating_add(unpacked(seed.etc_tgz));
        let mut root_needed = if seed.ostree_tgz.is_none() && seed.var_tgz.is_none() {
            // Only the image's size is known (a registry seed before its pull).
            unpacked(seed.image)
        } else {
            ostree.saturating_add(ostree.max(rest))
        };
        let mut storage_needed = precache_bytes(seed.precache_images);
        if seed.pulled_into_storage {
            storage_needed = storage_needed.saturating_add(seed.image.unwrap_or(0));
        }
        let storage_free = extra_bytes.map(less_fs);
        if storage_free.is_none() {
            root_needed = root_needed.saturating_add(storage_needed);
        }
        Estimate {
            root_needed,
            root_free: less_fs(root_bytes.saturating_sub(METAL_IMAGE_BYTES)),
            storage_needed,
            storage_free,
            precache_images: seed.precache_images,
        }
    }

    /// One message per partition that cannot hold its share.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.root_needed > self.root_free {
            out.push((
                "extraPartitionStart",
                format!(
                    "the root partition would have {} free, but the seed unpacks to at least {}{}; \
                     move extraPartitionStart towards the end of the disk or use a larger disk",
                    human(self.root_free),
                    human(self.root_needed),
                    if self.storage_free.is_none() {
                        " with the container storage (useContainersFolder)"
                    } else {
                        ""
                    }
                ),
            ));
        }
        if let Some(free) = self.storage_free
            && self.storage_needed > free
        {
            out.push((
                "extraPartitionStart",
                format!(
                    "the extra partition would have {} free, but the container storage needs at \
                     least {} ({} precache images); make the extra partition larger (a more \
                     negative extraPartitionStart), use a larger disk, or set precacheDisabled",
                    human(free),
                    human(self.storage_needed),
                    self.precache_images
                ),
            ));
        }
        out
    }
}

impl fmt::Display for Estimate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "root needs at least {} of {} free",
            human(self.root_needed),
            human(self.root_free)
        )?;
        match self.storage_free {
            Some(free) => write!(
                f,
                "; container storage needs at least {} of {} free ({} precache images)",
                human(self.storage_needed),
                human(free),
                self.precache_images
            ),
            None => write!(
                f,
                " (container storage on root: {} precache images)",
                self.precache_images
            ),
        }
    }
}

/// The lower bound for `n` precache images.
pub fn precache_bytes(n: usize) -> u64 {
    u64::try_from(n)
        .unwrap_or(u64::MAX)
        .saturating_mul(PRECACHE_BYTES_PER_IMAGE)
}

/// The bytes free for unprivileged use on the file system holding `path`.
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let v = rustix::fs::statvfs(path).ok()?;
    Some(v.f_bavail.saturating_mul(v.f_frsize))
}

/// A progress line: the estimate for what a step is about to write, and
/// what the file system holding `at` has free now.
pub fn message(what: &str, needed: u64, at: &std::path::Path) -> String {
    match free_bytes(at) {
        Some(free) => format!(
            "{what}: at least {} estimated, {} free on {}",
            human(needed),
            human(free),
            at.display()
        ),
        None => format!("{what}: at least {} estimated", human(needed)),
    }
}

fn less_fs(bytes: u64) -> u64 {
    bytes.saturating_sub(bytes / 100 * XFS_OVERHEAD_PERCENT)
}

/// "12.3 GiB (13207024435 bytes)": readable, and exact for scripts.
pub fn human(bytes: u64) -> String {
    format!("{} ({bytes} bytes)", indicatif::BinaryBytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_counts_twice_and_the_precache_goes_to_the_extra_partition() {
        let seed = SeedSizes {
            ostree_tgz: Some(1 << 30),
            var_tgz: Some(3 << 30),
            etc_tgz: Some(0),
            image: Some(4 << 30),
            pulled_into_storage: true,
            precache_images: 10,
        };
        let e = Estimate::new(&seed, 60 << 30, Some(60 << 30));
        // 2 GiB repository + max(2 GiB copy, 6 GiB var).
        assert_eq!(e.root_needed, 8 << 30);
        assert_eq!(e.storage_needed, (4 << 30) + 10 * PRECACHE_BYTES_PER_IMAGE);
        assert!(e.problems().is_empty(), "{:?}", e.problems());
        let small = Estimate::new(&seed, 60 << 30, Some(1 << 30));
        let p = small.problems();
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("the extra partition would have"), "{p:?}");
        // useContainersFolder: everything on root.
        let folder = Estimate::new(&seed, 10 << 30, None);
        assert_eq!(folder.root_needed, (8 << 30) + folder.storage_needed);
        assert!(folder.problems()[0].1.contains("useContainersFolder"));
        assert!(folder.to_string().contains("container storage on root"));
    }
}
