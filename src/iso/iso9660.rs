//! A minimal ISO9660 reader: finds a file's extent by its primary-volume
//! name. This is all the embed-area code needs (file sizes never change, so
//! no directory is ever rewritten), and it reads only the few sectors on the
//! path instead of the whole image.

use std::io::{Read, Seek, SeekFrom};

use anyhow::{Context, Result, bail};

pub const SECTOR: u64 = 2048;
const DESCRIPTORS_START: u64 = 16 * SECTOR;
const MAX_DESCRIPTORS: u64 = 64;

/// The place and size of a file's data in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    /// Byte offset of the data in the image.
    pub offset: u64,
    pub length: u64,
}

/// A path that is not in the image; callers treat it as "older layout".
#[derive(Debug, thiserror::Error)]
#[error("{0} is not in the ISO image")]
pub struct NotFound(pub String);

/// Directories bigger than this are not ISO9660 as any tool writes it.
const MAX_DIRECTORY: u64 = 64 * 1024 * 1024;
/// Files read whole (igninfo.json, kargs.json) are a few hundred bytes.
const MAX_SMALL_FILE: u64 = 16 * 1024 * 1024;

/// An opened image: the primary volume's root directory.
#[derive(Debug)]
pub struct Iso9660 {
    root: Extent,
    volume_id: String,
    /// Bytes in the image; every extent is checked against it.
    size: u64,
}

#[derive(Debug)]
struct Record {
    name: String,
    extent: Extent,
    is_dir: bool,
}

impl Iso9660 {
    pub fn open<F: Read + Seek>(f: &mut F) -> Result<Self> {
        let size = f.seek(SeekFrom::End(0)).context("reading the image size")?;
        // The first volume descriptor ends at 34 KiB.
        let first_end = DESCRIPTORS_START + SECTOR;
        if size < first_end {
            bail!(
                "not an ISO9660 image: it is {size} bytes{}, and an ISO image has at least {first_end} \
                 (its volume descriptors start at byte {DESCRIPTORS_START}); use a CoreOS live ISO",
                if size == 0 { " (empty)" } else { "" }
            );
        }
        for i in 0..MAX_DESCRIPTORS {
            if DESCRIPTORS_START + (i + 1) * SECTOR > size {
                bail!(
                    "no primary volume descriptor in the ISO image: it ends after {i} volume descriptors"
                );
            }
            let mut sector = [0u8; SECTOR as usize];
            read_at(f, DESCRIPTORS_START + i * SECTOR, &mut sector)
                .context("reading an ISO9660 volume descriptor")?;
            if &sector[1..6] != b"CD001" {
                bail!("not an ISO9660 image (no CD001 volume descriptor)");
            }
            match sector[0] {
                1 => {
                    let space = u64::from(le32(&sector[80..84])) * SECTOR;
                    if space > size {
                        bail!("ISO image is incomplete: {space} bytes declared, {size} present");
                    }
                    let root = parse_record(&sector[156..190])?.extent;
                    let volume_id = String::from_utf8_lossy(&sector[40..72])
                        .trim_end()
                        .to_string();
                    let iso = Self {
                        root,
                        volume_id,
                        size,
                    };
                    iso.check_extent(root, "the root directory")?;
                    return Ok(iso);
                }
                255 => break,
                _ => {}
            }
        }
        bail!("no primary volume descriptor in the ISO image")
    }

    pub fn volume_id(&self) -> &str {
        &self.volume_id
    }

    /// Bytes in the image.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Refuses an extent that does not lie inside the image.
    pub fn check_extent(&self, e: Extent, what: &str) -> Result<()> {
        if e.offset
            .checked_add(e.length)
            .is_none_or(|end| end > self.size)
        {
            bail!(
                "the ISO image is truncated or corrupt: {what} ({} bytes at byte {}) runs past its end ({} bytes)",
                e.length,
                e.offset,
                self.size
            );
        }
        Ok(())
    }

