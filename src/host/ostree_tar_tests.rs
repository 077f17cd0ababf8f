use std::path::Path;

use super::*;
use crate::host::ostree::OstreeSysroot;
use crate::testing::seed::SeedSpec;
use crate::testing::sysroot::{TestSysroot, tools_or_skip};

#[test]
fn object_and_ref_paths() {
    let c = "ab".to_string() + &"0".repeat(62);
    let p = format!("objects/ab/{}.filez", &c[2..]);
    assert_eq!(object_of(&p), Some((ObjectType::File, c.clone())));
    let p = format!("objects/ab/{}.commit", &c[2..]);
    assert_eq!(object_of(&p), Some((ObjectType::Commit, c)));
    assert_eq!(object_of("objects/ab/xyz.filez"), None);
    assert_eq!(object_of("objects/ab/../../etc.filez"), None);
    assert_eq!(object_of("config"), None);
    assert_eq!(ref_of("refs/heads/a/b"), Some((None, "a/b".into())));
    assert_eq!(
        ref_of("refs/remotes/r/x"),
        Some((Some("r".into()), "x".into()))
    );
    assert_eq!(ref_of("refs/heads/"), None);
}

/// A seed whose commit has a file larger than `WHOLE_MAX` (streamed in
/// chunks) and small ones (sent whole). Returns the commit.
fn seed(work: &Path) -> String {
    let spec = SeedSpec {
        write_images: false,
        var_payload: 64 << 10,
        var_small_files: 2,
        ostree_payload: 3 << 20,
        ostree_small_files: 40,
        ..SeedSpec::default()
    };
    spec.build(work).unwrap().commit
}

fn tgz_of(repo: &Path, out: &Path) {
    let st = std::process::Command::new("tar")
        .arg("czf")
        .arg(out)
        .arg("-C")
        .arg(repo)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
}

/// An empty sysroot (`ostree admin init-fs`), so that its repository
/// holds only what is imported.
fn empty_sysroot() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    ostree_cli(&["admin", "init-fs", &d.path().display().to_string()]);
    d
}

fn ostree_cli(args: &[&str]) -> String {
    let out = std::process::Command::new("ostree")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "ostree {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn open(p: &Path) -> Box<dyn Read + Send> {
    Box::new(std::fs::File::open(p).unwrap())
}

/// Object file names with mode, owner and size, sorted.
fn objects(repo: &Path) -> Vec<(String, u32, u32, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    for d in std::fs::read_dir(repo.join("objects")).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let f = f.unwrap();
            let md = f.path().symlink_metadata().unwrap();
            let name = f.path().strip_prefix(repo).unwrap().display().to_string();
            out.push((name, md.mode(), md.uid(), md.len()));
        }
    }
    out.sort();
    out
}

#[test]
fn streamed_import_equals_pull_local() {
    if !tools_or_skip("streamed_import_equals_pull_local", &["ostree", "tar"]).unwrap() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let commit = seed(work.path());
    let tgz = work.path().join("root/ostree.tgz");

    let streamed = empty_sysroot();
    let sysroot = OstreeSysroot::open(streamed.path()).unwrap();
    let mut calls = 0;
    let last = sysroot
        .import_tgz(open(&tgz), &commit, |_| calls += 1)
        .unwrap();
    assert!(calls >= 1);
    assert!(sysroot.has_commit(&commit).unwrap());
    assert!(last.objects_fetched > 40, "{last:?}");

    let pulled = empty_sysroot();
    let pulled_repo = format!("--repo={}/ostree/repo", pulled.path().display());
    let seed_repo = work.path().join("repo").display().to_string();
    ostree_cli(&[&pulled_repo, "pull-local", &seed_repo]);
    let a = objects(&streamed.path().join("ostree/repo"));
    let b = objects(&pulled.path().join("ostree/repo"));
    assert_eq!(a, b);
    assert!(a.iter().any(|(_, _, _, len)| *len > WHOLE_MAX));
    // libostree re-reads and re-checksums every object.
    let streamed_repo = format!("--repo={}/ostree/repo", streamed.path().display());
    ostree_cli(&[&streamed_repo, "fsck"]);
    assert_eq!(
        ostree_cli(&[&streamed_repo, "refs"]),
        ostree_cli(&[&pulled_repo, "refs"])
    );
}

#[test]
fn a_corrupt_object_fails_and_the_commit_stays_unimported() {
    if !tools_or_skip("tar_import_corrupt_object", &["ostree", "tar"]).unwrap() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let commit = seed(work.path());
    // Rename a file inside a directory object: still a well-formed
    // object, so only checksum verification can notice.
    let objects = work.path().join("repo/objects");
    let mut changed = 0;
    for d in std::fs::read_dir(&objects).unwrap() {
        for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "dirtree") {
                let bytes = std::fs::read(&p).unwrap();
                if let Some(i) = bytes.windows(10).position(|w| w == b"os-release") {
                    let mut b = bytes.clone();
                    b[i + 9] = b'f';
                    std::fs::write(&p, b).unwrap();
                    changed += 1;
                }
            }
        }
    }
    assert_eq!(changed, 1);
    let tgz = work.path().join("bad.tgz");
    tgz_of(&work.path().join("repo"), &tgz);
    let t = TestSysroot::with_rhcos().unwrap();
    let sysroot = OstreeSysroot::open(t.path()).unwrap();
    let e = sysroot.import_tgz(open(&tgz), &commit, |_| {}).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.to_lowercase().contains("corrupted"), "{msg}");
    assert!(!sysroot.has_commit(&commit).unwrap());
}

#[test]
fn a_missing_object_fails_then_the_whole_tarball_completes_it() {
    if !tools_or_skip("tar_import_missing_object", &["ostree", "tar"]).unwrap() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let commit = seed(work.path());
    let full = work.path().join("root/ostree.tgz");
    // A copy of the repository without one content object.
    let partial_repo = work.path().join("partial");
    let st = std::process::Command::new("cp")
        .args(["-a"])
        .arg(work.path().join("repo"))
        .arg(&partial_repo)
        .status()
        .unwrap();
    assert!(st.success());
    let victim = objects(&partial_repo)
        .into_iter()
        .find(|(n, ..)| n.ends_with(".filez"))
        .unwrap();
    std::fs::remove_file(partial_repo.join(&victim.0)).unwrap();
    let tgz = work.path().join("partial.tgz");
    tgz_of(&partial_repo, &tgz);

    let t = TestSysroot::with_rhcos().unwrap();
    let sysroot = OstreeSysroot::open(t.path()).unwrap();
    let e = sysroot.import_tgz(open(&tgz), &commit, |_| {}).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("lacks 1 objects"), "{msg}");
    assert!(!sysroot.has_commit(&commit).unwrap());
    // A rerun (the step resumed) with the whole tarball completes it.
    sysroot.import_tgz(open(&full), &commit, |_| {}).unwrap();
    assert!(sysroot.has_commit(&commit).unwrap());
    t.ostree(&["fsck"], false).unwrap();
}

#[test]
fn not_gzip_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let repo = ::ostree::Repo::new_for_path(t.path());
    repo.create(::ostree::RepoMode::Bare, gio::Cancellable::NONE)
        .unwrap();
    let e = import_tgz(
        &repo,
        Box::new(Cursor::new(b"plain".to_vec())),
        &"0".repeat(64),
        |_| {},
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("not a gzip file"));
}
