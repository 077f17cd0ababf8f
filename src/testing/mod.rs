//! Test support shared by unit tests, integration tests and benchmarks:
//! synthetic seed images with the exact upstream layout, and a throwaway
//! local registry. Not part of sprout's interface.
//!
//! Everything here returns errors instead of panicking, like the rest of
//! the library, so it can also be driven from scripts and benchmarks.

pub mod fuzz;
pub mod https_receiver;
pub mod kube_api;
mod kube_api_routes;
mod kube_api_store;
pub mod oci_writer;
pub mod registry;
pub mod seed;
mod seed_members;
pub mod seed_tarballs;
pub mod sysroot;

use crate::host::command::find_program;

/// True when every tool is installed; otherwise prints one loud
/// `SKIP: <test>: …` line (the convention of this repository's tests).
pub fn have_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_program(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    eprintln!(
        "SKIP: {test}: {} not installed (run scripts/setup.sh)",
        missing.join(", ")
    );
    false
}

/// True when running as root; otherwise prints a loud skip line.
pub fn have_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    eprintln!("SKIP: {test}: needs root");
    false
}
