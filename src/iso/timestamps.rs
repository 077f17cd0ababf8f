//! Pinning every date in a built ISO9660 image to one instant.
//!
//! hadris-iso stamps the volume descriptors, every directory record and
//! every Rock Ridge `TF` entry with the current time, so two builds of the
//! same tree differ. The configuration ISO must be reproducible (the same
//! identity state gives the same bytes), so after hadris has written the
//! image this module walks the volume descriptors and both directory trees
//! (primary with Rock Ridge, and Joliet) and rewrites each of those dates
//! with the instant the caller chose. Nothing else is touched: offsets and
//! lengths stay as hadris wrote them.

use std::collections::BTreeSet;

use anyhow::{Context, Result, bail, ensure};

const SECTOR: usize = 2048;
/// Volume descriptors start at logical sector 16 (ECMA-119 6.2.1).
const FIRST_DESCRIPTOR: usize = 16;
/// Offset of the root directory record in a primary/supplementary descriptor.
const ROOT_RECORD: usize = 156;
/// Creation and modification dates of a volume descriptor (17 bytes each).
/// Expiration and effective dates are left as hadris writes them ("not
/// specified"), which is already constant.
const VOLUME_DATES: [usize; 2] = [813, 830];
/// Offset of the 7-byte recording date inside a directory record.
const RECORD_DATE: usize = 18;
/// A directory walk this deep is a loop in a damaged image, not a tree.
const MAX_DIRS: usize = 100_000;

