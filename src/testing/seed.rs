//! A synthetic seed image with the exact layout `lca-cli create` gives
//! (lifecycle-agent.md §1.2): a real ostree commit made with the ostree CLI
//! from a small OS tree, realistic `var/` and `etc/` tarballs, the metadata
//! files, and the two labels; written as a plain directory (what `podman
//! image mount` shows), an OCI layout and an OCI archive.
//!
//! `var_payload` is the size knob: a few MiB for tests, GiBs for
//! benchmarks. Fields prefixed `break_` / `omit` / `replace` / `var_extra`
//! make the broken seeds the tests feed to sprout; `ostree_repo`,
//! `etc_members`, `var_members` and `etc_deletions` make a seed of a real
//! OS tree that boots (the VM journey's, from the CoreOS-like test OS).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::oci_writer::{self, LayerCompression};
use super::seed_members::Filtered;
pub use super::seed_members::Member;
use super::seed_tarballs::RawMember;
use super::seed_tarballs::{ETC_LABEL, Payload, TgzWriter, VAR_LABEL};
use crate::api::seed_cluster_info::SeedClusterInfo;
use crate::host::command::Cmd;
use crate::seed::{CLUSTER_INFO_LABEL, FORMAT_LABEL};

pub const TAG: &str = "4.16.0";
pub const KERNEL_VERSION: &str = "5.14.0-427.13.1.el9_4.x86_64";
pub const OSTREE_REF: &str = "rhcos/4.16/x86_64";
/// The file `etc.deletions` deletes; the commit's `usr/etc` has it.
pub const DELETED_ETC_FILE: &str = "etc/sprout-seed-deleted.conf";

#[derive(Debug, Clone)]
pub struct SeedSpec {
    pub info: SeedClusterInfo,
    pub kernel_args: Vec<String>,
    pub containers: Vec<String>,
    /// Bytes of database-like content in `var.tgz` (the size knob).
    pub var_payload: u64,
    /// Bytes of extra content in the ostree commit.
    pub ostree_payload: u64,
    /// Small files (each one ostree object) in the commit's `usr/share`,
    /// as a real OS tree has tens of thousands; 0 for tests.
    pub ostree_small_files: usize,
    /// Small files in `var/lib/misc`.
    pub var_small_files: usize,
    pub layer: LayerCompression,
    /// Also write the OCI layout and archive (not only the directory).
    pub write_images: bool,
    /// The format label's value; `None` leaves the label out.
    pub format_label: Option<String>,
    /// Replaces the seed_cluster_info label's value; `Some(None)` drops it.
    pub cluster_info_label: Option<Option<String>>,
    /// Root files left out.
    pub omit: Vec<String>,
    /// Root files whose content is replaced.
    pub replace: BTreeMap<String, Vec<u8>>,
    /// Members appended to var.tgz as they are.
    pub var_extra: Vec<RawMember>,
    /// An archive-mode ostree repository holding [`OSTREE_REF`]: its commit
    /// is the seed's (`ostree.tgz` is this repository) instead of the
    /// synthetic tree's.
    pub ostree_repo: Option<PathBuf>,
    /// Members of etc.tgz (names like `etc/…`), replacing a default member
    /// of the same name or added after them.
    pub etc_members: BTreeMap<String, Member>,
    /// Members of var.tgz (`var/…`), the same way.
    pub var_members: BTreeMap<String, Member>,
    /// The lines of `etc.deletions`.
    pub etc_deletions: Vec<String>,
}

/// The seed's unit as upstream ships it (lifecycle-agent.md §3.1).
pub const UPSTREAM_INSTALLATION_UNIT: &str = "[Unit]\n\
    Description=Image base SNO configuration script\n\
    After=coreos-update-ca-trust.service\n\
    \n\
    [Service]\n\
    Type=oneshot\n\
    RemainAfterExit=no\n\
    ExecStart=/usr/local/bin/lca-cli post-pivot\n\
    Restart=on-failure\n\
    RestartSec=5s\n\
    \n\
    [Install]\n\
    WantedBy=multi-user.target\n";

