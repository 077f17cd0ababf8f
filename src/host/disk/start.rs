//! Where the extra partition starts (lifecycle-agent.md §2.4 A.3).
//!
//! `extraPartitionStart` is read as upstream reads it: a value starting
//! with `-` is a size at the end of the disk, parsed with
//! `^(\d+(?:\.\d+)?)\s*([KMGT]?)B?$` on the trimmed, upper-cased text with
//! 1024-based units (so `-40G`, `-40Gb` and `-40GB` are all 40 GiB), and the
//! start sector is `(disk size − size) / sector size` aligned down to 1 MiB.
//! Any other value is handed to `sfdisk` verbatim. Unlike upstream the
//! arithmetic is checked: a size larger than the disk, a zero size or an
//! absurd sector size is an error, not a wrapped number or a panic.

use std::fmt;

use thiserror::Error;

/// Upstream's default: a 40 GiB partition at the end of the disk.
pub const DEFAULT_EXTRA_PARTITION_START: &str = "-40G";

const MIB: u64 = 1 << 20;

/// A parsed `extraPartitionStart`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraPartitionStart {
    /// `-<size>`: the partition takes the last `bytes` of the disk.
    FromEnd { bytes: u64 },
    /// Anything else: passed to `sfdisk` as the `start=` value unchanged.
    Verbatim(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StartError {
    #[error(
        "{value:?} is not a size: write a number with an optional K, M, G or T unit, \
         e.g. \"-40G\" for 40 GiB at the end of the disk"
    )]
    BadSize { value: String },
    #[error("{value:?} is too large a size to compute with")]
    Overflow { value: String },
    #[error("{value:?} is a partition of zero bytes: give it a size, e.g. \"-40G\"")]
    Zero { value: String },
    #[error(
        "{value:?} contains {bad:?}, which would change the sfdisk script line: \
         use a plain start such as \"120GiB\" or a sector number"
    )]
    BadVerbatim { value: String, bad: char },
    #[error(
        "the extra partition ({size} bytes) is larger than the disk ({disk} bytes): \
         make extraPartitionStart smaller or use a larger disk"
    )]
    LargerThanDisk { size: u64, disk: u64 },
    #[error("the disk reports a sector size of {0} bytes, which is not a power of two up to 1 MiB")]
    BadSectorSize(u64),
}

impl ExtraPartitionStart {
    /// Parses the configuration value. Like upstream, only a leading `-`
    /// (not after spaces) makes it a size from the end.
    pub fn parse(value: &str) -> Result<Self, StartError> {
        match value.strip_prefix('-') {
            Some(size) => {
                let bytes = parse_size_to_bytes(size)?;
                if bytes == 0 {
                    return Err(StartError::Zero {
                        value: value.to_string(),
                    });
                }
                Ok(Self::FromEnd { bytes })
            }
            None => {
                let bad = value
                    .chars()
                    .find(|c| c.is_control() || c.is_whitespace() || [',', '"', ';'].contains(c));
                match bad {
                    _ if value.is_empty() => Err(StartError::BadSize {
                        value: value.to_string(),
                    }),
                    Some(bad) => Err(StartError::BadVerbatim {
                        value: value.to_string(),
                        bad,
                    }),
                    None => Ok(Self::Verbatim(value.to_string())),
                }
            }
        }
    }

    /// The `start=` value for `sfdisk` on a disk of `disk_bytes` with
    /// `sector_size`-byte sectors.
    pub fn sfdisk_start(&self, disk_bytes: u64, sector_size: u64) -> Result<String, StartError> {
        match self {
            Self::Verbatim(v) => Ok(v.clone()),
            Self::FromEnd { bytes } => {
                start_sector_from_end(disk_bytes, sector_size, *bytes).map(|s| s.to_string())
            }
        }
    }
}

impl fmt::Display for ExtraPartitionStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FromEnd { bytes } => write!(f, "the last {bytes} bytes of the disk"),
            Self::Verbatim(v) => write!(f, "sfdisk start {v}"),
        }
    }
}

/// Upstream's `parseSizeToBytes`, computed exactly (no float rounding) and
/// with overflow checks. Go's `\d` and `\s` are ASCII-only, and so are these.
pub fn parse_size_to_bytes(size: &str) -> Result<u64, StartError> {
    let bad = || StartError::BadSize {
        value: size.to_string(),
    };
    let overflow = || StartError::Overflow {
        value: size.to_string(),
    };
    let upper = size
        .trim_matches(|c: char| c.is_whitespace())
        .to_ascii_uppercase();
    let mut rest = upper.as_str();
    let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if int_len == 0 {
        return Err(bad());
    }
    let (int_part, r) = rest.split_at(int_len);
    rest = r;
    let mut frac_part = "";
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(bad());
        }
        frac_part = &r[..n];
        rest = &r[n..];
    }
    rest = rest.trim_start_matches([' ', '\t', '\n', '\r', '\x0c']);
    let (multiplier, r) = match rest.as_bytes().first() {
        Some(b'K') => (1u128 << 10, &rest[1..]),
        Some(b'M') => (1 << 20, &rest[1..]),
        Some(b'G') => (1 << 30, &rest[1..]),
        Some(b'T') => (1 << 40, &rest[1..]),
        _ => (1, rest),
    };
    if !(r.is_empty() || r == "B") {
        return Err(bad());
    }
    let int: u128 = int_part.parse().map_err(|_| overflow())?;
    let mut bytes = int.checked_mul(multiplier).ok_or_else(overflow)?;
    if !frac_part.is_empty() {
        // Only as many fraction digits as can matter (upstream truncates).
        let digits = &frac_part[..frac_part.len().min(18)];
        let frac: u128 = digits.parse().map_err(|_| overflow())?;
        let scale = 10u128.pow(u32::try_from(digits.len()).map_err(|_| overflow())?);
        let part = frac.checked_mul(multiplier).ok_or_else(overflow)? / scale;
        bytes = bytes.checked_add(part).ok_or_else(overflow)?;
    }
    // Upstream's result is an int64.
    let bytes = u64::try_from(bytes).map_err(|_| overflow())?;
    if bytes > i64::MAX as u64 {
        return Err(overflow());
    }
    Ok(bytes)
}

