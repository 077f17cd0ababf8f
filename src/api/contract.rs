//! The names of the upstream contract, in one place: every path, label, file
//! name and unit name that sprout's producers and consumers (and upstream's
//! openshift-install and lca-cli) must agree on. A producer and its consumer
//! import the same constant, so the two cannot drift apart (before this
//! module the config-ISO layout was written out by both `create
//! config-image` and post-pivot discovery).
//!
//! Sources: lifecycle-agent.md §1 (seed image), §2 (`ibi`), §3 (post-pivot),
//! §5 (constants), installer-imagebased.md §1.3 and §2.6. Each item says who
//! writes it and who reads it. Paths on a machine are [`HostPath`]s (absolute,
//! with the root-relative form at hand for code that works under `--root`);
//! paths inside a medium or an image are relative `&'static str`s.

use std::fmt;
use std::path::{Path, PathBuf};

/// An absolute path on the installed node or the live ISO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HostPath(&'static str);

impl HostPath {
    /// `path` must be absolute (checked by this module's tests for every
    /// constant).
    pub const fn new(path: &'static str) -> Self {
        Self(path)
    }

    /// The path as written on the machine, e.g. `/var/tmp/post.sh`.
    pub const fn absolute(self) -> &'static str {
        self.0
    }

    /// The path relative to `/`, e.g. `var/tmp/post.sh`, for joining to a
    /// root directory (a temporary tree in tests, `/` on a node).
    pub const fn relative(self) -> &'static str {
        match self.0.as_bytes().split_first() {
            Some((b'/', rest)) => match std::str::from_utf8(rest) {
                Ok(s) => s,
                Err(_) => self.0,
            },
            _ => self.0,
        }
    }

    /// The path under `root`.
    pub fn under(self, root: &Path) -> PathBuf {
        root.join(self.relative())
    }
}

impl AsRef<Path> for HostPath {
    fn as_ref(&self) -> &Path {
        Path::new(self.0)
    }
}

impl fmt::Display for HostPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The configuration ISO (`imagebasedconfig.iso`). Written by `create
/// config-image` (and openshift-install); found, mounted and copied into
/// [`work_dir::DIR`] by post-pivot discovery (and lca-cli), which then reads
/// the files at the same relative paths under `/opt/openshift`.
pub mod config_iso {
    /// The ISO's file name in `--dir`.
    pub const FILE_NAME: &str = "imagebasedconfig.iso";
    /// ISO9660 volume label the installer writes (`seedreconfig.BlockDeviceLabel`).
    pub const LABEL: &str = "cluster-config";
    /// The legacy label older tools wrote; still accepted by discovery.
    pub const LEGACY_LABEL: &str = "relocation-config";
    /// Every label discovery accepts, preferred first.
    pub const LABELS: &[&str] = &[LABEL, LEGACY_LABEL];
    /// The directory whose presence under `/opt/openshift` means
    /// "configuration discovered".
    pub const CONFIG_DIR: &str = "cluster-configuration";
    /// The SeedReconfiguration (api `seed_reconfig`); the one file a medium
    /// must hold to be taken.
    pub const MANIFEST: &str = "cluster-configuration/manifest.json";
    /// Manifests applied to the API after kubelet starts; always present,
    /// even empty (the agent lists it).
    pub const MANIFESTS_DIR: &str = "cluster-configuration/manifests";
    /// The ImageDigestMirrorSet, written when mirrors are configured.
    pub const MIRROR_SET: &str = "cluster-configuration/manifests/image-digest-mirror-set.json";
    /// cert-manager keys to keep (IBU writes them; read by recert's rules).
    pub const CERTMANAGER_CRYPTO_DIR: &str = "cluster-configuration/certmanager-crypto";
    /// User manifests, applied last; always present, even empty.
    pub const EXTRA_MANIFESTS_DIR: &str = "extra-manifests";
    /// NetworkManager keyfiles (IBU), copied to `/etc/NetworkManager/system-connections`.
    pub const NETWORK_CONNECTIONS_DIR: &str = "network-configuration/system-connections";
    /// LVM devices file (IBU), restored to `/etc/lvm/devices/system.devices`.
    pub const LVM_DEVICES: &str = "lvm-configuration/system.devices";
}

