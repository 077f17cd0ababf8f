//! A test machine for `sprout ibi` on the build host.
//!
//! What is real: the preflight (reading a fixture disk inventory under
//! `--root`), the synthetic seed (an `oci-archive:` built by the seed test
//! support), the whole seed restore (libostree import, stateroot, deploy,
//! `.origin`, `var.tgz`, `etc.tgz`, `etc.deletions`, lists, agent) on a
//! directory sysroot at `<root>/mnt`, the journal, the report and the
//! progress events.
//!
//! What is a stand-in (tests/ibi_fixture/standins.sh, put first on PATH),
//! and why: this host has no disk to give away and loop devices have no
//! partition nodes (../shared/spec/build-machine.md), so `coreos-installer`
//! (writes the `rhcos` sysroot into `<root>/mnt` with the real ostree
//! CLI instead of a disk image), `sfdisk` (prints a GPT of what was "done"
//! so far), `blkid`, `mkfs.xfs`, `growpart`, `mount`, `xfs_growfs`, `resize2fs`,
//! `restorecon`, the LVM/DM/RAID/wipefs cleanup tools, `umount`, `podman`
//! (records precache pulls without a registry, refuses an `arm64-only`
//! image as podman refuses one without this machine's architecture; the
//! seed itself it downloads for real from a test registry with skopeo and
//! "mounts" as the seed's files) and `systemctl` (no power-off here). The
//! read-only look at the root partition after a "reboot" (ibi::resume)
//! makes its mount point a link to `<root>/mnt`. The VM test runs the
//! real tools.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sprout::testing::seed::{BuiltSeed, SeedSpec};

pub const DISK_BYTES: u64 = 120 << 30;
pub const WWN: &str = "wwn-0x5000c500a0b1c2d3";
pub const STANDINS: &[&str] = &[
    "vgs",
    "pvs",
    "vgremove",
    "pvremove",
    "dmsetup",
    "mdadm",
    "wipefs",
    "coreos-installer",
    "sfdisk",
    "blkid",
    "mkfs.xfs",
    "growpart",
    "mount",
    "umount",
    "xfs_growfs",
    "resize2fs",
    "restorecon",
    "podman",
    "systemctl",
];
pub const SEED_VERSION: &str = "4.16.3";

pub struct Machine {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub bin: PathBuf,
    pub state: PathBuf,
    pub config: PathBuf,
    pub seed: BuiltSeed,
}

/// The seed: small, with three precache images (and `extra`).
pub fn seed(work: &Path, var_payload: u64, extra: &[&str]) -> BuiltSeed {
    let mut spec = SeedSpec {
        var_payload,
        var_small_files: 8,
        ..SeedSpec::default()
    };
    spec.info.seed_cluster_ocp_version = SEED_VERSION.into();
    spec.containers = (1..=3)
        .map(|i| format!("quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:{i:064x}"))
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
    spec.build(work).unwrap()
}

impl Machine {
    pub fn new(var_payload: u64) -> Machine {
        Self::build(var_payload, None, &[])
    }

    /// A machine whose seed lists `images` after the usual three.
    pub fn with_extra_images(images: &[&str]) -> Machine {
        Self::build(64 << 10, None, images)
    }

    /// Another machine installing the same seed (from `other`'s files).
    pub fn sharing_seed(other: &Machine) -> Machine {
        Self::build(0, Some(other.seed.clone()), &[])
    }

