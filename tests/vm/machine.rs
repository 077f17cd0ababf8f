//! Booting the vm-tests guest under QEMU and reading its verdict.
//!
//! Every boot: `-kernel/-initrd` straight into the guest image (root on a
//! snapshot, so the cached image never changes), no network, the host share
//! on 9p, the console (ttyS0, carrying the journal) and the result channel
//! (ttyS1) in files, a QMP socket, and a hard timeout. QEMU runs in its own
//! process group, killed and reaped when the run ends however it ends.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::qmp;

/// The qdev id of the CD-ROM drive, for QMP.
pub const CDROM_ID: &str = "cdrom0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// The CD-ROM drive of a boot.
#[derive(Debug, Clone)]
pub enum Cdrom {
    None,
    Empty,
    Iso(PathBuf),
}

/// Something the host does when a result line contains `on_line`.
#[derive(Debug, Clone)]
pub struct Hook {
    pub on_line: String,
    pub delay: Duration,
    pub insert_cdrom: PathBuf,
}

/// One boot.
#[derive(Debug, Clone)]
pub struct Spec {
    /// `vm-tests/guest/scenarios/<scenario>.sh`.
    pub scenario: String,
    /// `sprout.KEY=VALUE` kernel arguments, `SPROUT_VM_KEY` in the script.
    pub args: Vec<(String, String)>,
    pub cdrom: Cdrom,
    pub disks: Vec<PathBuf>,
    /// Replaces the image's initramfs.
    pub initrd: Option<PathBuf>,
    /// Replaces the image's kernel (another OS, e.g. the CoreOS-like one).
    pub kernel: Option<PathBuf>,
    /// Replaces the image's root disk (attached with a snapshot unless
    /// `root_writable`).
    pub root_disk: Option<PathBuf>,
    /// The root disk's writes reach the file.
    pub root_writable: bool,
    /// Replaces `root=/dev/vda rw` at the head of the kernel command line.
    pub root_args: Option<Vec<String>>,
    /// More read-only 9p shares: (mount tag, host directory).
    pub shares: Vec<(String, PathBuf)>,
    pub timeout: Duration,
    pub hooks: Vec<Hook>,
}

impl Spec {
    pub fn new(scenario: &str, timeout: Duration) -> Self {
        Spec {
            scenario: scenario.into(),
            args: Vec::new(),
            cdrom: Cdrom::None,
            disks: Vec::new(),
            initrd: None,
            kernel: None,
            root_disk: None,
            root_writable: false,
            root_args: None,
            shares: Vec::new(),
            timeout,
            hooks: Vec::new(),
        }
    }

    pub fn arg(mut self, key: &str, value: &str) -> Self {
        self.args.push((key.into(), value.into()));
        self
    }
}

/// A line of the result channel, with when the host read it.
#[derive(Debug, Clone)]
pub struct Line {
    pub at: Duration,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
    /// The hard timeout ended the boot.
    TimedOut(Duration),
    /// QEMU ended without a verdict.
    Silent(String),
}

/// What a boot did.
#[derive(Debug)]
pub struct Run {
    pub verdict: Verdict,
    pub lines: Vec<Line>,
    /// Hooks that fired, with when.
    pub fired: Vec<(String, Duration)>,
    pub elapsed: Duration,
    pub console: String,
    /// QEMU's process id (and process group).
    pub pid: i32,
    pub dir: PathBuf,
}

impl Run {
    pub fn line(&self, needle: &str) -> Option<&Line> {
        self.lines.iter().find(|l| l.text.contains(needle))
    }

    /// The reason of a failure, or of no verdict, in one line.
    pub fn reason(&self) -> String {
        match &self.verdict {
            Verdict::Pass => "passed".into(),
            Verdict::Fail(r) => r.clone(),
            Verdict::TimedOut(t) => format!(
                "the guest did not finish within {} s and was killed (last console line: {})",
                t.as_secs(),
                self.console
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("none")
                    .trim()
            ),
            Verdict::Silent(why) => format!("the guest gave no verdict: {why}"),
        }
    }

    /// The result channel, then the console (kernel messages and the
    /// journal), for a failure report.
    pub fn report(&self) -> String {
        let mut s = String::from("--- result channel (ttyS1) ---\n");
        for l in &self.lines {
            s.push_str(&format!("[{:7.2}] {}\n", l.at.as_secs_f64(), l.text));
        }
        s.push_str("--- guest console and journal (ttyS0) ---\n");
        s.push_str(&self.console);
        s.push_str(&format!("--- logs kept in {} ---\n", self.dir.display()));
        s
    }

    /// True when no process of QEMU's group is left.
    pub fn nothing_left_running(&self) -> bool {
        killpg(Pid::from_raw(self.pid), None) == Err(nix::errno::Errno::ESRCH)
    }
}

