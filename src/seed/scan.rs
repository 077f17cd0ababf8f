//! Reading every member of a seed tarball without extracting it: the same
//! checks extraction makes, so a hostile or corrupt seed is caught before a
//! factory burns disks with it.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;
use serde::Serialize;

use super::files::Tarball;
use super::member::{Kind, Policy};
use crate::api::contract::seed_image;

/// Refusals listed per tarball; the rest are counted.
const MAX_LISTED: usize = 20;
/// Members captured for cross-checks are small configuration files.
const MAX_CAPTURE: u64 = 1 << 20;

#[derive(Debug, Clone, Default, Serialize)]
pub struct TarballScan {
    pub members: u64,
    /// Bytes of file content once extracted.
    pub bytes: u64,
    /// Members refused, with the reason (the first few).
    #[serde(skip)]
    pub refusals: Vec<String>,
    pub refused: u64,
    /// Why the tarball could not be read to its end.
    #[serde(skip)]
    pub error: Option<String>,
    /// The wanted members found, with their content when small.
    #[serde(skip)]
    pub found: BTreeMap<String, Option<Vec<u8>>>,
}

/// Reads the gzip tarball to its end. `wanted` are member paths (as
/// [`Policy`] normalises them) to report on and capture.
pub fn scan_tgz(reader: impl Read, tarball: Tarball, wanted: &[String]) -> TarballScan {
    let mut s = TarballScan::default();
    let mut buffered = BufReader::with_capacity(256 << 10, reader);
    match buffered.fill_buf() {
        Ok([0x1f, 0x8b, ..]) => {}
        Ok(_) => {
            s.error = Some(format!("{tarball} is not a gzip file"));
            return s;
        }
        Err(e) => {
            s.error = Some(format!("reading {tarball}: {e}"));
            return s;
        }
    }
    if let Err(e) = scan(MultiGzDecoder::new(buffered), tarball, wanted, &mut s) {
        s.error = Some(if s.members == 0 && s.refused == 0 {
            format!("{tarball} is not a gzip-compressed tar archive ({e})")
        } else {
            format!(
                "{tarball} is corrupt or truncated after {} members: {e}",
                s.members
            )
        });
    }
    s
}

/// Reads a plain (uncompressed) tar stream to its end, as [`scan_tgz`] does
/// after decompressing.
pub fn scan_tar(reader: impl Read, tarball: Tarball, wanted: &[String]) -> TarballScan {
    let mut s = TarballScan::default();
    if let Err(e) = scan(reader, tarball, wanted, &mut s) {
        s.error = Some(format!("{tarball}: {e}"));
    }
    s
}

fn scan(
    reader: impl Read,
    tarball: Tarball,
    wanted: &[String],
    s: &mut TarballScan,
) -> io::Result<()> {
    let mut policy = Policy::new(tarball);
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw_path = entry.path_bytes().into_owned();
        let raw_link = entry.link_name_bytes().map(|l| l.into_owned());
        let kind = entry.header().entry_type();
        let member = match policy.check(kind, &raw_path, raw_link.as_deref()) {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(r) => {
                s.refused += 1;
                if s.refusals.len() < MAX_LISTED {
                    s.refusals.push(r.to_string());
                }
                continue;
            }
        };
        s.members += 1;
        if member.kind == Kind::File {
            // Sizes are the archive's word: a lie must not overflow.
            s.bytes = s.bytes.saturating_add(entry.size());
        }
        let name = member.path.to_string_lossy();
        if wanted.iter().any(|w| *w == name) {
            let content = if member.kind == Kind::File && entry.size() <= MAX_CAPTURE {
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf)?;
                Some(buf)
            } else {
                None
            };
            s.found.insert(name.into_owned(), content);
        }
        // Unread content is read (and so decompressed and checked) by the
        // archive when it moves to the next member.
    }
    Ok(())
}

/// The members of `tarball` that a usable seed must have, for cross-checks.
pub fn wanted_members(tarball: Tarball, booted_checksum: Option<&str>) -> Vec<String> {
    match tarball {
        Tarball::Ostree => {
            let mut w = vec!["config".to_string()];
            if let Some(c) = booted_checksum.filter(|c| c.len() > 2) {
                w.push(format!("objects/{}/{}.commit", &c[..2], &c[2..]));
            }
            w
        }
        Tarball::Var => vec![
            seed_image::VAR_SEED_MANIFEST.into(),
            seed_image::VAR_LCA_CLI.into(),
        ],
        Tarball::Etc => vec![
            seed_image::ETC_INSTALLATION_UNIT.into(),
            seed_image::ETC_CONTAINERS_MOUNT.into(),
        ],
    }
}
