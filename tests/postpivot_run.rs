//! A whole post-pivot run on a node tree, through the library.
//!
//! Real: the step engine, every file written under the root, the markers,
//! the status file, and the temporary etcd (Debian's `etcd` through the
//! Binary launcher of `host::etcd`, on loopback ports of its own) that the
//! recert stand-in writes into with `etcdctl`.
//! Stand-ins (tests/postpivot/standin.sh, first in PATH): hostnamectl,
//! systemctl, nmstatectl, update-ca-trust, chown, pvscan and podman (the
//! recert container) — this machine has no systemd as PID 1, no
//! NetworkManager, no `core` user and no recert image. The cluster side
//! (API wait, mirror cleanup, manifests, CVO, cluster ID, labels) is a
//! recording `Cluster`/`ManifestApplier`: no kube-apiserver can run here
//! (tests/postpivot_kube_run.rs runs the production kube-rs side against
//! the API test server instead).
//! The vm-tests scenario does all of these for real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "postpivot/node.rs"]
mod node;
mod support;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Result;
use sprout::api::seed_cluster_info::SeedClusterInfo;
use sprout::api::seed_reconfig::SeedReconfiguration;
use sprout::host::etcd::{Binary, Ports};
use sprout::postpivot::cluster::{Cluster, ManifestApplier};
use sprout::postpivot::flow::{self, Options};
use sprout::postpivot::steps::EtcdChoice;

type Calls = Rc<RefCell<Vec<String>>>;

struct FakeCluster(Calls);

impl Cluster for FakeCluster {
    fn api_answers(&self) -> Result<bool> {
        self.0.borrow_mut().push("api".into());
        Ok(true)
    }
    fn remove_seed_mirrors_and_catalogs(&self) -> Result<()> {
        self.0.borrow_mut().push("remove-seed-mirrors".into());
        Ok(())
    }
    fn rewrite_cvo_registry(&self, _: &SeedClusterInfo, _: &SeedReconfiguration) -> Result<()> {
        self.0.borrow_mut().push("cvo".into());
        Ok(())
    }
    fn set_cluster_id(&self, id: &str) -> Result<()> {
        self.0.borrow_mut().push(format!("cluster-id {id}"));
        Ok(())
    }
    fn set_node_labels(&self, labels: &BTreeMap<String, String>, _: Duration) -> Result<()> {
        self.0.borrow_mut().push(format!("labels {labels:?}"));
        Ok(())
    }
}

struct FakeApplier(Calls, std::path::PathBuf);

