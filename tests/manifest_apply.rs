//! Manifest application (post-pivot §3.6, W16) through kube-rs against the
//! local Kubernetes API test server, which serves real discovery documents
//! and refuses what a real API server refuses (a namespaced object before
//! its Namespace, a CRD's kind before the CRD is Established).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use sprout::postpivot::apply::{ApplyAction, ApplyOptions, apply_dir, delete_seed_mirrors};
use sprout::testing::kube_api::KubeApiServer;

struct Setup {
    server: KubeApiServer,
    dir: tempfile::TempDir,
    kubeconfig: std::path::PathBuf,
}

fn setup() -> Setup {
    let server = KubeApiServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    std::fs::create_dir(dir.path().join("manifests")).unwrap();
    Setup {
        server,
        dir,
        kubeconfig,
    }
}

impl Setup {
    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.manifests().join(name), text).unwrap();
    }
    fn manifests(&self) -> std::path::PathBuf {
        self.dir.path().join("manifests")
    }
    fn apply(&self, opts: &ApplyOptions) -> anyhow::Result<sprout::postpivot::apply::ApplySummary> {
        apply_dir(&self.kubeconfig, &self.manifests(), opts)
    }
}

/// Short bounds so failing tests end quickly.
fn quick() -> ApplyOptions {
    ApplyOptions {
        deadline: Duration::from_secs(30),
        crd_established_timeout: Duration::from_secs(10),
        unknown_kind_grace: Duration::from_secs(1),
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
        request_timeout: Duration::from_secs(10),
        announce_every: Duration::from_secs(1),
    }
}

const NS_APP: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n";

fn configmap(ns: &str, name: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\ndata:\n{data}"
    )
}

#[test]
fn multi_document_file_is_applied_in_order() {
    let s = setup();
    let text = format!(
        "{NS_APP}---\n{}---\n{}\n---\n",
        configmap("app", "one", "  k: '1'\n"),
        configmap("app", "two", "  k: '2'\n")
    );
    s.write("10-all.yaml", &text);
    let summary = s.apply(&quick()).unwrap();
    assert_eq!(summary.files, 1);
    let names: Vec<&str> = summary.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["app", "one", "two"]);
    assert!(
        summary
            .objects
            .iter()
            .all(|o| o.action == ApplyAction::Created)
    );
    let two = s
        .server
        .object("", "configmaps", Some("app"), "two")
        .unwrap();
    assert_eq!(two["data"]["k"], "2");
    assert_eq!(summary.objects[2].document, 3);
}

#[test]
fn list_items_are_applied_and_a_namespaceless_object_goes_to_default() {
    let s = setup();
    s.server.insert(
        "",
        "namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
    );
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1"}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b"}, "stringData": {"y": "2"}}
    ]});
    s.write("list.json", &list.to_string());
    let summary = s.apply(&quick()).unwrap();
    assert_eq!(summary.objects.len(), 2);
    assert_eq!(summary.objects[1].item, Some(2));
    assert_eq!(summary.objects[0].namespace.as_deref(), Some("default"));
    assert_eq!(
        s.server
            .object("", "configmaps", Some("default"), "a")
            .unwrap()["data"]["x"],
        "1"
    );
    assert!(
        s.server
            .object("", "secrets", Some("default"), "b")
            .is_some()
    );
}

