//! Tests of the ISO writer, read back with real tools.
use super::*;

#[test]
fn rejects_bad_paths() {
    let mut tree = IsoTree::new();
    for bad in ["", "/abs", "a//b", "a/../b", "..", "./a", "a/", "x\0y"] {
        assert!(tree.add_file(bad, Vec::new()).is_err(), "{bad:?} accepted");
    }
    for bad in ["", "/", "/abs", "a//b", "a/..", "."] {
        assert!(tree.add_dir(bad).is_err(), "dir {bad:?} accepted");
    }
    let long = "x".repeat(256);
    assert!(tree.add_file(&long, Vec::new()).is_err());
    tree.add_file(&"x".repeat(255), Vec::new()).unwrap();
}

#[test]
fn rejects_duplicates_and_conflicts() {
    let mut tree = IsoTree::new();
    tree.add_file("a/b.txt", b"1".to_vec()).unwrap();
    let err = tree.add_file("a/b.txt", b"2".to_vec()).unwrap_err();
    assert!(
        format!("{err:#}").contains("has already been added"),
        "{err:#}"
    );
    // A file cannot become a directory, nor a directory a file.
    assert!(tree.add_dir("a/b.txt").is_err());
    assert!(tree.add_file("a/b.txt/c", Vec::new()).is_err());
    assert!(tree.add_file("a", Vec::new()).is_err());
    // Re-adding a directory is fine, with or without a trailing slash.
    tree.add_dir("a").unwrap();
    tree.add_dir("a/").unwrap();
    tree.add_dir("a/empty/deeper").unwrap();
}

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const LABEL: &str = "cluster-config";

/// Finds `tool` on PATH or in the sbin directories (blkid lives there).
fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

fn tool_or_skip(tool: &str) -> Option<PathBuf> {
    let found = find_tool(tool);
    if found.is_none() {
        eprintln!("SKIP: {tool} not installed");
    }
    found
}

fn run(tool: &Path, args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(tool).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{} {:?} failed: {}\n{}",
        tool.display(),
        args,
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Deterministic, non-repeating-looking contents of `len` bytes.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect()
}

struct Fixture {
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeSet<String>,
    image: tempfile::NamedTempFile,
}

fn fixture() -> Fixture {
    let mut files = BTreeMap::new();
    files.insert(
        "cluster-configuration/manifest.json".to_owned(),
        br#"{"apiVersion":"v1"}"#.to_vec(),
    );
    files.insert(
        "cluster-configuration/image-digest-mirror-set.json".to_owned(),
        b"{}\n".to_vec(),
    );
    files.insert(
        "cluster-configuration/kubeconfig-crypto/admin-kubeconfig-client-ca.crt".to_owned(),
        pattern(3000, 1),
    );
    files.insert(
        "extra-manifests-with-files/01-some-long-Mixed_Case.name.yaml".to_owned(),
        b"kind: ConfigMap\n".to_vec(),
    );
    files.insert("empty-file.txt".to_owned(), Vec::new());
    files.insert("big/large-blob.bin".to_owned(), pattern(200 * 1024 + 17, 2));
    files.insert("exactly-one-sector.bin".to_owned(), pattern(2048, 3));
    files.insert("a/b/c/d/e/f/g/deep-file.txt".to_owned(), b"deep\n".to_vec());
    files.insert("UPPER.TXT".to_owned(), b"upper".to_vec());
    // Enough long names that the directory spans several sectors.
    for i in 0..150 {
        let name =
            format!("many/{i:03}-a-rather-long-manifest-name-to-fill-directory-sectors.yaml");
        files.insert(name, format!("n: {i}\n").into_bytes());
    }

    let empty_dirs = ["cluster-configuration/manifests", "extra-manifests"];
    let mut tree = IsoTree::new();
    for dir in empty_dirs {
        tree.add_dir(dir).unwrap();
    }
    for (path, contents) in &files {
        tree.add_file(path, contents.clone()).unwrap();
    }

    let mut dirs = BTreeSet::new();
    for path in files.keys().map(String::as_str).chain(empty_dirs) {
        let mut parent = Path::new(path);
        if empty_dirs.contains(&path) {
            dirs.insert(path.to_owned());
        }
        while let Some(p) = parent.parent().filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(p.to_str().unwrap().to_owned());
            parent = p;
        }
    }

    let mut image = tempfile::NamedTempFile::new().unwrap();
    // Stale bytes past the end must not survive: pre-fill with junk.
    image.as_file_mut().write_all(&vec![0xa5; 8 << 20]).unwrap();
    write_iso(LABEL, &tree, image.as_file_mut()).unwrap();
    Fixture { files, dirs, image }
}

