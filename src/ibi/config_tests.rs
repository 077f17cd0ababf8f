use super::*;

/// The document the OpenShift installer's tests produce (spec §2.3).
const UPSTREAM_EXAMPLE: &str = r#"{"extraPartitionLabel":"var-lib-containers","extraPartitionNumber":5,"extraPartitionStart":"-40G","installationDisk":"/dev/vda","releaseRegistry":"mirror.quay.io","seedImage":"quay.io/openshift-kni/seed-image:4.16.0","seedVersion":"4.16.0"}"#;

fn ok(text: &str) -> LoadedConfig {
    parse("ibi-configuration.json", text.as_bytes()).unwrap()
}

fn problems(text: &str) -> Vec<String> {
    parse("ibi-configuration.json", text.as_bytes())
        .unwrap_err()
        .problems
}

#[test]
fn upstream_example_reads_as_written() {
    let l = ok(UPSTREAM_EXAMPLE);
    let c = &l.config;
    assert_eq!(c.seed_image, "quay.io/openshift-kni/seed-image:4.16.0");
    assert_eq!(c.seed_version, "4.16.0");
    assert_eq!(c.installation_disk, "/dev/vda");
    assert_eq!(c.release_registry, "mirror.quay.io");
    assert_eq!(c.extra_partition_number, 5);
    assert_eq!(
        l.extra_partition_start,
        ExtraPartitionStart::FromEnd { bytes: 40 << 30 }
    );
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    // What the writer side writes, the reader side reads back unchanged.
    assert_eq!(c.to_file_contents().unwrap().trim(), UPSTREAM_EXAMPLE);
}

