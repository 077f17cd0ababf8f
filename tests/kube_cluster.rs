//! The cluster operations of post-pivot (`KubeCluster`: API wait, seed
//! mirror cleanup, CVO registry, cluster ID, node labels) through kube-rs
//! against the local Kubernetes API test server — the one documented fake
//! on the cluster side (no kube-apiserver can run here). It serves real
//! discovery documents, so the REST mapping of the OpenShift kinds is
//! exercised, and records every PATCH and DELETE with its body.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;
use sprout::api::seed_cluster_info::SeedClusterInfo;
use sprout::api::seed_reconfig::SeedReconfiguration;
use sprout::postpivot::apply::ApplyOptions;
use sprout::postpivot::cluster::{Cluster, KubeCluster};
use sprout::testing::kube_api::KubeApiServer;

/// Short bounds so failing tests end quickly.
fn quick() -> ApplyOptions {
    ApplyOptions {
        deadline: Duration::from_secs(20),
        crd_established_timeout: Duration::from_secs(5),
        unknown_kind_grace: Duration::from_millis(300),
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
        announce_every: Duration::from_secs(1),
    }
}

struct Setup {
    server: KubeApiServer,
    cluster: KubeCluster,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let server = KubeApiServer::start().unwrap();
    server.serve_openshift();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("lb-ext.kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let cluster = KubeCluster::new(kubeconfig, quick()).unwrap();
    Setup {
        server,
        cluster,
        _dir: dir,
    }
}

fn node(name: &str, labels: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}})
}

#[test]
fn the_api_answers_when_the_nodes_can_be_listed() {
    let s = setup();
    assert!(s.cluster.api_answers().unwrap());
    assert!(
        s.server.requests().iter().any(|r| r == "GET /api/v1/nodes"),
        "{:?}",
        s.server.requests()
    );
    // Not ready yet: an answer of "no", not an error (the wait goes on).
    s.server.fail_always(503);
    assert!(!s.cluster.api_answers().unwrap());
}

#[test]
fn an_api_server_that_is_not_there_is_not_answering_yet() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: \
             http://127.0.0.1:{port}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    \
             user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let cluster = KubeCluster::new(kubeconfig, quick()).unwrap();
    assert!(!cluster.api_answers().unwrap());
    // A kubeconfig that is not there is an error naming it, not a wait.
    let missing = KubeCluster::new(dir.path().join("nope"), quick()).unwrap();
    let e = missing.api_answers().unwrap_err();
    assert!(format!("{e:#}").contains("nope"), "{e:#}");
}

#[test]
fn the_seeds_mirrors_and_catalog_sources_are_deleted() {
    let s = setup();
    s.server.insert(
        "operator.openshift.io",
        "imagecontentsourcepolicies",
        json!({"apiVersion": "operator.openshift.io/v1alpha1", "kind": "ImageContentSourcePolicy",
               "metadata": {"name": "seed-icsp"}}),
    );
    s.server.insert(
        "config.openshift.io",
        "imagedigestmirrorsets",
        json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSet",
               "metadata": {"name": "seed-idms"}}),
    );
    s.server.insert(
        "",
        "namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openshift-marketplace"}}),
    );
    s.server.insert(
        "operators.coreos.com",
        "catalogsources",
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "CatalogSource",
               "metadata": {"name": "redhat-operators", "namespace": "openshift-marketplace"}}),
    );
    s.cluster.remove_seed_mirrors_and_catalogs().unwrap();
    let deleted: Vec<String> = s
        .server
        .changes()
        .iter()
        .map(|c| format!("{} {}", c.method, c.path))
        .collect();
    assert_eq!(
        deleted,
        [
            "DELETE /apis/operator.openshift.io/v1alpha1/imagecontentsourcepolicies/seed-icsp",
            "DELETE /apis/config.openshift.io/v1/imagedigestmirrorsets/seed-idms",
            "DELETE /apis/operators.coreos.com/v1alpha1/namespaces/openshift-marketplace/catalogsources/redhat-operators",
        ]
    );
    assert!(
        s.server
            .object("", "namespaces", None, "openshift-marketplace")
            .is_some()
    );
    // Nothing left: a second run has nothing to do.
    s.cluster.remove_seed_mirrors_and_catalogs().unwrap();
    assert_eq!(s.server.changes().len(), 3);
}

const SEED_RELEASE: &str = "quay.io/openshift-release-dev/ocp-release@sha256:0123abcd";