/// `/opt/openshift`, post-pivot's working directory on the installed node:
/// the configuration medium is copied here; post-pivot writes its own files
/// and `.done` markers here.
pub mod work_dir {
    use super::HostPath;

    pub const DIR: HostPath = HostPath::new("/opt/openshift");
    /// Written by post-pivot from `raw_nm_state_config`, read by nmstatectl.
    pub const NMSTATE: &str = "nmstate.yaml";
    /// Written by post-pivot for recert (`use_key_rules`, `use_cert_rules`).
    pub const KUBECONFIG_CRYPTO_DIR: &str = "kubeconfig-crypto";
    /// Written by post-pivot, read by recert (`RECERT_CONFIG` env).
    pub const RECERT_CONFIG: &str = "recert_config.json";
    /// Written by post-pivot's SSH step, applied with the manifests.
    pub const SSH_MASTER_MACHINE_CONFIG: &str =
        "cluster-configuration/manifests/99-master-ssh.json";
    pub const SSH_WORKER_MACHINE_CONFIG: &str =
        "cluster-configuration/manifests/99-worker-ssh.json";
}

/// lca-cli's RunOnce markers: `<step>.done` in `/opt/openshift`, created
/// empty after the step succeeded; a step whose marker exists is skipped.
/// sprout writes and honours the same names, so a run lca-cli started can be
/// finished by sprout and the other way round.
pub mod done_markers {
    pub const SET_SSH_KEY: &str = "setSSHKey";
    pub const PULL_SECRET: &str = "pull-secret";
    pub const APPLY_STATIC_NETWORK: &str = "apply-static-network";
    pub const RECERT: &str = "recert";
    pub const SET_CLUSTER_ID: &str = "set_cluster_id";
    pub const SET_NODE_LABELS: &str = "set_node_labels";
    pub const RECOVER_LVM_DEVICES: &str = "recover_lvm_devices";
    /// Every marker, in step order.
    pub const ALL: &[&str] = &[
        SET_SSH_KEY,
        PULL_SECRET,
        APPLY_STATIC_NETWORK,
        RECERT,
        SET_CLUSTER_ID,
        SET_NODE_LABELS,
        RECOVER_LVM_DEVICES,
    ];
    pub const SUFFIX: &str = ".done";

    /// The marker's file name, e.g. `recert.done`.
    pub fn file_name(step: &str) -> String {
        format!("{step}{SUFFIX}")
    }
}

/// Files on the live ISO, under `/var/tmp`. The installation ISO's Ignition
/// config (written by `create image`) carries the first five; `ibi` (lca-cli
/// or sprout) reads them and writes the seed copies.
pub mod live_iso {
    use super::HostPath;

    /// `ibi`'s input (compact JSON + newline, 0600).
    pub const IBI_CONFIGURATION: HostPath = HostPath::new("/var/tmp/ibi-configuration.json");
    /// The pull secret `ibi` pulls the seed and precaches with (0600).
    pub const PULL_SECRET: HostPath = HostPath::new("/var/tmp/pull-secret.json");
    /// The user's post-deployment script (0755), run by `ibi` after precaching.
    pub const POST_SCRIPT: HostPath = HostPath::new("/var/tmp/post.sh");
    /// nmstate for the live system, applied by `network-config.service`.
    pub const NETWORK_CONFIG: HostPath = HostPath::new("/var/tmp/network-config.yaml");
    /// The install script the install unit runs.
    pub const INSTALL_SCRIPT: HostPath =
        HostPath::new("/usr/local/bin/install-rhcos-and-restore-seed.sh");
    /// The seed's `containers.list`, copied by `ibi` for the precache.
    pub const CONTAINERS_LIST: HostPath = HostPath::new("/var/tmp/containers.list");
    /// The seed's `manifest.json`, copied by `ibi` for the precache.
    pub const SEED_MANIFEST: HostPath = HostPath::new("/var/tmp/manifest.json");
    /// Precache progress, written by `ibi` after each image.
    pub const PRECACHE_STATUS: HostPath =
        HostPath::new("/var/lib/lca/workspace/precache_status.json");
    /// lca-cli's container-mode root; live-ISO copies go below it when it exists.
    pub const CONTAINER_MODE_ROOT: HostPath = HostPath::new("/host");
}

