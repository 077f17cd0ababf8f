//! The CoreOS live-ISO embed areas, as coreos-installer defines them.
//!
//! The Ignition area is a region of the ISO (named by `coreos/igninfo.json`,
//! else the whole `images/ignition.img`) that the bootloader loads as an
//! extra initrd: sprout writes an xz (CRC32, which the kernel requires)
//! newc cpio holding `config.ign` there and zeroes the rest. The kernel
//! argument areas (named by `coreos/kargs.json`) hold the live kernel command
//! line, padded to a fixed size. No ISO9660 metadata ever changes.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::iso9660::{Extent, Iso9660, NotFound, read_at};
use crate::host::input::{LimitedReader, MAX_EMBED_DECOMPRESSED};

/// The member that holds the Ignition config.
pub const CONFIG_IGN: &str = "config.ign";
/// The Ignition area is read whole; RHCOS has 256 KiB.
pub const MAX_IGNITION_AREA: u64 = 64 << 20;
/// A kernel-argument area; RHCOS has ~1 KiB.
pub const MAX_KARGS_AREA: u64 = 64 << 10;
/// Memory the xz decoder may use (RHCOS payloads use a few MiB).
const XZ_MEMLIMIT: u64 = 256 << 20;
/// Longest member name read from a cpio header (PATH_MAX).
const MAX_CPIO_NAME: u32 = 4096;

#[derive(Debug, Deserialize)]
struct IgnInfo {
    file: String,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    length: Option<u64>,
}

/// Finds the Ignition embed area of a live ISO.
pub fn ignition_area<F: Read + Seek>(f: &mut F, iso: &Iso9660) -> Result<Extent> {
    let area = match iso.read_file(f, "COREOS/IGNINFO.JSO") {
        Ok(data) => {
            let info: IgnInfo = serde_json::from_slice(&data).context("reading coreos/igninfo.json")?;
            let file = iso
                .find(f, &info.file)
                .with_context(|| format!("finding {} named by coreos/igninfo.json", info.file))?;
            let offset = info.offset.unwrap_or(0);
            let length = info.length.unwrap_or(file.length.saturating_sub(offset));
            // Checked: an offset + length that wraps around must not pass.
            let inside = offset
                .checked_add(length)
                .is_some_and(|end| end <= file.length);
            if !inside || length == 0 {
                bail!(
                    "coreos/igninfo.json names an area outside {} (offset {offset}, length {length}, file {} bytes); \
                     the ISO is damaged: use a pristine CoreOS live ISO",
                    info.file,
                    file.length
                );
            }
            let offset = file
                .offset
                .checked_add(offset)
                .context("coreos/igninfo.json names an area past the end of the ISO")?;
            Extent { offset, length }
        }
        Err(e) if e.is::<NotFound>() => iso.find(f, "IMAGES/IGNITION.IMG").map_err(|e| {
            if e.is::<NotFound>() {
                anyhow::anyhow!(
                    "unrecognized CoreOS live ISO: it has neither coreos/igninfo.json nor images/ignition.img; \
                     use an RHCOS live ISO (rhcos-*-live.*.iso)"
                )
            } else {
                e
            }
        })?,
        Err(e) => return Err(e),
    };
    iso.check_extent(area, "the Ignition embed area")?;
    if area.length > MAX_IGNITION_AREA {
        bail!(
            "the ISO's Ignition embed area is {} bytes, more than the {MAX_IGNITION_AREA} a CoreOS live ISO has; \
             use a pristine CoreOS live ISO",
            area.length
        );
    }
    Ok(area)
}

