//! The journey's phases as the host drives them: each boot's outcome made
//! into a readable failure (the phase, the step, the guest's journal
//! excerpt), and the table of phases and their slowest steps.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::harness::*;
use crate::machine::{self, Accel, Cdrom, Run, Spec, Verdict};
use crate::support::repo;
use crate::workstation::{self, TARGET_BYTES, Workstation};

/// The boots of this test process, one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Factory,
    Edge,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Factory => "factory",
            Phase::Edge => "edge",
        }
    }
}

/// Why a phase did not end well, as the test prints it.
#[derive(Debug)]
pub struct PhaseFailure {
    pub phase: Phase,
    pub reason: String,
    /// The guest's journal lines nearest the failure.
    pub excerpt: Vec<String>,
    pub logs: PathBuf,
}

impl fmt::Display for PhaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the {} phase failed: {}", self.phase.name(), self.reason)?;
        writeln!(f, "the guest's journal near the failure:")?;
        for l in &self.excerpt {
            writeln!(f, "  {l}")?;
        }
        write!(f, "logs: {}", self.logs.display())
    }
}

/// One row of the table.
struct Row {
    phase: &'static str,
    wall: Duration,
    /// (step, milliseconds), slowest first.
    steps: Vec<(String, u64)>,
}

pub struct Journey {
    pub name: String,
    guest: PathBuf,
    os: PathBuf,
    accel: Accel,
    pub ws: Workstation,
    /// target/vm-tests/<name>: logs, phases.txt.
    pub dir: PathBuf,
    work: PathBuf,
    /// The factory's installation disk, the edge's boot disk.
    pub target: PathBuf,
    rows: Vec<Row>,
    _one: MutexGuard<'static, ()>,
}

impl Journey {
    /// Builds the OS images and runs the workstation phase; `None` when
    /// the VM tests cannot run here (a failure under CI).
    pub fn start(name: &str) -> Option<Journey> {
        let one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let tools = [
            "qemu-system-x86_64",
            "debootstrap",
            "mkfs.ext4",
            "mkfs.vfat",
            "sfdisk",
            "debugfs",
            "xorriso",
            "ostree",
            "strip",
            "coreos-installer",
        ];
        if let Some(why) = cannot_run(&tools) {
            skip(name, &why);
            return None;
        }
        let guest = build("build-image");
        let os = build("build-coreos-like");
        let (accel, why) = machine::choose_accel(&guest.join("vmlinuz"));
        say(&format!("accelerator: {accel:?} ({why})"));
        let share = scratch(&format!("{name}-share"));
        let work = scratch(&format!("{name}-work"));
        // Stripped (a third of the debug build's size): it is the agent
        // image's /sprout, which the live system pulls and copies onto its
        // root, a snapshot of the metal image with about 220 MiB free.
        run_ok(
            Command::new("strip")
                .arg("-o")
                .arg(share.join("sprout"))
                .arg(env!("CARGO_BIN_EXE_sprout")),
        );
        fs::copy(
            which("coreos-installer").unwrap(),
            share.join("coreos-installer"),
        )
        .unwrap();
        copy_dir(
            &repo().join("vm-tests/guest"),
            &share.join("vm-tests/guest"),
        );
        let started = Instant::now();
        let ws = workstation::prepare(&os, &share, &work);
        say(&format!(
            "{name}: workstation: seed and images in {:.1} s, create image + config-image in {:.1} s",
            ws.seed_time.as_secs_f64(),
            ws.create_time.as_secs_f64()
        ));
        let rows = vec![Row {
            phase: "workstation",
            wall: started.elapsed(),
            steps: vec![
                (
                    "seed and images (test support)".into(),
                    millis(ws.seed_time),
                ),
                ("create image + config-image".into(), millis(ws.create_time)),
            ],
        }];
        let dir = repo().join("target/vm-tests").join(name);
        fs::create_dir_all(&dir).unwrap();
        Some(Journey {
            name: name.to_string(),
            guest,
            os,
            accel,
            target: work.join("target.raw"),
            ws,
            dir,
            work,
            rows,
            _one: one,
        })
    }

    fn boot(&self, phase: &str, spec: &Spec) -> Run {
        let dir = self.dir.join(phase);
        let run = machine::boot(&self.guest, &self.ws.share, self.accel, &dir, spec);
        assert!(
            run.nothing_left_running(),
            "{}: {phase}: a qemu process is still running",
            self.name
        );
        run
    }

