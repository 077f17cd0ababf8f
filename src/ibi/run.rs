//! `sprout ibi`: preflight, then the plan on the step engine, then the
//! report (also after a failure) and the optional power-off.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use super::json::Document as JsonDocument;
use super::options::{Options, RUN_JOURNAL, TARGET_JOURNAL, TARGET_REPORT};
use super::report_url::{FINAL_WAIT, Report, Reporter};
use super::steps::{IbiState, plan};
use super::{preflight, resume};
use crate::engine::{
    Cancel, Fingerprint, Location, Progress, RunOptions, RunReport, RunSummary, Runner,
};
use crate::host::root::Root;

/// Runs the whole flow (or, with `dry_run`, prints its plan).
pub fn run(opts: &Options) -> Result<()> {
    // The receiver hears about a refused preflight too; never in a dry run.
    let reporter = match (&opts.report, opts.dry_run) {
        (Some(t), false) => Some(Reporter::start(t)?),
        _ => None,
    };
    let mut printed = false;
    let result = run_reported(opts, reporter.as_ref(), &mut printed);
    if opts.json
        && !printed
        && let Err(e) = &result
    {
        // Stopped before the run's own document: the refusal's.
        if let Err(w) = JsonDocument::refused(e).print() {
            tracing::warn!("{w:#}");
        }
    }
    if let Some(r) = &reporter {
        if let Err(e) = &result
            && !r.sent_final()
        {
            r.send(Report::now("preflight", "failed", format!("{e:#}"), true));
        }
        r.finish(FINAL_WAIT);
    }
    result
}

/// `printed`: set once the `--json` document is out.
fn run_reported(
    opts: &Options,
    reporter: Option<&Arc<Reporter>>,
    printed: &mut bool,
) -> Result<()> {
    let checked = preflight::run(opts)?;
    tracing::info!("preflight passed: {}", checked.estimate);
    let config_bytes = std::fs::read(&opts.config_file)
        .with_context(|| format!("reading {}", opts.config_file.display()))?;
    let fingerprint = Fingerprint::new()
        .with_sha256("config", &config_bytes)
        .with("seed", checked.seed_digest.clone())
        .with(
            "disk",
            format!("{} {} bytes", checked.disk.name, checked.disk.size_bytes),
        );
    let live = Root::open(&opts.root)?;
    let config = checked.loaded.config.clone();
    let mut state = IbiState {
        checked,
        opts: opts.clone(),
        power_off: false,
    };
    let plan = plan();
    if let Some(u) = &opts.until {
        plan.find(u).context("--until")?;
    }
    // Before any step (the first wipes the disk): an earlier run of this
    // install, whose journal /run lost in a reboot, is continued.
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let earlier = resume::find_earlier(&state, &fingerprint, opts.restart, scratch.path())?;
    let mut progress = Progress::standard(opts.progress_json.as_ref())?;
    if let Some(r) = reporter {
        progress = progress.with_sink(r.sink());
    }
    let mut runner = Runner::new(
        &plan,
        live.clone(),
        Location::new(live.clone(), RUN_JOURNAL),
        fingerprint.clone(),
    )
    .progress(progress)
    .options(RunOptions {
        dry_run: opts.dry_run,
        restart: opts.restart,
        until: opts.until.clone(),
        ..RunOptions::default()
    });
    // One signal handler for the whole process: the engine's (SIGTERM and
    // SIGINT cancel the run; the report is still written).
    let cancel = Cancel::new();
    if !opts.dry_run {
        cancel.on_termination_signals()?;
    }
    runner = runner.cancel(cancel);
    let target = state.target();
    if let resume::Earlier::Resume(at) = earlier {
        runner = runner.also_look_in(at);
    }
    let summary = runner.run(&mut state);
    if opts.dry_run {
        print!("{}", dry_run_text(&state, &summary));
        return summary.into_result();
    }
    eprint!("{}", timings(&summary));
    match RunReport::new(&summary, &config, &fingerprint) {
        Ok(report) => {
            let report = report.with_tools_run();
            let doc = JsonDocument::of_run(&report, summary.error.as_ref());
            if let Err(e) = write_report(&doc, &target) {
                tracing::warn!("{e:#}");
            }
            if opts.json {
                // Before a power-off: the caller reads it first.
                doc.print()?;
                *printed = true;
            }
        }
        Err(e) => tracing::warn!("making the run report: {e:#}"),
    }
    let power_off = state.power_off && summary.error.is_none();
    summary.into_result()?;
    if power_off {
        if let Some(r) = reporter {
            // The last word must leave before the machine goes down.
            r.finish(FINAL_WAIT);
        }
        crate::host::command::Cmd::new("systemctl")
            .arg("poweroff")
            .describe("powering off")
            .run_streaming(|_| {})?;
    }
    Ok(())
}

/// The report on the target disk, once it is mounted.
fn write_report(doc: &JsonDocument<'_>, target: &Path) -> Result<()> {
    if !target.join(TARGET_JOURNAL).exists() {
        tracing::info!(
            "the target disk is not mounted; the report stays in the journal under /run"
        );
        return Ok(());
    }
    doc.write(&Root::open(target)?, Path::new(TARGET_REPORT))
}

/// The end-of-run table: each step, its outcome and its time.
pub fn timings(summary: &RunSummary) -> String {
    let mut out = format!(
        "\nsprout ibi: {} in {:.1} s\n",
        summary.outcome,
        ms(summary.duration_ms)
    );
    for s in &summary.steps {
        let _ = writeln!(
            out,
            "  {:<28} {:<10} {:>9.1} s",
            s.id,
            s.outcome.as_str(),
            ms(s.duration_ms)
        );
    }
    if let Some(f) = &summary.failed_step {
        let _ = writeln!(out, "failed at {f}: {}", summary.error_chain().join(": "));
    }
    out
}

fn ms(v: u64) -> f64 {
    // Display only; precision loss above 2^53 ms is irrelevant.
    #[allow(clippy::cast_precision_loss)]
    let f = v as f64;
    f / 1000.0
}

/// The `--dry-run` text: what the preflight found, then each step with
/// what it would do. No timings, so it can be compared with a reviewed file.
pub fn dry_run_text(state: &IbiState, summary: &RunSummary) -> String {
    let c = &state.checked;
    let mut out = String::new();
    let _ = writeln!(out, "sprout ibi --dry-run: nothing is changed");
    let _ = writeln!(
        out,
        "disk: {} ({} bytes, {}-byte sectors)",
        c.disk.dev_path, c.disk.size_bytes, c.disk.sector_size
    );
    let commit = match c.seed.remote() {
        Some(r) => format!("manifest {}; its files are read after the pull", r.digest),
        None => format!("commit {}", c.seed.booted_deployment().checksum),
    };
    let _ = writeln!(
        out,
        "seed: {} ({commit}, stateroot {})",
        c.seed_ref,
        c.stateroot.as_str()
    );
    let _ = writeln!(
        out,
        "extra partition: {} start={} ({} bytes)",
        c.loaded.config.extra_partition_label,
        c.extra_start.as_deref().unwrap_or("-"),
        c.extra_bytes.unwrap_or(0)
    );
    let _ = writeln!(out, "space: {}", c.space);
    let _ = writeln!(out, "target: {}", state.target().display());
    out.push_str(&summary.dry_run_text());
    out
}
