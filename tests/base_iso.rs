//! The base ISO resolver of `create image` against a small HTTP server on
//! 127.0.0.1: stream metadata, override URLs, the verified cache, retries,
//! compressed downloads, and the offline `--base-iso` path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::json;
use support::skip_or_fail;

mod support;
use sprout::create::base_iso::{BaseIsoOptions, resolve};

const FIXTURE_XZ: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/coreos-live-iso/embed-areas-2023-07.x86_64.iso.xz"
);
/// The server never serves more connections than this, whatever happens.
const MAX_CONNECTIONS: usize = 64;

type Responses = Arc<Mutex<HashMap<String, Vec<(u16, Vec<u8>)>>>>;

/// A minimal HTTP/1.1 server on 127.0.0.1 that records each request target.
/// Each path has a list of responses, served in order; the last one repeats.
struct Server {
    addr: SocketAddr,
    routes: Responses,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Responses = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (routes, requests, stop) = (routes.clone(), requests.clone(), stop.clone());
            move || {
                for conn in listener.incoming().take(MAX_CONNECTIONS) {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        serve(conn, &routes, &requests);
                    }
                }
            }
        });
        Server {
            addr,
            routes,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn route(&self, path: &str, responses: Vec<(u16, Vec<u8>)>) {
        self.routes
            .lock()
            .unwrap()
            .insert(path.to_string(), responses);
    }

    /// Requests whose path (without the query) is `path`.
    fn hits(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|t| t.split('?').next() == Some(path))
            .count()
    }

    fn total(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut conn: TcpStream, routes: &Responses, requests: &Mutex<Vec<String>>) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 65536 {
        match conn.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.split(' ').nth(1).unwrap_or("").to_string();
    requests.lock().unwrap().push(target.clone());
    let path = target.split('?').next().unwrap_or("");
    let (status, body) = {
        let mut routes = routes.lock().unwrap();
        match routes.get_mut(path) {
            Some(list) if list.len() > 1 => list.remove(0),
            Some(list) if !list.is_empty() => list[0].clone(),
            _ => (404, b"not found".to_vec()),
        }
    };
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let header = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // The client may hang up early (a 404 it does not read); that is fine.
    let _ = conn.write_all(header.as_bytes());
    let _ = conn.write_all(&body);
    let _ = conn.flush();
}

fn sha256(bytes: &[u8]) -> String {
    openssl::sha::sha256(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic stand-in for an ISO, a few MiB so reads span many buffers.
fn iso_bytes(seed: u8) -> Vec<u8> {
    (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

fn stream_json(arch: &str, location: &str, sha: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "stream": "rhel-9",
        "architectures": { arch: { "artifacts": { "metal": {
            "release": "9.6.20250101-0",
            "formats": { "iso": { "disk": { "location": location, "sha256": sha } } }
        } } } }
    }))
    .unwrap()
}

fn options(server: &Server, cache: &Path) -> BaseIsoOptions {
    BaseIsoOptions {
        base_iso: None,
        rpm_arch: "x86_64".to_string(),
        cache_dir: cache.to_path_buf(),
        stream_url: server.url("/stream.json"),
        override_url: None,
        retry_delay: Duration::from_millis(10),
    }
}

fn cache_entry(cache: &Path, name: &str) -> PathBuf {
    cache.join("sprout/image_cache").join(name)
}

/// Names in the image cache other than lock files.
fn cache_files(cache: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(cache.join("sprout/image_cache")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    names.sort();
    names
}

/// Serves `iso` at /live.iso with stream metadata saying `sha`.
fn serve_stream_iso(server: &Server, iso: Vec<u8>, sha: &str) {
    let location = server.url("/live.iso");
    server.route(
        "/stream.json",
        vec![(200, stream_json("x86_64", &location, sha))],
    );
    server.route("/live.iso", vec![(200, iso)]);
}

fn err(opts: &BaseIsoOptions) -> String {
    format!("{:#}", resolve(opts).unwrap_err())
}

#[test]
fn downloads_verifies_caches_and_reuses_from_stream_metadata() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let iso = iso_bytes(0);
    serve_stream_iso(&server, iso.clone(), &sha256(&iso));
    let opts = options(&server, cache.path());

    let path = resolve(&opts).unwrap();
    assert_eq!(path, cache_entry(cache.path(), "live.iso"));
    assert!(std::fs::read(&path).unwrap() == iso);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o444);
    assert_eq!(cache_files(cache.path()), ["live.iso"]);
    assert_eq!(server.hits("/live.iso"), 1);

    // Reuse: the stream is read again, the ISO is verified from disk only.
    assert_eq!(resolve(&opts).unwrap(), path);
    assert_eq!(server.hits("/live.iso"), 1);
    assert_eq!(server.hits("/stream.json"), 2);
}

