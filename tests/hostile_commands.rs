//! Issue 9, acceptance 4: every subcommand, with a closed, a full and a
//! reader-less stdout, and with each of its inputs replaced by an empty
//! file, a directory, a FIFO, a symbolic link loop and a link to
//! /dev/zero. No run may panic or exit 101; a run that fails must say why
//! on stderr; a replacement that cannot be a valid input must fail; every
//! run must end within the liveness bound (it is killed after that and the
//! test fails).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sprout::iso::writer::{IsoTree, write_iso};
use support::copy_example;

const BOUND: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Replacement {
    Empty,
    Directory,
    Fifo,
    SymlinkLoop,
    DevZero,
}

const REPLACEMENTS: [Replacement; 5] = [
    Replacement::Empty,
    Replacement::Directory,
    Replacement::Fifo,
    Replacement::SymlinkLoop,
    Replacement::DevZero,
];

fn replace(p: &Path, r: Replacement) {
    if let Ok(m) = p.symlink_metadata() {
        if m.is_dir() {
            std::fs::remove_dir_all(p).unwrap();
        } else {
            std::fs::remove_file(p).unwrap();
        }
    }
    match r {
        Replacement::Empty => std::fs::write(p, b"").unwrap(),
        Replacement::Directory => std::fs::create_dir(p).unwrap(),
        Replacement::Fifo => {
            rustix::fs::mkfifoat(rustix::fs::CWD, p, rustix::fs::Mode::from_raw_mode(0o600))
                .unwrap()
        }
        Replacement::SymlinkLoop => std::os::unix::fs::symlink(p.file_name().unwrap(), p).unwrap(),
        Replacement::DevZero => std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Stdout {
    Pipe,
    Closed,
    Full,
    ReaderGone,
}

fn run(args: &[String], stdout: Stdout) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sprout"));
    c.args(args)
        .env_remove("JOURNAL_STREAM")
        .env_remove("SPROUT_LOG")
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    match stdout {
        Stdout::Pipe => {
            c.stdout(Stdio::piped());
        }
        Stdout::Full => {
            c.stdout(std::fs::File::create("/dev/full").unwrap());
        }
        Stdout::ReaderGone => {
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            c.stdout(writer);
        }
        Stdout::Closed => {
            c.stdout(Stdio::null());
            // SAFETY: close(2) is async-signal-safe; nothing else runs
            // between fork and exec here.
            unsafe {
                c.pre_exec(|| {
                    let _ = nix::unistd::close(1);
                    Ok(())
                });
            }
        }
    }
    let mut child = c.spawn().unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > BOUND {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!(
                "sprout {args:?} did not finish within {BOUND:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// No panic, no exit 101, and a failure says something.
fn sane(args: &[String], o: &Output, what: &str) {
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        !e.contains("panicked") && o.status.code() != Some(101) && o.status.code().is_some(),
        "sprout {args:?} ({what}) crashed: {:?}\n{e}",
        o.status
    );
}

fn failed_with_message(args: &[String], o: &Output, what: &str) {
    sane(args, o, what);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "sprout {args:?} accepted {what}:\n{e}");
    assert!(
        e.contains("ERROR"),
        "sprout {args:?} ({what}) failed silently"
    );
}

/// One command: how to set up good inputs, its arguments, and its inputs.
struct Case {
    name: &'static str,
    /// The working directory with good inputs, and the arguments.
    setup: fn(&Path) -> Vec<String>,
    /// Inputs (relative to the working directory) and whether each
    /// replacement must fail (`false` for `Empty` where empty is valid).
    inputs: &'static [(&'static str, bool)],
}

