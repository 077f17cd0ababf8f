//! recert fails: the temporary etcd is stopped, the failure is terminal
//! (no rerun of a recert that may have changed part of the cluster, W3),
//! the summary is kept, and the secrets sprout wrote are removed (W14).
//!
//! Real: the engine, the files, Debian's `etcd` (Binary launcher).
//! Stand-ins (tests/postpivot/standin.sh): systemctl, hostnamectl,
//! nmstatectl, update-ca-trust, chown and podman, whose recert writes a
//! summary with an `error` and exits 1 — no recert image exists here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "postpivot/node.rs"]
mod node;
mod support;

use sprout::host::etcd::{Binary, Ports};
use sprout::postpivot::flow::{self, Options};
use sprout::postpivot::steps::EtcdChoice;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_failed_recert_stops_etcd_and_is_terminal_without_the_secrets() {
    if !support::have("etcd", "recert failure") || !support::have("etcdctl", "recert failure") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("node");
    node::full(&root);
    let bin = node::standin_dir(d.path());
    let ports = Ports {
        client: free_port(),
        peer: free_port(),
    };
    // SAFETY: the only test of this crate; no other thread reads the
    // environment while it is changed.
    unsafe {
        std::env::set_var("PATH", node::path_with(&bin));
        std::env::set_var("STANDIN_LOG", d.path().join("commands.log"));
        std::env::set_var("STANDIN_ROOT", &root);
        std::env::set_var("STANDIN_ETCD", ports.client_url());
        std::env::set_var("STANDIN_RECERT_FAILS", "etcd key not found");
    }
    let mut opts = Options::new(root.clone());
    opts.etcd = EtcdChoice::Binary(Binary {
        program: "etcd".into(),
        data_dir: d.path().join("etcd-data"),
        log_file: d.path().join("etcd.log"),
        extra_args: Vec::new(),
    });
    opts.etcd_ports = ports;
    let e = flow::run_with(
        &opts,
        Box::new(node::NotReached),
        Box::new(node::NotReached),
    )
    .unwrap_err();
    let text = format!("{e:#}");
    assert!(flow::is_terminal(&e), "{text}");
    assert!(text.contains("etcd key not found"), "{text}");
    assert!(
        !sprout::host::etcd::listening(ports.client),
        "etcd still runs"
    );
    let wd = root.join("opt/openshift");
    assert!(!wd.join("recert_config.json").exists());
    assert!(!wd.join("kubeconfig-crypto").exists());
    assert!(!wd.join("nmstate.yaml").exists());
    assert!(!wd.join("recert.done").exists());
    assert!(root.join("var/tmp/recert-summary.yaml").exists());
    let status: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("var/lib/sprout/post-pivot-status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(status["state"], "terminal", "{status}");
    assert_eq!(status["current_step"], "recert", "{status}");
    // The next start does not rerun recert by itself.
    let again = flow::run_with(
        &opts,
        Box::new(node::NotReached),
        Box::new(node::NotReached),
    )
    .unwrap_err();
    assert!(flow::is_terminal(&again), "{again:#}");
}
