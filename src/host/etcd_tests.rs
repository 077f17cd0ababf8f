use super::*;

fn strings(v: Vec<OsString>) -> Vec<String> {
    v.into_iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn production_argv_is_upstreams_plus_loopback_urls() {
    // Spec §3.5 step 5, then the listen URLs that keep it on 127.0.0.1.
    let p = Podman::new("quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:e7a1".into());
    let expected = "run --rm --network=host --privileged --replace \
        --authfile /var/lib/kubelet/config.json --detach --name recert_etcd \
        --entrypoint etcd -v /var/lib/etcd:/store \
        quay.io/openshift-release-dev/ocp-v4.0-art-dev@sha256:e7a1 \
        --name editor --data-dir /store \
        --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
        --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380";
    assert_eq!(
        strings(p.run_argv(Ports::default())),
        expected.split_whitespace().collect::<Vec<_>>()
    );
    assert_eq!(
        strings(p.stop_argv()),
        ["stop", "--ignore", "--time", "10", "recert_etcd"]
    );
}

#[test]
fn machine_specific_podman_options_go_where_podman_takes_them() {
    let mut p = Podman::new("img".into());
    p.global_args = vec!["--runtime".into(), "runc".into()];
    p.run_args = vec!["--ulimit".into(), "nofile=20000:20000".into()];
    let argv = strings(p.run_argv(Ports {
        client: 12379,
        peer: 12380,
    }));
    assert_eq!(&argv[..3], ["--runtime", "runc", "run"]);
    let image = argv.iter().position(|a| a == "img").unwrap();
    assert_eq!(&argv[image - 2..image], ["--ulimit", "nofile=20000:20000"]);
    assert!(argv.contains(&"http://127.0.0.1:12379".to_string()));
    assert_eq!(&strings(p.stop_argv())[..3], ["--runtime", "runc", "stop"]);
}

#[test]
fn image_comes_from_the_etcd_container_of_the_static_pod() {
    let yaml = r#"
apiVersion: v1
kind: Pod
metadata:
  name: etcd
  namespace: openshift-etcd
spec:
  initContainers:
  - name: setup
    image: quay.io/x/setup@sha256:1
  containers:
  - name: etcdctl
    image: quay.io/x/etcdctl@sha256:2
  - name: etcd
    image: quay.io/x/etcd@sha256:3
    command: ["/bin/sh"]
    resources: {requests: {cpu: 100m}}
"#;
    assert_eq!(
        image_from_static_pod(yaml, "etcd").unwrap(),
        "quay.io/x/etcd@sha256:3"
    );
    let e = image_from_static_pod(yaml, "missing").unwrap_err();
    assert!(e.to_string().contains("no \"missing\" container"), "{e}");
    assert!(image_from_static_pod("spec: [", "etcd").is_err());
}

#[test]
fn etcd_image_reads_the_node_file_under_root() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("etc/kubernetes/manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("etcd-pod.yaml"),
        "spec:\n  containers:\n  - name: etcd\n    image: quay.io/x/etcd:v1\n",
    )
    .unwrap();
    assert_eq!(etcd_image(root.path()).unwrap(), "quay.io/x/etcd:v1");
    let e = etcd_image(&root.path().join("nowhere")).unwrap_err();
    assert!(format!("{e:#}").contains("etcd-pod.yaml"), "{e:#}");
}
