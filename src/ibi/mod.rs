//! `sprout ibi`, the factory installer (lifecycle-agent.md §2): its
//! configuration file and the seed restore it performs on the target's
//! ostree sysroot. The step list and CLI build on these (docs/ibi-design.md).

pub mod agent;
pub mod config;
pub mod json;
pub mod options;
pub mod precache;
pub mod preflight;
pub mod report_url;
pub mod restore;
pub mod resume;
mod run;
pub mod space;
pub mod steps;

pub use options::Options;
pub use run::{run, timings};