    /// The factory phase: a blank target, the live boot of `iso`; its logs
    /// in `<dir>/<label>`. `fault` (the guest's `SPROUT_VM_FAULT`) makes a
    /// part of the factory fail: `install`, coreos-installer's write.
    pub fn factory(
        &mut self,
        iso: &Path,
        label: &str,
        fault: Option<&str>,
    ) -> Result<(), PhaseFailure> {
        let phase = Phase::Factory;
        let _ = fs::remove_file(&self.target);
        let f = fs::File::create(&self.target).unwrap();
        f.set_len(TARGET_BYTES).unwrap();
        drop(f);
        let live = live_boot(iso, &self.work);
        let mut spec = Spec::new("journey-factory", Duration::from_secs(1800))
            .arg("target", "/dev/vdb")
            .arg("registry", "/dev/vdc");
        if let Some(f) = fault {
            spec = spec.arg("fault", f);
        }
        spec.kernel = Some(live.kernel);
        spec.initrd = Some(live.initrd);
        // The live root: the metal image, read-only (a snapshot), in place
        // of RHCOS's squashfs in RAM.
        spec.root_disk = Some(self.os.join("metal.raw"));
        spec.root_args = Some(with_initrd_console(&live.kargs));
        spec.disks.push(self.target.clone());
        spec.disks.push(self.ws.registry_disk.clone());
        spec.shares.push(("coreos-like".into(), self.os.clone()));
        let run = self.boot(label, &spec);
        // ibi powers the machine off at the end, which stops the scenario
        // with everything else (often before it can say anything): after
        // a clean power-off the verdict is the report ibi left on the
        // disk it installed.
        let powered_off =
            matches!(run.verdict, Verdict::Silent(_)) && run.console.contains("reboot: Power down");
        let report = powered_off
            .then(|| read_on_partition(&self.target, "root", "/var/lib/sprout/ibi-report.json"))
            .flatten()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        match report {
            Some(r) if r["outcome"] == "succeeded" => {
                say(&format!(
                    "{}: {label}: powered off by ibi; its report on the disk says succeeded",
                    self.name
                ));
            }
            Some(r) => {
                return Err(PhaseFailure {
                    phase,
                    reason: format!(
                        "the machine powered off, but ibi's report says {} at step {}",
                        r["outcome"], r["failed_step"]
                    ),
                    excerpt: excerpt(&run),
                    logs: run.dir.clone(),
                });
            }
            None => self.verdict(phase, &run)?,
        }
        self.rows.push(Row {
            phase: "factory",
            wall: run.elapsed,
            steps: Vec::new(),
        });
        Ok(())
    }

    /// The edge phase on a throwaway copy of the installed disk (a QEMU
    /// snapshot, the disk itself unchanged): a first boot that must fail,
    /// e.g. with a configuration the seed cannot take.
    pub fn edge_on_snapshot(&self, config_iso: &Path, label: &str) -> Result<(), PhaseFailure> {
        let run = self.edge_boot(config_iso, label, false);
        self.verdict(Phase::Edge, &run)
    }

    fn edge_boot(&self, config_iso: &Path, label: &str, writable: bool) -> Run {
        let entry = read_boot_entry(&self.target, &self.work, &self.ws.stateroot);
        say(&format!(
            "{}: {label}: boot entry {}: {}",
            self.name,
            entry.name,
            entry.options.join(" ")
        ));
        let mut options = entry.options.clone();
        // CoreOS's initramfs mounts the partition labelled `root` when no
        // root= is given (ignition-ostree-mount-sysroot); this OS's needs
        // it said.
        if !options.iter().any(|o| o.starts_with("root=")) {
            options.extend(["root=LABEL=root".to_string(), "rw".into()]);
        }
        let mut spec = Spec::new("journey-edge", Duration::from_secs(1800));
        spec.kernel = Some(entry.kernel.clone());
        spec.initrd = Some(entry.initrd.clone());
        spec.root_disk = Some(self.target.clone());
        spec.root_writable = writable;
        spec.root_args = Some(with_initrd_console(&options));
        spec.cdrom = Cdrom::Iso(config_iso.to_path_buf());
        self.boot(label, &spec)
    }