fn cvo(s: &Setup) {
    s.server.insert(
        "",
        "namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openshift-cluster-version"}}),
    );
    s.server.insert(
        "apps",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "cluster-version-operator", "namespace": "openshift-cluster-version"},
        "spec": {"template": {"spec": {"containers": [{
            "name": "cluster-version-operator",
            "image": SEED_RELEASE,
            "args": ["start", format!("--release-image={SEED_RELEASE}"), "--listen=0.0.0.0:9099"],
            "env": [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"}]
        }]}}}}),
    );
}

fn idms(s: &Setup, name: &str, source: &str) {
    s.server.insert(
        "config.openshift.io",
        "imagedigestmirrorsets",
        json!({"apiVersion": "config.openshift.io/v1", "kind": "ImageDigestMirrorSet",
            "metadata": {"name": name},
            "spec": {"imageDigestMirrors": [{"source": source, "mirrors": ["mirror.site:5000/ocp"]}]}}),
    );
}

fn registries(
    seed_registry: &str,
    mirrored: bool,
    site_registry: &str,
) -> (SeedClusterInfo, SeedReconfiguration) {
    let seed = SeedClusterInfo {
        release_registry: seed_registry.into(),
        mirror_registry_configured: mirrored,
        ..Default::default()
    };
    let reconfig = SeedReconfiguration {
        release_registry: site_registry.into(),
        ..Default::default()
    };
    (seed, reconfig)
}

fn cvo_container(s: &Setup) -> serde_json::Value {
    s.server
        .object(
            "apps",
            "deployments",
            Some("openshift-cluster-version"),
            "cluster-version-operator",
        )
        .unwrap()["spec"]["template"]["spec"]["containers"][0]
        .clone()
}

#[test]
fn the_cvo_is_pointed_at_the_sites_registry_when_no_mirror_covers_the_seeds() {
    let s = setup();
    cvo(&s);
    // The site mirrors another registry: the seed's release registry is
    // not among the mirror sources, so the CVO must pull from the site's.
    idms(&s, "site", "registry.redhat.io/ubi9");
    let (seed, reconfig) = registries("quay.io", false, "mirror.site:5000");
    s.cluster.rewrite_cvo_registry(&seed, &reconfig).unwrap();
    let new = "mirror.site:5000/openshift-release-dev/ocp-release@sha256:0123abcd";
    let c = cvo_container(&s);
    assert_eq!(c["image"], new);
    assert_eq!(
        c["args"],
        json!([
            "start",
            format!("--release-image={new}"),
            "--listen=0.0.0.0:9099"
        ])
    );
    // A strategic merge on the container's name: its other fields stay.
    assert_eq!(c["env"][0]["name"], "KUBERNETES_SERVICE_HOST");
    let patches = s.server.changes();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(
        patches[0].path,
        "/apis/apps/v1/namespaces/openshift-cluster-version/deployments/cluster-version-operator"
    );
    assert!(
        patches[0]
            .content_type
            .starts_with("application/strategic-merge-patch+json"),
        "{}",
        patches[0].content_type
    );
    assert_eq!(
        patches[0].body,
        json!({"spec": {"template": {"spec": {"containers": [{
            "name": "cluster-version-operator", "image": new,
            "args": ["start", format!("--release-image={new}"), "--listen=0.0.0.0:9099"]}]}}}})
    );
}

#[test]
fn the_cvo_is_left_alone_when_a_mirror_covers_the_seeds_registry() {
    let s = setup();
    cvo(&s);
    idms(&s, "release", "quay.io/openshift-release-dev/ocp-release");
    let (seed, reconfig) = registries("quay.io", true, "mirror.site:5000");
    s.cluster.rewrite_cvo_registry(&seed, &reconfig).unwrap();
    assert_eq!(cvo_container(&s)["image"], SEED_RELEASE);
    assert!(s.server.changes().is_empty());
    assert!(
        !s.server
            .requests()
            .iter()
            .any(|r| r.contains("cluster-version-operator")),
        "the Deployment is not even read"
    );
}

#[test]
fn the_cvo_is_left_alone_without_mirrors_anywhere_or_with_the_same_registry() {
    // Neither the seed nor the site has mirrors: nothing to override.
    let s = setup();
    cvo(&s);
    let (seed, reconfig) = registries("quay.io", false, "mirror.site:5000");
    s.cluster.rewrite_cvo_registry(&seed, &reconfig).unwrap();
    assert!(s.server.changes().is_empty());
    // The seed had mirrors, the site has none: override, but the site
    // keeps the seed's registry, so there is nothing to change.
    let (seed, reconfig) = registries("quay.io", true, "quay.io");
    s.cluster.rewrite_cvo_registry(&seed, &reconfig).unwrap();
    assert!(s.server.changes().is_empty());
    assert_eq!(cvo_container(&s)["image"], SEED_RELEASE);
}

