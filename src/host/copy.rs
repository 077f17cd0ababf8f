//! Copying a large file durably at the lowest cost the filesystem allows.
//!
//! The installation ISO is a ≥ 1 GiB copy of the base ISO with a small
//! area patched. On a filesystem with reflinks (XFS by default, btrfs) a
//! `FICLONE` shares the extents: the copy and its sync cost a few metadata
//! blocks, whatever the size. Elsewhere `copy_file_range` copies inside
//! the kernel (and lets NFS or ext4-on-some-devices offload it), followed
//! by one `fdatasync`. During the copy each chunk's writeback is started
//! as soon as it is copied and the previous chunk's is waited for
//! (`sync_file_range`): the device writes while the kernel copies, at most
//! two chunks are dirty, and the final sync waits for one chunk instead of
//! the whole file (docs/performance.md has the before/after).

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
    let copied = copy_for_sync(src, dst)?;
    rustix::fs::fdatasync(&*dst).context("syncing the copy")?;
    Ok(copied)
}

/// [`durable_copy`] without its final sync, for a caller that syncs `dst`
/// itself after patching it (the output transaction does): one sync
/// instead of two. The data is written back during the copy already.
pub fn copy_for_sync(src: &mut File, dst: &mut File) -> Result<Copied> {
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
    let mut prev = None;
    while done < len {
        let want = usize::try_from(len - done).unwrap_or(CHUNK).min(CHUNK);
        match rustix::fs::copy_file_range(&*src, None, &*dst, None, want) {
            Ok(0) => bail!(
                "the source ended after {done} of {len} bytes; was it changed while being read?"
            ),
            Ok(n) => {
                write_behind(dst, &mut prev, done, n as u64);
                done = done.saturating_add(n as u64);
            }
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

/// Starts the writeback of `[off, off + n)` of `dst`, just copied, and
/// waits for the previous range's. Only a hint for the page cache: errors
/// are ignored, durability comes from the caller's final sync.
fn write_behind(dst: &File, prev: &mut Option<(u64, u64)>, off: u64, n: u64) {
    use nix::libc;
    use std::os::fd::AsRawFd;
    let fd = dst.as_raw_fd();
    let arg = |x: u64| libc::off64_t::try_from(x).unwrap_or(libc::off64_t::MAX);
    // SAFETY: `fd` stays open for both calls (borrowed from `dst`), and
    // sync_file_range only reads its integer arguments.
    unsafe {
        libc::sync_file_range(fd, arg(off), arg(n), libc::SYNC_FILE_RANGE_WRITE);
        if let Some((o, l)) = *prev {
            libc::sync_file_range(
                fd,
                arg(o),
                arg(l),
                libc::SYNC_FILE_RANGE_WAIT_BEFORE
                    | libc::SYNC_FILE_RANGE_WRITE
                    | libc::SYNC_FILE_RANGE_WAIT_AFTER,
            );
        }
    }
    *prev = Some((off, n));
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
