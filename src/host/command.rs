//! Running external programs: argv only, never through a shell.
//!
//! Upstream's `bash -c "<args joined by spaces>"` lets a `$` or a space in a
//! value change the command (LCA weakness W1). Here every argument is passed
//! to `execve` as is, the command line is logged quoted so it can be
//! re-run by hand, and a failure reports the program's own stderr.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

mod long;
pub use long::{Line, Stream, programs_run};

/// A command to run: program, arguments and extra environment; for long
/// jobs also what it is for, a timeout and a stop flag (see `long`).
#[derive(Debug, Clone)]
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    description: Option<String>,
    timeout: Option<std::time::Duration>,
    stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    /// Bytes written to the program's stdin (then closed); none: stdin is
    /// /dev/null.
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        Self {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            description: None,
            timeout: None,
            stop: None,
            stdin: None,
        }
    }

    /// Feeds `bytes` to the program's stdin (e.g. a partition line to
    /// `sfdisk --append`, instead of a shell pipe).
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The command line, quoted for a POSIX shell, for logs and messages.
    pub fn display(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the command with stdin closed and both outputs captured; a
    /// non-zero exit is an error carrying the end of stderr.
    pub fn run(&self) -> Result<Output> {
        let line = self.display();
        tracing::info!("running {line}");
        let output = Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow::anyhow!(
                        "{} is not installed or not in PATH; install it and retry",
                        self.program.to_string_lossy()
                    )
                } else {
                    anyhow::Error::new(e)
                }
            })
            .with_context(|| format!("running {line}"))?;
        if !output.status.success() {
            bail!(
                "{line} failed ({}): {}",
                output.status,
                tail(&String::from_utf8_lossy(&output.stderr), 2000)
            );
        }
        Ok(output)
    }
}

/// The first executable called `name` in `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Quotes `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@,+%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The last `max` bytes of `s` (on a char boundary), trimmed.
fn tail(s: &str, max: usize) -> &str {
    let s = s.trim();
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_quote("docker://q.io/a:b"), "docker://q.io/a:b");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn runs_argv_without_a_shell() {
        let out = Cmd::new("echo").arg("$HOME; true").run().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "$HOME; true\n");
    }

    #[test]
    fn failure_carries_stderr_and_missing_program_says_install() {
        let e = Cmd::new("ls")
            .arg("/nonexistent-sprout-test")
            .run()
            .unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("ls /nonexistent-sprout-test failed"), "{msg}");
        assert!(msg.contains("No such file"), "{msg}");
        let e = Cmd::new("sprout-no-such-tool").run().unwrap_err();
        assert!(format!("{e:#}").contains("is not installed"), "{e:#}");
    }

    #[test]
    fn finds_programs_in_path() {
        assert!(find_program("sh").is_some());
        assert!(find_program("sprout-no-such-tool").is_none());
    }
}
