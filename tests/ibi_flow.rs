//! `sprout ibi` on the build host: the `--dry-run` plan (acceptance 5), a
//! full run's `--progress-json` stream (acceptance 6) and the preflight's
//! refusals (acceptance 3, host side). What runs for real and what is a
//! stand-in, and why: tests/ibi_fixture/mod.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod ibi_fixture;
mod support;

use ibi_fixture::{Machine, manifest};
use serde_json::Value;

const EXPECTED: &str = "tests/expected/ibi-dry-run.txt";

#[test]
fn dry_run_prints_the_reviewed_plan_and_changes_nothing() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let m = Machine::new(64 << 10);
    let before = manifest(&m.root);
    let out = m.run(&["--dry-run"]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let text = mask_seed_size(&m.normalize(&String::from_utf8_lossy(&out.stdout)));
    let path = support::repo().join(EXPECTED);
    if std::env::var_os("SPROUT_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text, want,
        "the plan differs from {EXPECTED} (SPROUT_BLESS=1 rewrites it; review the diff)"
    );
    assert_eq!(manifest(&m.root), before, "a dry run wrote under the root");
    // Only reads: the partition table is looked at, nothing else runs.
    for line in m.calls().lines() {
        assert!(line.starts_with("sfdisk --json "), "a dry run ran {line}");
    }
}

/// The root partition's need follows the synthetic seed's compressed size,
/// which its timestamps change from build to build.
fn mask_seed_size(text: &str) -> String {
    const AT: &str = "root needs at least ";
    let Some(i) = text.find(AT) else {
        return text.to_string();
    };
    let from = i + AT.len();
    let to = from + text[from..].find(" of ").unwrap();
    format!("{}<seed estimate>{}", &text[..from], &text[to..])
}