#[test]
fn override_url_with_sha256_is_verified_and_reused_without_any_request() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let iso = iso_bytes(1);
    server.route("/o/custom.iso", vec![(200, iso.clone())]);
    let mut opts = options(&server, cache.path());
    opts.override_url = Some(format!(
        "{}?sha256={}",
        server.url("/o/custom.iso"),
        sha256(&iso).to_uppercase()
    ));

    let path = resolve(&opts).unwrap();
    assert_eq!(path, cache_entry(cache.path(), "custom.iso"));
    assert!(std::fs::read(&path).unwrap() == iso);
    // The stream is never read, and the checksum is not sent to the server.
    assert_eq!(*server.requests.lock().unwrap(), ["/o/custom.iso"]);

    assert_eq!(resolve(&opts).unwrap(), path);
    assert_eq!(server.total(), 1, "a verified cache entry needs no request");
}

#[test]
fn override_url_without_checksum_is_used_unverified() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let iso = iso_bytes(2);
    server.route("/plain.iso", vec![(200, iso.clone())]);
    let mut opts = options(&server, cache.path());
    opts.override_url = Some(server.url("/plain.iso"));

    let path = resolve(&opts).unwrap();
    assert!(std::fs::read(&path).unwrap() == iso);
    // Upstream's pre-seeding: without a checksum the cache entry is trusted.
    resolve(&opts).unwrap();
    assert_eq!(server.total(), 1);
}

#[test]
fn corrupted_cache_entry_is_detected_on_reuse_and_downloaded_again() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let iso = iso_bytes(3);
    serve_stream_iso(&server, iso.clone(), &sha256(&iso));
    let opts = options(&server, cache.path());
    let path = resolve(&opts).unwrap();

    // Truncate it, as an interrupted copy or a full disk would.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&path, &iso[..iso.len() / 2]).unwrap();

    assert_eq!(resolve(&opts).unwrap(), path);
    assert!(std::fs::read(&path).unwrap() == iso);
    assert_eq!(server.hits("/live.iso"), 2);
    assert_eq!(cache_files(cache.path()), ["live.iso"]);
}

#[test]
fn checksum_mismatch_from_the_server_is_refused_and_nothing_is_cached() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let (expected, served) = (iso_bytes(4), iso_bytes(5));
    serve_stream_iso(&server, served.clone(), &sha256(&expected));
    let opts = options(&server, cache.path());

    let message = err(&opts);
    let want = format!(
        "checksum mismatch for {}: expected {}, found {}",
        cache_entry(cache.path(), "live.iso").display(),
        sha256(&expected),
        sha256(&served)
    );
    assert!(message.contains(&want), "{message}");
    assert!(message.contains("--base-iso"), "{message}");
    assert!(cache_files(cache.path()).is_empty(), "{message}");
    // A wrong checksum is not a transient failure: no second attempt.
    assert_eq!(server.hits("/live.iso"), 1);
}

#[test]
fn damaged_cache_entry_and_still_wrong_download_is_refused() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let expected = iso_bytes(6);
    serve_stream_iso(&server, iso_bytes(7), &sha256(&expected));
    let entry = cache_entry(cache.path(), "live.iso");
    std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
    std::fs::write(&entry, b"pre-seeded but wrong").unwrap();

    let message = err(&options(&server, cache.path()));
    assert!(message.contains("checksum mismatch for"), "{message}");
    assert!(cache_files(cache.path()).is_empty(), "{message}");
    assert_eq!(server.hits("/live.iso"), 1);
}

