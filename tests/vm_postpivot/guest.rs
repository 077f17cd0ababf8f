//! The guest side of tests/vm_postpivot.rs that needs more than a shell:
//! this test executable, copied into the guest, runs in one of these modes
//! (`SPROUT_VM_HELPER=<mode> <exe> --ignored --exact guest_helper`).
//!
//! - `recert`: the recert stand-in, the entrypoint of the image
//!   `localhost/sprout-vm/recert-standin` that the seed's
//!   `recert_image_pull_spec` names. recert's own image cannot be had here
//!   (no registry but the package registries), so this is the one fake on
//!   the node side. It reads `RECERT_CONFIG` with recert's rules (a YAML
//!   object, every key of a known type, unknown keys refused, the paths it
//!   names present in its mounts), writes into the temporary etcd at
//!   `etcd_endpoint` (etcd's v3 JSON gateway), writes `/host-etc/chrony.conf`
//!   from `chrony_config` as recert does, and writes its summary.
//! - `kube-api`: started by the `kubelet.service` stand-in; sprout's
//!   Kubernetes API test server (src/testing/kube_api.rs) on the address of
//!   the node's lb-ext kubeconfig, holding what the seed cluster has (node,
//!   ClusterVersion, CVO, a seed mirror and catalog), writing the objects it
//!   holds to `/run/sprout-vm/kube-objects` for the checks.
//! - `status`: prints sprout's status file as `state=…`, `step ID OUTCOME`
//!   lines (the guest has no JSON tool).

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};

type Res<T> = Result<T, String>;

pub fn main(mode: &str) -> Res<()> {
    match mode {
        "recert" => recert(),
        "kube-api" => kube_api(),
        "status" => status(),
        other => Err(format!("unknown SPROUT_VM_HELPER mode {other:?}")),
    }
}

/// The keys recert reads, with their types (recert's config parser; it
/// removes each key it knows and refuses whatever is left).
const BOOLS: &[&str] = &[
    "dry_run",
    "extend_expiration",
    "force_expire",
    "etcd_defrag",
    "ip_change_only",
    "postprocess_only",
];
const STRINGS: &[&str] = &[
    "etcd_endpoint",
    "cluster_rename",
    "hostname",
    "proxy",
    "install_config",
    "user_ca_bundle",
    "proxy_trusted_ca_bundle",
    "kubeadmin_password_hash",
    "summary_file",
    "summary_file_clean",
    "pull_secret",
    "chrony_config",
    "regenerate_server_ssh_keys",
];
const STRING_LISTS: &[&str] = &[
    "crypto_dirs",
    "crypto_files",
    "cluster_customization_dirs",
    "cluster_customization_files",
    "cn_san_replace_rules",
    "use_key_rules",
    "use_cert_rules",
];
/// A string or a list of at most two strings.
const IP_LISTS: &[&str] = &["ip", "machine_network_cidr"];
/// Keys of other shapes that recert also knows.
const OTHERS: &[&str] = &[
    "threads",
    "kube_encryption_config",
    "openshift_encryption_config",
    "oauth_encryption_config",
];

fn take_str(cfg: &mut Map<String, Value>, key: &str) -> Res<Option<String>> {
    match cfg.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(format!("{key} must be a string, not {v}")),
    }
}

fn strings(key: &str, v: Value) -> Res<Vec<String>> {
    match v {
        Value::Array(a) => a
            .into_iter()
            .map(|e| match e {
                Value::String(s) => Ok(s),
                other => Err(format!("{key}: element {other} is not a string")),
            })
            .collect(),
        other => Err(format!("{key} must be a list of strings, not {other}")),
    }
}

