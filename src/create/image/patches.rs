//! The installation ISO as the base ISO plus a few patched ranges (the
//! Ignition embed area, the kernel-argument areas), so that it can be either
//! copied and patched in place (a file) or streamed to stdout without a
//! copy on disk (`--output -`).

use std::io::{self, Read, Seek, SeekFrom, Write};

use anyhow::{Context, Result, ensure};

/// Writes recorded at their offsets; a `Write + Seek` the embed writers can
/// write into instead of the image itself.
#[derive(Debug, Default)]
pub struct Patches {
    pos: u64,
    items: Vec<(u64, Vec<u8>)>,
}

impl Write for Patches {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.items.last_mut() {
            // Consecutive writes (the zeroed tail of an area) make one patch.
            Some((off, bytes)) if *off + bytes.len() as u64 == self.pos => {
                bytes.extend_from_slice(buf);
            }
            _ => self.items.push((self.pos, buf.to_vec())),
        }
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Patches {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(n) => n,
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?,
            // The image's length is not the recorder's to know.
            SeekFrom::End(_) => return Err(io::Error::from(io::ErrorKind::Unsupported)),
        };
        Ok(self.pos)
    }
}

impl Patches {
    /// Sorted by offset; refuses overlaps and patches past `size`.
    fn sorted(&self, size: u64) -> Result<Vec<&(u64, Vec<u8>)>> {
        let mut items: Vec<&(u64, Vec<u8>)> = self.items.iter().collect();
        items.sort_by_key(|(off, _)| *off);
        let mut end = 0u64;
        for (off, bytes) in &items {
            ensure!(*off >= end, "two patches of the ISO overlap at byte {off}");
            end = off + bytes.len() as u64;
            ensure!(end <= size, "a patch runs past the end of the ISO");
        }
        Ok(items)
    }

    /// Applies every patch to `f` (a copy of the base image of `size` bytes).
    pub fn apply<F: Write + Seek>(&self, f: &mut F, size: u64) -> Result<()> {
        for (off, bytes) in self.sorted(size)? {
            f.seek(SeekFrom::Start(*off))
                .context("seeking to a patched area")?;
            f.write_all(bytes).context("writing a patched area")?;
        }
        Ok(())
    }

    /// Writes the first `size` bytes of `src` with the patches applied to
    /// `out`; returns the SHA-256 of what was written.
    pub fn stream<R: Read, W: Write + ?Sized>(
        &self,
        src: &mut R,
        size: u64,
        out: &mut W,
    ) -> Result<[u8; 32]> {
        let mut sha = crate::hash::Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0u64;
        let items = self.sorted(size)?;
        // (offset where the range ends, the patch replacing it if any)
        let ranges = items
            .iter()
            .flat_map(|(off, bytes)| [(*off, None), (off + bytes.len() as u64, Some(bytes))])
            .chain(std::iter::once((size, None)));
        for (end, patch) in ranges {
            let mut left = end - pos;
            while left > 0 {
                let k = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
                src.read_exact(&mut buf[..k])
                    .context("reading the base ISO (was it changed while being read?)")?;
                if patch.is_none() {
                    sha.update(&buf[..k]);
                    out.write_all(&buf[..k]).context("writing the ISO")?;
                }
                left -= k as u64;
            }
            if let Some(bytes) = patch {
                sha.update(bytes);
                out.write_all(bytes).context("writing the ISO")?;
            }
            pos = end;
        }
        out.flush().context("writing the ISO")?;
        Ok(sha.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_bytes_equal_the_patched_copy() {
        let base: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut p = Patches::default();
        p.seek(SeekFrom::Start(9_000)).unwrap();
        p.write_all(b"tail").unwrap();
        p.seek(SeekFrom::Start(100)).unwrap();
        p.write_all(b"abc").unwrap();
        p.write_all(&[0; 50]).unwrap();
        assert_eq!(p.items.len(), 2, "consecutive writes merge");
        let mut copy = std::io::Cursor::new(base.clone());
        p.apply(&mut copy, base.len() as u64).unwrap();
        let mut streamed = Vec::new();
        let sha = p
            .stream(&mut base.as_slice(), base.len() as u64, &mut streamed)
            .unwrap();
        assert_eq!(streamed, copy.into_inner());
        assert_eq!(sha, crate::hash::sha256(&streamed));
        assert_eq!(&streamed[100..103], b"abc");

        let mut bad = Patches::default();
        bad.write_all(b"xx").unwrap();
        bad.seek(SeekFrom::Start(1)).unwrap();
        bad.write_all(b"y").unwrap();
        assert!(bad.apply(&mut std::io::Cursor::new(base), 10_000).is_err());
    }
}
