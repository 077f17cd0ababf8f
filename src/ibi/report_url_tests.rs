//! Unit tests of `ibi::report_url`.
use super::*;
use crate::engine::Outcome;

fn stamped(e: &Event) -> Stamped<'_> {
    Stamped {
        version: 1,
        timestamp: "2026-12-02T03:00:00.000Z".into(),
        event: e,
    }
}

#[test]
fn events_become_step_state_message() {
    let end = Event::StepEnd {
        step: "restore-var".into(),
        outcome: Outcome::Failed,
        duration_ms: 5,
        reason: None,
        error: vec!["step failed".into(), "disk full".into()],
    };
    let r = report_of(&stamped(&end)).unwrap();
    assert_eq!(
        (
            r.step.as_str(),
            r.state.as_str(),
            r.message.as_str(),
            r.last
        ),
        ("restore-var", "failed", "step failed: disk full", false)
    );
    let plan = Event::PlanEnd {
        plan: "ibi".into(),
        outcome: "failed".into(),
        duration_ms: 1500,
        failed_step: Some("restore-var".into()),
    };
    let r = report_of(&stamped(&plan)).unwrap();
    assert!(r.last && r.state == "failed", "{r:?}");
    assert_eq!(r.message, "ibi failed at step restore-var after 1.5 s");
    let bytes = Event::Bytes {
        step: "x".into(),
        done: 1,
        total: None,
    };
    assert!(report_of(&stamped(&bytes)).is_none());
}

#[test]
fn the_url_must_be_https_and_the_token_one_word_never_shown() {
    let d = tempfile::tempdir().unwrap();
    let t = d.path().join("token");
    std::fs::write(&t, "s3cr3t-token\n").unwrap();
    let e = ReportTarget::new("http://f.example/r", &t, None).unwrap_err();
    assert!(format!("{e:#}").contains("not https://"), "{e:#}");
    let ok = ReportTarget::new("https://f.example/r", &t, None).unwrap();
    assert!(!format!("{ok:?}").contains("s3cr3t"), "{ok:?}");
    std::fs::write(&t, "two words\n").unwrap();
    let e = ReportTarget::new("https://f.example/r", &t, None).unwrap_err();
    assert!(
        format!("{e:#}").contains("more than one printable word"),
        "{e:#}"
    );
    assert!(!format!("{e:#}").contains("two words"), "{e:#}");
    std::fs::write(&t, "").unwrap();
    assert!(ReportTarget::new("https://f.example/r", &t, None).is_err());
    std::fs::write(&t, "tok").unwrap();
    let ca = d.path().join("ca.pem");
    std::fs::write(&ca, "not pem").unwrap();
    let e = ReportTarget::new("https://f.example/r", &t, Some(&ca)).unwrap_err();
    assert!(format!("{e:#}").contains("no PEM certificate"), "{e:#}");
}