impl ManifestApplier for FakeApplier {
    fn apply_dir(&self, dir: &Path) -> Result<()> {
        let rel = dir.strip_prefix(&self.1).unwrap().display().to_string();
        self.0.borrow_mut().push(format!("apply {rel}"));
        Ok(())
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_full_run_writes_the_node_files_runs_the_commands_in_order_and_cleans_up() {
    if !support::have("etcd", "full post-pivot run")
        || !support::have("etcdctl", "full post-pivot run")
    {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("node");
    let (_, reconfig) = node::full(&root);
    let bin = node::standin_dir(d.path());
    let log = d.path().join("commands.log");
    let ports = Ports {
        client: free_port(),
        peer: free_port(),
    };
    // SAFETY: the only test of this crate; no other thread reads the
    // environment while it is changed.
    unsafe {
        std::env::set_var("PATH", node::path_with(&bin));
        std::env::set_var("STANDIN_LOG", &log);
        std::env::set_var("STANDIN_ROOT", &root);
        std::env::set_var("STANDIN_ETCD", ports.client_url());
    }
    let mut opts = Options::new(root.clone());
    opts.etcd = EtcdChoice::Binary(Binary {
        program: "etcd".into(),
        data_dir: d.path().join("etcd-data"),
        log_file: d.path().join("etcd.log"),
        extra_args: Vec::new(),
    });
    opts.etcd_ports = ports;
    let calls: Calls = Rc::default();
    // First up to the last RunOnce step: upstream's markers are there.
    opts.until = Some("node-labels".into());
    flow::run_with(
        &opts,
        Box::new(FakeCluster(calls.clone())),
        Box::new(FakeApplier(calls.clone(), root.clone())),
    )
    .unwrap();
    for m in [
        "setSSHKey",
        "pull-secret",
        "apply-static-network",
        "recert",
        "set_cluster_id",
        "set_node_labels",
    ] {
        assert!(
            root.join(format!("opt/openshift/{m}.done")).exists(),
            "no {m}.done"
        );
    }
    assert!(!root.join("opt/openshift/recover_lvm_devices.done").exists());
    let stopped =
        std::fs::read_to_string(root.join("var/lib/sprout/post-pivot-status.json")).unwrap();
    assert!(stopped.contains(r#""state": "stopped""#), "{stopped}");
    // Then the rest: what is done is not done again.
    opts.until = None;
    let result = flow::run_with(
        &opts,
        Box::new(FakeCluster(calls.clone())),
        Box::new(FakeApplier(calls.clone(), root.clone())),
    );
    let status = std::fs::read_to_string(root.join("var/lib/sprout/post-pivot-status.json"))
        .unwrap_or_default();
    assert!(result.is_ok(), "{:#}\n{status}", result.unwrap_err());

    // Files on the node, with their modes.
    let key = root.join("home/core/.ssh/authorized_keys.d/ib-early-access");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), node::SSH_PUBLIC);
    assert_eq!(mode(&key), 0o600);
    let ps = root.join("var/lib/kubelet/config.json");
    assert_eq!(std::fs::read_to_string(&ps).unwrap(), node::PULL_SECRET);
    assert_eq!(mode(&ps), 0o600);
    assert_eq!(
        std::fs::read_to_string(
            root.join("etc/NetworkManager/system-connections/eth0.nmconnection")
        )
        .unwrap(),
        "[connection]\nid=eth0\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/default/nodeip-configuration")).unwrap(),
        "KUBELET_NODEIP_HINT=192.0.2.0"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/default/sno_dnsmasq_configuration_overrides"))
            .unwrap(),
        "SNO_CLUSTER_NAME_OVERRIDE=sno\nSNO_BASE_DOMAIN_OVERRIDE=lab.example.org\nSNO_DNSMASQ_IP_OVERRIDE=192.0.2.10"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "sno-1\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/chrony.conf")).unwrap(),
        "server 192.0.2.1 iburst\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/lvm/devices/system.devices")).unwrap(),
        "# LVM devices\n"
    );
    // The recert summary is kept; the working dir and seed data are gone.
    assert!(root.join("var/tmp/recert-summary.yaml").exists());
    assert!(!root.join("opt/openshift").exists());
    assert!(!root.join("var/seed_data").exists());
    // The stand-in recert wrote into the real temporary etcd, which is
    // stopped again.
    assert!(
        !sprout::host::etcd::listening(ports.client),
        "etcd still runs"
    );

    let got = node::recorded(&log, &root);
    let want = [
        "chown core ROOT/home/core/.ssh/authorized_keys.d/ib-early-access".to_string(),
        "nmstatectl apply ROOT/opt/openshift/nmstate.yaml".into(),
        "systemctl restart NetworkManager.service".into(),
        "hostnamectl set-hostname sno-1".into(),
        "systemctl restart dnsmasq.service".into(),
        "update-ca-trust ".into(),
        "podman image exists quay.io/edge-infrastructure/recert:v0".into(),
        "podman run --rm --network=host --privileged --replace --name recert -v /etc:/host-etc \
             -v /etc/ssh:/ssh -v /etc/kubernetes:/kubernetes -v /var/lib/kubelet:/kubelet \
             -v /var/tmp:/var/tmp -v /etc/machine-config-daemon:/machine-config-daemon \
             -v /etc/pki:/pki -e RECERT_CONFIG=/opt/openshift/recert_config.json --authfile \
             /var/lib/kubelet/config.json -v /opt/openshift:/opt/openshift \
             quay.io/edge-infrastructure/recert:v0"
            .into(),
        "update-ca-trust ".into(),
        "systemctl restart chronyd".into(),
        "systemctl enable kubelet --now".into(),
        "pvscan --cache --activate ay".into(),
        "systemctl disable installation-configuration.service".into(),
    ];
    assert_eq!(got, want);
    assert_eq!(
        *calls.borrow(),
        [
            "api".to_string(),
            "remove-seed-mirrors".into(),
            "apply opt/openshift/cluster-configuration/manifests".into(),
            "apply opt/openshift/extra-manifests".into(),
            "cvo".into(),
            format!("cluster-id {}", reconfig.cluster_id),
            r#"labels {"site": "lab-1"}"#.into(),
            // The second start checks the API again (it is not skipped).
            "api".into(),
        ]
    );
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["state"], "succeeded", "{status}");
    let steps: Vec<&str> = status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), sprout::postpivot::steps::plan().steps().len());
    assert!(!root.join("etc/issue.d/50-sprout-post-pivot.issue").exists());
}
