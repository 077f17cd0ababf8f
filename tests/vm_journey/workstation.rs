//! The journey's first phase, on the host as on an operator's workstation:
//! the images a factory's registry serves (the seed, its precache, the
//! agent), the seed itself made from the CoreOS-like OS's commit, and the
//! two ISOs `sprout create image` and `sprout create config-image` build.
//!
//! The seed is what `lca-cli create` would leave of a seed node of this OS:
//! its etc.tgz carries upstream's installation-configuration.service and
//! the node's stand-ins (kubelet, nodeip-configuration, update-ca-trust,
//! see tests/vm_journey.rs), its containers.list the two images post-pivot
//! runs (etcd, recert), so the factory's precache brings them to the edge.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sprout::api::seed_cluster_info::SeedClusterInfo;
use sprout::testing::oci_writer::{self, ImageConfig, Layer, LayerCompression};
use sprout::testing::registry;
use sprout::testing::seed::{Member, SeedSpec, TAG};

use crate::harness::*;
use crate::site;
use crate::support::*;

/// The factory's registry, in the live system (TLS and htpasswd).
pub const REGISTRY: &str = "127.0.0.1:5000";
pub const SEED_IMAGE: &str = "127.0.0.1:5000/openshift-kni/seed:4.16.0";
pub const AGENT_IMAGE: &str = "127.0.0.1:5000/sprout/agent:latest";
/// The seed's address on the machine network the site shares.
pub const SEED_IP: &str = "192.168.122.20";
/// The target disk: RHCOS's 20 GiB plus the extra partition (sparse).
pub const TARGET_BYTES: u64 = 24 << 30;
pub const HELPER: &str = "/usr/local/libexec/sprout-vm/helper";
const LB_EXT: &str = "etc/kubernetes/static-pod-resources/kube-apiserver-certs/secrets/node-kubeconfigs/lb-ext.kubeconfig";

/// What the workstation phase made.
pub struct Workstation {
    /// The 9p share: sprout, coreos-installer, vm-tests/guest/, journey/.
    pub share: PathBuf,
    /// The factory registry's storage, an ext4 image (attached read-write).
    pub registry_disk: PathBuf,
    pub install_iso: PathBuf,
    pub config_iso: PathBuf,
    /// Valid for `create config-image`, not for this seed (a proxy).
    pub invalid_config_iso: PathBuf,
    pub stateroot: String,
    /// The wall time of `create image` plus `create config-image`.
    pub create_time: Duration,
    /// The wall time of making the seed and the images (test support).
    pub seed_time: Duration,
}

/// An image the registry serves: its OCI layout and tag, its repository.
struct Pushed {
    layout: PathBuf,
    tag: String,
    repo: String,
}

/// `host:port/repo:tag` → `repo`.
fn repo_of(image: &str) -> String {
    let path = image.split_once('/').map_or(image, |(_, p)| p);
    path.rsplit_once(':').map_or(path, |(r, _)| r).to_string()
}

