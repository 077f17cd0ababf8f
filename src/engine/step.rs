//! What a step is: a stable id, a one-line description, a `check` that
//! looks at the real machine, and a `run`.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::journal::Location;
use super::progress::StepProgress;
use crate::host::command::Cmd;
use crate::host::root::Root;

/// A step's stable name: it is written in journals, reports, progress
/// events and `--until`, so it never changes once released.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepId(&'static str);

impl StepId {
    /// `id` is lower-case kebab-case by convention (`pull-seed`).
    pub const fn new(id: &'static str) -> Self {
        StepId(id)
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl fmt::Debug for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StepId({})", self.0)
    }
}

/// What `check` found on the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The step's effect is there; the text says what proves it
    /// ("/mnt/ostree/deploy/rhcos_4.16 exists").
    Done(String),
    /// Not done (or only partly): run it.
    NotDone,
    /// The effect cannot be observed (e.g. a restart of a service). Only
    /// then the journal decides: done there means skip.
    Unknown,
}

/// How a step behaves across an interruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Running it again after an interruption is safe.
    Resumable,
    /// A half-done run must be undone first: when the journal says the
    /// step was interrupted, the runner calls `clean` before `run`.
    RedoFromClean,
    /// Only reads (inputs, facts about the machine) into the flow's state.
    /// Runs on every pass, never skipped, and also under `--dry-run`, so
    /// later steps can say exactly what they would do.
    ReadOnly,
}

/// One step of a plan; `S` is the flow's own state shared by its steps
/// (inputs read by an early step, facts found by a later one).
pub trait Step<S> {
    fn id(&self) -> StepId;

    /// One line, present tense: "pulls the seed image".
    fn description(&self) -> String;

    /// What it would do, for `--dry-run` (commands, paths, sizes); the
    /// description unless the step knows better from `state`.
    fn explain(&self, state: &S) -> String {
        let _ = state;
        self.description()
    }

    fn kind(&self) -> Kind {
        Kind::Resumable
    }

    /// A marker file (relative to the run's root) created empty after the
    /// step succeeded; its presence alone means done. This is how a run
    /// started by another tool using the same markers (upstream's
    /// `/opt/openshift/<name>.done`) is finished by this one, and back.
    fn marker(&self) -> Option<std::path::PathBuf> {
        None
    }

    /// Decides from the machine (never from the journal) whether the
    /// effect is already there. Must not change anything; it may ask for
    /// the journal to move (`Ctx::relocate_journal`), which the runner
    /// does once the step is found done, as after a run.
    fn check(&self, ctx: &Ctx<'_>, state: &S) -> Result<Check>;

    /// Undoes a half-done run (`Kind::RedoFromClean` only).
    fn clean(&self, ctx: &Ctx<'_>, state: &mut S) -> Result<()> {
        let _ = (ctx, state);
        Ok(())
    }

    fn run(&self, ctx: &Ctx<'_>, state: &mut S) -> Result<()>;
}

/// A shared flag that stops a run between steps and its commands at once
/// (set from a signal handler, a deadline or a test).
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The flag itself, for `Cmd::stop_when`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }

    /// Cancels on SIGTERM (`systemctl stop`) and SIGINT (Ctrl-C): the
    /// running command's process group is killed, the step fails as
    /// cancelled, the journal and the report are written. A second signal
    /// exits at once (the children die with sprout, `PR_SET_PDEATHSIG`).
    /// For the binary's job functions; the last call wins.
    pub fn on_termination_signals(&self) -> Result<()> {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
        // Leaked on purpose: the handler may read it until the process ends.
        let flag = Arc::into_raw(self.flag()).cast_mut();
        SIGNAL_CANCEL.store(flag, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_termination_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        for signal in [Signal::SIGTERM, Signal::SIGINT] {
            // SAFETY: the handler only does atomic loads and stores and
            // `_exit`, all async-signal-safe.
            unsafe { sigaction(signal, &action) }
                .with_context(|| format!("installing a handler for {signal}"))?;
        }
        Ok(())
    }
}

/// The flag `on_termination_signals` sets.
static SIGNAL_CANCEL: AtomicPtr<AtomicBool> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn on_termination_signal(signal: nix::libc::c_int) {
    let flag = SIGNAL_CANCEL.load(Ordering::SeqCst);
    if flag.is_null() {
        return;
    }
    // SAFETY: the pointer comes from a leaked Arc that is never freed.
    let flag = unsafe { &*flag };
    if flag.swap(true, Ordering::SeqCst) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { nix::libc::_exit(128 + signal) };
    }
}

