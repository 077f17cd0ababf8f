//! Running recert (spec §3.5 steps 1, 4, 6) and what its summary says.
//!
//! The container invocation is upstream's, argument for argument, so the
//! recert image sees the same mounts and finds its configuration through
//! `RECERT_CONFIG`. Unlike upstream it runs with a deadline and observes
//! SIGTERM (see [`crate::host::shutdown`]); either stops the container.
//!
//! The summary (`/var/tmp/recert-summary.yaml`) is written by recert on
//! success and on failure (not when it rejects its configuration outright).
//! Upstream refuses to go on whenever the file exists, which also traps a
//! node whose recert *succeeded* but whose `recert.done` marker was never
//! written (W3). Here the summary's `error` decides: null means recert is
//! done and is not run again; an error stops the run with recert's reason and
//! what to do; the file is always kept for the record.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::recert_config::{FILE_NAME, NODE_WORKING_DIR, SUMMARY_FILE};
use crate::api::install_config::Proxy;
use crate::host::command::Cmd;
use crate::host::etcd::AUTH_FILE;
use crate::host::shutdown;

/// The container's name (`--replace`d by a rerun).
pub const CONTAINER_NAME: &str = "recert";
/// How long recert may take: typically 30 s, 2 min seen in the worst case.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(20 * 60);

/// One recert container run.
#[derive(Debug, Clone)]
pub struct RecertRun {
    /// `podman` (tests give a stand-in).
    pub program: PathBuf,
    /// `seed.recert_image_pull_spec`.
    pub image: String,
    /// Options before `run` (`--runtime runc` on the build machine).
    pub global_args: Vec<String>,
    pub auth_file: PathBuf,
}

impl RecertRun {
    pub fn new(image: String) -> Self {
        Self {
            program: "podman".into(),
            image,
            global_args: Vec::new(),
            auth_file: AUTH_FILE.into(),
        }
    }

    /// `podman` arguments of upstream's `RunRecert` with post-pivot's extra
    /// working-directory mount.
    pub fn argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = self.global_args.iter().map(Into::into).collect();
        let config = format!("RECERT_CONFIG={NODE_WORKING_DIR}/{FILE_NAME}");
        let wd = format!("{NODE_WORKING_DIR}:{NODE_WORKING_DIR}");
        v.extend(
            [
                "run",
                "--rm",
                "--network=host",
                "--privileged",
                "--replace",
                "--name",
                CONTAINER_NAME,
                "-v",
                "/etc:/host-etc",
                "-v",
                "/etc/ssh:/ssh",
                "-v",
                "/etc/kubernetes:/kubernetes",
                "-v",
                "/var/lib/kubelet:/kubelet",
                "-v",
                "/var/tmp:/var/tmp",
                "-v",
                "/etc/machine-config-daemon:/machine-config-daemon",
                "-v",
                "/etc/pki:/pki",
                "-e",
                &config,
                "--authfile",
            ]
            .map(OsString::from),
        );
        v.push(self.auth_file.clone().into());
        v.extend(["-v", &wd, &self.image].map(OsString::from));
        v
    }

    fn stop_argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = self.global_args.iter().map(Into::into).collect();
        v.extend(["stop", "--ignore", "--time", "10", CONTAINER_NAME].map(OsString::from));
        v
    }

    /// `podman image exists <image>`: whether the image must be pulled.
    pub fn image_exists(&self) -> Cmd {
        Cmd::new(&self.program)
            .args(&self.global_args)
            .args(["image", "exists", &self.image])
    }

    /// `podman pull`, through the proxy when there is one: upstream's
    /// `HTTP_PROXY=… podman pull` as environment, not a shell line (W1).
    pub fn pull(&self, proxy: Option<&Proxy>) -> Cmd {
        let mut cmd = Cmd::new(&self.program)
            .args(&self.global_args)
            .args(["pull", "--authfile"])
            .arg(&self.auth_file)
            .arg(&self.image);
        for (k, v) in pull_env(proxy) {
            cmd = cmd.env(k, v);
        }
        cmd
    }

    /// Runs recert in the foreground (its output goes to ours, so the
    /// journal), up to `deadline`; SIGTERM and the deadline stop the
    /// container. `summary` is read to say why it failed.
    pub fn run(&self, deadline: Duration, summary: &Path) -> Result<()> {
        let line = Cmd::new(&self.program).args(self.argv()).display();
        tracing::info!("running {line}");
        let mut child = Command::new(&self.program)
            .args(self.argv())
            .spawn()
            .with_context(|| format!("starting {line}"))?;
        let start = Instant::now();
        let status: ExitStatus = loop {
            if let Some(status) = child.try_wait().context("waiting for recert")? {
                break status;
            }
            let stop_reason = if let Err(e) = shutdown::check() {
                Some(anyhow::Error::new(e))
            } else if start.elapsed() >= deadline {
                Some(anyhow::anyhow!(
                    "recert did not finish within {}s; stopped it",
                    deadline.as_secs()
                ))
            } else {
                None
            };
            if let Some(reason) = stop_reason {
                if let Err(e) = Cmd::new(&self.program).args(self.stop_argv()).run() {
                    tracing::error!("stopping the recert container: {e:#}");
                }
                let _ = child.wait();
                return Err(reason);
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        if status.success() {
            return Ok(());
        }
        let why = match previous_run(summary) {
            Ok(PreviousRun::Failed { error }) => format!(": {}", first_line(&error)),
            _ => String::new(),
        };
        bail!(
            "recert failed ({status}){why}; its summary is kept at {}",
            summary.display()
        )
    }
}

/// The environment of the image pull: the proxy, as upstream passes it.
pub fn pull_env(proxy: Option<&Proxy>) -> Vec<(&'static str, String)> {
    proxy.map_or_else(Vec::new, |p| {
        vec![
            ("HTTP_PROXY", p.http_proxy.clone()),
            ("HTTPS_PROXY", p.https_proxy.clone()),
            ("NO_PROXY", p.no_proxy.clone()),
        ]
    })
}

/// What an earlier recert left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviousRun {
    /// No summary: recert did not run (or rejected its configuration).
    None,
    /// recert finished; the cluster is already recertified.
    Succeeded,
    /// recert ran and failed with this error.
    Failed { error: String },
    /// A summary that cannot be read (e.g. cut short by a reset).
    Unreadable { reason: String },
}

