//! A minimal QMP client: one connection per command, JSON lines.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

/// Runs one QMP command and returns its `return` value.
pub fn execute(socket: &Path, command: &str, arguments: Value) -> Result<Value, String> {
    let stream = UnixStream::connect(socket)
        .map_err(|e| format!("connecting to QMP at {}: {e}", socket.display()))?;
    let timeout = Some(Duration::from_secs(15));
    stream
        .set_read_timeout(timeout)
        .map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    // The greeting, then capabilities negotiation.
    read_reply(&mut reader)?;
    send(&mut writer, json!({"execute": "qmp_capabilities"}))?;
    read_reply(&mut reader)?;
    send(
        &mut writer,
        json!({"execute": command, "arguments": arguments}),
    )?;
    let reply = read_reply(&mut reader)?;
    match reply.get("return") {
        Some(v) => Ok(v.clone()),
        None => Err(format!("QMP {command} failed: {reply}")),
    }
}

fn send(w: &mut UnixStream, msg: Value) -> Result<(), String> {
    writeln!(w, "{msg}").map_err(|e| format!("writing to QMP: {e}"))
}

/// The next message that is not an asynchronous event.
fn read_reply(r: &mut BufReader<UnixStream>) -> Result<Value, String> {
    loop {
        let mut line = String::new();
        let n = r
            .read_line(&mut line)
            .map_err(|e| format!("reading from QMP: {e}"))?;
        if n == 0 {
            return Err("QMP closed the connection".into());
        }
        let v: Value =
            serde_json::from_str(&line).map_err(|e| format!("QMP sent {line:?}: {e}"))?;
        if v.get("event").is_none() {
            return Ok(v);
        }
    }
}

/// Puts `iso` into the CD-ROM drive with qdev id `drive`, closing its tray:
/// the guest sees a media change, as when someone inserts a disc.
pub fn insert_cdrom(socket: &Path, drive: &str, iso: &Path) -> Result<(), String> {
    execute(
        socket,
        "blockdev-change-medium",
        json!({
            "id": drive,
            "filename": iso.to_string_lossy(),
            "format": "raw",
            "read-only-mode": "read-only",
        }),
    )
    .map(|_| ())
}
