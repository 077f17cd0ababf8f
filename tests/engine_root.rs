//! host::Root: every operation stays below the root; `..` and absolute
//! symlinks that lead out are refused (hostile trees), relative ones that
//! stay inside work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use sprout::host::root::Root;

/// A root `r/` next to a secret `outside/secret`, with escapes planted in r.
fn hostile() -> (tempfile::TempDir, Root) {
    let d = tempfile::tempdir().unwrap();
    let outside = d.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), "outside").unwrap();
    let r = d.path().join("r");
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(r.join("etc/hosts"), "inside").unwrap();
    // An absolute symlink to the outside, as a file and as a directory.
    symlink(outside.join("secret"), r.join("etc/passwd")).unwrap();
    symlink(&outside, r.join("abs-dir")).unwrap();
    // A relative symlink climbing out, and one staying inside.
    symlink("../../outside", r.join("etc/up")).unwrap();
    symlink("hosts", r.join("etc/hosts-link")).unwrap();
    symlink("/", r.join("slash")).unwrap();
    (d, Root::open(&r).unwrap())
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn escapes(e: anyhow::Error) -> bool {
    format!("{e:#}").contains("leads out of")
}

#[test]
fn reads_inside_and_follows_links_that_stay_inside() {
    let (_d, root) = hostile();
    assert_eq!(root.read_to_string("etc/hosts", 100).unwrap(), "inside");
    assert_eq!(
        root.read_to_string("etc/hosts-link", 100).unwrap(),
        "inside"
    );
    assert_eq!(
        root.read_to_string("etc/../etc/hosts", 100).unwrap(),
        "inside"
    );
    assert_eq!(
        root.read_link("etc/passwd").unwrap(),
        _d.path().join("outside/secret")
    );
    assert!(root.exists("etc/hosts").unwrap());
    assert!(!root.exists("etc/nothing").unwrap());
    assert!(root.metadata("etc").unwrap().is_dir());
    assert!(
        root.symlink_metadata("etc/hosts-link")
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // Reads are bounded.
    let e = root.read("etc/hosts", 3).unwrap_err();
    assert!(format!("{e:#}").contains("larger than 3 bytes"), "{e:#}");
}

#[test]
fn refuses_dotdot_and_absolute_symlink_escapes() {
    let (d, root) = hostile();
    let secret_mode = mode_of(&d.path().join("outside/secret"));
    for path in [
        "../outside/secret",
        "etc/../../outside/secret",
        "etc/passwd",
        "abs-dir/secret",
        "etc/up/secret",
        "slash/etc/hostname",
    ] {
        assert!(escapes(root.read(path, 100).unwrap_err()), "read {path}");
        assert!(escapes(root.metadata(path).unwrap_err()), "metadata {path}");
        assert!(escapes(root.open_read(path).unwrap_err()), "open {path}");
    }
    // Writing or creating through an escaping directory link is refused
    // and nothing appears outside.
    for path in [
        "abs-dir/new",
        "etc/up/new",
        "../outside/new",
        "slash/tmp/new",
    ] {
        assert!(
            escapes(root.write_atomic(path, b"x", 0o644).unwrap_err()),
            "write {path}"
        );
        assert!(escapes(root.exists(path).unwrap_err()), "exists {path}");
        assert!(root.host_path(path).is_err(), "host_path {path}");
    }
    assert!(escapes(
        root.create_dir_all("abs-dir/sub", 0o755).unwrap_err()
    ));
    assert!(root.create_dir_all("../outside/sub", 0o755).is_err());
    assert!(escapes(root.sub("abs-dir").unwrap_err()));
    assert!(escapes(root.read_dir("abs-dir").unwrap_err()));
    assert!(escapes(root.read_dir("etc/up").unwrap_err()));
    assert!(root.rename("etc/hosts", "abs-dir/stolen").is_err());
    assert!(root.remove_all("abs-dir/secret").is_err());
    assert!(root.set_mode("etc/up/secret", 0o777).is_err());
    // Absolute paths are not "below the root" at all.
    assert!(root.read("/etc/hostname", 100).is_err());
    let mut names: Vec<_> = fs::read_dir(d.path().join("outside"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["secret"]);
    assert_eq!(
        fs::read_to_string(d.path().join("outside/secret")).unwrap(),
        "outside"
    );
    assert_eq!(mode_of(&d.path().join("outside/secret")), secret_mode);
}

#[test]
fn replacing_or_removing_a_symlink_never_touches_its_target() {
    let (d, root) = hostile();
    let secret = d.path().join("outside/secret");
    // The link itself is replaced, the file it pointed to stays.
    root.write_atomic("etc/passwd", b"root:x:0:0", 0o644)
        .unwrap();
    assert_eq!(fs::read_to_string(&secret).unwrap(), "outside");
    assert_eq!(
        root.read_to_string("etc/passwd", 100).unwrap(),
        "root:x:0:0"
    );
    // remove_all of a link to a directory removes the link only.
    assert!(root.remove_all("abs-dir").unwrap());
    assert!(secret.exists());
    assert!(!root.exists("abs-dir").unwrap());
    assert!(root.remove("etc/up").unwrap());
    assert!(!root.remove("etc/up").unwrap());
}

#[test]
fn writes_create_rename_and_remove_below_the_root() {
    let d = tempfile::tempdir().unwrap();
    let root = Root::open(d.path()).unwrap();
    root.create_dir_all("opt/openshift/cluster-configuration", 0o700)
        .unwrap();
    assert_eq!(
        fs::metadata(d.path().join("opt/openshift"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    root.write_atomic("opt/openshift/pull-secret.json", b"{}", 0o600)
        .unwrap();
    root.write_atomic("opt/openshift/pull-secret.json", b"{\"auths\":{}}", 0o600)
        .unwrap();
    let p = d.path().join("opt/openshift/pull-secret.json");
    assert_eq!(fs::read(&p).unwrap(), b"{\"auths\":{}}");
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    root.set_mode("opt/openshift/pull-secret.json", 0o640)
        .unwrap();
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o640
    );
    // No temporary file is left.
    assert_eq!(
        fs::read_dir(d.path().join("opt/openshift"))
            .unwrap()
            .count(),
        2
    );
    root.rename("opt/openshift/pull-secret.json", "opt/ps.json")
        .unwrap();
    assert!(d.path().join("opt/ps.json").exists());
    root.symlink("ps.json", "opt/link").unwrap();
    assert_eq!(root.read_link("opt/link").unwrap(), Path::new("ps.json"));
    assert_eq!(
        root.host_path("opt/ps.json").unwrap(),
        d.path().join("opt/ps.json")
    );
    let names: Vec<_> = root
        .read_dir("opt")
        .unwrap()
        .into_iter()
        .map(|e| (e.name.into_string().unwrap(), e.file_type))
        .collect();
    use rustix::fs::FileType;
    assert_eq!(
        names,
        [
            ("link".to_string(), FileType::Symlink),
            ("openshift".to_string(), FileType::Directory),
            ("ps.json".to_string(), FileType::RegularFile),
        ]
    );
    let sub = root.sub("opt").unwrap();
    assert_eq!(sub.read("ps.json", 100).unwrap(), b"{\"auths\":{}}");
    assert!(root.remove_all("opt").unwrap());
    assert!(!d.path().join("opt").exists());
    assert!(!root.remove_all("opt").unwrap());
}
