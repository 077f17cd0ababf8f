//! The temporary etcd recert edits (spec §3.5 steps 5 and 8).
//!
//! Upstream starts the seed's etcd image from the node's static pod with
//! `podman run … --entrypoint etcd -v /var/lib/etcd:/store <image> --name
//! editor --data-dir /store`: plain HTTP, no authentication, on the etcd
//! defaults (`localhost`). sprout keeps that command line and adds explicit
//! listen URLs on 127.0.0.1, so the unauthenticated server is reachable only
//! from the node itself whatever `localhost` resolves to (W14). recert's
//! `etcd_endpoint` stays `localhost:2379`: its client tries every address of
//! the name.
//!
//! [`TempEtcd`] is the guard: it exists from just before the launch, and its
//! `Drop` stops etcd on every way out — success, the recert step failing, the
//! health wait timing out, a panic, and SIGTERM (waits observe
//! [`super::shutdown`] and return an error, which unwinds to the drop).
//! [`TempEtcd::stop`] does the same but reports failure (W13).
//!
//! Two launchers: [`Launcher::Podman`] is production; [`Launcher::Binary`]
//! runs an `etcd` executable directly so host tests exercise the same guard
//! against a real etcd.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::command::Cmd;
use super::shutdown;

/// The node's etcd static pod, where the image comes from.
pub const STATIC_POD: &str = "/etc/kubernetes/manifests/etcd-pod.yaml";
/// The container in it.
pub const STATIC_POD_CONTAINER: &str = "etcd";
/// The container name upstream uses (and `--replace`s).
pub const CONTAINER_NAME: &str = "recert_etcd";
/// The member name upstream gives it.
pub const MEMBER_NAME: &str = "editor";
/// The seed's etcd data, edited in place.
pub const DATA_DIR: &str = "/var/lib/etcd";
/// The pull secret podman authenticates with.
pub const AUTH_FILE: &str = "/var/lib/kubelet/config.json";
/// Upstream's health deadline.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(60);

/// The minimal part of a Pod manifest this needs.
#[derive(Debug, Deserialize)]
struct StaticPod {
    spec: PodSpec,
}

#[derive(Debug, Deserialize)]
struct PodSpec {
    #[serde(default)]
    containers: Vec<Container>,
}

#[derive(Debug, Deserialize)]
struct Container {
    name: String,
    #[serde(default)]
    image: String,
}

/// The image of container `container` in the static pod manifest `yaml`.
pub fn image_from_static_pod(yaml: &str, container: &str) -> Result<String> {
    let pod: StaticPod = yaml_serde::from_str(yaml).context("parsing the pod manifest")?;
    pod.spec
        .containers
        .into_iter()
        .find(|c| c.name == container && !c.image.is_empty())
        .map(|c| c.image)
        .with_context(|| format!("no {container:?} container with an image in the pod manifest"))
}

/// The etcd image of the node whose root is `root`.
pub fn etcd_image(root: &Path) -> Result<String> {
    let path = root.join(STATIC_POD.trim_start_matches('/'));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    image_from_static_pod(&text, STATIC_POD_CONTAINER)
        .with_context(|| format!("in {}", path.display()))
}

/// The loopback ports etcd serves on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub client: u16,
    pub peer: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            client: 2379,
            peer: 2380,
        }
    }
}

impl Ports {
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
    }

    fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer)
    }

    /// Upstream's etcd arguments plus the loopback-only URLs.
    pub fn etcd_args(&self, data_dir: &str) -> Vec<String> {
        let (client, peer) = (self.client_url(), self.peer_url());
        [
            "--name",
            MEMBER_NAME,
            "--data-dir",
            data_dir,
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
        ]
        .map(String::from)
        .to_vec()
    }
}

/// How to start etcd.
#[derive(Debug, Clone)]
pub enum Launcher {
    Podman(Podman),
    Binary(Binary),
}

/// The production launcher: the seed's etcd image under podman.
#[derive(Debug, Clone)]
pub struct Podman {
    pub image: String,
    /// Options before `run` (`--runtime runc` on the build machine).
    pub global_args: Vec<String>,
    /// Extra `run` options before the image (ulimits on the build machine).
    pub run_args: Vec<String>,
    pub auth_file: PathBuf,
    pub data_dir: PathBuf,
}