/// Builds the area content: an xz-compressed newc cpio with `members`
/// (path → bytes, regular files 0600, emitted in path order).
pub fn build_payload(members: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>> {
    // A dictionary sized to the payload (not preset 9's 64 MiB) keeps the
    // encoder's memory small; the result is an ordinary xz stream.
    let total: usize = members.values().map(Vec::len).sum::<usize>() + 4096;
    let dict = u32::try_from(total.next_power_of_two().max(1 << 16)).unwrap_or(1 << 26);
    let mut opts = liblzma::stream::LzmaOptions::new_preset(9).context("configuring xz")?;
    opts.dict_size(dict);
    let mut filters = liblzma::stream::Filters::new();
    filters.lzma2(&opts);
    let stream =
        liblzma::stream::Stream::new_stream_encoder(&filters, liblzma::stream::Check::Crc32)
            .context("creating the xz encoder")?;
    let mut xz = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    for (ino, (name, data)) in members.iter().enumerate() {
        let size = u32::try_from(data.len()).context("a member is larger than 4 GiB")?;
        let mut w = cpio::newc::Builder::new(name)
            .ino(u32::try_from(ino).unwrap_or(u32::MAX))
            .mode(0o100600)
            .nlink(1)
            .write(&mut xz, size);
        w.write_all(data).context("writing the cpio archive")?;
        w.finish().context("writing the cpio archive")?;
    }
    cpio::newc::trailer(&mut xz).context("writing the cpio archive")?;
    let mut out = xz.finish().context("finishing the xz stream")?;
    // The kernel wants archives aligned to 4 bytes.
    out.resize(out.len().div_ceil(4) * 4, 0);
    Ok(out)
}

/// Reads the regular-file members of an area: concatenated archives (xz,
/// gzip or plain cpio) with zero padding between them; later members win.
/// All archives together decompress to at most [`MAX_EMBED_DECOMPRESSED`].
pub fn read_members(area: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut members = BTreeMap::new();
    let mut pos = 0usize;
    let mut budget = MAX_EMBED_DECOMPRESSED;
    while let Some(rest) = area.get(pos..).filter(|r| !r.is_empty()) {
        if rest[0] == 0 {
            pos += 1;
            continue;
        }
        let mut cursor = Cursor::new(rest);
        if rest.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            let stream = liblzma::stream::Stream::new_stream_decoder(XZ_MEMLIMIT, 0)
                .context("creating the xz decoder")?;
            let dec = liblzma::bufread::XzDecoder::new_stream(&mut cursor, stream);
            let mut dec = LimitedReader::new(dec, budget, "the Ignition embed area");
            read_cpio(&mut dec, &mut members).context("reading an xz archive in the embed area")?;
            drain(&mut dec)?;
            budget = dec.left();
        } else if rest.starts_with(&[0x1f, 0x8b]) {
            let dec = flate2::bufread::GzDecoder::new(&mut cursor);
            let mut dec = LimitedReader::new(dec, budget, "the Ignition embed area");
            read_cpio(&mut dec, &mut members)
                .context("reading a gzip archive in the embed area")?;
            drain(&mut dec)?;
            budget = dec.left();
        } else if rest.starts_with(b"070701") {
            read_cpio(&mut cursor, &mut members)
                .context("reading a cpio archive in the embed area")?;
        } else {
            bail!(
                "the embed area holds data that is not an xz, gzip or cpio archive at byte {pos}"
            );
        }
        let used = usize::try_from(cursor.position()).unwrap_or(rest.len());
        pos += used.max(1);
    }
    Ok(members)
}

fn drain(r: &mut impl Read) -> Result<()> {
    std::io::copy(r, &mut std::io::sink()).context("reading the rest of a compressed archive")?;
    Ok(())
}

fn read_cpio<R: Read>(r: &mut R, members: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    loop {
        // The cpio crate allocates the name length a header claims; a
        // header is checked first so a hostile one cannot ask for 4 GiB.
        let mut header = [0u8; 110];
        r.read_exact(&mut header).context("reading a cpio header")?;
        let name_len = std::str::from_utf8(&header[94..102])
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        match name_len {
            Some(n) if n <= MAX_CPIO_NAME => {}
            Some(n) => bail!("a cpio header claims a {n}-byte member name; the archive is corrupt"),
            None => bail!("a cpio header is not a newc header; the archive is corrupt"),
        }
        let mut chained = Cursor::new(&header[..]).chain(&mut *r);
        let mut entry = cpio::newc::Reader::new(&mut chained).context("reading a cpio header")?;
        if entry.entry().is_trailer() {
            entry.finish()?;
            return Ok(());
        }
        let name = entry.entry().name().to_string();
        let is_file = entry.entry().mode() & 0o170000 == 0o100000;
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .context("reading a cpio member")?;
        entry.finish()?;
        if is_file {
            members.insert(name, data);
        }
    }
}