/// `(disk − size) / sector`, aligned down to a 1 MiB boundary.
pub fn start_sector_from_end(
    disk_bytes: u64,
    sector_size: u64,
    size: u64,
) -> Result<u64, StartError> {
    if sector_size == 0 || !sector_size.is_power_of_two() || sector_size > MIB {
        return Err(StartError::BadSectorSize(sector_size));
    }
    let start_bytes = disk_bytes
        .checked_sub(size)
        .ok_or(StartError::LargerThanDisk {
            size,
            disk: disk_bytes,
        })?;
    let sectors_per_mib = MIB / sector_size;
    let sector = start_bytes / sector_size;
    Ok(sector - sector % sectors_per_mib)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn sizes_as_upstream_parses_them() {
        for (text, bytes) in [
            ("40G", 40 * GIB),
            ("40GB", 40 * GIB),
            ("40Gb", 40 * GIB),
            ("40g", 40 * GIB),
            ("40 G", 40 * GIB),
            (" 40G ", 40 * GIB),
            ("1024M", GIB),
            ("2048K", 2 << 20),
            ("1024", 1024),
            ("1024B", 1024),
            ("1.5G", 3 * GIB / 2),
            ("0.1K", 102),
            ("1T", 1 << 40),
        ] {
            assert_eq!(parse_size_to_bytes(text), Ok(bytes), "{text}");
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        for text in [
            "", "abc", "abcG", "G", "1.G", ".5G", "40X", "40GiB", "4 0G", "-40G", "40P", "1e3",
        ] {
            assert!(
                matches!(parse_size_to_bytes(text), Err(StartError::BadSize { .. })),
                "{text}"
            );
        }
        // Larger than an int64, or than u128 while computing.
        for text in ["9000000T", "99999999999999999999999999999999999999999T"] {
            assert!(
                matches!(parse_size_to_bytes(text), Err(StartError::Overflow { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn negative_start_is_aligned_down_to_a_mib() {
        let disk = 100 * GIB + 12345;
        let s = ExtraPartitionStart::parse("-40G").unwrap();
        assert_eq!(s, ExtraPartitionStart::FromEnd { bytes: 40 * GIB });
        let sector: u64 = s.sfdisk_start(disk, 512).unwrap().parse().unwrap();
        assert_eq!(sector, 60 * GIB / 512);
        assert_eq!(sector * 512 % MIB, 0);
        // 4 KiB sectors.
        assert_eq!(
            start_sector_from_end(disk, 4096, 40 * GIB).unwrap(),
            60 * GIB / 4096
        );
        // An unaligned remainder is cut, never rounded up into the partition.
        let start = start_sector_from_end(10 * MIB + MIB / 2, 512, MIB).unwrap();
        assert_eq!(start, 9 * MIB / 512);
        // Exactly the disk: start 0.
        assert_eq!(start_sector_from_end(GIB, 512, GIB).unwrap(), 0);
    }

    #[test]
    fn impossible_starts_are_errors() {
        assert!(matches!(
            start_sector_from_end(GIB, 512, GIB + 1),
            Err(StartError::LargerThanDisk { .. })
        ));
        for ss in [0, 3, 2 * MIB] {
            assert_eq!(
                start_sector_from_end(GIB, ss, MIB),
                Err(StartError::BadSectorSize(ss))
            );
        }
        assert!(matches!(
            ExtraPartitionStart::parse("-0G"),
            Err(StartError::Zero { .. })
        ));
        assert!(matches!(
            ExtraPartitionStart::parse("--40G"),
            Err(StartError::BadSize { .. })
        ));
    }

    #[test]
    fn positive_start_is_verbatim_but_cannot_inject() {
        assert_eq!(
            ExtraPartitionStart::parse("120GiB")
                .unwrap()
                .sfdisk_start(GIB, 512)
                .unwrap(),
            "120GiB"
        );
        for bad in ["1G,size=5", "1G\nname=x", "1 G", "\"1\""] {
            assert!(
                matches!(
                    ExtraPartitionStart::parse(bad),
                    Err(StartError::BadVerbatim { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(ExtraPartitionStart::parse("").is_err());
    }
}