#[test]
fn defaults_after_validation() {
    let l = ok(r#"{"seedImage":"s","seedVersion":"4.16.0","installationDisk":"/dev/sda"}"#);
    assert_eq!(l.config.extra_partition_start, "-40G");
    assert_eq!(l.config.extra_partition_label, "var-lib-containers");
    assert_eq!(l.config.extra_partition_number, 5);
    assert!(!l.config.shutdown && !l.config.precache_disabled && !l.config.skip_disk_cleanup);
    // null leaves the default, as in Go.
    let l = ok(
        r#"{"seedImage":"s","seedVersion":"v","installationDisk":"d","extraPartitionLabel":null,"coreosInstallerArgs":null}"#,
    );
    assert_eq!(l.config.extra_partition_label, "var-lib-containers");
    assert!(l.config.coreos_installer_args.is_empty());
}

#[test]
fn keys_match_case_insensitively_exact_name_first() {
    let l = ok(
        r#"{"SEEDIMAGE":"a","seedimage":"b","SeedVersion":"4.16.0","INSTALLATIONdisk":"/dev/vda","Shutdown":true,"precachedisabled":true,"ſkipDiskCleanup":true,"extraPartitionStart":"-1G","EXTRAPARTITIONSTART":"-2G"}"#,
    );
    // Keys are applied in document order, the last one wins, as in Go.
    assert_eq!(l.config.seed_image, "b");
    assert_eq!(l.config.seed_version, "4.16.0");
    assert_eq!(l.config.installation_disk, "/dev/vda");
    assert!(l.config.shutdown && l.config.precache_disabled && l.config.skip_disk_cleanup);
    assert_eq!(
        l.extra_partition_start,
        ExtraPartitionStart::FromEnd { bytes: 2 << 30 }
    );
}

#[test]
fn yaml_is_read_too_with_go_yaml_conversions() {
    let l = ok(
        "# a YAML file\nseedImage: quay.io/x/seed:4.16.0\nseedVersion: \"4.16.0\"\n\
                installationDisk: /dev/disk/by-id/wwn-0x5000\nshutdown: yes\nuseContainersFolder: off\n\
                coreosInstallerArgs:\n  - --save-partindex\n  - 6\nextraPartitionNumber: 5\n---\nseedImage: ignored\n",
    );
    assert_eq!(l.config.seed_image, "quay.io/x/seed:4.16.0");
    assert!(l.config.shutdown && !l.config.use_containers_folder);
    assert_eq!(l.config.coreos_installer_args, ["--save-partindex", "6"]);
    // A YAML number into a string field becomes its text.
    let l = ok("seedImage: s\nseedVersion: 4.16\ninstallationDisk: /dev/vda\n");
    assert_eq!(l.config.seed_version, "4.16");
}

#[test]
fn json_types_are_strict_like_go() {
    let p = problems(
        r#"{"seedImage":"s","seedVersion":4.16,"installationDisk":"/dev/vda","shutdown":"yes","extraPartitionNumber":-1,"coreosInstallerArgs":["--save-partindex",6]}"#,
    );
    assert_eq!(p.len(), 4, "{p:?}");
    assert!(p[0].starts_with("seedVersion must be a string"), "{p:?}");
    assert!(p[1].starts_with("shutdown must be true or false"), "{p:?}");
    assert!(
        p[2].starts_with("extraPartitionNumber must be a partition number"),
        "{p:?}"
    );
    assert!(
        p[3].starts_with("coreosInstallerArgs item 1 must be a string"),
        "{p:?}"
    );
}

#[test]
fn unknown_keys_are_warnings_naming_the_key() {
    let l = ok(
        r#"{"seedImage":"s","seedVersion":"v","installationDisk":"d","seedImag":"x","precacheParallel":3}"#,
    );
    assert_eq!(l.warnings.len(), 2, "{:?}", l.warnings);
    assert!(
        l.warnings[0].contains("unknown key \"seedImag\" ignored; did you mean \"seedImage\"?"),
        "{:?}",
        l.warnings
    );
    assert!(
        l.warnings[1].contains("\"precacheParallel\""),
        "{:?}",
        l.warnings
    );
    assert!(
        l.warnings[1].starts_with("ibi-configuration.json: "),
        "{:?}",
        l.warnings
    );
}

#[test]
fn each_required_field_is_named_with_the_fix() {
    let all = r#""seedImage":"s","seedVersion":"v","installationDisk":"d""#;
    for (field, body) in [
        ("seedImage", r#""seedVersion":"v","installationDisk":"d""#),
        ("seedVersion", r#""seedImage":"s","installationDisk":"d""#),
        ("installationDisk", r#""seedImage":"s","seedVersion":"v""#),
    ] {
        let e = parse(
            "/var/tmp/ibi-configuration.json",
            format!("{{{body}}}").as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("/var/tmp/ibi-configuration.json: "),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("{field} is required: set \"{field}\" to ")),
            "{msg}"
        );
        // An empty string counts as missing, as upstream.
        let e = problems(&format!("{{{all},\"{field}\":\"\"}}"));
        assert_eq!(e.len(), 1, "{e:?}");
    }
    // Everything missing: all three at once; an empty file too.
    assert_eq!(problems("{}").len(), 3);
    assert_eq!(problems("").len(), 3);
}

#[test]
fn bad_extra_partition_start_is_refused_before_any_disk_work() {
    let base = r#""seedImage":"s","seedVersion":"v","installationDisk":"d""#;
    for (start, says) in [
        ("-40X", "is not a size"),
        ("-", "is not a size"),
        ("-0", "zero bytes"),
        ("1G,size=1", "sfdisk script line"),
    ] {
        let p = problems(&format!("{{{base},\"extraPartitionStart\":\"{start}\"}}"));
        assert_eq!(p.len(), 1, "{start}: {p:?}");
        assert!(
            p[0].starts_with("extraPartitionStart ") && p[0].contains(says),
            "{start}: {p:?}"
        );
    }
    // Positive values go to sfdisk verbatim, as upstream.
    let l = ok(&format!("{{{base},\"extraPartitionStart\":\"120GiB\"}}"));
    assert_eq!(
        l.extra_partition_start,
        ExtraPartitionStart::Verbatim("120GiB".into())
    );
    // Not used with useContainersFolder: a warning only.
    let l = ok(&format!(
        "{{{base},\"extraPartitionStart\":\"-x\",\"useContainersFolder\":true}}"
    ));
    assert_eq!(l.warnings.len(), 1);
    let p = problems(&format!("{{{base},\"extraPartitionLabel\":\"a,b\"}}"));
    assert!(p[0].contains("extraPartitionLabel"), "{p:?}");
}

#[test]
fn not_a_mapping_or_not_json() {
    assert!(problems("[1,2]")[0].contains("is a list"));
    assert!(problems("{\"seedImage\": ")[0].contains("not valid JSON"));
    assert!(problems(": : :")[0].contains("not valid YAML"));
    let l = ok(
        r#"{"seedImage":"s","seedVersion":"v","installationDisk":"d","extraPartitionNumber":6}"#,
    );
    assert!(
        l.warnings[0].contains("extraPartitionNumber 6 is not used"),
        "{:?}",
        l.warnings
    );
}

#[test]
fn read_names_a_missing_file() {
    let e = read(Path::new("/nonexistent/ibi-configuration.json")).unwrap_err();
    assert!(
        format!("{e:#}").contains("/nonexistent/ibi-configuration.json"),
        "{e:#}"
    );
    assert!(
        format!("{:#}", read(Path::new("")).unwrap_err())
            .contains("configuration file is required")
    );
}

#[test]
fn saving_partitions_needs_skip_disk_cleanup() {
    let base = r#""seedImage":"s","seedVersion":"v","installationDisk":"d""#;
    for args in [
        r#"["--save-partindex","6"]"#,
        r#"["--save-partlabel=data*"]"#,
    ] {
        let l = ok(&format!("{{{base},\"coreosInstallerArgs\":{args}}}"));
        let c = conflicts(&l.config);
        assert_eq!(c.len(), 1, "{args}");
        assert!(c[0].contains("\"skipDiskCleanup\": true"), "{c:?}");
        let l = ok(&format!(
            "{{{base},\"coreosInstallerArgs\":{args},\"skipDiskCleanup\":true}}"
        ));
        assert!(conflicts(&l.config).is_empty());
    }
    let l = ok(&format!(
        "{{{base},\"coreosInstallerArgs\":[\"--append-karg\",\"x\"]}}"
    ));
    assert!(conflicts(&l.config).is_empty());
}
