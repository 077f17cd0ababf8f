//! Long-running commands: output streamed line by line (into tracing and a
//! caller's callback) instead of buffered for minutes, a timeout, a stop
//! flag, and no child outliving sprout.
//!
//! Each child gets its own process group (so a timeout or stop kills the
//! whole group: a `podman` and its helpers, a shell script and what it
//! started) and `PR_SET_PDEATHSIG(SIGKILL)` (so the child dies with sprout,
//! even when sprout is SIGKILLed and has no chance to clean up). The death
//! signal reaches the direct child; what *it* started is reached by the
//! group kill on timeout or stop, not by sprout's death.
//!
//! Plain threads, not tokio: one command runs at a time per step, each
//! needs two reader threads and a blocking wait, and a runtime would add
//! a dependency and a colour to every function for no gain. The death
//! signal fires when the spawning *thread* ends; every method here blocks
//! on that thread until the child is reaped, so that is never early.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::process::{Pid, Signal};
use serde::de::DeserializeOwned;

use super::{Cmd, tail};

/// Which output a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of a command's output (without its line ending).
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub stream: Stream,
    pub text: &'a str,
}

/// Longer lines are cut (and the rest comes as further lines).
const MAX_LINE: usize = 8 << 10;
/// The stderr kept for the error message.
const TAIL_LINES: usize = 20;
/// How long to go on reading after the child exited, in case something it
/// left running still holds the pipes.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// How often the timeout and the stop flag are looked at.
const TICK: Duration = Duration::from_millis(50);

/// The programs run through the methods here, for the run report.
static PROGRAMS_RUN: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Every program this process ran with `run_streaming`, `run_capture` or
/// `run_json` so far (as given: a name or a path), sorted.
pub fn programs_run() -> Vec<String> {
    PROGRAMS_RUN
        .lock()
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default()
}

enum Msg {
    Line(Stream, String),
    Captured(Vec<u8>, bool),
    Eof,
}

enum Stopped {
    TimedOut(Duration),
    Cancelled,
}

impl Cmd {
    /// What the command is for, in a few words ("pulling the seed image");
    /// it leads its log lines and error messages.
    pub fn describe(mut self, what: impl Into<String>) -> Self {
        self.description = Some(what.into());
        self
    }

    /// Kills the command (its whole process group) after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Kills the command (its whole process group) once `flag` is set.
    pub fn stop_when(mut self, flag: Arc<AtomicBool>) -> Self {
        self.stop = Some(flag);
        self
    }

    /// Runs the command, streaming stdout and stderr line by line into
    /// tracing and `on_line` as they come; a non-zero exit, a timeout or a
    /// stop is an error carrying the end of stderr.
    pub fn run_streaming(&self, mut on_line: impl FnMut(Line<'_>)) -> Result<()> {
        self.run_long(None, &mut on_line).map(|_| ())
    }

    /// Runs the command, returning its stdout (at most `max` bytes, more is
    /// an error) while its stderr is streamed.
    pub fn run_capture(&self, max: usize) -> Result<Vec<u8>> {
        self.run_long(Some(max), &mut |_| {})
    }

    /// Runs the command and decodes its stdout as JSON into `T`; a decoding
    /// error names the command and the field.
    pub fn run_json<T: DeserializeOwned>(&self) -> Result<T> {
        let out = self.run_capture(64 << 20)?;
        let mut de = serde_json::Deserializer::from_slice(&out);
        serde_path_to_error::deserialize(&mut de)
            .with_context(|| format!("reading the JSON output of {}", self.display()))
    }

    fn what(&self) -> String {
        self.description
            .clone()
            .unwrap_or_else(|| self.program.to_string_lossy().into_owned())
    }

    fn run_long(
        &self,
        capture: Option<usize>,
        on_line: &mut dyn FnMut(Line<'_>),
    ) -> Result<Vec<u8>> {
        let line = self.display();
        let what = self.what();
        let program = self.program.to_string_lossy().into_owned();
        tracing::info!(SPROUT_CMD = %program, "{what}: running {line}");
        if let Ok(mut seen) = PROGRAMS_RUN.lock() {
            seen.insert(program.clone());
        }
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let parent = rustix::process::getpid();
        // SAFETY: the closure runs between fork and exec; it only makes
        // two async-signal-safe system calls (prctl, getppid) and
        // allocates nothing.
        unsafe {
            command.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // The parent may have died before the prctl took effect.
                if rustix::process::getppid() != Some(parent) {
                    return Err(std::io::Error::other("sprout exited"));
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    anyhow::anyhow!(
                        "{program} is not installed or not in PATH; install it and retry"
                    )
                } else {
                    anyhow::Error::new(e)
                }
            })
            .with_context(|| format!("{what}: running {line}"))?;
        if let (Some(mut input), Some(bytes)) = (child.stdin.take(), self.stdin.clone()) {
            // A thread, so a program that reads only part of its input
            // never blocks sprout; a write error shows as its exit status.
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = input.write_all(&bytes);
            });
        }
        let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
        let (tx, rx) = mpsc::channel();
        let mut readers = 0;
        if let Some(out) = child.stdout.take() {
            readers += 1;
            let tx = tx.clone();
            std::thread::spawn(move || match capture {
                Some(max) => read_capped(out, max, &tx),
                None => read_lines(out, Stream::Stdout, &tx),
            });
        }
        if let Some(err) = child.stderr.take() {
            readers += 1;
            let tx = tx.clone();
            std::thread::spawn(move || read_lines(err, Stream::Stderr, &tx));
        }
        drop(tx);

