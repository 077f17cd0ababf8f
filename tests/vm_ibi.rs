//! vm-tests of `sprout ibi` (issue 11, acceptance 1 and 2): the factory
//! install run for real in the Debian guest on a blank virtio disk, with
//! the CoreOS-like metal image (vm-tests/build-coreos-like) written by the
//! real `coreos-installer install --image-file … --insecure` through
//! `coreosInstallerArgs`, and the synthetic seed of `sprout::testing::seed`
//! restored onto it. The guest checks the installed disk
//! (vm-tests/guest/scenarios/ibi-install.sh).
//!
//! The seed's ostree commit is the seed test support's synthetic commit,
//! not the CoreOS-like one: the result is checked on disk, not booted.
//!
//! `cargo test --test vm_ibi` (needs root, QEMU, debootstrap and
//! coreos-installer; prints `SKIP:` without them, fails instead under
//! `CI=true`; `SPROUT_VM_TESTS=skip` skips on purpose). Run under
//! `flock /tmp/sprout-vm.lock` when other VM tests share the machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[allow(dead_code)]
#[path = "vm/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "vm/machine.rs"]
mod machine;
#[allow(dead_code)]
#[path = "vm/qmp.rs"]
mod qmp;
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use harness::*;
use machine::{Accel, Run, Spec};
use sprout::testing::oci_writer::{self, LayerCompression};
use sprout::testing::registry;
use sprout::testing::seed::{BuiltSeed, SeedSpec, TAG};
use support::*;

/// The guest's registry (docker-registry with TLS and htpasswd).
const REGISTRY: &str = "127.0.0.1:5000";
const SEED_REPO: &str = "openshift-kni/seed";
/// The seed's release registry; the precache rewrites it to REGISTRY
/// (`releaseRegistry`, the seed having a mirror configured).
const SEED_RELEASE_REGISTRY: &str = "quay.io";
const IMAGE_REPO: &str = "openshift-release-dev/ocp-v4.0-art-dev";
const PRECACHE_IMAGES: usize = 3;
/// The target disk: RHCOS's 20 GiB (the preflight's reserve) plus the
/// extra partition. Sparse, so only what is written takes space.
const TARGET_BYTES: u64 = 24 << 30;
const EXTRA_PARTITION_START: &str = "-3G";

