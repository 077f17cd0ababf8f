//! Runs a plan: each step checked against the machine, run if needed,
//! recorded in the journal, reported as progress; stops at the first
//! failure, or after `--until STEP`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};

use super::clock;
use super::journal::{Fingerprint, Journal, JournalStep, Location, StepState};
use super::progress::{Event, Progress};
use super::step::{Cancel, Check, Ctx, Kind, Step, StepId};
pub use super::summary::{Outcome, RunSummary, StepRecord};
use crate::host::root::Root;

/// An ordered list of steps over the flow state `S`.
pub struct Plan<S> {
    name: String,
    steps: Vec<Box<dyn Step<S>>>,
}

impl<S> Plan<S> {
    /// `name` is the job (`ibi`, `post-pivot`): journals and events say it.
    pub fn new(name: impl Into<String>) -> Self {
        Plan {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    pub fn step(mut self, step: impl Step<S> + 'static) -> Self {
        self.steps.push(Box::new(step));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn steps(&self) -> &[Box<dyn Step<S>>] {
        &self.steps
    }

    /// The id of the step called `id` (for `--until`), or an error listing
    /// the ones there are.
    pub fn find(&self, id: &str) -> Result<StepId> {
        self.steps
            .iter()
            .map(|s| s.id())
            .find(|s| s.as_str() == id)
            .ok_or_else(|| {
                anyhow!(
                    "{} has no step `{id}`; its steps are: {}",
                    self.name,
                    self.steps
                        .iter()
                        .map(|s| s.id().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// "N. id: description" a line, for `--help` and messages.
    pub fn listing(&self) -> String {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{:2}. {}: {}\n", i + 1, s.id(), s.description()))
            .collect()
    }

    fn check_ids(&self) -> Result<()> {
        let mut seen = HashSet::new();
        for s in &self.steps {
            if !seen.insert(s.id()) {
                bail!("{} lists step {} twice", self.name, s.id());
            }
        }
        Ok(())
    }
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop after this step (`--until STEP`); later runs go on from there.
    pub until: Option<String>,
    /// Print what would be done: only checks and `ReadOnly` steps run, and
    /// the journal is read but never written.
    pub dry_run: bool,
    /// Discard a journal of another run instead of refusing (`--restart`).
    pub restart: bool,
    /// No step starts, and no wait goes on, past this instant.
    pub deadline: Option<Instant>,
}

/// Runs one plan against one root.
pub struct Runner<'p, S> {
    plan: &'p Plan<S>,
    root: Root,
    journal_at: Vec<Location>,
    fingerprint: Fingerprint,
    progress: Progress,
    cancel: Cancel,
    options: RunOptions,
}

impl<'p, S> Runner<'p, S> {
    /// `journal_at` is where the journal is written (and first looked for).
    pub fn new(
        plan: &'p Plan<S>,
        root: Root,
        journal_at: Location,
        fingerprint: Fingerprint,
    ) -> Self {
        Runner {
            plan,
            root,
            journal_at: vec![journal_at],
            fingerprint,
            progress: Progress::new(),
            cancel: Cancel::new(),
            options: RunOptions::default(),
        }
    }

    /// Another place an earlier run may have moved its journal to.
    pub fn also_look_in(mut self, at: Location) -> Self {
        self.journal_at.push(at);
        self
    }

    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    pub fn cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// Runs the plan on `state`. Never panics on a step's failure: the
    /// summary carries it (and the report can be written from it).
    pub fn run(&self, state: &mut S) -> RunSummary {
        let t0 = Instant::now();
        let mut summary = RunSummary {
            plan: self.plan.name.clone(),
            started: clock::rfc3339(clock::now_ms()),
            duration_ms: 0,
            steps: Vec::new(),
            outcome: "succeeded",
            failed_step: None,
            error: None,
        };
        self.progress.emit(Event::PlanStart {
            plan: self.plan.name.clone(),
            steps: self.plan.steps.iter().map(|s| s.id().to_string()).collect(),
            dry_run: self.options.dry_run,
        });
        if let Err(e) = self.run_steps(state, &mut summary) {
            summary.outcome = "failed";
            summary.error = Some(e);
        }
        summary.duration_ms = elapsed_ms(t0);
        self.progress.emit(Event::PlanEnd {
            plan: self.plan.name.clone(),
            outcome: summary.outcome.to_string(),
            duration_ms: summary.duration_ms,
            failed_step: summary.failed_step.clone(),
        });
        summary
    }

    fn run_steps(&self, state: &mut S, summary: &mut RunSummary) -> Result<()> {
        self.plan.check_ids()?;
        let until = match &self.options.until {
            Some(id) => Some(self.plan.find(id)?),
            None => None,
        };
        let restart = self.options.restart && !self.options.dry_run;
        // A dry run writes nothing, not even a lock file.
        let open = if self.options.dry_run {
            Journal::open
        } else {
            Journal::open_locked
        };
        let mut journal = open(
            &self.journal_at,
            &self.plan.name,
            &self.fingerprint,
            restart,
        )?;
        let total = self.plan.steps.len();
        for (i, step) in self.plan.steps.iter().enumerate() {
            let id = step.id();
            let ctx = Ctx {
                root: &self.root,
                progress: self.progress.for_step(id),
                cancel: &self.cancel,
                deadline: self.options.deadline,
                dry_run: self.options.dry_run,
                relocate: RefCell::new(None),
            };
            ctx.check_cancelled()
                .with_context(|| format!("stopping before step {id}"))?;
            self.progress.emit(Event::StepStart {
                step: id.to_string(),
                index: i + 1,
                total,
                description: step.description(),
            });
            let started_ms = clock::now_ms();
            let t0 = Instant::now();
            let mut result = if self.options.dry_run {
                self.dry_run_one(step.as_ref(), &ctx, state, &journal)
            } else {
                self.run_one(step.as_ref(), &ctx, state, &mut journal, started_ms)
            };
            // The journal moves (when the step asked, ran or found done)
            // before the step-end event: whoever sees that event may kill
            // the run and must find the journal where the next run looks.
            if result.is_ok()
                && !self.options.dry_run
                && let Some(to) = ctx.relocate.take()
                && let Err(e) = journal.relocate(to)
            {
                result = Err(e.context(format!("moving the journal after step {id}")));
            }
            let duration_ms = elapsed_ms(t0);
            let (outcome, reason, error) = match &result {
                Ok((o, r)) => (*o, r.clone(), Vec::new()),
                Err(e) => (
                    Outcome::Failed,
                    None,
                    e.chain().map(|c| c.to_string()).collect(),
                ),
            };
            if outcome == Outcome::Failed && !self.options.dry_run && step.kind() != Kind::ReadOnly
            {
                let attempts = journal.step(id.as_str()).map_or(1, |s| s.attempts);
                journal.record(JournalStep {
                    id: id.to_string(),
                    state: StepState::Failed,
                    attempts,
                    started: clock::rfc3339(started_ms),
                    ended: Some(clock::rfc3339(clock::now_ms())),
                    duration_ms: Some(duration_ms),
                    reason: None,
                    error: error.clone(),
                });
                if let Err(e) = journal.save() {
                    tracing::warn!("recording the failure of step {id}: {e:#}");
                }
            }
            self.progress.emit(Event::StepEnd {
                step: id.to_string(),
                outcome,
                duration_ms,
                reason: reason.clone(),
                error: error.clone(),
            });
            summary.steps.push(StepRecord {
                id: id.to_string(),
                description: step.description(),
                outcome,
                started: clock::rfc3339(started_ms),
                duration_ms,
                reason,
                error,
            });
            if let Err(e) = result {
                summary.failed_step = Some(id.to_string());
                return Err(e.context(format!("step {id} ({}) failed", step.description())));
            }
            if until == Some(id) && i + 1 < total {
                summary.outcome = "stopped";
                tracing::info!("stopped after step {id} as asked (--until); run again to go on");
                break;
            }
        }
        if self.options.dry_run {
            summary.outcome = "stopped";
        }
        Ok(())
    }

    /// One step for real; the outcome and why it was skipped.
    fn run_one(
        &self,
        step: &dyn Step<S>,
        ctx: &Ctx<'_>,
        state: &mut S,
        journal: &mut Journal,
        started_ms: u64,
    ) -> Result<(Outcome, Option<String>)> {
        let id = step.id();
        if step.kind() == Kind::ReadOnly {
            step.run(ctx, state)?;
            return Ok((Outcome::Ran, None));
        }
        let before = journal.step(id.as_str()).cloned();
        let interrupted = before
            .as_ref()
            .is_some_and(|s| s.state == StepState::Running);
        let mut entry = JournalStep {
            id: id.to_string(),
            state: StepState::Running,
            attempts: before.as_ref().map_or(0, |s| s.attempts),
            started: clock::rfc3339(started_ms),
            ended: None,
            duration_ms: None,
            reason: None,
            error: Vec::new(),
        };
        let failed = before
            .as_ref()
            .is_some_and(|s| s.state == StepState::Failed);
        // A half-done RedoFromClean step (interrupted, or failed midway)
        // may look done; clean it first.
        let redo = (interrupted || failed) && step.kind() == Kind::RedoFromClean;
        if !redo && let Some(reason) = self.already_done(step, ctx, state, before.as_ref())? {
            // A step the journal has as done keeps that entry (when and
            // how it ran); otherwise it is recorded as found done.
            if before.as_ref().is_none_or(|s| s.state != StepState::Done) {
                entry.state = StepState::Skipped;
                entry.ended = Some(clock::rfc3339(clock::now_ms()));
                entry.reason = Some(reason.clone());
                journal.record(entry);
                journal.save()?;
            }
            return Ok((Outcome::Skipped, Some(reason)));
        }
        entry.attempts = entry.attempts.saturating_add(1);
        journal.record(entry.clone());
        journal.save()?;
        let mut reason = None;
        if redo {
            let earlier = if interrupted {
                "an interrupted"
            } else {
                "a failed"
            };
            step.clean(ctx, state)
                .with_context(|| format!("cleaning up what {earlier} run left"))?;
            reason = Some(format!("redone from a clean state after {earlier} run"));
        } else if interrupted {
            reason = Some("resumed after an interrupted run".to_string());
        } else if failed {
            reason = Some("retried after a failed run".to_string());
        }
        step.run(ctx, state)?;
        if let Some(marker) = step.marker() {
            ctx.root
                .write_atomic(&marker, b"", 0o644)
                .with_context(|| format!("creating the marker {}", marker.display()))?;
        }
        entry.state = StepState::Done;
        entry.ended = Some(clock::rfc3339(clock::now_ms()));
        entry.duration_ms = Some(clock::now_ms().saturating_sub(started_ms));
        entry.reason = reason.clone();
        journal.record(entry);
        journal.save()?;
        Ok((Outcome::Ran, reason))
    }

    /// Why the step needs no run, if it does not: its marker, its check,
    /// and only for an unobservable effect, the journal.
    fn already_done(
        &self,
        step: &dyn Step<S>,
        ctx: &Ctx<'_>,
        state: &S,
        before: Option<&JournalStep>,
    ) -> Result<Option<String>> {
        if let Some(marker) = step.marker()
            && ctx.root.exists(&marker)?
        {
            return Ok(Some(format!(
                "already done: {} exists",
                ctx.root.path().join(&marker).display()
            )));
        }
        Ok(
            match step
                .check(ctx, state)
                .context("checking whether it is already done")?
            {
                Check::Done(why) => Some(format!("already done: {why}")),
                Check::NotDone => None,
                Check::Unknown => before
                    .filter(|s| s.state == StepState::Done)
                    .map(|s| format!("done according to the journal ({})", s.started)),
            },
        )
    }

    fn dry_run_one(
        &self,
        step: &dyn Step<S>,
        ctx: &Ctx<'_>,
        state: &mut S,
        journal: &Journal,
    ) -> Result<(Outcome, Option<String>)> {
        if step.kind() == Kind::ReadOnly {
            step.run(ctx, state)?;
            return Ok((Outcome::Ran, Some(step.explain(state))));
        }
        let before = journal.step(step.id().as_str());
        Ok(match self.already_done(step, ctx, state, before)? {
            Some(why) => (Outcome::Skipped, Some(why)),
            None => (Outcome::WouldRun, Some(step.explain(state))),
        })
    }
}

fn elapsed_ms(t0: Instant) -> u64 {
    u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX)
}
