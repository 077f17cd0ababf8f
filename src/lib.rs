//! sprout: image-based installation of single-node OpenShift.
//!
//! The library is the product; `main.rs` only parses the command line and
//! dispatches. Folders are split by concern: `api` holds the wire formats and
//! their validation, `iso` the ISO9660 writer, `create` the workstation
//! builders and `host` everything that touches the machine.

pub mod api;
pub mod cli;
pub mod create;
pub mod engine;
pub mod hash;
pub mod host;
pub mod ibi;
pub mod iso;
pub mod logging;
pub mod postpivot;
pub mod seed;
/// Synthetic seeds and a local registry for tests and benchmarks; not part
/// of sprout's interface, and only built with the `testing` feature (which
/// the tests enable through a dev-dependency on sprout itself), so the
/// product binary carries no test registry and its fixed password.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