        let started = Instant::now();
        let deadline = self.timeout.and_then(|t| started.checked_add(t));
        let mut tail_lines: VecDeque<String> = VecDeque::new();
        let mut captured = Vec::new();
        let mut overflow = false;
        let mut exited: Option<(ExitStatus, Instant)> = None;
        let mut stopped = None;
        while readers > 0 {
            match rx.recv_timeout(TICK) {
                Ok(Msg::Line(stream, text)) => {
                    match stream {
                        Stream::Stdout => {
                            tracing::info!(SPROUT_CMD = %program, "{program}: {text}")
                        }
                        Stream::Stderr => {
                            tracing::info!(SPROUT_CMD = %program, "{program}: {text}");
                            if tail_lines.len() == TAIL_LINES {
                                tail_lines.pop_front();
                            }
                            tail_lines.push_back(text.clone());
                        }
                    }
                    on_line(Line {
                        stream,
                        text: &text,
                    });
                }
                Ok(Msg::Captured(bytes, over)) => {
                    captured = bytes;
                    overflow = over;
                }
                Ok(Msg::Eof) => readers -= 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => readers = 0,
            }
            match exited {
                None => {
                    if let Some(status) = child.try_wait().context("waiting for the command")? {
                        exited = Some((status, Instant::now()));
                    }
                }
                // Something the command left behind holds its pipes.
                Some((_, at)) if at.elapsed() >= DRAIN_AFTER_EXIT => break,
                Some(_) => {}
            }
            if exited.is_none() {
                if self.stop.as_ref().is_some_and(|f| f.load(Ordering::SeqCst)) {
                    stopped = Some(Stopped::Cancelled);
                } else if let (Some(d), Some(t)) = (deadline, self.timeout)
                    && Instant::now() >= d
                {
                    stopped = Some(Stopped::TimedOut(t));
                }
                if stopped.is_some() {
                    if let Some(group) = group {
                        let _ = rustix::process::kill_process_group(group, Signal::KILL);
                    }
                    break;
                }
            }
        }
        let status = match exited {
            Some((s, _)) => s,
            None => child.wait().context("waiting for the command")?,
        };
        let stderr_tail = tail_lines.into_iter().collect::<Vec<_>>().join("\n");
        let stderr_tail = tail(&stderr_tail, 2000);
        match stopped {
            Some(Stopped::TimedOut(t)) => bail!(
                "{what}: {line} did not finish within {} s and was killed; its last output: {stderr_tail}",
                t.as_secs_f64()
            ),
            Some(Stopped::Cancelled) => {
                bail!("{what}: {line} was stopped because the run was cancelled")
            }
            None => {}
        }
        if !status.success() {
            bail!("{what}: {line} failed ({status}): {stderr_tail}");
        }
        if overflow {
            bail!(
                "{what}: {line} printed more than {} bytes; that is not the output sprout expects",
                capture.unwrap_or(0)
            );
        }
        Ok(captured)
    }
}

/// Sends every line of `r` (cut at `MAX_LINE`; `\r` ends a line too, for
/// progress meters), then `Eof`.
fn read_lines(r: impl Read, stream: Stream, tx: &mpsc::Sender<Msg>) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        let chunk = match r.fill_buf() {
            Ok([]) | Err(_) => break,
            Ok(c) => c,
        };
        let (used, end) = match chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        buf.extend_from_slice(&chunk[..used.min(chunk.len())]);
        r.consume(used);
        if end || buf.len() >= MAX_LINE {
            send_line(&mut buf, stream, tx);
        }
    }
    send_line(&mut buf, stream, tx);
    let _ = tx.send(Msg::Eof);
}

fn send_line(buf: &mut Vec<u8>, stream: Stream, tx: &mpsc::Sender<Msg>) {
    let text = String::from_utf8_lossy(buf);
    let text = text.trim_end_matches(['\n', '\r']);
    if !text.is_empty() {
        let _ = tx.send(Msg::Line(stream, text.to_string()));
    }
    buf.clear();
}

/// Reads all of `r`, keeping at most `max` bytes (and whether there was
/// more); reading on to the end keeps the child from blocking on a full pipe.
fn read_capped(mut r: impl Read, max: usize, tx: &mpsc::Sender<Msg>) {
    let mut kept = Vec::new();
    let mut over = false;
    let mut chunk = [0u8; 64 << 10];
    loop {
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
                over |= n > room;
            }
        }
    }
    let _ = tx.send(Msg::Captured(kept, over));
    let _ = tx.send(Msg::Eof);
}
