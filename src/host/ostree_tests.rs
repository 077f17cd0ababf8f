use std::cell::Cell;
use std::rc::Rc;

use super::*;
use crate::testing::seed::SeedSpec;
use crate::testing::sysroot::{METAL_KARGS, TestSysroot, tools_or_skip};

/// A seed's ostree repository (archive mode) and its commit.
fn seed_repo(work: &Path) -> String {
    let spec = SeedSpec {
        write_images: false,
        var_payload: 64 << 10,
        var_small_files: 2,
        ..SeedSpec::default()
    };
    spec.build(work).unwrap().commit
}

#[test]
fn stateroot_names() {
    assert_eq!(
        Stateroot::for_seed_version("4.16.0-rc.1").unwrap().as_str(),
        "rhcos_4.16.0_rc.1"
    );
    assert_eq!(
        Stateroot::for_seed_version("4.16.0").unwrap().to_string(),
        "rhcos_4.16.0"
    );
    for bad in ["", "..", "a/b", "a b", "x\n"] {
        assert!(Stateroot::new(bad).is_err(), "{bad:?}");
    }
    assert!(Stateroot::for_seed_version("4.16/../x").is_err());
}

#[test]
fn kernel_args_stay_one_argument_each() {
    let mc = MachineConfigSummary {
        kernel_arguments: vec!["cgroup_no_v1=\"all\"".into(), "a=$HOME b".into()],
        fips: false,
    };
    assert_eq!(seed_kernel_args(&mc), ["cgroup_no_v1=\"all\"", "a=$HOME b"]);
    let fips = MachineConfigSummary { fips: true, ..mc };
    assert_eq!(
        seed_kernel_args(&fips)[2..],
        ["fips=1".to_string(), "boot=LABEL=boot".to_string()]
    );
}

#[test]
fn import_deploy_and_remove_the_original_stateroot() {
    if !tools_or_skip(
        "import_deploy_and_remove_the_original_stateroot",
        &["ostree"],
    )
    .unwrap()
    {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let commit = seed_repo(work.path());
    let t = TestSysroot::with_rhcos().unwrap();
    let sysroot = OstreeSysroot::open(t.path()).unwrap();
    assert!(!sysroot.has_commit(&commit).unwrap());

    let calls = Rc::new(Cell::new(0u32));
    let seen = calls.clone();
    let report = sysroot
        .import_repo(&work.path().join("repo"), &commit, move |_| {
            seen.set(seen.get() + 1)
        })
        .unwrap();
    assert!(sysroot.has_commit(&commit).unwrap());
    assert!(calls.get() >= 1, "the progress callback was never called");
    assert!(report.metadata_scanned > 0, "{report:?}");
    assert!(
        report
            .status
            .as_deref()
            .unwrap_or("")
            .contains("content objects imported"),
        "{report:?}"
    );
    // The ref came along, as with pull-local.
    let refs = t.ostree(&["refs"], false).unwrap();
    assert!(
        refs.lines().any(|l| l == crate::testing::seed::OSTREE_REF),
        "{refs}"
    );

    let s = Stateroot::for_seed_version("4.16.0").unwrap();
    assert!(!sysroot.has_stateroot(&s));
    sysroot.init_stateroot(&s).unwrap();
    sysroot.init_stateroot(&s).unwrap();
    assert!(sysroot.has_stateroot(&s));
    assert!(sysroot.deployment_of(&s).unwrap().is_none());

    let kargs = vec![
        "systemd.unified_cgroup_hierarchy=1".to_string(),
        "cgroup_no_v1=\"all\"".to_string(),
        "sprout.test=$HOME\\x".to_string(),
    ];
    let origin =
        b"[origin]\ncontainer-image-reference=ostree-unverified-registry:quay.io/x@sha256:00\n";
    let d = sysroot.deploy(&s, &commit, &kargs, origin).unwrap();
    assert_eq!(d.index, 0);
    assert_eq!(d.checksum, commit);
    assert_eq!(
        d.dir,
        t.path()
            .join(format!("ostree/deploy/rhcos_4.16.0/deploy/{commit}.0"))
    );
    assert!(d.dir.join("usr/etc/os-release").exists());
    assert!(d.dir.join("etc/os-release").exists());
    assert!(
        std::fs::read_to_string(d.origin_path())
            .unwrap()
            .contains("quay.io/x@sha256:00")
    );

    // The CLI sees the same: the seed deployment first (the default).
    let status = t.status().unwrap();
    let lines: Vec<&str> = status.lines().map(str::trim).collect();
    let seed_line = lines
        .iter()
        .position(|l| *l == format!("rhcos_4.16.0 {commit}.0"));
    let metal_line = lines
        .iter()
        .position(|l| l.starts_with("rhcos ") && l.contains(&t.metal_commit));
    assert!(
        matches!((seed_line, metal_line), (Some(a), Some(b)) if a < b),
        "{status}"
    );
    // Each argument reached the BLS entry verbatim, quotes and $ included.
    let options = t.bls_options().unwrap();
    let seed_opts = options
        .iter()
        .find(|(_, o)| o.contains("rhcos_4.16.0"))
        .map(|(_, o)| o.clone())
        .unwrap();
    assert!(
        seed_opts.starts_with("systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=\"all\" sprout.test=$HOME\\x ostree=/ostree/boot."),
        "{seed_opts}"
    );
    assert_eq!(d.kernel_args.as_deref(), Some(seed_opts.as_str()));
    let all = sysroot.deployments().unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].stateroot, "rhcos");
    assert!(
        all[1]
            .kernel_args
            .as_deref()
            .unwrap()
            .starts_with(&METAL_KARGS.join(" "))
    );

    // The original stateroot goes by name; again is nothing to do.
    sysroot.remove_stateroot(&Stateroot::original()).unwrap();
    sysroot.remove_stateroot(&Stateroot::original()).unwrap();
    assert!(!t.path().join("ostree/deploy/rhcos").exists());
    let status = t.status().unwrap();
    assert!(!status.contains(&t.metal_commit), "{status}");
    assert!(
        status.contains(&format!("rhcos_4.16.0 {commit}.0")),
        "{status}"
    );
    assert_eq!(sysroot.deployments().unwrap().len(), 1);
    // The last bootable stateroot is never removed.
    let e = sysroot.remove_stateroot(&s).unwrap_err();
    assert!(format!("{e}").contains("nothing to boot"), "{e}");
}