fn events(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn a_full_run_emits_every_step_and_restores_the_seed() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let m = Machine::new(256 << 10);
    let progress = m.dir.path().join("progress.jsonl");
    let out = m.run(&["--progress-json", progress.to_str().unwrap()]);
    let err = support::stderr(&out);
    eprintln!("{err}");
    if std::env::var_os("IBI_KEEP").is_some() {
        eprintln!("kept {}", m.dir.path().display());
        std::mem::forget(m);
        return;
    }
    assert!(out.status.success(), "{err}");
    let ev = events(&progress);
    for e in &ev {
        assert_eq!(e["version"], 1, "{e}");
        assert!(
            e["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{e}"
        );
    }
    let steps: Vec<String> = ev[0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ev[0]["type"], "plan-start");
    assert!(steps.len() >= 20, "{steps:?}");
    for (i, id) in steps.iter().enumerate() {
        let start = ev
            .iter()
            .position(|e| e["type"] == "step-start" && e["step"] == id.as_str());
        let end = ev
            .iter()
            .position(|e| e["type"] == "step-end" && e["step"] == id.as_str());
        let (Some(s), Some(e)) = (start, end) else {
            panic!("step {id} lacks start or end")
        };
        assert!(s < e, "{id}");
        assert_eq!(ev[s]["index"], i + 1);
        assert_ne!(ev[e]["outcome"], "failed", "{}", ev[e]);
    }
    let last = ev.last().unwrap();
    assert_eq!(last["type"], "plan-end");
    assert_eq!(last["outcome"], "succeeded");
    // The precache pulled each image once; items events counted them.
    let pulls = std::fs::read_to_string(m.state.join("pulls.log")).unwrap();
    assert_eq!(pulls.lines().count(), 3, "{pulls}");
    // podman staged them on the container storage, not the live /var/tmp
    // (RAM on the live ISO), and the staging directory is gone after.
    let staging = m.root.join("var/lib/containers/sprout-pull-tmp");
    let tmpdirs = std::fs::read_to_string(m.state.join("pull-tmpdirs.log")).unwrap_or_default();
    assert_eq!(
        tmpdirs.lines().collect::<Vec<_>>(),
        vec![staging.to_str().unwrap(); 3],
        "TMPDIR of each precache pull"
    );
    assert!(!staging.exists(), "{} was left behind", staging.display());
    assert!(
        ev.iter()
            .any(|e| e["type"] == "items" && e["step"] == "precache" && e["done"] == 3)
    );
    let status: Value = serde_json::from_slice(
        &std::fs::read(m.root.join("var/lib/lca/workspace/precache_status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        status,
        serde_json::json!({"total":3,"pulled":3,"failed":0,"failed_pulls":null})
    );
    // The disk steps ran the real argv: the extra partition by its name,
    // growpart on the number of the partition named root.
    let calls = m.calls();
    assert!(
        calls.contains("coreos-installer install /dev/vda --append-karg console=ttyS0,115200\n"),
        "{calls}"
    );
    assert!(calls.contains("sfdisk --append /dev/vda\n"), "{calls}");
    assert!(calls.contains("mkfs.xfs -f /dev/vda5\n"), "{calls}");
    assert!(calls.contains("growpart /dev/vda 4\n"), "{calls}");
    assert!(calls.contains("systemctl poweroff\n"), "{calls}");
    let appended = std::fs::read_to_string(m.state.join("appended")).unwrap();
    // 120 GiB − 60 GiB, in 512-byte sectors, aligned down to 1 MiB.
    assert_eq!(
        appended,
        format!(
            "start={}, name=\"var-lib-containers\"\n",
            (60u64 << 30) / 512
        )
    );
    // The restore, for real, on the directory sysroot.
    let sysroot = m.root.join("mnt");
    let status = std::process::Command::new("ostree")
        .args(["admin", "status", "--sysroot"])
        .arg(&sysroot)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains(&format!("rhcos_4.16.3 {}.0", m.seed.commit)),
        "{status}"
    );
    assert!(
        !status.contains("rhcos "),
        "the original stateroot is still deployed: {status}"
    );
    assert!(!sysroot.join("ostree/deploy/rhcos").exists());
    let agent = sysroot.join("ostree/deploy/rhcos_4.16.3/var/usrlocal/bin/lca-cli");
    assert_eq!(
        std::fs::read(agent).unwrap(),
        std::fs::read(env!("CARGO_BIN_EXE_sprout")).unwrap()
    );
    assert!(m.state.join("post-ran").exists(), "post.sh did not run");
    // The report and the journal on the target; the timings on stderr.
    let report: Value = serde_json::from_slice(
        &std::fs::read(sysroot.join("var/lib/sprout/ibi-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["steps"].as_array().unwrap().len(), steps.len());
    assert!(sysroot.join("var/lib/sprout/ibi-journal.json").exists());
    assert!(
        !m.root.join("run/sprout/ibi-journal.json").exists(),
        "the journal stayed in /run"
    );
    assert!(err.contains("sprout ibi: succeeded in"), "{err}");
    assert!(err.contains("restore-var"), "{err}");

    // A second run finds everything done and pulls nothing again.
    let out = m.run(&[]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert_eq!(
        std::fs::read_to_string(m.state.join("pulls.log"))
            .unwrap()
            .lines()
            .count(),
        3
    );
}

/// Each refusal: non-zero exit, the message, nothing written under the
/// root and no disk tool started.
fn refused(m: &Machine, want: &[&str]) {
    let before = manifest(&m.root);
    let out = m.run(&[]);
    let err = support::stderr(&out);
    assert!(!out.status.success(), "accepted; stderr: {err}");
    for w in want {
        assert!(err.contains(w), "wanted {w:?} in: {err}");
    }
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(
        manifest(&m.root),
        before,
        "the refused run wrote under the root"
    );
    assert_eq!(m.calls(), "", "the refused run started a tool");
}

#[test]
fn preflight_refuses_each_problem_and_touches_nothing() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let m = Machine::new(64 << 10);
    m.write_config(|v| v["seedVersion"] = "4.15.0".into());
    refused(&m, &["seedImage", "4.15.0"]);
    m.write_config(|v| v["extraPartitionLabel"] = "other-label".into());
    refused(&m, &["seedImage", "other-label"]);
    m.write_config(|v| v["seedImage"] = "docker://127.0.0.1:9/nothing/here:1".into());
    refused(&m, &["seedImage", "no credentials for 127.0.0.1:9"]);
    m.write_config(|v| v["installationDisk"] = "/dev/disk/by-id/wwn-absent".into());
    refused(&m, &["installationDisk", "wwn-absent"]);
    m.write_config(|v| {
        v["coreosInstallerArgs"] = serde_json::json!(["--save-partlabel", "data"]);
    });
    refused(&m, &["coreosInstallerArgs", "--save-partlabel"]);
    // Free space: three precache images cannot fit in 200 MiB.
    m.write_config(|v| v["extraPartitionStart"] = "-200M".into());
    refused(
        &m,
        &[
            "extraPartitionStart",
            "the extra partition would have",
            "3 precache images",
        ],
    );
    m.write_config(|v| {
        v.as_object_mut().unwrap().remove("seedImage");
    });
    refused(&m, &["seedImage is required"]);

    // A missing tool, and all problems of one run together.
    std::fs::remove_file(m.bin.join("growpart")).unwrap();
    // Not a skip: whether the host has a growpart of its own only decides
    // which refusal the run must give.
    let growpart_elsewhere = sprout::host::command::find_program("growpart").is_some();
    m.write_config(|v| v["seedVersion"] = "4.15.0".into());
    if growpart_elsewhere {
        refused(&m, &["4.15.0"]);
    } else {
        refused(&m, &["growpart is not on PATH", "4.15.0"]);
    }

    // A too-small disk, and a mounted one.
    let m = Machine::new(64 << 10);
    std::fs::write(
        m.root.join("sys/devices/virtual/block/vda/size"),
        format!("{}\n", (16u64 << 30) / 512),
    )
    .unwrap();
    refused(&m, &["installationDisk", "/dev/vda"]);
    let m = Machine::new(64 << 10);
    std::fs::create_dir_all(m.root.join("proc")).unwrap();
    std::fs::write(m.root.join("proc/mounts"), "/dev/vda /var/mnt xfs rw 0 0\n").unwrap();
    refused(&m, &["installationDisk", "mounted"]);
}

#[test]
fn precache_images_without_this_architecture_are_reported_and_skipped() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let arm = "quay.io/example/arm64-only@sha256:0000000000000000000000000000000000000000000000000000000000000abc";
    let m = Machine::with_extra_images(&[arm]);
    let progress = m.dir.path().join("progress.jsonl");
    let out = m.run(&["--progress-json", progress.to_str().unwrap()]);
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    let ev = events(&progress);
    assert!(
        ev.iter().any(|e| e["type"] == "message"
            && e["step"] == "precache"
            && e["text"].as_str().is_some_and(|t| t.starts_with(&format!(
                "skipped {arm}: it has no image for this machine's architecture"
            )))),
        "{ev:#?}"
    );
    let status: Value = serde_json::from_slice(
        &std::fs::read(m.root.join("var/lib/lca/workspace/precache_status.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        status,
        serde_json::json!({"total":4,"pulled":3,"failed":0,"failed_pulls":null})
    );
    // Not retried: one attempt.
    assert_eq!(m.calls().matches(&format!("podman pull {arm}")).count(), 1);
}

/// A metal image whose root holds ext4 (the CoreOS-like test OS; RHCOS has
/// XFS) is grown with resize2fs on the partition named root: xfs_growfs
/// would fail there after the disk was already written (found in the VM).
#[test]
fn an_ext4_root_is_grown_with_resize2fs() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let m = Machine::new(64 << 10);
    let out = m
        .command(&[])
        .env("STANDIN_ROOT_FS", "ext4")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    let calls = m.calls();
    assert!(
        calls.lines().any(|l| l == "resize2fs /dev/vda4"),
        "no resize2fs of the root partition: {calls}"
    );
    assert!(
        !calls.contains("xfs_growfs"),
        "xfs_growfs ran on ext4: {calls}"
    );
}
