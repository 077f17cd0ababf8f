//! `sprout post-pivot`: the whole flow on the step engine, its status
//! file, and the terminal state (W5): a failure retrying cannot fix, or
//! the last allowed start, ends with the reason on the console instead of
//! a restart loop.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use super::apply::ApplyOptions;
use super::cluster::{Cluster, KubeApplier, KubeCluster, LB_EXT_KUBECONFIG, ManifestApplier};
use super::discovery::{self, CONFIG_DIR};
use super::fingerprint;
use super::settings::Settings;
use super::status::{self, State as RunState, Status, StatusSink};
use super::steps::{self, EtcdChoice, State, Terminal, WD};
use crate::api::diag::InvalidInput;
use crate::engine::{Cancel, Location, Progress, RunOptions, Runner};
use crate::host::root::Root;
use crate::host::{etcd, shutdown, systemd};

/// Exit status of a terminal failure; the unit does not restart on it
/// (`RestartPreventExitStatus=3`).
pub const TERMINAL_EXIT: u8 = 3;

/// How to run post-pivot (the command line, or a test).
#[derive(Debug, Clone)]
pub struct Options {
    /// `/` on the node; a node tree in tests and with `--dry-run`.
    pub root: PathBuf,
    /// Stop after this engine step (`--until STEP`).
    pub until: Option<String>,
    /// Discover, validate and print the plan and recert_config.json only.
    pub dry_run: bool,
    /// Overrides the settings file's `config_medium` (`--timeout`).
    pub config_medium_timeout: Option<Duration>,
    pub etcd: EtcdChoice,
    pub etcd_ports: etcd::Ports,
    pub podman_global_args: Vec<String>,
}

impl Options {
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            until: None,
            dry_run: false,
            config_medium_timeout: None,
            etcd: EtcdChoice::Podman {
                global_args: Vec::new(),
                run_args: Vec::new(),
            },
            etcd_ports: etcd::Ports::default(),
            podman_global_args: Vec::new(),
        }
    }
}

/// What a run prints on stdout.
#[derive(Debug)]
pub struct Finished {
    pub stdout: String,
}

/// Whether `e` is one a restart cannot fix.
pub fn is_terminal(e: &anyhow::Error) -> bool {
    // `downcast_ref` sees through anyhow's context layers (a `Terminal`
    // context too); `chain` covers a terminal error as a plain source.
    e.downcast_ref::<Terminal>().is_some()
        || e.downcast_ref::<InvalidInput>().is_some()
        || e.chain()
            .any(|c| c.is::<Terminal>() || c.is::<InvalidInput>())
}

/// Runs the flow with the production cluster client.
pub fn run(opts: &Options) -> Result<Finished> {
    // Below `--root`, like every other file of the flow (`/` on the node).
    let kubeconfig = opts.root.join(LB_EXT_KUBECONFIG.trim_start_matches('/'));
    let applier = KubeApplier {
        kubeconfig: kubeconfig.clone(),
    };
    let cluster = KubeCluster::new(kubeconfig, ApplyOptions::default())?;
    run_with(opts, Box::new(cluster), Box::new(applier))
}

