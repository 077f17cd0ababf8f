//! Issue 9, class 5 for `create image`: a full target, a killed build and
//! stale temporaries leave the old ISO whole and nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

fn ok(o: &Output) {
    assert!(o.status.success(), "sprout failed: {}", stderr(o));
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every entry name directly in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const CONFIG: &str = "image-based-installation-config.yaml";
const OUT: &str = "rhcos-ibi.iso";

/// A live ISO fixture with an Ignition area, decompressed.
fn base_iso(into: &Path) -> PathBuf {
    let xz = repo().join("../shared/fixtures/coreos-live-iso/embed-areas-2023-07.x86_64.iso.xz");
    let dest = into.join("base.iso");
    let mut dec = liblzma::read::XzDecoder::new(std::fs::File::open(&xz).unwrap());
    std::io::copy(&mut dec, &mut std::fs::File::create(&dest).unwrap()).unwrap();
    dest
}

fn image_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join(CONFIG),
        "seedImage: quay.io/openshift-kni/seed-image:4.16.0\nseedVersion: 4.16.0\ninstallationDisk: /dev/vda\n\
         pullSecret: '{\"auths\":{\"q.io\":{\"auth\":\"eDp5\"}}}'\n",
    )
    .unwrap();
    d
}

/// `create image` with the file size limit `fsize` (bytes), SIGXFSZ
/// ignored (the write fails with EFBIG) or not (the process is killed).
fn create_image_limited(dir: &Path, base: &Path, fsize: u64, ignore_sigxfsz: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sprout"));
    cmd.args(["create", "image", "--dir"])
        .arg(dir)
        .arg("--base-iso")
        .arg(base)
        .env_remove("SPROUT_LOG");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = rustix::process::Rlimit {
                current: Some(fsize),
                maximum: Some(fsize),
            };
            rustix::process::setrlimit(rustix::process::Resource::Fsize, limit)?;
            if ignore_sigxfsz {
                nix::sys::signal::signal(
                    nix::sys::signal::Signal::SIGXFSZ,
                    nix::sys::signal::SigHandler::SigIgn,
                )
                .map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

fn create_image(dir: &Path, base: &Path) -> Output {
    sprout(&[
        "create",
        "image",
        "--dir",
        dir.to_str().unwrap(),
        "--base-iso",
        base.to_str().unwrap(),
    ])
}

/// A full target (the file size limit stands in for a full disk): the old
/// ISO stays whole, no temporary file is left, the error says why.
#[test]
fn a_full_target_keeps_the_old_iso_and_leaves_nothing() {
    let src = tempfile::tempdir().unwrap();
    let base = base_iso(src.path());
    let d = image_dir();
    ok(&create_image(d.path(), &base));
    let out = d.path().join(OUT);
    assert_eq!(
        mode(&out),
        0o600,
        "the installation ISO carries the pull secret"
    );
    let old = std::fs::read(&out).unwrap();
    let size = std::fs::metadata(&base).unwrap().len();
    std::fs::write(d.path().join("post.sh"), "#!/bin/sh\necho changed\n").unwrap();
    let o = create_image_limited(d.path(), &base, size / 2, true);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("File too large") && e.contains("any previous one is unchanged"),
        "{e}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), old);
    assert_eq!(names(d.path()), [CONFIG, "post.sh", OUT]);
}

/// A build killed half way (here by SIGXFSZ) leaves no temporary file.
#[test]
fn a_killed_build_leaves_no_temporary_file() {
    let src = tempfile::tempdir().unwrap();
    let base = base_iso(src.path());
    let d = image_dir();
    let size = std::fs::metadata(&base).unwrap().len();
    let o = create_image_limited(d.path(), &base, size / 2, false);
    assert_eq!(
        o.status.signal(),
        Some(nix::libc::SIGXFSZ),
        "{}",
        stderr(&o)
    );
    // Only the lock file (a line naming the holder) outlives the kill.
    assert_eq!(names(d.path()), [".sprout.lock", CONFIG]);
    assert!(
        std::fs::metadata(d.path().join(".sprout.lock"))
            .unwrap()
            .len()
            < 256
    );
    // The next run takes the stale lock and leaves nothing but its output.
    ok(&create_image(d.path(), &base));
    assert_eq!(names(d.path()), [CONFIG, OUT]);
}

/// Temporary files an interrupted run left (sprout's own names, and those
/// of earlier versions) are removed by the next run; others are kept.
#[test]
fn stale_temporaries_are_removed_by_the_next_run() {
    let src = tempfile::tempdir().unwrap();
    let base = base_iso(src.path());
    let d = image_dir();
    for f in [
        ".sprout-tmp.rhcos-ibi.iso.4242.0123456789ab",
        ".rhcos-ibi.iso.Xy12Zw.tmp",
        ".rhcos-ibi.iso.notes",
    ] {
        std::fs::write(d.path().join(f), vec![0u8; 4096]).unwrap();
    }
    ok(&create_image(d.path(), &base));
    assert_eq!(names(d.path()), [".rhcos-ibi.iso.notes", CONFIG, OUT]);
}