#[derive(Debug, Deserialize)]
struct Summary {
    #[serde(default)]
    error: Option<String>,
}

/// Reads the summary at `path` (the node's `/var/tmp/recert-summary.yaml`).
pub fn previous_run(path: &Path) -> Result<PreviousRun> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PreviousRun::None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(match yaml_serde::from_str::<Summary>(&text) {
        Ok(Summary { error: None }) => PreviousRun::Succeeded,
        Ok(Summary { error: Some(error) }) => PreviousRun::Failed { error },
        Err(e) => PreviousRun::Unreadable {
            reason: e.to_string(),
        },
    })
}

/// What the recert step does given the summary: `Ok(true)` run recert,
/// `Ok(false)` it already succeeded (go on with what follows it), `Err` a
/// terminal failure saying what happened and what to do.
pub fn should_run(previous: &PreviousRun, path: &Path) -> Result<bool> {
    let what_to_do = format!(
        "recert may have changed part of the cluster, so sprout does not run it again by itself. \
         Look at {p} (recert's log and error), fix the cause, then move the file aside \
         (mv {p} {p}.failed) and restart installation-configuration.service to run recert again",
        p = path.display()
    );
    match previous {
        PreviousRun::None => Ok(true),
        PreviousRun::Succeeded => {
            tracing::info!(
                "{} says recert already succeeded; not running it again",
                path.display()
            );
            Ok(false)
        }
        PreviousRun::Failed { error } => bail!(
            "recert failed on an earlier attempt: {}. {what_to_do}",
            first_line(error)
        ),
        PreviousRun::Unreadable { reason } => bail!(
            "an earlier recert left a summary that cannot be read ({reason}); it was probably \
             interrupted. {what_to_do}"
        ),
    }
}

/// The node path of the summary under `root`.
pub fn summary_path(root: &Path) -> PathBuf {
    root.join(SUMMARY_FILE.trim_start_matches('/'))
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

#[cfg(test)]
#[path = "recert_run_tests.rs"]
mod tests;