/// Runs the flow with the given cluster side (tests give stand-ins).
pub fn run_with(
    opts: &Options,
    cluster: Box<dyn Cluster>,
    applier: Box<dyn ManifestApplier>,
) -> Result<Finished> {
    let root = Root::open(&opts.root)?;
    let mut settings = Settings::load(&opts.root)?;
    if let Some(t) = opts.config_medium_timeout {
        settings.config_medium = t.as_secs();
    }
    let plan = steps::plan();
    // Before anything waits or changes (the discovery may run first).
    if let Some(until) = &opts.until {
        plan.find(until)?;
    }
    let mut state = State {
        settings,
        etcd: opts.etcd.clone(),
        etcd_ports: opts.etcd_ports,
        podman_global_args: opts.podman_global_args.clone(),
        checked: None,
        reconfig: Default::default(),
        seed: Default::default(),
        recert_config: None,
        cluster,
        applier,
    };
    let cancel = Cancel::new();
    let attempt = match Status::load(&opts.root) {
        Some(s) if s.state == RunState::Terminal && !opts.dry_run => {
            return Err(anyhow!(
                "an earlier start failed for good: {}; see /{}. Remove that file to try again",
                s.error.join(": "),
                status::STATUS_FILE
            ))
            .map_err(|e| e.context(Terminal("post-pivot is in its terminal state".into())));
        }
        // A start that failed or was killed counts; one stopped as asked
        // (`--until`) or by SIGTERM (a shutdown) does not.
        Some(s) if matches!(s.state, RunState::Failed | RunState::Running) => {
            s.attempt.saturating_add(1)
        }
        Some(s) if matches!(s.state, RunState::Stopped | RunState::Interrupted) => s.attempt.max(1),
        _ => 1,
    };
    let mut progress = Progress::standard(None)?;
    let journal = Location::new(Root::open(&opts.root)?, status::JOURNAL_FILE);
    systemd::ready("post-pivot starting");
    if opts.dry_run {
        // Read-only: says why a start would be refused (no discovery here).
        fingerprint::check_journal(&journal, &fingerprint::inputs(&root)?)?;
    } else {
        shutdown::install()?;
        bridge_shutdown(&cancel);
        let mut first = Status::new(attempt);
        first.write(&root)?;
        if let Err((step, e)) = before_journal(opts, &root, &state.settings, &journal, &mut first) {
            let ending = Ending {
                steps: step
                    .iter()
                    .map(|id| status::StepStatus {
                        id: id.clone(),
                        outcome: "failed".into(),
                        duration_ms: 0,
                    })
                    .collect(),
                failed_step: step,
                error: e.chain().map(|c| c.to_string()).collect(),
                stopped: false,
            };
            return conclude(
                opts,
                &root,
                attempt,
                state.settings.attempts,
                ending,
                Err(e),
            );
        }
        progress = progress.with_sink(StatusSink::new(Root::open(&opts.root)?, first));
    }
    let runner = Runner::new(
        &plan,
        root,
        journal,
        fingerprint::inputs(&Root::open(&opts.root)?)?,
    )
    .progress(progress)
    .cancel(cancel)
    .options(RunOptions {
        until: opts.until.clone(),
        dry_run: opts.dry_run,
        restart: false,
        deadline: None,
    });
    let summary = runner.run(&mut state);
    if opts.dry_run {
        let mut out = summary.dry_run_text();
        if let Some(e) = &summary.error {
            return Err(anyhow!("{e:#}")).context(format!("dry run stopped:\n{out}"));
        }
        if let Some(bytes) = &state.recert_config {
            out.push_str(&format!(
                "--- /{WD}/recert_config.json (0600, no trailing newline) ---\n"
            ));
            out.push_str(&String::from_utf8_lossy(bytes));
            out.push('\n');
        }
        return Ok(Finished { stdout: out });
    }
    let root = Root::open(&opts.root)?;
    let ending = Ending {
        steps: summary
            .steps
            .iter()
            .map(|s| status::StepStatus {
                id: s.id.clone(),
                outcome: s.outcome.as_str().to_string(),
                duration_ms: s.duration_ms,
            })
            .collect(),
        failed_step: summary.failed_step.clone(),
        error: summary.error_chain(),
        stopped: summary.outcome == "stopped",
    };
    let result = summary.into_result();
    conclude(
        opts,
        &root,
        attempt,
        state.settings.attempts,
        ending,
        result,
    )
}

/// What happened before the journal opens: the discovery when the
/// configuration is not in place yet (the journal's fingerprint is the
/// configuration's), then the refusal of a journal for other inputs. The
/// error comes with the step it belongs to.
fn before_journal(
    opts: &Options,
    root: &Root,
    settings: &Settings,
    journal: &Location,
    status: &mut Status,
) -> std::result::Result<(), (Option<String>, anyhow::Error)> {
    let config = std::path::Path::new(WD).join(CONFIG_DIR);
    if !root.exists(&config).map_err(|e| (None, e))? {
        status.current_step = Some("discover".into());
        status.write(root).map_err(|e| (None, e))?;
        let medium = discovery::Options {
            root: opts.root.clone(),
            timeout: Settings::secs(settings.config_medium),
            announce_every: Settings::secs(settings.announce_every.max(1)),
        };
        discovery::discover(&medium, discovery::UdevHost::open)
            .map_err(|e| (Some("discover".to_string()), e))?;
        status.current_step = None;
    }
    let now = fingerprint::inputs(root).map_err(|e| (None, e))?;
    fingerprint::check_journal(journal, &now).map_err(|e| (None, e))
}