pub fn prepare(os: &Path, share: &Path, work: &Path) -> Workstation {
    let started = Instant::now();
    let dir = share.join("journey");
    fs::create_dir_all(&dir).unwrap();
    let helper = dir.join("helper");
    fs::copy(std::env::current_exe().unwrap(), &helper).unwrap();
    run_ok(Command::new("strip").arg(&helper));

    // The OCI layouts stay on the host: the guest gets them from the
    // registry's disk below.
    let images = work.join("images");
    let etcd = image_of(
        &work.join("etcd-root"),
        &images.join("etcd"),
        Path::new("/usr/bin/etcd"),
        "/usr/bin/etcd",
        ImageConfig {
            env: vec!["SPROUT_VM_IMAGE=etcd".into()],
            entrypoint: vec!["/usr/bin/etcd".into()],
            ..ImageConfig::default()
        },
    );
    let recert = image_of(
        &work.join("recert-root"),
        &images.join("recert"),
        &helper,
        HELPER,
        ImageConfig {
            env: vec!["SPROUT_VM_HELPER=recert".into()],
            entrypoint: helper_argv(),
            ..ImageConfig::default()
        },
    );
    // The agent image of `agentImage`: the install script copies /sprout
    // out of it and runs it on the live system.
    image_of(
        &work.join("agent-root"),
        &images.join("agent"),
        &share.join("sprout"),
        "/sprout",
        ImageConfig {
            entrypoint: vec!["/sprout".into()],
            ..ImageConfig::default()
        },
    );
    let etcd_ref = format!("{REGISTRY}/sprout-vm/etcd@{etcd}");
    let recert_ref = format!("{REGISTRY}/sprout-vm/recert-standin@{recert}");

    let seed_dir = work.join("seed");
    fs::create_dir_all(&seed_dir).unwrap();
    let spec = seed_spec(os, &helper, &etcd_ref, &recert_ref);
    let seed = spec.build(&seed_dir).unwrap();
    fs::rename(&seed.oci_dir, images.join("seed")).unwrap();
    fs::write(dir.join("kargs"), spec.kernel_args.join("\n") + "\n").unwrap();

    // The factory's registry is filled here, on the host, where a push
    // takes seconds (in the TCG guest it took minutes): a registry on a
    // free port takes the images with their digests, and its storage
    // becomes the ext4 disk the guest's registry serves from.
    let pushes = [
        Pushed {
            layout: images.join("seed"),
            tag: TAG.into(),
            repo: repo_of(SEED_IMAGE),
        },
        Pushed {
            layout: images.join("etcd"),
            tag: "latest".into(),
            repo: "sprout-vm/etcd".into(),
        },
        Pushed {
            layout: images.join("recert"),
            tag: "latest".into(),
            repo: "sprout-vm/recert-standin".into(),
        },
        Pushed {
            layout: images.join("agent"),
            tag: "latest".into(),
            repo: repo_of(AGENT_IMAGE),
        },
    ];
    let registry_disk = work.join("registry.raw");
    {
        let host = registry::LocalRegistry::start().unwrap();
        for p in &pushes {
            host.push_preserving_digests(&p.layout, &p.tag, &p.repo)
                .unwrap_or_else(|e| panic!("pushing {}: {e:#}", p.layout.display()));
        }
        let _ = fs::remove_file(&registry_disk);
        // 4 GiB, sparse: several times what the images take.
        run_ok(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", "registry", "-d"])
                .arg(host.storage())
                .arg(&registry_disk)
                .arg("4G"),
        );
    }

    let reg = dir.join("registry");
    fs::create_dir_all(&reg).unwrap();
    registry::write_server_files(&reg).unwrap();
    let secret = work.join("pull-secret.json");
    registry::write_authfile(REGISTRY, &secret).unwrap();
    let stateroot = format!("rhcos_{}", TAG.replace('-', "_"));
    fs::write(
        dir.join("expect.env"),
        format!(
            "REGISTRY={REGISTRY}\nSEED_IMAGE={SEED_IMAGE}\nSEED_COMMIT={}\nSTATEROOT={stateroot}\n\
             IMAGES='{etcd_ref} {recert_ref}'\nNODE_IP={}\nHELPER={HELPER}\n",
            seed.commit,
            site::NODE_IP,
        ),
    )
    .unwrap();
    let seed_time = started.elapsed();

    let created = Instant::now();
    let install_iso = create_image(os, &reg, &secret, work);
    let config_iso = site::site_iso(work);
    let invalid_config_iso = site::invalid_iso(work);
    Workstation {
        share: share.to_path_buf(),
        registry_disk,
        install_iso,
        config_iso,
        invalid_config_iso,
        stateroot,
        create_time: created.elapsed(),
        seed_time,
    }
}

/// How an image runs this test executable as the guest's helper (see
/// `guest_helper` in tests/vm_journey.rs).
fn helper_argv() -> Vec<String> {
    [
        HELPER,
        "--ignored",
        "--exact",
        "guest_helper",
        "--nocapture",
        "--quiet",
    ]
    .map(str::to_string)
    .to_vec()
}

/// An image of the executable `exe` (at `at` in the image), the libraries
/// it loads and nsswitch.conf, written as the OCI layout `layout` (tag
/// `latest`). Returns its manifest digest.
fn image_of(root: &Path, layout: &Path, exe: &Path, at: &str, config: ImageConfig) -> String {
    let _ = fs::remove_dir_all(root);
    let place = |from: &Path, to: &str| {
        let dest = root.join(to.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(from, &dest).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    };
    place(exe, at);
    fs::set_permissions(
        root.join(at.trim_start_matches('/')),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    // A static executable has no libraries: ldd says so and fails.
    let ldd = Command::new("ldd").arg(exe).output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        place(&fs::canonicalize(lib).unwrap(), lib);
    }
    // `localhost` resolves from the hosts file podman writes.
    place(Path::new("/etc/nsswitch.conf"), "/etc/nsswitch.conf");
    fs::create_dir_all(root.join("tmp")).unwrap();
    let config = ImageConfig {
        env: [
            vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_string()],
            config.env,
        ]
        .concat(),
        ..config
    };
    oci_writer::write_image(
        root,
        Layer::Tree,
        layout,
        "latest",
        &config,
        LayerCompression::Gzip,
    )
    .unwrap();
    fs::remove_dir_all(root).unwrap();
    oci_writer::manifest_digest(layout, "latest").unwrap()
}

