//! Everything `sprout ibi` checks before the first byte is written to the
//! disk (issue #11 "Preflight"). Every failure of a run is collected and
//! reported together, each naming the field or device and the fix.

use std::path::Path;

use anyhow::{Context, Result};

use super::config::{self, LoadedConfig};
use super::options::{
    CONTAINER_STORAGE, Options, PULL_SECRET, RUN_JOURNAL, TARGET_JOURNAL, TARGET_MOUNT,
};
use super::space::{Estimate, SeedSizes};
use crate::api::diag::{InvalidInput, Problems};
use crate::host::command::{Cmd, find_program};
use crate::host::disk::preflight::DEFAULT_OS_RESERVE_BYTES;
use crate::host::disk::{CheckedDisk, DiskRequirements, Inventory, Lsblk, check_disk};
use crate::host::ostree::Stateroot;
use crate::seed::{Expectations, PullOptions, Seed, SeedRef, Tarball};

/// What the preflight found; the plan runs on it.
pub struct Checked {
    pub loaded: LoadedConfig,
    pub disk: CheckedDisk,
    pub seed_ref: SeedRef,
    /// The opened seed (an offline one stays open for the restore; a
    /// registry seed is pulled again by podman into the target's storage).
    pub seed: Seed,
    pub seed_digest: String,
    pub stateroot: Stateroot,
    /// sfdisk's `start=` of the extra partition (none: useContainersFolder).
    pub extra_start: Option<String>,
    /// The bytes the extra partition gets.
    pub extra_bytes: Option<u64>,
    pub selinux: bool,
    /// Free-space estimate, for the log and the plan.
    pub estimate: String,
    pub space: Estimate,
}

/// The programs the run will start, for this configuration.
pub fn tools_needed(
    c: &crate::api::ibi_config::IbiConfig,
    registry_seed: bool,
    selinux: bool,
) -> Vec<&'static str> {
    let mut t = Vec::new();
    if !c.skip_disk_cleanup {
        t.extend([
            "vgs", "pvs", "vgremove", "pvremove", "dmsetup", "mdadm", "wipefs",
        ]);
    }
    t.extend(["coreos-installer", "sfdisk", "mount", "umount", "blkid"]);
    if !c.use_containers_folder {
        t.extend(["mkfs.xfs", "growpart", "xfs_growfs"]);
    }
    if selinux {
        t.push("restorecon");
    }
    if registry_seed || !c.precache_disabled {
        t.push("podman");
    }
    if registry_seed {
        // The preflight reads the seed's manifest and labels with it.
        t.push("skopeo");
    }
    if c.shutdown {
        t.push("systemctl");
    }
    t
}

