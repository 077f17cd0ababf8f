//! A tar member's metadata: mode, owner, time, and the extended attributes
//! GNU tar stores in pax headers when a seed is made with `--selinux
//! --xattrs --xattrs-include=* --acls`.

use std::io::Read;

use anyhow::{Context, Result};

/// The pax key prefix GNU tar and libarchive use for extended attributes.
const PAX_XATTR: &str = "SCHILY.xattr.";
/// GNU tar's `--selinux` writes the label under this key.
const PAX_SELINUX: &str = "RHT.security.selinux";
/// GNU tar's `--acls` writes POSIX ACLs as text under these keys.
const PAX_ACLS: [&str; 2] = ["SCHILY.acl.access", "SCHILY.acl.default"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits including set-id and sticky bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// Extended attributes to set, SELinux label included.
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// How many ACLs the member carried (not restored; see `extract`).
    pub acls: u32,
}

impl Meta {
    pub fn of<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Self> {
        let h = entry.header();
        let mut m = Meta {
            mode: h.mode().context("reading the member's mode")? & 0o7777,
            uid: h
                .uid()
                .ok()
                .and_then(|u| u32::try_from(u).ok())
                .unwrap_or(0),
            gid: h
                .gid()
                .ok()
                .and_then(|g| u32::try_from(g).ok())
                .unwrap_or(0),
            mtime: h
                .mtime()
                .ok()
                .and_then(|t| i64::try_from(t).ok())
                .unwrap_or(0),
            ..Meta::default()
        };
        let Some(exts) = entry
            .pax_extensions()
            .context("reading the member's pax header")?
        else {
            return Ok(m);
        };
        for ext in exts {
            let ext = ext.context("reading the member's pax header")?;
            let Ok(key) = ext.key() else { continue };
            let value = ext.value_bytes();
            if let Some(name) = key.strip_prefix(PAX_XATTR) {
                m.xattrs.push((name.to_string(), value.to_vec()));
            } else if key == PAX_SELINUX {
                // GNU tar stores the label without the trailing NUL the
                // kernel returns; either form is accepted on write.
                m.xattrs.retain(|(n, _)| n != "security.selinux");
                m.xattrs.push(("security.selinux".into(), value.to_vec()));
            } else if PAX_ACLS.contains(&key) {
                m.acls += 1;
            } else if let Ok(v) = ext.value() {
                // Values beyond the ustar fields' range travel in pax.
                match key {
                    "uid" => m.uid = v.parse().unwrap_or(m.uid),
                    "gid" => m.gid = v.parse().unwrap_or(m.gid),
                    "mtime" => {
                        let secs = v.split('.').next().unwrap_or(v);
                        m.mtime = secs.parse().unwrap_or(m.mtime);
                    }
                    _ => {}
                }
            }
        }
        // The SELinux label from --xattrs and from --selinux is the same
        // attribute; keep one.
        let mut seen = std::collections::HashSet::new();
        m.xattrs.retain(|(n, _)| seen.insert(n.clone()));
        Ok(m)
    }
}