    /// Finds `path` (e.g. `COREOS/IGNINFO.JSO`), matching primary names
    /// case-insensitively without their `;1` version and trailing `.`.
    pub fn find<F: Read + Seek>(&self, f: &mut F, path: &str) -> Result<Extent> {
        let mut dir = self.root;
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let want = part.to_ascii_uppercase();
            let rec = self
                .list_dir(f, dir)?
                .into_iter()
                .find(|r| r.name == want)
                .ok_or_else(|| NotFound(path.to_string()))?;
            self.check_extent(rec.extent, path)?;
            let last = i + 1 == parts.len();
            if last {
                if rec.is_dir {
                    bail!("{path} is a directory in the ISO image");
                }
                return Ok(rec.extent);
            }
            if !rec.is_dir {
                return Err(NotFound(path.to_string()).into());
            }
            dir = rec.extent;
        }
        Err(NotFound(path.to_string()).into())
    }

    /// Reads a whole (small) file.
    pub fn read_file<F: Read + Seek>(&self, f: &mut F, path: &str) -> Result<Vec<u8>> {
        let e = self.find(f, path)?;
        if e.length > MAX_SMALL_FILE {
            bail!(
                "{path} in the ISO image is unexpectedly large ({} bytes)",
                e.length
            );
        }
        let mut buf = vec![0u8; usize::try_from(e.length)?];
        read_at(f, e.offset, &mut buf)
            .with_context(|| format!("reading {path} from the ISO image"))?;
        Ok(buf)
    }

    fn list_dir<F: Read + Seek>(&self, f: &mut F, dir: Extent) -> Result<Vec<Record>> {
        if dir.length > MAX_DIRECTORY {
            bail!("an ISO9660 directory claims {} bytes", dir.length);
        }
        self.check_extent(dir, "a directory")?;
        let mut data = vec![0u8; usize::try_from(dir.length)?];
        read_at(f, dir.offset, &mut data).context("reading an ISO9660 directory")?;
        let mut out = Vec::new();
        let mut pos = 0usize;
        while let Some(&len) = data.get(pos) {
            let len = usize::from(len);
            if len == 0 {
                // Records never cross a sector: skip to the next one.
                pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            let rec = data
                .get(pos..pos.saturating_add(len))
                .context("an ISO9660 directory record runs past its directory")?;
            let r = parse_record(rec)?;
            if r.name != "\0" && r.name != "\u{1}" {
                out.push(r);
            }
            pos += len;
        }
        Ok(out)
    }
}

fn parse_record(rec: &[u8]) -> Result<Record> {
    if rec.len() < 34 {
        bail!("an ISO9660 directory record is too short");
    }
    let name_len = usize::from(rec[32]);
    let raw = rec
        .get(33..33 + name_len)
        .context("an ISO9660 record name runs past its record")?;
    let mut name = String::from_utf8_lossy(raw).into_owned();
    if let Some(i) = name.find(';') {
        name.truncate(i);
    }
    if name.len() > 1 && name.ends_with('.') {
        name.pop();
    }
    Ok(Record {
        name,
        extent: Extent {
            offset: u64::from(le32(&rec[2..6])) * SECTOR,
            length: u64::from(le32(&rec[10..14])),
        },
        is_dir: rec[25] & 0x02 != 0,
    })
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

pub fn read_at<F: Read + Seek>(f: &mut F, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iso::writer::{IsoTree, write_iso};

    #[test]
    fn finds_files_written_by_our_writer() {
        let mut tree = IsoTree::new();
        tree.add_file(
            "coreos/igninfo.json",
            br#"{"file":"images/ignition.img"}"#.to_vec(),
        )
        .unwrap();
        tree.add_file("images/ignition.img", vec![0u8; 8192])
            .unwrap();
        let mut f = tempfile::tempfile().unwrap();
        write_iso("rhcos-test", &tree, &mut f).unwrap();
        let iso = Iso9660::open(&mut f).unwrap();
        assert_eq!(iso.volume_id(), "rhcos-test");
        let data = iso.read_file(&mut f, "coreos/igninfo.json").unwrap();
        assert_eq!(data, br#"{"file":"images/ignition.img"}"#);
        let e = iso.find(&mut f, "IMAGES/IGNITION.IMG").unwrap();
        assert_eq!(e.length, 8192);
        assert_eq!(e.offset % SECTOR, 0);
        let err = iso.find(&mut f, "images/nope.img").unwrap_err();
        assert!(err.is::<NotFound>());
    }

    #[test]
    fn rejects_non_iso() {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, &vec![0u8; 64 * 1024]).unwrap();
        assert!(
            Iso9660::open(&mut f)
                .unwrap_err()
                .to_string()
                .contains("not an ISO9660 image")
        );
    }
}
