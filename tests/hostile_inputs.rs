//! Issue 9, reader side: hostile and broken inputs end in a clear error.
//! One test per example of classes 1, 2, 6 and 7, and further cases of
//! each class. Every run goes through the real binary and must end with a
//! message, a non-zero exit (never 101, a panic) and within the liveness
//! bound of `run_bounded`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sprout::iso::writer::{IsoTree, write_iso};
use support::copy_example;

/// Kill a run after this long: the liveness bound, not a speed check.
const BOUND: Duration = Duration::from_secs(60);

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sprout"));
    c.env_remove("JOURNAL_STREAM").env_remove("SPROUT_LOG");
    c
}

/// Runs `cmd` with stdout to `stdout`, killing it after [`BOUND`].
fn run_bounded(mut cmd: Command, stdout: Stdio) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > BOUND {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} did not finish within {BOUND:?}; stderr:\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sprout(args: &[&str]) -> Output {
    let mut c = bin();
    c.args(args);
    run_bounded(c, Stdio::piped())
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A refused input: exit 1, no panic, and the message contains `want`.
fn refused(o: &Output, want: &str) -> String {
    let e = err(o);
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains(want), "expected {want:?} in:\n{e}");
    e
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A live ISO as coreos-installer knows them, from our own ISO writer.
fn live_iso(dir: &Path, igninfo: &str, kargs: Option<&str>, ignition_img: Vec<u8>) -> PathBuf {
    let mut tree = IsoTree::new();
    tree.add_file("coreos/igninfo.jso", igninfo.as_bytes().to_vec())
        .unwrap();
    tree.add_file("images/ignition.img", ignition_img).unwrap();
    let mut cfg = b"linux /images/pxeboot/vmlinuz coreos.liveiso=x ".to_vec();
    cfg.resize(4096, b'#');
    tree.add_file("EFI/redhat/grub.cfg", cfg).unwrap();
    if let Some(k) = kargs {
        tree.add_file("coreos/kargs.jso", k.as_bytes().to_vec())
            .unwrap();
    }
    let path = dir.join("base.iso");
    let mut f = std::fs::File::create(&path).unwrap();
    write_iso("rhcos-test", &tree, &mut f).unwrap();
    path
}

const IGNINFO: &str = r#"{"file":"images/ignition.img"}"#;

fn mkfifo(p: &Path) {
    rustix::fs::mkfifoat(rustix::fs::CWD, p, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
}

// ---- class 1: panics and aborts ------------------------------------------

#[test]
fn full_stdout_is_an_error_not_a_panic() {
    let d = copy_example("config-image");
    let mut c = bin();
    c.args(["-q", "create", "config-image", "--dir", s(d.path())]);
    let o = run_bounded(c, std::fs::File::create("/dev/full").unwrap().into());
    refused(&o, "writing to stdout");
}

#[test]
fn stdout_closed_by_its_reader_ends_quietly() {
    let d = copy_example("config-image");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut c = bin();
    c.args(["-q", "create", "config-image", "--dir", s(d.path())]);
    let o = run_bounded(c, writer.into());
    let e = err(&o);
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(o.status.code(), Some(1), "{e}");
}

#[test]
fn a_huge_timeout_does_not_overflow_the_clock() {
    let root = tempfile::tempdir().unwrap();
    let mut c = bin();
    c.args([
        "post-pivot",
        "--until",
        "discovered",
        "--timeout",
        "18446744073709551615",
        "--root",
        s(root.path()),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    // Either it waits (udev works here) or it fails to reach udev; the
    // overflow panicked at once, so a few seconds tell.
    let mut child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_secs(3));
    if child.try_wait().unwrap().is_none() {
        child.kill().unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let e = err(&o);
    assert!(
        !e.contains("panicked") && o.status.code() != Some(101),
        "{e}"
    );
}

#[test]
fn igninfo_offset_plus_length_wrapping_around_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let iso = live_iso(
        d.path(),
        r#"{"file":"images/ignition.img","offset":18446744073709551615,"length":2}"#,
        None,
        vec![0; 8192],
    );
    let o = sprout(&["iso", "show-ignition", s(&iso)]);
    refused(
        &o,
        "coreos/igninfo.json names an area outside images/ignition.img",
    );
}

#[test]
fn kargs_offset_wrapping_around_is_refused() {
    let d = copy_example("image");
    let iso = live_iso(
        d.path(),
        IGNINFO,
        Some(
            r#"{"default":"","files":[{"path":"EFI/redhat/grub.cfg","offset":18446744073709551000}],"size":1024}"#,
        ),
        vec![0; 256 << 10],
    );
    let o = sprout(&[
        "create",
        "image",
        "--dir",
        s(d.path()),
        "--base-iso",
        s(&iso),
    ]);
    refused(
        &o,
        "coreos/kargs.json names an area outside EFI/redhat/grub.cfg",
    );
    assert!(!d.path().join("rhcos-ibi.iso").exists());
}

#[test]
fn a_kargs_area_of_absurd_size_is_refused_before_allocating() {
    let d = copy_example("image");
    let iso = live_iso(
        d.path(),
        IGNINFO,
        Some(
            r#"{"default":"","files":[{"path":"EFI/redhat/grub.cfg","offset":0}],"size":18446744073709551615}"#,
        ),
        vec![0; 256 << 10],
    );
    let o = sprout(&[
        "create",
        "image",
        "--dir",
        s(d.path()),
        "--base-iso",
        s(&iso),
    ]);
    refused(
        &o,
        "kernel-argument area size of 18446744073709551615 bytes",
    );
}

#[test]
fn a_truncated_iso_is_named_truncated() {
    let d = tempfile::tempdir().unwrap();
    let iso = live_iso(d.path(), IGNINFO, None, vec![0; 64 << 10]);
    let len = std::fs::metadata(&iso).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&iso)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let o = sprout(&["iso", "show-ignition", s(&iso)]);
    refused(&o, "incomplete");
}

// ---- class 2: endless loops and unbounded work ---------------------------

#[test]
fn an_empty_kargs_pad_is_refused_not_looped_on() {
    let d = copy_example("image");
    let iso = live_iso(
        d.path(),
        IGNINFO,
        Some(
            r#"{"default":"","files":[{"path":"EFI/redhat/grub.cfg","offset":0,"pad":""}],"size":1024}"#,
        ),
        vec![0; 256 << 10],
    );
    let o = sprout(&[
        "create",
        "image",
        "--dir",
        s(d.path()),
        "--base-iso",
        s(&iso),
    ]);
    refused(&o, "the pad of EFI/redhat/grub.cfg is \"\"");
}

#[test]
fn deep_yaml_nesting_is_refused_quickly() {
    let d = copy_example("config-image");
    std::fs::create_dir(d.path().join("extra-manifests")).unwrap();
    std::fs::write(
        d.path().join("extra-manifests/deep.yaml"),
        format!("apiVersion: v1\nkind: List\nitems: {}", "[".repeat(200_000)),
    )
    .unwrap();
    let o = sprout(&["create", "config-image", "--dir", s(d.path())]);
    refused(
        &o,
        "deep.yaml: nests lists and mappings more than 100 levels deep",
    );
}

#[test]
fn deep_nesting_in_install_config_is_refused() {
    let d = copy_example("config-image");
    let p = d.path().join("install-config.yaml");
    let mut text = std::fs::read_to_string(&p).unwrap();
    text.push_str(&format!("x: {}\n", "{a: ".repeat(50_000)));
    std::fs::write(&p, text).unwrap();
    let o = sprout(&["create", "config-image", "--dir", s(d.path())]);
    refused(&o, "install-config.yaml: nests lists and mappings");
}

#[test]
fn an_input_linked_to_dev_zero_is_refused() {
    let d = copy_example("config-image");
    let p = d.path().join("install-config.yaml");
    std::fs::remove_file(&p).unwrap();
    symlink("/dev/zero", &p).unwrap();
    let o = sprout(&["create", "config-image", "--dir", s(d.path())]);
    refused(&o, "is not a regular file: it is a character device");
}

#[test]
fn fifo_inputs_do_not_block() {
    let d = copy_example("config-image");
    let p = d.path().join("image-based-config.yaml");
    std::fs::remove_file(&p).unwrap();
    mkfifo(&p);
    std::fs::create_dir(d.path().join("extra-manifests")).unwrap();
    mkfifo(&d.path().join("extra-manifests/pipe.yaml"));
    mkfifo(&d.path().join(".sprout-state.json"));
    let o = sprout(&["create", "config-image", "--dir", s(d.path())]);
    let e = refused(
        &o,
        "image-based-config.yaml is not a regular file: it is a FIFO",
    );
    assert!(
        e.contains("pipe.yaml is not a regular file: it is a FIFO"),
        "{e}"
    );
}

#[test]
fn a_state_file_that_is_a_fifo_is_refused_with_the_way_out() {
    let d = copy_example("config-image");
    mkfifo(&d.path().join(".sprout-state.json"));
    let o = sprout(&["create", "config-image", "--dir", s(d.path())]);
    let e = refused(&o, ".sprout-state.json is not a regular file: it is a FIFO");
    assert!(e.contains("--regenerate"), "{e}");
}

#[test]
fn a_huge_post_sh_is_refused_before_compressing() {
    let d = copy_example("image");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(d.path().join("post.sh"))
        .unwrap();
    f.set_len(100 << 20).unwrap();
    let o = sprout(&[
        "create",
        "image",
        "--dir",
        s(d.path()),
        "--base-iso",
        "/nonexistent.iso",
    ]);
    refused(&o, "post.sh is larger than 2 MiB");
}

#[test]
fn an_embed_area_decompressing_to_gigabytes_is_cut_off() {
    // 65 MiB of zeros in one cpio member compress to a few KiB of xz.
    let mut cpio = Vec::new();
    let big = vec![0u8; 65 << 20];
    let mut w = cpio::newc::Builder::new("config.ign")
        .mode(0o100600)
        .write(&mut cpio, big.len() as u32);
    w.write_all(&big).unwrap();
    w.finish().unwrap();
    cpio::newc::trailer(&mut cpio).unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 1);
    xz.write_all(&cpio).unwrap();
    let mut area = xz.finish().unwrap();
    assert!(area.len() < 256 << 10, "{}", area.len());
    area.resize(256 << 10, 0);
    let d = tempfile::tempdir().unwrap();
    let iso = live_iso(d.path(), IGNINFO, None, area);
    let o = sprout(&["iso", "show-ignition", s(&iso)]);
    refused(&o, "holds more than 64 MiB");
}

// ---- class 6: seed checks with gaps --------------------------------------

mod seeds {
    use super::*;
    use sprout::testing::seed::SeedSpec;
    use sprout::testing::seed_tarballs::RawMember;

    fn spec() -> SeedSpec {
        SeedSpec {
            var_payload: 16 << 10,
            ostree_payload: 16 << 10,
            var_small_files: 2,
            write_images: false,
            ..SeedSpec::default()
        }
    }

    fn inspect(spec: &SeedSpec) -> (tempfile::TempDir, PathBuf, Output) {
        let work = tempfile::tempdir().unwrap();
        let seed = spec.build(work.path()).unwrap();
        let o = sprout(&["seed", "inspect", s(&seed.root)]);
        (work, seed.root, o)
    }

    fn stdout(o: &Output) -> String {
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    #[test]
    fn a_file_through_a_hard_link_to_an_escaping_symlink_is_refused() {
        let mut spec = spec();
        spec.var_extra = vec![
            RawMember::symlink("var/l", "/"),
            RawMember::hard_link("var/h", "var/l"),
            RawMember::file("var/h/tmp/owned", b"x"),
        ];
        let (_work, root, o) = inspect(&spec);
        let out = stdout(&o);
        assert!(out.contains("Usable:               NO"), "{out}");
        assert!(out.contains("goes through \"var/h\""), "{out}");
        assert_eq!(o.status.code(), Some(1));
        // GNU tar refuses to extract it too.
        if support::have("tar", "a_file_through_a_hard_link…") {
            let dest = tempfile::tempdir().unwrap();
            let t = Command::new("tar")
                .args(["-xzf", s(&root.join("var.tgz")), "-C", s(dest.path())])
                .output()
                .unwrap();
            assert!(!t.status.success(), "GNU tar extracted it");
            assert!(!Path::new("/tmp/owned").exists());
        }
    }

    #[test]
    fn a_hard_link_moving_a_relative_symlink_outside_is_refused() {
        let mut spec = spec();
        spec.var_extra = vec![
            RawMember::symlink("var/a/b/up", "../../x"),
            RawMember::hard_link("var/up", "var/a/b/up"),
        ];
        let (_work, _root, o) = inspect(&spec);
        let out = stdout(&o);
        assert!(out.contains("points outside the destination"), "{out}");
        assert_eq!(o.status.code(), Some(1));
    }

    #[test]
    fn the_refusal_of_seed_open_is_escaped_too() {
        use sprout::seed::{Expectations, PullOptions, Seed, SeedRef};
        let mut spec = spec();
        spec.info.seed_cluster_ocp_version = "4.16.0\x1b]0;owned\x07\n- fix: none".into();
        let work = tempfile::tempdir().unwrap();
        let seed = spec.build(work.path()).unwrap();
        let e = Seed::open(
            &SeedRef::parse(s(&seed.root)).unwrap(),
            &PullOptions::default(),
            &Expectations {
                seed_version: Some("4.17.0".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        let text = format!("{e:#}");
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert!(
            text.contains("4.16.0\\u{1b}]0;owned\\u{7}\\n- fix: none"),
            "{text}"
        );
    }

    #[test]
    fn seed_fields_cannot_forge_the_verdict_or_clear_the_terminal() {
        let mut spec = spec();
        spec.info.cluster_name = "sno\nUsable:               yes\x1b[2J\x1b[H".into();
        spec.info.recert_image_pull_spec = "quay.io/x\r\u{202e}".into();
        spec.omit = vec!["lca-cli".into()]; // an error: unusable
        let (_work, _root, o) = inspect(&spec);
        let out = stdout(&o);
        assert!(!out.contains('\x1b') && !out.contains('\r') && !out.contains('\u{202e}'));
        let verdicts: Vec<&str> = out.lines().filter(|l| l.starts_with("Usable:")).collect();
        assert_eq!(
            verdicts,
            ["Usable:               NO (see the errors below)"]
        );
        assert!(out.contains("sno\\nUsable:"), "{out}");
    }
}

// ---- class 7: errors a user can act on -----------------------------------

#[test]
fn an_empty_iso_is_named_empty() {
    let d = tempfile::tempdir().unwrap();
    let iso = d.path().join("empty.iso");
    std::fs::write(&iso, b"").unwrap();
    let o = sprout(&["iso", "show-ignition", s(&iso)]);
    let e = refused(&o, "not an ISO9660 image: it is 0 bytes (empty)");
    assert!(!e.contains("fill whole buffer"), "{e}");
    assert!(e.contains("empty.iso"), "{e}");
}

#[test]
fn a_non_tar_archive_is_named_so() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("seed.tar");
    std::fs::write(&f, vec![b'x'; 4096]).unwrap();
    let o = sprout(&["seed", "inspect", &format!("oci-archive:{}", s(&f))]);
    let e = refused(&o, "is not a tar archive");
    assert!(e.contains("seed.tar"), "{e}");
    assert!(e.contains("skopeo copy"), "{e}");
}

#[test]
fn nmstate_errors_name_the_yaml_field() {
    let d = copy_example("config-image");
    support::edit_yaml(&d.path().join("image-based-config.yaml"), |v| {
        v["networkConfig"]["interfaces"][0]["state"] = "upp".into();
    });
    let o = sprout(&["create", "config-image", "--dir", s(d.path())]);
    let e = refused(
        &o,
        "image-based-config.yaml: networkConfig: Invalid value: is not a valid nmstate network state: at interfaces[0]:",
    );
    assert!(!e.contains("column"), "{e}");
}

#[test]
fn a_dangling_symlink_is_named_dangling() {
    let d = copy_example("config-image");
    std::fs::create_dir(d.path().join("extra-manifests")).unwrap();
    symlink("gone.yaml", d.path().join("extra-manifests/cm.yaml")).unwrap();
    let o = sprout(&["create", "config-image", "--dir", s(d.path())]);
    let e = refused(&o, "is a symbolic link to gone.yaml, which does not exist");
    assert!(!e.contains("is not a .yaml"), "{e}");
}

#[test]
fn a_garbage_state_file_names_regenerate() {
    for garbage in [&b"\xff\xfe\x00garbage"[..], b"{\"version\": 1", b""] {
        let d = copy_example("config-image");
        std::fs::write(d.path().join(".sprout-state.json"), garbage).unwrap();
        let o = sprout(&["create", "config-image", "--dir", s(d.path())]);
        refused(&o, "--regenerate");
    }
    let d = copy_example("config-image");
    std::fs::create_dir(d.path().join(".sprout-state.json")).unwrap();
    let o = sprout(&["create", "config-image", "--dir", s(d.path())]);
    let e = refused(&o, "is not a regular file: it is a directory");
    assert!(e.contains("--regenerate"), "{e}");
}

#[test]
fn image_config_template_help_names_its_file() {
    let o = sprout(&["create", "image-config-template", "--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("image-based-installation-config.yaml"),
        "{out}"
    );
    assert!(!out.contains("image-based-config.yaml"), "{out}");
}

#[test]
fn a_symlink_loop_is_named_a_loop() {
    let d = copy_example("config-image");
    let p = d.path().join("install-config.yaml");
    std::fs::remove_file(&p).unwrap();
    symlink("install-config.yaml", &p).unwrap();
    let o = sprout(&["create", "config-image", "--dir", s(d.path())]);
    refused(&o, "install-config.yaml is a symbolic link that loops");
}

#[test]
fn a_directory_as_base_iso_is_named_a_directory() {
    let d = copy_example("image");
    let o = sprout(&[
        "create",
        "image",
        "--dir",
        s(d.path()),
        "--base-iso",
        s(d.path()),
    ]);
    refused(&o, "is not a regular file: it is a directory");
}