/// Reads the Ignition area's bytes.
pub fn read_area<F: Read + Seek>(f: &mut F, area: Extent) -> Result<Vec<u8>> {
    if area.length > MAX_IGNITION_AREA {
        bail!(
            "the Ignition embed area is {} bytes, more than {MAX_IGNITION_AREA}",
            area.length
        );
    }
    let mut buf = vec![0u8; usize::try_from(area.length)?];
    read_at(f, area.offset, &mut buf).context("reading the Ignition embed area")?;
    Ok(buf)
}

/// Refuses a payload larger than the area, with both sizes.
pub fn check_fits(payload: &[u8], area: Extent) -> Result<()> {
    if payload.len() as u64 > area.length {
        bail!(
            "the Ignition config does not fit the ISO's embed area: {} bytes compressed, {} bytes available; \
             make ignitionConfigOverride or post.sh smaller",
            payload.len(),
            area.length
        );
    }
    Ok(())
}

/// Writes `payload` at the start of the area and zeroes the rest.
pub fn write_area<F: Write + Seek>(f: &mut F, area: Extent, payload: &[u8]) -> Result<()> {
    check_fits(payload, area)?;
    f.seek(SeekFrom::Start(area.offset))
        .context("seeking to the embed area")?;
    f.write_all(payload).context("writing the embed area")?;
    let mut left = area.length - payload.len() as u64;
    let zeros = [0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        f.write_all(&zeros[..n]).context("zeroing the embed area")?;
        left -= n as u64;
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
struct KargsJson {
    default: String,
    files: Vec<KargsFile>,
    size: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct KargsFile {
    path: String,
    offset: u64,
    #[serde(default = "default_pad")]
    pad: String,
    #[serde(default = "default_end")]
    end: String,
}

fn default_pad() -> String {
    "#".into()
}
fn default_end() -> String {
    "\n".into()
}

/// The kernel-argument areas of a live ISO (`coreos/kargs.json`).
#[derive(Debug, Clone)]
pub struct KargsAreas {
    default: String,
    size: u64,
    regions: Vec<(Extent, KargsFile)>,
}

impl KargsAreas {
    /// `None` when the ISO has no `coreos/kargs.json` (e.g. old s390x ISOs).
    pub fn for_iso<F: Read + Seek>(f: &mut F, iso: &Iso9660) -> Result<Option<Self>> {
        let data = match iso.read_file(f, "COREOS/KARGS.JSO") {
            Ok(d) => d,
            Err(e) if e.is::<NotFound>() => return Ok(None),
            Err(e) => return Err(e),
        };
        let json: KargsJson = serde_json::from_slice(&data).context("reading coreos/kargs.json")?;
        let damaged = "the ISO is damaged: use a pristine CoreOS live ISO";
        if json.size == 0 || json.size > MAX_KARGS_AREA {
            bail!(
                "coreos/kargs.json gives a kernel-argument area size of {} bytes (a CoreOS live ISO has about 1 KiB); {damaged}",
                json.size
            );
        }
        let mut regions = Vec::new();
        for file in json.files {
            // An empty pad would never fill the area.
            if file.pad.is_empty() || file.pad.len() as u64 > json.size {
                bail!(
                    "coreos/kargs.json: the pad of {} is {:?}, not one character; {damaged}",
                    file.path,
                    file.pad
                );
            }
            if file.end.len() as u64 > json.size {
                bail!(
                    "coreos/kargs.json: the end of {} is longer than the area; {damaged}",
                    file.path
                );
            }
            let e = iso
                .find(f, &file.path)
                .with_context(|| format!("finding {} named by coreos/kargs.json", file.path))?;
            let inside = file
                .offset
                .checked_add(json.size)
                .is_some_and(|end| end <= e.length);
            let offset = e.offset.checked_add(file.offset).filter(|_| inside);
            let Some(offset) = offset else {
                bail!(
                    "coreos/kargs.json names an area outside {} (offset {}, size {}, file {} bytes); {damaged}",
                    file.path,
                    file.offset,
                    json.size,
                    e.length
                );
            };
            let region = Extent {
                offset,
                length: json.size,
            };
            iso.check_extent(region, "a kernel-argument area")?;
            regions.push((region, file));
        }
        Ok(Some(Self {
            default: json.default,
            size: json.size,
            regions,
        }))
    }

    /// Where the areas are in the image.
    pub fn regions(&self) -> Vec<Extent> {
        self.regions.iter().map(|(e, _)| *e).collect()
    }

    /// The ISO's default live kernel arguments.
    pub fn default_kargs(&self) -> &str {
        &self.default
    }

    /// The current kernel arguments; every region must agree.
    pub fn read<F: Read + Seek>(&self, f: &mut F) -> Result<String> {
        let mut current: Option<String> = None;
        for (e, file) in &self.regions {
            let mut buf = vec![0u8; usize::try_from(e.length)?];
            read_at(f, e.offset, &mut buf).context("reading a kernel-argument area")?;
            let text = String::from_utf8(buf).context("a kernel-argument area is not UTF-8")?;
            let kargs = text
                .trim_end_matches(file.pad.as_str())
                .trim_end_matches(file.end.as_str())
                .trim()
                .to_string();
            match &current {
                Some(c) if *c != kargs => {
                    bail!("the ISO's kernel-argument areas disagree: {c:?} vs {kargs:?}")
                }
                _ => current = Some(kargs),
            }
        }
        Ok(current.unwrap_or_default())
    }

    /// Rewrites every region with `kargs`.
    pub fn write<F: Write + Seek>(&self, f: &mut F, kargs: &str) -> Result<()> {
        let size = usize::try_from(self.size)?;
        for (e, file) in &self.regions {
            let mut text = format!("{kargs}{}", file.end).into_bytes();
            if text.len() > size {
                bail!(
                    "the live kernel arguments are too long for the ISO: {} bytes, {} available",
                    text.len(),
                    self.size
                );
            }
            // The pad is not empty (checked in for_iso), so this ends.
            let pad = file.pad.as_bytes();
            while text.len() < size {
                let n = pad.len().min(size - text.len());
                text.extend_from_slice(&pad[..n]);
            }
            f.seek(SeekFrom::Start(e.offset))
                .context("seeking to a kernel-argument area")?;
            f.write_all(&text)
                .context("writing a kernel-argument area")?;
        }
        Ok(())
    }
}

/// Reads the Ignition config embedded in `f`, if any.
pub fn read_ignition<F: Read + Seek>(f: &mut F) -> Result<Option<Vec<u8>>> {
    let iso = Iso9660::open(f)?;
    let area = ignition_area(f, &iso)?;
    let data = read_area(f, area)?;
    Ok(read_members(&data)?.remove(CONFIG_IGN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        let mut m = BTreeMap::new();
        m.insert(
            CONFIG_IGN.to_string(),
            br#"{"ignition":{"version":"3.2.0"}}"#.to_vec(),
        );
        m.insert("etc/x".to_string(), b"abc".to_vec());
        let p = build_payload(&m).unwrap();
        assert_eq!(p.len() % 4, 0);
        assert!(p.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]));
        // The check type in the stream header flags is CRC32 (1).
        assert_eq!(p[7], 1);
        let mut area = p.clone();
        area.resize(4096, 0);
        assert_eq!(read_members(&area).unwrap(), m);
    }

    #[test]
    fn zero_area_is_empty_and_garbage_is_refused() {
        assert!(read_members(&[0u8; 512]).unwrap().is_empty());
        assert!(read_members(b"garbage").is_err());
    }
}