impl Default for SeedSpec {
    fn default() -> Self {
        let recert = "quay.io/edge-infrastructure/recert:v0".to_string();
        let info = SeedClusterInfo {
            seed_cluster_ocp_version: TAG.into(),
            base_domain: "seed.example.com".into(),
            cluster_name: "sno-seed".into(),
            node_ips: vec!["192.0.2.10".into()],
            release_registry: "quay.io".into(),
            sno_hostname: "seed-node-0".into(),
            recert_image_pull_spec: recert.clone(),
            cluster_networks: vec!["10.128.0.0/14".into()],
            service_networks: vec!["172.30.0.0/16".into()],
            container_storage_mountpoint_target: "/dev/disk/by-partlabel/var-lib-containers".into(),
            ingress_certificate_cn: "ingress-operator@1717200000".into(),
            machine_networks: vec!["192.0.2.0/24".into()],
            ..SeedClusterInfo::default()
        };
        let mut containers: Vec<String> = (0..12)
            .map(|i| format!("quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:{i:064x}"))
            .collect();
        containers.push(recert);
        Self {
            info,
            kernel_args: vec![
                "systemd.unified_cgroup_hierarchy=1".into(),
                "cgroup_no_v1=\"all\"".into(),
                "psi=0".into(),
                // Quotes and a `$` that a shell would expand (W1).
                "sprout.test=\"$HOME\"".into(),
            ],
            containers,
            var_payload: 2 << 20,
            ostree_payload: 256 << 10,
            ostree_small_files: 0,
            var_small_files: 40,
            layer: LayerCompression::Gzip,
            write_images: true,
            format_label: Some("4".into()),
            cluster_info_label: None,
            omit: Vec::new(),
            replace: BTreeMap::new(),
            var_extra: Vec::new(),
            ostree_repo: None,
            etc_members: BTreeMap::new(),
            var_members: BTreeMap::new(),
            etc_deletions: vec![format!("/{DELETED_ETC_FILE}")],
        }
    }
}

/// Where a built seed is.
#[derive(Debug, Clone)]
pub struct BuiltSeed {
    /// The seed's files, as a mounted image shows them.
    pub root: PathBuf,
    /// The OCI layout (tagged [`TAG`]), if written.
    pub oci_dir: PathBuf,
    pub oci_archive: PathBuf,
    /// The ostree commit the booted deployment runs.
    pub commit: String,
    pub manifest_json: Vec<u8>,
}

impl BuiltSeed {
    pub fn oci_ref(&self) -> String {
        format!("oci:{}:{TAG}", self.oci_dir.display())
    }
    pub fn archive_ref(&self) -> String {
        format!("oci-archive:{}", self.oci_archive.display())
    }
}

impl SeedSpec {
    /// Builds the seed under `work` (which must exist and be empty).
    pub fn build(&self, work: &Path) -> Result<BuiltSeed> {
        let root = work.join("root");
        fs::create_dir_all(&root).context("creating the seed root")?;
        let (repo, commit) = match &self.ostree_repo {
            Some(repo) => (repo.clone(), rev_parse(repo)?),
            None => (
                work.join("repo"),
                ostree_commit(work, self.ostree_payload, self.ostree_small_files)?,
            ),
        };
        let manifest_json = serde_json::to_vec(&self.info)?;
        let lca_cli = b"#!/bin/sh\necho 'synthetic lca-cli for sprout tests'\n".to_vec();
        let deployment = format!("{commit}.0");

        let mut t = TgzWriter::create(&root.join("ostree.tgz"))?;
        t.tree(&repo)?;
        t.finish()?;
        self.write_var(&root.join("var.tgz"), &manifest_json, &lca_cli)?;
        self.write_etc(&root.join("etc.tgz"))?;

        let files: Vec<(String, Vec<u8>, u32)> = vec![
            ("lca-cli".into(), lca_cli, 0o755),
            ("manifest.json".into(), manifest_json.clone(), 0o644),
            (
                "containers.list".into(),
                self.containers.join("\n").into_bytes(),
                0o600,
            ),
            ("rpm-ostree.json".into(), rpm_ostree_json(&commit), 0o644),
            (format!("ostree-{deployment}.origin"), origin(), 0o644),
            ("mco-currentconfig.json".into(), self.mco_json(), 0o644),
            (
                "etc.deletions".into(),
                self.etc_deletions
                    .iter()
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
                    .into_bytes(),
                0o644,
            ),
            (
                "recert_config.json".into(),
                br#"{"dry_run":false,"force_expire":true}"#.to_vec(),
                0o600,
            ),
        ];
        for (name, bytes, mode) in files {
            let bytes = self.replace.get(&name).cloned().unwrap_or(bytes);
            let p = root.join(&name);
            fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        }
        for name in &self.omit {
            let p = root.join(name);
            if p.exists() {
                fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
            }
        }

        let oci_dir = work.join("oci");
        let oci_archive = work.join("seed.oci.tar");
        if self.write_images {
            let mut labels = BTreeMap::new();
            if let Some(v) = &self.format_label {
                labels.insert(FORMAT_LABEL.to_string(), v.clone());
            }
            let info_label = match &self.cluster_info_label {
                None => Some(String::from_utf8_lossy(&manifest_json).into_owned()),
                Some(v) => v.clone(),
            };
            if let Some(v) = info_label {
                labels.insert(CLUSTER_INFO_LABEL.to_string(), v);
            }
            oci_writer::write_layout(&root, &oci_dir, TAG, &labels, self.layer)?;
            oci_writer::write_archive(&oci_dir, &oci_archive)?;
        }
        Ok(BuiltSeed {
            root,
            oci_dir,
            oci_archive,
            commit,
            manifest_json,
        })
    }

