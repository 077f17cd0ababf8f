use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};

use super::*;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

fn names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn nothing_is_visible_until_commit_then_all_is_replaced() {
    for staging in [Staging::Anonymous, Staging::Named] {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a"), "old a").unwrap();
        let out = OutputDir::open(d.path()).unwrap();
        let sub = out.subdir("auth", 0o700).unwrap();
        let mut tx = Transaction::with_staging(staging);
        tx.stage(&out, "a", 0o600, b"new a").unwrap();
        tx.stage(&sub, "b", 0o644, b"new b").unwrap();
        assert_eq!(fs::read_to_string(d.path().join("a")).unwrap(), "old a");
        assert!(!d.path().join("auth/b").exists());
        let done = tx.commit().unwrap();
        assert_eq!(done, vec![d.path().join("a"), d.path().join("auth/b")]);
        assert_eq!(fs::read_to_string(d.path().join("a")).unwrap(), "new a");
        assert_eq!(mode(&d.path().join("a")), 0o600);
        assert_eq!(mode(&d.path().join("auth/b")), 0o644);
        assert_eq!(mode(&d.path().join("auth")), 0o700);
        assert_eq!(names(d.path()), ["a", "auth"], "{staging:?}");
    }
}

#[test]
fn a_failed_stage_leaves_no_trace_either_way() {
    for staging in [Staging::Anonymous, Staging::Named] {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a"), "old").unwrap();
        let out = OutputDir::open(d.path()).unwrap();
        let mut tx = Transaction::with_staging(staging);
        tx.stage(&out, "b", 0o600, b"complete").unwrap();
        let e = tx
            .stage_with(&out, "a", 0o600, |f| {
                f.write_all(b"partial")?;
                bail!("disk on fire")
            })
            .unwrap_err();
        assert!(format!("{e:#}").contains("disk on fire"), "{e:#}");
        drop(tx);
        assert_eq!(fs::read_to_string(d.path().join("a")).unwrap(), "old");
        assert_eq!(names(d.path()), ["a"], "{staging:?}");
    }
}

#[test]
fn a_symlinked_subdirectory_is_refused_and_its_target_untouched() {
    let d = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    fs::set_permissions(elsewhere.path(), fs::Permissions::from_mode(0o755)).unwrap();
    symlink(elsewhere.path(), d.path().join("auth")).unwrap();
    let out = OutputDir::open(d.path()).unwrap();
    let e = out.subdir("auth", 0o700).unwrap_err();
    assert!(format!("{e:#}").contains("is a symbolic link"), "{e:#}");
    assert_eq!(mode(elsewhere.path()), 0o755);
    // A relative link that stays inside is refused too: nothing is followed.
    fs::create_dir(d.path().join("real")).unwrap();
    symlink("real", d.path().join("inside")).unwrap();
    assert!(out.subdir("inside", 0o700).is_err());
}

#[test]
fn a_file_replaces_a_link_never_its_target_and_never_a_directory() {
    let d = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("precious");
    fs::write(&target, "precious").unwrap();
    symlink(&target, d.path().join("out.iso")).unwrap();
    fs::create_dir(d.path().join("dir")).unwrap();
    let out = OutputDir::open(d.path()).unwrap();
    let mut tx = Transaction::new();
    tx.stage(&out, "out.iso", 0o600, b"iso").unwrap();
    let e = tx.stage(&out, "dir", 0o600, b"x").unwrap_err();
    assert!(format!("{e:#}").contains("is a directory"), "{e:#}");
    tx.commit().unwrap();
    assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
    assert!(
        fs::symlink_metadata(d.path().join("out.iso"))
            .unwrap()
            .is_file()
    );
}