/// The seed image (made by `lca-cli create`, read by `seed inspect`, `ibi`
/// and `Seed::open`).
pub mod seed_image {
    /// The seed format version label (`SeedFormatVersion`).
    pub const FORMAT_LABEL: &str = "com.openshift.lifecycle-agent.seed_format_version";
    /// The label holding the seed's `manifest.json` bytes (SeedClusterInfo).
    pub const CLUSTER_INFO_LABEL: &str = "com.openshift.lifecycle-agent.seed_cluster_info";
    /// The format version lca-cli writes.
    pub const FORMAT_VERSION: u32 = 4;

    // Files at the image root (lifecycle-agent.md §1.2).
    /// The LCA binary (the installer script copies it out of the seed).
    pub const LCA_CLI: &str = "lca-cli";
    /// SeedClusterInfo JSON; same bytes as [`CLUSTER_INFO_LABEL`].
    pub const MANIFEST: &str = "manifest.json";
    /// Images to precache, one a line, no trailing newline.
    pub const CONTAINERS_LIST: &str = "containers.list";
    /// `rpm-ostree status -v --json`: the booted deployment.
    pub const RPM_OSTREE: &str = "rpm-ostree.json";
    /// The MachineConfig: kernel arguments and FIPS.
    pub const MCO_CONFIG: &str = "mco-currentconfig.json";
    /// `/etc` paths the seed deleted, one a line.
    pub const ETC_DELETIONS: &str = "etc.deletions";
    /// The seed-creation recert config (not used by IBI).
    pub const RECERT_CONFIG: &str = "recert_config.json";
    /// The seed's `/ostree/repo`, members `./…`.
    pub const OSTREE_TGZ: &str = "ostree.tgz";
    /// The seed's `/var`, members `var/…`.
    pub const VAR_TGZ: &str = "var.tgz";
    /// The seed's changed `/etc` files, members `etc/…`.
    pub const ETC_TGZ: &str = "etc.tgz";
    /// `ostree-<checksum>.<serial>.origin`: the booted deployment's origin.
    pub const ORIGIN_PREFIX: &str = "ostree-";
    pub const ORIGIN_SUFFIX: &str = ".origin";

    /// The origin file of the deployment `<checksum>.<serial>`.
    pub fn origin_file(deployment: &str) -> String {
        format!("{ORIGIN_PREFIX}{deployment}{ORIGIN_SUFFIX}")
    }

    /// Whether a root file name is an origin file.
    pub fn is_origin_file(name: &str) -> bool {
        name.starts_with(ORIGIN_PREFIX) && name.ends_with(ORIGIN_SUFFIX)
    }

    // Members inside the tarballs that the installed node relies on.
    /// SeedClusterInfo, read by post-pivot at `/var/seed_data/manifest.json`.
    pub const VAR_SEED_MANIFEST: &str = "var/seed_data/manifest.json";
    /// The post-pivot agent, `/usr/local/bin/lca-cli` on the node.
    pub const VAR_LCA_CLI: &str = "var/usrlocal/bin/lca-cli";
    /// The first-boot unit, enabled in the seed.
    pub const ETC_INSTALLATION_UNIT: &str = "etc/systemd/system/installation-configuration.service";
    /// The seed's container-storage mount, whose `What=` names the extra
    /// partition.
    pub const ETC_CONTAINERS_MOUNT: &str = "etc/systemd/system/var-lib-containers.mount";
}