/// recert's reading of its configuration; returns the values it acts on.
fn parse(text: &str) -> Res<(Map<String, Value>, Vec<String>)> {
    let value: Value =
        yaml_serde::from_str(text).map_err(|e| format!("config is not YAML: {e}"))?;
    let Value::Object(mut cfg) = value else {
        return Err("config file must be a YAML object".into());
    };
    let mut known = Map::new();
    let mut paths = Vec::new();
    for key in BOOLS {
        match cfg.remove(*key) {
            None => {}
            Some(Value::Bool(b)) => {
                known.insert((*key).into(), b.into());
            }
            Some(v) => return Err(format!("{key} must be a boolean, not {v}")),
        }
    }
    for key in STRINGS {
        if let Some(s) = take_str(&mut cfg, key)? {
            known.insert((*key).into(), s.into());
        }
    }
    for key in STRING_LISTS {
        if let Some(v) = cfg.remove(*key) {
            let list = strings(key, v)?;
            match *key {
                "crypto_dirs" | "crypto_files" | "cluster_customization_dirs" => {
                    paths.extend(list.iter().cloned());
                }
                "use_key_rules" => {
                    for rule in &list {
                        let (_, file) = rule
                            .split_once(' ')
                            .ok_or_else(|| format!("use_key_rules: {rule:?} is not `CN FILE`"))?;
                        paths.push(file.to_string());
                    }
                }
                "use_cert_rules" => paths.extend(list.iter().cloned()),
                "cn_san_replace_rules" => {
                    if let Some(bad) = list.iter().find(|r| r.split(',').count() != 2) {
                        return Err(format!("cn_san_replace_rules: {bad:?} is not `OLD,NEW`"));
                    }
                }
                _ => {}
            }
            known.insert((*key).into(), list.into());
        }
    }
    for key in IP_LISTS {
        match cfg.remove(*key) {
            None => {}
            Some(Value::String(s)) => {
                known.insert((*key).into(), vec![s].into());
            }
            Some(v @ Value::Array(_)) => {
                let list = strings(key, v)?;
                if list.len() > 2 {
                    return Err(format!("{key} array must have up to 2 elements"));
                }
                known.insert((*key).into(), list.into());
            }
            Some(v) => return Err(format!("{key} must be a string or a list, not {v}")),
        }
    }
    for key in OTHERS {
        if let Some(v) = cfg.remove(*key) {
            known.insert((*key).into(), v);
        }
    }
    if let Some(rename) = known.get("cluster_rename").and_then(Value::as_str) {
        let parts = rename.split(':').count();
        if !(2..=3).contains(&parts) {
            return Err(format!(
                "cluster_rename {rename:?} is not NAME:DOMAIN[:INFRA_ID]"
            ));
        }
    }
    if !cfg.is_empty() {
        let keys: Vec<&String> = cfg.keys().collect();
        return Err(format!("unknown keys {keys:?} in config file"));
    }
    Ok((known, paths))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Res<()> {
    let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// One put through etcd's v3 JSON gateway (plain HTTP, as the temporary
/// etcd serves).
fn etcd_put(endpoint: &str, key: &str, value: &str) -> Res<()> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let body = json!({"key": b64(key), "value": b64(value)}).to_string();
    let mut s = std::net::TcpStream::connect(endpoint)
        .map_err(|e| format!("connecting to etcd at {endpoint}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "POST /v3/kv/put HTTP/1.1\r\nHost: {endpoint}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| format!("writing to etcd: {e}"))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .map_err(|e| format!("reading etcd's answer: {e}"))?;
    if !answer.starts_with("HTTP/1.1 200") {
        return Err(format!("etcd refused the put of {key}: {answer}"));
    }
    Ok(())
}

fn recert() -> Res<()> {
    let path = std::env::var("RECERT_CONFIG").map_err(|_| "RECERT_CONFIG is not set")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    let (cfg, paths) = parse(&text)?;
    for p in &paths {
        if !Path::new(p).exists() {
            return Err(format!(
                "{p} (named in {path}) does not exist in the container"
            ));
        }
    }
    let endpoint = cfg
        .get("etcd_endpoint")
        .and_then(Value::as_str)
        .ok_or("no etcd_endpoint")?;
    // The reset scenario: the first run stops here until the guest resets.
    let state = Path::new("/host-etc/sprout-vm");
    let runs_file = state.join("recert-runs");
    let runs: u32 = std::fs::read_to_string(&runs_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
        + 1;
    if state.is_dir() {
        write_synced(&runs_file, runs.to_string().as_bytes())?;
    }
    etcd_put(endpoint, "/sprout-vm/recert/started", &runs.to_string())?;
    if runs == 1 && state.join("recert-pause-once").exists() {
        write_synced(Path::new("/var/tmp/recert-standin.paused"), b"paused\n")?;
        eprintln!("recert stand-in: paused for the guest reset");
        std::thread::sleep(Duration::from_secs(3600));
    }
    let rename = cfg
        .get("cluster_rename")
        .and_then(Value::as_str)
        .unwrap_or("");
    let hostname = cfg.get("hostname").and_then(Value::as_str).unwrap_or("");
    etcd_put(endpoint, "/sprout-vm/recert/cluster_rename", rename)?;
    etcd_put(endpoint, "/sprout-vm/recert/hostname", hostname)?;
    if let Some(chrony) = cfg.get("chrony_config").and_then(Value::as_str) {
        write_synced(Path::new("/host-etc/chrony.conf"), chrony.as_bytes())?;
    }
    let summary = cfg
        .get("summary_file_clean")
        .and_then(Value::as_str)
        .ok_or("no summary_file_clean")?;
    let keys: Vec<&String> = cfg.keys().collect();
    let text = format!(
        "recert_standin: true\nrun: {runs}\nconfig_keys: {}\n",
        serde_json::to_string(&keys).map_err(|e| e.to_string())?
    );
    write_synced(Path::new(summary), text.as_bytes())?;
    eprintln!("recert stand-in: done (run {runs}, {} keys)", keys.len());
    Ok(())
}

/// The seed cluster as the API serves it once kubelet runs: the node
/// (registered under its new name), ClusterVersion, the CVO, and a mirror
/// and a catalog of the seed that post-pivot must remove.
fn seed_cluster(server: &sprout::testing::kube_api::KubeApiServer) {
    const RELEASE: &str = "quay.io/openshift-release-dev/ocp-release@sha256:0123abcd";
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
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "sno1",
            "labels": {"node-role.kubernetes.io/master": "", "kubernetes.io/hostname": "sno1"}}}),
    );
    server.insert(
        "config.openshift.io",
        "clusterversions",
        json!({"apiVersion": "config.openshift.io/v1", "kind": "ClusterVersion",
            "metadata": {"name": "version"}, "spec": {"clusterID": "seed-cluster-id"}}),
    );
    server.insert(
        "apps",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cluster-version-operator", "namespace": "openshift-cluster-version"},
            "spec": {"template": {"spec": {"containers": [{"name": "cluster-version-operator",
                "image": RELEASE, "args": [format!("--release-image={RELEASE}")]}]}}}}),
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