    fn build(var_payload: u64, shared: Option<BuiltSeed>, extra: &[&str]) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        let seed = shared.unwrap_or_else(|| {
            let seed_dir = dir.path().join("seed");
            std::fs::create_dir(&seed_dir).unwrap();
            seed(&seed_dir, var_payload, extra)
        });
        let root = dir.path().join("root");
        let bin = dir.path().join("bin");
        let state = dir.path().join("state");
        for d in [&root, &bin, &state] {
            std::fs::create_dir_all(d).unwrap();
        }
        // The disk as sysfs and /dev show it.
        let sys = root.join("sys/devices/virtual/block/vda");
        std::fs::create_dir_all(sys.join("queue")).unwrap();
        std::fs::create_dir_all(sys.join("holders")).unwrap();
        std::fs::write(sys.join("size"), format!("{}\n", DISK_BYTES / 512)).unwrap();
        std::fs::write(sys.join("queue/logical_block_size"), "512\n").unwrap();
        std::fs::write(sys.join("ro"), "0\n").unwrap();
        std::fs::write(sys.join("dev"), "252:0\n").unwrap();
        std::fs::create_dir_all(root.join("sys/class/block")).unwrap();
        symlink(
            "../../devices/virtual/block/vda",
            root.join("sys/class/block/vda"),
        )
        .unwrap();
        std::fs::create_dir_all(root.join("dev/disk/by-id")).unwrap();
        std::fs::write(root.join("dev/vda"), "").unwrap();
        symlink("../../vda", root.join("dev/disk/by-id").join(WWN)).unwrap();
        // What the installation ISO puts on the live system.
        std::fs::create_dir_all(root.join("var/tmp")).unwrap();
        std::fs::write(
            root.join("var/tmp/pull-secret.json"),
            r#"{"auths":{"quay.io":{"auth":"eDp5"},"mirror.telco.example.net:8443":{"auth":"eDp5"}}}"#,
        )
        .unwrap();
        let post = root.join("var/tmp/post.sh");
        std::fs::write(
            &post,
            format!("#!/bin/sh\necho ran > {}/post-ran\n", state.display()),
        )
        .unwrap();
        std::fs::set_permissions(&post, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(root.join("etc/containers")).unwrap();
        std::fs::write(
            root.join("etc/containers/registries.conf"),
            "[[registry]]\nlocation = \"quay.io\"\n",
        )
        .unwrap();
        let script = crate::support::repo().join("tests/ibi_fixture/standins.sh");
        for t in STANDINS {
            let p = bin.join(t);
            std::fs::write(&p, format!("#!/bin/sh\n. {}\n", script.display())).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let config = dir.path().join("ibi-configuration.json");
        let m = Machine {
            dir,
            root,
            bin,
            state,
            config,
            seed,
        };
        m.write_config(|_| {});
        m
    }

    /// The ibi-configuration.json `sprout create image` writes for
    /// examples/image (its values), with seedImage pointed at the
    /// synthetic seed; `edit` changes it.
    pub fn write_config(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut v = serde_json::json!({
            "extraPartitionLabel": "var-lib-containers",
            "extraPartitionStart": "-60G",
            "installationDisk": format!("/dev/disk/by-id/{WWN}"),
            "releaseRegistry": "mirror.telco.example.net:8443",
            "seedImage": self.seed.archive_ref(),
            "seedVersion": SEED_VERSION,
            "shutdown": true,
            "coreosInstallerArgs": ["--append-karg", "console=ttyS0,115200"],
        });
        edit(&mut v);
        std::fs::write(&self.config, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }

    pub fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sprout"));
        c.arg("ibi")
            .arg("-f")
            .arg(&self.config)
            .arg("--root")
            .arg(&self.root)
            .args(extra);
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        c.env("PATH", path)
            .env("STANDIN_STATE", &self.state)
            .env("STANDIN_ROOT", &self.root)
            .env("STANDIN_SEED_ROOT", &self.seed.root)
            .env_remove("JOURNAL_STREAM")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("SPROUT_LOG");
        c
    }

    pub fn run(&self, extra: &[&str]) -> Output {
        self.command(extra).output().unwrap()
    }

    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.state.join("calls.log")).unwrap_or_default()
    }

    /// Replaces the temporary paths in `text` by names, for comparisons.
    pub fn normalize(&self, text: &str) -> String {
        text.replace(&self.seed.commit, "<seed-commit>")
            .replace(&self.seed.oci_archive.display().to_string(), "<seed.tar>")
            .replace(&self.root.display().to_string(), "<root>")
            .replace(&self.dir.path().display().to_string(), "<tmp>")
            .replace(env!("CARGO_BIN_EXE_sprout"), "<sprout>")
    }
}

/// path → content hash (files), target (links), "dir", plus the mode.
pub fn manifest(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let md = std::fs::symlink_metadata(&p).unwrap();
        let mode = md.mode();
        if md.file_type().is_symlink() {
            out.insert(
                rel,
                format!(
                    "link {} {mode:o}",
                    std::fs::read_link(&p).unwrap().display()
                ),
            );
        } else if md.is_dir() {
            out.insert(rel, format!("dir {mode:o}"));
            walk(root, &p, out);
        } else {
            let h = sprout::hash::hex(&sprout::hash::sha256(&std::fs::read(&p).unwrap()));
            out.insert(rel, format!("file {h} {mode:o}"));
        }
    }
}

pub fn have_tools() -> bool {
    crate::support::require("ostree", "ibi tests")
}

impl Drop for Machine {
    /// ostree marks deployment roots immutable; clear that so the
    /// temporary directory can be removed.
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.root.join("mnt/ostree/deploy")) {
            for e in rd.flatten() {
                let _ = sprout::host::ostree::clear_immutable_below(&e.path().join("deploy"));
            }
        }
    }
}