/// The seed node's facts: the seed cluster used the factory's registry as
/// its release registry, so the precache pulls the images by the names
/// post-pivot runs them by.
fn seed_info(recert: &str) -> SeedClusterInfo {
    SeedClusterInfo {
        seed_cluster_ocp_version: TAG.into(),
        base_domain: "example.com".into(),
        cluster_name: "seed".into(),
        node_ips: vec![SEED_IP.into()],
        release_registry: REGISTRY.into(),
        sno_hostname: "seed-node".into(),
        recert_image_pull_spec: recert.into(),
        service_networks: vec!["172.30.0.0/16".into()],
        cluster_networks: vec!["10.128.0.0/14".into()],
        ingress_certificate_cn: "ingress-operator@1700000000".into(),
        machine_networks: vec!["192.168.122.0/24".into()],
        container_storage_mountpoint_target: "/dev/disk/by-partlabel/var-lib-containers".into(),
        ..Default::default()
    }
}

fn seed_spec(os: &Path, helper: &Path, etcd: &str, recert: &str) -> SeedSpec {
    let mut spec = SeedSpec {
        info: seed_info(recert),
        containers: vec![etcd.to_string(), recert.to_string()],
        ostree_repo: Some(os.join("repo")),
        // No synthetic etcd member: the temporary etcd starts on an empty
        // data directory, as it would not on random bytes.
        var_payload: 0,
        var_small_files: 8,
        // ostree.tgz is compressed already.
        layer: LayerCompression::None,
        // The OS masks dnsmasq (it competes for the CPU); on a seed node
        // it runs, and post-pivot restarts it.
        etc_deletions: vec!["/etc/systemd/system/dnsmasq.service".into()],
        ..SeedSpec::default()
    };
    let etc = &mut spec.etc_members;
    let file = |mode, text: &str| Member::file(mode, text.as_bytes());
    etc.insert(
        "etc/kubernetes/manifests/etcd-pod.yaml".into(),
        file(
            0o644,
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etcd\n  namespace: openshift-etcd\n\
                 spec:\n  containers:\n  - name: etcdctl\n    image: {etcd}\n  - name: etcd\n    \
                 image: {etcd}\n    command: [/bin/sh, -c, etcd]\n"
            ),
        ),
    );
    etc.insert(
        LB_EXT.into(),
        file(
            0o600,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: lb-ext\n  cluster:\n    \
             server: http://127.0.0.1:6443\ncontexts:\n- name: admin\n  context:\n    \
             cluster: lb-ext\n    user: admin\ncurrent-context: admin\nusers:\n- name: admin\n  user: {}\n",
        ),
    );
    etc.insert(
        "etc/mcs-machine-config-content.json".into(),
        file(0o644, "{}\n"),
    );
    // kubelet stand-in, disabled as on a seed: records its start, serves
    // the API where the lb-ext kubeconfig points.
    etc.insert(
        "etc/systemd/system/kubelet.service".into(),
        file(
            0o644,
            &format!(
                "[Unit]\nDescription=kubelet stand-in (vm-tests): serves sprout's Kubernetes API test server\n\
                 [Service]\nType=simple\nEnvironment=SPROUT_VM_HELPER=kube-api\n\
                 ExecStartPre=/usr/bin/mkdir -p /run/sprout-vm\n\
                 ExecStartPre=/usr/bin/touch /run/sprout-vm/kubelet.started\n\
                 ExecStart={}\n[Install]\nWantedBy=multi-user.target\n",
                helper_argv().join(" ")
            ),
        ),
    );
    etc.insert(
        "etc/systemd/system/nodeip-configuration.service".into(),
        file(
            0o644,
            "[Unit]\nDescription=nodeip-configuration stand-in (vm-tests)\n[Service]\nType=oneshot\n\
             RemainAfterExit=yes\nEnvironmentFile=-/etc/default/nodeip-configuration\n\
             ExecStart=/usr/local/libexec/sprout-vm/nodeip-configuration\n",
        ),
    );
    // The seed's settings: bounded waits that fit a TCG guest.
    etc.insert(
        "etc/sprout/post-pivot.json".into(),
        file(
            0o644,
            r#"{"config_medium": 180, "etcd_health": 240, "recert": 400, "api": 240, "primary_ip": 120, "announce_every": 15}"#,
        ),
    );
    // chrony reads /etc/chrony.conf, as on RHCOS (recert rewrites it).
    etc.insert(
        "etc/chrony.conf".into(),
        file(
            0o644,
            "server 203.0.113.1 iburst\ndriftfile /var/lib/chrony/chrony.drift\n",
        ),
    );
    etc.insert(
        "etc/default/chrony".into(),
        file(0o644, "DAEMON_OPTS=\"-F 1 -f /etc/chrony.conf\"\n"),
    );
    // The seed node's admin user (RHCOS has `core`).
    etc.insert(
        "etc/sysusers.d/core.conf".into(),
        file(
            0o644,
            "u core 1000 \"CoreOS admin\" /var/home/core /bin/bash\n",
        ),
    );
    // The node's CA bundle (RHCOS has one; the OS's package list has no
    // ca-certificates): kube-rs loads the system roots for every client,
    // also for the plain-HTTP lb-ext kubeconfig.
    etc.insert(
        "etc/ssl/certs/ca-certificates.crt".into(),
        Member::file(
            0o644,
            fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap(),
        ),
    );
    for d in [
        "etc/ssh",
        "etc/pki/ca-trust/source/anchors",
        "etc/default",
        "etc/ssl",
        "etc/ssl/certs",
    ] {
        etc.insert(
            d.into(),
            Member::Dir {
                mode: 0o755,
                uid: 0,
            },
        );
    }

    let var = &mut spec.var_members;
    var.insert(
        "var/usrlocal/libexec/sprout-vm/helper".into(),
        Member::file(0o755, fs::read(helper).unwrap()),
    );
    var.insert(
        "var/usrlocal/libexec/sprout-vm/nodeip-configuration".into(),
        Member::file(
            0o755,
            fs::read(repo().join("vm-tests/guest/nodeip-configuration")).unwrap(),
        ),
    );
    var.insert(
        "var/usrlocal/sbin/update-ca-trust".into(),
        Member::file(
            0o755,
            "#!/bin/sh\n# update-ca-trust stand-in (vm-tests): RHCOS's tool; records its calls.\n\
             mkdir -p /run/sprout-vm\necho \"update-ca-trust $*\" >>/run/sprout-vm/update-ca-trust.calls\n",
        ),
    );
    for d in [
        "var/usrlocal/libexec",
        "var/usrlocal/libexec/sprout-vm",
        "var/usrlocal/sbin",
    ] {
        var.insert(
            d.into(),
            Member::Dir {
                mode: 0o755,
                uid: 0,
            },
        );
    }
    spec
}