    fn write_var(&self, path: &Path, manifest: &[u8], lca_cli: &[u8]) -> Result<()> {
        let mut t = Filtered::new(path, &self.var_members, VAR_LABEL)?;
        // 0: no etcd member at all, as a fresh etcd wants its data directory.
        let etcd_member = self.var_payload > 0;
        for (d, mode, uid) in [
            ("var/", 0o755, 0),
            ("var/lib/", 0o755, 0),
            ("var/lib/etcd/", 0o700, 0),
            ("var/lib/etcd/member/", 0o700, 0),
            ("var/lib/etcd/member/snap/", 0o700, 0),
            ("var/lib/etcd/member/wal/", 0o700, 0),
            ("var/lib/kubelet/", 0o755, 0),
            ("var/lib/kubelet/pki/", 0o755, 0),
            ("var/lib/containers/", 0o755, 0),
            ("var/lib/misc/", 0o755, 0),
            ("var/seed_data/", 0o755, 0),
            ("var/usrlocal/", 0o755, 0),
            ("var/usrlocal/bin/", 0o755, 0),
            ("var/home/", 0o755, 0),
            ("var/home/core/", 0o700, 1000),
            ("var/home/core/.ssh/", 0o700, 1000),
            ("var/roothome/", 0o700, 0),
            ("var/log/", 0o755, 0),
            ("var/tmp/", 0o1777, 0),
        ] {
            if etcd_member || !d.starts_with("var/lib/etcd/member") {
                t.dir(d, mode, uid, VAR_LABEL)?;
            }
        }
        t.file("var/seed_data/manifest.json", 0o600, 0, VAR_LABEL, manifest)?;
        t.file("var/usrlocal/bin/lca-cli", 0o777, 0, VAR_LABEL, lca_cli)?;
        t.file(
            "var/lib/kubelet/config.json",
            0o600,
            0,
            VAR_LABEL,
            br#"{"auths":{}}"#,
        )?;
        let pem = "var/lib/kubelet/pki/kubelet-client-2024-06-01-00-00-00.pem";
        t.file(pem, 0o600, 0, VAR_LABEL, b"-----BEGIN CERTIFICATE-----\n")?;
        t.symlink(
            "var/lib/kubelet/pki/kubelet-client-current.pem",
            "/var/lib/kubelet/pki/kubelet-client-2024-06-01-00-00-00.pem",
            VAR_LABEL,
        )?;
        t.file(
            "var/home/core/.ssh/authorized_keys",
            0o600,
            1000,
            VAR_LABEL,
            b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample core@seed\n",
        )?;
        t.symlink("var/run", "../run", VAR_LABEL)?;
        t.symlink("var/lock", "../run/lock", VAR_LABEL)?;
        if etcd_member {
            let wal = self.var_payload / 8;
            let db = self.var_payload - wal;
            t.file_from(
                "var/lib/etcd/member/snap/db",
                0o600,
                0,
                VAR_LABEL,
                &[],
                db,
                Payload::new(db, 0x5eed),
            )?;
            t.file_from(
                "var/lib/etcd/member/wal/0000000000000000-0000000000000000.wal",
                0o600,
                0,
                VAR_LABEL,
                &[],
                wal,
                Payload::new(wal, 0x3a1),
            )?;
        }
        for i in 0..self.var_small_files {
            let size = 64 + (i * 997) % 8192;
            let name = format!("var/lib/misc/file-{i:05}");
            t.file_from(
                &name,
                0o644,
                0,
                VAR_LABEL,
                &[],
                size as u64,
                Payload::new(size as u64, i as u64),
            )?;
        }
        t.file_xattrs(
            "var/lib/misc/with-xattr",
            VAR_LABEL,
            &[("user.sprout.test", b"kept")],
            b"x",
        )?;
        if self.var_small_files > 0 {
            t.hard_link("var/lib/misc/hard-link", "var/lib/misc/file-00000")?;
        }
        for m in &self.var_extra {
            t.raw(m)?;
        }
        t.finish()
    }

