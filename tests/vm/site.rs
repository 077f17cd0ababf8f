//! The site's configuration ISO for a node in the vm-tests guests: made by
//! `sprout create config-image` from examples/config-image, with the node's
//! NetworkManager keyfile added (Debian 12 has no `nmstatectl` to apply an
//! nmstate `networkConfig`; IBU's configuration carries keyfiles the same
//! way). Shared by tests/vm_postpivot.rs and tests/vm_journey.rs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// The node's address on the site (a dummy interface).
pub const NODE_IP: &str = "192.168.122.10";

/// examples/config-image for this guest: no nmstate (see the crate doc),
/// an NTP server (chrony), a node label and extra manifests.
pub fn site_config() -> tempfile::TempDir {
    let cfg = copy_example("config-image");
    edit_yaml(&cfg.path().join("image-based-config.yaml"), |v| {
        let m = v.as_object_mut().unwrap();
        m.remove("networkConfig");
        m.insert(
            "additionalNTPSources".into(),
            serde_json::json!(["192.168.122.1"]),
        );
        m.insert("nodeLabels".into(), serde_json::json!({"site": "vm-tests"}));
    });
    let extra = cfg.path().join("extra-manifests");
    fs::create_dir_all(&extra).unwrap();
    fs::write(
        extra.join("10-site.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: greeting\n  namespace: sprout-vm\n\
         data:\n  hello: world\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: sprout-vm\n",
    )
    .unwrap();
    cfg
}

pub fn create_config_image(cfg: &Path, to: &Path) {
    let o = sprout(&["create", "config-image", "--dir", cfg.to_str().unwrap()]);
    assert!(o.status.success(), "config-image failed: {}", stderr(&o));
    fs::copy(cfg.join("imagebasedconfig.iso"), to).unwrap();
}

/// The site ISO: `create config-image`, plus the node's keyfile.
pub fn site_iso(work: &Path) -> PathBuf {
    let cfg = site_config();
    let made = work.join("made.iso");
    create_config_image(cfg.path(), &made);
    let tree = extract_iso(&made);
    let root = tree.path().join("root");
    let conns = root.join("network-configuration/system-connections");
    fs::create_dir_all(&conns).unwrap();
    fs::write(
        conns.join("sno-node.nmconnection"),
        format!(
            "[connection]\nid=sno-node\ntype=dummy\ninterface-name=dummy0\n\n\
         [ipv4]\nmethod=manual\naddress1={NODE_IP}/24\n\n[ipv6]\nmethod=disabled\n"
        ),
    )
    .unwrap();
    let iso = work.join("site.iso");
    let o = Command::new("xorriso")
        .args([
            "-as",
            "mkisofs",
            "-quiet",
            "-V",
            "cluster-config",
            "-J",
            "-R",
            "-o",
        ])
        .arg(&iso)
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "xorriso: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    iso
}

/// Valid on its own (`create` accepts it), invalid for a seed without a
/// proxy (both seeds of the VM tests): post-pivot must refuse it before
/// changing anything.
pub fn invalid_iso(work: &Path) -> PathBuf {
    let cfg = site_config();
    edit_yaml(&cfg.path().join("install-config.yaml"), |v| {
        v["proxy"] = serde_json::json!({
            "httpProxy": "http://192.168.122.1:3128",
            "httpsProxy": "http://192.168.122.1:3128",
            "noProxy": ".example.com",
        });
    });
    let iso = work.join("invalid.iso");
    create_config_image(cfg.path(), &iso);
    iso
}
