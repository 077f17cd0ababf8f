//! `sprout create image` end to end, against the real RHCOS live-ISO layouts
//! in ../shared/fixtures/coreos-live-iso and the peer tools: coreos-installer
//! reads the embed area back, ignition-validate checks the config.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde_json::Value;
use sprout::iso::embed::{KargsAreas, ignition_area};
use sprout::iso::iso9660::Iso9660;
use support::*;

const CONFIG: &str = "image-based-installation-config.yaml";

/// The fixture ISOs, decompressed into a temporary directory.
fn fixtures() -> Option<(tempfile::TempDir, Vec<PathBuf>)> {
    let dir = repo().join("../shared/fixtures/coreos-live-iso");
    if !dir.is_dir() {
        skip_or_fail(
            "create_image fixtures",
            &format!("{} is missing (../shared beside the clone)", dir.display()),
        );
        return None;
    }
    let out = tempfile::tempdir().unwrap();
    let mut isos = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".iso.xz") else {
            continue;
        };
        let mut dec = liblzma::read::XzDecoder::new(std::fs::File::open(&p).unwrap());
        let dest = out.path().join(format!("{stem}.iso"));
        std::io::copy(&mut dec, &mut std::fs::File::create(&dest).unwrap()).unwrap();
        isos.push(dest);
    }
    isos.sort();
    Some((out, isos))
}

/// Fixtures that have an Ignition area (all but the synthetic one).
fn live_isos() -> Option<(tempfile::TempDir, Vec<PathBuf>)> {
    let (d, isos) = fixtures()?;
    let live = isos
        .into_iter()
        .filter(|p| !p.ends_with("synthetic.iso"))
        .collect();
    Some((d, live))
}

fn minimal_config(dir: &Path) {
    std::fs::write(
        dir.join(CONFIG),
        "seedImage: quay.io/openshift-kni/seed-image:4.16.0\nseedVersion: 4.16.0\ninstallationDisk: /dev/vda\n\
         pullSecret: '{\"auths\":{\"q.io\":{\"auth\":\"eDp5\"}}}'\n",
    )
    .unwrap();
}

fn create_image(dir: &Path, base: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "create",
        "image",
        "--dir",
        dir.to_str().unwrap(),
        "--base-iso",
        base.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    sprout(&args)
}

/// The config sprout generates for `dir`, through the library.
fn generated_config(dir: &Path) -> String {
    let c: sprout::api::installation_config::InstallationConfig =
        sprout::api::yaml::read_strict(dir, CONFIG).unwrap();
    let post = std::fs::read(dir.join("post.sh")).ok();
    let g = sprout::create::image::ignition_config::generate(
        &sprout::create::image::ignition_config::IgnitionInputs {
            config: &c,
            post_sh: post.as_deref(),
            install_config: None,
        },
    )
    .unwrap();
    serde_json::to_string(&g.ignition).unwrap()
}

