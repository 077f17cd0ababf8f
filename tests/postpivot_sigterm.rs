//! SIGTERM during the flow (a shutdown while recert runs against the
//! temporary etcd): the run ends `interrupted` in the status file, the
//! temporary etcd is stopped, recert is stopped, and the secrets sprout
//! wrote (recert_config.json, kubeconfig-crypto/, nmstate.yaml) are gone
//! while the node is down (W14); the next start resumes.
//!
//! Real: the engine, the files, the signal, Debian's `etcd` (Binary
//! launcher). Stand-ins (tests/postpivot/standin.sh): the host tools, and
//! podman, whose recert holds until `podman stop recert` — no recert
//! image exists here. The cluster side is never reached.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "postpivot/node.rs"]
mod node;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sprout::host::etcd::{Binary, Ports, listening};
use sprout::postpivot::flow::{self, Options};
use sprout::postpivot::steps::EtcdChoice;

const CHILD_ENV: &str = "SPROUT_POSTPIVOT_SIGTERM_CHILD";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn sigterm_during_recert_ends_interrupted_with_etcd_stopped_and_secrets_removed() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        return child(Path::new(&dir));
    }
    if !support::have("etcd", "post-pivot SIGTERM")
        || !support::have("etcdctl", "post-pivot SIGTERM")
    {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("node");
    node::full(&root);
    let ports = Ports {
        client: free_port(),
        peer: free_port(),
    };
    std::fs::write(
        d.path().join("ports"),
        format!("{} {}", ports.client, ports.peer),
    )
    .unwrap();
    let bin = node::standin_dir(d.path());
    let hold = d.path().join("recert.pid");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigterm_during_recert_ends_interrupted_with_etcd_stopped_and_secrets_removed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, d.path())
        .env("PATH", node::path_with(&bin))
        .env("STANDIN_LOG", d.path().join("commands.log"))
        .env("STANDIN_ROOT", &root)
        .env("STANDIN_ETCD", ports.client_url())
        .env("STANDIN_RECERT_HOLD", &hold)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !hold.exists() {
        if start.elapsed() > Duration::from_secs(120) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "recert never started:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // recert runs: the temporary etcd answers, the secrets are written.
    assert!(listening(ports.client));
    let wd = root.join("opt/openshift");
    assert!(wd.join("recert_config.json").exists());
    assert!(wd.join("kubeconfig-crypto").exists());
    assert!(wd.join("nmstate.yaml").exists());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("stopped by SIGTERM"), "{stdout}");

    let status: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("var/lib/sprout/post-pivot-status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(status["state"], "interrupted", "{status}");
    assert_eq!(status["current_step"], "recert", "{status}");
    assert!(!listening(ports.client), "the temporary etcd still runs");
    assert!(!wd.join("recert_config.json").exists());
    assert!(!wd.join("kubeconfig-crypto").exists());
    assert!(!wd.join("nmstate.yaml").exists());
    // No console message: this is not a terminal failure.
    assert!(!root.join("etc/issue.d/50-sprout-post-pivot.issue").exists());
    // The configuration stays, so the next start resumes at recert.
    assert!(wd.join("cluster-configuration/manifest.json").exists());
    assert!(wd.join("setSSHKey.done").exists());
    assert!(!wd.join("recert.done").exists());
}

/// In the child: the flow up to recert, which holds until stopped.
fn child(dir: &Path) {
    let text = std::fs::read_to_string(dir.join("ports")).unwrap();
    let mut it = text.split_whitespace().map(|p| p.parse::<u16>().unwrap());
    let ports = Ports {
        client: it.next().unwrap(),
        peer: it.next().unwrap(),
    };
    let mut opts = Options::new(dir.join("node"));
    opts.etcd = EtcdChoice::Binary(Binary {
        program: "etcd".into(),
        data_dir: dir.join("etcd-data"),
        log_file: dir.join("etcd.log"),
        extra_args: Vec::new(),
    });
    opts.etcd_ports = ports;
    match flow::run_with(
        &opts,
        Box::new(node::NotReached),
        Box::new(node::NotReached),
    ) {
        Ok(_) => println!("child: no SIGTERM came"),
        Err(e) => println!("child: {e:#}"),
    }
}