#[test]
fn xz_download_is_decompressed_and_verified() {
    let Ok(xz) = std::fs::read(FIXTURE_XZ) else {
        skip_or_fail(
            "xz_download_is_decompressed_and_verified",
            &format!("{FIXTURE_XZ} is missing (../shared beside the clone)"),
        );
        return;
    };
    let mut iso = Vec::new();
    liblzma::read::XzDecoder::new(&xz[..])
        .read_to_end(&mut iso)
        .unwrap();
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let location = server.url("/rhcos-live.x86_64.iso.xz");
    server.route(
        "/stream.json",
        vec![(200, stream_json("x86_64", &location, &sha256(&iso)))],
    );
    server.route("/rhcos-live.x86_64.iso.xz", vec![(200, xz)]);

    let path = resolve(&options(&server, cache.path())).unwrap();
    assert_eq!(path, cache_entry(cache.path(), "rhcos-live.x86_64.iso"));
    assert!(std::fs::read(&path).unwrap() == iso);
}

#[test]
fn gz_download_is_decompressed_and_verified() {
    let iso = iso_bytes(8);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&iso).unwrap();
    let gz = gz.finish().unwrap();
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    server.route("/live.iso.gz", vec![(200, gz)]);
    let mut opts = options(&server, cache.path());
    opts.override_url = Some(format!(
        "{}?sha256={}",
        server.url("/live.iso.gz"),
        sha256(&iso)
    ));

    let path = resolve(&opts).unwrap();
    assert_eq!(path, cache_entry(cache.path(), "live.iso"));
    assert!(std::fs::read(&path).unwrap() == iso);
}

#[test]
fn http_404_names_the_url_and_status_without_retrying() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let location = server.url("/missing.iso");
    server.route(
        "/stream.json",
        vec![(200, stream_json("x86_64", &location, &"0".repeat(64)))],
    );

    let message = err(&options(&server, cache.path()));
    assert!(
        message.contains(&format!("GET {location} returned HTTP 404 Not Found")),
        "{message}"
    );
    assert!(message.contains("pass --base-iso"), "{message}");
    assert_eq!(server.hits("/missing.iso"), 1);
    assert!(cache_files(cache.path()).is_empty());
}

#[test]
fn server_errors_are_retried() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let iso = iso_bytes(9);
    serve_stream_iso(&server, iso.clone(), &sha256(&iso));
    server.route(
        "/live.iso",
        vec![
            (503, b"busy".to_vec()),
            (503, b"busy".to_vec()),
            (200, iso.clone()),
        ],
    );

    let path = resolve(&options(&server, cache.path())).unwrap();
    assert!(std::fs::read(&path).unwrap() == iso);
    assert_eq!(server.hits("/live.iso"), 3);
}

#[test]
fn persistent_server_errors_give_up_after_three_attempts() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    server.route("/stream.json", vec![(503, b"busy".to_vec())]);

    let message = err(&options(&server, cache.path()));
    assert!(
        message.contains("fetching the CoreOS stream metadata"),
        "{message}"
    );
    assert!(message.contains("3 attempts failed"), "{message}");
    assert!(message.contains("503"), "{message}");
    assert_eq!(server.hits("/stream.json"), 3);
}

#[test]
fn cached_iso_is_found_offline_through_the_kept_stream_metadata() {
    let cache = tempfile::tempdir().unwrap();
    let iso = iso_bytes(7);
    let (opts, path) = {
        let server = Server::start();
        serve_stream_iso(&server, iso.clone(), &sha256(&iso));
        let opts = options(&server, cache.path());
        let path = resolve(&opts).unwrap();
        (opts, path)
    };
    // The server is gone: the stream copy names the cached ISO, which is
    // still verified against its checksum.
    assert_eq!(resolve(&opts).unwrap(), path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&path, b"damaged").unwrap();
    let message = err(&opts);
    assert!(
        message.contains("to work offline, pass --base-iso"),
        "{message}"
    );
}

#[test]
fn unreachable_stream_metadata_suggests_base_iso() {
    // A port nobody listens on: bind, note it, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = tempfile::tempdir().unwrap();
    let opts = BaseIsoOptions {
        base_iso: None,
        rpm_arch: "x86_64".to_string(),
        cache_dir: cache.path().to_path_buf(),
        stream_url: format!("http://127.0.0.1:{port}/stream.json"),
        override_url: None,
        retry_delay: Duration::from_millis(10),
    };
    let message = err(&opts);
    assert!(
        message.contains("to work offline, pass --base-iso"),
        "{message}"
    );
}