impl Podman {
    /// Upstream's invocation for `image`.
    pub fn new(image: String) -> Self {
        Self {
            image,
            global_args: Vec::new(),
            run_args: Vec::new(),
            auth_file: AUTH_FILE.into(),
            data_dir: DATA_DIR.into(),
        }
    }

    /// `podman` arguments that start it, detached.
    pub fn run_argv(&self, ports: Ports) -> Vec<OsString> {
        let mut v: Vec<OsString> = self.global_args.iter().map(Into::into).collect();
        v.extend(
            [
                "run",
                "--rm",
                "--network=host",
                "--privileged",
                "--replace",
                "--authfile",
            ]
            .map(OsString::from),
        );
        v.push(self.auth_file.clone().into());
        v.extend(
            [
                "--detach",
                "--name",
                CONTAINER_NAME,
                "--entrypoint",
                "etcd",
                "-v",
            ]
            .map(OsString::from),
        );
        let mut volume = OsString::from(&self.data_dir);
        volume.push(":/store");
        v.push(volume);
        v.extend(self.run_args.iter().map(Into::into));
        v.push(self.image.clone().into());
        v.extend(ports.etcd_args("/store").into_iter().map(Into::into));
        v
    }

    fn stop_argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = self.global_args.iter().map(Into::into).collect();
        // --ignore: a container already gone is stopped, not an error.
        v.extend(["stop", "--ignore", "--time", "10", CONTAINER_NAME].map(OsString::from));
        v
    }
}

/// The test launcher: an `etcd` executable as a child process.
#[derive(Debug, Clone)]
pub struct Binary {
    pub program: PathBuf,
    pub data_dir: PathBuf,
    /// Where etcd's output goes (quoted in errors).
    pub log_file: PathBuf,
    /// More etcd arguments, after the standard ones (tests use them to make
    /// an etcd that never becomes healthy).
    pub extra_args: Vec<String>,
}

/// How long the health wait takes and how it polls.
#[derive(Debug, Clone, Copy)]
pub struct HealthWait {
    pub deadline: Duration,
    pub every: Duration,
    /// How often a log line says what is awaited.
    pub announce_every: Duration,
}

impl Default for HealthWait {
    fn default() -> Self {
        Self {
            deadline: HEALTH_DEADLINE,
            every: Duration::from_secs(1),
            announce_every: Duration::from_secs(10),
        }
    }
}

enum Running {
    Container(Podman),
    Process { child: Child, log_file: PathBuf },
}

/// A running temporary etcd; stopped when dropped.
pub struct TempEtcd {
    running: Option<Running>,
    ports: Ports,
}

impl std::fmt::Debug for TempEtcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TempEtcd")
            .field("client_url", &self.ports.client_url())
            .field("pid", &self.pid())
            .finish()
    }
}

impl TempEtcd {
    /// Starts etcd and waits until it is healthy. On any error it is
    /// already stopped again.
    pub fn start(launcher: &Launcher, ports: Ports, wait: HealthWait) -> Result<Self> {
        shutdown::check()?;
        if let Launcher::Podman(p) = launcher {
            // A container left by a killed run would hold the port.
            podman(p.stop_argv())
                .run()
                .context("removing a leftover recert_etcd container")?;
        }
        if listening(ports.client) {
            bail!(
                "127.0.0.1:{} is already in use, so the temporary etcd cannot start; the node's \
                 own etcd may be running (kubelet started?). Stop it and retry",
                ports.client
            );
        }
        let running = match launcher {
            Launcher::Podman(p) => {
                podman(p.run_argv(ports))
                    .run()
                    .context("starting the temporary etcd")?;
                Running::Container(p.clone())
            }
            Launcher::Binary(b) => {
                let log = std::fs::File::create(&b.log_file)
                    .with_context(|| format!("creating {}", b.log_file.display()))?;
                let err = log.try_clone().context("duplicating the log file handle")?;
                let data_dir = b.data_dir.to_string_lossy();
                let child = Command::new(&b.program)
                    .args(ports.etcd_args(&data_dir))
                    .args(&b.extra_args)
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(err)
                    .spawn()
                    .with_context(|| format!("starting {}", b.program.display()))?;
                Running::Process {
                    child,
                    log_file: b.log_file.clone(),
                }
            }
        };
        // From here on, every error path drops the guard, which stops etcd.
        let mut etcd = Self {
            running: Some(running),
            ports,
        };
        etcd.wait_healthy(wait)?;
        Ok(etcd)
    }

