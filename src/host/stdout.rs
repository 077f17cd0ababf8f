//! Writing data to stdout without panicking.
//!
//! `println!` panics (exit 101) when stdout is full (`>/dev/full`) or its
//! reader went away. Data goes through [`write`] instead: a full or failing
//! stdout is an ordinary error, and a closed pipe is [`BrokenPipe`], which
//! the binary ends on quietly, as a coreutils command killed by SIGPIPE does.

use std::io::{self, Write};

/// Stdout's reader went away (`sprout … | head -1`).
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by its reader")]
pub struct BrokenPipe;

/// Writes `text` to stdout and flushes it.
pub fn write(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(BrokenPipe.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

/// Writes `bytes` to stdout, adding a final newline if missing.
pub fn write_bytes_line(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    let r = out
        .write_all(bytes)
        .and_then(|()| {
            if bytes.ends_with(b"\n") {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|()| out.flush());
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(BrokenPipe.into()),
        Err(e) => Err(anyhow::Error::new(e).context("writing to stdout")),
    }
}

/// Writes `bytes` to stdout as they are (an ISO for `--output -`).
pub fn write_raw(bytes: &[u8]) -> anyhow::Result<()> {
    with_stdout(|out| out.write_all(bytes).map_err(anyhow::Error::new))
}

/// Runs `f` on the locked stdout and flushes it; a closed pipe anywhere in
/// its error is [`BrokenPipe`].
pub fn with_stdout<T>(f: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let mut out = io::stdout().lock();
    let r = f(&mut out).and_then(|v| out.flush().map(|()| v).map_err(anyhow::Error::new));
    r.map_err(|e| {
        let pipe = e
            .chain()
            .filter_map(|c| c.downcast_ref::<io::Error>())
            .any(|io| io.kind() == io::ErrorKind::BrokenPipe);
        if pipe {
            BrokenPipe.into()
        } else {
            e.context("writing to stdout")
        }
    })
}

/// Refuses to send binary data to a terminal.
pub fn check_not_terminal() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if io::stdout().is_terminal() {
        anyhow::bail!(
            "--output - writes the ISO to stdout, which is a terminal; redirect it (> file.iso, | curl -T - …) or give --output PATH"
        );
    }
    Ok(())
}