fn p(dir: &Path, rel: &str) -> String {
    dir.join(rel).to_str().unwrap().to_string()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn copy_into(example: &str, dir: &Path) {
    let src = copy_example(example);
    for e in std::fs::read_dir(src.path()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
}

/// A live ISO from our writer, with `members` embedded.
fn live_iso(path: &Path, config: Option<&[u8]>) {
    let mut area = match config {
        Some(c) => {
            let mut m = std::collections::BTreeMap::new();
            m.insert("config.ign".to_string(), c.to_vec());
            sprout::iso::embed::build_payload(&m).unwrap()
        }
        None => Vec::new(),
    };
    area.resize(256 << 10, 0);
    let mut tree = IsoTree::new();
    tree.add_file(
        "coreos/igninfo.jso",
        br#"{"file":"images/ignition.img"}"#.to_vec(),
    )
    .unwrap();
    tree.add_file("images/ignition.img", area).unwrap();
    let mut cfg = b"linux /images/pxeboot/vmlinuz ".to_vec();
    cfg.resize(2048, b'#');
    tree.add_file("EFI/redhat/grub.cfg", cfg).unwrap();
    tree.add_file(
        "coreos/kargs.jso",
        br#"{"default":"","files":[{"path":"EFI/redhat/grub.cfg","offset":30}],"size":1024}"#
            .to_vec(),
    )
    .unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    write_iso("rhcos-test", &tree, &mut f).unwrap();
    f.flush().unwrap();
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "create config-template",
            setup: |d| strings(&["-q", "create", "config-template", "--dir", &p(d, "out")]),
            inputs: &[("out", true)],
        },
        Case {
            name: "create image-config-template",
            setup: |d| {
                strings(&[
                    "-q",
                    "create",
                    "image-config-template",
                    "--dir",
                    &p(d, "out"),
                ])
            },
            inputs: &[("out", true)],
        },
        Case {
            name: "create config-image",
            setup: |d| {
                copy_into("config-image", d);
                std::fs::create_dir(d.join("extra-manifests")).unwrap();
                std::fs::write(
                    d.join("extra-manifests/ns.yaml"),
                    "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n",
                )
                .unwrap();
                strings(&["-q", "create", "config-image", "--dir", d.to_str().unwrap()])
            },
            inputs: &[
                ("install-config.yaml", true),
                ("image-based-config.yaml", true),
                ("extra-manifests/ns.yaml", true),
                (".sprout-state.json", true),
            ],
        },
        Case {
            name: "create image",
            setup: |d| {
                copy_into("image", d);
                live_iso(&d.join("base.iso"), None);
                strings(&[
                    "-q",
                    "create",
                    "image",
                    "--dir",
                    d.to_str().unwrap(),
                    "--base-iso",
                    &p(d, "base.iso"),
                ])
            },
            inputs: &[
                ("image-based-installation-config.yaml", true),
                // An empty post.sh is a valid (empty) script.
                ("post.sh", false),
                ("base.iso", true),
            ],
        },
        Case {
            name: "iso show-ignition",
            setup: |d| {
                live_iso(
                    &d.join("ibi.iso"),
                    Some(br#"{"ignition":{"version":"3.2.0"}}"#),
                );
                strings(&["iso", "show-ignition", &p(d, "ibi.iso")])
            },
            inputs: &[("ibi.iso", true)],
        },
        Case {
            name: "seed inspect",
            setup: |d| {
                let spec = sprout::testing::seed::SeedSpec {
                    var_payload: 8 << 10,
                    ostree_payload: 8 << 10,
                    var_small_files: 1,
                    write_images: false,
                    ..Default::default()
                };
                let seed = spec.build(&d.join("work")).unwrap();
                std::os::unix::fs::symlink(&seed.root, d.join("seed")).unwrap();
                strings(&["-q", "seed", "inspect", &p(d, "seed/")])
            },
            inputs: &[
                ("seed", true),
                ("seed/manifest.json", true),
                ("seed/var.tgz", true),
            ],
        },
        Case {
            name: "post-pivot",
            setup: |d| {
                std::fs::create_dir_all(d.join("root/opt/openshift/cluster-configuration"))
                    .unwrap();
                strings(&[
                    "-q",
                    "post-pivot",
                    "--until",
                    "discovered",
                    "--timeout",
                    "1",
                    "--root",
                    &p(d, "root"),
                ])
            },
            inputs: &[("root", true)],
        },
    ]
}

#[test]
fn every_subcommand_survives_bad_stdout() {
    for case in cases() {
        for stdout in [
            Stdout::Pipe,
            Stdout::Closed,
            Stdout::Full,
            Stdout::ReaderGone,
        ] {
            let d = tempfile::tempdir().unwrap();
            std::fs::create_dir(d.path().join("work")).unwrap();
            let args = (case.setup)(d.path());
            let o = run(&args, stdout);
            let what = format!("{}, stdout {stdout:?}", case.name);
            sane(&args, &o, &what);
            match stdout {
                Stdout::Pipe | Stdout::Closed => assert!(
                    o.status.success(),
                    "{what}: {}",
                    String::from_utf8_lossy(&o.stderr)
                ),
                // Commands that print data fail on a full stdout, with a
                // message; the template commands print nothing.
                Stdout::Full if !case.name.contains("template") => {
                    failed_with_message(&args, &o, &what)
                }
                _ => {}
            }
        }
    }
}

#[test]
fn every_input_of_every_subcommand_replaced_by_something_else() {
    for case in cases() {
        for (input, empty_is_bad) in case.inputs {
            for r in REPLACEMENTS {
                let d = tempfile::tempdir().unwrap();
                std::fs::create_dir(d.path().join("work")).unwrap();
                let args = (case.setup)(d.path());
                let target: PathBuf = d.path().join(input);
                // The seed's files live behind the `seed` link.
                let target = if let Some(rest) = input.strip_prefix("seed/") {
                    std::fs::read_link(d.path().join("seed"))
                        .unwrap()
                        .join(rest)
                } else {
                    target
                };
                replace(&target, r);
                let o = run(&args, Stdout::Pipe);
                let what = format!("{}: {input} as {r:?}", case.name);
                // An output directory replaced by an empty directory is
                // still a fine place to write to; a root that is an empty
                // directory has no configuration and udev may be missing.
                let must_fail = match r {
                    Replacement::Empty => *empty_is_bad,
                    Replacement::Directory => !(*input == "out" || *input == "root"),
                    _ => true,
                };
                if must_fail {
                    failed_with_message(&args, &o, &what);
                } else {
                    sane(&args, &o, &what);
                    if !o.status.success() {
                        assert!(
                            String::from_utf8_lossy(&o.stderr).contains("ERROR"),
                            "{what} failed silently"
                        );
                    }
                }
            }
        }
    }
}