/// Every file and directory under `root`, relative, with file contents.
fn walk(root: &Path) -> (BTreeMap<String, Vec<u8>>, BTreeSet<String>) {
    let mut files = BTreeMap::new();
    let mut dirs = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_dir() {
                dirs.insert(rel);
                stack.push(path);
            } else {
                assert!(kind.is_file(), "{rel} is neither file nor directory");
                files.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    (files, dirs)
}

#[test]
fn image_size_and_label_bytes() {
    let fx = fixture();
    let bytes = std::fs::read(fx.image.path()).unwrap();
    assert_eq!(bytes.len() % 2048, 0);
    let pvd = &bytes[16 * 2048..17 * 2048];
    assert_eq!(&pvd[..6], b"\x01CD001");
    assert_eq!(&pvd[40..72], format!("{LABEL:<32}").as_bytes());
    let sectors = u32::from_le_bytes(pvd[80..84].try_into().unwrap());
    assert_eq!(bytes.len() as u64, u64::from(sectors) * 2048);
    // The system area stays empty: no MBR/GPT, nothing bootable.
    assert!(bytes[..16 * 2048].iter().all(|&b| b == 0));
}

#[test]
fn blkid_reports_label_and_type() {
    let Some(blkid) = tool_or_skip("blkid") else {
        return;
    };
    let fx = fixture();
    let out = run(
        &blkid,
        &[
            "-p".as_ref(),
            "-o".as_ref(),
            "export".as_ref(),
            fx.image.path().as_os_str(),
        ],
    );
    let lines: BTreeSet<&str> = out.lines().collect();
    assert!(lines.contains("LABEL=cluster-config"), "{out}");
    assert!(lines.contains("TYPE=iso9660"), "{out}");
}

#[test]
fn xorriso_extracts_identical_tree() {
    let Some(xorriso) = tool_or_skip("xorriso") else {
        return;
    };
    let fx = fixture();
    let outdir = tempfile::tempdir().unwrap();
    let target = outdir.path().join("x");
    run(
        &xorriso,
        &[
            "-osirrox".as_ref(),
            "on".as_ref(),
            "-indev".as_ref(),
            fx.image.path().as_os_str(),
            "-extract".as_ref(),
            "/".as_ref(),
            target.as_os_str(),
        ],
    );
    let (files, dirs) = walk(&target);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        fx.files.keys().collect::<Vec<_>>()
    );
    for (path, contents) in &fx.files {
        assert!(files[path] == *contents, "{path} differs after extraction");
    }
    assert_eq!(dirs, fx.dirs);
    assert!(target.join("extra-manifests").is_dir());
    assert!(target.join("cluster-configuration/manifests").is_dir());
}

#[test]
fn isovfy_finds_no_errors() {
    let Some(isovfy) = tool_or_skip("isovfy") else {
        return;
    };
    let fx = fixture();
    let out = run(&isovfy, &[fx.image.path().as_os_str()]);
    assert!(out.contains("No errors found"), "{out}");
}

#[test]
fn writes_to_write_only_handle_and_truncates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("imagebasedconfig.iso");
    std::fs::write(&path, vec![0x5a; 4 << 20]).unwrap();
    let mut tree = IsoTree::new();
    tree.add_file("a.txt", b"a".to_vec()).unwrap();
    let mut out = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    write_iso(LABEL, &tree, &mut out).unwrap();
    drop(out);
    let bytes = std::fs::read(&path).unwrap();
    let sectors = u32::from_le_bytes(bytes[16 * 2048 + 80..16 * 2048 + 84].try_into().unwrap());
    assert_eq!(bytes.len() as u64, u64::from(sectors) * 2048);
    assert!(bytes.len() < 4 << 20);
    assert!(bytes[..16 * 2048].iter().all(|&b| b == 0));
}

/// Expected full listing ("/a", "/a/b", ...) of files and directories.
fn expected_listing(fx: &Fixture) -> BTreeSet<String> {
    fx.files
        .keys()
        .chain(fx.dirs.iter())
        .map(|p| format!("/{p}"))
        .collect()
}

