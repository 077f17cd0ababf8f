//! Skips are visible in CI: with `CI=true`, a test that would skip because
//! a tool is missing fails instead (tests/support `have`/`skip_or_fail`).
//! Shown by running this test binary again as a child with PATH emptied.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod support;

use std::process::{Command, Output};

use support::*;

/// Set in the child: which probe to run.
const CHILD: &str = "SPROUT_TEST_CI_CHILD";

/// The child: a test needing xorriso, as the real tests are written.
#[test]
fn child_probe() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    if !have("xorriso", "child_probe") {
        return;
    }
    println!("xorriso found");
}

fn run_child(ci: Option<&str>) -> Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_probe", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        // No tool can be found: the setup is "broken".
        .env("PATH", "/nonexistent");
    match ci {
        Some(v) => cmd.env("CI", v),
        None => cmd.env_remove("CI"),
    };
    cmd.output().unwrap()
}

#[test]
fn a_missing_tool_fails_under_ci_and_skips_elsewhere() {
    let o = run_child(Some("true"));
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(!o.status.success(), "CI=true did not fail:\n{out}");
    assert!(out.contains("would be skipped, but CI=true"), "{out}");
    assert!(out.contains("xorriso is not installed"), "{out}");

    let o = run_child(None);
    let out = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    assert!(
        o.status.success(),
        "without CI a missing tool skips:\n{out}"
    );
    assert!(
        out.contains("SKIP: child_probe: xorriso is not installed"),
        "{out}"
    );
    assert!(
        out.contains("1 passed"),
        "the child test did not run:\n{out}"
    );
}
