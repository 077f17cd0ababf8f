use std::os::unix::fs::MetadataExt;

use super::*;
use crate::seed::{Expectations, PullOptions, SeedRef};
use crate::testing::seed::{DELETED_ETC_FILE, SeedSpec, TAG};
use crate::testing::sysroot::{TestSysroot, tools_or_skip};

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(p, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn seed_restored_end_to_end_and_every_check_then_says_done() {
    if !tools_or_skip("seed_restored_end_to_end", &["ostree"]).unwrap() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let spec = SeedSpec {
        write_images: false,
        var_payload: 256 << 10,
        var_small_files: 8,
        ..SeedSpec::default()
    };
    let built = spec.build(work.path()).unwrap();
    let expect = Expectations {
        seed_version: Some(TAG.into()),
        extra_partition_label: Some("var-lib-containers".into()),
    };
    let seed = Seed::open(
        &SeedRef::Dir(built.root.clone()),
        &PullOptions::default(),
        &expect,
    )
    .unwrap();
    let t = TestSysroot::with_rhcos().unwrap();
    let sysroot = OstreeSysroot::open(t.path()).unwrap();
    let s = Stateroot::for_seed_version(TAG).unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let live = tempfile::tempdir().unwrap();
    let opts = ExtractOptions::default();

    // C.5–C.9
    assert!(!is_imported(&seed, &sysroot).unwrap());
    import_seed(&seed, &sysroot, |_| {}).unwrap();
    assert!(is_imported(&seed, &sysroot).unwrap());
    // The staged way (extract, then pull-local) still works.
    let repo = extract_seed_repo(&seed, workspace.path(), &opts).unwrap();
    assert!(repo.join("config").exists());
    import_seed_repo(&seed, &sysroot, &repo, |_| {}).unwrap();
    // C.10
    assert!(!sysroot.has_stateroot(&s));
    init_stateroot(&sysroot, &s).unwrap();
    assert!(sysroot.has_stateroot(&s));
    // C.11–C.13
    assert!(seed_deployment(&seed, &sysroot, &s).unwrap().is_none());
    let dep = deploy_seed(&seed, &sysroot, &s).unwrap();
    assert_eq!(
        seed_deployment(&seed, &sysroot, &s).unwrap().as_ref(),
        Some(&dep)
    );
    assert_eq!(dep.checksum, built.commit);
    // C.14
    restore_origin(&seed, &dep).unwrap();
    assert!(is_origin_restored(&seed, &dep));
    let seed_origin =
        fs::read(built.root.join(format!("ostree-{}.0.origin", built.commit))).unwrap();
    assert_eq!(fs::read(dep.origin_path()).unwrap(), seed_origin);
    // C.15
    assert!(!is_var_restored(&seed, &sysroot, &s));
    let var = restore_var(&seed, &sysroot, &s, &opts).unwrap();
    assert!(is_var_restored(&seed, &sysroot, &s));
    assert_eq!(var.xattrs_skipped, 0, "{var:?}");
    // The agent: the seed's lca-cli came with var.tgz; sprout replaces it.
    let me = std::env::current_exe().unwrap();
    let agent = crate::ibi::agent::agent_path(&sysroot, &s);
    assert!(
        fs::read_to_string(&agent)
            .unwrap()
            .contains("synthetic lca-cli")
    );
    assert!(!crate::ibi::agent::is_agent_installed(&sysroot, &s, &me).unwrap());
    crate::ibi::agent::install_agent(&sysroot, &s, &me).unwrap();
    assert!(crate::ibi::agent::is_agent_installed(&sysroot, &s, &me).unwrap());
    assert_eq!(fs::read(&agent).unwrap(), fs::read(&me).unwrap());
    assert_eq!(fs::metadata(&agent).unwrap().mode() & 0o7777, 0o755);
    // C.16
    assert!(
        dep.dir.join(DELETED_ETC_FILE).exists(),
        "ostree copies usr/etc"
    );
    assert!(!is_etc_restored(&seed, &sysroot, &s, &dep));
    restore_etc(&seed, &sysroot, &s, &dep, &opts).unwrap();
    assert!(is_etc_restored(&seed, &sysroot, &s, &dep));
    // C.17
    assert!(!are_etc_deletions_applied(&seed, &sysroot, &s, &dep));
    assert!(
        apply_etc_deletions(&seed, &sysroot, &s, &dep)
            .unwrap()
            .is_empty()
    );
    assert!(are_etc_deletions_applied(&seed, &sysroot, &s, &dep));
    // C.18
    assert!(!are_seed_lists_copied(&seed, live.path()).unwrap());
    copy_seed_lists(&seed, live.path()).unwrap();
    assert!(are_seed_lists_copied(&seed, live.path()).unwrap());
    // F
    sysroot.remove_stateroot(&Stateroot::original()).unwrap();

    // What the CLI sees: only the seed stateroot, at the seed commit, with
    // the seed's kernel arguments verbatim.
    let status = t.status().unwrap();
    let deployments: Vec<&str> = status
        .lines()
        .filter(|l| !l.starts_with("    "))
        .map(str::trim)
        .collect();
    assert_eq!(
        deployments,
        [format!("rhcos_4.16.0 {}.0", built.commit)],
        "{status}"
    );
    let bls = t.bls_options().unwrap();
    assert_eq!(bls.len(), 1, "{bls:?}");
    assert!(
        bls[0].1.starts_with(
            "systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=\"all\" psi=0 sprout.test=\"$HOME\" ostree="
        ),
        "{bls:?}"
    );
    // /var, with owners, links and extended attributes.
    let v = sysroot.stateroot_dir(&s).join("var");
    assert_eq!(
        fs::read(v.join("seed_data/manifest.json")).unwrap(),
        built.manifest_json
    );
    assert!(v.join("usrlocal/bin/lca-cli").exists());
    assert_eq!(fs::metadata(v.join("home/core")).unwrap().uid(), 1000);
    assert_eq!(
        fs::read_link(v.join("lib/kubelet/pki/kubelet-client-current.pem")).unwrap(),
        Path::new("/var/lib/kubelet/pki/kubelet-client-2024-06-01-00-00-00.pem")
    );
    assert_eq!(
        xattr(&v.join("lib/misc/with-xattr"), "user.sprout.test").as_deref(),
        Some(&b"kept"[..])
    );
    // /etc: the seed's files on top of the commit's, the deletion applied.
    let etc = dep.dir.join("etc");
    assert_eq!(
        fs::read_to_string(etc.join("motd")).unwrap(),
        "seed cluster node\n"
    );
    assert!(
        etc.join("systemd/system/installation-configuration.service")
            .exists()
    );
    assert!(etc.join("os-release").exists());
    assert!(!dep.dir.join(DELETED_ETC_FILE).exists());
    // The lists, for the precache step.
    assert_eq!(
        fs::read(live.path().join(LIVE_CONTAINERS_LIST)).unwrap(),
        fs::read(built.root.join("containers.list")).unwrap()
    );
    assert_eq!(
        fs::read(live.path().join(LIVE_MANIFEST)).unwrap(),
        built.manifest_json
    );

    // A resumed run: every check says done, from a freshly opened sysroot.
    let again = OstreeSysroot::open(t.path()).unwrap();
    let dep2 = seed_deployment(&seed, &again, &s).unwrap().unwrap();
    assert_eq!(dep2.dir, dep.dir);
    assert!(is_imported(&seed, &again).unwrap());
    assert!(is_origin_restored(&seed, &dep2));
    assert!(is_var_restored(&seed, &again, &s));
    assert!(is_etc_restored(&seed, &again, &s, &dep2));
    assert!(are_etc_deletions_applied(&seed, &again, &s, &dep2));
    // Redoing a piece anyway is harmless: the extraction replaces what is
    // there, and a deletion already done is a warning (W13), not an error.
    restore_etc(&seed, &again, &s, &dep2, &opts).unwrap();
    let w = apply_etc_deletions(&seed, &again, &s, &dep2).unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("already absent"), "{w:?}");
}