/// Runs every check; `Err` carries all problems (an `InvalidInput`).
pub fn run(opts: &Options) -> Result<Checked> {
    let file = opts.config_file.display().to_string();
    let loaded = match config::read(&opts.config_file) {
        Ok(l) => l,
        Err(e) => {
            // Config errors first: nothing else can be checked without it.
            let mut p = Problems::new(&file);
            match e.downcast_ref::<config::ConfigError>() {
                Some(ce) => ce.problems.iter().for_each(|m| p.add("", m.clone())),
                None => p.add("", format!("{e:#}")),
            }
            return Err(InvalidInput(p.into_vec()).into());
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let c = &loaded.config;
    let mut p = Problems::new(&file);
    for m in config::conflicts(c) {
        p.add("coreosInstallerArgs", m);
    }
    let root = opts.root.as_path();
    let selinux = root.join("sys/fs/selinux/enforce").exists();

    // The disk.
    let lsblk = read_lsblk(root);
    let mut inventory = Inventory::read(root, lsblk).context("reading the machine's disks")?;
    for m in forget_own_mounts(root, &mut inventory) {
        tracing::info!("{m} was left mounted by an earlier sprout ibi run; it is resumed on");
    }
    let req = DiskRequirements {
        extra_partition: (!c.use_containers_folder).then(|| loaded.extra_partition_start.clone()),
        os_reserve_bytes: DEFAULT_OS_RESERVE_BYTES,
        skip_disk_cleanup: c.skip_disk_cleanup,
    };
    let disk = match check_disk(&inventory, &c.installation_disk, &req) {
        Ok(d) => Some(d),
        Err(problems) => {
            for d in problems {
                p.add(
                    "installationDisk",
                    format!("{}: {}; {}", d.device, d.problem, d.fix),
                );
            }
            None
        }
    };
    let mut extra_start = None;
    let mut extra_bytes = None;
    if let Some(d) = &disk
        && !c.use_containers_folder
    {
        match loaded
            .extra_partition_start
            .sfdisk_start(d.size_bytes, d.sector_size)
        {
            Ok(s) => {
                extra_bytes = s
                    .parse::<u64>()
                    .ok()
                    .and_then(|sec| sec.checked_mul(d.sector_size))
                    .and_then(|b| d.size_bytes.checked_sub(b));
                extra_start = Some(s);
            }
            Err(e) => p.add("extraPartitionStart", format!("{e}")),
        }
    }

    // The seed.
    let registry_seed = matches!(seed_ref_kind(&c.seed_image), Some(true));
    let stateroot = match Stateroot::for_seed_version(&c.seed_version) {
        Ok(s) => Some(s),
        Err(e) => {
            p.add("seedVersion", format!("{e:#}"));
            None
        }
    };
    let pull_secret = root.join(PULL_SECRET);
    let auths = read_auths(&pull_secret);
    let seed_ref = match SeedRef::parse(&c.seed_image) {
        Ok(r) => Some(r),
        Err(e) => {
            p.add("seedImage", format!("{e:#}"));
            None
        }
    };
    if let Some(SeedRef::Docker(r)) = &seed_ref {
        need_auth(&mut p, &auths, &pull_secret, registry_of(r), "seedImage");
    }
    // The live system's registries.conf, as podman on it uses (mirrors,
    // insecure registries).
    let registries_conf = root.join("etc/containers/registries.conf");
    let pull = PullOptions {
        authfile: pull_secret.exists().then(|| pull_secret.clone()),
        registries_conf: registries_conf.exists().then_some(registries_conf),
        workdir: opts.workdir.clone().unwrap_or_else(|| root.join("var/tmp")),
        ..PullOptions::default()
    };
    let expect = Expectations {
        seed_version: Some(c.seed_version.clone()),
        extra_partition_label: (!c.use_containers_folder).then(|| c.extra_partition_label.clone()),
    };
    // A registry seed: its manifest and labels only (podman pulls it once,
    // in the pull-seed step; its tarballs are checked member by member as
    // they are extracted). An offline seed is read whole now.
    let seed = seed_ref.as_ref().and_then(|r| {
        let opened = match r {
            SeedRef::Docker(_) => Seed::open_remote(r, &pull, &expect),
            _ => Seed::open(r, &pull, &expect).and_then(|s| s.verify().map(|()| s)),
        };
        match opened {
            Ok(s) => Some(s),
            Err(e) => {
                p.add("seedImage", format!("{e:#}"));
                None
            }
        }
    });
    if let Some(img) = seed.as_ref().and_then(Seed::remote) {
        let want = crate::seed::remote::machine_architecture();
        if !img.architecture.is_empty() && img.architecture != want {
            p.add(
                "seedImage",
                format!(
                    "the seed is for architecture {}, this machine is {want}; use a seed made on \
                     a {want} cluster",
                    img.architecture
                ),
            );
        }
    }
    if let Some(s) = &seed
        && !c.precache_disabled
    {
        let info = s.cluster_info();
        let registry =
            if !c.release_registry.is_empty() && c.release_registry != info.release_registry {
                c.release_registry.as_str()
            } else {
                info.release_registry.as_str()
            };
        // A registry seed's image list is read after its pull: assume it
        // has images, as seeds do.
        if !registry.is_empty() && (!s.containers().is_empty() || s.remote().is_some()) {
            need_auth(
                &mut p,
                &auths,
                &pull_secret,
                registry_of(registry),
                "releaseRegistry",
            );
        }
    }

    // Tools.
    for t in tools_needed(c, registry_seed, selinux) {
        if find_program(t).is_none() {
            p.add(
                "",
                format!("{t} is not on PATH; install it or add its directory to PATH"),
            );
        }
    }

    let space = match (&seed, &disk) {
        (Some(s), Some(d)) => {
            let size = |t: Tarball| s.file_size(t.file_name());
            let sizes = SeedSizes {
                ostree_tgz: size(Tarball::Ostree),
                var_tgz: size(Tarball::Var),
                etc_tgz: size(Tarball::Etc),
                image: s.image_size(),
                pulled_into_storage: registry_seed,
                precache_images: if c.precache_disabled {
                    0
                } else {
                    s.containers().len()
                },
            };
            let root_bytes = d.size_bytes.saturating_sub(extra_bytes.unwrap_or(0));
            let e = Estimate::new(&sizes, root_bytes, extra_bytes);
            for (field, m) in e.problems() {
                p.add(field, m);
            }
            Some(e)
        }
        _ => None,
    };
    let estimate = match (&space, &disk) {
        (Some(e), Some(d)) => format!("disk {} has {} bytes; {e}", d.dev_path, d.size_bytes),
        _ => String::new(),
    };
    let problems = p.into_vec();
    match (problems.is_empty(), disk, seed_ref, seed, stateroot, space) {
        (true, Some(disk), Some(seed_ref), Some(seed), Some(stateroot), Some(space)) => {
            let seed_digest = seed_digest(&seed);
            Ok(Checked {
                loaded,
                disk,
                seed_ref,
                seed,
                seed_digest,
                stateroot,
                extra_start,
                extra_bytes,
                selinux,
                estimate,
                space,
            })
        }
        _ => Err(InvalidInput(problems).into()),
    }
}

/// A run killed without a reboot (SIGKILL, the OOM killer, a crashed
/// terminal) leaves its own mounts of the target disk behind; the next run
/// resumes on them, so they are not "a disk in use". Forgotten only while
/// a journal of sprout ibi says a run is under way (under /run, or on the
/// target mounted at sprout's mount point) and only at sprout's own mount
/// points; the runner then checks the journal's fingerprint (same
/// configuration, seed and disk). Returns what was forgotten.
fn forget_own_mounts(root: &Path, inv: &mut Inventory) -> Vec<String> {
    let target = root.join(TARGET_MOUNT);
    if !root.join(RUN_JOURNAL).exists() && !target.join(TARGET_JOURNAL).exists() {
        return Vec::new();
    }
    let own = [target, root.join(CONTAINER_STORAGE)];
    let mut forgotten = Vec::new();
    inv.mounts.retain(|m| {
        let ours = own.iter().any(|o| Path::new(&m.target).starts_with(o));
        if ours {
            forgotten.push(format!("{} on {}", m.source, m.target));
        }
        !ours
    });
    forgotten
}

/// Whether `image` is a registry reference (`None`: not a seed reference).
fn seed_ref_kind(image: &str) -> Option<bool> {
    SeedRef::parse(image)
        .ok()
        .map(|r| matches!(r, SeedRef::Docker(_)))
}

/// What identifies the seed for the journal: its commit and manifest, or
/// for a registry seed, its manifest digest.
fn seed_digest(seed: &Seed) -> String {
    if let Some(r) = seed.remote() {
        return r.digest.clone();
    }
    let mut bytes = seed.booted_deployment().checksum.clone().into_bytes();
    bytes.extend_from_slice(seed.cluster_info_json());
    crate::hash::hex(&crate::hash::sha256(&bytes))
}

fn read_lsblk(root: &Path) -> Option<Lsblk> {
    if root != Path::new("/") {
        // A test root: lsblk would describe this machine, not the fixture.
        return None;
    }
    let out = Cmd::new("lsblk")
        .args(["--json", "-O", "-b"])
        .run_capture(16 << 20)
        .ok()?;
    Lsblk::parse(&out).ok()
}

/// The registry host of an image reference (`host[:port]`, or docker.io).
pub fn registry_of(image: &str) -> &str {
    let image = image.strip_prefix("docker://").unwrap_or(image);
    let first = image.split('/').next().unwrap_or(image);
    if !image.contains('/') && (first.contains('.') || first.contains(':')) {
        // A bare registry name, as releaseRegistry is.
        return first;
    }
    if image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
        first
    } else {
        "docker.io"
    }
}

/// The registries the pull secret has credentials for (`None`: no readable
/// file).
fn read_auths(path: &Path) -> Option<Vec<String>> {
    let text = std::fs::read(path).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    Some(
        v.get("auths")?
            .as_object()?
            .keys()
            .map(|k| {
                let k = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                k.split('/').next().unwrap_or(k).to_string()
            })
            .collect(),
    )
}

fn need_auth(
    p: &mut Problems,
    auths: &Option<Vec<String>>,
    file: &Path,
    registry: &str,
    field: &str,
) {
    match auths {
        None => p.add(
            field,
            format!(
                "the pull secret {} is missing or not JSON with \"auths\"; it needs credentials \
                 for {registry}",
                file.display()
            ),
        ),
        Some(a) if !a.iter().any(|h| h == registry) => p.add(
            field,
            format!(
                "the pull secret {} has no credentials for {registry}; add an \"auths\" entry for it \
                 (the pull would fail only after the disk was written)",
                file.display()
            ),
        ),
        Some(_) => {}
    }
}
