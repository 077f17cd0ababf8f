//! `sprout ibi` with a registry seed transfers it once: the preflight reads
//! only its manifest and config (labels, architecture, sizes), and the
//! pull-seed step's `podman pull` is the one download of its layer. The
//! registry is real (docker-registry with TLS and a password,
//! src/testing/registry.rs) and counts downloads in its access log;
//! `podman` is the fixture's stand-in, which downloads the seed for real
//! with skopeo and shows the seed's files as its mount (tests/ibi_fixture).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod ibi_fixture;
mod support;

use ibi_fixture::Machine;
use sprout::testing::registry::LocalRegistry;

/// The seed's layer digests, from its OCI layout.
fn layer_digests(m: &Machine) -> Vec<String> {
    let dir = &m.seed.oci_dir;
    let blob = |d: &str| {
        let hex = d.strip_prefix("sha256:").unwrap();
        serde_json::from_slice::<serde_json::Value>(
            &std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap(),
        )
        .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// A machine whose seed is in `reg`, with credentials and registries.conf
/// (the registry's TLS is trusted through `insecure`, as a mirror's CA
/// would be through /etc/containers/certs.d on a live ISO).
fn machine_with_registry_seed(reg: &LocalRegistry) -> (Machine, String) {
    let m = Machine::new(64 << 10);
    let image = reg
        .push(&m.seed.oci_dir, sprout::testing::seed::TAG, "seed")
        .unwrap();
    let auth = m.dir.path().join("reg-auth.json");
    reg.write_authfile(&auth).unwrap();
    let mut secret: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.root.join("var/tmp/pull-secret.json")).unwrap())
            .unwrap();
    let reg_auth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    secret["auths"][reg.host()] = reg_auth["auths"][reg.host()].clone();
    std::fs::write(
        m.root.join("var/tmp/pull-secret.json"),
        serde_json::to_vec(&secret).unwrap(),
    )
    .unwrap();
    std::fs::write(
        m.root.join("etc/containers/registries.conf"),
        format!(
            "[[registry]]\nlocation = \"quay.io\"\n[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            reg.host()
        ),
    )
    .unwrap();
    let img = image.clone();
    m.write_config(move |v| v["seedImage"] = img.into());
    (m, image)
}

#[test]
fn a_registry_seed_is_downloaded_once_by_the_pull_and_not_by_the_preflight() {
    if !ibi_fixture::have_tools()
        || !support::have("docker-registry", "ibi registry seed")
        || !support::have("skopeo", "ibi registry seed")
    {
        return;
    }
    let reg = LocalRegistry::start().unwrap();
    let (m, image) = machine_with_registry_seed(&reg);
    let layers = layer_digests(&m);
    assert!(!layers.is_empty());
    let downloads = || -> usize { layers.iter().map(|d| reg.blob_downloads(d)).sum() };

    // The preflight (a dry run) reads the manifest and the labels only.
    let out = m.run(&["--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(
        text.contains(&format!("seed: docker://{image} (manifest sha256:")),
        "{text}"
    );
    assert_eq!(downloads(), 0, "the preflight downloaded the seed's layer");
    // Its size came from the manifest all the same.
    assert!(!text.contains("root needs at least 0 B"), "{text}");

    // A refusal on the labels (seedVersion) needs no layer either.
    m.write_config(|v| v["seedVersion"] = "4.15.0".into());
    let out = m.run(&[]);
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains("4.15.0"),
        "{}",
        support::stderr(&out)
    );
    assert_eq!(
        downloads(),
        0,
        "a refused preflight downloaded the seed's layer"
    );
    let img = image.clone();
    m.write_config(move |v| v["seedImage"] = img.into());

    // The install: one download, by the pull, and the seed restored from it.
    let out = m.run(&[]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert_eq!(
        downloads(),
        layers.len(),
        "the seed's layers went more than once"
    );
    let seed_pulls = std::fs::read_to_string(m.state.join("seed-pulls.log")).unwrap();
    assert_eq!(seed_pulls.lines().collect::<Vec<_>>(), [image.as_str()]);
    let status = std::process::Command::new("ostree")
        .args(["admin", "status", "--sysroot"])
        .arg(m.root.join("mnt"))
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains(&m.seed.commit), "{status}");
}