#[test]
fn a_marker_of_another_seed_does_not_count() {
    if !tools_or_skip("a_marker_of_another_seed_does_not_count", &["ostree"]).unwrap() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let built = SeedSpec {
        write_images: false,
        var_payload: 16 << 10,
        var_small_files: 1,
        ..SeedSpec::default()
    }
    .build(work.path())
    .unwrap();
    let seed = Seed::open(
        &SeedRef::Dir(built.root),
        &PullOptions::default(),
        &Expectations::default(),
    )
    .unwrap();
    let t = TestSysroot::with_rhcos().unwrap();
    let sysroot = OstreeSysroot::open(t.path()).unwrap();
    let s = Stateroot::original();
    let marker = sysroot.stateroot_dir(&s).join(MARKER_DIR).join("var.json");
    fs::create_dir_all(marker.parent().unwrap()).unwrap();
    let other = Marker {
        seed: "other".into(),
        commit: "0".repeat(64),
        members: 1,
        bytes: 1,
    };
    fs::write(&marker, serde_json::to_vec(&other).unwrap()).unwrap();
    assert!(!is_var_restored(&seed, &sysroot, &s));
    fs::write(&marker, b"{torn").unwrap();
    assert!(!is_var_restored(&seed, &sysroot, &s));
    // Deploying before importing names the missing step.
    let e = deploy_seed(&seed, &sysroot, &s).unwrap_err();
    assert!(format!("{e}").contains("import it first"), "{e}");
}
