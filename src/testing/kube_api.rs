//! A local Kubernetes API test server: the one fake on the cluster side, as
//! no kube-apiserver can run here. Plain HTTP on 127.0.0.1, real discovery
//! documents (`/api`, `/api/v1`, `/apis`, `/apis/<group>[/<version>]`), so
//! a client's REST mapping is exercised, and objects kept in memory with
//! the API server's rules that manifest application depends on: 409 on a
//! second create, resourceVersion checked on replace, a namespaced object
//! refused while its Namespace does not exist, a CRD's kind served only
//! once the CRD is Established.
//!
//! Serves Namespace, ConfigMap, Secret, CustomResourceDefinition and the
//! kinds of created CRDs. Strategic merge patches are applied as JSON merge
//! patches (lists replaced); no watch, no field selectors, no conversion.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

pub use super::kube_api_store::ResourceType;
use super::kube_api_store::{Key, Store, merge_patch};

/// Requests answered with an error instead of being served.
#[derive(Debug, Default)]
struct Failures {
    /// Answer the next `count` requests with `status`.
    next: u32,
    /// Answer every request with this.
    always: Option<u16>,
    status: u16,
}

#[derive(Debug, Default)]
struct Shared {
    store: Store,
    failures: Failures,
    requests: Vec<String>,
}

type State = Arc<Mutex<Shared>>;

