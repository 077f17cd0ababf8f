//! Issue 9, classes 3 and 5: no write outside the output directory, and each
//! run one transaction (staged, then renamed with the state last; locked;
//! nothing left behind by a killed run; a failure reports what was replaced).
//! `create image` has its own file, hostile_image_outputs.rs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::*;

const ISO: &str = "imagebasedconfig.iso";
const STATE: &str = ".sprout-state.json";

fn config_image(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["create", "config-image", "--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    sprout(&args)
}

fn ok(o: &Output) {
    assert!(o.status.success(), "sprout failed: {}", stderr(o));
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every entry name directly in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Entries whose names say they are temporary.
fn temporaries(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.contains("tmp") || n.ends_with(".lock"))
        .collect()
}

/// The outputs of a config-image run agree with its state: the password
/// file holds the state's password, the ISO's hash verifies it.
fn assert_consistent(dir: &Path) {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(STATE)).unwrap()).unwrap();
    let password = std::fs::read_to_string(dir.join("auth/kubeadmin-password")).unwrap();
    assert_eq!(state["kubeadmin_password"], password.as_str());
    let x = extract_iso(&dir.join(ISO));
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(x.path().join("root/cluster-configuration/manifest.json"))
            .unwrap(),
    )
    .unwrap();
    let hash = manifest["kubeadmin_password_hash"].as_str().unwrap();
    assert!(
        bcrypt::verify(&password, hash).unwrap(),
        "the ISO is from another run"
    );
    let kubeconfig: serde_json::Value =
        yaml_serde::from_str(&std::fs::read_to_string(dir.join("auth/kubeconfig")).unwrap())
            .unwrap();
    use base64::Engine;
    let client = base64::engine::general_purpose::STANDARD
        .decode(
            kubeconfig["users"][0]["user"]["client-certificate-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let client = openssl::x509::X509::from_pem(&client).unwrap();
    let saved = state["api_crypto"]["admin_kubeconfig_client"]["cert_pem"]
        .as_str()
        .unwrap();
    let saved = openssl::x509::X509::from_pem(saved.as_bytes()).unwrap();
    assert_eq!(
        client.to_der().unwrap(),
        saved.to_der().unwrap(),
        "the kubeconfig is from another run"
    );
}

// ---- class 3: writes outside the directory --------------------------------

/// The example of the issue: `auth/` a symlink to elsewhere.
#[test]
fn a_symlinked_auth_dir_is_refused_and_nothing_is_written_anywhere() {
    let d = copy_example("config-image");
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::set_permissions(elsewhere.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = snapshot(d.path());
    symlink(elsewhere.path(), d.path().join("auth")).unwrap();
    let o = config_image(d.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("auth is a symbolic link"), "{e}");
    assert!(e.contains("nothing was replaced"), "{e}");
    assert!(names(elsewhere.path()).is_empty(), "wrote through the link");
    assert_eq!(mode(elsewhere.path()), 0o755, "chmod-ed through the link");
    // Nothing replaced, nothing left: no ISO, no state, no temporaries.
    std::fs::remove_file(d.path().join("auth")).unwrap();
    assert_eq!(before, snapshot(d.path()));
}

/// An output that is a symlink is replaced as a link, never written through.
#[test]
fn a_symlinked_output_file_is_replaced_not_followed() {
    let d = copy_example("config-image");
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    symlink(&victim, d.path().join(ISO)).unwrap();
    std::fs::create_dir(d.path().join("auth")).unwrap();
    symlink(&victim, d.path().join("auth/kubeconfig")).unwrap();
    ok(&config_image(d.path(), &[]));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(mode(&victim), 0o644);
    assert!(
        std::fs::symlink_metadata(d.path().join(ISO))
            .unwrap()
            .is_file()
    );
    assert_consistent(d.path());
}

/// A template written over a dangling link (with --force) does not create
/// the link's target.
#[test]
fn a_template_over_a_dangling_link_creates_nothing_elsewhere() {
    let d = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("created-through-the-link");
    symlink(&target, d.path().join("image-based-config.yaml")).unwrap();
    let dir = d.path().to_str().unwrap();
    let o = sprout(&["create", "config-template", "--dir", dir]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    ok(&sprout(&[
        "create",
        "config-template",
        "--dir",
        dir,
        "--force",
    ]));
    assert!(!target.exists());
    let written = d.path().join("image-based-config.yaml");
    assert!(std::fs::symlink_metadata(&written).unwrap().is_file());
    assert_eq!(mode(&written), 0o600);
    assert_eq!(names(d.path()), ["image-based-config.yaml"]);
}

// ---- class 5: partial and racing outputs -----------------------------------

/// The example of the issue: a failure after the ISO is built but before
/// auth/ is written. Nothing is replaced: the ISO and the state are still
/// the previous run's, consistent with the kubeconfig.
#[test]
fn a_failure_before_auth_replaces_nothing() {
    let d = copy_example("config-image");
    ok(&config_image(d.path(), &[]));
    let before = snapshot(d.path());
    // auth/kubeconfig cannot be replaced by a file: it is a directory now.
    std::fs::remove_file(d.path().join("auth/kubeconfig")).unwrap();
    std::fs::create_dir(d.path().join("auth/kubeconfig")).unwrap();
    let o = config_image(d.path(), &["--regenerate"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("auth/kubeconfig is a directory") && e.contains("nothing was replaced"),
        "{e}"
    );
    let after = snapshot(d.path());
    for f in [ISO, STATE, "auth/kubeadmin-password"] {
        assert_eq!(
            before[Path::new(f)],
            after[Path::new(f)],
            "{f} was replaced"
        );
    }
    assert!(temporaries(d.path()).is_empty(), "{:?}", names(d.path()));
    assert!(temporaries(&d.path().join("auth")).is_empty());
}

/// Clears the immutable attribute when dropped, so the test dir can go.
struct Immutable(PathBuf);

impl Immutable {
    fn set(p: &Path) -> Self {
        let o = Command::new("chattr").arg("+i").arg(p).output().unwrap();
        assert!(
            o.status.success(),
            "chattr: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Immutable(p.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// A failure while renaming into place is reported precisely: what was
/// replaced, what was not. The state, renamed last, is still the old one,
/// so the next run rewrites everything consistently.
#[test]
fn a_failure_while_renaming_reports_what_was_and_was_not_replaced() {
    if !have(
        "chattr",
        "a_failure_while_renaming_reports_what_was_and_was_not_replaced",
    ) {
        assert!(std::env::var("CI").is_err(), "chattr is required under CI");
        return;
    }
    let d = copy_example("config-image");
    ok(&config_image(d.path(), &[]));
    let old_state = std::fs::read(d.path().join(STATE)).unwrap();
    // Root can replace anything but an immutable file.
    let pinned = Immutable::set(&d.path().join("auth/kubeadmin-password"));
    let o = config_image(d.path(), &["--regenerate"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    let iso = d.path().join(ISO).display().to_string();
    let kubeconfig = d.path().join("auth/kubeconfig").display().to_string();
    let password = d
        .path()
        .join("auth/kubeadmin-password")
        .display()
        .to_string();
    let state = d.path().join(STATE).display().to_string();
    let replaced = e.split("Replaced: ").nth(1).unwrap_or_default();
    let (replaced, not_replaced) = replaced.split_once("Not replaced").unwrap_or_default();
    assert!(
        replaced.contains(&iso) && replaced.contains(&kubeconfig),
        "{e}"
    );
    assert!(
        not_replaced.contains(&password) && not_replaced.contains(&state),
        "{e}"
    );
    assert_eq!(std::fs::read(d.path().join(STATE)).unwrap(), old_state);
    drop(pinned);
    assert!(temporaries(d.path()).is_empty(), "{:?}", names(d.path()));
    assert!(temporaries(&d.path().join("auth")).is_empty());
    // The next run converges on the state's identity.
    ok(&config_image(d.path(), &[]));
    assert_eq!(std::fs::read(d.path().join(STATE)).unwrap(), old_state);
    assert_consistent(d.path());
}

/// The example of the issue: two runs in one directory. The second fails at
/// once naming the directory and the holder; nothing of it is written.
#[test]
fn a_second_run_fails_fast_naming_the_holder() {
    let d = copy_example("config-image");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(d.path().join(".sprout.lock"))
        .unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    std::fs::write(
        d.path().join(".sprout.lock"),
        "pid 4242: sprout create image\n",
    )
    .unwrap();
    let before = snapshot(d.path());
    let o = config_image(d.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("another sprout run is writing in")
            && e.contains(&d.path().display().to_string())
            && e.contains("pid 4242: sprout create image"),
        "{e}"
    );
    assert_eq!(before, snapshot(d.path()));
}

/// Runs racing in one directory: each either completes or is refused, and
/// what is left is one run's outputs, whole.
#[test]
fn racing_runs_leave_one_consistent_result() {
    let d = copy_example("config-image");
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_sprout"))
                .args(["create", "config-image", "--regenerate", "--dir"])
                .arg(d.path())
                .env_remove("SPROUT_LOG")
                .stderr(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut succeeded = 0;
    for c in children {
        let o = c.wait_with_output().unwrap();
        if o.status.success() {
            succeeded += 1;
        } else {
            let e = stderr(&o);
            assert!(e.contains("another sprout run is writing in"), "{e}");
        }
    }
    assert!(succeeded >= 1);
    assert_consistent(d.path());
    assert!(temporaries(d.path()).is_empty(), "{:?}", names(d.path()));
}

/// As an ordinary user (no CAP_DAC_READ_SEARCH, so the anonymous files are
/// linked through /proc): the same outputs, modes and no leftovers.
#[test]
fn an_ordinary_user_gets_the_same_transaction() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP: an_ordinary_user_gets_the_same_transaction needs root to switch users");
        assert!(std::env::var("CI").is_err(), "CI runs the tests as root");
        return;
    }
    let d = copy_example("config-image");
    let nobody = 65534;
    let chown = |p: &Path| std::os::unix::fs::chown(p, Some(nobody), Some(nobody)).unwrap();
    chown(d.path());
    for n in names(d.path()) {
        chown(&d.path().join(n));
    }
    // The binary where that user can run it: the target directory may be
    // below root's home (CI keeps it in ~/.cache), which others cannot
    // enter.
    let bin_dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = bin_dir.path().join("sprout");
    std::fs::copy(env!("CARGO_BIN_EXE_sprout"), &bin).unwrap();
    for _ in 0..2 {
        let mut cmd = Command::new(&bin);
        // std drops the supplementary groups when root sets the uid.
        cmd.args(["create", "config-image", "--dir"])
            .arg(d.path())
            .env_remove("SPROUT_LOG")
            .uid(nobody)
            .gid(nobody);
        ok(&cmd.output().unwrap());
    }
    use std::os::unix::fs::MetadataExt;
    for f in [ISO, STATE, "auth/kubeconfig", "auth/kubeadmin-password"] {
        let m = std::fs::metadata(d.path().join(f)).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (nobody, 0o600), "{f}");
    }
    assert!(temporaries(d.path()).is_empty(), "{:?}", names(d.path()));
    assert_consistent(d.path());
}
