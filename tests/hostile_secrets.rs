//! Issue 9, class 4: no secret reaches an error message, and the ISOs that
//! carry secrets are written 0600.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use openssl::pkey::PKey;
use support::*;

fn private_key_pem() -> String {
    let key = PKey::generate_ed25519().unwrap();
    String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap()
}

/// The base64 lines of a PEM block (what must never be shown).
fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .map(String::from)
        .collect()
}

fn config_image_errors(dir: &Path) -> String {
    let o = sprout(&["create", "config-image", "--dir", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    stderr(&o)
}

/// The example of the issue: a private key pasted as sshKey.
#[test]
fn a_private_key_pasted_as_ssh_key_is_not_echoed() {
    let d = copy_example("config-image");
    let key = private_key_pem();
    edit_yaml(&d.path().join("install-config.yaml"), |v| {
        v["sshKey"] = key.clone().into();
    });
    let e = config_image_errors(d.path());
    assert!(e.contains("sshKey") && e.contains("private key"), "{e}");
    for line in pem_body_lines(&key) {
        assert!(!e.contains(&line), "the key leaked: {e}");
    }
}

/// The example of the issue: an input that is a symlink to a root-only file
/// (read fine, since sprout runs as root here) is not quoted.
#[test]
fn an_input_linked_to_a_root_only_file_is_not_quoted() {
    let d = copy_example("config-image");
    let secret_dir = tempfile::tempdir().unwrap();
    let shadow = secret_dir.path().join("shadow");
    let hash = "root:$6$s3cr3tSALT$Zm9vYmFyYmF6cXV4cXV1eHF1dXV4cXV1eA:19000:0:99999:7:::";
    std::fs::write(&shadow, format!("{hash}\ndaemon:*:19000:0:99999:7:::\n")).unwrap();
    std::fs::set_permissions(&shadow, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ic = d.path().join("install-config.yaml");
    std::fs::remove_file(&ic).unwrap();
    symlink(&shadow, &ic).unwrap();
    let e = config_image_errors(d.path());
    assert!(e.contains("install-config.yaml"), "{e}");
    assert!(!e.contains("s3cr3t") && !e.contains("root:$6"), "{e}");
}

/// A private key in the trust bundle: refused without being shown.
#[test]
fn a_private_key_in_the_trust_bundle_is_not_echoed() {
    let d = copy_example("config-image");
    let key = private_key_pem();
    edit_yaml(&d.path().join("install-config.yaml"), |v| {
        v["additionalTrustBundle"] = key.clone().into();
    });
    let e = config_image_errors(d.path());
    assert!(e.contains("additionalTrustBundle"), "{e}");
    for line in pem_body_lines(&key) {
        assert!(!e.contains(&line), "the key leaked: {e}");
    }
}

/// A long value is cut to an excerpt, and control characters in it are
/// escaped rather than sent to the terminal.
#[test]
fn long_values_are_cut_and_control_characters_escaped() {
    let d = copy_example("config-image");
    let long = format!("\u{1b}[2J{}", "a".repeat(5000));
    edit_yaml(&d.path().join("install-config.yaml"), |v| {
        v["baseDomain"] = long.clone().into();
    });
    let e = config_image_errors(d.path());
    assert!(e.contains("baseDomain"), "{e}");
    assert!(
        !e.contains('\u{1b}'),
        "a raw escape reached the terminal: {e:?}"
    );
    assert!(!e.contains(&"a".repeat(100)), "the value was not cut: {e}");
    assert!(e.contains("5004 bytes"), "{e}");
}

/// A state file that is damaged in a way serde would quote: no secret from
/// it in the message.
#[test]
fn a_damaged_state_file_is_not_quoted() {
    let d = copy_example("config-image");
    std::fs::write(
        d.path().join(".sprout-state.json"),
        "\"kubeadmin_password: hunter2-hunter2-hunter2-hunter2-hunter2-hunter2\"",
    )
    .unwrap();
    let e = config_image_errors(d.path());
    assert!(e.contains("--regenerate"), "{e}");
    assert!(
        !e.contains("hunter2-hunter2-hunter2-hunter2-hunter2-hunter2"),
        "{e}"
    );
}
