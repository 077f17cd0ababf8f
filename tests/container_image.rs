//! Issue 15 acceptance 4: container/Containerfile builds with podman (no
//! base image pulled: container/build assembles the root filesystem from
//! this build's sprout and the libraries ldd lists), `podman run IMAGE
//! --version` answers, the image builds a config ISO as a Job would, and
//! /sprout copies out of it as `create image`'s agentImage install script
//! does. Runs on the host's podman; under CI=true a missing podman fails.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use support::*;

/// podman run flags for this machine kind: its sandbox may not raise
/// rlimits (runc's default NOFILE/NPROC), so the container keeps low ones.
const RUN: &[&str] = &[
    "run",
    "--rm",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

fn podman(args: &[&str]) -> Output {
    Command::new("podman").args(args).output().unwrap()
}

fn ok(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Removes the image when the test ends, passed or not.
struct Image(String);

impl Drop for Image {
    fn drop(&mut self) {
        let _ = podman(&["rmi", "--force", &self.0]);
    }
}

#[test]
fn container_image_builds_runs_and_serves_as_agent_image() {
    let test = "container_image_builds_runs_and_serves_as_agent_image";
    if !require("podman", test) || !require("ldd", test) {
        return;
    }
    let context = tempfile::tempdir().unwrap();
    let tag = format!("localhost/sprout-test:{}", std::process::id());
    let o = Command::new(repo().join("container/build"))
        .args(["--binary", env!("CARGO_BIN_EXE_sprout"), "--tag", &tag])
        .arg("--context")
        .arg(context.path())
        .output()
        .unwrap();
    let printed = ok(&o, "container/build");
    let image = Image(tag.clone());
    assert_eq!(printed.trim(), tag);

    // podman run IMAGE --version answers.
    let mut args = RUN.to_vec();
    args.extend([image.0.as_str(), "--version"]);
    let version = ok(&podman(&args), "podman run --version");
    assert_eq!(
        version.trim(),
        format!("sprout {}", env!("CARGO_PKG_VERSION"))
    );

    // As a Job: a site directory mounted at /work, the JSON on stdout.
    let site = copy_example("config-image");
    // The image's user is not root: the mounted directory must let it write.
    std::fs::set_permissions(site.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mount = format!("{}:/work", site.path().display());
    let mut args = RUN.to_vec();
    args.extend([
        "-v",
        &mount,
        image.0.as_str(),
        "create",
        "config-image",
        "--dir",
        "/work",
        "--json",
    ]);
    let doc: serde_json::Value =
        serde_json::from_str(&ok(&podman(&args), "podman run create config-image")).unwrap();
    assert_eq!(doc["ok"], true, "{doc:#}");
    assert_eq!(doc["sites"][0]["iso"]["path"], "/work/imagebasedconfig.iso");
    let iso = std::fs::read(site.path().join("imagebasedconfig.iso")).unwrap();
    assert_eq!(
        doc["sites"][0]["iso"]["sha256"],
        sprout::hash::hex(&sprout::hash::sha256(&iso))
    );

    // As agentImage: the install script's `podman create` + `podman cp`.
    let name = format!("sprout-agent-test-{}", std::process::id());
    ok(
        &podman(&["create", "--name", &name, &image.0, "/sprout"]),
        "podman create",
    );
    let out = tempfile::tempdir().unwrap();
    let copied = out.path().join("sprout");
    let cp = podman(&["cp", &format!("{name}:/sprout"), copied.to_str().unwrap()]);
    let _ = podman(&["rm", "--force", &name]);
    ok(&cp, "podman cp");
    let o = Command::new(&copied).arg("--version").output().unwrap();
    assert_eq!(
        ok(&o, "the copied agent").trim(),
        format!("sprout {}", env!("CARGO_PKG_VERSION"))
    );
    assert_small(context.path());
}

/// The image holds sprout, exactly the libraries ldd lists for it, and the
/// few files named in container/build; nothing else.
fn assert_small(context: &Path) {
    fn walk(root: &Path, d: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                out.insert(format!("/{rel}"));
            }
        }
    }
    let root = context.join("rootfs");
    let mut files = BTreeSet::new();
    walk(&root, &root, &mut files);
    let ldd = Command::new("ldd")
        .arg(env!("CARGO_BIN_EXE_sprout"))
        .output()
        .unwrap();
    let mut want: BTreeSet<String> = String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(String::from)
        .collect();
    for f in [
        "/sprout",
        "/usr/bin/sprout",
        "/etc/passwd",
        "/etc/group",
        "/etc/ssl/certs/ca-certificates.crt",
    ] {
        want.insert(f.to_string());
    }
    assert_eq!(
        files, want,
        "the image's files are not sprout and its libraries"
    );
}
