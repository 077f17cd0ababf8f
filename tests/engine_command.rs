//! host::command for long jobs: output streamed line by line, a timeout
//! that kills the whole process group, no child outliving a killed
//! sprout, typed JSON output. The children are this test binary run again
//! in a "child mode" (SPROUT_TEST_CMD_CHILD), so no shell is involved.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sprout::host::command::{Cmd, Stream};

const CHILD: &str = "SPROUT_TEST_CMD_CHILD";
const GO: &str = "SPROUT_TEST_GO";
const PIDFILE: &str = "SPROUT_TEST_PIDFILE";

/// This binary, run as the child `mode` (see `child`).
fn me(mode: &str) -> Cmd {
    Cmd::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD, mode)
}

fn wait_for_file(p: &Path, within: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if p.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The child modes.
#[test]
fn child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let pidfile = std::env::var_os(PIDFILE).map(PathBuf::from);
    let write_pid = || {
        if let Some(p) = &pidfile {
            let tmp = p.with_extension("tmp");
            fs::write(&tmp, std::process::id().to_string()).unwrap();
            fs::rename(tmp, p).unwrap();
        }
    };
    match mode.as_str() {
        // A line, then nothing until the parent says it saw it.
        "stream" => {
            println!("first");
            let go = PathBuf::from(std::env::var_os(GO).unwrap());
            assert!(
                wait_for_file(&go, Duration::from_secs(60)),
                "never told to go on"
            );
            println!("second");
            eprintln!("done on stderr");
        }
        "sleeper" => {
            write_pid();
            std::thread::sleep(Duration::from_secs(600));
        }
        // Starts a sleeper (in its own process group) and sleeps too.
        "spawner" => {
            let mut sleeper = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "child", "--nocapture"])
                .env(CHILD, "sleeper")
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_secs(600));
            let _ = sleeper.wait();
        }
        // Plays sprout: runs a sleeper through Cmd and is SIGKILLed.
        "sprout" => {
            let _ = me("sleeper").run_streaming(|_| {});
        }
        other => panic!("unknown child mode {other}"),
    }
}

/// True once `pid` has exited (gone, or a zombie nobody reaped yet: PID 1
/// of a container may not reap).
fn gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn gone_within(pid: u32, within: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn read_pid(p: &Path) -> u32 {
    assert!(
        wait_for_file(p, Duration::from_secs(30)),
        "{} never appeared",
        p.display()
    );
    fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

#[test]
fn output_is_streamed_line_by_line_before_the_child_exits() {
    let d = tempfile::tempdir().unwrap();
    let go = d.path().join("go");
    let mut lines = Vec::new();
    // If output were buffered until exit, "first" would never be seen,
    // "go" never written, and the child killed at the timeout: an error.
    me("stream")
        .env(GO, &go)
        .describe("a streaming child")
        .timeout(Duration::from_secs(60))
        .run_streaming(|l| {
            // The harness may have written "test child ... " before it.
            if l.text.ends_with("first") {
                assert!(!go.exists());
                fs::write(&go, "").unwrap();
            }
            lines.push((l.stream, l.text.to_string()));
        })
        .unwrap();
    let first = lines
        .iter()
        .position(|(_, t)| t.ends_with("first"))
        .unwrap();
    let second = lines.iter().position(|(_, t)| t == "second").unwrap();
    assert!(first < second);
    assert!(
        lines.contains(&(Stream::Stderr, "done on stderr".to_string())),
        "{lines:?}"
    );
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let d = tempfile::tempdir().unwrap();
    let pidfile = d.path().join("sleeper.pid");
    let t0 = Instant::now();
    let e = me("spawner")
        .env(PIDFILE, &pidfile)
        .describe("a child that never ends")
        .timeout(Duration::from_secs(3))
        .run_streaming(|_| {})
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("a child that never ends"), "{msg}");
    assert!(
        msg.contains("did not finish within 3 s and was killed"),
        "{msg}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(300),
        "the timeout did not stop it"
    );
    // The grandchild was in the same group: killed too.
    let sleeper = read_pid(&pidfile);
    assert!(
        gone_within(sleeper, Duration::from_secs(10)),
        "grandchild {sleeper} survived"
    );
}

#[test]
fn no_child_survives_a_killed_sprout() {
    let d = tempfile::tempdir().unwrap();
    let pidfile = d.path().join("sleeper.pid");
    let mut sprout = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture"])
        .env(CHILD, "sprout")
        .env(PIDFILE, &pidfile)
        .spawn()
        .unwrap();
    let sleeper = read_pid(&pidfile);
    assert!(!gone(sleeper));
    // SIGKILL: sprout gets no chance to clean up.
    sprout.kill().unwrap();
    sprout.wait().unwrap();
    assert!(
        gone_within(sleeper, Duration::from_secs(10)),
        "the command {sleeper} outlived the sprout that ran it"
    );
}

#[test]
fn failure_carries_the_stderr_tail_and_json_is_typed() {
    let e = Cmd::new("ls")
        .arg("/nonexistent-sprout-test")
        .describe("listing nothing")
        .run_streaming(|_| {})
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(
        msg.starts_with("listing nothing: ls /nonexistent-sprout-test failed"),
        "{msg}"
    );
    assert!(msg.contains("No such file"), "{msg}");

    #[derive(serde::Deserialize)]
    struct Mounts {
        filesystems: Vec<Fs>,
    }
    #[derive(serde::Deserialize)]
    struct Fs {
        target: String,
    }
    let m: Mounts = Cmd::new("findmnt")
        .args(["--json", "-o", "TARGET", "/"])
        .run_json()
        .unwrap();
    assert_eq!(m.filesystems[0].target, "/");

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Wrong {
        filesystems: Vec<u32>,
    }
    let e = Cmd::new("findmnt")
        .args(["--json", "-o", "TARGET", "/"])
        .run_json::<Wrong>()
        .unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("reading the JSON output of findmnt"), "{msg}");
    assert!(msg.contains("filesystems[0]"), "{msg}");
    let e = Cmd::new("sprout-no-such-tool").run_capture(10).unwrap_err();
    assert!(format!("{e:#}").contains("is not installed"), "{e:#}");
}
