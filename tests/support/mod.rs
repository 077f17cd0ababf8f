//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary copy of `examples/<name>`.
pub fn copy_example(name: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    copy_tree(&repo().join("examples").join(name), d.path());
    d
}

fn copy_tree(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Runs the sprout binary with `args`.
pub fn sprout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sprout"))
        .args(args)
        .env_remove("JOURNAL_STREAM")
        .env_remove("SPROUT_LOG")
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// True under CI (`CI=true`, as GitHub Actions and most CI systems set
/// it). There the README's test command has installed every tool and
/// fixture, so a test that would skip means a broken setup: it fails.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true" | "1"))
}

/// Says why `test` is skipped (a loud `SKIP:` line), or under CI fails it.
pub fn skip_or_fail(test: &str, why: &str) {
    if in_ci() {
        panic!("{test} would be skipped, but CI=true: {why}; a skip under CI means a broken setup");
    }
    eprintln!("SKIP: {test}: {why}");
}

/// True if `tool` is in PATH; otherwise skips loudly (or fails under CI).
pub fn have(tool: &str, test: &str) -> bool {
    let ok = sprout::host::command::find_program(tool).is_some();
    if !ok {
        skip_or_fail(
            test,
            &format!("{tool} is not installed (run scripts/setup.sh)"),
        );
    }
    ok
}

/// Every file below `dir` with its bytes (directories as `None`).
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel, None);
                walk(root, &e.path(), out);
            } else {
                out.insert(rel, Some(std::fs::read(e.path()).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

/// Extracts the whole ISO with xorriso (Rock Ridge names) into a new dir.
pub fn extract_iso(iso: &Path) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("root");
    let o = Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .args(["-extract", "/"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "xorriso failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// Edits the YAML file `path` through a JSON value.
pub fn edit_yaml(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        yaml_serde::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(path, yaml_serde::to_string(&v).unwrap()).unwrap();
}

/// Runs sprout with `args` on bad input in `dir` and returns the problem
/// lines; asserts exit status 1 and that nothing in `dir` changed.
pub fn problems_of(args: &[&str], dir: &Path) -> Vec<String> {
    let before = snapshot(dir);
    let o = sprout(args);
    assert!(!o.status.success(), "sprout {args:?} accepted bad input");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        before,
        snapshot(dir),
        "sprout {args:?} changed the directory although the input was bad"
    );
    let e = stderr(&o);
    assert!(
        e.contains("found in the input; nothing was written:"),
        "{e}"
    );
    e.lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .map(String::from)
        .collect()
}

/// Like [`have`], but under `CI=true` a missing tool fails the test
/// instead of skipping it.
pub fn require(tool: &str, test: &str) -> bool {
    let ok = have(tool, test);
    if !ok && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {tool} is required under CI=true (run scripts/setup.sh)");
    }
    ok
}
