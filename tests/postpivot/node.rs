//! A node tree laid out like an installed seed at first boot, for the
//! post-pivot tests: the seed's facts, the copied configuration, the etcd
//! static pod, the kernel hostname (`etc/hostname` under `--root`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sprout::api::install_config::Proxy;
use sprout::api::seed_cluster_info::SeedClusterInfo;
use sprout::api::seed_reconfig::SeedReconfiguration;

pub const PULL_SECRET: &str = r#"{"auths":{"quay.io":{"auth":"dXNlcjpwYXNz"}}}"#;

/// The seed of the golden scenarios (src/postpivot/recert_config_tests.rs).
pub fn seed() -> SeedClusterInfo {
    SeedClusterInfo {
        seed_cluster_ocp_version: "4.18.0".into(),
        base_domain: "example.com".into(),
        cluster_name: "seed".into(),
        node_ips: vec!["192.0.2.10".into()],
        sno_hostname: "seed-node".into(),
        recert_image_pull_spec: "quay.io/edge-infrastructure/recert:v0".into(),
        service_networks: vec!["172.30.0.0/16".into()],
        cluster_networks: vec!["10.128.0.0/14".into()],
        ingress_certificate_cn: "ingress-operator@1700000000".into(),
        machine_networks: vec!["192.0.2.0/24".into()],
        ..Default::default()
    }
}

/// Real key material (validation parses every key and certificate);
/// recert_config.json only names the files, so the goldens hold.
fn with_crypto(mut r: SeedReconfiguration) -> SeedReconfiguration {
    use sprout::create::crypto;
    let api = crypto::generate_api_crypto().unwrap();
    let ingress = crypto::generate_ingress_signer().unwrap();
    let k = &mut r.kubeconfig_crypto_retention;
    k.kube_api_crypto
        .serving_crypto
        .localhost_signer_private_key = api.localhost_signer.key_pem;
    k.kube_api_crypto
        .serving_crypto
        .service_network_signer_private_key = api.service_network_signer.key_pem;
    k.kube_api_crypto
        .serving_crypto
        .loadbalancer_external_signer_private_key = api.lb_signer.key_pem;
    k.kube_api_crypto.client_auth_crypto.admin_ca_certificate =
        api.admin_kubeconfig_signer.cert_pem;
    k.ingress_crypto.ingress_ca = ingress.key_pem;
    r
}

/// The seed's own identity: nothing to rename.
pub fn unchanged() -> SeedReconfiguration {
    with_crypto(SeedReconfiguration {
        api_version: 1,
        base_domain: "example.com".into(),
        cluster_name: "seed".into(),
        cluster_id: "7e4c5e2a-3b1f-4d2e-9f0a-1c2b3d4e5f60".into(),
        hostname: "seed-node".into(),
        node_ips: vec!["192.0.2.10".into()],
        machine_networks: vec!["192.0.2.0/24".into()],
        pull_secret: PULL_SECRET.into(),
        ..Default::default()
    })
}

/// The golden scenarios that need no key material: name, seed, reconfig.
pub fn scenarios() -> Vec<(&'static str, SeedClusterInfo, SeedReconfiguration)> {
    let mut v = vec![("no-changes", seed(), unchanged())];
    let mut r = unchanged();
    r.hostname = "sno-1".into();
    r.cluster_name = "sno".into();
    r.base_domain = "lab.example.org".into();
    r.infra_id = "sno-x7k2p".into();
    r.kubeadmin_password_hash =
        "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy".into();
    r.kubeconfig_crypto_retention
        .ingress_crypto
        .ingress_certificate_cn = "ingress-operator@1800000000".into();
    r.chrony_config = "\npool 0.rhel.pool.ntp.org iburst\ndriftfile /var/lib/chrony/drift\n\
                       makestep 1.0 3\nrtcsync\nlogdir /var/log/chrony\nserver 192.0.2.1 iburst"
        .into();
    v.push(("hostname", seed(), r));
    let mut r = unchanged();
    r.node_ips = vec!["198.51.100.20".into()];
    r.machine_networks = vec!["198.51.100.0/24".into()];
    v.push(("ipv4", seed(), r));
    let mut s = seed();
    s.node_ips = vec!["192.0.2.10".into(), "2001:db8::10".into()];
    s.machine_networks = vec!["192.0.2.0/24".into(), "2001:db8::/64".into()];
    let mut r = unchanged();
    r.node_ips = vec!["198.51.100.20".into(), "2001:db8:1::20".into()];
    r.machine_networks = vec!["198.51.100.0/24".into(), "2001:db8:1::/64".into()];
    v.push(("dual-stack", s, r));
    let mut s = seed();
    s.has_proxy = true;
    let mut r = unchanged();
    let url = "http://proxy.example.com:3128".to_string();
    r.proxy = Some(Proxy {
        http_proxy: url.clone(),
        https_proxy: url,
        no_proxy: ".corp.example.com".into(),
    });
    r.install_config = "apiVersion: v1\nmetadata:\n  name: seed\n# a&b <c>\nproxy:\n  \
                        httpProxy: http://proxy.example.com:3128\n"
        .into();
    v.push(("proxy", s, r));
    v
}

