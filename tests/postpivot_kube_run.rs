//! A whole `post-pivot` run on a node tree with the production cluster
//! side: `KubeCluster` and `KubeApplier` (kube-rs) against the local
//! Kubernetes API test server, which ends `succeeded`.
//!
//! Real: the step engine, the files under the root, the markers, the status
//! file and journal, Debian's `etcd` as the temporary etcd, and the
//! Kubernetes client with its discovery and REST mapping.
//! Fakes: the API server is the one documented fake on the cluster side
//! (src/testing/kube_api.rs; no kube-apiserver can run here); the host
//! tools are tests/postpivot/standin.sh (no systemd as PID 1, no
//! NetworkManager, no recert image here), as in tests/postpivot_run.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

#[path = "postpivot/node.rs"]
mod node;
mod support;

use std::time::Duration;

use serde_json::json;
use sprout::host::etcd::{Binary, Ports};
use sprout::postpivot::apply::ApplyOptions;
use sprout::postpivot::cluster::{KubeApplier, KubeCluster};
use sprout::postpivot::flow::{self, Options};
use sprout::postpivot::steps::EtcdChoice;
use sprout::testing::kube_api::KubeApiServer;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const SEED_RELEASE: &str = "quay.io/openshift-release-dev/ocp-release@sha256:0123abcd";

/// The seed cluster as the API serves it once kubelet runs.
fn seed_cluster(server: &KubeApiServer) {
    server.serve_openshift();
    for ns in ["openshift-marketplace", "openshift-cluster-version"] {
        server.insert(
            "",
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        );
    }
    server.insert(
        "",
        "nodes",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "sno-1",
            "labels": {"node-role.kubernetes.io/master": "", "kubernetes.io/hostname": "sno-1"}}}),
    );
    server.insert(
        "config.openshift.io",
        "clusterversions",
        json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
            "metadata": {"name": "version"}, "spec": {"clusterID": "seed-id"}}),
    );
    server.insert(
        "apps",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cluster-version-operator", "namespace": "openshift-cluster-version"},
            "spec": {"template": {"spec": {"containers": [{"name": "cluster-version-operator",
                "image": SEED_RELEASE, "args": [format!("--release-image={SEED_RELEASE}")]}]}}}}),
    );
    server.insert(
        "operator.openshift.io",
        "imagecontentsourcepolicies",
        json!({"apiVersion": "operator.openshift.io/v1alpha1", "kind": "ImageContentSourcePolicy",
            "metadata": {"name": "seed-mirror"},
            "spec": {"repositoryDigestMirrors": [{"source": "quay.io/openshift-release-dev"}]}}),
    );
    server.insert(
        "operators.coreos.com",
        "catalogsources",
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "CatalogSource",
            "metadata": {"name": "seed-catalog", "namespace": "openshift-marketplace"}}),
    );
}