#[test]
fn isoinfo_lists_rock_ridge_names() {
    let Some(isoinfo) = tool_or_skip("isoinfo") else {
        return;
    };
    let fx = fixture();
    let image = fx.image.path().as_os_str();
    let listing = run(
        &isoinfo,
        &["-R".as_ref(), "-f".as_ref(), "-i".as_ref(), image],
    );
    let listed: BTreeSet<String> = listing.lines().map(str::to_owned).collect();
    assert_eq!(listed, expected_listing(&fx), "{listing}");

    let long = run(
        &isoinfo,
        &["-R".as_ref(), "-l".as_ref(), "-i".as_ref(), image],
    );
    for name in [
        "image-digest-mirror-set.json",
        "manifest.json",
        "01-some-long-Mixed_Case.name.yaml",
        "admin-kubeconfig-client-ca.crt",
    ] {
        assert!(
            long.lines()
                .any(|line| line.trim_end().ends_with(&format!(" {name}"))),
            "{name} missing from:\n{long}"
        );
    }
}

#[test]
fn isoinfo_lists_joliet_names() {
    let Some(isoinfo) = tool_or_skip("isoinfo") else {
        return;
    };
    let fx = fixture();
    let image = fx.image.path().as_os_str();
    let listing = run(
        &isoinfo,
        &["-J".as_ref(), "-f".as_ref(), "-i".as_ref(), image],
    );
    let listed: BTreeSet<String> = listing.lines().map(str::to_owned).collect();
    assert_eq!(listed, expected_listing(&fx), "{listing}");

    // Joliet contents, read back through the Joliet tree.
    let path = "/extra-manifests-with-files/01-some-long-Mixed_Case.name.yaml";
    let contents = Command::new(&isoinfo)
        .args([
            "-J".as_ref(),
            "-i".as_ref(),
            image,
            "-x".as_ref(),
            path.as_ref(),
        ])
        .output()
        .unwrap();
    assert!(contents.status.success());
    assert_eq!(contents.stdout, fx.files[&path[1..]]);
}

#[test]
fn rejects_too_deep_trees() {
    let sink = tempfile::tempfile().unwrap();
    let mut ok = IsoTree::new();
    ok.add_file("a/b/c/d/e/f/g/file-at-level-8", b"x".to_vec())
        .unwrap();
    write_iso(LABEL, &ok, &mut sink.try_clone().unwrap()).unwrap();

    let mut deep = IsoTree::new();
    deep.add_dir("a/b/c/d/e/f/g/h").unwrap();
    let err = write_iso(LABEL, &deep, &mut sink.try_clone().unwrap()).unwrap_err();
    assert!(format!("{err:#}").contains("nested deeper"), "{err:#}");

    let mut long = IsoTree::new();
    let component = "d".repeat(100);
    long.add_dir(&[component.as_str(); 3].join("/")).unwrap();
    let err = write_iso(LABEL, &long, &mut sink.try_clone().unwrap()).unwrap_err();
    assert!(format!("{err:#}").contains("longer than"), "{err:#}");
}

#[test]
fn rejects_bad_volume_ids() {
    assert!(validate_volume_id("").is_err());
    assert!(validate_volume_id(&"a".repeat(33)).is_err());
    assert!(validate_volume_id("caf\u{e9}").is_err());
    validate_volume_id(&"a".repeat(32)).unwrap();
    validate_volume_id("cluster-config").unwrap();
}

#[test]
fn build_image_is_reproducible_and_dated_as_asked() {
    let mut tree = IsoTree::new();
    tree.add_file("a/b/c.json", b"{}".to_vec()).unwrap();
    tree.add_dir("empty").unwrap();
    let t = IsoTime::from_unix(1_700_000_000).unwrap();
    let one = build_image(LABEL, &tree, t).unwrap();
    // hadris reads the clock at one-second resolution in directory records.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let two = build_image(LABEL, &tree, t).unwrap();
    assert!(one == two, "the same tree and time gave different bytes");
    let other = build_image(LABEL, &tree, IsoTime::from_unix(0).unwrap()).unwrap();
    assert_eq!(one.len(), other.len());
    assert!(one != other, "the time was ignored");
    // Both dates of the primary volume descriptor are the chosen one.
    let pvd = &one[16 * 2048..17 * 2048];
    assert_eq!(&pvd[813..829], b"2023111422132000");
    assert_eq!(&pvd[830..846], b"2023111422132000");
}