#[test]
fn a_missing_cvo_deployment_is_named() {
    let s = setup();
    let (seed, reconfig) = registries("quay.io", true, "mirror.site:5000");
    let e = s
        .cluster
        .rewrite_cvo_registry(&seed, &reconfig)
        .unwrap_err();
    let text = format!("{e:#}");
    assert!(
        text.contains("Deployment openshift-cluster-version/cluster-version-operator"),
        "{text}"
    );
}

#[test]
fn the_cluster_id_is_merged_into_the_cluster_version() {
    let s = setup();
    s.server.insert(
        "config.openshift.io",
        "clusterversions",
        json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
            "metadata": {"name": "version"},
            "spec": {"channel": "stable-4.18", "clusterID": "seed-id"}}),
    );
    // The API server is still settling: retried.
    s.server.fail_next(2, 503);
    s.cluster
        .set_cluster_id("7e4c5e2a-3b1f-4d2e-9f0a-1c2b3d4e5f60")
        .unwrap();
    let cv = s
        .server
        .object("config.openshift.io", "clusterversions", None, "version")
        .unwrap();
    assert_eq!(
        cv["spec"]["clusterID"],
        "7e4c5e2a-3b1f-4d2e-9f0a-1c2b3d4e5f60"
    );
    assert_eq!(cv["spec"]["channel"], "stable-4.18");
    let patches = s.server.changes();
    assert_eq!(patches.len(), 1);
    assert!(
        patches[0]
            .content_type
            .starts_with("application/merge-patch+json")
    );
    assert_eq!(
        patches[0].body,
        json!({"spec": {"clusterID": "7e4c5e2a-3b1f-4d2e-9f0a-1c2b3d4e5f60"}})
    );
}

#[test]
fn a_missing_cluster_version_is_named_and_not_created() {
    let s = setup();
    let e = s.cluster.set_cluster_id("id").unwrap_err();
    let text = format!("{e:#}");
    assert!(text.contains("ClusterVersion version"), "{text}");
    assert!(s.server.changes().is_empty());
}

fn site_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("site".to_string(), "lab-1".to_string()),
        (
            "topology.kubernetes.io/zone".to_string(),
            "rack-4".to_string(),
        ),
    ])
}

#[test]
fn the_labels_are_merged_into_the_master_node_only() {
    let s = setup();
    s.server.insert(
        "",
        "nodes",
        node(
            "sno-1",
            json!({"node-role.kubernetes.io/master": "", "kubernetes.io/hostname": "sno-1"}),
        ),
    );
    s.server.insert(
        "",
        "nodes",
        node("worker-1", json!({"node-role.kubernetes.io/worker": ""})),
    );
    s.cluster
        .set_node_labels(&site_labels(), Duration::from_secs(10))
        .unwrap();
    let labels = s.server.object("", "nodes", None, "sno-1").unwrap()["metadata"]["labels"].clone();
    assert_eq!(
        labels,
        json!({"node-role.kubernetes.io/master": "", "kubernetes.io/hostname": "sno-1",
               "site": "lab-1", "topology.kubernetes.io/zone": "rack-4"})
    );
    let worker = s.server.object("", "nodes", None, "worker-1").unwrap();
    assert!(worker["metadata"]["labels"].get("site").is_none());
    let patches = s.server.changes();
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].path, "/api/v1/nodes/sno-1");
    assert_eq!(
        patches[0].body,
        json!({"metadata": {"labels": {"site": "lab-1", "topology.kubernetes.io/zone": "rack-4"}}})
    );
}

#[test]
fn the_labels_wait_for_the_master_node_to_register() {
    let s = setup();
    let server = &s.server;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            server.insert(
                "",
                "nodes",
                node("sno-1", json!({"node-role.kubernetes.io/master": ""})),
            );
        });
        s.cluster
            .set_node_labels(&site_labels(), Duration::from_secs(20))
            .unwrap();
    });
    let node = s.server.object("", "nodes", None, "sno-1").unwrap();
    assert_eq!(node["metadata"]["labels"]["site"], "lab-1");
}

#[test]
fn the_labels_give_up_after_the_timeout_saying_why() {
    let s = setup();
    let started = Instant::now();
    let e = s
        .cluster
        .set_node_labels(&site_labels(), Duration::from_secs(2))
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(15));
    let text = format!("{e:#}");
    assert!(
        text.contains("0 nodes are labelled node-role.kubernetes.io/master="),
        "{text}"
    );
    assert!(text.contains("node_labels"), "{text}");
}