struct Env {
    guest: PathBuf,
    os: PathBuf,
    accel: Accel,
    /// The 9p share: sprout, coreos-installer, vm-tests/guest/, and ibi/
    /// (seed, precache images, registry files, configurations).
    share: tempfile::TempDir,
    work: tempfile::TempDir,
    seed: BuiltSeed,
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static ENV: OnceLock<Result<Env, String>> = OnceLock::new();

fn env(test: &str) -> Option<(MutexGuard<'static, ()>, &'static Env)> {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    match ENV.get_or_init(setup) {
        Ok(env) => Some((guard, env)),
        Err(why) => {
            let on_purpose = std::env::var("SPROUT_VM_TESTS").as_deref() == Ok("skip");
            assert!(
                on_purpose || std::env::var("CI").as_deref() != Ok("true"),
                "{test}: cannot run under CI: {why}"
            );
            say(&format!("SKIP: {test}: {why}"));
            None
        }
    }
}

fn setup() -> Result<Env, String> {
    if std::env::var("SPROUT_VM_TESTS").as_deref() == Ok("skip") {
        return Err("SPROUT_VM_TESTS=skip".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { nix::libc::geteuid() } != 0 {
        return Err(
            "vm-tests need root (debootstrap, chroot, ostree sysroot); CI runs as root".into(),
        );
    }
    for tool in [
        "qemu-system-x86_64",
        "debootstrap",
        "mkfs.ext4",
        "mkfs.vfat",
        "sfdisk",
        "xorriso",
        "ostree",
    ] {
        if which(tool).is_none() {
            return Err(format!("{tool} is not installed (run scripts/setup.sh)"));
        }
    }
    let installer = which("coreos-installer")
        .ok_or("coreos-installer is not installed (scripts/setup.d/20-coreos-installer.sh)")?;
    let guest = build("build-image");
    let os = build("build-coreos-like");
    let (accel, why) = machine::choose_accel(&guest.join("vmlinuz"));
    say(&format!("accelerator: {accel:?} ({why})"));
    let share = tempfile::tempdir().unwrap();
    fs::copy(env!("CARGO_BIN_EXE_sprout"), share.path().join("sprout")).unwrap();
    fs::copy(&installer, share.path().join("coreos-installer")).unwrap();
    copy_dir(
        &repo().join("vm-tests/guest"),
        &share.path().join("vm-tests/guest"),
    );
    let seed = prepare(&share.path().join("ibi"));
    Ok(Env {
        guest,
        os,
        accel,
        share,
        work: tempfile::tempdir().unwrap(),
        seed,
    })
}

/// The precache images: one OCI layout, each image a tag holding one small
/// file of its own. Returns (tag, manifest digest) per image.
fn precache_images(layout: &Path, work: &Path) -> Vec<(String, String)> {
    (1..=PRECACHE_IMAGES)
        .map(|i| {
            let tag = format!("image-{i}");
            let root = work.join(&tag);
            fs::create_dir_all(&root).unwrap();
            fs::write(root.join("content"), format!("precache image {i}\n")).unwrap();
            oci_writer::write_layout(
                &root,
                layout,
                &tag,
                &BTreeMap::new(),
                LayerCompression::Gzip,
            )
            .unwrap();
            let index: serde_json::Value =
                serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
            let digest = index["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag.as_str())
                .unwrap()["digest"]
                .as_str()
                .unwrap()
                .to_string();
            (tag, digest)
        })
        .collect()
}

/// Everything the guest reads from `/share/ibi` (`dir`): the seed (OCI
/// layout and archive), the precache images, the registry's TLS and
/// htpasswd files, the pull secret, post.sh, both configurations and what
/// the scenario expects.
fn prepare(dir: &Path) -> BuiltSeed {
    let scratch = dir.join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    let images = precache_images(&dir.join("images"), &scratch);
    fs::remove_dir_all(&scratch).unwrap();

    let mut spec = SeedSpec {
        // Large enough that the resume test's kill lands inside the
        // extraction of var.tgz.
        var_payload: 2 << 20,
        var_small_files: 8,
        ..SeedSpec::default()
    };
    spec.info.release_registry = SEED_RELEASE_REGISTRY.into();
    spec.info.mirror_registry_configured = true;
    spec.containers = images
        .iter()
        .map(|(_, d)| format!("{SEED_RELEASE_REGISTRY}/{IMAGE_REPO}@{d}"))
        .collect();
    let seed_dir = dir.join("seed");
    fs::create_dir_all(&seed_dir).unwrap();
    let seed = spec.build(&seed_dir).unwrap();
    assert!(
        spec.kernel_args
            .iter()
            .any(|k| k.contains('"') && k.contains('$')),
        "the seed needs a kernel argument with quotes and a $"
    );
    fs::write(dir.join("kargs"), spec.kernel_args.join("\n") + "\n").unwrap();

    let reg = dir.join("registry");
    fs::create_dir_all(&reg).unwrap();
    registry::write_server_files(&reg).unwrap();
    let secret = dir.join("pull-secret.json");
    registry::write_authfile(REGISTRY, &secret).unwrap();
    let post = dir.join("post.sh");
    // Appends, so a second run (the report once asked it for --version)
    // shows.
    fs::write(
        &post,
        "#!/bin/sh\necho \"ran $*\" >> /run/sprout-post-ran\n",
    )
    .unwrap();
    fs::set_permissions(&post, fs::Permissions::from_mode(0o755)).unwrap();

    let seed_image = format!("{REGISTRY}/{SEED_REPO}:{TAG}");
    let refs: Vec<String> = images
        .iter()
        .map(|(_, d)| format!("{REGISTRY}/{IMAGE_REPO}@{d}"))
        .collect();
    let tags: Vec<&str> = images.iter().map(|(t, _)| t.as_str()).collect();
    let stateroot = format!("rhcos_{}", TAG.replace('-', "_"));
    fs::write(
        dir.join("expect.env"),
        format!(
            "SEED_COMMIT={}\nSTATEROOT={stateroot}\nSEED_IMAGE={seed_image}\nSEED_TAG={TAG}\n\
             IMAGES='{}'\nIMAGE_TAGS='{}'\nREGISTRY={REGISTRY}\n",
            seed.commit,
            refs.join(" "),
            tags.join(" ")
        ),
    )
    .unwrap();
    let config = |seed_image: &str, precache: bool| {
        serde_json::json!({
            "installationDisk": "/dev/vdb",
            "seedImage": seed_image,
            "seedVersion": TAG,
            "extraPartitionLabel": "var-lib-containers",
            "extraPartitionStart": EXTRA_PARTITION_START,
            "releaseRegistry": REGISTRY,
            "precacheDisabled": !precache,
            "shutdown": false,
            // The disk cleanup runs (vgs, pvs, dmsetup, mdadm, wipefs): the
            // guest has lvm2 and mdadm, as the live ISO does.
            "skipDiskCleanup": false,
            "coreosInstallerArgs": ["--image-file", "/run/coreos-like/metal.raw", "--insecure"],
        })
    };
    fs::write(
        dir.join("ibi-registry.json"),
        serde_json::to_vec_pretty(&config(&seed_image, true)).unwrap(),
    )
    .unwrap();
    // No registry: the seed from the USB-like disk, no precache to pull.
    write_refusals(&dir.join("refuse"), config(&seed_image, true));
    fs::write(
        dir.join("ibi-archive.json"),
        serde_json::to_vec_pretty(&config("oci-archive:/run/usb/seed.oci.tar", false)).unwrap(),
    )
    .unwrap();
    seed
}

/// The configurations the preflight must refuse on real disks (acceptance
/// 3), each with the words its refusal must contain
/// (vm-tests/guest/scenarios/ibi-refusals.sh runs them).
fn write_refusals(dir: &Path, good: serde_json::Value) {
    fs::create_dir_all(dir).unwrap();
    let variant = |name: &str, change: &dyn Fn(&mut serde_json::Value), want: &[&str]| {
        let mut v = good.clone();
        change(&mut v);
        fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_vec_pretty(&v).unwrap(),
        )
        .unwrap();
        fs::write(dir.join(format!("{name}.want")), want.join("\n") + "\n").unwrap();
    };
    variant(
        "wrong-seed-version",
        &|v| v["seedVersion"] = "4.16.99".into(),
        &["seedVersion", "4.16.99"],
    );
    variant(
        "label-mismatch",
        &|v| v["extraPartitionLabel"] = "other-label".into(),
        &["extraPartitionLabel", "other-label"],
    );
    variant(
        "unreachable-seed",
        &|v| v["seedImage"] = format!("{REGISTRY}/nothing/here:1").into(),
        &["seedImage", "nothing/here"],
    );
    variant(
        "too-small-disk",
        &|v| v["installationDisk"] = "/dev/vdc".into(),
        &["installationDisk", "/dev/vdc"],
    );
    variant(
        "mounted-disk",
        &|v| v["installationDisk"] = "/dev/vdd".into(),
        &["installationDisk", "/dev/vdd", "mounted"],
    );
    variant(
        "live-system-disk",
        &|v| v["installationDisk"] = "/dev/vda".into(),
        &["installationDisk", "/dev/vda"],
    );
    variant(
        "saved-partition-wiped",
        &|v| {
            v["skipDiskCleanup"] = false.into();
            v["coreosInstallerArgs"] = serde_json::json!(["--save-partlabel", "data"]);
        },
        &["coreosInstallerArgs", "--save-partlabel"],
    );
}

/// SHA-256 of a whole disk image (sparse: the holes read as zeros).
fn disk_sha256(path: &Path) -> String {
    let mut f = fs::File::open(path).unwrap();
    let mut h = openssl::sha::Sha256::new();
    let mut buf = vec![0u8; 4 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    h.finish().iter().map(|b| format!("{b:02x}")).collect()
}

impl Env {
    fn boot(&self, name: &str, spec: &Spec) -> Run {
        let dir = repo().join("target/vm-tests").join(name);
        let run = machine::boot(&self.guest, self.share.path(), self.accel, &dir, spec);
        assert!(
            run.nothing_left_running(),
            "{name}: a qemu process is still running"
        );
        run
    }

    /// A blank sparse target disk.
    fn target(&self, name: &str) -> PathBuf {
        let disk = self.work.path().join(format!("{name}.raw"));
        let f = fs::File::create(&disk).unwrap();
        f.set_len(TARGET_BYTES).unwrap();
        disk
    }

    /// The boot of the scenario with the CoreOS-like image share.
    fn spec(&self, mode: &str, target: &Path) -> Spec {
        let mut spec = Spec::new("ibi-install", Duration::from_secs(1200))
            .arg("mode", mode)
            .arg("target", "/dev/vdb");
        spec.disks.push(target.to_path_buf());
        spec.shares.push(("coreos-like".into(), self.os.clone()));
        spec
    }
}

/// Acceptance 1: the seed and three precache images in a registry in the
/// guest (127.0.0.1, TLS with a CA made here, htpasswd; the pull secret
/// holds the credentials), `sprout ibi` installs RHCOS with the real
/// coreos-installer, restores the seed and precaches; the guest checks
/// the partition, the grown root, ostree, kernel arguments, `.origin`,
/// `/var` and `/etc` with xattrs, `etc.deletions`, `lca-cli`, the images
/// on the extra partition, `post.sh`, the report and the progress stream.
#[test]
fn ibi_installs_registry_seed() {
    let name = "ibi_installs_registry_seed";
    let Some((_g, env)) = env(name) else {
        return;
    };
    let state = registry_reference(env);
    assert!(!state.is_empty(), "{name}: the guest printed no end state");
}

/// The end state of the uninterrupted registry run (booted once per test
/// process, by whichever test needs it first).
static REFERENCE: OnceLock<Vec<String>> = OnceLock::new();

fn registry_reference(env: &Env) -> &'static Vec<String> {
    REFERENCE.get_or_init(|| {
        let name = "ibi_installs_registry_seed";
        let target = env.target(name);
        let run = env.boot(name, &env.spec("registry", &target));
        expect_pass(name, &run);
        let _ = fs::remove_file(&target);
        state_lines(&run)
    })
}

/// What the guest's `ibi_state` printed.
fn state_lines(run: &Run) -> Vec<String> {
    run.lines
        .iter()
        .filter_map(|l| l.text.strip_prefix("SPROUT-VM state "))
        .map(str::to_string)
        .collect()
}

/// Acceptance 4, VM side: killed with SIGKILL right after every step
/// (each kill followed by a run that resumes), in the middle of extracting
/// `var.tgz` and in the middle of the precache (one puller, after its
/// first image), then run to the end: the disk passes every check of the
/// uninterrupted run, no precache image was fetched twice (the registry's
/// access log), and the end state — partition table, `ostree admin
/// status`, a hash manifest of the deployment and of the stateroot's
/// `var`, the image list — equals the uninterrupted run's.
#[test]
fn ibi_killed_at_every_step_and_mid_var_and_mid_precache_resumes_to_the_same_disk() {
    let name = "ibi_killed_at_every_step_and_mid_var_and_mid_precache_resumes_to_the_same_disk";
    let Some((_g, env)) = env(name) else {
        return;
    };
    let target = env.target(name);
    let mut spec = env.spec("registry", &target);
    spec.scenario = "ibi-resume".into();
    // About one install plus a preflight and a resume per kill (two dozen).
    spec.timeout = Duration::from_secs(2400);
    let run = env.boot(name, &spec);
    expect_pass(name, &run);
    let _ = fs::remove_file(&target);
    let got = state_lines(&run);
    let want = registry_reference(env);
    if &got != want {
        let only_got: Vec<&String> = got.iter().filter(|l| !want.contains(l)).collect();
        let only_want: Vec<&String> = want.iter().filter(|l| !got.contains(l)).collect();
        panic!(
            "{name}: the end state differs from the uninterrupted run's\n\
             only after the kills: {only_got:#?}\nonly uninterrupted: {only_want:#?}"
        );
    }
}

/// Acceptance 3, disk side: each preflight failure on real disks (a wrong
/// seed version, a label mismatch, a seed the registry does not have, a
/// too-small disk, a mounted disk, the live system's own disk, a saved
/// partition with a disk cleanup) is refused with its message and exit
/// non-zero; the target disk's SHA-256, taken here before and after the
/// boot, is unchanged.
#[test]
fn ibi_refuses_each_preflight_failure_and_leaves_the_disks_alone() {
    let name = "ibi_refuses_each_preflight_failure_and_leaves_the_disks_alone";
    let Some((_g, env)) = env(name) else {
        return;
    };
    let target = env.target(name);
    // Not blank: bytes at both ends, where a wipe or a partition table
    // would go first.
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = fs::OpenOptions::new().write(true).open(&target).unwrap();
        let marker: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
        f.write_all(&marker).unwrap();
        f.seek(SeekFrom::End(-(1 << 20))).unwrap();
        f.write_all(&marker).unwrap();
    }
    let before = disk_sha256(&target);
    let small = env.work.path().join(format!("{name}-small.raw"));
    fs::File::create(&small).unwrap().set_len(2 << 30).unwrap();
    let mounted = env.work.path().join(format!("{name}-mounted.raw"));
    fs::File::create(&mounted)
        .unwrap()
        .set_len(TARGET_BYTES)
        .unwrap();
    let mut spec = env
        .spec("registry", &target)
        .arg("small", "/dev/vdc")
        .arg("mounted", "/dev/vdd");
    spec.scenario = "ibi-refusals".into();
    spec.disks.push(small.clone());
    spec.disks.push(mounted.clone());
    let run = env.boot(name, &spec);
    let after = disk_sha256(&target);
    for f in [&target, &small, &mounted] {
        let _ = fs::remove_file(f);
    }
    expect_pass(name, &run);
    assert_eq!(after, before, "{name}: the target disk's SHA-256 changed");
}

/// Acceptance 2: the same from an `oci-archive:` seed on a second disk
/// (USB-like, ext4), without a registry (so no precache either).
#[test]
fn ibi_installs_oci_archive_seed_from_second_disk() {
    let name = "ibi_installs_oci_archive_seed_from_second_disk";
    let Some((_g, env)) = env(name) else {
        return;
    };
    let usb_files = env.work.path().join("usb-files");
    fs::create_dir_all(&usb_files).unwrap();
    fs::copy(&env.seed.oci_archive, usb_files.join("seed.oci.tar")).unwrap();
    let usb = env.work.path().join("usb.raw");
    let bytes = fs::metadata(&env.seed.oci_archive).unwrap().len() + (64 << 20);
    let o = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "seed-usb", "-d"])
        .arg(&usb_files)
        .arg(&usb)
        .arg(format!("{}k", bytes / 1024))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "mkfs.ext4 -d: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let target = env.target(name);
    let mut spec = env.spec("archive", &target).arg("usb", "/dev/vdc");
    spec.disks.push(usb.clone());
    let run = env.boot(name, &spec);
    expect_pass(name, &run);
    let _ = fs::remove_file(&target);
    let _ = fs::remove_file(&usb);
}