/// A UTC instant broken down for ISO9660's date fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoTime {
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl IsoTime {
    /// The instant `secs` after 1970-01-01T00:00:00Z. Directory records count
    /// years from 1900 in one byte, so 1970 to 2155 can be recorded.
    pub fn from_unix(secs: i64) -> Result<Self> {
        ensure!(
            secs >= 0,
            "{secs} is before 1970, which ISO9660 dates cannot hold"
        );
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        ensure!(
            year <= 1900 + i64::from(u8::MAX),
            "{secs} is after 2155, which ISO9660 directory dates cannot hold"
        );
        // Every value below is in range by construction.
        Ok(Self {
            year: u16::try_from(year).context("converting the year")?,
            month: u8::try_from(month).context("converting the month")?,
            day: u8::try_from(day).context("converting the day")?,
            hour: u8::try_from(rem / 3600).context("converting the hour")?,
            minute: u8::try_from(rem % 3600 / 60).context("converting the minute")?,
            second: u8::try_from(rem % 60).context("converting the second")?,
        })
    }

    /// ECMA-119 9.1.5: years since 1900, month, day, hour, minute, second,
    /// offset from UTC in 15-minute units (0).
    fn seven(&self) -> [u8; 7] {
        // from_unix keeps the year within 1900..=2155.
        let y = u8::try_from(self.year.saturating_sub(1900)).unwrap_or(u8::MAX);
        [
            y,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            0,
        ]
    }

    /// ECMA-119 8.4.26.1: "YYYYMMDDHHMMSScc" in digits, then the offset (0).
    fn seventeen(&self) -> [u8; 17] {
        let text = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        let mut out = [0u8; 17];
        out[..16].copy_from_slice(&text.as_bytes()[..16]);
        out
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (the well-known era-based conversion).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Rewrites every date of `image` (as hadris-iso writes it) with `time`.
pub fn pin(image: &mut [u8], time: IsoTime) -> Result<()> {
    let mut roots = Vec::new();
    for n in FIRST_DESCRIPTOR.. {
        let start = n * SECTOR;
        let Some(d) = image.get_mut(start..start + SECTOR) else {
            bail!("the image ends inside its volume descriptors");
        };
        ensure!(
            &d[1..6] == b"CD001",
            "volume descriptor {n} has no CD001 mark"
        );
        match d[0] {
            255 => break,
            // Primary and supplementary (Joliet) descriptors.
            1 | 2 => {
                for off in VOLUME_DATES {
                    d[off..off + 17].copy_from_slice(&time.seventeen());
                }
                let root = &mut d[ROOT_RECORD..ROOT_RECORD + 34];
                root[RECORD_DATE..RECORD_DATE + 7].copy_from_slice(&time.seven());
                roots.push(extent_of(root));
            }
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = roots;
    while let Some((lba, len)) = todo.pop() {
        if !seen.insert(lba) {
            continue;
        }
        ensure!(seen.len() <= MAX_DIRS, "the image has too many directories");
        pin_directory(image, lba, len, time, &mut todo)
            .with_context(|| format!("pinning the dates of the directory at sector {lba}"))?;
    }
    Ok(())
}

/// (first sector, length) of a directory record's extent.
fn extent_of(record: &[u8]) -> (usize, usize) {
    let le = |o: usize| {
        u32::from_le_bytes([record[o], record[o + 1], record[o + 2], record[o + 3]]) as usize
    };
    (le(2), le(10))
}

/// Pins the records of one directory extent; queues its subdirectories.
fn pin_directory(
    image: &mut [u8],
    lba: usize,
    len: usize,
    time: IsoTime,
    todo: &mut Vec<(usize, usize)>,
) -> Result<()> {
    let start = lba * SECTOR;
    let end = start.checked_add(len).context("extent overflows")?;
    ensure!(end <= image.len(), "extent runs past the end of the image");
    let mut pos = start;
    while pos < end {
        let rec_len = usize::from(image[pos]);
        if rec_len == 0 {
            // Records never cross a sector: the rest of this one is padding.
            pos = (pos / SECTOR + 1) * SECTOR;
            continue;
        }
        ensure!(
            rec_len >= 34 && pos + rec_len <= end,
            "damaged directory record"
        );
        let rec = &mut image[pos..pos + rec_len];
        rec[RECORD_DATE..RECORD_DATE + 7].copy_from_slice(&time.seven());
        let name_len = usize::from(rec[32]);
        let is_dir = rec[25] & 0x02 != 0;
        let dot = name_len == 1 && rec[33] <= 1;
        if is_dir && !dot {
            todo.push(extent_of(rec));
        }
        // System use: after the name and its padding byte (even lengths).
        let su = 33 + name_len + usize::from(name_len % 2 == 0);
        let mut continuation = None;
        if su < rec_len {
            continuation = pin_susp(&mut rec[su..], time);
        }
        // Rock Ridge continuation areas (CE) may hold TF entries too.
        let mut hops = 0;
        while let Some((ce_lba, ce_off, ce_len)) = continuation.take() {
            hops += 1;
            ensure!(hops <= 64, "too many continuation areas");
            let s = ce_lba * SECTOR + ce_off;
            let area = image
                .get_mut(s..s + ce_len)
                .context("continuation area runs past the end of the image")?;
            continuation = pin_susp(area, time);
        }
        pos += rec_len;
    }
    Ok(())
}

/// Pins the `TF` entries of a SUSP area; returns a `CE` continuation.
fn pin_susp(area: &mut [u8], time: IsoTime) -> Option<(usize, usize, usize)> {
    let mut ce = None;
    let mut p = 0;
    while p + 4 <= area.len() {
        let len = usize::from(area[p + 2]);
        if len < 4 || p + len > area.len() {
            break;
        }
        match &area[p..p + 2] {
            b"TF" => {
                let flags = area[p + 4];
                let long = flags & 0x80 != 0;
                let count = (flags & 0x7f).count_ones() as usize;
                let (size, stamp) = if long {
                    (17, time.seventeen().to_vec())
                } else {
                    (7, time.seven().to_vec())
                };
                for i in 0..count {
                    let o = p + 5 + i * size;
                    if o + size <= p + len {
                        area[o..o + size].copy_from_slice(&stamp);
                    }
                }
            }
            b"CE" if len >= 28 => {
                let le = |o: usize| {
                    u32::from_le_bytes([area[o], area[o + 1], area[o + 2], area[o + 3]]) as usize
                };
                ce = Some((le(p + 4), le(p + 12), le(p + 20)));
            }
            b"ST" => break,
            _ => {}
        }
        p += len;
    }
    ce
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_become_calendar_dates() {
        let t = IsoTime::from_unix(0).unwrap();
        assert_eq!(t.seven(), [70, 1, 1, 0, 0, 0, 0]);
        assert_eq!(&t.seventeen()[..16], b"1970010100000000");
        // 2024-02-29T12:34:56Z, a leap day.
        let t = IsoTime::from_unix(1_709_210_096).unwrap();
        assert_eq!(t.seven(), [124, 2, 29, 12, 34, 56, 0]);
        assert_eq!(&t.seventeen()[..16], b"2024022912345600");
        assert!(IsoTime::from_unix(-1).is_err());
        assert!(IsoTime::from_unix(6_000_000_000).is_err());
    }
}