#[test]
fn stream_without_the_architecture_is_a_clear_error() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let location = server.url("/live.iso");
    server.route(
        "/stream.json",
        vec![(200, stream_json("x86_64", &location, &"0".repeat(64)))],
    );
    let mut opts = options(&server, cache.path());
    opts.rpm_arch = "aarch64".to_string();

    let message = err(&opts);
    assert!(
        message.contains("has no architecture aarch64 (it has: x86_64)"),
        "{message}"
    );
    assert!(message.contains("pass --base-iso"), "{message}");
    assert_eq!(server.hits("/live.iso"), 0);
}

#[test]
fn stream_without_metal_or_iso_keeps_the_upstream_wording() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let opts = options(&server, cache.path());
    let no_metal = json!({"architectures": {"x86_64": {"artifacts": {"qemu": {}}}}});
    server.route(
        "/stream.json",
        vec![(200, no_metal.to_string().into_bytes())],
    );
    let message = err(&opts);
    assert!(
        message.contains("coreOs stream data not found for 'metal' artifact"),
        "{message}"
    );

    let no_iso = json!({"architectures": {"x86_64": {"artifacts": {"metal": {
        "formats": {"raw.gz": {"disk": {"location": "http://x/y.raw.gz"}}}}}}}});
    server.route("/stream.json", vec![(200, no_iso.to_string().into_bytes())]);
    let message = err(&opts);
    assert!(
        message.contains("no ISO found to download for x86_64"),
        "{message}"
    );
    assert!(message.contains("pass --base-iso"), "{message}");

    server.route(
        "/stream.json",
        vec![(200, b"<html>proxy login</html>".to_vec())],
    );
    let message = err(&opts);
    assert!(
        message.contains("is not CoreOS stream metadata"),
        "{message}"
    );
}

#[test]
fn unsupported_architecture_is_refused_before_any_request() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let mut opts = options(&server, cache.path());
    opts.rpm_arch = "amd64".to_string();
    let message = err(&opts);
    assert!(
        message.contains("unsupported architecture 'amd64'"),
        "{message}"
    );
    assert_eq!(server.total(), 0);
}

#[test]
fn base_iso_is_used_without_any_network() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("rhcos-live.iso");
    std::fs::write(&local, iso_bytes(10)).unwrap();
    let mut opts = options(&server, &work.path().join("cache"));
    opts.base_iso = Some(local.clone());
    opts.override_url = Some(server.url("/never.iso"));

    assert_eq!(resolve(&opts).unwrap(), local);
    assert_eq!(server.total(), 0);
    assert!(!work.path().join("cache").exists());
}

#[test]
fn missing_or_wrong_base_iso_is_a_clear_error() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let mut opts = options(&server, work.path());

    let missing = work.path().join("nope.iso");
    opts.base_iso = Some(missing.clone());
    let message = err(&opts);
    assert_eq!(
        message,
        format!(
            "the base ISO {} does not exist; check the --base-iso path",
            missing.display()
        )
    );

    opts.base_iso = Some(work.path().to_path_buf());
    let message = err(&opts);
    assert!(message.contains("is not a regular file"), "{message}");
    assert!(message.contains("--base-iso"), "{message}");
    assert_eq!(server.total(), 0);
}

#[test]
fn concurrent_runs_share_one_download() {
    let server = Server::start();
    let cache = tempfile::tempdir().unwrap();
    let iso = iso_bytes(11);
    serve_stream_iso(&server, iso.clone(), &sha256(&iso));
    let opts = options(&server, cache.path());

    let runs: Vec<_> = (0..2)
        .map(|_| {
            let opts = opts.clone();
            std::thread::spawn(move || resolve(&opts).unwrap())
        })
        .collect();
    let paths: Vec<PathBuf> = runs.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(paths[0], paths[1]);
    assert!(std::fs::read(&paths[0]).unwrap() == iso);
    assert_eq!(server.hits("/live.iso"), 1);
    assert_eq!(cache_files(cache.path()), ["live.iso"]);
}