#[test]
fn a_corrupt_object_fails_the_import() {
    if !tools_or_skip("a_corrupt_object_fails_the_import", &["ostree"]).unwrap() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let commit = seed_repo(work.path());
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
    let t = TestSysroot::with_rhcos().unwrap();
    let sysroot = OstreeSysroot::open(t.path()).unwrap();
    let e = sysroot
        .import_repo(&work.path().join("repo"), &commit, |_| {})
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("importing"), "{msg}");
    assert!(msg.to_lowercase().contains("corrupted"), "{msg}");
}

/// The same import and deploy done by `ostree pull-local` and `ostree
/// admin deploy --karg-append` (upstream's commands, minus the shell)
/// give the same boot entry, deployment list and /etc as the library.
#[test]
fn library_deploy_equals_the_cli_deploy() {
    if !tools_or_skip("library_deploy_equals_the_cli_deploy", &["ostree"]).unwrap() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let commit = seed_repo(work.path());
    let repo = work.path().join("repo");
    let kargs = ["cgroup_no_v1=\"all\"", "sprout.test=\"$HOME\"", "psi=0"];
    let origin = b"[origin]\nrefspec=seed:rhcos/4.16/x86_64\n";

    let lib = TestSysroot::with_rhcos().unwrap();
    let sysroot = OstreeSysroot::open(lib.path()).unwrap();
    let s = Stateroot::for_seed_version("4.16.0").unwrap();
    sysroot.import_repo(&repo, &commit, |_| {}).unwrap();
    sysroot.init_stateroot(&s).unwrap();
    let owned: Vec<String> = kargs.iter().map(|k| k.to_string()).collect();
    let d = sysroot.deploy(&s, &commit, &owned, origin).unwrap();

    let cli = TestSysroot::with_rhcos().unwrap();
    cli.ostree(&["pull-local", &repo.display().to_string()], false)
        .unwrap();
    cli.ostree(&["admin", "os-init", "rhcos_4.16.0"], true)
        .unwrap();
    let origin_file = work.path().join("seed.origin");
    std::fs::write(&origin_file, origin).unwrap();
    let origin_arg = format!("--origin-file={}", origin_file.display());
    let mut args = vec![
        "admin",
        "deploy",
        "--os=rhcos_4.16.0",
        "--no-prune",
        &origin_arg,
    ];
    let appends: Vec<String> = kargs.iter().map(|k| format!("--karg-append={k}")).collect();
    args.extend(appends.iter().map(String::as_str));
    args.push(&commit);
    cli.ostree(&args, true).unwrap();

    let strip = |t: &TestSysroot, s: String| s.replace(&t.path().display().to_string(), "SYSROOT");
    assert_eq!(lib.bls_options().unwrap(), cli.bls_options().unwrap());
    let status = |t: &TestSysroot| {
        // The metal commits differ only by their commit timestamps.
        strip(t, t.status().unwrap()).replace(&t.metal_commit, "METAL")
    };
    assert_eq!(status(&lib), status(&cli));
    let cli_dir = cli
        .path()
        .join(format!("ostree/deploy/rhcos_4.16.0/deploy/{commit}.0"));
    assert_eq!(
        std::fs::read(d.origin_path()).unwrap(),
        std::fs::read(format!("{}.origin", cli_dir.display())).unwrap()
    );
    let list = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir.join("etc"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(list(&d.dir), list(&cli_dir));

    // Step F: upstream's `undeploy 1` + `rm -rf`, and removal by name.
    sysroot.remove_stateroot(&Stateroot::original()).unwrap();
    cli.ostree(&["admin", "undeploy", "1"], true).unwrap();
    let rhcos = cli.path().join("ostree/deploy/rhcos");
    clear_immutable_below(&rhcos.join("deploy")).unwrap();
    std::fs::remove_dir_all(&rhcos).unwrap();
    assert_eq!(lib.bls_options().unwrap(), cli.bls_options().unwrap());
    assert_eq!(
        strip(&lib, lib.status().unwrap()),
        strip(&cli, cli.status().unwrap())
    );
    let refs = |t: &TestSysroot| t.ostree(&["refs"], false).unwrap();
    assert_eq!(refs(&lib), refs(&cli));
}