fn kube_api() -> Res<()> {
    use sprout::testing::kube_api::KubeApiServer;
    let addr = std::env::var("SPROUT_VM_KUBE_API").unwrap_or_else(|_| "127.0.0.1:6443".into());
    let addr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let server = KubeApiServer::start_at(addr).map_err(|e| format!("{e:#}"))?;
    seed_cluster(&server);
    eprintln!("kube API stand-in: serving {}", server.url());
    let out = Path::new("/run/sprout-vm");
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    loop {
        // One line an object: its key, a tab, the object as served.
        let objects: Vec<String> = server
            .object_keys()
            .into_iter()
            .map(|key| {
                let p: Vec<&str> = key.splitn(4, '/').collect();
                let ns = (!p[2].is_empty()).then_some(p[2]);
                let obj = server.object(p[0], p[1], ns, p[3]).unwrap_or_default();
                format!("{key}\t{obj}")
            })
            .collect();
        for (name, lines) in [
            ("kube-objects", objects),
            ("kube-requests", server.requests()),
        ] {
            let tmp = out.join(format!(".{name}"));
            let mut text = lines.join("\n");
            text.push('\n');
            std::fs::write(&tmp, text)
                .and_then(|()| std::fs::rename(&tmp, out.join(name)))
                .map_err(|e| format!("writing {name}: {e}"))?;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn status() -> Res<()> {
    let path = "/var/lib/sprout/post-pivot-status.json";
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    println!("state={}", s(&v["state"]));
    println!("attempt={}", v["attempt"]);
    println!("current_step={}", s(&v["current_step"]));
    let error: Vec<String> = v["error"].as_array().into_iter().flatten().map(s).collect();
    println!("error={}", error.join(": "));
    for step in v["steps"].as_array().into_iter().flatten() {
        println!("step {} {}", s(&step["id"]), s(&step["outcome"]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn the_recert_standin_reads_configs_as_recert_does() {
        let (cfg, paths) = parse(
            r#"{"etcd_endpoint":"localhost:2379","ip":["192.0.2.1"],"crypto_dirs":["/kubelet"],"use_key_rules":["a /x/k.key"],"kubeadmin_password_hash":""}"#,
        )
        .unwrap();
        assert_eq!(cfg["ip"], serde_json::json!(["192.0.2.1"]));
        assert_eq!(paths, ["/kubelet", "/x/k.key"]);
        let e = parse(r#"{"etcd_endpoint":"localhost:2379","colour":"red"}"#).unwrap_err();
        assert!(e.contains("unknown keys [\"colour\"]"), "{e}");
        assert!(
            parse(r#"{"dry_run":"yes"}"#)
                .unwrap_err()
                .contains("boolean")
        );
        assert!(parse(r#"{"ip":["a","b","c"]}"#).is_err());
        assert!(parse(r#"{"cluster_rename":"justone"}"#).is_err());
        assert!(parse("[1]").is_err());
    }
}