    fn write_etc(&self, path: &Path) -> Result<()> {
        let mut t = Filtered::new(path, &self.etc_members, ETC_LABEL)?;
        for d in [
            "etc/",
            "etc/systemd/",
            "etc/systemd/system/",
            "etc/systemd/system/multi-user.target.wants/",
            "etc/systemd/system/local-fs.target.requires/",
            "etc/kubernetes/",
            "etc/kubernetes/manifests/",
            "etc/machine-config-daemon/",
        ] {
            t.dir(d, 0o755, 0, ETC_LABEL)?;
        }
        t.file(
            "etc/systemd/system/installation-configuration.service",
            0o644,
            0,
            ETC_LABEL,
            UPSTREAM_INSTALLATION_UNIT.as_bytes(),
        )?;
        t.symlink(
            "etc/systemd/system/multi-user.target.wants/installation-configuration.service",
            "/etc/systemd/system/installation-configuration.service",
            ETC_LABEL,
        )?;
        let target = &self.info.container_storage_mountpoint_target;
        if !target.is_empty() {
            let mount = format!(
                "[Unit]\nDescription=Mount /var/lib/containers\n[Mount]\nWhat={target}\n\
                 Where=/var/lib/containers\nType=xfs\n[Install]\nRequiredBy=local-fs.target\n"
            );
            t.file(
                "etc/systemd/system/var-lib-containers.mount",
                0o644,
                0,
                ETC_LABEL,
                mount.as_bytes(),
            )?;
            // Enabled, as the seed cluster's MachineConfig leaves it.
            t.symlink(
                "etc/systemd/system/local-fs.target.requires/var-lib-containers.mount",
                "/etc/systemd/system/var-lib-containers.mount",
                ETC_LABEL,
            )?;
        }
        t.file(
            "etc/kubernetes/manifests/etcd-pod.yaml",
            0o644,
            0,
            ETC_LABEL,
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n",
        )?;
        t.file(
            "etc/machine-config-daemon/currentconfig",
            0o644,
            0,
            ETC_LABEL,
            &self.mco_json(),
        )?;
        t.file("etc/motd", 0o644, 0, ETC_LABEL, b"seed cluster node\n")?;
        t.finish()
    }

    fn mco_json(&self) -> Vec<u8> {
        let mc = json!({
            "apiVersion": "machineconfiguration.openshift.io/v1",
            "kind": "MachineConfig",
            "metadata": { "name": "rendered-master-5eed" },
            "spec": {
                "config": { "ignition": { "version": "3.4.0" } },
                "fips": self.info.has_fips,
                "kernelArguments": self.kernel_args,
                "kernelType": "default",
                "osImageURL": "quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:00",
            },
        });
        serde_json::to_vec_pretty(&mc).unwrap_or_default()
    }
}

