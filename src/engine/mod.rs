//! The step engine both core flows (`ibi`, `post-pivot`) are written on.
//!
//! A flow is a `Plan`: an ordered list of `Step`s, each with a stable id,
//! a one-line description, a `check` that looks at the real machine and a
//! `run`. The `Runner` executes it against a `Root` (`/` in production, a
//! temporary directory in tests): it skips what is already done, records
//! every step in a `Journal` (atomic, fingerprinted, movable) so a killed
//! run resumes, emits `Progress` events (JSON lines, sd_notify, tracing, a
//! bar), and stops at the first failure with the step's id and the error
//! chain. A `RunReport` is written from the `RunSummary` at the end, also
//! after a failure. Nothing here knows about a particular flow.

pub mod clock;
pub mod journal;
pub mod progress;
pub mod report;
pub mod runner;
mod sinks;
pub mod step;
pub mod summary;

pub use journal::{Fingerprint, Journal, Location};
pub use progress::{Event, Progress, ProgressTarget, StepProgress};
pub use report::RunReport;
pub use runner::{Outcome, Plan, RunOptions, RunSummary, Runner, StepRecord};
pub use step::{Cancel, Check, Ctx, Kind, Step, StepId};
