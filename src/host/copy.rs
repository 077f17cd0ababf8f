//! Copying a large file durably at the lowest cost the filesystem allows.
//!
//! The installation ISO is a ≥ 1 GiB copy of the base ISO with a small
//! area patched. On a filesystem with reflinks (XFS by default, btrfs) a
//! `FICLONE` shares the extents: the copy and its sync cost a few metadata
//! blocks, whatever the size. Elsewhere `copy_file_range` copies inside
//! the kernel (and lets NFS or ext4-on-some-devices offload it), followed
//! by one `fdatasync`. `sync_file_range` batching during the copy was
//! measured against the single sync and bought nothing measurable here
//! (docs/performance.md), so the simpler single sync is kept.

use std::fs::File;
use std::io::{Seek, SeekFrom};

use anyhow::{Context, Result, bail};
use rustix::io::Errno;

/// How the bytes got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// The destination shares the source's extents.
    Reflink,
    /// The kernel copied the bytes (`copy_file_range`).
    KernelCopy,
    /// Read and written through user space (no `copy_file_range`, e.g.
    /// across filesystems on old kernels).
    ReadWrite,
}

/// What [`durable_copy`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub bytes: u64,
    pub method: CopyMethod,
}

/// Chunk of one `copy_file_range` call: large enough that the syscall
/// count is negligible, small enough that a signal is handled promptly.
const CHUNK: usize = 64 << 20;

/// Copies all of `src` (from its start) over `dst` (which must be empty,
/// opened for writing) and makes the data durable before returning. Both
/// files' offsets end at the end of the copy, so the caller can go on
/// patching `dst` in place.
pub fn durable_copy(src: &mut File, dst: &mut File) -> Result<Copied> {
    let len = src.metadata().context("reading the source size")?.len();
    let method = match rustix::fs::ioctl_ficlone(&*dst, &*src) {
        Ok(()) => CopyMethod::Reflink,
        // Not a reflink filesystem, or not the same one: copy the bytes.
        Err(e) if reflink_unsupported(e) => kernel_copy(src, dst, len)?,
        Err(e) => return Err(e).context("cloning the file (FICLONE)"),
    };
    src.seek(SeekFrom::Start(len))
        .context("seeking the source")?;
    dst.seek(SeekFrom::Start(len)).context("seeking the copy")?;
    rustix::fs::fdatasync(&*dst).context("syncing the copy")?;
    Ok(Copied { bytes: len, method })
}

fn reflink_unsupported(e: Errno) -> bool {
    [
        Errno::OPNOTSUPP,
        Errno::XDEV,
        Errno::INVAL,
        Errno::NOSYS,
        Errno::NOTTY,
        Errno::BADF,
        Errno::PERM,
    ]
    .contains(&e)
}

fn kernel_copy(src: &mut File, dst: &mut File, len: u64) -> Result<CopyMethod> {
    src.seek(SeekFrom::Start(0))
        .context("rewinding the source")?;
    let mut done = 0u64;
    while done < len {
        let want = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
        match rustix::fs::copy_file_range(&*src, None, &*dst, None, want) {
            Ok(0) => bail!(
                "the source ended after {done} of {len} bytes; was it changed while being read?"
            ),
            Ok(n) => done = done.saturating_add(n as u64),
            Err(Errno::INTR) => {}
            // Nothing copied yet and the kernel can't: copy through user space.
            Err(Errno::XDEV | Errno::NOSYS | Errno::OPNOTSUPP | Errno::INVAL) if done == 0 => {
                src.seek(SeekFrom::Start(0))
                    .context("rewinding the source")?;
                let n = std::io::copy(src, dst).context("copying the file")?;
                if n != len {
                    bail!(
                        "copied {n} bytes, expected {len}; was the source changed while being read?"
                    );
                }
                return Ok(CopyMethod::ReadWrite);
            }
            Err(e) => return Err(e).context("copying the file (copy_file_range)"),
        }
    }
    Ok(CopyMethod::KernelCopy)
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
