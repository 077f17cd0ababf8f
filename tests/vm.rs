//! vm-tests: sprout's jobs under a real kernel, udev and systemd, in a
//! Debian 12 guest booted by QEMU (KVM if it really works, else TCG).
//!
//! The guest image is built once by `vm-tests/build-image` (debootstrap,
//! cached outside the repository); each test is one boot running one
//! script of `vm-tests/guest/scenarios/`, and they run one at a time. All:
//! `cargo test --test vm`; one: `cargo test --test vm -- a_cdrom_at_boot`.
//! Needs root and qemu-system-x86_64 + debootstrap (scripts/setup.sh);
//! prints `SKIP:` without them, and fails under `CI=true`.
//! `SPROUT_VM_TESTS=skip` skips on purpose (also under CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "vm/machine.rs"]
mod machine;
#[path = "vm/qmp.rs"]
mod qmp;
mod support;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use machine::{Accel, Cdrom, Hook, Run, Spec, Verdict};
use support::*;

/// What all boots share, made once per test process.
struct Env {
    image: PathBuf,
    accel: Accel,
    /// The 9p share: sprout, vm-tests/guest/, systemd/.
    share: tempfile::TempDir,
    /// `sprout create config-image` of examples/config-image.
    iso: PathBuf,
    work: tempfile::TempDir,
}

/// Boots run one at a time: two TCG guests on two cores only slow each
/// other down past their timeouts.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
/// The reason given when the vm-tests are skipped on purpose.
const VM_TESTS_SKIP: &str = "SPROUT_VM_TESTS=skip";
static ENV: OnceLock<Result<Env, String>> = OnceLock::new();

/// Unbuffered, uncaptured: timings show in `cargo test` output.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "vm-tests: {msg}");
}

/// The environment, or `None` after a loud skip line.
fn env(test: &str) -> Option<(MutexGuard<'static, ()>, &'static Env)> {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    match ENV.get_or_init(setup) {
        Ok(env) => Some((guard, env)),
        // Under CI nothing may skip, not even on purpose: a green CI run
        // must mean the scenarios ran.
        Err(why) if in_ci() => {
            panic!("{test} would be skipped, but CI=true: {why}")
        }
        Err(why) => {
            say(&format!("SKIP: {test}: {why}"));
            None
        }
    }
}

