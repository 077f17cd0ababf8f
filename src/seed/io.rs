//! Small readers the seed code is built from: a byte range of a file, a
//! reader that hashes what passes through it, and content digests.

use std::fmt;
use std::fs::File;

use crate::host::input::{InputKind, open_input};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::hash::{Sha256, hex, sha256};
use anyhow::{Context, Result, bail};

/// A content digest `sha256:<64 hex>`. Only sha256 is accepted: it is what
/// every registry and tool writes, and a checked hex string is safe to use
/// as a file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    pub fn parse(s: &str) -> Result<Self> {
        match s.strip_prefix("sha256:") {
            Some(hex)
                if hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(Self(s.to_string()))
            }
            _ => {
                bail!("{s:?} is not a sha256 digest (sha256: followed by 64 lower-case hex digits)")
            }
        }
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn of(bytes: &[u8]) -> Self {
        Self(format!("sha256:{}", hex(&sha256(bytes))))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A byte range of a file: a blob inside an OCI archive, or a member of a
/// layer. Reading never goes past the range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

impl Span {
    /// The whole of the file at `path`.
    pub fn whole(path: &Path) -> Result<Self> {
        // A regular file only: a FIFO or device would block or never end.
        let (_, len) = open_input(path, InputKind::SeedBlob)?;
        Ok(Self {
            path: path.to_path_buf(),
            offset: 0,
            len,
        })
    }

    /// The part `offset..offset+len` of this span.
    pub fn sub(&self, offset: u64, len: u64) -> Result<Self> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            bail!(
                "{}: a range of {len} bytes at {offset} goes past the end ({} bytes); the file is truncated",
                self.path.display(),
                self.len
            );
        }
        Ok(Self {
            path: self.path.clone(),
            offset: self
                .offset
                .checked_add(offset)
                .with_context(|| format!("{}: a range past any file size", self.path.display()))?,
            len,
        })
    }

    pub fn open(&self) -> Result<SpanReader> {
        let (mut file, _) = open_input(&self.path, InputKind::SeedBlob)?;
        file.seek(SeekFrom::Start(self.offset))
            .with_context(|| format!("seeking in {}", self.path.display()))?;
        Ok(SpanReader {
            file,
            start: self.offset,
            len: self.len,
            pos: 0,
        })
    }

    /// Reads the whole span, refusing more than `max` bytes.
    pub fn read_all(&self, max: u64) -> Result<Vec<u8>> {
        if self.len > max {
            bail!(
                "{} is {} bytes, more than the {max} bytes expected",
                self.path.display(),
                self.len
            );
        }
        let mut buf = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        self.open()?
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {}", self.path.display()))?;
        Ok(buf)
    }
}

/// Reads a [`Span`]; seeking is relative to the span's start.
#[derive(Debug)]
pub struct SpanReader {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Read for SpanReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let want = usize::try_from(left).map_or(buf.len(), |l| l.min(buf.len()));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SpanReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        }
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        let absolute = self.start.checked_add(target).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "a seek past any file size")
        })?;
        self.file.seek(SeekFrom::Start(absolute))?;
        self.pos = target;
        Ok(target)
    }
}

/// Passes bytes through and hashes them, so a blob's digest is checked in
/// the same pass that reads it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads what is left, then returns the digest of everything read.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let hex = hex(&self.hasher.finish());
        Ok((Digest(format!("sha256:{hex}")), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// How a layer blob is compressed, from its first bytes (media types lie
/// more often than magic numbers do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(span: &Span) -> Result<Self> {
        let mut magic = [0u8; 4];
        let mut r = span.open()?;
        let n = read_up_to(&mut r, &mut magic)
            .with_context(|| format!("reading {}", span.path.display()))?;
        Ok(match &magic[..n] {
            [0x1f, 0x8b, ..] => Self::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd] => Self::Zstd,
            _ => Self::None,
        })
    }
}

/// Fills as much of `buf` as the reader has.
pub fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn digests_are_checked_and_hashed() {
        let d = Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
        assert!(Digest::parse("sha512:00").is_err());
        let (h, n) = HashingReader::new(&b"abc"[..]).finish().unwrap();
        assert_eq!((h, n), (d, 3));
    }

    #[test]
    fn spans_stay_in_range() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"0123456789").unwrap();
        let whole = Span::whole(f.path()).unwrap();
        let s = whole.sub(2, 5).unwrap();
        let mut r = s.open().unwrap();
        let mut out = String::new();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "23456");
        r.seek(SeekFrom::Start(3)).unwrap();
        out.clear();
        r.read_to_string(&mut out).unwrap();
        assert_eq!(out, "56");
        assert!(whole.sub(8, 5).is_err());
        assert_eq!(s.sub(1, 2).unwrap().read_all(10).unwrap(), b"34");
        assert!(s.read_all(2).is_err());
    }
}
