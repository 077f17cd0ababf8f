//! What the boots of tests/vm_postpivot.rs share: the guest image, the 9p
//! share (sprout, this executable as the guest's helper, the scenario
//! scripts, systemd/, the seed's facts) and the config ISOs.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use sprout::api::seed_cluster_info::SeedClusterInfo;

use super::harness::*;
use super::machine::{self, Accel, Run};
use super::site::*;
use super::support::*;

pub struct Env {
    pub image: PathBuf,
    pub accel: Accel,
    pub share: tempfile::TempDir,
    /// The site configuration, with the node's keyfile.
    pub iso: PathBuf,
    /// A configuration with a proxy, for a seed that has none.
    pub invalid_iso: PathBuf,
    pub work: tempfile::TempDir,
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
static ENV: OnceLock<Result<Env, String>> = OnceLock::new();

/// The seed's address and the site's, on the machine network both share.
pub const SEED_IP: &str = "192.168.122.20";
pub const MACHINE_NETWORK: &str = "192.168.122.0/24";

pub fn env(test: &str) -> Option<(MutexGuard<'static, ()>, &'static Env)> {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    match ENV.get_or_init(setup) {
        Ok(env) => Some((guard, env)),
        Err(why) if in_ci() => panic!("{test} would be skipped, but CI=true: {why}"),
        Err(why) => {
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
        return Err("vm-tests need root (debootstrap, chroot, mounts); CI runs as root".into());
    }
    for tool in [
        "qemu-system-x86_64",
        "debootstrap",
        "mkfs.ext4",
        "xorriso",
        "strip",
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
    let s = share.path();
    fs::copy(env!("CARGO_BIN_EXE_sprout"), s.join("sprout")).unwrap();
    // This executable is the guest's helper (recert stand-in, API server);
    // without its debug information it is small enough for an image.
    let helper = s.join("vm-helper");
    fs::copy(std::env::current_exe().unwrap(), &helper).unwrap();
    let st = Command::new("strip").arg(&helper).status().unwrap();
    assert!(st.success(), "strip failed");
    copy_dir(&repo().join("vm-tests/guest"), &s.join("vm-tests/guest"));
    copy_dir(&repo().join("systemd"), &s.join("systemd"));
    fs::create_dir_all(s.join("postpivot")).unwrap();
    fs::write(
        s.join("postpivot/seed-manifest.json"),
        serde_json::to_vec(&seed()).unwrap(),
    )
    .unwrap();

    let work = tempfile::tempdir().unwrap();
    let iso = site_iso(work.path());
    let invalid_iso = invalid_iso(work.path());
    Ok(Env {
        image,
        accel,
        share,
        iso,
        invalid_iso,
        work,
    })
}

/// The seed's facts, as `lca-cli create` wrote them into the seed image.
fn seed() -> SeedClusterInfo {
    SeedClusterInfo {
        seed_cluster_ocp_version: "4.18.0".into(),
        base_domain: "example.com".into(),
        cluster_name: "seed".into(),
        node_ips: vec![SEED_IP.into()],
        release_registry: "quay.io".into(),
        sno_hostname: "seed-node".into(),
        recert_image_pull_spec: "localhost/sprout-vm/recert-standin:latest".into(),
        service_networks: vec!["172.30.0.0/16".into()],
        cluster_networks: vec!["10.128.0.0/14".into()],
        ingress_certificate_cn: "ingress-operator@1700000000".into(),
        machine_networks: vec![MACHINE_NETWORK.into()],
        ..Default::default()
    }
}

impl Env {
    pub fn boot(&self, name: &str, spec: &machine::Spec) -> Run {
        let dir = repo().join("target/vm-tests").join(name);
        let run = machine::boot(&self.image, self.share.path(), self.accel, &dir, spec);
        assert!(
            run.nothing_left_running(),
            "{name}: a qemu process is still running"
        );
        run
    }

    /// A copy of the guest's root disk that keeps its writes across boots.
    pub fn writable_root(&self) -> PathBuf {
        let disk = self.work.path().join("rootfs-writable.img");
        let st = Command::new("cp")
            .args(["--sparse=always", "--reflink=auto"])
            .arg(self.image.join("rootfs.img"))
            .arg(&disk)
            .status()
            .unwrap();
        assert!(st.success(), "copying the root disk failed");
        disk
    }
}
