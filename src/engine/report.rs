//! The run report: written at the end of every run, also a failed one —
//! what was asked (secrets redacted), what each step did and how long it
//! took, the error chain, and the versions of sprout and of the tools.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::journal::Fingerprint;
use super::runner::{RunSummary, StepRecord};
use crate::host::command::Cmd;
use crate::host::root::Root;

/// The report format version.
pub const REPORT_VERSION: u32 = 1;

/// What replaces a secret value.
pub const REDACTED: &str = "<redacted>";

/// The report document.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub version: u32,
    pub sprout_version: String,
    pub plan: String,
    pub started: String,
    pub duration_ms: u64,
    /// `succeeded`, `failed` or `stopped`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error: Vec<String>,
    pub fingerprint: Fingerprint,
    /// The effective configuration, secrets redacted.
    pub config: Value,
    pub steps: Vec<StepRecord>,
    /// Program name → first line of its `--version`.
    pub tools: BTreeMap<String, String>,
}

impl RunReport {
    /// The report of `summary` for `config` (redacted here).
    pub fn new(
        summary: &RunSummary,
        config: &impl Serialize,
        fingerprint: &Fingerprint,
    ) -> Result<Self> {
        Ok(RunReport {
            version: REPORT_VERSION,
            sprout_version: env!("CARGO_PKG_VERSION").to_string(),
            plan: summary.plan.clone(),
            started: summary.started.clone(),
            duration_ms: summary.duration_ms,
            outcome: summary.outcome.to_string(),
            failed_step: summary.failed_step.clone(),
            error: summary.error_chain(),
            fingerprint: fingerprint.clone(),
            config: redacted(config)?,
            steps: summary.steps.clone(),
            tools: BTreeMap::new(),
        })
    }

    /// Records the version of `program` (see `tool_version`).
    pub fn with_tool(mut self, program: &str) -> Self {
        let v = tool_version(program).unwrap_or_else(|| "unknown".to_string());
        self.tools.insert(program.to_string(), v);
        self
    }

    /// Records the version of every tool the run started by name through
    /// `Cmd`'s long-job methods (`host::command::programs_run`). Programs
    /// given by path are the run's inputs (ibi's `post.sh`), not tools:
    /// asking them `--version` would run the factory's script a second
    /// time (seen in the VM), so they are recorded as "not asked".
    pub fn with_tools_run(self) -> Self {
        crate::host::command::programs_run()
            .iter()
            .fold(self, |mut r, p| {
                if !r.tools.contains_key(p) {
                    r.tools.insert(p.clone(), version_of_program_run(p));
                }
                r
            })
    }

    /// Records `version` for `program` (a tool with its own way to say it:
    /// `mkfs.xfs -V`, `dmsetup version`).
    pub fn with_tool_version(mut self, program: &str, version: impl Into<String>) -> Self {
        self.tools.insert(program.to_string(), version.into());
        self
    }

    /// Writes the report atomically to `rel` below `root` (0600: the
    /// configuration holds site details even with secrets removed).
    pub fn write(&self, root: &Root, rel: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).context("serialising the run report")?;
        bytes.push(b'\n');
        root.write_atomic(rel, &bytes, 0o600)
            .with_context(|| format!("writing the run report {}", root.path().join(rel).display()))
    }
}

/// `value` as JSON with every secret replaced by `"<redacted>"`: values
/// under a key that names a secret (`pullSecret`, `password`, `sshKey`,
/// `token`, `privateKey`, `kubeconfig`, …, in any case and with `_`/`-`),
/// and any string holding a PEM private key, wherever it is.
pub fn redacted(value: &impl Serialize) -> Result<Value> {
    let mut v = serde_json::to_value(value).context("serialising the configuration")?;
    redact_in_place(&mut v);
    Ok(v)
}

fn redact_in_place(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) && !v.is_null() {
                    *v = Value::String(REDACTED.to_string());
                } else {
                    redact_in_place(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_in_place),
        Value::String(s) if s.contains("PRIVATE KEY-----") => *s = REDACTED.to_string(),
        _ => {}
    }
}

/// Whether a field called `key` holds a secret.
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    const PARTS: [&str; 9] = [
        "secret",
        "password",
        "passwd",
        "token",
        "privatekey",
        "sshkey",
        "kubeconfig",
        "credential",
        "authorizedkeys",
    ];
    PARTS.iter().any(|p| k.contains(p)) || matches!(k.as_str(), "auth" | "auths" | "key")
}

/// The version recorded for a program run by path (never run again).
pub const NOT_ASKED: &str = "not asked (run by path)";

/// What the report records for a program the run started: its version
/// when it is a tool found by name, [`NOT_ASKED`] when it was run by path.
pub fn version_of_program_run(program: &str) -> String {
    if program.contains('/') {
        return NOT_ASKED.to_string();
    }
    tool_version(program).unwrap_or_else(|| "unknown".to_string())
}

/// How `program` is asked for its version: `--version`, except for the
/// tools that print their usage for it (into the journal, as noise).
fn version_args(program: &str) -> &'static [&'static str] {
    match program {
        "mkfs.xfs" | "xfs_growfs" | "xfs_admin" => &["-V"],
        "dmsetup" => &["version"],
        _ => &["--version"],
    }
}

/// The first line the program prints when asked for its version
/// ([`version_args`]), if it runs (10 s at most).
pub fn tool_version(program: &str) -> Option<String> {
    let out = Cmd::new(program)
        .args(version_args(program))
        .describe(format!("asking {program} for its version"))
        .timeout(Duration::from_secs(10))
        .run_capture(64 << 10)
        .ok()?;
    String::from_utf8_lossy(&out)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xfs_tools_and_dmsetup_are_asked_their_own_way() {
        assert_eq!(version_args("mkfs.xfs"), ["-V"]);
        assert_eq!(version_args("xfs_growfs"), ["-V"]);
        assert_eq!(version_args("dmsetup"), ["version"]);
        assert_eq!(version_args("podman"), ["--version"]);
    }

    #[test]
    fn secrets_are_redacted_wherever_they_are() {
        let cfg = serde_json::json!({
            "pullSecret": "{\"auths\":{}}",
            "ssh_key": "ssh-ed25519 AAAA",
            "nested": [{"kubeadmin-password": "x", "name": "keep"}],
            "extra": "-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----",
            "cert": "-----BEGIN CERTIFICATE-----",
            "installationDisk": "/dev/sda",
            "proxy": null,
        });
        let r = redacted(&cfg).unwrap();
        assert_eq!(r["pullSecret"], REDACTED);
        assert_eq!(r["ssh_key"], REDACTED);
        assert_eq!(r["nested"][0]["kubeadmin-password"], REDACTED);
        assert_eq!(r["nested"][0]["name"], "keep");
        assert_eq!(r["extra"], REDACTED);
        assert_eq!(r["cert"], "-----BEGIN CERTIFICATE-----");
        assert_eq!(r["installationDisk"], "/dev/sda");
        assert!(r["proxy"].is_null());
        assert!(!r.to_string().contains("AAAA"));
    }

    #[test]
    fn a_program_run_by_path_is_not_run_again_for_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("post.sh");
        let log = dir.path().join("runs");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"run $*\" >> {}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path = script.display().to_string();
        assert_eq!(version_of_program_run(&path), NOT_ASKED);
        assert!(!log.exists(), "the script was run for its version");
        assert!(version_of_program_run("ls").contains("ls"));
    }

    #[test]
    fn versions_of_real_tools() {
        assert_eq!(tool_version("sprout-no-such-tool"), None);
        assert!(tool_version("ls").is_some_and(|v| v.contains("ls")));
    }
}