/// The running server; stopped when dropped.
pub struct KubeApiServer {
    addr: SocketAddr,
    state: State,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KubeApiServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start() -> Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        listener
            .set_nonblocking(true)
            .context("making the listener non-blocking")?;
        let addr = listener
            .local_addr()
            .context("reading the listener's address")?;
        let state: State = Arc::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the test server's runtime")?;
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                tokio::spawn(accept(listener, served, addr));
                let _ = stopped.await;
            });
        });
        Ok(KubeApiServer {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig whose current context is this server.
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n\
             current-context: test\nusers:\n- name: test\n  user: {{}}\n",
            self.url()
        );
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// The stored object, if any (`namespace` `None` for cluster-scoped).
    pub fn object(
        &self,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let key: Key = (
            group.into(),
            plural.into(),
            namespace.unwrap_or_default().into(),
            name.into(),
        );
        self.lock().store.view(&key)
    }

    /// Stores `obj` as if created earlier (a live object to update).
    pub fn insert(&self, group: &str, plural: &str, obj: Value) {
        let mut shared = self.lock();
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut obj = obj;
        let rv = shared.store.bump();
        obj["metadata"]["resourceVersion"] = rv.into();
        obj["metadata"]["uid"] = format!("uid-{name}").into();
        shared
            .store
            .objects
            .insert((group.into(), plural.into(), ns, name), obj);
    }

    /// The next `count` requests get `status` (e.g. 503) instead of an answer.
    pub fn fail_next(&self, count: u32, status: u16) {
        let mut shared = self.lock();
        shared.failures.next = count;
        shared.failures.status = status;
    }

    /// Every request from now on gets `status`.
    pub fn fail_always(&self, status: u16) {
        self.lock().failures.always = Some(status);
    }

    /// How many of the `fail_next` failures are still to come.
    pub fn failures_left(&self) -> u32 {
        self.lock().failures.next
    }

    /// A created CRD becomes Established (and its kind served) this long after.
    pub fn set_crd_delay(&self, delay: Duration) {
        self.lock().store.crd_delay = delay;
    }

    /// Every request so far, as `METHOD /path`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for KubeApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept(listener: tokio::net::TcpListener, state: State, addr: SocketAddr) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| serve(state.clone(), addr, req));
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

type Answer = (StatusCode, Value);

async fn serve(
    state: State,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let (code, value) = {
        let mut shared = state.lock().unwrap_or_else(PoisonError::into_inner);
        shared.requests.push(format!("{method} {path}"));
        match injected_failure(&mut shared.failures) {
            Some(answer) => answer,
            None => route(
                &mut shared.store,
                &addr.to_string(),
                &method,
                &path,
                &content_type,
                &body,
            ),
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = code;
    if let Ok(v) = hyper::header::HeaderValue::from_str("application/json") {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    Ok(response)
}

fn injected_failure(f: &mut Failures) -> Option<Answer> {
    let code = if let Some(code) = f.always {
        code
    } else if f.next > 0 {
        f.next -= 1;
        f.status
    } else {
        return None;
    };
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    Some(status_answer(
        status,
        "ServiceUnavailable",
        "injected failure: the server is not ready",
        None,
    ))
}

/// A `Status` object, as the API server answers errors.
fn status_answer(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Answer {
    let mut status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code.as_u16()});
    if let Some(d) = details {
        status["details"] = d;
    }
    (code, status)
}

fn not_found(t: &ResourceType, name: &str) -> Answer {
    status_answer(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} \"{name}\" not found", t.qualified()),
        Some(json!({"name": name, "group": t.group, "kind": t.plural})),
    )
}

fn route(
    store: &mut Store,
    server: &str,
    method: &Method,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Answer {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let page_not_found = (
        StatusCode::NOT_FOUND,
        Value::String("404 page not found".into()),
    );
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => return (StatusCode::OK, store.api_versions(server)),
        ["apis"] => return (StatusCode::OK, store.api_group_list()),
        ["apis", g] => {
            return store
                .api_group(g)
                .map_or(page_not_found, |d| (StatusCode::OK, d));
        }
        ["api", v] => {
            return store
                .resource_list("", v)
                .map_or(page_not_found, |d| (StatusCode::OK, d));
        }
        ["apis", g, v] => {
            return store
                .resource_list(g, v)
                .map_or(page_not_found, |d| (StatusCode::OK, d));
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return page_not_found,
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (*ns, *plural, None),
        ["namespaces", ns, plural, name] => (*ns, *plural, Some(*name)),
        [plural] => ("", *plural, None),
        [plural, name] => ("", *plural, Some(*name)),
        _ => return page_not_found,
    };
    let Some(t) = store.find(group, version, plural) else {
        return page_not_found;
    };
    if t.namespaced == namespace.is_empty() && name.is_some() {
        return page_not_found;
    }
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match (method, name) {
        (&Method::GET, None) => list(store, &t, namespace),
        (&Method::GET, Some(n)) => store
            .view(&key(&t, namespace, n))
            .map_or_else(|| not_found(&t, n), |o| (StatusCode::OK, o)),
        (&Method::POST, None) => create(store, &t, namespace, parsed),
        (&Method::PUT, Some(n)) => replace(store, &t, namespace, n, parsed),
        (&Method::PATCH, Some(n)) => patch(store, &t, namespace, n, content_type, parsed),
        (&Method::DELETE, Some(n)) => delete(store, &t, namespace, n),
        _ => status_answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not supported by the test server",
            None,
        ),
    }
}

fn key(t: &ResourceType, namespace: &str, name: &str) -> Key {
    (
        t.group.clone(),
        t.plural.clone(),
        namespace.into(),
        name.into(),
    )
}

fn list(store: &Store, t: &ResourceType, namespace: &str) -> Answer {
    let items: Vec<Value> = store
        .objects
        .keys()
        .filter(|(g, p, ns, _)| {
            *g == t.group && *p == t.plural && (namespace.is_empty() || ns == namespace)
        })
        .filter_map(|k| store.view(k))
        .collect();
    (
        StatusCode::OK,
        json!({"kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
        "metadata": {"resourceVersion": "1"}, "items": items}),
    )
}

fn bad_request(message: &str) -> Answer {
    status_answer(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

/// Checks a body against the type and the path; gives the object's name.
fn check_body(t: &ResourceType, namespace: &str, obj: &Value) -> Result<String, Answer> {
    if obj["kind"].as_str() != Some(t.kind.as_str())
        || obj["apiVersion"].as_str() != Some(t.api_version().as_str())
    {
        return Err(bad_request(&format!(
            "the body is not a {} {}",
            t.api_version(),
            t.kind
        )));
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        return Err(status_answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.name: Required value",
            None,
        ));
    }
    let body_ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    if t.namespaced && !body_ns.is_empty() && body_ns != namespace {
        return Err(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(name.to_string())
}

fn create(store: &mut Store, t: &ResourceType, namespace: &str, body: Option<Value>) -> Answer {
    let Some(mut obj) = body else {
        return bad_request("the body is not JSON");
    };
    let name = match check_body(t, namespace, &obj) {
        Ok(n) => n,
        Err(answer) => return answer,
    };
    if t.namespaced
        && !store.objects.contains_key(&(
            String::new(),
            "namespaces".into(),
            String::new(),
            namespace.into(),
        ))
    {
        return status_answer(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("namespaces \"{namespace}\" not found"),
            Some(json!({"name": namespace, "kind": "namespaces"})),
        );
    }
    let k = key(t, namespace, &name);
    if store.objects.contains_key(&k) {
        return status_answer(
            StatusCode::CONFLICT,
            "AlreadyExists",
            &format!("{} \"{name}\" already exists", t.qualified()),
            Some(json!({"name": name, "group": t.group, "kind": t.plural})),
        );
    }
    let rv = store.bump();
    let meta = &mut obj["metadata"];
    meta["resourceVersion"] = rv.into();
    meta["uid"] = format!("uid-{}-{name}", t.plural).into();
    meta["creationTimestamp"] = "2026-01-01T00:00:00Z".into();
    if t.namespaced {
        meta["namespace"] = namespace.into();
    }
    if t.kind == "Namespace" {
        obj["status"] = json!({"phase": "Active"});
    }
    if t.kind == "CustomResourceDefinition" {
        let ready = std::time::Instant::now() + store.crd_delay;
        store.crd_ready_at.insert(name.clone(), ready);
    }
    store.objects.insert(k.clone(), obj);
    (StatusCode::CREATED, store.view(&k).unwrap_or_default())
}

fn replace(
    store: &mut Store,
    t: &ResourceType,
    namespace: &str,
    name: &str,
    body: Option<Value>,
) -> Answer {
    let Some(mut obj) = body else {
        return bad_request("the body is not JSON");
    };
    match check_body(t, namespace, &obj) {
        Ok(n) if n == name => {}
        Ok(_) => return bad_request("the name of the object does not match the name on the URL"),
        Err(answer) => return answer,
    }
    let k = key(t, namespace, name);
    let Some(live) = store.objects.get(&k).cloned() else {
        return not_found(t, name);
    };
    let Some(rv) = obj["metadata"]["resourceVersion"].as_str() else {
        return status_answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
            None,
        );
    };
    if Some(rv) != live["metadata"]["resourceVersion"].as_str() {
        return status_answer(
            StatusCode::CONFLICT,
            "Conflict",
            &format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                t.qualified()
            ),
            None,
        );
    }
    let rv = store.bump();
    let meta = &mut obj["metadata"];
    meta["resourceVersion"] = rv.into();
    meta["uid"] = live["metadata"]["uid"].clone();
    meta["creationTimestamp"] = live["metadata"]["creationTimestamp"].clone();
    store.objects.insert(k.clone(), obj);
    (StatusCode::OK, store.view(&k).unwrap_or_default())
}

fn patch(
    store: &mut Store,
    t: &ResourceType,
    namespace: &str,
    name: &str,
    content_type: &str,
    body: Option<Value>,
) -> Answer {
    let merge_like = content_type.starts_with("application/merge-patch+json")
        || content_type.starts_with("application/strategic-merge-patch+json");
    if !merge_like {
        return status_answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            &format!("the test server does not apply {content_type} patches"),
            None,
        );
    }
    let Some(patch_doc) = body else {
        return bad_request("the body is not JSON");
    };
    let k = key(t, namespace, name);
    let rv = store.bump();
    let Some(obj) = store.objects.get_mut(&k) else {
        return not_found(t, name);
    };
    merge_patch(obj, &patch_doc);
    obj["metadata"]["resourceVersion"] = rv.into();
    (StatusCode::OK, store.view(&k).unwrap_or_default())
}

fn delete(store: &mut Store, t: &ResourceType, namespace: &str, name: &str) -> Answer {
    let k = key(t, namespace, name);
    if store.objects.remove(&k).is_none() {
        return not_found(t, name);
    }
    if t.kind == "Namespace" {
        store.objects.retain(|(_, _, ns, _), _| ns != name);
    }
    if t.kind == "CustomResourceDefinition" {
        store.crd_ready_at.remove(name);
    }
    (
        StatusCode::OK,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": name, "group": t.group, "kind": t.plural}}),
    )
}
