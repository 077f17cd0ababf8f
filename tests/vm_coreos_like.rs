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
#[path = "vm/machine.rs"]
mod machine;
#[allow(dead_code)]
#[path = "vm/qmp.rs"]
mod qmp;
mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use machine::{Accel, Run, Spec, Verdict};
use support::*;

/// What the boots share, made once per test process.
struct Env {
    /// The Debian guest (vm-tests/build-image).
    guest: PathBuf,
    /// The CoreOS-like OS (vm-tests/build-coreos-like).
    os: PathBuf,
    accel: Accel,
    /// The 9p share: sprout, coreos-installer, vm-tests/guest/, systemd/.
    share: tempfile::TempDir,
    work: tempfile::TempDir,
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static ENV: OnceLock<Result<Env, String>> = OnceLock::new();

fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "vm-tests: {msg}");
}

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

fn which(tool: &str) -> Option<PathBuf> {
    let home_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .chain(home_cargo)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Runs a build script of vm-tests/ and returns the directory it printed.
fn build(script: &str) -> PathBuf {
    let started = Instant::now();
    let out = Command::new(repo().join("vm-tests").join(script))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "vm-tests/{script} failed");
    let dir = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("the build script printed its directory")
            .trim(),
    );
    say(&format!(
        "{script}: {} ready in {:.1} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    ));
    dir
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
        "debugfs",
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
    copy_dir(&repo().join("systemd"), &share.path().join("systemd"));
    Ok(Env {
        guest,
        os,
        accel,
        share,
        work: tempfile::tempdir().unwrap(),
    })
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
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

    fn commit(&self) -> String {
        fs::read_to_string(self.os.join("commit"))
            .unwrap()
            .trim()
            .to_string()
    }
}

fn expect_pass(name: &str, run: &Run) {
    if run.verdict == Verdict::Pass {
        say(&format!(
            "{name}: pass in {:.1} s",
            run.elapsed.as_secs_f64()
        ));
        for l in run
            .lines
            .iter()
            .filter(|l| l.text.starts_with("SPROUT-VM note "))
        {
            say(&format!("{name}:   {}", &l.text["SPROUT-VM note ".len()..]));
        }
        return;
    }
    eprintln!("{}", run.report());
    say(&format!(
        "{name}: FAILED in {:.1} s: {}",
        run.elapsed.as_secs_f64(),
        run.reason()
    ));
    panic!("{name}: {}", run.reason());
}

fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The ext4 filesystem of the GPT partition named `name` in `disk`, copied
/// out to a file (the host kernel reads no partition tables).
fn partition_image(disk: &Path, name: &str, out: &Path) {
    let table: serde_json::Value =
        serde_json::from_slice(&run_ok(Command::new("sfdisk").arg("--json").arg(disk))).unwrap();
    let part = table["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{} has no partition named {name}: {table}", disk.display()));
    let (start, size) = (
        part["start"].as_u64().unwrap(),
        part["size"].as_u64().unwrap(),
    );
    run_ok(
        Command::new("dd")
            .arg(format!("if={}", disk.display()))
            .arg(format!("of={}", out.display()))
            .args(["bs=512", "status=none", "conv=sparse"])
            .arg(format!("skip={start}"))
            .arg(format!("count={size}")),
    );
}

/// The deployment's boot entry, kernel and initramfs, read from the boot
/// partition of an installed disk with debugfs.
struct BootEntry {
    options: Vec<String>,
    kernel: PathBuf,
    initrd: PathBuf,
}

fn read_boot_entry(disk: &Path, work: &Path) -> BootEntry {
    let boot = work.join("boot.ext4");
    partition_image(disk, "boot", &boot);
    let debugfs = |request: &str| -> String {
        String::from_utf8(run_ok(
            Command::new("debugfs").args(["-R", request]).arg(&boot),
        ))
        .unwrap()
    };
    let listing = debugfs("ls -p /loader/entries");
    let entry = listing
        .lines()
        .filter_map(|l| l.split('/').nth(5))
        .find(|n| n.starts_with("ostree-") && n.ends_with(".conf"))
        .unwrap_or_else(|| panic!("no ostree-*.conf in /loader/entries: {listing}"))
        .to_string();
    let conf = debugfs(&format!("cat /loader/entries/{entry}"));
    let field = |key: &str| {
        conf.lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("{entry} has no {key} line: {conf}"))
    };
    let (kernel, initrd) = (work.join("vmlinuz"), work.join("initramfs.img"));
    for (from, to) in [(field("linux "), &kernel), (field("initrd "), &initrd)] {
        debugfs(&format!("dump {from} {}", to.display()));
        assert!(
            fs::metadata(to).map(|m| m.len() > 0).unwrap_or(false),
            "debugfs could not dump {from} from the boot partition"
        );
    }
    BootEntry {
        options: field("options ")
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        kernel,
        initrd,
    }
}

/// `kargs` plus what makes a failing initramfs readable and short: its
/// journal on the console, and a power-off instead of an emergency shell.
fn with_initrd_console(kargs: &[String]) -> Vec<String> {
    let mut all = kargs.to_vec();
    all.extend(
        [
            "systemd.journald.forward_to_console=1",
            "rd.shell=0",
            "rd.emergency=poweroff",
        ]
        .map(str::to_string),
    );
    all
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
    let disk = env.work.path().join("installed.raw");
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

    let entry = read_boot_entry(&disk, env.work.path());
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
    let work = env.work.path().join("live");
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
    // What a CoreOS live boot loads: the kernel, the initramfs with the
    // embed area appended, the kernel arguments of the ISO.
    let files = work.join("iso");
    run_ok(
        Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(&iso)
            .arg("-extract")
            .arg("/images")
            .arg(&files),
    );
    let mut initrd = fs::read(files.join("pxeboot/initrd.img")).unwrap();
    initrd.extend(fs::read(files.join("ignition.img")).unwrap());
    let initrd_path = work.join("initrd-with-ignition.img");
    fs::write(&initrd_path, &initrd).unwrap();
    let kargs = String::from_utf8(run_ok(
        Command::new(which("coreos-installer").unwrap())
            .args(["iso", "kargs", "show"])
            .arg(&iso),
    ))
    .unwrap();
    let mut spec = Spec::new("coreos-ignition", Duration::from_secs(600))
        .arg("nonce", &nonce)
        .arg("commit", &env.commit());
    spec.kernel = Some(files.join("pxeboot/vmlinuz"));
    spec.initrd = Some(initrd_path);
    spec.root_disk = Some(env.os.join("metal.raw"));
    let kargs: Vec<String> = kargs.split_whitespace().map(str::to_string).collect();
    spec.root_args = Some(with_initrd_console(&kargs));
    let run = env.boot(name, &spec);
    expect_pass(name, &run);
}