#[test]
fn merge_keeps_live_fields_and_replace_drops_them() {
    let s = setup();
    s.server.insert(
        "",
        "namespaces",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}}),
    );
    for name in ["merged", "replaced"] {
        s.server.insert(
            "",
            "configmaps",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "app", "labels": {"live": "yes"}},
            "data": {"a": "live", "b": "live"}}),
        );
    }
    s.write(
        "20-merged.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: merged\n  namespace: app\n  \
        annotations:\n    lca.openshift.io/apply-type: merge\ndata:\n  b: new\n  c: new\n",
    );
    s.write(
        "30-replaced.yaml",
        &configmap("app", "replaced", "  b: new\n"),
    );
    let summary = s.apply(&quick()).unwrap();
    let actions: Vec<ApplyAction> = summary.objects.iter().map(|o| o.action).collect();
    assert_eq!(actions, [ApplyAction::Merged, ApplyAction::Replaced]);

    let merged = s
        .server
        .object("", "configmaps", Some("app"), "merged")
        .unwrap();
    assert_eq!(merged["data"], json!({"b": "new", "c": "new", "a": "live"}));
    assert_eq!(merged["metadata"]["labels"]["live"], "yes");
    assert_eq!(
        merged["metadata"]["uid"], "uid-merged",
        "the same object, updated"
    );
    assert!(
        merged["metadata"]["annotations"]
            .get("lca.openshift.io/apply-type")
            .is_none()
    );

    let replaced = s
        .server
        .object("", "configmaps", Some("app"), "replaced")
        .unwrap();
    assert_eq!(replaced["data"], json!({"b": "new"}));
    assert!(replaced["metadata"].get("labels").is_none());
}

#[test]
fn a_namespace_in_a_later_file_is_created_first() {
    let s = setup();
    s.write("10-cm.yaml", &configmap("late", "cm", "  k: v\n"));
    s.write(
        "90-ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: late\n",
    );
    let summary = s.apply(&quick()).unwrap();
    assert_eq!(summary.objects[0].kind, "Namespace");
    assert!(
        s.server
            .object("", "configmaps", Some("late"), "cm")
            .is_some()
    );
    // The server really refuses the other order.
    let posts: Vec<String> = s
        .server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("POST"))
        .collect();
    assert_eq!(
        posts,
        [
            "POST /api/v1/namespaces",
            "POST /api/v1/namespaces/late/configmaps"
        ]
    );
}

#[test]
fn a_missing_namespace_is_named() {
    let s = setup();
    s.write("10-cm.yaml", &configmap("nowhere", "cm", "  k: v\n"));
    let err = format!("{:#}", s.apply(&quick()).unwrap_err());
    assert!(
        err.contains("10-cm.yaml") && err.contains("ConfigMap nowhere/cm"),
        "{err}"
    );
    assert!(err.contains("namespace nowhere does not exist"), "{err}");
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
";

#[test]
fn a_crd_and_its_object_in_one_directory() {
    let s = setup();
    s.server.set_crd_delay(Duration::from_millis(700));
    s.write("10-widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: app\nspec:\n  size: 3\n");
    s.write("20-crd.yaml", CRD);
    s.write("30-ns.yaml", NS_APP);
    let summary = s.apply(&quick()).unwrap();
    let kinds: Vec<&str> = summary.objects.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds, ["CustomResourceDefinition", "Namespace", "Widget"]);
    let w = s
        .server
        .object("example.com", "widgets", Some("app"), "w")
        .unwrap();
    assert_eq!(w["spec"]["size"], 3);
}

fn assert_refused(file: &str, text: &str, wanted: &[&str]) {
    refused(file, text, wanted, true)
}

/// `before_sending`: found while reading, so nothing at all was applied.
fn refused(file: &str, text: &str, wanted: &[&str], before_sending: bool) {
    let s = setup();
    s.write("00-ns.yaml", NS_APP);
    s.write(file, text);
    let err = format!("{:#}", s.apply(&quick()).unwrap_err());
    assert!(err.contains(file), "{err}");
    for w in wanted {
        assert!(err.contains(w), "wanted `{w}` in: {err}");
    }
    // Bad input found before anything is sent changes nothing.
    if before_sending {
        assert!(
            s.server.object("", "namespaces", None, "app").is_none(),
            "{err}"
        );
    }
}

#[test]
fn bad_yaml_is_named_with_its_file_and_document() {
    assert_refused(
        "50-bad.yaml",
        &format!(
            "{}---\nkind: [unclosed\n",
            configmap("app", "ok", "  k: v\n")
        ),
        &["document 2"],
    );
}

#[test]
fn a_missing_kind_is_named() {
    assert_refused(
        "50-nokind.yaml",
        "apiVersion: v1\nmetadata:\n  name: mystery\n",
        &["object mystery", "no `kind`"],
    );
}