/// What the restored seed holds on the installed node (read by post-pivot).
pub mod seed_data {
    use super::HostPath;

    /// Written by the seed's `var.tgz`; removed by post-pivot at the end.
    pub const DIR: HostPath = HostPath::new("/var/seed_data");
    /// The seed's SeedClusterInfo.
    pub const MANIFEST: HostPath = HostPath::new("/var/seed_data/manifest.json");
}

/// Partition labels and container storage (ibi writes the partition; the
/// seed's `var-lib-containers.mount` mounts it).
pub mod partitions {
    /// The default `extraPartitionLabel` (installer and lca-cli).
    pub const DEFAULT_EXTRA_PARTITION_LABEL: &str = "var-lib-containers";
    /// RHCOS partition labels `ibi` mounts through `/dev/disk/by-partlabel`.
    pub const ROOT_LABEL: &str = "root";
    pub const BOOT_LABEL: &str = "boot";
    /// Where `ibi` mounts the target's root (the sysroot of every ostree call).
    pub const SYSROOT: &str = "/mnt";
    /// Container storage, on the extra partition.
    pub const CONTAINER_STORAGE: &str = "/var/lib/containers";
}

/// systemd units of the contract.
pub mod units {
    /// The live ISO's install unit (installation ISO, enabled).
    pub const INSTALL_RHCOS: &str = "install-rhcos-and-restore-seed.service";
    /// The live ISO's network unit (applies `/var/tmp/network-config.yaml`).
    pub const NETWORK_CONFIG: &str = "network-config.service";
    /// The seed's first-boot unit running post-pivot; post-pivot disables it
    /// when done.
    pub const INSTALLATION_CONFIGURATION: &str = "installation-configuration.service";
    /// The seed's init monitor (a no-op in IBI).
    pub const LCA_INIT_MONITOR: &str = "lca-init-monitor.service";
    pub const KUBELET: &str = "kubelet.service";
    pub const NETWORK_MANAGER: &str = "NetworkManager.service";
    pub const DNSMASQ: &str = "dnsmasq.service";
    pub const CHRONYD: &str = "chronyd";
    pub const NODEIP_CONFIGURATION: &str = "nodeip-configuration";
}

/// Node files post-pivot writes or reads (lifecycle-agent.md §3.4, §5).
pub mod node {
    use super::HostPath;

    /// The pull secret kubelet uses; podman's authfile for recert and etcd.
    pub const KUBELET_PULL_SECRET: HostPath = HostPath::new("/var/lib/kubelet/config.json");
    /// The admin kubeconfig post-pivot talks to the API with.
    pub const LB_EXT_KUBECONFIG: HostPath = HostPath::new(
        "/etc/kubernetes/static-pod-resources/kube-apiserver-certs/secrets/node-kubeconfigs/lb-ext.kubeconfig",
    );
    /// The static etcd pod; its `etcd` container's image runs the temporary etcd.
    pub const ETCD_POD: HostPath = HostPath::new("/etc/kubernetes/manifests/etcd-pod.yaml");
    pub const ETCD_DATA: HostPath = HostPath::new("/var/lib/etcd");
    pub const SSH_EARLY_ACCESS: HostPath =
        HostPath::new("/home/core/.ssh/authorized_keys.d/ib-early-access");
    pub const NODEIP_HINT: HostPath = HostPath::new("/etc/default/nodeip-configuration");
    pub const PRIMARY_IP: HostPath = HostPath::new("/run/nodeip-configuration/primary-ip");
    pub const KUBELET_NODENET: HostPath =
        HostPath::new("/etc/systemd/system/kubelet.service.d/20-nodenet.conf");
    pub const DNSMASQ_OVERRIDES: HostPath =
        HostPath::new("/etc/default/sno_dnsmasq_configuration_overrides");
    pub const NM_CONNECTIONS: HostPath = HostPath::new("/etc/NetworkManager/system-connections");
    pub const USER_CA_BUNDLE: HostPath =
        HostPath::new("/etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt");
    pub const LVM_DEVICES: HostPath = HostPath::new("/etc/lvm/devices/system.devices");
}