/// Kills the whole process group and reaps QEMU, on every path out.
struct Qemu {
    child: Child,
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Boots the guest in `image` with the host directory `share` per `spec`,
/// logs kept in `dir` (emptied first).
pub fn boot(image: &Path, share: &Path, accel: Accel, dir: &Path, spec: &Spec) -> Run {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    // The QMP socket lives in a short directory of its own: a Unix socket
    // path has at most 107 bytes, which a clone's path plus a long test
    // name can pass.
    let qmp_dir = tempfile::Builder::new()
        .prefix("sprout-qmp")
        .tempdir_in("/tmp")
        .unwrap();
    let (console, result, qmp_sock) = (
        dir.join("console.log"),
        dir.join("result.log"),
        qmp_dir.path().join("qmp.sock"),
    );
    let mut cmdline = spec
        .root_args
        .clone()
        .unwrap_or_else(|| vec!["root=/dev/vda".to_string(), "rw".into()]);
    cmdline.extend([
        "console=ttyS0".to_string(),
        "quiet".into(),
        "systemd.show_status=false".into(),
        "panic=-1".into(),
        // The kernel checks drives for a new medium every 2 s by default
        // (udev's 60-block.rules); what is measured here is sprout's
        // reaction, so the kernel is asked to notice within 100 ms.
        "block.events_dfl_poll_msecs=100".into(),
        format!("sprout.scenario={}", spec.scenario),
    ]);
    cmdline.extend(spec.args.iter().map(|(k, v)| format!("sprout.{k}={v}")));
    let initrd = spec
        .initrd
        .clone()
        .unwrap_or_else(|| image.join("initrd.img"));

    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-machine", "pc", "-m", "1024", "-no-reboot"]);
    match accel {
        Accel::Kvm => cmd.args(["-accel", "kvm", "-cpu", "host", "-smp", "2"]),
        // One vCPU under TCG: with two, a vCPU thread starved by the host
        // (2 cores, also running the test) left the guest in RCU stalls and
        // soft lockups until the scenario timed out.
        Accel::Tcg => cmd.args(["-accel", "tcg", "-smp", "1"]),
    };
    let kernel = spec.kernel.clone().unwrap_or_else(|| image.join("vmlinuz"));
    let root_disk = spec
        .root_disk
        .clone()
        .unwrap_or_else(|| image.join("rootfs.img"));
    let snapshot = if spec.root_writable { "off" } else { "on" };
    cmd.arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(cmdline.join(" "))
        .arg("-drive")
        .arg(format!(
            "file={},if=virtio,format=raw,snapshot={snapshot},cache=unsafe",
            root_disk.display()
        ))
        .arg("-virtfs")
        .arg(format!(
            "local,path={},mount_tag=share,security_model=none,readonly=on",
            share.display()
        ))
        .args(["-nic", "none"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-serial")
        .arg(format!("file:{}", result.display()))
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", qmp_sock.display()));
    match &spec.cdrom {
        Cdrom::None => {}
        Cdrom::Empty => {
            cmd.args(["-drive", "if=none,id=cd0,media=cdrom"]);
        }
        Cdrom::Iso(iso) => {
            cmd.arg("-drive").arg(format!(
                "if=none,id=cd0,media=cdrom,format=raw,readonly=on,file={}",
                iso.display()
            ));
        }
    }
    if !matches!(spec.cdrom, Cdrom::None) {
        cmd.args(["-device", &format!("ide-cd,drive=cd0,id={CDROM_ID}")]);
    }
    for (tag, dir) in &spec.shares {
        cmd.arg("-virtfs").arg(format!(
            "local,path={},mount_tag={tag},security_model=none,readonly=on",
            dir.display()
        ));
    }
    for disk in &spec.disks {
        cmd.arg("-drive")
            .arg(format!("file={},if=virtio,format=raw", disk.display()));
    }
    cmd.stdin(Stdio::null())
        .stdout(File::create(dir.join("qemu.log")).unwrap())
        .stderr(File::create(dir.join("qemu.err")).unwrap())
        .process_group(0);
    // SAFETY: prctl only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Should this test process die without unwinding, QEMU dies too.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    let start = Instant::now();
    let child = cmd.spawn().expect("starting qemu-system-x86_64");
    let pid = child.id() as i32;
    let mut qemu = Qemu { child };

    let mut lines = Vec::new();
    let mut fired = Vec::new();
    let mut pending: Vec<(Instant, Hook)> = Vec::new();
    let mut hooks = spec.hooks.clone();
    let mut reader = Tail::default();
    let mut verdict = None;
    let mut verdict_at = None;
    loop {
        for text in reader.read_lines(&result) {
            let at = start.elapsed();
            if let Some(rest) = text.strip_prefix("SPROUT-VM ") {
                if rest == "pass" {
                    verdict.get_or_insert(Verdict::Pass);
                } else if let Some(why) = rest.strip_prefix("fail ") {
                    verdict.get_or_insert(Verdict::Fail(why.to_string()));
                }
                if verdict.is_some() {
                    verdict_at.get_or_insert(Instant::now());
                }
            }
            hooks.retain(|h| {
                if text.contains(&h.on_line) {
                    pending.push((Instant::now() + h.delay, h.clone()));
                    false
                } else {
                    true
                }
            });
            lines.push(Line { at, text });
        }
        let now = Instant::now();
        for (_, hook) in pending.iter().filter(|(when, _)| *when <= now) {
            let outcome = qmp::insert_cdrom(&qmp_sock, CDROM_ID, &hook.insert_cdrom);
            let at = start.elapsed();
            match outcome {
                Ok(()) => fired.push((hook.on_line.clone(), at)),
                Err(e) => {
                    verdict
                        .get_or_insert(Verdict::Fail(format!("the host's QMP action failed: {e}")));
                    verdict_at.get_or_insert(Instant::now());
                }
            }
        }
        pending.retain(|(when, _)| *when > now);

        match qemu.child.try_wait() {
            Ok(Some(status)) => {
                // Lines written just before the power-off.
                for text in reader.read_lines(&result) {
                    if let Some(r) = text.strip_prefix("SPROUT-VM fail ") {
                        verdict.get_or_insert(Verdict::Fail(r.to_string()));
                    } else if text == "SPROUT-VM pass" {
                        verdict.get_or_insert(Verdict::Pass);
                    }
                    lines.push(Line {
                        at: start.elapsed(),
                        text,
                    });
                }
                verdict.get_or_insert_with(|| {
                    let err = fs::read_to_string(dir.join("qemu.err")).unwrap_or_default();
                    Verdict::Silent(format!("qemu exited with {status}: {}", err.trim()))
                });
                break;
            }
            Ok(None) => {}
            Err(e) => {
                verdict.get_or_insert(Verdict::Silent(format!("waiting for qemu: {e}")));
                break;
            }
        }
        if start.elapsed() >= spec.timeout {
            verdict.get_or_insert(Verdict::TimedOut(spec.timeout));
            break;
        }
        // After the verdict the guest powers itself off; it gets 5 s.
        if verdict_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(qemu);
    Run {
        verdict: verdict.unwrap_or(Verdict::Silent("no verdict".into())),
        lines,
        fired,
        elapsed: start.elapsed(),
        console: fs::read_to_string(&console)
            .map(|c| c.replace('\r', ""))
            .unwrap_or_default(),
        pid,
        dir: dir.to_path_buf(),
    }
}

/// Reads whole new lines of a growing file.
#[derive(Default)]
struct Tail {
    pos: u64,
    partial: String,
}

impl Tail {
    fn read_lines(&mut self, path: &Path) -> Vec<String> {
        let Ok(mut f) = File::open(path) else {
            return Vec::new();
        };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(self.pos)).is_err() || f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        self.pos += buf.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&buf));
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            out.push(line.trim_end_matches(['\n', '\r']).to_string());
        }
        out
    }
}

