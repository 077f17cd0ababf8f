//! Seed acceptance 2: each broken seed is refused with a message naming the
//! problem, by `seed inspect` (which exits non-zero) and by the library;
//! hostile tarballs are refused by extraction too, and nothing is ever
//! written outside the destination.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::path::{Path, PathBuf};

use sprout::seed::{Expectations, ExtractOptions, PullOptions, Seed, SeedRef, Tarball};
use sprout::testing::have_tools;
use sprout::testing::seed::{BuiltSeed, SeedSpec};
use sprout::testing::seed_tarballs::RawMember;
use support::{sprout, stderr};

/// A small seed, quick to build: the defaults with little payload.
fn spec() -> SeedSpec {
    SeedSpec {
        var_payload: 64 << 10,
        ostree_payload: 16 << 10,
        var_small_files: 4,
        ..SeedSpec::default()
    }
}

fn build(spec: &SeedSpec) -> (tempfile::TempDir, BuiltSeed) {
    let work = tempfile::tempdir().unwrap();
    let seed = spec.build(work.path()).unwrap();
    (work, seed)
}

/// `seed inspect` refuses the seed; returns stdout + stderr.
fn inspect_refuses(reference: &str) -> String {
    let o = sprout(&["seed", "inspect", reference]);
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        !o.status.success(),
        "inspect accepted a broken seed:\n{all}"
    );
    all
}

/// `Seed::open` refuses it; returns the message.
fn open_refuses(reference: &str) -> String {
    let r = Seed::open(
        &SeedRef::parse(reference).unwrap(),
        &PullOptions::default(),
        &Expectations::default(),
    );
    match r {
        Ok(_) => panic!("Seed::open accepted {reference}"),
        Err(e) => format!("{e:#}"),
    }
}

fn assert_names(msg: &str, want: &str) {
    assert!(msg.contains(want), "expected {want:?} in:\n{msg}");
}