    /// etcd's client URL (plain HTTP on 127.0.0.1).
    pub fn client_url(&self) -> String {
        self.ports.client_url()
    }

    /// The etcd process id, for the binary launcher.
    pub fn pid(&self) -> Option<u32> {
        match &self.running {
            Some(Running::Process { child, .. }) => Some(child.id()),
            _ => None,
        }
    }

    /// Stops etcd and reports whether that worked.
    pub fn stop(mut self) -> Result<()> {
        self.stop_inner()
    }

    fn wait_healthy(&mut self, wait: HealthWait) -> Result<()> {
        let start = Instant::now();
        let mut announced = start;
        let url = format!("{}/health", self.client_url());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let mut last;
        loop {
            if let Some(Running::Process { child, log_file }) = &mut self.running
                && let Some(status) = child.try_wait().context("checking on etcd")?
            {
                bail!(
                    "the temporary etcd exited ({status}) before it was healthy; its log ({}): {}",
                    log_file.display(),
                    log_tail(log_file)
                );
            }
            match agent.get(&url).call() {
                Ok(mut r) if r.status() == 200 => {
                    let body = r.body_mut().read_to_string().unwrap_or_default();
                    if body.contains("\"health\":\"true\"") {
                        tracing::info!("the temporary etcd is healthy at {}", self.client_url());
                        return Ok(());
                    }
                    last = format!("HTTP 200 but {body:?}");
                }
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = e.to_string(),
            }
            let waited = start.elapsed();
            if waited >= wait.deadline {
                bail!(
                    "the temporary etcd was not healthy at {url} within {}s (last: {last}); {}",
                    wait.deadline.as_secs(),
                    self.diagnosis()
                );
            }
            if announced.elapsed() >= wait.announce_every {
                tracing::info!(
                    "waiting for the temporary etcd at {url} ({}s of {}s; last: {last})",
                    waited.as_secs(),
                    wait.deadline.as_secs()
                );
                announced = Instant::now();
            }
            shutdown::sleep(wait.every)?;
        }
    }

    fn diagnosis(&self) -> String {
        match &self.running {
            Some(Running::Process { log_file, .. }) => {
                format!("its log ({}): {}", log_file.display(), log_tail(log_file))
            }
            Some(Running::Container(p)) => {
                let mut argv: Vec<OsString> = p.global_args.iter().map(Into::into).collect();
                argv.extend(["logs", "--tail", "20", CONTAINER_NAME].map(OsString::from));
                match podman(argv).run() {
                    Ok(o) => format!(
                        "podman logs {CONTAINER_NAME}: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                    Err(e) => format!("its logs could not be read: {e:#}"),
                }
            }
            None => String::new(),
        }
    }

    fn stop_inner(&mut self) -> Result<()> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        tracing::info!("stopping the temporary etcd");
        match running {
            Running::Container(p) => {
                podman(p.stop_argv())
                    .run()
                    .context("stopping the temporary etcd")?;
            }
            Running::Process { mut child, .. } => stop_child(&mut child)?,
        }
        // Stopped means the unauthenticated port is closed.
        let end = Instant::now() + Duration::from_secs(10);
        while listening(self.ports.client) {
            if Instant::now() >= end {
                bail!(
                    "the temporary etcd was stopped but 127.0.0.1:{} still accepts connections",
                    self.ports.client
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

impl Drop for TempEtcd {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            tracing::error!("{e:#}");
        }
    }
}

fn podman(argv: Vec<OsString>) -> Cmd {
    Cmd::new("podman").args(argv)
}

/// SIGTERM, up to 10 s for a clean exit, then SIGKILL; always reaped.
fn stop_child(child: &mut Child) -> Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if child.try_wait().context("checking on etcd")?.is_some() {
        return Ok(());
    }
    let pid = Pid::from_raw(i32::try_from(child.id()).context("etcd's pid")?);
    if let Err(e) = kill(pid, Signal::SIGTERM) {
        tracing::warn!("sending SIGTERM to etcd ({pid}): {e}");
    }
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if child.try_wait().context("waiting for etcd")?.is_some() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    tracing::warn!("etcd ({pid}) ignored SIGTERM for 10 s; killing it");
    child.kill().context("killing etcd")?;
    child.wait().context("waiting for etcd")?;
    Ok(())
}

/// True if something accepts connections on 127.0.0.1:`port`.
pub fn listening(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

#[cfg(test)]
#[path = "etcd_tests.rs"]
mod tests;