pub fn expected_recert(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/expected/recert/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// Lays the tree out under `root`.
pub fn build(root: &Path, seed: &SeedClusterInfo, reconfig: &SeedReconfiguration) {
    write(
        root,
        "var/seed_data/manifest.json",
        &serde_json::to_vec(seed).unwrap(),
    );
    write(
        root,
        "opt/openshift/cluster-configuration/manifest.json",
        &serde_json::to_vec(reconfig).unwrap(),
    );
    std::fs::create_dir_all(root.join("opt/openshift/cluster-configuration/manifests")).unwrap();
    write(
        root,
        "etc/kubernetes/manifests/etcd-pod.yaml",
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\nspec:\n  containers:\n  - name: etcd\n    image: quay.io/openshift-release-dev/etcd@sha256:0000\n",
    );
    write(
        root,
        "etc/hostname",
        format!("{}\n", seed.sno_hostname).as_bytes(),
    );
    for d in ["var/tmp", "var/lib/etcd", "home/core/.ssh", "etc/default"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
}

/// Every path below `dir` with its mode and bytes (directories: no bytes).
pub fn manifest(dir: &Path) -> BTreeMap<PathBuf, (u32, Option<Vec<u8>>)> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (u32, Option<Vec<u8>>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let mode = meta.permissions().mode();
            if meta.is_dir() {
                out.insert(rel, (mode, None));
                walk(root, &e.path(), out);
            } else {
                out.insert(rel, (mode, Some(std::fs::read(e.path()).unwrap())));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// The recert_config.json a `--dry-run` printed.
pub fn printed_recert_config(stdout: &str) -> String {
    let (_, rest) = stdout
        .split_once("--- /opt/openshift/recert_config.json (0600, no trailing newline) ---\n")
        .unwrap_or_else(|| panic!("no recert_config.json in:\n{stdout}"));
    rest.strip_suffix('\n').unwrap().to_string()
}

/// The tools `tests/postpivot/standin.sh` stands in for.
pub const STANDINS: &[&str] = &[
    "hostnamectl",
    "systemctl",
    "nmstatectl",
    "update-ca-trust",
    "chown",
    "pvscan",
    "podman",
];

/// A directory of stand-ins (symlinks to the recording script), to put
/// first in PATH.
pub fn standin_dir(dir: &Path) -> PathBuf {
    let bin = dir.join("standin-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/postpivot/standin.sh");
    for tool in STANDINS {
        std::os::unix::fs::symlink(&script, bin.join(tool)).unwrap();
    }
    bin
}

/// PATH with the stand-ins first.
pub fn path_with(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The recorded commands, one a line, with the root replaced by `ROOT`.
pub fn recorded(log: &Path, root: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| l.replace(root.to_str().unwrap(), "ROOT"))
        .collect()
}

pub const SSH_PUBLIC: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPSPEBq7ibn6Sz24vB9xhFx24kZG0nsrNmDZuU1Vml5u test1";

/// A configuration that exercises every host step: hostname and cluster
/// rename, SSH key, nmstate, keyfiles, chrony, LVM devices, node labels.
pub fn full(root: &Path) -> (SeedClusterInfo, SeedReconfiguration) {
    let (_, seed, mut r) = scenarios().swap_remove(1);
    r.ssh_key = SSH_PUBLIC.into();
    r.raw_nm_state_config = "interfaces: []\n".into();
    r.node_labels.insert("site".into(), "lab-1".into());
    r.node_labels
        .insert("node-role.kubernetes.io/master".into(), String::new());
    build(root, &seed, &r);
    let wd = root.join("opt/openshift");
    write(
        &wd,
        "network-configuration/system-connections/eth0.nmconnection",
        b"[connection]\nid=eth0\n",
    );
    write(&wd, "lvm-configuration/system.devices", b"# LVM devices\n");
    write(
        &wd,
        "extra-manifests/ns.yaml",
        b"apiVersion: v1\nkind: Namespace\n",
    );
    (seed, r)
}

/// The cluster side and the manifests of a run that must stop before the
/// API wait (a refusal, a recert failure, SIGTERM during recert): any call
/// is a test failure.
pub struct NotReached;

impl sprout::postpivot::cluster::Cluster for NotReached {
    fn api_answers(&self) -> anyhow::Result<bool> {
        unreachable!("the run went on to the API wait")
    }
    fn remove_seed_mirrors_and_catalogs(&self) -> anyhow::Result<()> {
        unreachable!("the run went on to the seed mirrors")
    }
    fn rewrite_cvo_registry(
        &self,
        _: &SeedClusterInfo,
        _: &SeedReconfiguration,
    ) -> anyhow::Result<()> {
        unreachable!("the run went on to the CVO registry")
    }
    fn set_cluster_id(&self, _: &str) -> anyhow::Result<()> {
        unreachable!("the run went on to the cluster ID")
    }
    fn set_node_labels(
        &self,
        _: &BTreeMap<String, String>,
        _: std::time::Duration,
    ) -> anyhow::Result<()> {
        unreachable!("the run went on to the node labels")
    }
}

impl sprout::postpivot::cluster::ManifestApplier for NotReached {
    fn apply_dir(&self, _: &Path) -> anyhow::Result<()> {
        unreachable!("the run went on to the manifests")
    }
}