#[test]
fn an_unknown_apply_type_is_refused() {
    let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  annotations:\n    lca.openshift.io/apply-type: mrege\n";
    assert_refused("50-type.yaml", text, &["ConfigMap c", "mrege"]);
}

#[test]
fn an_unknown_kind_is_named_with_its_file_and_object() {
    refused(
        "50-unknown.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n  namespace: app\n",
        &[
            "Gadget app/g",
            "serves no kind Gadget in apiVersion example.com/v1",
            "document 1",
        ],
        false,
    );
}

#[test]
fn a_transient_503_is_retried() {
    let s = setup();
    s.write(
        "10-all.yaml",
        &format!("{NS_APP}---\n{}", configmap("app", "cm", "  k: v\n")),
    );
    s.server.fail_next(4, 503);
    let summary = s.apply(&quick()).unwrap();
    assert_eq!(summary.objects.len(), 2);
    assert_eq!(s.server.failures_left(), 0);
    assert!(
        s.server
            .object("", "configmaps", Some("app"), "cm")
            .is_some()
    );
}

#[test]
fn the_deadline_ends_a_permanently_failing_apply() {
    let s = setup();
    s.write("10-cm.yaml", &configmap("app", "cm", "  k: v\n"));
    s.server.fail_always(503);
    let opts = ApplyOptions {
        deadline: Duration::from_secs(2),
        ..quick()
    };
    let err = format!("{:#}", s.apply(&opts).unwrap_err());
    assert!(err.contains("deadline of 2s"), "{err}");
    assert!(
        err.contains("10-cm.yaml") && err.contains("ConfigMap app/cm"),
        "{err}"
    );
    assert!(err.contains("503") || err.contains("not ready"), "{err}");
}

#[test]
fn seed_mirrors_and_catalog_sources_are_deleted() {
    let s = setup();
    let crd = |group: &str, plural: &str, kind: &str, version: &str, scope: &str| {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.{group}")},
            "spec": {"group": group, "scope": scope, "names": {"plural": plural, "kind": kind},
                     "versions": [{"name": version, "served": true, "storage": true}]}})
    };
    let docs = [
        crd(
            "operator.openshift.io",
            "imagecontentsourcepolicies",
            "ImageContentSourcePolicy",
            "v1alpha1",
            "Cluster",
        ),
        crd(
            "operators.coreos.com",
            "catalogsources",
            "CatalogSource",
            "v1alpha1",
            "Namespaced",
        ),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openshift-marketplace"}}),
        json!({"apiVersion": "operator.openshift.io/v1alpha1", "kind": "ImageContentSourcePolicy", "metadata": {"name": "seed-mirror"}}),
        json!({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "CatalogSource",
               "metadata": {"name": "seed-catalog", "namespace": "openshift-marketplace"}}),
    ];
    let text: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
    s.write("seed.yaml", &format!("---\n{}", text.join("\n---\n")));
    s.apply(&quick()).unwrap();
    assert!(
        s.server
            .object(
                "operators.coreos.com",
                "catalogsources",
                Some("openshift-marketplace"),
                "seed-catalog"
            )
            .is_some()
    );

    let deleted = delete_seed_mirrors(&s.kubeconfig, &quick()).unwrap();
    assert_eq!(
        deleted,
        [
            "ImageContentSourcePolicy seed-mirror",
            "CatalogSource openshift-marketplace/seed-catalog"
        ]
    );
    assert!(
        s.server
            .object(
                "operator.openshift.io",
                "imagecontentsourcepolicies",
                None,
                "seed-mirror"
            )
            .is_none()
    );
    assert!(
        s.server
            .object(
                "operators.coreos.com",
                "catalogsources",
                Some("openshift-marketplace"),
                "seed-catalog"
            )
            .is_none()
    );
    assert!(
        s.server
            .object("", "namespaces", None, "openshift-marketplace")
            .is_some()
    );
}

