//! Extraction and image-layout details that need no external tool:
//! tarballs and layouts are made in the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::collections::BTreeMap;
use std::io::Cursor;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use sprout::seed::extract::{ExtractOptions, extract_tar, extract_tgz};
use sprout::seed::{Expectations, PullOptions, Seed, SeedRef, Tarball};
use sprout::testing::oci_writer::{LayerCompression, write_layout};
use tar::{Builder, EntryType, Header};

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    h
}

/// A var.tgz-like tar: a read-only directory with a child, a set-uid
/// file, links, a FIFO, an extended attribute and a pax owner.
fn sample_tar() -> Vec<u8> {
    let mut b = Builder::new(Vec::new());
    b.append_data(
        &mut header(EntryType::Directory, 0o755, 0),
        "var/",
        std::io::empty(),
    )
    .unwrap();
    b.append_data(
        &mut header(EntryType::Directory, 0o555, 0),
        "var/ro/",
        std::io::empty(),
    )
    .unwrap();
    b.append_data(
        &mut header(EntryType::Regular, 0o644, 5),
        "var/ro/child",
        &b"child"[..],
    )
    .unwrap();
    b.append_pax_extensions([("SCHILY.xattr.user.seed", &b"yes"[..]), ("uid", b"70000")])
        .unwrap();
    b.append_data(
        &mut header(EntryType::Regular, 0o4755, 3),
        "var/suid",
        &b"bin"[..],
    )
    .unwrap();
    b.append_link(
        &mut header(EntryType::Symlink, 0o777, 0),
        "var/link",
        "/etc/hostname",
    )
    .unwrap();
    b.append_link(
        &mut header(EntryType::Link, 0o644, 0),
        "var/hard",
        "var/suid",
    )
    .unwrap();
    b.append_data(
        &mut header(EntryType::Fifo, 0o600, 0),
        "var/pipe",
        std::io::empty(),
    )
    .unwrap();
    // A later member replaces an earlier one, as with tar.
    b.append_data(
        &mut header(EntryType::Regular, 0o644, 3),
        "var/ro/child",
        &b"new"[..],
    )
    .unwrap();
    b.into_inner().unwrap()
}

#[test]
fn extraction_keeps_what_a_rootfs_needs() {
    let d = tempfile::tempdir().unwrap();
    let root = rustix::process::geteuid().is_root();
    let r = extract_tar(
        Cursor::new(sample_tar()),
        Tarball::Var,
        d.path(),
        &ExtractOptions::default(),
    )
    .unwrap();
    assert_eq!(r.members, 8);
    let md = |p: &str| std::fs::symlink_metadata(d.path().join(p)).unwrap();
    assert_eq!(md("var/ro").permissions().mode() & 0o7777, 0o555);
    assert_eq!(md("var/ro").mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read(d.path().join("var/ro/child")).unwrap(),
        b"new"
    );
    assert_eq!(md("var/suid").permissions().mode() & 0o7777, 0o4755);
    assert_eq!(md("var/suid").ino(), md("var/hard").ino());
    assert_eq!(
        std::fs::read_link(d.path().join("var/link")).unwrap(),
        Path::new("/etc/hostname")
    );
    assert!(md("var/pipe").file_type().is_fifo());
    if root {
        assert_eq!(md("var/suid").uid(), 70000, "the pax uid is used");
    }
    let mut buf = [0u8; 16];
    if let Ok(n) = rustix::fs::getxattr(d.path().join("var/suid").as_path(), "user.seed", &mut buf)
    {
        assert_eq!(&buf[..n], b"yes");
    } else {
        assert_eq!(r.xattrs_skipped, 1, "{r:?}");
    }
}

#[test]
fn a_member_cannot_replace_a_directory() {
    let mut b = Builder::new(Vec::new());
    b.append_data(
        &mut header(EntryType::Directory, 0o755, 0),
        "etc/x/",
        std::io::empty(),
    )
    .unwrap();
    b.append_data(
        &mut header(EntryType::Regular, 0o644, 1),
        "etc/x",
        &b"f"[..],
    )
    .unwrap();
    let d = tempfile::tempdir().unwrap();
    let e = extract_tar(
        Cursor::new(b.into_inner().unwrap()),
        Tarball::Etc,
        d.path(),
        &ExtractOptions::default(),
    )
    .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("extracting etc.tgz member etc/x"), "{msg}");
    assert!(
        msg.contains("is a directory; a member cannot replace it"),
        "{msg}"
    );
}

#[test]
fn non_gzip_tarballs_are_named() {
    let d = tempfile::tempdir().unwrap();
    let e = extract_tgz(
        Cursor::new(sample_tar()),
        Tarball::Var,
        d.path(),
        &ExtractOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "var.tgz is not a gzip file");
}

fn open(reference: &str) -> String {
    match Seed::open(
        &SeedRef::parse(reference).unwrap(),
        &PullOptions::default(),
        &Expectations::default(),
    ) {
        Ok(_) => panic!("{reference} opened"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn layouts_name_their_tags_and_problems() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("manifest.json"), "{}").unwrap();
    let layout = d.path().join("oci");
    let labels = BTreeMap::new();
    write_layout(&root, &layout, "a", &labels, LayerCompression::Gzip).unwrap();
    write_layout(&root, &layout, "b", &labels, LayerCompression::None).unwrap();
    let l = layout.display();

    let e = open(&format!("oci:{l}"));
    assert!(
        e.contains("holds 2 images; name one as oci:") && e.contains("(tags: a, b)"),
        "{e}"
    );
    let e = open(&format!("oci:{l}:c"));
    assert!(e.contains("has no image tagged \"c\" (tags: a, b)"), "{e}");
    // Both tags open as images; the seed files are what is missing.
    for tag in ["a", "b"] {
        let e = open(&format!("oci:{l}:{tag}"));
        assert!(e.contains("cannot be used"), "{e}");
        assert!(e.contains("lca-cli is missing from the seed"), "{e}");
        assert!(!e.contains("manifest.json is missing"), "{e}");
    }
    let e = open(&format!("oci:{}", root.display()));
    assert!(e.contains("is not an OCI image layout"), "{e}");
    let e = open(&format!(
        "oci-archive:{}",
        root.join("manifest.json").display()
    ));
    assert!(e.contains("manifest.json"), "{e}");
}
