//! `sprout post-pivot`: the whole flow on the step engine, its status
//! file, and the terminal state (W5): a failure retrying cannot fix, or
//! the last allowed start, ends with the reason on the console instead of
//! a restart loop.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};

use super::cluster::{Cluster, KubeApplier, LB_EXT_KUBECONFIG, ManifestApplier, NotWired};
use super::settings::Settings;
use super::status::{self, State as RunState, Status, StatusSink};
use super::steps::{self, EtcdChoice, State, Terminal, WD};
use crate::api::diag::InvalidInput;
use crate::engine::{Cancel, Fingerprint, Location, Progress, RunOptions, Runner};
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
    let applier = KubeApplier {
        kubeconfig: PathBuf::from(LB_EXT_KUBECONFIG),
    };
    run_with(opts, Box::new(NotWired), Box::new(applier))
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
    if !opts.dry_run {
        shutdown::install()?;
        bridge_shutdown(&cancel);
        let mut first = Status::new(attempt);
        first.write(&root)?;
        progress = progress.with_sink(StatusSink::new(Root::open(&opts.root)?, first));
    }
    systemd::ready("post-pivot starting");
    let journal = Location::new(Root::open(&opts.root)?, status::JOURNAL_FILE);
    let runner = Runner::new(
        &plan,
        root,
        journal,
        Fingerprint::new().with("job", "post-pivot"),
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
    let mut end = Status::new(attempt);
    end.steps = summary
        .steps
        .iter()
        .map(|s| status::StepStatus {
            id: s.id.clone(),
            outcome: s.outcome.as_str().to_string(),
            duration_ms: s.duration_ms,
        })
        .collect();
    end.current_step = summary.failed_step.clone();
    end.error = summary.error_chain();
    let failed_step = summary.failed_step.clone();
    let outcome = summary.outcome;
    let result = summary.into_result();
    end.state = match (&result, outcome) {
        (Ok(()), "stopped") => RunState::Stopped,
        (Ok(()), _) => RunState::Succeeded,
        (Err(_), _) if shutdown::requested().is_some() => RunState::Interrupted,
        (Err(e), _) if is_terminal(e) || attempt >= state.settings.attempts => RunState::Terminal,
        (Err(_), _) => RunState::Failed,
    };
    if end.state == RunState::Succeeded {
        end.attempt = 0;
        if root.exists(status::ISSUE_FILE)? {
            root.remove(status::ISSUE_FILE)?;
        }
    }
    end.write(&root)?;
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
            remove_written_secrets(&root);
            let text = status::issue_text(failed_step.as_deref(), &end.error);
            root.create_dir_all("etc/issue.d", 0o755)?;
            if let Err(w) = root.write_atomic(status::ISSUE_FILE, text.as_bytes(), 0o644) {
                tracing::warn!("writing the console message: {w:#}");
            }
            systemd::status(&format!("failed for good: {e:#}"));
            Err(e.context(Terminal(format!(
                "post-pivot failed for good (start {attempt} of at most {})",
                state.settings.attempts
            ))))
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