/// What a step gets from the runner.
pub struct Ctx<'a> {
    pub(super) root: &'a Root,
    pub(super) progress: StepProgress,
    pub(super) cancel: &'a Cancel,
    pub(super) deadline: Option<Instant>,
    pub(super) dry_run: bool,
    pub(super) relocate: RefCell<Option<Location>>,
}

impl Ctx<'_> {
    /// The root every path of the run is relative to.
    pub fn root(&self) -> &Root {
        self.root
    }

    /// Byte, item and message events of this step.
    pub fn progress(&self) -> &StepProgress {
        &self.progress
    }

    pub fn cancel(&self) -> &Cancel {
        self.cancel
    }

    /// The run's deadline, if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// True under `--dry-run` (only `ReadOnly` steps and checks run then).
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// An error if the run was cancelled or is past its deadline.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            bail!("cancelled");
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            bail!("the run's deadline has passed");
        }
        Ok(())
    }

    /// A command bound to this run: killed when the run is cancelled or
    /// reaches its deadline (a step may set a shorter `timeout`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Cmd {
        let cmd = Cmd::new(program).stop_when(self.cancel.flag());
        match self.deadline {
            Some(d) => cmd.timeout(d.saturating_duration_since(Instant::now())),
            None => cmd,
        }
    }

    /// Moves the journal to `to` once this step has succeeded or was found
    /// done (e.g. from /run to the target disk after the step that mounted
    /// it), before its step-end event.
    pub fn relocate_journal(&self, to: Location) {
        *self.relocate.borrow_mut() = Some(to);
    }

    /// Polls `probe` every `every` until it returns `Some`, at most
    /// `timeout` (and never past the run's deadline or a cancel). Upstream
    /// waits forever in places; a bounded wait says what it waited for.
    pub fn wait_for<T>(
        &self,
        what: &str,
        every: Duration,
        timeout: Duration,
        mut probe: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let mut until = started.checked_add(timeout).unwrap_or(started);
        if let Some(d) = self.deadline {
            until = until.min(d);
        }
        loop {
            if let Some(v) = probe()? {
                return Ok(v);
            }
            self.check_cancelled()?;
            let now = Instant::now();
            if now >= until {
                bail!(
                    "timed out after {:.0} s waiting for {what}",
                    now.duration_since(started).as_secs_f64()
                );
            }
            std::thread::sleep(every.min(until.duration_since(now)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::progress::Progress;

    fn ctx<'a>(root: &'a Root, cancel: &'a Cancel, deadline: Option<Instant>) -> Ctx<'a> {
        Ctx {
            root,
            progress: Progress::new().for_step(StepId::new("t")),
            cancel,
            deadline,
            dry_run: false,
            relocate: RefCell::new(None),
        }
    }

    #[test]
    fn waits_are_bounded_and_stop_on_cancel() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::open(d.path()).unwrap();
        let cancel = Cancel::new();
        let c = ctx(&root, &cancel, None);
        let mut polls = 0;
        let got = c
            .wait_for(
                "the third poll",
                Duration::ZERO,
                Duration::from_secs(60),
                || {
                    polls += 1;
                    Ok((polls == 3).then_some(polls))
                },
            )
            .unwrap();
        assert_eq!(got, 3);
        let e = c
            .wait_for("nothing", Duration::from_millis(1), Duration::ZERO, || {
                Ok(None::<()>)
            })
            .unwrap_err();
        assert!(e.to_string().starts_with("timed out after"), "{e}");
        assert!(e.to_string().ends_with("waiting for nothing"), "{e}");
        cancel.cancel();
        let e = c
            .wait_for("x", Duration::ZERO, Duration::from_secs(60), || {
                Ok(None::<()>)
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "cancelled");
        // A passed deadline bounds the wait and stops commands.
        let cancel = Cancel::new();
        let c = ctx(&root, &cancel, Some(Instant::now()));
        assert!(c.check_cancelled().is_err());
        let e = c
            .command("sleep")
            .arg("30")
            .run_streaming(|_| {})
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("did not finish within 0 s"),
            "{e:#}"
        );
    }

    #[test]
    fn a_cancelled_run_stops_its_command() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::open(d.path()).unwrap();
        let cancel = Cancel::new();
        let c = ctx(&root, &cancel, None);
        let flag = cancel.clone();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            flag.cancel();
        });
        let e = c
            .command("sleep")
            .arg("30")
            .run_streaming(|_| {})
            .unwrap_err();
        stopper.join().unwrap();
        assert!(
            format!("{e:#}").contains("was stopped because the run was cancelled"),
            "{e:#}"
        );
    }
}
