//! vm-tests of the CoreOS-like test OS (`vm-tests/build-coreos-like`,
//! vm-tests/coreos-like.md): its metal image installed by the real
//! `coreos-installer install` in the Debian guest and booted through
//! ostree-prepare-root, and its live boot files applying an embedded
//! Ignition config with real Ignition.
//!
//! `cargo test --test vm_coreos_like` (needs root, QEMU, debootstrap and
//! coreos-installer; prints `SKIP:` without them, fails instead under
//! `CI=true`; `SPROUT_VM_TESTS=skip` skips on purpose).

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

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use harness::*;
use machine::{Accel, Run, Spec};
use support::*;

/// What the boots share, made once per test process.
struct Env {
    /// The Debian guest (vm-tests/build-image).
    guest: PathBuf,
    /// The CoreOS-like OS (vm-tests/build-coreos-like).
    os: PathBuf,
    accel: Accel,
    /// The 9p share: sprout, coreos-installer, vm-tests/guest/, systemd/.
    share: PathBuf,
    work: PathBuf,
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static ENV: OnceLock<Result<Env, String>> = OnceLock::new();

fn env(test: &str) -> Option<(MutexGuard<'static, ()>, &'static Env)> {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    match ENV.get_or_init(setup) {
        Ok(env) => Some((guard, env)),
        Err(why) => {
            skip(test, why);
            None
        }
    }
}

fn setup() -> Result<Env, String> {
    if let Some(why) = cannot_run(&[
        "qemu-system-x86_64",
        "debootstrap",
        "mkfs.ext4",
        "mkfs.vfat",
        "sfdisk",
        "debugfs",
        "xorriso",
        "ostree",
    ]) {
        return Err(why);
    }
    let installer = which("coreos-installer")
        .ok_or("coreos-installer is not installed (scripts/setup.d/20-coreos-installer.sh)")?;
    let guest = build("build-image");
    let os = build("build-coreos-like");
    let (accel, why) = machine::choose_accel(&guest.join("vmlinuz"));
    say(&format!("accelerator: {accel:?} ({why})"));
    let share = scratch("coreos-like-share");
    fs::copy(env!("CARGO_BIN_EXE_sprout"), share.join("sprout")).unwrap();
    fs::copy(&installer, share.join("coreos-installer")).unwrap();
    copy_dir(
        &repo().join("vm-tests/guest"),
        &share.join("vm-tests/guest"),
    );
    copy_dir(&repo().join("systemd"), &share.join("systemd"));
    Ok(Env {
        guest,
        os,
        accel,
        share,
        work: scratch("coreos-like-work"),
    })
}

impl Env {
    fn boot(&self, name: &str, spec: &Spec) -> Run {
        let dir = repo().join("target/vm-tests").join(name);
        let run = machine::boot(&self.guest, &self.share, self.accel, &dir, spec);
        assert!(
            run.nothing_left_running(),
            "{name}: a qemu process is still running"
        );
        run
    }

    fn commit(&self) -> String {
        fs::read_to_string(self.os.join("commit"))
            .unwrap()
            .trim()
            .to_string()
    }
}

/// The metal image written by the real coreos-installer onto a blank
/// virtio disk in the Debian guest, then booted from that disk: kernel,
/// initramfs and kernel arguments of its BLS entry, ostree-prepare-root
/// pivoting into the deployment, systemd up to multi-user.target.
#[test]
fn coreos_like_metal_installs_and_boots() {
    let name = "coreos_like_metal_installs_and_boots";
    let Some((_g, env)) = env(name) else {
        return;
    };
    let metal = env.os.join("metal.raw");
    let disk = env.work.as_path().join("installed.raw");
    let f = fs::File::create(&disk).unwrap();
    f.set_len(fs::metadata(&metal).unwrap().len() + (256 << 20))
        .unwrap();
    drop(f);
    let mut spec = Spec::new("coreos-install", Duration::from_secs(900))
        .arg("image", "/run/coreos-like/metal.raw")
        .arg("target", "/dev/vdb");
    spec.disks.push(disk.clone());
    spec.shares.push(("coreos-like".into(), env.os.clone()));
    let run = env.boot(&format!("{name}-install"), &spec);
    expect_pass(&format!("{name}-install"), &run);

    let entry = read_boot_entry(&disk, env.work.as_path(), "");
    say(&format!(
        "{name}: BLS entry options: {}",
        entry.options.join(" ")
    ));
    assert!(
        entry.options.iter().any(|o| o.starts_with("ostree=")),
        "the BLS entry has no ostree= argument: {:?}",
        entry.options
    );
    let mut spec = Spec::new("coreos-booted", Duration::from_secs(600))
        .arg("commit", &env.commit())
        .arg("stateroot", "rhcos");
    spec.kernel = Some(entry.kernel.clone());
    spec.initrd = Some(entry.initrd.clone());
    spec.root_disk = Some(disk.clone());
    spec.root_args = Some(with_initrd_console(&entry.options));
    let run = env.boot(&format!("{name}-boot"), &spec);
    expect_pass(&format!("{name}-boot"), &run);
}

/// The live boot files and live ISO: a config embedded by the real
/// `coreos-installer iso ignition embed` is applied by real Ignition (the
/// embed area appended to the initramfs, as CoreOS live boots do).
#[test]
fn coreos_like_live_iso_applies_embedded_ignition() {
    let name = "coreos_like_live_iso_applies_embedded_ignition";
    let Some((_g, env)) = env(name) else {
        return;
    };
    let work = env.work.as_path().join("live");
    fs::create_dir_all(&work).unwrap();
    // Differs per run, so a file left by an earlier run cannot pass.
    let nonce = format!(
        "{:x}{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
        std::process::id()
    );
    let ign = work.join("config.ign");
    let body = format!("data:,written%20by%20ignition%20{nonce}%0A");
    fs::write(
        &ign,
        serde_json::json!({
            "ignition": {"version": "3.2.0"},
            "storage": {"files": [{
                "path": "/etc/coreos-like/ignition-proof",
                "mode": 420,
                "contents": {"source": body},
            }]},
        })
        .to_string(),
    )
    .unwrap();
    let iso = work.join("live.iso");
    run_ok(
        Command::new(which("coreos-installer").unwrap())
            .args(["iso", "ignition", "embed", "-i"])
            .arg(&ign)
            .arg("-o")
            .arg(&iso)
            .arg(env.os.join("live.iso")),
    );
    let live = live_boot(&iso, &work);
    let mut spec = Spec::new("coreos-ignition", Duration::from_secs(600))
        .arg("nonce", &nonce)
        .arg("commit", &env.commit());
    spec.kernel = Some(live.kernel);
    spec.initrd = Some(live.initrd);
    spec.root_disk = Some(env.os.join("metal.raw"));
    spec.root_args = Some(with_initrd_console(&live.kargs));
    let run = env.boot(name, &spec);
    expect_pass(name, &run);
}