#[test]
fn stale_temporaries_are_removed_and_nothing_else() {
    let d = tempfile::tempdir().unwrap();
    for f in [
        ".sprout-tmp.rhcos-ibi.iso.123.abcdef012345",
        ".rhcos-ibi.iso.Ab12Cd.tmp",
        ".rhcos-ibi.iso.notes",
        ".other.Ab12Cd.tmp",
        "rhcos-ibi.iso",
    ] {
        fs::write(d.path().join(f), "x").unwrap();
    }
    fs::create_dir_all(d.path().join(".sprout-tmp.incoming.1.abc/deep")).unwrap();
    fs::write(d.path().join(".sprout-tmp.incoming.1.abc/deep/f"), "x").unwrap();
    // A stale link is removed itself, its target kept.
    let elsewhere = tempfile::tempdir().unwrap();
    fs::write(elsewhere.path().join("t"), "keep").unwrap();
    symlink(elsewhere.path(), d.path().join(".sprout-tmp.link")).unwrap();
    let out = OutputDir::open(d.path()).unwrap();
    let mut removed = out.remove_stale_temps(&["rhcos-ibi.iso"]).unwrap();
    removed.sort();
    assert_eq!(removed.len(), 4, "{removed:?}");
    assert_eq!(
        names(d.path()),
        [".other.Ab12Cd.tmp", ".rhcos-ibi.iso.notes", "rhcos-ibi.iso"]
    );
    assert_eq!(
        fs::read_to_string(elsewhere.path().join("t")).unwrap(),
        "keep"
    );
}

#[test]
fn a_second_lock_fails_naming_the_holder_and_the_file_goes_with_the_lock() {
    let d = tempfile::tempdir().unwrap();
    let out = OutputDir::open(d.path()).unwrap();
    let held = out.lock("create image").unwrap();
    let e = out.lock("create image").unwrap_err().to_string();
    assert!(
        e.contains(&format!("pid {}: sprout create image", std::process::id()))
            && e.contains(&d.path().display().to_string()),
        "{e}"
    );
    drop(held);
    assert!(names(d.path()).is_empty());
    let _again = out.lock("create image").unwrap();
    // The lock in place leaves no file at all.
    let _in_place = out.lock_in_place().unwrap();
    assert!(out.lock_in_place().is_err());
}

#[test]
fn beneath_a_root_links_stay_inside_and_the_last_component_is_real() {
    let root = tempfile::tempdir().unwrap();
    // As on RHCOS: /opt -> var/opt.
    fs::create_dir_all(root.path().join("var/opt")).unwrap();
    symlink("var/opt", root.path().join("opt")).unwrap();
    let work = OutputDir::open_beneath(root.path(), "opt/openshift", 0o700).unwrap();
    assert!(root.path().join("var/opt/openshift").is_dir());
    assert_eq!(mode(&root.path().join("var/opt/openshift")), 0o700);
    drop(work);

    // An absolute link is resolved inside the root, never on the host.
    let root2 = tempfile::tempdir().unwrap();
    let host_dir = tempfile::tempdir().unwrap();
    symlink(host_dir.path(), root2.path().join("opt")).unwrap();
    let _ = OutputDir::open_beneath(root2.path(), "opt/openshift", 0o700);
    assert!(names(host_dir.path()).is_empty());

    // The work directory itself being a link is refused.
    let root3 = tempfile::tempdir().unwrap();
    fs::create_dir(root3.path().join("opt")).unwrap();
    symlink(host_dir.path(), root3.path().join("opt/openshift")).unwrap();
    let e = OutputDir::open_beneath(root3.path(), "opt/openshift", 0o700).unwrap_err();
    assert!(format!("{e:#}").contains("is a symbolic link"), "{e:#}");
}

#[test]
fn move_into_replaces_a_directory_whole() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("from/x")).unwrap();
    fs::write(d.path().join("from/x/new"), "n").unwrap();
    fs::create_dir_all(d.path().join("to/x")).unwrap();
    fs::write(d.path().join("to/x/old"), "o").unwrap();
    let out = OutputDir::open(d.path()).unwrap();
    let from = out.subdir("from", 0o700).unwrap();
    let to = out.subdir("to", 0o700).unwrap();
    from.move_into("x", &to).unwrap();
    assert_eq!(names(&d.path().join("to/x")), ["new"]);
    assert!(names(&d.path().join("from")).is_empty());
}
