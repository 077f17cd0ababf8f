use std::os::unix::fs::PermissionsExt;

use super::*;

fn strings(v: Vec<OsString>) -> Vec<String> {
    v.into_iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn argv_is_upstreams() {
    // Spec §3.5 step 6, word for word.
    let r = RecertRun::new("quay.io/edge-infrastructure/recert:v0".into());
    let expected = "run --rm --network=host --privileged --replace --name recert \
        -v /etc:/host-etc -v /etc/ssh:/ssh -v /etc/kubernetes:/kubernetes \
        -v /var/lib/kubelet:/kubelet -v /var/tmp:/var/tmp \
        -v /etc/machine-config-daemon:/machine-config-daemon -v /etc/pki:/pki \
        -e RECERT_CONFIG=/opt/openshift/recert_config.json \
        --authfile /var/lib/kubelet/config.json \
        -v /opt/openshift:/opt/openshift quay.io/edge-infrastructure/recert:v0";
    assert_eq!(
        strings(r.argv()),
        expected.split_whitespace().collect::<Vec<_>>()
    );
    assert_eq!(
        strings(r.stop_argv()),
        ["stop", "--ignore", "--time", "10", "recert"]
    );
}

#[test]
fn image_pull_takes_the_proxy_as_environment() {
    let r = RecertRun::new("q.io/recert:v0".into());
    assert_eq!(
        r.pull(None).display(),
        "podman pull --authfile /var/lib/kubelet/config.json q.io/recert:v0"
    );
    assert_eq!(
        r.image_exists().display(),
        "podman image exists q.io/recert:v0"
    );
    assert!(pull_env(None).is_empty());
    let p = Proxy {
        http_proxy: "http://p:3128".into(),
        https_proxy: "http://p:3129".into(),
        no_proxy: ".svc,10.0.0.0/8".into(),
    };
    assert_eq!(
        pull_env(Some(&p)),
        [
            ("HTTP_PROXY", "http://p:3128".to_string()),
            ("HTTPS_PROXY", "http://p:3129".to_string()),
            ("NO_PROXY", ".svc,10.0.0.0/8".to_string()),
        ]
    );
}

#[test]
fn previous_runs_are_read_from_the_summary() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("recert-summary.yaml");
    assert_eq!(previous_run(&path).unwrap(), PreviousRun::None);
    assert!(should_run(&PreviousRun::None, &path).unwrap());

    std::fs::write(
        &path,
        "cluster_crypto: {}\nlogs: [a]\nrun_times:\n  scan_run_time: 1.2s\nerror: null\n",
    )
    .unwrap();
    assert_eq!(previous_run(&path).unwrap(), PreviousRun::Succeeded);
    assert!(!should_run(&PreviousRun::Succeeded, &path).unwrap());

    std::fs::write(&path, "logs: []\nrun_times: null\nerror: |-\n  scanning etcd\n\n  Caused by:\n      connection refused\n").unwrap();
    let failed = previous_run(&path).unwrap();
    assert!(
        matches!(&failed, PreviousRun::Failed { error } if error.contains("connection refused"))
    );
    let e = should_run(&failed, &path).unwrap_err().to_string();
    assert!(
        e.contains("recert failed on an earlier attempt: scanning etcd."),
        "{e}"
    );
    assert!(
        e.contains(&format!("mv {p} {p}.failed", p = path.display())),
        "{e}"
    );

    std::fs::write(&path, "cluster_crypto: {standalone_pri").unwrap();
    let cut = previous_run(&path).unwrap();
    assert!(matches!(cut, PreviousRun::Unreadable { .. }), "{cut:?}");
    let e = should_run(&cut, &path).unwrap_err().to_string();
    assert!(e.contains("probably interrupted"), "{e}");
}

/// A stand-in for podman: `run` writes a summary and exits with $EXIT, or
/// hangs when $EXIT is `hang`; `stop` kills the hanging run.
fn fake_podman(dir: &Path, exit: &str) -> PathBuf {
    let script = format!(
        "#!/bin/sh\nd={dir}\ncase \"$1\" in\n\
         run) echo $$ > $d/pid\n\
              if [ {exit} = hang ]; then exec sleep 60; fi\n\
              printf 'logs: []\\nerror: \"reading config: unknown key foo\"\\n' > $d/summary.yaml\n\
              exit {exit};;\n\
         stop) kill $(cat $d/pid); echo stopped > $d/stopped;;\n\
         esac\n",
        dir = dir.display()
    );
    let path = dir.join("podman");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_failed_run_reports_the_summary_error() {
    let d = tempfile::tempdir().unwrap();
    let mut r = RecertRun::new("img".into());
    r.program = fake_podman(d.path(), "1");
    let e = r
        .run(Duration::from_secs(30), &d.path().join("summary.yaml"))
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.contains("recert failed (exit status: 1): reading config: unknown key foo"),
        "{msg}"
    );
    assert!(msg.contains("summary is kept"), "{msg}");
    r.program = fake_podman(d.path(), "0");
    r.run(Duration::from_secs(30), &d.path().join("summary.yaml"))
        .unwrap();
}

#[test]
fn the_deadline_stops_the_container() {
    let d = tempfile::tempdir().unwrap();
    let mut r = RecertRun::new("img".into());
    r.program = fake_podman(d.path(), "hang");
    let e = r
        // One second: long enough for the stand-in to have written its pid.
        .run(Duration::from_secs(1), &d.path().join("summary.yaml"))
        .unwrap_err();
    assert!(e.to_string().contains("did not finish within"), "{e}");
    assert!(
        d.path().join("stopped").exists(),
        "podman stop was not called"
    );
}
