//! The lock of an output directory: one writing run at a time.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;

use anyhow::{Context, Result, bail};
use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags};
use rustix::io::Errno;

use super::{LOCK_FILE, OutputDir, dir_flags, io_error, open_at};
use crate::api::excerpt::excerpt;

/// Longest holder description read back from a lock file.
const HOLDER_MAX_BYTES: u64 = 256;
/// Tries at taking a lock whose file other runs keep removing.
const LOCK_ATTEMPTS: usize = 5;

impl OutputDir {
    /// Takes the directory's lock for `command` (e.g. `create image`), or
    /// fails at once if another run holds it. The lock file names its holder
    /// and is removed when the lock is dropped, so a finished run leaves the
    /// directory as it was.
    pub fn lock(&self, command: &str) -> Result<DirLock> {
        let shown = self.display(LOCK_FILE);
        // A holder removes the file on release; a run that opened it just
        // before that holds a lock on a removed file, so it checks that the
        // name still leads to what it locked, and tries again if not.
        for _ in 0..LOCK_ATTEMPTS {
            let fd = open_at(
                self.fd(),
                OsStr::new(LOCK_FILE),
                OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NONBLOCK,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| self.refusal(OsStr::new(LOCK_FILE), e, "opening the lock file"))?;
            let st = rustix::fs::fstat(&fd)
                .map_err(io_error)
                .with_context(|| format!("inspecting {}", shown.display()))?;
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                bail!(
                    "{} is not a regular file; remove it and run again",
                    shown.display()
                );
            }
            let mut file = File::from(fd);
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(Errno::WOULDBLOCK) => {
                    let mut holder = Vec::new();
                    let _ = (&file).take(HOLDER_MAX_BYTES).read_to_end(&mut holder);
                    let holder = String::from_utf8_lossy(&holder).trim().to_string();
                    let holder = if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        format!("held by {}", excerpt(&holder))
                    };
                    bail!(
                        "another sprout run is writing in {} ({holder}, lock file {}); \
                         wait for it to finish and run again",
                        self.path.display(),
                        shown.display()
                    );
                }
                Err(e) => {
                    return Err(io_error(e))
                        .with_context(|| format!("locking {}", shown.display()));
                }
            }
            let same = rustix::fs::statat(self.fd(), LOCK_FILE, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|now| now.st_dev == st.st_dev && now.st_ino == st.st_ino);
            if !same {
                continue;
            }
            // Who holds it, for the message of a run that finds it taken.
            let line = format!("pid {}: sprout {command}\n", std::process::id());
            let noted = file
                .set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(line.as_bytes()));
            if let Err(e) = noted {
                tracing::debug!("could not note the holder in {}: {e}", shown.display());
            }
            return Ok(DirLock {
                _fd: file.into(),
                file_in: Some(self.clone()),
            });
        }
        bail!(
            "could not take the lock {}: it was replaced {LOCK_ATTEMPTS} times while being taken; \
             is another program removing it?",
            shown.display()
        )
    }

    /// Takes the directory's lock on the directory itself, leaving no lock
    /// file behind (for directories other tools read, such as
    /// `/opt/openshift`); a run finding it taken cannot name the holder.
    pub fn lock_in_place(&self) -> Result<DirLock> {
        let fd = open_at(self.fd(), OsStr::new("."), dir_flags(), Mode::empty())
            .map_err(io_error)
            .with_context(|| format!("opening {}", self.path.display()))?;
        match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DirLock {
                _fd: fd,
                file_in: None,
            }),
            Err(Errno::WOULDBLOCK) => bail!(
                "another sprout run is writing in {}; wait for it to finish and run again",
                self.path.display()
            ),
            Err(e) => Err(io_error(e)).with_context(|| format!("locking {}", self.path.display())),
        }
    }
}

/// The lock of one output directory, released when dropped (or when the
/// process ends, however it ends).
#[derive(Debug)]
pub struct DirLock {
    _fd: OwnedFd,
    /// The directory whose lock file this is (none for a lock in place).
    file_in: Option<OutputDir>,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Removed while still held (the descriptor closes after this).
        if let Some(dir) = &self.file_in {
            let _ = rustix::fs::unlinkat(dir.fd(), LOCK_FILE, AtFlags::empty());
        }
    }
}