/// `sprout create image` of the CoreOS-like live ISO for the guest's
/// factory: the seed from the registry, the blank virtio disk, the real
/// coreos-installer writing the OS's metal image, a power-off at the end.
fn create_image(os: &Path, reg: &Path, secret: &Path, work: &Path) -> PathBuf {
    let dir = work.join("installation");
    fs::create_dir_all(&dir).unwrap();
    let ca = fs::read(reg.join("certs/ca.crt")).unwrap();
    // The registry's CA where podman and skopeo look for it, written by
    // Ignition from the ISO (the override is the user's own Ignition).
    let over = serde_json::json!({
        "ignition": {"version": "3.2.0"},
        "storage": {"files": [{
            "path": format!("/etc/containers/certs.d/{REGISTRY}/ca.crt"),
            "mode": 420,
            "contents": {"source": format!("data:;base64,{}", b64(&ca))},
        }]},
    });
    let config = serde_json::json!({
        "apiVersion": "v1beta1",
        "kind": "ImageBasedInstallationConfig",
        "metadata": {"name": "vm-journey"},
        "seedImage": SEED_IMAGE,
        "seedVersion": TAG,
        "installationDisk": "/dev/vdb",
        "extraPartitionLabel": "var-lib-containers",
        "extraPartitionStart": "-3G",
        "releaseRegistry": REGISTRY,
        "shutdown": true,
        "agentImage": AGENT_IMAGE,
        "pullSecret": fs::read_to_string(secret).unwrap(),
        "ignitionConfigOverride": over.to_string(),
    });
    fs::write(
        dir.join("image-based-installation-config.yaml"),
        serde_json::to_vec_pretty(&config).unwrap(),
    )
    .unwrap();
    let iso = os.join("live.iso");
    let o = sprout(&[
        "create",
        "image",
        "--dir",
        dir.to_str().unwrap(),
        "--base-iso",
        iso.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "create image failed: {}", stderr(&o));
    dir.join("rhcos-ibi.iso")
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