/// Makes the commit the seed's booted deployment runs: a small OS tree
/// with a kernel and initramfs and `usr/etc`, in an archive-mode repo at
/// `work/repo`. Returns its checksum.
fn ostree_commit(work: &Path, payload: u64, small_files: usize) -> Result<String> {
    let tree = work.join("tree");
    let modules = tree.join("usr/lib/modules").join(KERNEL_VERSION);
    fs::create_dir_all(&modules)?;
    fs::create_dir_all(tree.join("usr/etc"))?;
    fs::create_dir_all(tree.join("usr/bin"))?;
    fs::create_dir_all(tree.join("usr/share/sprout"))?;
    write_payload(&modules.join("vmlinuz"), 64 << 10, 1)?;
    write_payload(&modules.join("initramfs.img"), 128 << 10, 2)?;
    write_payload(&tree.join("usr/share/sprout/payload"), payload, 3)?;
    fs::write(
        tree.join("usr/etc/os-release"),
        // ostree's deploy needs ID or PRETTY_NAME to name the boot entry.
        "NAME=\"Red Hat Enterprise Linux CoreOS\"\nID=\"rhcos\"\nVERSION_ID=\"4.16\"\n",
    )?;
    fs::write(tree.join("usr/etc/motd"), "")?;
    fs::write(
        tree.join("usr").join(DELETED_ETC_FILE),
        "# deleted on the seed\n",
    )?;
    fs::write(tree.join("usr/bin/true"), "#!/bin/sh\n")?;
    // Sizes like an OS tree's: mostly a few KiB, 256 files a directory.
    for i in 0..small_files {
        let dir = tree.join(format!("usr/share/sprout/small/{:03}", i / 256));
        if i % 256 == 0 {
            fs::create_dir_all(&dir)?;
        }
        let size = 32 + (i as u64).wrapping_mul(2_654_435_761) % 12_288;
        write_payload(&dir.join(format!("f{i:05}")), size, 0x100 + i as u64)?;
    }
    let repo = work.join("repo");
    let repo_arg = format!("--repo={}", repo.display());
    Cmd::new("ostree")
        .args([repo_arg.as_str(), "init", "--mode=archive"])
        .run()
        .context("creating the ostree repository (is the ostree CLI installed?)")?;
    let out = Cmd::new("ostree")
        .args([
            repo_arg.as_str(),
            "commit",
            "--branch",
            OSTREE_REF,
            "--subject=sprout synthetic seed",
            "--owner-uid=0",
            "--owner-gid=0",
        ])
        .arg(format!("--tree=dir={}", tree.display()))
        .run()
        .context("committing the seed's OS tree")?;
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if commit.len() != 64 {
        bail!("ostree commit printed {commit:?}, not a checksum");
    }
    Ok(commit)
}

fn write_payload(p: &Path, len: u64, seed: u64) -> Result<()> {
    let mut f = fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
    std::io::copy(&mut Payload::new(len, seed), &mut f)
        .with_context(|| format!("writing {}", p.display()))?;
    Ok(())
}

fn rpm_ostree_json(commit: &str) -> Vec<u8> {
    let status = json!({
        "deployments": [{
            "id": format!("rhcos-{commit}.0"),
            "osname": "rhcos",
            "serial": 0,
            "checksum": commit,
            "version": "416.94.202406010000-0",
            "timestamp": 1_717_200_000,
            "booted": true,
            "staged": false,
            "pinned": false,
            "unlocked": "none",
            "container-image-reference": "ostree-unverified-registry:quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:00",
        }],
        "transaction": null,
        "cached-update": null,
        "update-driver": null,
    });
    serde_json::to_vec_pretty(&status).unwrap_or_default()
}

fn origin() -> Vec<u8> {
    b"[origin]\ncontainer-image-reference=ostree-unverified-registry:quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:00\n".to_vec()
}

/// The commit [`OSTREE_REF`] names in `repo`.
fn rev_parse(repo: &Path) -> Result<String> {
    let out = Cmd::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["rev-parse", OSTREE_REF])
        .run()
        .with_context(|| format!("reading {OSTREE_REF} in {}", repo.display()))?;
    let commit = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if commit.len() != 64 {
        bail!("ostree rev-parse printed {commit:?}, not a checksum");
    }
    Ok(commit)
}
