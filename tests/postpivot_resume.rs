//! `sprout post-pivot` killed with SIGKILL in the middle of a step (a
//! power cut), then started again: it resumes at that step and does not
//! redo the finished ones. Through the binary.
//!
//! Stand-ins (tests/postpivot/standin.sh, first in PATH): hostnamectl,
//! systemctl, nmstatectl, update-ca-trust, chown — this machine has no
//! systemd as PID 1 and no NetworkManager. The `systemctl restart
//! dnsmasq.service` stand-in sends the SIGKILL to sprout. Both runs stop
//! with `--until ca-trust`, before recert and the cluster side (covered by
//! tests/postpivot_run.rs); the vm-tests scenario resets a real guest
//! during recert.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "postpivot/node.rs"]
mod node;
mod support;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

#[test]
fn killed_during_a_step_the_next_start_resumes_there() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("node");
    node::full(&root);
    let bin = node::standin_dir(d.path());
    let log = d.path().join("commands.log");
    let run = |kill_on: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sprout"));
        c.args(["post-pivot", "--until", "ca-trust", "--root"])
            .arg(&root)
            .env("PATH", node::path_with(&bin))
            .env("STANDIN_LOG", &log)
            .env("STANDIN_ROOT", &root)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("STANDIN_KILL_ON");
        if let Some(k) = kill_on {
            c.env("STANDIN_KILL_ON", k);
        }
        c.output().unwrap()
    };
    let first = run(Some("systemctl restart dnsmasq.service"));
    assert_eq!(
        first.status.signal(),
        Some(9),
        "sprout was not killed: {}",
        support::stderr(&first)
    );
    let journal = || -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(root.join("var/lib/sprout/post-pivot-journal.json")).unwrap(),
        )
        .unwrap()
    };
    let step = |j: &serde_json::Value, id: &str| -> serde_json::Value {
        j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap_or(serde_json::Value::Null)
    };
    let j = journal();
    assert_eq!(step(&j, "dnsmasq")["state"], "running", "{j}");
    assert_eq!(step(&j, "hostname")["state"], "done", "{j}");
    let before = node::recorded(&log, &root).len();

    let second = run(None);
    assert!(second.status.success(), "{}", support::stderr(&second));
    let again: Vec<String> = node::recorded(&log, &root).split_off(before);
    // Resumed at dnsmasq: nothing before it ran again (markers, checks
    // and the journal say done), dnsmasq and ca-trust ran.
    assert_eq!(
        again,
        ["systemctl restart dnsmasq.service", "update-ca-trust "],
        "second start ran: {again:?}"
    );
    let j = journal();
    let dnsmasq = step(&j, "dnsmasq");
    assert_eq!(dnsmasq["state"], "done", "{j}");
    assert_eq!(dnsmasq["attempts"], 2, "{j}");
    assert!(
        dnsmasq["reason"]
            .as_str()
            .unwrap_or("")
            .contains("interrupted"),
        "{j}"
    );
    let status: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("var/lib/sprout/post-pivot-status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(status["state"], "stopped", "{status}");
    assert_eq!(status["attempt"], 2, "{status}");
}

/// W5: a failure that a restart might fix is retried by the unit, but the
/// last allowed start (`attempts`, 2 here from /etc/sprout/post-pivot.json)
/// ends in the terminal state: exit status 3 (`RestartPreventExitStatus`),
/// the reason in the status file and on the console (/etc/issue.d). The failing command is the real
/// `chown core …` of the SSH step: this machine has no user `core`.
#[test]
fn the_last_allowed_start_is_terminal_with_the_reason_on_the_console() {
    if sprout::host::command::Cmd::new("id")
        .arg("core")
        .run()
        .is_ok()
    {
        support::skip_or_fail(
            "terminal after the last start",
            "this machine has a user core",
        );
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("node");
    node::full(&root);
    std::fs::create_dir_all(root.join("etc/sprout")).unwrap();
    std::fs::write(
        root.join("etc/sprout/post-pivot.json"),
        r#"{"attempts": 2}"#,
    )
    .unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_sprout"))
            .args(["post-pivot", "--root"])
            .arg(&root)
            .env_remove("NOTIFY_SOCKET")
            .output()
            .unwrap()
    };
    let status = || -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(root.join("var/lib/sprout/post-pivot-status.json")).unwrap(),
        )
        .unwrap()
    };
    let first = run();
    assert_eq!(first.status.code(), Some(1), "{}", support::stderr(&first));
    assert_eq!(status()["state"], "failed");
    assert!(!root.join("etc/issue.d/50-sprout-post-pivot.issue").exists());
    let second = run();
    assert_eq!(
        second.status.code(),
        Some(3),
        "{}",
        support::stderr(&second)
    );
    let s = status();
    assert_eq!(s["state"], "terminal", "{s}");
    assert_eq!(s["current_step"], "ssh-key", "{s}");
    assert!(s["error"].to_string().contains("chown"), "{s}");
    let issue =
        std::fs::read_to_string(root.join("etc/issue.d/50-sprout-post-pivot.issue")).unwrap();
    assert!(issue.contains("at step ssh-key"), "{issue}");
    assert!(issue.contains("chown"), "{issue}");
    // A third start refuses at once instead of looping.
    let third = run();
    assert_eq!(third.status.code(), Some(3), "{}", support::stderr(&third));
    assert!(
        support::stderr(&third).contains("failed for good"),
        "{}",
        support::stderr(&third)
    );
}

/// Installer-made configurations have no `node_ips`: post-pivot starts
/// nodeip-configuration and waits, bounded, for `primary-ip` (W5); the
/// discovered IP goes into the dnsmasq overrides. Without it the wait ends
/// with what it waited for. Stand-in: systemctl (it writes what
/// nodeip-configuration would when STANDIN_NODEIP is set).
#[test]
fn node_ips_are_discovered_with_a_bounded_wait() {
    for discovered in [Some("192.0.2.10"), None] {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("node");
        let mut r = node::unchanged();
        r.node_ips.clear();
        node::build(&root, &node::seed(), &r);
        std::fs::create_dir_all(root.join("etc/sprout")).unwrap();
        std::fs::write(
            root.join("etc/sprout/post-pivot.json"),
            r#"{"primary_ip": 2, "announce_every": 1}"#,
        )
        .unwrap();
        let bin = node::standin_dir(d.path());
        let mut c = Command::new(env!("CARGO_BIN_EXE_sprout"));
        c.args(["post-pivot", "--until", "dnsmasq", "--root"])
            .arg(&root)
            .env("PATH", node::path_with(&bin))
            .env("STANDIN_LOG", d.path().join("commands.log"))
            .env("STANDIN_ROOT", &root)
            .env_remove("NOTIFY_SOCKET");
        if let Some(ip) = discovered {
            c.env("STANDIN_NODEIP", ip);
        }
        let out = c.output().unwrap();
        let err = support::stderr(&out);
        let overrides = root.join("etc/default/sno_dnsmasq_configuration_overrides");
        match discovered {
            Some(ip) => {
                assert!(out.status.success(), "{err}");
                let text = std::fs::read_to_string(&overrides).unwrap();
                assert!(
                    text.ends_with(&format!("SNO_DNSMASQ_IP_OVERRIDE={ip}")),
                    "{text}"
                );
            }
            None => {
                assert_eq!(out.status.code(), Some(1), "{err}");
                assert!(
                    err.contains("waiting for /run/nodeip-configuration/primary-ip"),
                    "{err}"
                );
                assert!(err.contains("still waiting for"), "no progress line: {err}");
                assert!(!overrides.exists());
            }
        }
    }
}
