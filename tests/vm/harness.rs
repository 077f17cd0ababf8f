//! What the vm-tests crates share around `machine`: messages, finding
//! tools, the build scripts of vm-tests/, the share's contents, the verdict
//! check, and reading an installed disk's boot entry from the host.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::machine::{Run, Verdict};
use crate::support::repo;

/// A line on the test's stderr, prefixed so the CI log can be grepped.
pub fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "vm-tests: {msg}");
}

/// `tool` on PATH, in the sbin directories, or in ~/.cargo/bin (where
/// scripts/setup.d installs coreos-installer).
pub fn which(tool: &str) -> Option<PathBuf> {
    let home_cargo = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"));
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .chain(home_cargo)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Why the vm-tests cannot run here, or `None`: `SPROUT_VM_TESTS=skip`,
/// not root, or one of `tools` missing.
pub fn cannot_run(tools: &[&str]) -> Option<String> {
    if std::env::var("SPROUT_VM_TESTS").as_deref() == Ok("skip") {
        return Some("SPROUT_VM_TESTS=skip".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { nix::libc::geteuid() } != 0 {
        return Some(
            "vm-tests need root (debootstrap, chroot, ostree sysroot); CI runs as root".into(),
        );
    }
    tools
        .iter()
        .find(|t| which(t).is_none())
        .map(|t| format!("{t} is not installed (run scripts/setup.sh)"))
}

/// Skips `test` with `why`, except under `CI=true` (where a skip would
/// prove nothing) unless the skip was asked for (`SPROUT_VM_TESTS=skip`).
pub fn skip(test: &str, why: &str) {
    let on_purpose = std::env::var("SPROUT_VM_TESTS").as_deref() == Ok("skip");
    assert!(
        on_purpose || std::env::var("CI").as_deref() != Ok("true"),
        "{test}: cannot run under CI: {why}"
    );
    say(&format!("SKIP: {test}: {why}"));
}

/// Runs a build script of vm-tests/ and returns the directory it printed.
pub fn build(script: &str) -> PathBuf {
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

pub fn copy_dir(from: &Path, to: &Path) {
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

/// A scratch directory under target/vm-tests (not /tmp: the disks and
/// seeds are large, and a test process's statics are never dropped, so
/// a temp directory would stay behind after every run). Emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = repo().join("target/vm-tests/scratch").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Says the notes of a passed run, or prints its report and panics.
pub fn expect_pass(name: &str, run: &Run) {
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

pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The first sector and the size in sectors of `disk`'s GPT partition
/// named `name`: `Err` with what sfdisk said or saw when there is none
/// (also when the disk has no partition table yet).
fn partition_extent(disk: &Path, name: &str) -> Result<(u64, u64), String> {
    let o = Command::new("sfdisk")
        .arg("--json")
        .arg(disk)
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let table: serde_json::Value =
        serde_json::from_slice(&o.stdout).map_err(|e| format!("sfdisk --json: {e}"))?;
    table["partitiontable"]["partitions"]
        .as_array()
        .and_then(|parts| parts.iter().find(|p| p["name"] == name))
        .and_then(|p| Some((p["start"].as_u64()?, p["size"].as_u64()?)))
        .ok_or_else(|| format!("no partition named {name}: {table}"))
}

/// The file system of the GPT partition named `name` in `disk`, copied
/// out to a file (the host kernel reads no partition tables of files).
pub fn partition_image(disk: &Path, name: &str, out: &Path) {
    let (start, size) =
        partition_extent(disk, name).unwrap_or_else(|e| panic!("{}: {e}", disk.display()));
    run_ok(
        Command::new("dd")
            .arg(format!("if={}", disk.display()))
            .arg(format!("of={}", out.display()))
            .args(["bs=512", "status=none", "conv=sparse"])
            .arg(format!("skip={start}"))
            .arg(format!("count={size}")),
    );
}

/// The file `path` in the ext4 file system of `disk`'s partition named
/// `name`, read with debugfs in place (no copy of the partition); `None`
/// when it is not there (also when the disk has no partition table yet).
pub fn read_on_partition(disk: &Path, name: &str, path: &str) -> Option<Vec<u8>> {
    let (start, _) = partition_extent(disk, name).ok()?;
    let o = Command::new("debugfs")
        .args(["-R", &format!("cat {path}")])
        .arg(format!("{}?offset={}", disk.display(), start * 512))
        .output()
        .unwrap();
    (o.status.success() && !o.stdout.is_empty()).then_some(o.stdout)
}

/// A deployment's boot entry, kernel and initramfs, read from the boot
/// partition of an installed disk with debugfs.
pub struct BootEntry {
    /// The entry's file name in /loader/entries.
    pub name: String,
    pub options: Vec<String>,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
}

/// The boot entry of `disk` whose `options` contain `wanted` (the first
/// `ostree-*.conf` when `wanted` is empty).
pub fn read_boot_entry(disk: &Path, work: &Path, wanted: &str) -> BootEntry {
    let boot = work.join("boot.ext4");
    partition_image(disk, "boot", &boot);
    let debugfs = |request: &str| -> String {
        String::from_utf8(run_ok(
            Command::new("debugfs").args(["-R", request]).arg(&boot),
        ))
        .unwrap()
    };
    let listing = debugfs("ls -p /loader/entries");
    let (name, conf) = listing
        .lines()
        .filter_map(|l| l.split('/').nth(5))
        .filter(|n| n.starts_with("ostree-") && n.ends_with(".conf"))
        .map(|n| (n.to_string(), debugfs(&format!("cat /loader/entries/{n}"))))
        .find(|(_, conf)| conf.contains(wanted))
        .unwrap_or_else(|| {
            panic!("no ostree-*.conf with '{wanted}' in /loader/entries: {listing}")
        });
    let field = |key: &str| {
        conf.lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("{name} has no {key} line: {conf}"))
    };
    let (kernel, initrd) = (work.join("vmlinuz"), work.join("initramfs.img"));
    for (from, to) in [(field("linux "), &kernel), (field("initrd "), &initrd)] {
        let _ = fs::remove_file(to);
        debugfs(&format!("dump {from} {}", to.display()));
        assert!(
            fs::metadata(to).map(|m| m.len() > 0).unwrap_or(false),
            "debugfs could not dump {from} from the boot partition"
        );
    }
    let _ = fs::remove_file(&boot);
    BootEntry {
        options: field("options ")
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        name,
        kernel,
        initrd,
    }
}

/// `kargs` plus what makes a failing initramfs readable and short: its
/// journal on the console, and a power-off instead of an emergency shell.
pub fn with_initrd_console(kargs: &[String]) -> Vec<String> {
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

/// What a CoreOS live boot of `iso` loads: the kernel, the initramfs with
/// the Ignition embed area appended (the kernel unpacks concatenated
/// archives and skips the zero padding), and the ISO's kernel arguments.
pub struct LiveBoot {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub kargs: Vec<String>,
}

pub fn live_boot(iso: &Path, work: &Path) -> LiveBoot {
    let installer = which("coreos-installer").expect("coreos-installer is installed");
    let files = work.join("iso");
    let _ = fs::remove_dir_all(&files);
    run_ok(
        Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(iso)
            .arg("-extract")
            .arg("/images")
            .arg(&files),
    );
    let mut initrd = fs::read(files.join("pxeboot/initrd.img")).unwrap();
    initrd.extend(fs::read(files.join("ignition.img")).unwrap());
    let initrd_path = work.join("initrd-with-ignition.img");
    fs::write(&initrd_path, &initrd).unwrap();
    let kargs = String::from_utf8(run_ok(
        Command::new(installer)
            .args(["iso", "kargs", "show"])
            .arg(iso),
    ))
    .unwrap();
    LiveBoot {
        kernel: files.join("pxeboot/vmlinuz"),
        initrd: initrd_path,
        kargs: kargs.split_whitespace().map(str::to_string).collect(),
    }
}