#[test]
fn broken_metadata_is_refused_with_the_problem_named() {
    let test = "broken_metadata_is_refused_with_the_problem_named";
    if !have_tools(test, &["ostree"]) {
        return;
    }
    let no_booted = br#"{"deployments":[{"id":"rhcos-abc.0","osname":"rhcos","booted":false}]}"#;
    let cases: Vec<(&str, SeedSpec, &str)> = vec![
        (
            "missing format label",
            SeedSpec {
                format_label: None,
                ..spec()
            },
            "has no label com.openshift.lifecycle-agent.seed_format_version",
        ),
        (
            "wrong format label",
            SeedSpec {
                format_label: Some("3".into()),
                ..spec()
            },
            "seed format version 3 (label com.openshift.lifecycle-agent.seed_format_version) is not supported",
        ),
        (
            "label and manifest.json disagree",
            SeedSpec {
                cluster_info_label: Some(Some(r#"{"seed_cluster_ocp_version":"4.15.0"}"#.into())),
                ..spec()
            },
            "seed_cluster_info and manifest.json disagree",
        ),
        (
            "missing file",
            SeedSpec {
                omit: vec!["mco-currentconfig.json".into()],
                ..spec()
            },
            "mco-currentconfig.json is missing from the seed",
        ),
        (
            "missing tarball",
            SeedSpec {
                omit: vec!["etc.tgz".into()],
                ..spec()
            },
            "etc.tgz is missing from the seed",
        ),
        (
            "no booted deployment",
            SeedSpec {
                replace: [("rpm-ostree.json".to_string(), no_booted.to_vec())].into(),
                ..spec()
            },
            "rpm-ostree.json has no booted deployment",
        ),
        (
            "malformed JSON",
            SeedSpec {
                replace: [(
                    "manifest.json".to_string(),
                    b"{\"seed_cluster_ocp_version\": ".to_vec(),
                )]
                .into(),
                cluster_info_label: Some(Some("{}".into())),
                ..spec()
            },
            "manifest.json is not valid JSON (line 1 column",
        ),
        (
            "etc.deletions outside /etc",
            SeedSpec {
                replace: [(
                    "etc.deletions".to_string(),
                    b"/etc/../usr/bin/bash\n".to_vec(),
                )]
                .into(),
                ..spec()
            },
            "etc.deletions line 1: \"/etc/../usr/bin/bash\" is not a path below /etc",
        ),
    ];
    for (what, spec, want) in cases {
        let (_work, seed) = build(&spec);
        let out = inspect_refuses(&seed.oci_ref());
        assert_names(&out, want);
        assert_names(&out, "cannot be installed");
        let msg = open_refuses(&seed.archive_ref());
        assert_names(&msg, want);
        assert_names(&msg, "cannot be used");
        eprintln!("refused as expected: {what}");
    }
}

/// A unique name for escape targets, so a failing run is unmistakable;
/// short enough that messages, which cut quoted values past 40 characters
/// (api::excerpt), show it whole.
fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    format!("sprout-esc-{}-{t}", std::process::id())
}

struct Hostile {
    what: &'static str,
    members: Vec<RawMember>,
    /// What the refusal names.
    want: String,
    /// Paths outside the destination that must not appear.
    outside: Vec<PathBuf>,
}

fn hostile_cases(sandbox: &Path) -> Vec<Hostile> {
    let n = nonce();
    let victim = sandbox.join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let victim_s = victim.to_str().unwrap().to_string();
    vec![
        Hostile {
            what: "../x",
            members: vec![RawMember::file(&format!("../{n}"), b"escaped")],
            want: format!("refusing member \"../{n}\": it has a name with '..'"),
            outside: vec![sandbox.join(&n)],
        },
        Hostile {
            what: "/etc/x",
            members: vec![RawMember::file(&format!("/etc/{n}"), b"escaped")],
            want: format!("refusing member \"/etc/{n}\": it has an absolute name"),
            outside: vec![Path::new("/etc").join(&n)],
        },
        Hostile {
            what: "a symlink to / followed by a file through it",
            members: vec![
                RawMember::symlink("var/evil", "/"),
                RawMember::file(&format!("var/evil/tmp/{n}"), b"escaped"),
            ],
            want: format!(
                "refusing member \"var/evil/tmp/{n}\": it goes through \"var/evil\", a symbolic link"
            ),
            outside: vec![Path::new("/tmp").join(&n)],
        },
        Hostile {
            what: "a hard link outside (absolute), then a write through it",
            members: vec![
                RawMember::hard_link("var/lib/victim", &victim_s),
                RawMember::file("var/lib/victim", b"pwned"),
            ],
            want: format!("refusing member \"var/lib/victim\": it is a hard link to \"{victim_s}\", which has an absolute name"),
            outside: vec![],
        },
        Hostile {
            what: "a hard link outside (relative), then a write through it",
            members: vec![
                RawMember::hard_link("var/lib/victim", "../victim"),
                RawMember::file("var/lib/victim", b"pwned"),
            ],
            want: "refusing member \"var/lib/victim\": it is a hard link to \"../victim\", which has a name with '..'".into(),
            outside: vec![],
        },
        Hostile {
            what: "a device node",
            members: vec![RawMember::char_device("var/lib/null", 1, 3)],
            want: "refusing member \"var/lib/null\": it is a device node".into(),
            outside: vec![],
        },
    ]
}

#[test]
fn hostile_tarballs_are_refused_and_nothing_escapes() {
    let test = "hostile_tarballs_are_refused_and_nothing_escapes";
    if !have_tools(test, &["ostree"]) {
        return;
    }
    let sandbox = tempfile::tempdir().unwrap();
    for case in hostile_cases(sandbox.path()) {
        let (_work, seed) = build(&SeedSpec {
            var_extra: case.members.clone(),
            ..spec()
        });
        // inspect reads every member without extracting and refuses.
        let out = inspect_refuses(&seed.oci_ref());
        assert_names(&out, &format!("var.tgz: {}", case.want));

        // The metadata is fine, so the seed opens; extraction refuses.
        let opened = Seed::open(
            &SeedRef::parse(&seed.archive_ref()).unwrap(),
            &PullOptions::default(),
            &Expectations::default(),
        )
        .unwrap();
        let err = opened.verify().unwrap_err();
        assert_names(&format!("{err:#}"), &case.want);
        let dest = sandbox.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let err = opened
            .extract(Tarball::Var, &dest, &ExtractOptions::default())
            .unwrap_err();
        assert_names(&format!("{err:#}"), &case.want);

        for p in &case.outside {
            assert!(!p.exists(), "{}: {} was written", case.what, p.display());
        }
        assert_eq!(
            std::fs::read_to_string(sandbox.path().join("victim")).unwrap(),
            "untouched",
            "{}",
            case.what
        );
        let names: Vec<String> = std::fs::read_dir(sandbox.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{}: sandbox holds {names:?}", case.what);
        std::fs::remove_dir_all(&dest).unwrap();
        eprintln!("refused as expected: {}", case.what);
    }
}

/// A symbolic link already in the destination (not made by the archive)
/// is never written through: a directory member replaces it, and a member
/// below it with no directory member of its own is refused.
#[test]
fn extraction_never_writes_through_an_existing_symlink() {
    let test = "extraction_never_writes_through_an_existing_symlink";
    if !have_tools(test, &["ostree"]) {
        return;
    }
    let (work, seed) = build(&SeedSpec {
        var_extra: vec![RawMember::file("var/cache/x", b"data")],
        ..spec()
    });
    let opened = Seed::open(
        &SeedRef::parse(seed.root.to_str().unwrap()).unwrap(),
        &PullOptions::default(),
        &Expectations::default(),
    )
    .unwrap();
    let dest = work.path().join("dest");
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir_all(dest.join("var")).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dest.join("var/lib")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dest.join("var/cache")).unwrap();
    let err = opened
        .extract(Tarball::Var, &dest, &ExtractOptions::default())
        .unwrap_err();
    assert_names(
        &format!("{err:#}"),
        "var/cache is a symbolic link in the destination; sprout never writes through one",
    );
    assert!(dest.join("var/lib").symlink_metadata().unwrap().is_dir());
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

/// A truncated tarball is reported as damaged, not as a crash.
#[test]
fn corrupt_tarball_is_reported() {
    let test = "corrupt_tarball_is_reported";
    if !have_tools(test, &["ostree"]) {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.write_images = false;
    let seed = s.build(work.path()).unwrap();
    let var = seed.root.join("var.tgz");
    let bytes = std::fs::read(&var).unwrap();
    std::fs::write(&var, &bytes[..bytes.len() / 2]).unwrap();
    let out = inspect_refuses(seed.root.to_str().unwrap());
    assert_names(&out, "var.tgz is corrupt or truncated after");
}