fn setup() -> Result<Env, String> {
    if std::env::var("SPROUT_VM_TESTS").as_deref() == Ok("skip") {
        return Err(VM_TESTS_SKIP.into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { nix::libc::geteuid() } != 0 {
        return Err("vm-tests need root (debootstrap, chroot, mounts); CI runs as root".into());
    }
    for tool in [
        "qemu-system-x86_64",
        "debootstrap",
        "mkfs.ext4",
        "sfdisk",
        "xorriso",
    ] {
        if which(tool).is_none() {
            return Err(format!("{tool} is not installed (run scripts/setup.sh)"));
        }
    }
    let started = Instant::now();
    let out = Command::new(repo().join("vm-tests/build-image"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running vm-tests/build-image");
    assert!(out.status.success(), "vm-tests/build-image failed");
    let image = PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("build-image printed the image directory")
            .trim(),
    );
    say(&format!(
        "guest image {} ready in {:.1} s",
        image.display(),
        started.elapsed().as_secs_f64()
    ));
    let (accel, why) = machine::choose_accel(&image.join("vmlinuz"));
    say(&format!("accelerator: {accel:?} ({why})"));

    let share = tempfile::tempdir().unwrap();
    fs::copy(env!("CARGO_BIN_EXE_sprout"), share.path().join("sprout")).unwrap();
    copy_dir(
        &repo().join("vm-tests/guest"),
        &share.path().join("vm-tests/guest"),
    );
    copy_dir(&repo().join("systemd"), &share.path().join("systemd"));

    let work = tempfile::tempdir().unwrap();
    let cfg = copy_example("config-image");
    let o = sprout(&[
        "create",
        "config-image",
        "--dir",
        cfg.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "config-image failed: {}", stderr(&o));
    let iso = work.path().join("imagebasedconfig.iso");
    fs::copy(cfg.path().join("imagebasedconfig.iso"), &iso).unwrap();
    Ok(Env {
        image,
        accel,
        share,
        iso,
        work,
    })
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
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
        let run = machine::boot(&self.image, self.share.path(), self.accel, &dir, spec);
        assert!(
            run.nothing_left_running(),
            "{name}: a qemu process is still running"
        );
        run
    }
}

/// Passes, or fails the test with the guest's whole story.
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

/// Acceptance (a): the ISO attached at boot is found by label and mounted.
#[test]
fn a_cdrom_at_boot() {
    let Some((_g, env)) = env("a_cdrom_at_boot") else {
        return;
    };
    let mut spec = Spec::new("discover", Duration::from_secs(120))
        .arg("expect_device", "/dev/sr0")
        .arg("expect_by", "enumeration")
        .arg("timeout", "60");
    spec.cdrom = Cdrom::Iso(env.iso.clone());
    let run = env.boot("a_cdrom_at_boot", &spec);
    expect_pass("a_cdrom_at_boot", &run);
}

/// Acceptance (b): the ISO inserted 10 s after sprout started waiting is
/// found through a udev event within 1 s.
#[test]
fn b_cdrom_inserted_later() {
    let Some((_g, env)) = env("b_cdrom_inserted_later") else {
        return;
    };
    let mut spec = Spec::new("discover", Duration::from_secs(150))
        .arg("expect_device", "/dev/sr0")
        .arg("expect_by", "udev-event")
        .arg("timeout", "90");
    spec.cdrom = Cdrom::Empty;
    spec.hooks.push(Hook {
        on_line: "waiting for a block device labelled".into(),
        delay: Duration::from_secs(10),
        insert_cdrom: env.iso.clone(),
    });
    let run = env.boot("b_cdrom_inserted_later", &spec);
    expect_pass("b_cdrom_inserted_later", &run);
    let inserted = run.fired.first().expect("the ISO was inserted").1;
    let found = run
        .line("found /dev/sr0")
        .expect("sprout reported the device")
        .at;
    let latency = found.saturating_sub(inserted);
    say(&format!(
        "b_cdrom_inserted_later: found {:.2} s after the insertion (QMP) through a udev event",
        latency.as_secs_f64()
    ));
    // For benches/run's "config discovery latency (VM)" row: insertion →
    // found, and insertion → mounted and copied.
    let copied = run
        .line("configuration copied from /dev/sr0")
        .expect("sprout reported the copy")
        .at
        .saturating_sub(inserted);
    std::fs::write(
        run.dir.join("discovery-latency.json"),
        format!(
            "{{\"found_s\": {:.3}, \"copied_s\": {:.3}}}\n",
            latency.as_secs_f64(),
            copied.as_secs_f64()
        ),
    )
    .unwrap();
    assert!(
        latency < Duration::from_secs(1),
        "found {latency:?} after the insertion"
    );
}

/// Acceptance (c): a partition labelled cluster-config on a second disk.
#[test]
fn c_partition_on_second_disk() {
    let Some((_g, env)) = env("c_partition_on_second_disk") else {
        return;
    };
    let disk = partitioned_disk(env, &env.iso);
    let mut spec = Spec::new("discover", Duration::from_secs(120))
        .arg("expect_device", "/dev/vdb1")
        .arg("expect_by", "enumeration")
        .arg("timeout", "60");
    spec.disks.push(disk);
    let run = env.boot("c_partition_on_second_disk", &spec);
    expect_pass("c_partition_on_second_disk", &run);
}

/// A GPT disk whose only partition holds `iso` (an ISO written to a
/// partition of a USB stick).
fn partitioned_disk(env: &Env, iso: &Path) -> PathBuf {
    let disk = env.work.path().join("stick.img");
    let iso_bytes = fs::read(iso).unwrap();
    let sectors = (iso_bytes.len() as u64).div_ceil(1 << 20) * 2048;
    let f = fs::File::create(&disk).unwrap();
    f.set_len((sectors + 4096) * 512).unwrap();
    drop(f);
    let mut child = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(&disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(
        child.stdin.take().unwrap(),
        "label: gpt\nstart=2048, size={sectors}, name=config"
    )
    .unwrap();
    assert!(child.wait().unwrap().success(), "sfdisk failed");
    let mut f = fs::OpenOptions::new().write(true).open(&disk).unwrap();
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(2048 * 512)).unwrap();
    f.write_all(&iso_bytes).unwrap();
    disk
}

/// The units of systemd/ started for real: Type=notify readiness and
/// status, the udev-driven finish, journal fields.
#[test]
fn units_run_under_systemd() {
    let Some((_g, env)) = env("units_run_under_systemd") else {
        return;
    };
    let mut spec = Spec::new("units", Duration::from_secs(150));
    spec.cdrom = Cdrom::Empty;
    spec.hooks.push(Hook {
        on_line: "SPROUT-VM host insert-cdrom".into(),
        delay: Duration::ZERO,
        insert_cdrom: env.iso.clone(),
    });
    let run = env.boot("units_run_under_systemd", &spec);
    expect_pass("units_run_under_systemd", &run);
}

/// An initramfs built by dracut with sprout's module runs sprout and hands
/// it, with its units, to the booted system.
#[test]
fn dracut_module_carries_sprout() {
    let Some((_g, env)) = env("dracut_module_carries_sprout") else {
        return;
    };
    let initrd = env.work.path().join("initrd-sprout.img");
    let started = Instant::now();
    let st = Command::new(repo().join("vm-tests/build-dracut-initrd"))
        .arg(&env.image)
        .arg(env!("CARGO_BIN_EXE_sprout"))
        .arg(repo())
        .arg(&initrd)
        .status()
        .unwrap();
    assert!(st.success(), "vm-tests/build-dracut-initrd failed");
    say(&format!(
        "dracut_module_carries_sprout: initramfs with the sprout module built in {:.1} s ({} MiB)",
        started.elapsed().as_secs_f64(),
        fs::metadata(&initrd).unwrap().len() >> 20
    ));
    let mut spec = Spec::new("dracut", Duration::from_secs(180));
    spec.initrd = Some(initrd);
    spec.cdrom = Cdrom::Iso(env.iso.clone());
    let run = env.boot("dracut_module_carries_sprout", &spec);
    expect_pass("dracut_module_carries_sprout", &run);
}

/// Acceptance 4: a broken scenario (an ISO with the wrong label) fails
/// with a readable reason, within its timeout, leaving nothing running.
#[test]
fn broken_wrong_label_fails_readably() {
    let Some((_g, env)) = env("broken_wrong_label_fails_readably") else {
        return;
    };
    let tree = extract_iso(&env.iso);
    let wrong = env.work.path().join("wrong-label.iso");
    let o = Command::new("xorriso")
        .args([
            "-as",
            "mkisofs",
            "-quiet",
            "-V",
            "other-label",
            "-J",
            "-R",
            "-o",
        ])
        .arg(&wrong)
        .arg(tree.path().join("root"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "xorriso: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut spec = Spec::new("discover", Duration::from_secs(120)).arg("timeout", "5");
    spec.cdrom = Cdrom::Iso(wrong);
    let run = env.boot("broken_wrong_label_fails_readably", &spec);
    let reason = run.reason();
    say(&format!(
        "broken_wrong_label_fails_readably: failed as it should in {:.1} s: {reason}",
        run.elapsed.as_secs_f64()
    ));
    assert!(matches!(run.verdict, Verdict::Fail(_)), "{}", run.report());
    assert!(
        reason.contains("no usable block device labelled cluster-config or relocation-config appeared within 5 s")
            && reason.contains("/dev/sr0 (iso9660, label other-label)")
            && reason.contains("Attach the configuration ISO"),
        "unexpected reason: {reason}"
    );
    assert!(run.elapsed < spec.timeout);
}

/// Acceptance 4: a guest that never finishes is killed at its hard timeout,
/// with the reason, and no QEMU is left.
#[test]
fn broken_hung_guest_is_killed_at_timeout() {
    let Some((_g, env)) = env("broken_hung_guest_is_killed_at_timeout") else {
        return;
    };
    let spec = Spec::new("hang", Duration::from_secs(6));
    let run = env.boot("broken_hung_guest_is_killed_at_timeout", &spec);
    say(&format!(
        "broken_hung_guest_is_killed_at_timeout: {:.1} s: {}",
        run.elapsed.as_secs_f64(),
        run.reason()
    ));
    assert_eq!(run.verdict, Verdict::TimedOut(Duration::from_secs(6)));
    assert!(
        run.reason()
            .contains("did not finish within 6 s and was killed")
    );
    assert!(run.elapsed < Duration::from_secs(8));
    assert!(run.nothing_left_running());
}