#[test]
fn an_empty_directory_applies_nothing_and_a_missing_one_is_an_error() {
    let s = setup();
    let summary = s.apply(&quick()).unwrap();
    assert_eq!((summary.files, summary.objects.len()), (0, 0));
    let err = apply_dir(&s.kubeconfig, Path::new("/nonexistent/manifests"), &quick()).unwrap_err();
    assert!(
        format!("{err:#}").contains("/nonexistent/manifests"),
        "{err:#}"
    );
}

/// The test server itself keeps the API server's rules the tests rely on.
#[test]
fn the_test_server_refuses_what_an_api_server_refuses() {
    let s = setup();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let send = |method: &str, path: &str, body: serde_json::Value| -> (u16, serde_json::Value) {
        let url = format!("{}{path}", s.server.url());
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .unwrap();
        let mut response = agent.run(request).unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    };
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    let (code, status) = send("POST", "/api/v1/namespaces/app/configmaps", cm.clone());
    assert_eq!(
        (code, status["reason"].as_str()),
        (404, Some("NotFound")),
        "{status}"
    );
    assert_eq!(status["message"], "namespaces \"app\" not found");

    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}});
    assert_eq!(send("POST", "/api/v1/namespaces", ns).0, 201);
    let (code, created) = send("POST", "/api/v1/namespaces/app/configmaps", cm.clone());
    assert_eq!(code, 201);
    assert_eq!(
        send("POST", "/api/v1/namespaces/app/configmaps", cm.clone()).1["reason"],
        "AlreadyExists"
    );

    let mut stale = cm.clone();
    stale["metadata"]["resourceVersion"] = "0".into();
    let (code, status) = send("PUT", "/api/v1/namespaces/app/configmaps/c", stale);
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("Conflict")),
        "{status}"
    );
    let mut fresh = cm;
    fresh["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    fresh["data"] = json!({"k": "v"});
    assert_eq!(
        send("PUT", "/api/v1/namespaces/app/configmaps/c", fresh).0,
        200
    );

    // A CRD's kind is served only once the CRD is Established.
    s.server.set_crd_delay(Duration::from_secs(3600));
    let crd: serde_json::Value = yaml_serde::from_str(CRD).unwrap();
    assert_eq!(
        send(
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            crd
        )
        .0,
        201
    );
    let (code, _) = send("GET", "/apis/example.com/v1", json!(null));
    assert_eq!(code, 404, "served before Established");
    let crd = s
        .server
        .object(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            None,
            "widgets.example.com",
        )
        .unwrap();
    assert_eq!(
        crd["status"]["conditions"][1],
        json!({"type": "Established", "status": "False", "reason": "InitialNamesAccepted"})
    );
    let (code, core) = send("GET", "/api/v1", json!(null));
    assert_eq!(code, 200);
    assert_eq!(core["kind"], "APIResourceList");
}

/// A self-signed CA certificate in PEM, for an https kubeconfig.
fn self_signed_ca() -> String {
    use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa, x509};
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let mut name = x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "test-ca").unwrap();
    let name = name.build();
    let mut cert = x509::X509Builder::new().unwrap();
    cert.set_version(2).unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    String::from_utf8(cert.build().to_pem().unwrap()).unwrap()
}

/// An https kubeconfig like the node's (the TLS stack has its crypto
/// provider), and a refused connection is retried until the deadline.
#[test]
fn an_https_cluster_that_refuses_connections_is_retried_until_the_deadline() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).unwrap();
    std::fs::write(manifests.join("ns.yaml"), NS_APP).unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ca = base64::engine::general_purpose::STANDARD.encode(self_signed_ca());
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    \
             certificate-authority-data: {ca}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\n\
             current-context: c\nusers:\n- name: u\n  user: {{token: t}}\n"
        ),
    )
    .unwrap();
    let opts = ApplyOptions {
        deadline: Duration::from_secs(2),
        ..quick()
    };
    let err = format!(
        "{:#}",
        apply_dir(&kubeconfig, &manifests, &opts).unwrap_err()
    );
    assert!(err.contains("deadline of 2s"), "{err}");
    assert!(
        err.contains("Namespace app") && err.contains("ns.yaml"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("connect"), "{err}");
}
