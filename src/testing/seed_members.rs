//! The members a test puts into a synthetic seed's `etc.tgz` and
//! `var.tgz`, and the writer that lets them replace the defaults.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::seed_tarballs::{RawMember, TgzWriter};

/// A member of a seed tarball, owned by root unless `uid` says otherwise.
#[derive(Debug, Clone)]
pub enum Member {
    File { mode: u32, uid: u64, data: Vec<u8> },
    Dir { mode: u32, uid: u64 },
    Symlink(String),
}

impl Member {
    /// A root-owned file.
    pub fn file(mode: u32, data: impl Into<Vec<u8>>) -> Self {
        Member::File {
            mode,
            uid: 0,
            data: data.into(),
        }
    }
}

/// A seed tarball whose default members give way to the test's own
/// (`etc_members`, `var_members`), which are written last.
pub(super) struct Filtered<'a> {
    t: TgzWriter,
    own: &'a BTreeMap<String, Member>,
    label: &'static str,
}

impl<'a> Filtered<'a> {
    pub(super) fn new(
        path: &Path,
        own: &'a BTreeMap<String, Member>,
        label: &'static str,
    ) -> Result<Self> {
        Ok(Self {
            t: TgzWriter::create(path)?,
            own,
            label,
        })
    }

    pub(super) fn default_wanted(&self, name: &str) -> bool {
        let bare = name.trim_end_matches('/');
        !self.own.contains_key(name)
            && !self.own.contains_key(bare)
            && !self.own.contains_key(&format!("{bare}/"))
    }

    pub(super) fn dir(&mut self, name: &str, mode: u32, uid: u64, label: &str) -> Result<()> {
        if self.default_wanted(name) {
            self.t.dir(name, mode, uid, label)?;
        }
        Ok(())
    }

    pub(super) fn file(
        &mut self,
        name: &str,
        mode: u32,
        uid: u64,
        label: &str,
        data: &[u8],
    ) -> Result<()> {
        if self.default_wanted(name) {
            self.t.file(name, mode, uid, label, data)?;
        }
        Ok(())
    }

    pub(super) fn file_xattrs(
        &mut self,
        name: &str,
        label: &str,
        xattrs: &[(&str, &[u8])],
        data: &[u8],
    ) -> Result<()> {
        if self.default_wanted(name) {
            self.t.file_xattrs(name, label, xattrs, data)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // TgzWriter::file_from's fields
    pub(super) fn file_from(
        &mut self,
        name: &str,
        mode: u32,
        uid: u64,
        label: &str,
        xattrs: &[(&str, &[u8])],
        size: u64,
        data: impl std::io::Read,
    ) -> Result<()> {
        if self.default_wanted(name) {
            self.t
                .file_from(name, mode, uid, label, xattrs, size, data)?;
        }
        Ok(())
    }

    pub(super) fn symlink(&mut self, name: &str, target: &str, label: &str) -> Result<()> {
        if self.default_wanted(name) {
            self.t.symlink(name, target, label)?;
        }
        Ok(())
    }

    pub(super) fn hard_link(&mut self, name: &str, target: &str) -> Result<()> {
        if self.default_wanted(name) {
            self.t.hard_link(name, target)?;
        }
        Ok(())
    }

    pub(super) fn raw(&mut self, m: &RawMember) -> Result<()> {
        self.t.raw(m)
    }

    pub(super) fn finish(mut self) -> Result<()> {
        for (name, m) in self.own {
            match m {
                Member::File { mode, uid, data } => {
                    self.t.file(name, *mode, *uid, self.label, data)?
                }
                Member::Dir { mode, uid } => {
                    let dir = format!("{}/", name.trim_end_matches('/'));
                    self.t.dir(&dir, *mode, *uid, self.label)?
                }
                Member::Symlink(target) => self.t.symlink(name, target, self.label)?,
            }
        }
        self.t.finish()
    }
}
