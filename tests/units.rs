//! The systemd units of systemd/: `systemd-analyze verify` is clean for
//! each, and they say what the spec asks (lifecycle-agent §3.1, W5). They
//! run for real in vm-tests (`units_run_under_systemd`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const INSTALLED_BINARY: &str = "/usr/local/bin/sprout";

fn units() -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = fs::read_dir(repo().join("systemd"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| {
                ["service", "socket", "path", "timer", "target"].contains(&e.to_str().unwrap())
            })
        })
        .collect();
    units.sort();
    assert!(!units.is_empty());
    units
}

/// Copies `unit` into `dir` with ExecStart pointing at the binary under
/// test: verify fails for an ExecStart binary that does not exist here.
fn for_verify(unit: &Path, dir: &Path) -> PathBuf {
    let text = fs::read_to_string(unit).unwrap();
    assert!(
        text.contains(INSTALLED_BINARY),
        "{} does not run {INSTALLED_BINARY}",
        unit.display()
    );
    let out = dir.join(unit.file_name().unwrap());
    fs::write(
        &out,
        text.replace(INSTALLED_BINARY, env!("CARGO_BIN_EXE_sprout")),
    )
    .unwrap();
    out
}

fn verify(units: &[PathBuf]) -> (bool, String) {
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

#[test]
fn systemd_analyze_verify_is_clean_for_every_unit() {
    if !have(
        "systemd-analyze",
        "systemd_analyze_verify_is_clean_for_every_unit",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for unit in units() {
        let copy = for_verify(&unit, dir.path());
        let (ok, out) = verify(&[copy]);
        assert!(
            ok && out.trim().is_empty(),
            "systemd-analyze verify {}:\n{out}",
            unit.display()
        );
    }
}

/// The check above is not vacuous: verify does flag mistakes.
#[test]
fn systemd_analyze_verify_flags_a_broken_unit() {
    if !have(
        "systemd-analyze",
        "systemd_analyze_verify_flags_a_broken_unit",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = repo().join("systemd/installation-configuration.service");
    let copy = for_verify(&unit, dir.path());
    let text = fs::read_to_string(&copy)
        .unwrap()
        .replace("Restart=on-failure", "Restart=on-failure\nRestartTypo=yes");
    fs::write(&copy, text).unwrap();
    let (ok, out) = verify(&[copy]);
    assert!(!ok || out.contains("RestartTypo"), "{out}");
}

/// The values of `key` in `[section]` of a unit file.
fn values(unit: &str, section: &str, key: &str) -> Vec<String> {
    let mut current = "";
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            current = line;
        } else if current == format!("[{section}]")
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            out.push(v.trim().to_string());
        }
    }
    out
}

#[test]
fn installation_configuration_follows_the_spec_with_bounded_restarts() {
    let unit =
        fs::read_to_string(repo().join("systemd/installation-configuration.service")).unwrap();
    assert!(
        values(&unit, "Unit", "After")
            .iter()
            .any(|v| v.contains("coreos-update-ca-trust.service"))
    );
    assert_eq!(values(&unit, "Service", "Type"), ["notify"]);
    assert_eq!(values(&unit, "Service", "Restart"), ["on-failure"]);
    // Upstream's oneshot with RestartSec=5s never hits the default limit;
    // ours gives up after a few starts.
    assert_eq!(values(&unit, "Unit", "StartLimitBurst"), ["3"]);
    assert!(!values(&unit, "Unit", "StartLimitIntervalSec").is_empty());
    let exec = values(&unit, "Service", "ExecStart");
    assert_eq!(exec.len(), 1);
    assert!(
        exec[0].starts_with("/usr/local/bin/sprout post-pivot"),
        "{exec:?}"
    );
    assert_eq!(values(&unit, "Install", "WantedBy"), ["multi-user.target"]);
}

#[test]
fn every_unit_has_a_bounded_restart_policy() {
    for path in units() {
        let unit = fs::read_to_string(&path).unwrap();
        let restarts = values(&unit, "Service", "Restart");
        if restarts.iter().any(|r| r != "no") {
            assert!(
                !values(&unit, "Unit", "StartLimitBurst").is_empty()
                    && !values(&unit, "Unit", "StartLimitIntervalSec").is_empty(),
                "{} restarts without StartLimitBurst/StartLimitIntervalSec",
                path.display()
            );
        }
    }
}

/// One unit name wherever sprout is the factory agent (issue 11): the unit
/// the dracut module carries and the one `create image` writes into
/// Ignition have the contract's name, so the latter overrides the former,
/// and both end in `ibi -f` on the configuration file.
#[test]
fn the_factory_agent_has_one_unit_name() {
    let name = sprout::api::contract::units::INSTALL_RHCOS;
    assert_eq!(sprout::create::image::units::INSTALL_UNIT, name);
    let carried = repo().join("systemd").join(name);
    let unit = fs::read_to_string(&carried).unwrap();
    assert!(unit.contains("ibi -f ${IBI_CONFIGURATION_FILE}"), "{unit}");
    let dracut = fs::read_to_string(repo().join("dracut/90sprout/module-setup.sh")).unwrap();
    assert!(
        dracut.contains(name),
        "the dracut module does not carry {name}"
    );
    let script = sprout::create::image::units::install_script();
    assert!(script.contains("ibi -f \"$ibi_config\""), "{script}");
    let readme = fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains("There is one unit name wherever sprout runs as the agent"));
}