/// KVM when it really works, TCG otherwise. `SPROUT_VM_ACCEL=kvm|tcg`
/// decides; else KVM needs an openable /dev/kvm, a CPU with vmx or svm, and
/// a probe boot of `vmlinuz` that ends (with a panic: no root) within 20 s.
/// Returns the choice and why.
pub fn choose_accel(vmlinuz: &Path) -> (Accel, String) {
    match std::env::var("SPROUT_VM_ACCEL").as_deref() {
        Ok("kvm") => return (Accel::Kvm, "SPROUT_VM_ACCEL=kvm".into()),
        Ok("tcg") => return (Accel::Tcg, "SPROUT_VM_ACCEL=tcg".into()),
        _ => {}
    }
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let virt = cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
    if !virt {
        return (Accel::Tcg, "the CPU has no vmx/svm flag".into());
    }
    if fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return (Accel::Tcg, "/dev/kvm cannot be opened".into());
    }
    let child = Command::new("qemu-system-x86_64")
        .args(["-nodefaults", "-display", "none", "-no-reboot", "-m", "256"])
        .args(["-accel", "kvm", "-cpu", "host", "-kernel"])
        .arg(vmlinuz)
        .args(["-append", "panic=-1 root=/dev/nonexistent"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn();
    let Ok(child) = child else {
        return (Accel::Tcg, "the KVM probe did not start".into());
    };
    let mut probe = Qemu { child };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = probe.child.try_wait() {
            return (
                Accel::Kvm,
                format!("probe boot ended in {:.1} s", start.elapsed().as_secs_f64()),
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(probe);
    (Accel::Tcg, "a KVM probe boot hung for 20 s".into())
}