/// recert (run by post-pivot in a container).
pub mod recert {
    use super::HostPath;

    /// Written by recert; its presence before a run means an earlier run failed.
    pub const SUMMARY: HostPath = HostPath::new("/var/tmp/recert-summary.yaml");
    /// The temporary etcd's container and member name, and its endpoint.
    pub const ETCD_CONTAINER: &str = "recert_etcd";
    pub const ETCD_MEMBER: &str = "editor";
    pub const ETCD_ENDPOINT: &str = "localhost:2379";
    pub const CONTAINER: &str = "recert";
    /// The default recert image (`RELATED_IMAGE_RECERT_IMAGE`).
    pub const DEFAULT_IMAGE: &str = "quay.io/edge-infrastructure/recert:v0";
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST_PATHS: &[HostPath] = &[
        work_dir::DIR,
        live_iso::IBI_CONFIGURATION,
        live_iso::PULL_SECRET,
        live_iso::POST_SCRIPT,
        live_iso::NETWORK_CONFIG,
        live_iso::INSTALL_SCRIPT,
        live_iso::CONTAINERS_LIST,
        live_iso::SEED_MANIFEST,
        live_iso::PRECACHE_STATUS,
        live_iso::CONTAINER_MODE_ROOT,
        seed_data::DIR,
        seed_data::MANIFEST,
        node::KUBELET_PULL_SECRET,
        node::LB_EXT_KUBECONFIG,
        node::ETCD_POD,
        node::ETCD_DATA,
        node::SSH_EARLY_ACCESS,
        node::NODEIP_HINT,
        node::PRIMARY_IP,
        node::KUBELET_NODENET,
        node::DNSMASQ_OVERRIDES,
        node::NM_CONNECTIONS,
        node::USER_CA_BUNDLE,
        node::LVM_DEVICES,
        recert::SUMMARY,
    ];

    #[test]
    fn host_paths_are_absolute_and_join_under_a_root() {
        for p in HOST_PATHS {
            assert!(Path::new(p.absolute()).is_absolute(), "{p}");
            assert!(!p.relative().starts_with('/'), "{p}");
        }
        assert_eq!(
            live_iso::POST_SCRIPT.under(Path::new("/tmp/r")),
            Path::new("/tmp/r/var/tmp/post.sh")
        );
    }

    #[test]
    fn medium_paths_are_relative_and_under_their_directories() {
        for p in [
            config_iso::MANIFEST,
            config_iso::MANIFESTS_DIR,
            config_iso::MIRROR_SET,
            config_iso::CERTMANAGER_CRYPTO_DIR,
            work_dir::SSH_MASTER_MACHINE_CONFIG,
            work_dir::SSH_WORKER_MACHINE_CONFIG,
        ] {
            assert!(
                p.starts_with(&format!("{}/", config_iso::CONFIG_DIR)),
                "{p}"
            );
        }
        assert!(config_iso::MIRROR_SET.starts_with(config_iso::MANIFESTS_DIR));
        assert_eq!(config_iso::LABELS[0], config_iso::LABEL);
    }

    #[test]
    fn names_derived_as_upstream_names_them() {
        assert_eq!(done_markers::file_name(done_markers::RECERT), "recert.done");
        assert_eq!(done_markers::ALL.len(), 7);
        assert_eq!(
            seed_image::origin_file("ed4ab19c.1"),
            "ostree-ed4ab19c.1.origin"
        );
        assert!(seed_image::is_origin_file("ostree-ed4ab19c.1.origin"));
        assert!(!seed_image::is_origin_file("ostree.tgz"));
    }
}
