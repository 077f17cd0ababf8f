//! A local Kubernetes API test server: the one fake on the cluster side, as
//! no kube-apiserver can run here. Plain HTTP on 127.0.0.1, real discovery
//! documents (`/api`, `/api/v1`, `/apis`, `/apis/<group>[/<version>]`), so
//! a client's REST mapping is exercised, and objects kept in memory with
//! the API server's rules that manifest application depends on: 409 on a
//! second create, resourceVersion checked on replace, a namespaced object
//! refused while its Namespace does not exist, a CRD's kind served only
//! once the CRD is Established.
//!
//! Serves Namespace, ConfigMap, Secret, Node, Deployment,
//! CustomResourceDefinition, the kinds of created CRDs and, after
//! [`KubeApiServer::serve_openshift`], the OpenShift kinds post-pivot works
//! on (ClusterVersion, ImageDigestMirrorSet, ImageContentSourcePolicy,
//! CatalogSource). Label selectors of `key`, `key=value` terms; strategic
//! merge patches are JSON merge patches except that lists of named objects
//! (containers) merge by name; no watch, no field selectors, no conversion.
//! PATCH and DELETE requests are recorded with their bodies.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::Value;

use super::kube_api_routes::{Answer, route, status_answer};
pub use super::kube_api_store::ResourceType;
use super::kube_api_store::{Key, Store};

/// Requests answered with an error instead of being served.
#[derive(Debug, Default)]
struct Failures {
    /// Answer the next `count` requests with `status`.
    next: u32,
    /// Answer every request with this.
    always: Option<u16>,
    status: u16,
}

/// A PATCH or DELETE the server was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub content_type: String,
    /// The body as JSON (Null when there was none or it was not JSON).
    pub body: Value,
}

#[derive(Debug, Default)]
struct Shared {
    store: Store,
    failures: Failures,
    requests: Vec<String>,
    changes: Vec<Recorded>,
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
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts a server on `addr` (a fixed port: the vm-tests guest serves
    /// it where the node's kubeconfig points).
    pub fn start_at(addr: SocketAddr) -> Result<Self> {
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
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

    /// Stores `obj` as if created earlier (a live object to update); a CRD
    /// stored so is Established at once.
    pub fn insert(&self, group: &str, plural: &str, obj: Value) {
        let mut shared = self.lock();
        if group == "apiextensions.k8s.io"
            && plural == "customresourcedefinitions"
            && let Some(name) = obj["metadata"]["name"].as_str()
        {
            shared
                .store
                .crd_ready_at
                .insert(name.to_string(), std::time::Instant::now());
        }
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

    /// Serves again after [`Self::fail_always`] (the API server came up).
    pub fn stop_failing(&self) {
        let mut shared = self.lock();
        shared.failures.always = None;
        shared.failures.next = 0;
    }

    /// How many of the `fail_next` failures are still to come.
    pub fn failures_left(&self) -> u32 {
        self.lock().failures.next
    }

    /// A created CRD becomes Established (and its kind served) this long after.
    pub fn set_crd_delay(&self, delay: Duration) {
        self.lock().store.crd_delay = delay;
    }

    /// Serves the OpenShift kinds (as if their CRDs were installed).
    pub fn serve_openshift(&self) {
        self.lock().store.serve_openshift();
    }

    /// Every PATCH and DELETE so far, in order.
    pub fn changes(&self) -> Vec<Recorded> {
        self.lock().changes.clone()
    }

    /// Every stored object, as `group/plural/namespace/name` (empty parts
    /// for the core group and cluster-scoped objects), sorted.
    pub fn object_keys(&self) -> Vec<String> {
        self.lock()
            .store
            .objects
            .keys()
            .map(|(g, p, ns, n)| format!("{g}/{p}/{ns}/{n}"))
            .collect()
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

async fn serve(
    state: State,
    addr: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
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
        if method == hyper::Method::PATCH || method == hyper::Method::DELETE {
            shared.changes.push(Recorded {
                method: method.to_string(),
                path: path.clone(),
                content_type: content_type.clone(),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            });
        }
        match injected_failure(&mut shared.failures) {
            Some(answer) => answer,
            None => route(
                &mut shared.store,
                &addr.to_string(),
                &method,
                &path,
                &query,
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
