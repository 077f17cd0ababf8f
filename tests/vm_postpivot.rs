//! vm-tests of `sprout post-pivot` on a node laid out like an installed
//! seed (issue 12, acceptance 4 and 5): the Debian vm-tests guest with
//! `/var/seed_data/manifest.json`, the etcd static pod, a `core` user, and
//! NetworkManager, dnsmasq and chrony running; the seed's unit
//! (systemd/installation-configuration.service) runs the whole flow for
//! real with a config ISO made by `sprout create config-image` attached.
//!
//! Real: the kernel, systemd, udev, the ISO, NetworkManager applying the
//! copied keyfile (a dummy interface with the node's address), hostnamectl,
//! dnsmasq and chrony restarted, podman (runc) running the temporary etcd
//! from an image built in the guest (`podman import`) of Debian's etcd,
//! upstream's recert command line, kubelet's unit enabled and started,
//! kube-rs applying the manifests, the unit disabling itself.
//!
//! Stand-ins, each because no real one can be had here (docs/testing.md):
//! - recert: an image of this test executable (tests/vm_postpivot/guest.rs,
//!   mode `recert`) that reads `RECERT_CONFIG` with recert's rules, writes
//!   into the temporary etcd and writes its summary; recert's image cannot
//!   be pulled (no registry but the package registries).
//! - kubelet: `kubelet.service` records its start and runs sprout's
//!   Kubernetes API test server (src/testing/kube_api.rs) at the address of
//!   the node's lb-ext kubeconfig, as kubelet would start kube-apiserver; no
//!   kubelet or kube-apiserver can run here.
//! - nodeip-configuration.service: RHCOS's runs runtimecfg from the release
//!   image; the stand-in picks the address the hint routes to, as runtimecfg
//!   does, and writes the same two files.
//! - update-ca-trust: RHCOS's tool; Debian has none. It records its calls.
//! - the network: the keyfile comes in the ISO's
//!   `network-configuration/system-connections/` (added to the ISO that
//!   `create config-image` made, as IBU's configuration carries keyfiles):
//!   Debian 12 has no `nmstatectl` to apply an nmstate `networkConfig`.
//!
//! `cargo test --test vm_postpivot` (root, QEMU, debootstrap, xorriso;
//! `SKIP:` without them, a failure under `CI=true`); wrap it in
//! `flock /tmp/sprout-vm.lock` when other VM tests may run.
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
#[path = "vm/qmp.rs"]
mod qmp;
#[path = "vm_postpivot/setup.rs"]
mod setup;
#[allow(dead_code)]
#[path = "vm/site.rs"]
mod site;
mod support;

use std::time::Duration;

use harness::{expect_pass, say};
use machine::{Cdrom, Spec, Verdict};
use setup::env;

/// The helper modes of this executable in the guest (see `guest`): with
/// `SPROUT_VM_HELPER` unset this does nothing, so `--ignored` on the host
/// passes without effect.
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

/// Acceptance 4: the whole flow through the seed's unit.
#[test]
fn postpivot_reconfigures_the_seed_node() {
    let name = "postpivot_reconfigures_the_seed_node";
    let Some((_g, env)) = env(name) else {
        return;
    };
    let mut spec = Spec::new("postpivot-run", Duration::from_secs(600));
    spec.cdrom = Cdrom::Iso(env.iso.clone());
    let run = env.boot(name, &spec);
    expect_pass(name, &run);
}

/// Acceptance 5: no configuration medium. The wait ends at its configured
/// deadline, the second start (the last, `attempts: 2`) is terminal: the
/// unit stays failed with the reason on the console, no restart loop.
#[test]
fn postpivot_without_an_iso_fails_for_good() {
    let name = "postpivot_without_an_iso_fails_for_good";
    let Some((_g, env)) = env(name) else {
        return;
    };
    let spec = Spec::new("postpivot-no-iso", Duration::from_secs(300));
    let run = env.boot(name, &spec);
    expect_pass(name, &run);
}

/// Acceptance 5: a configuration that does not fit the seed (a proxy for a
/// seed without one) is refused before any change: terminal at once, and a
/// manifest of the host's files is the same before and after.
#[test]
fn postpivot_with_an_invalid_iso_changes_nothing() {
    let name = "postpivot_with_an_invalid_iso_changes_nothing";
    let Some((_g, env)) = env(name) else {
        return;
    };
    let mut spec = Spec::new("postpivot-invalid", Duration::from_secs(300));
    spec.cdrom = Cdrom::Iso(env.invalid_iso.clone());
    let run = env.boot(name, &spec);
    expect_pass(name, &run);
}

/// Acceptance 5: the guest is reset (sysrq, no sync) while recert runs;
/// the next boot's start resumes at recert, not at the start, and
/// succeeds.
#[test]
fn postpivot_resumes_at_recert_after_a_reset() {
    let name = "postpivot_resumes_at_recert_after_a_reset";
    let Some((_g, env)) = env(name) else {
        return;
    };
    let disk = env.writable_root();
    let mut spec = Spec::new("postpivot-reset", Duration::from_secs(600));
    spec.cdrom = Cdrom::Iso(env.iso.clone());
    spec.root_disk = Some(disk.clone());
    spec.root_writable = true;
    let first = env.boot(&format!("{name}-1"), &spec);
    let reset = first.line("resetting the guest during recert");
    if reset.is_none() || first.verdict == Verdict::Pass {
        eprintln!("{}", first.report());
        panic!(
            "{name}: the first boot did not reach recert: {}",
            first.reason()
        );
    }
    say(&format!(
        "{name}: first boot reset during recert after {:.1} s",
        first.elapsed.as_secs_f64()
    ));
    let second = env.boot(&format!("{name}-2"), &spec);
    expect_pass(name, &second);
}