    /// The edge phase: the installed disk booted with `config_iso`.
    pub fn edge(&mut self, config_iso: &Path) -> Result<(), PhaseFailure> {
        let run = self.edge_boot(config_iso, "edge", true);
        self.verdict(Phase::Edge, &run)?;
        let ibi = self.report(&run, "ibi-report");
        let pp = self.report(&run, "post-pivot-status");
        // The factory's steps are known once the edge can read its report.
        if let Some(row) = self.rows.iter_mut().find(|r| r.phase == "factory") {
            row.steps = slowest(&ibi);
        }
        self.rows.push(Row {
            phase: "edge",
            wall: run.elapsed,
            steps: slowest(&pp),
        });
        Ok(())
    }

    /// A passed run, or the phase's failure with the guest's words.
    fn verdict(&self, phase: Phase, run: &Run) -> Result<(), PhaseFailure> {
        if run.verdict == Verdict::Pass {
            expect_pass(&format!("{}: {}", self.name, phase.name()), run);
            return Ok(());
        }
        eprintln!("{}", run.report());
        let begun = run.line("SPROUT-VM begin").is_some();
        let reason = match (&run.verdict, begun) {
            // The initramfs gave up before the system came up: for a live
            // boot that is Ignition's doing, which the console says.
            (Verdict::Silent(_) | Verdict::TimedOut(_), false) => {
                let ign: Vec<&str> = run
                    .console
                    .lines()
                    .filter(|l| l.contains("ignition") && is_failure(l))
                    .take(3)
                    .collect();
                if ign.is_empty() {
                    format!("the boot never reached the system: {}", run.reason())
                } else {
                    format!(
                        "Ignition failed in the initramfs: {}",
                        ign.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" | ")
                    )
                }
            }
            _ => run.reason(),
        };
        Err(PhaseFailure {
            phase,
            reason,
            excerpt: excerpt(run),
            logs: run.dir.clone(),
        })
    }

    fn report(&self, run: &Run, name: &str) -> serde_json::Value {
        let prefix = format!("SPROUT-VM file {name} ");
        let line = run
            .lines
            .iter()
            .find_map(|l| l.text.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{}: the edge phase did not hand over {name}", self.name));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(line.trim())
            .unwrap();
        fs::write(self.dir.join(format!("{name}.json")), &bytes).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// phase | wall time | slowest steps, one line each.
    pub fn table(&self) -> String {
        let mut s = format!("{:<12} {:>9}  slowest steps\n", "phase", "wall");
        for r in &self.rows {
            let steps: Vec<String> = r
                .steps
                .iter()
                .take(3)
                .map(|(id, ms)| format!("{id} {:.1} s", *ms as f64 / 1000.0))
                .collect();
            s.push_str(&format!(
                "{:<12} {:>7.1} s  {}\n",
                r.phase,
                r.wall.as_secs_f64(),
                steps.join(", ")
            ));
        }
        let total: f64 = self.rows.iter().map(|r| r.wall.as_secs_f64()).sum();
        s.push_str(&format!("{:<12} {total:>7.1} s\n", "total"));
        s
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The steps of a report or status document, slowest first.
fn slowest(doc: &serde_json::Value) -> Vec<(String, u64)> {
    let mut steps: Vec<(String, u64)> = doc["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["id"].as_str()?.to_string(), s["duration_ms"].as_u64()?)))
        .collect();
    steps.sort_by_key(|s| std::cmp::Reverse(s.1));
    steps
}

fn is_failure(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    ["error", "failed", "critical"]
        .iter()
        .any(|w| l.contains(w))
}

/// The guest's journal lines the scenario picked (`journal: …` on the
/// result channel), else the console's last failure-looking lines.
fn excerpt(run: &Run) -> Vec<String> {
    let picked: Vec<String> = run
        .lines
        .iter()
        .filter_map(|l| l.text.strip_prefix("journal: ").map(str::to_string))
        .collect();
    if !picked.is_empty() {
        return picked;
    }
    let failing: Vec<&str> = run.console.lines().filter(|l| is_failure(l)).collect();
    let tail: Vec<&str> = if failing.is_empty() {
        run.console.lines().collect()
    } else {
        failing
    };
    tail.iter()
        .rev()
        .take(20)
        .rev()
        .map(|l| l.trim().to_string())
        .collect()
}
