//! The whole journey of a node in one VM test (issue 13), under TCG:
//!
//! 1. **workstation** (the host): the seed is made from the CoreOS-like
//!    OS's ostree commit (vm-tests/build-coreos-like) with the seed's units
//!    in its etc.tgz; `sprout create image` turns the OS's live ISO into
//!    the installation ISO, `sprout create config-image` makes the site's
//!    config ISO.
//! 2. **factory**: the guest boots the installation ISO live; real
//!    Ignition (Debian's 30ignition) applies the embedded config; systemd
//!    starts the install unit it wrote, which copies sprout out of the
//!    agent image and runs `sprout ibi` against a blank virtio disk, the
//!    seed and precache images coming from a registry in the guest; ibi
//!    powers the machine off.
//! 3. **edge**: the guest boots the installed disk, the deployment's boot
//!    entry read from its boot partition (kernel, initramfs, arguments;
//!    QEMU boots the kernel directly, no bootloader), ostree-prepare-root
//!    pivoting into the seed's stateroot, the config ISO attached; the
//!    seed's installation-configuration.service runs the lca-cli ibi
//!    installed, i.e. sprout's post-pivot.
//! 4. **checks** in the guest (vm-tests/guest/scenarios/journey-*.sh), and
//!    one table: phase, wall time, each phase's slowest steps.
//!
//! Real: the kernel, systemd, udev, Ignition, coreos-installer,
//! docker-registry, podman (pull, image mount, run), ostree, XFS, the
//! ISOs, NetworkManager, dnsmasq, chrony, the bootloader entry ostree
//! wrote. Stand-ins, each because no real one can be had here
//! (docs/testing.md): recert (an image of this test executable), the
//! Kubernetes API server and the kubelet (kubelet.service runs sprout's
//! API test server), nodeip-configuration and update-ca-trust (RHCOS
//! tools), the live root file system (the metal image, read-only, instead
//! of a squashfs in RAM) and osmet (coreos-installer writes the metal
//! image from a share). The network is a keyfile in the config ISO, as in
//! tests/vm_postpivot.rs.
//!
//! `vm-tests/run journey`, or `cargo test --test vm_journey` (root, QEMU,
//! debootstrap, coreos-installer; `SKIP:` without them, a failure under
//! `CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "vm_postpivot/guest.rs"]
mod guest;
#[allow(dead_code)]
#[path = "vm/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "vm/machine.rs"]
mod machine;
#[allow(dead_code)]
#[path = "vm_journey/phases.rs"]
mod phases;
#[allow(dead_code)]
#[path = "vm/qmp.rs"]
mod qmp;
#[allow(dead_code)]
#[path = "vm/site.rs"]
mod site;
mod support;
#[path = "vm_journey/workstation.rs"]
mod workstation;

use harness::*;
use phases::{Journey, Phase};

/// The helper modes of this executable in the guest (recert stand-in, API
/// server, status reader; see tests/vm_postpivot/guest.rs): with
/// `SPROUT_VM_HELPER` unset it does nothing.
#[test]
#[ignore = "run inside the vm-tests guest only"]
fn guest_helper() {
    let Ok(mode) = std::env::var("SPROUT_VM_HELPER") else {
        return;
    };
    if let Err(e) = guest::main(&mode) {
        eprintln!("sprout-vm helper {mode}: {e}");
        std::process::exit(1);
    }
}

/// Issue 13: installation ISO → factory install → reboot into the seed →
/// edge configuration, with the phase table at the end. Before the edge
/// boot that must succeed, one on a snapshot of the installed disk with a
/// configuration this seed cannot take must fail readably (acceptance 2,
/// post-pivot's failure), leaving the disk as the factory left it.
#[test]
fn journey_installs_and_configures_a_node() {
    let name = "journey_installs_and_configures_a_node";
    let Some(mut journey) = Journey::start(name) else {
        return;
    };
    let install_iso = journey.ws.install_iso.clone();
    if let Err(failure) = journey.factory(&install_iso, "factory", None) {
        panic!("{name}: {failure}");
    }
    let invalid = journey.ws.invalid_config_iso.clone();
    expect_readable_failure(
        name,
        "edge-refused",
        journey.edge_on_snapshot(&invalid, "edge-refused"),
        Phase::Edge,
        &["post-pivot ended terminal at step"],
    );
    let config_iso = journey.ws.config_iso.clone();
    if let Err(failure) = journey.edge(&config_iso) {
        panic!("{name}: {failure}");
    }
    let table = journey.table();
    for line in table.lines() {
        say(&format!("{name}: {line}"));
    }
    std::fs::write(journey.dir.join("phases.txt"), &table).unwrap();
}

/// Issue 13, acceptance 2, the factory's failures: a broken Ignition
/// config (the live boot's initramfs gives up: powered off, not an
/// emergency shell) and an `ibi` failure (coreos-installer cannot write
/// the disk) each end with the phase, the step or stage, and the guest's
/// journal; no qemu is left running (`Journey::boot` checks).
#[test]
fn journey_factory_failures_are_readable() {
    let name = "journey_factory_failures_are_readable";
    let Some(mut journey) = Journey::start(name) else {
        return;
    };
    let broken = broken_ignition(&journey.ws.install_iso, &journey.dir);
    let result = journey.factory(&broken, "broken-ignition", None);
    expect_readable_failure(
        name,
        "broken-ignition",
        result,
        Phase::Factory,
        &["Ignition failed in the initramfs"],
    );

    let install_iso = journey.ws.install_iso.clone();
    let result = journey.factory(&install_iso, "ibi-failure", Some("install"));
    expect_readable_failure(
        name,
        "ibi-failure",
        result,
        Phase::Factory,
        &[
            "sprout ibi failed at step install-rhcos",
            "Input/output error",
        ],
    );
}

/// The boot `label` failed, and its failure names its phase and says each
/// of `says`, with an excerpt of the guest's journal.
fn expect_readable_failure(
    name: &str,
    label: &str,
    result: Result<(), phases::PhaseFailure>,
    phase: Phase,
    says: &[&str],
) {
    let Err(failure) = result else {
        panic!("{name}: {label}: the boot passed, it must fail");
    };
    say(&format!("{name}: {label}: {failure}"));
    assert_eq!(failure.phase, phase, "{failure}");
    let text = failure.to_string();
    for s in says {
        assert!(text.contains(s), "the failure does not say '{s}': {text}");
    }
    assert!(
        !failure.excerpt.is_empty(),
        "the failure has no journal excerpt: {text}"
    );
}

/// A copy of `iso` whose embedded Ignition config Ignition refuses (a
/// config version it does not know), embedded with coreos-installer as a
/// user would; `create image` itself never writes one.
fn broken_ignition(iso: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("broken.ign");
    std::fs::write(&config, r#"{"ignition":{"version":"9.9.9"}}"#).unwrap();
    let out = dir.join("broken-ignition.iso");
    let _ = std::fs::remove_file(&out);
    run_ok(
        std::process::Command::new(which("coreos-installer").unwrap())
            .args(["iso", "ignition", "embed", "-f", "-i"])
            .arg(&config)
            .arg("-o")
            .arg(&out)
            .arg(iso),
    );
    out
}
