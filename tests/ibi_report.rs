//! `sprout ibi --report-url`: an HTTPS receiver (real TLS, a self-signed CA
//! passed with --report-ca-file, src/testing/https_receiver.rs) gets
//! `{step, state, message}` for every step and a final report, with the
//! token as a bearer token that never shows in the output; a receiver that
//! is down neither fails nor noticeably slows the install; a refused
//! preflight is reported too. Disk tools are the fixture's stand-ins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test crate

mod ibi_fixture;
mod support;

use std::time::Instant;

use ibi_fixture::Machine;
use serde_json::Value;
use sprout::testing::https_receiver::HttpsReceiver;

const TOKEN: &str = "f4ct0ry-t0ken-9a8b";

fn report_args(m: &Machine, url: &str) -> Vec<String> {
    let token = m.dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    vec![
        "--report-url".into(),
        url.into(),
        "--report-token-file".into(),
        token.display().to_string(),
    ]
}

fn run(m: &Machine, args: &[String]) -> std::process::Output {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    m.run(&a)
}

#[test]
fn each_step_and_the_end_are_posted_with_the_token_never_shown() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let rx = HttpsReceiver::start().unwrap();
    let m = Machine::new(64 << 10);
    let ca = m.dir.path().join("ca.pem");
    std::fs::write(&ca, rx.ca_pem()).unwrap();
    let progress = m.dir.path().join("progress.jsonl");
    let mut args = report_args(&m, &rx.url("/factory/ibi"));
    args.extend([
        "--report-ca-file".into(),
        ca.display().to_string(),
        "--progress-json".into(),
        progress.display().to_string(),
    ]);
    let out = run(&m, &args);
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains(TOKEN), "the token was shown: {err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(TOKEN)
            && !std::fs::read_to_string(&progress).unwrap().contains(TOKEN)
    );
    let got = rx.received();
    assert!(!got.is_empty(), "nothing was posted; {err}");
    let reports: Vec<Value> = got
        .iter()
        .map(|r| {
            assert_eq!(r.method, "POST");
            assert_eq!(r.path, "/factory/ibi");
            assert_eq!(
                r.authorization.as_deref(),
                Some(&*format!("Bearer {TOKEN}"))
            );
            serde_json::from_slice(&r.body).unwrap()
        })
        .collect();
    // Every step of the plan: started, then how it ended.
    let plan: Value = serde_json::from_str(
        std::fs::read_to_string(&progress)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    for step in plan["steps"].as_array().unwrap() {
        let states: Vec<&str> = reports
            .iter()
            .filter(|r| &r["step"] == step)
            .map(|r| r["state"].as_str().unwrap())
            .collect();
        assert_eq!(states.len(), 2, "{step}: {states:?}");
        assert_eq!(states[0], "started", "{step}");
        assert!(
            ["ran", "skipped"].contains(&states[1]),
            "{step}: {states:?}"
        );
    }
    let last = reports.last().unwrap();
    assert_eq!(last["final"], true, "{last}");
    assert_eq!(last["step"], "ibi");
    assert_eq!(last["state"], "succeeded");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .starts_with("ibi succeeded in ")
    );
    assert!(reports.iter().all(|r| r["message"].is_string()));

    // A refused preflight is reported as the end.
    let n = got.len();
    m.write_config(|v| v["seedVersion"] = "4.15.0".into());
    let out = run(
        &m,
        &[
            report_args(&m, &rx.url("/factory/ibi")),
            vec!["--report-ca-file".into(), ca.display().to_string()],
        ]
        .concat(),
    );
    assert!(!out.status.success());
    let got = rx.received();
    assert_eq!(got.len(), n + 1, "{got:?}");
    let r: Value = serde_json::from_slice(&got[n].body).unwrap();
    assert_eq!(
        (r["step"].as_str(), r["state"].as_str()),
        (Some("preflight"), Some("failed"))
    );
    assert!(r["message"].as_str().unwrap().contains("4.15.0"), "{r}");
}

#[test]
fn a_receiver_that_is_down_does_not_fail_or_slow_the_install() {
    if !ibi_fixture::have_tools() {
        return;
    }
    // A baseline without reporting, then the same install reporting to a
    // port nothing listens on.
    let base = Machine::new(64 << 10);
    let t0 = Instant::now();
    let out = base.run(&[]);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let plain = t0.elapsed();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = Machine::sharing_seed(&base);
    let t0 = Instant::now();
    let out = run(&m, &report_args(&m, &format!("https://127.0.0.1:{port}/r")));
    let reporting = t0.elapsed();
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    // One warning for the outage, not one per event.
    assert_eq!(
        err.matches("the install goes on without it").count(),
        1,
        "{err}"
    );
    // The final report gets its few attempts (about a second); nothing
    // else waits on the receiver.
    assert!(
        reporting < plain + std::time::Duration::from_secs(8),
        "reporting to a dead receiver took {reporting:?}, without {plain:?}"
    );
}

#[test]
fn the_report_options_are_checked_before_anything() {
    if !ibi_fixture::have_tools() {
        return;
    }
    let m = Machine::new(64 << 10);
    let out = run(&m, &report_args(&m, "http://127.0.0.1:1/r"));
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains("not https://"),
        "{}",
        support::stderr(&out)
    );
    let out = m.run(&["--report-url", "https://127.0.0.1:1/r"]);
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains("--report-token-file"),
        "{}",
        support::stderr(&out)
    );
    assert_eq!(m.calls(), "", "a tool ran");
}