/// Acceptance 1: coreos-installer shows exactly our config; ignition-validate accepts it.
#[test]
fn coreos_installer_reads_our_config_from_every_layout() {
    if !have(
        "coreos-installer",
        "coreos_installer_reads_our_config_from_every_layout",
    ) || !have(
        "ignition-validate",
        "coreos_installer_reads_our_config_from_every_layout",
    ) {
        return;
    }
    let Some((_t, isos)) = live_isos() else {
        return;
    };
    assert!(
        isos.len() >= 10,
        "expected the x86_64 and s390x layouts, got {isos:?}"
    );
    let d = copy_example("image");
    let want = generated_config(d.path());
    for iso in &isos {
        let _ = std::fs::remove_file(d.path().join("rhcos-ibi.iso"));
        let o = create_image(d.path(), iso, &[]);
        assert!(o.status.success(), "{}: {}", iso.display(), stderr(&o));
        let out = d.path().join("rhcos-ibi.iso");
        let shown = Command::new("coreos-installer")
            .args(["iso", "ignition", "show"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            shown.status.success(),
            "{}: {}",
            iso.display(),
            String::from_utf8_lossy(&shown.stderr)
        );
        assert_eq!(
            String::from_utf8(shown.stdout.clone()).unwrap(),
            want,
            "{}",
            iso.display()
        );
        let cfg = d.path().join("shown.ign");
        std::fs::write(&cfg, &shown.stdout).unwrap();
        let v = Command::new("ignition-validate")
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(
            v.status.success(),
            "ignition-validate: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        // Our own reader agrees.
        let ours = sprout(&["iso", "show-ignition", out.to_str().unwrap()]);
        assert_eq!(String::from_utf8_lossy(&ours.stdout).trim_end(), want);
    }
}

/// Acceptance 2: nothing outside the embed areas changes.
#[test]
fn bytes_outside_the_embed_areas_are_unchanged() {
    let Some((_t, isos)) = live_isos() else {
        return;
    };
    for iso in &isos {
        let d = tempfile::tempdir().unwrap();
        minimal_config(d.path());
        // A dual-stack install-config makes sprout write the kargs areas too.
        std::fs::copy(
            repo().join("examples/config-image-dualstack/install-config.yaml"),
            d.path().join("install-config.yaml"),
        )
        .unwrap();
        let o = create_image(d.path(), iso, &[]);
        assert!(o.status.success(), "{}: {}", iso.display(), stderr(&o));
        let before = std::fs::read(iso).unwrap();
        let after = std::fs::read(d.path().join("rhcos-ibi.iso")).unwrap();
        assert_eq!(before.len(), after.len());
        let mut f = std::fs::File::open(iso).unwrap();
        let image = Iso9660::open(&mut f).unwrap();
        let mut allowed = vec![ignition_area(&mut f, &image).unwrap()];
        if let Some(k) = KargsAreas::for_iso(&mut f, &image).unwrap() {
            allowed.extend(k.regions());
        }
        let changed: Vec<usize> = (0..before.len())
            .filter(|&i| before[i] != after[i])
            .collect();
        assert!(!changed.is_empty());
        for i in changed {
            let i = i as u64;
            assert!(
                allowed
                    .iter()
                    .any(|a| i >= a.offset && i < a.offset + a.length),
                "{}: byte {i} changed outside the embed areas",
                iso.display()
            );
        }
    }
}

/// The live kernel arguments get DHCP for both families of a dual-stack cluster.
#[test]
fn dual_stack_adds_dhcp_kernel_arguments() {
    if !have("coreos-installer", "dual_stack_adds_dhcp_kernel_arguments") {
        return;
    }
    let Some((_t, isos)) = live_isos() else {
        return;
    };
    let iso = isos
        .iter()
        .find(|p| p.ends_with("embed-areas-2023-07.x86_64.iso"))
        .unwrap();
    let d = tempfile::tempdir().unwrap();
    minimal_config(d.path());
    std::fs::copy(
        repo().join("examples/config-image-dualstack/install-config.yaml"),
        d.path().join("install-config.yaml"),
    )
    .unwrap();
    let o = create_image(d.path(), iso, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = d.path().join("rhcos-ibi.iso");
    let k = Command::new("coreos-installer")
        .args(["iso", "kargs", "show"])
        .arg(&out)
        .output()
        .unwrap();
    let kargs = String::from_utf8_lossy(&k.stdout);
    assert!(kargs.trim_end().ends_with(" ip=dhcp,dhcp6"), "{kargs}");
    let base = Command::new("coreos-installer")
        .args(["iso", "kargs", "show"])
        .arg(iso)
        .output()
        .unwrap();
    assert_eq!(
        kargs.trim_end(),
        format!(
            "{} ip=dhcp,dhcp6",
            String::from_utf8_lossy(&base.stdout).trim_end()
        )
    );
    // The installed system gets it too, as upstream does.
    let shown = sprout(&["iso", "show-ignition", out.to_str().unwrap()]);
    let cfg: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let ibi = file_text(&cfg, "/var/tmp/ibi-configuration.json");
    assert!(
        ibi.contains(r#""coreosInstallerArgs":["--append-karg","ip=dhcp,dhcp6"]"#),
        "{ibi}"
    );
}

fn file_text(cfg: &Value, path: &str) -> String {
    let f = cfg["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap();
    let src = f["contents"]["source"].as_str().unwrap();
    let b64 = src.split_once(";base64,").unwrap().1;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

/// Replaces base64 data URLs by `text:<content>` for a readable comparison.
fn readable(mut cfg: Value) -> Value {
    for f in cfg["storage"]["files"].as_array_mut().unwrap() {
        let src = f["contents"]["source"].as_str().unwrap().to_string();
        if let Some((_, b64)) = src.split_once(";base64,") {
            let text = String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .unwrap();
            f["contents"]["source"] = Value::String(format!("text:{text}"));
        }
    }
    cfg
}

/// Acceptance 3: the full example matches the hand-written document, and
/// ibi-configuration.json matches §1.3.3 byte for byte.
#[test]
fn full_example_matches_expected_document() {
    let Some((_t, isos)) = live_isos() else {
        return;
    };
    let iso = isos
        .iter()
        .find(|p| p.ends_with("embed-areas-2023-07.x86_64.iso"))
        .unwrap();
    let d = copy_example("image");
    let o = create_image(d.path(), iso, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let shown = sprout(&[
        "iso",
        "show-ignition",
        d.path().join("rhcos-ibi.iso").to_str().unwrap(),
    ]);
    let actual: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        file_text(&actual, "/var/tmp/ibi-configuration.json"),
        "{\"extraPartitionLabel\":\"var-lib-containers\",\"extraPartitionNumber\":5,\"extraPartitionStart\":\"-60G\",\
         \"installationDisk\":\"/dev/disk/by-id/wwn-0x5000c500a0b1c2d3\",\"releaseRegistry\":\"mirror.telco.example.net:8443\",\
         \"seedImage\":\"mirror.telco.example.net:8443/seeds/sno-seed:4.16.3\",\"seedVersion\":\"4.16.3\",\"shutdown\":true,\
         \"coreosInstallerArgs\":[\"--append-karg\",\"console=ttyS0,115200\"]}\n"
    );
    let script = file_text(&actual, "/usr/local/bin/install-rhcos-and-restore-seed.sh");
    assert!(
        script.starts_with("#!/bin/bash\n")
            && script.contains("exec \"$agent_bin\" ibi -f \"$ibi_config\""),
        "{script}"
    );
    let mut actual = readable(actual);
    for f in actual["storage"]["files"].as_array_mut().unwrap() {
        if f["path"] == "/usr/local/bin/install-rhcos-and-restore-seed.sh" {
            f["contents"]["source"] = Value::String("text:<install script>".into());
        }
    }
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/expected/image.ignition.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string_pretty(&actual).unwrap(),
        serde_json::to_string_pretty(&expected).unwrap()
    );
}

#[test]
fn agent_image_runs_sprout() {
    let Some((_t, isos)) = live_isos() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    minimal_config(d.path());
    let mut text = std::fs::read_to_string(d.path().join(CONFIG)).unwrap();
    text.push_str("agentImage: quay.io/example/sprout:0.1\n");
    std::fs::write(d.path().join(CONFIG), text).unwrap();
    assert!(create_image(d.path(), &isos[0], &[]).status.success());
    let shown = sprout(&[
        "iso",
        "show-ignition",
        d.path().join("rhcos-ibi.iso").to_str().unwrap(),
    ]);
    let cfg: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let unit = cfg["systemd"]["units"][0]["contents"].as_str().unwrap();
    assert!(unit.contains("Environment=\"AGENT_IMAGE=quay.io/example/sprout:0.1\"\nEnvironment=\"AGENT_PATH=/sprout\"\n"), "{unit}");
}

#[test]
fn an_iso_with_a_config_is_refused_unless_forced() {
    let Some((_t, isos)) = live_isos() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    minimal_config(d.path());
    assert!(create_image(d.path(), &isos[0], &[]).status.success());
    let first = d.path().join("first.iso");
    std::fs::rename(d.path().join("rhcos-ibi.iso"), &first).unwrap();
    let before = snapshot(d.path());
    let o = create_image(d.path(), &first, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already has an embedded Ignition config; start from a pristine RHCOS live ISO, or use --force"), "{}", stderr(&o));
    assert_eq!(before, snapshot(d.path()));
    assert!(
        create_image(d.path(), &first, &["--force"])
            .status
            .success()
    );
}

#[test]
fn a_payload_larger_than_the_area_is_refused_with_sizes() {
    let Some((_t, isos)) = live_isos() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    minimal_config(d.path());
    // Random bytes do not compress: 300 KiB of them cannot fit 256 KiB.
    let mut noise = vec![0u8; 300 * 1024];
    openssl::rand::rand_bytes(&mut noise).unwrap();
    std::fs::write(
        d.path().join("post.sh"),
        base64::engine::general_purpose::STANDARD.encode(&noise),
    )
    .unwrap();
    let before = snapshot(d.path());
    let o = create_image(d.path(), &isos[0], &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("the Ignition config does not fit the ISO's embed area:")
            && e.contains("262144 bytes available"),
        "{e}"
    );
    assert_eq!(before, snapshot(d.path()));
}

#[test]
fn a_non_coreos_iso_is_refused() {
    let Some((_t, isos)) = fixtures() else { return };
    let synthetic = isos.iter().find(|p| p.ends_with("synthetic.iso")).unwrap();
    let d = tempfile::tempdir().unwrap();
    minimal_config(d.path());
    let o = create_image(d.path(), synthetic, &[]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unrecognized CoreOS live ISO"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn show_ignition_on_a_pristine_iso_says_so() {
    let Some((_t, isos)) = live_isos() else {
        return;
    };
    let o = sprout(&["iso", "show-ignition", isos[0].to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("has no embedded Ignition config"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn image_config_template_is_written() {
    let d = tempfile::tempdir().unwrap();
    let o = sprout(&[
        "create",
        "image-config-template",
        "--dir",
        d.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.path().join(CONFIG)).unwrap();
    assert!(text.contains("kind: ImageBasedInstallationConfig"));
}