/// How a start ended, for the status file.
struct Ending {
    steps: Vec<status::StepStatus>,
    failed_step: Option<String>,
    error: Vec<String>,
    /// Stopped as asked (`--until`).
    stopped: bool,
}

/// Writes the final status and, for a terminal failure, the console
/// message; removes the secrets unless the next start needs them.
fn conclude(
    opts: &Options,
    root: &Root,
    attempt: u32,
    attempts: u32,
    ending: Ending,
    result: Result<()>,
) -> Result<Finished> {
    let mut end = Status::new(attempt);
    end.steps = ending.steps;
    end.current_step = ending.failed_step.clone();
    end.error = ending.error;
    end.state = match &result {
        Ok(()) if ending.stopped => RunState::Stopped,
        Ok(()) => RunState::Succeeded,
        Err(_) if shutdown::requested().is_some() => RunState::Interrupted,
        Err(e) if is_terminal(e) || attempt >= attempts => RunState::Terminal,
        Err(_) => RunState::Failed,
    };
    if end.state == RunState::Succeeded {
        end.attempt = 0;
        if root.exists(status::ISSUE_FILE)? {
            root.remove(status::ISSUE_FILE)?;
        }
    }
    end.write(root)?;
    match result {
        Ok(()) => {
            let line = match end.state {
                RunState::Stopped => format!(
                    "stopped after {} as asked",
                    opts.until.as_deref().unwrap_or("")
                ),
                _ => "post-pivot finished successfully".to_string(),
            };
            systemd::status(&line);
            Ok(Finished {
                stdout: format!("{line}\n"),
            })
        }
        Err(e) if end.state == RunState::Terminal => {
            remove_written_secrets(root);
            let text = status::issue_text(ending.failed_step.as_deref(), &end.error);
            root.create_dir_all("etc/issue.d", 0o755)?;
            if let Err(w) = root.write_atomic(status::ISSUE_FILE, text.as_bytes(), 0o644) {
                tracing::warn!("writing the console message: {w:#}");
            }
            systemd::status(&format!("failed for good: {e:#}"));
            Err(e.context(Terminal(format!(
                "post-pivot failed for good (start {attempt} of at most {attempts})"
            ))))
        }
        Err(e) if end.state == RunState::Interrupted => {
            // A shutdown: the next boot resumes, and the recert step
            // writes its configuration again, so nothing secret is left
            // for the time the node is down (W14).
            remove_written_secrets(root);
            systemd::status(&format!("interrupted, the next start resumes: {e:#}"));
            Err(e)
        }
        Err(e) => {
            systemd::status(&format!("failed (start {attempt}), will retry: {e:#}"));
            Err(e)
        }
    }
}

/// W14: the secrets sprout wrote from the configuration go after a
/// terminal failure (the configuration copy stays for `--dry-run`).
fn remove_written_secrets(root: &Root) {
    for rel in ["recert_config.json", "kubeconfig-crypto", "nmstate.yaml"] {
        let path = PathBuf::from(WD).join(rel);
        if let Err(e) = root.remove_all(&path) {
            tracing::warn!("removing /{}: {e:#}", path.display());
        }
    }
}

/// `host::shutdown` owns SIGTERM (recert and etcd poll it); the engine's
/// commands stop on its `Cancel`: one thread passes the first to the second.
fn bridge_shutdown(cancel: &Cancel) {
    let cancel = cancel.clone();
    std::thread::spawn(move || {
        loop {
            if shutdown::requested().is_some() {
                cancel.cancel();
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}