#[test]
fn a_full_run_against_the_api_test_server_succeeds() {
    if !support::have("etcd", "post-pivot run against the API test server")
        || !support::have("etcdctl", "post-pivot run against the API test server")
    {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("node");
    let (mut seed, mut reconfig) = node::full(&root);
    // The seed pulled its release through mirrors; the site mirrors only
    // another registry and serves the release from its own.
    seed.release_registry = "quay.io".into();
    seed.mirror_registry_configured = true;
    reconfig.release_registry = "mirror.site:5000".into();
    std::fs::write(
        root.join("var/seed_data/manifest.json"),
        serde_json::to_vec(&seed).unwrap(),
    )
    .unwrap();
    let wd = root.join("opt/openshift");
    std::fs::write(
        wd.join("cluster-configuration/manifest.json"),
        serde_json::to_vec(&reconfig).unwrap(),
    )
    .unwrap();
    std::fs::write(
        wd.join("cluster-configuration/manifests/image-digest-mirror-set.json"),
        json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSet",
            "metadata": {"name": "site-mirrors"},
            "spec": {"imageDigestMirrors": [{"source": "registry.redhat.io/ubi9",
                "mirrors": ["mirror.site:5000/ubi9"]}]}})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        wd.join("extra-manifests/ns.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: site\n  namespace: site-apps\n\
         data:\n  k: v\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: site-apps\n",
    )
    .unwrap();

    let server = KubeApiServer::start().unwrap();
    seed_cluster(&server);
    let kubeconfig = d.path().join("lb-ext.kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();

    let bin = node::standin_dir(d.path());
    let log = d.path().join("commands.log");
    let ports = Ports {
        client: free_port(),
        peer: free_port(),
    };
    // SAFETY: the only test of this crate; no other thread reads the
    // environment while it is changed.
    unsafe {
        std::env::set_var("PATH", node::path_with(&bin));
        std::env::set_var("STANDIN_LOG", &log);
        std::env::set_var("STANDIN_ROOT", &root);
        std::env::set_var("STANDIN_ETCD", ports.client_url());
    }
    let mut opts = Options::new(root.clone());
    opts.etcd = EtcdChoice::Binary(Binary {
        program: "etcd".into(),
        data_dir: d.path().join("etcd-data"),
        log_file: d.path().join("etcd.log"),
        extra_args: Vec::new(),
    });
    opts.etcd_ports = ports;
    let bounds = ApplyOptions {
        deadline: Duration::from_secs(60),
        unknown_kind_grace: Duration::from_secs(2),
        ..ApplyOptions::default()
    };
    let cluster = KubeCluster::new(kubeconfig.clone(), bounds).unwrap();
    let applier = KubeApplier { kubeconfig };
    let result = flow::run_with(&opts, Box::new(cluster), Box::new(applier));
    let status_text =
        std::fs::read_to_string(root.join("var/lib/sprout/post-pivot-status.json")).unwrap();
    assert!(
        result.is_ok(),
        "{:#}\n{status_text}",
        result.as_ref().unwrap_err()
    );

    // The status file: succeeded, every step of the plan with its timing.
    let status: serde_json::Value = serde_json::from_str(&status_text).unwrap();
    assert_eq!(status["state"], "succeeded", "{status}");
    assert_eq!(status["attempt"], 0);
    let steps: Vec<&str> = status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), sprout::postpivot::steps::plan().steps().len());
    assert_eq!(steps.first(), Some(&"discover"));
    assert_eq!(steps.last(), Some(&"cleanup"));
    // The journal: every step done or found done, for these inputs.
    let journal: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("var/lib/sprout/post-pivot-journal.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(journal["plan"], "post-pivot");
    let config_hash = journal["fingerprint"]["config"].as_str().unwrap();
    assert!(config_hash.starts_with("sha256:"), "{journal}");
    assert!(
        journal["fingerprint"]["seed"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    for step in journal["steps"].as_array().unwrap() {
        assert!(
            matches!(step["state"].as_str(), Some("done" | "skipped")),
            "{step}"
        );
    }

    // The cluster side, in upstream's order: the seed's mirrors and
    // catalogs deleted before the site's manifests, then the CVO, the
    // cluster ID and the labels.
    let requests = server.requests();
    let pos = |needle: &str| {
        requests
            .iter()
            .position(|r| r == needle)
            .unwrap_or_else(|| panic!("no {needle} in {requests:#?}"))
    };
    let deleted_icsp =
        pos("DELETE /apis/operator.openshift.io/v1alpha1/imagecontentsourcepolicies/seed-mirror");
    let deleted_catalog = pos(
        "DELETE /apis/operators.coreos.com/v1alpha1/namespaces/openshift-marketplace/catalogsources/seed-catalog",
    );
    let created_idms = pos("POST /apis/config.openshift.io/v1/imagedigestmirrorsets");
    let created_mc = pos("POST /apis/machineconfiguration.openshift.io/v1/machineconfigs");
    let created_ns = pos("POST /api/v1/namespaces");
    let created_cm = pos("POST /api/v1/namespaces/site-apps/configmaps");
    let patched_cvo = pos(
        "PATCH /apis/apps/v1/namespaces/openshift-cluster-version/deployments/cluster-version-operator",
    );
    let patched_cv = pos("PATCH /apis/config.openshift.io/v1/clusterversions/version");
    let patched_node = pos("PATCH /api/v1/nodes/sno-1");
    assert!(deleted_icsp < created_idms && deleted_catalog < created_idms);
    assert!(created_idms < created_ns && created_mc < created_ns);
    assert!(created_ns < created_cm, "the Namespace goes first (W16)");
    assert!(created_cm < patched_cvo && patched_cvo < patched_cv && patched_cv < patched_node);

    assert!(
        server
            .object(
                "operators.coreos.com",
                "catalogsources",
                Some("openshift-marketplace"),
                "seed-catalog"
            )
            .is_none()
    );
    let mc = server
        .object(
            "machineconfiguration.openshift.io",
            "machineconfigs",
            None,
            "99-master-ssh",
        )
        .unwrap();
    assert_eq!(
        mc["spec"]["config"]["passwd"]["users"][0]["sshAuthorizedKeys"][0],
        node::SSH_PUBLIC
    );
    assert!(
        server
            .object("", "configmaps", Some("site-apps"), "site")
            .is_some()
    );
    let cvo = server
        .object(
            "apps",
            "deployments",
            Some("openshift-cluster-version"),
            "cluster-version-operator",
        )
        .unwrap();
    let container = &cvo["spec"]["template"]["spec"]["containers"][0];
    let new = "mirror.site:5000/openshift-release-dev/ocp-release@sha256:0123abcd";
    assert_eq!(container["image"], new);
    assert_eq!(container["args"], json!([format!("--release-image={new}")]));
    let cv = server
        .object("config.openshift.io", "clusterversions", None, "version")
        .unwrap();
    assert_eq!(cv["spec"]["clusterID"], reconfig.cluster_id.as_str());
    let n = server.object("", "nodes", None, "sno-1").unwrap();
    assert_eq!(n["metadata"]["labels"]["site"], "lab-1");

    // The node side finished too: unit disabled, working dir gone, etcd
    // stopped.
    let got = node::recorded(&log, &root);
    assert!(
        got.iter()
            .any(|l| l == "systemctl disable installation-configuration.service"),
        "{got:#?}"
    );
    assert!(!root.join("opt/openshift").exists());
    assert!(!root.join("var/seed_data").exists());
    assert!(!sprout::host::etcd::listening(ports.client));
}
