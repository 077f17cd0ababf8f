//! The three tarballs of a synthetic seed, written as a stream (no tree on
//! disk, constant memory whatever the size), with the member names, modes,
//! owners, links and SELinux labels `tar --selinux --xattrs --acls` gives a
//! real seed.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result};
use flate2::write::GzEncoder;
use tar::{Builder, EntryType, Header};

/// A member written verbatim, names unchecked: how tests make hostile
/// tarballs that no well-behaved tar would write.
#[derive(Debug, Clone)]
pub struct RawMember {
    pub name: Vec<u8>,
    pub kind: EntryType,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
    /// (major, minor) for device nodes.
    pub device: (u32, u32),
}

impl RawMember {
    pub fn file(name: &str, data: &[u8]) -> Self {
        Self::new(name, EntryType::Regular, "", data)
    }
    pub fn symlink(name: &str, target: &str) -> Self {
        Self::new(name, EntryType::Symlink, target, b"")
    }
    pub fn hard_link(name: &str, target: &str) -> Self {
        Self::new(name, EntryType::Link, target, b"")
    }
    pub fn char_device(name: &str, major: u32, minor: u32) -> Self {
        Self {
            device: (major, minor),
            ..Self::new(name, EntryType::Char, "", b"")
        }
    }
    fn new(name: &str, kind: EntryType, link: &str, data: &[u8]) -> Self {
        Self {
            name: name.as_bytes().to_vec(),
            kind,
            link: link.as_bytes().to_vec(),
            data: data.to_vec(),
            device: (0, 0),
        }
    }
}

/// Pseudo-random bytes that compress about 2:1, like a database: 32 KiB
/// blocks alternate between noise and repeated text.
pub struct Payload {
    left: u64,
    state: u64,
    pos: u64,
}

impl Payload {
    pub fn new(len: u64, seed: u64) -> Self {
        Self {
            left: len,
            state: seed | 1,
            pos: 0,
        }
    }
}

impl Read for Payload {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = usize::try_from(self.left).map_or(buf.len(), |l| l.min(buf.len()));
        for chunk in buf[..n].chunks_mut(8) {
            let noisy = (self.pos >> 15) & 1 == 0;
            let word = if noisy {
                // xorshift64*
                self.state ^= self.state >> 12;
                self.state ^= self.state << 25;
                self.state ^= self.state >> 27;
                self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
            } else {
                u64::from_le_bytes(*b"etcdkey/")
            };
            let bytes = word.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
            self.pos += chunk.len() as u64;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A tar builder over a gzip file.
pub struct TgzWriter {
    b: Builder<GzEncoder<BufWriter<File>>>,
    mtime: u64,
}

/// The SELinux labels a seed's files carry.
pub const VAR_LABEL: &str = "system_u:object_r:var_lib_t:s0";
pub const ETC_LABEL: &str = "system_u:object_r:etc_t:s0";

impl TgzWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let gz = GzEncoder::new(
            BufWriter::with_capacity(1 << 20, f),
            flate2::Compression::fast(),
        );
        Ok(Self {
            b: Builder::new(gz),
            mtime: 1_717_200_000,
        })
    }

    fn header(&self, kind: EntryType, mode: u32, uid: u64, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(self.mtime);
        h.set_size(size);
        h
    }

    /// The pax records GNU tar writes for `--selinux --xattrs`.
    fn label(&mut self, label: &str, extra: &[(&str, &[u8])]) -> Result<()> {
        let mut recs: Vec<(String, Vec<u8>)> = vec![
            ("RHT.security.selinux".into(), label.as_bytes().to_vec()),
            (
                "SCHILY.xattr.security.selinux".into(),
                label.as_bytes().to_vec(),
            ),
        ];
        for (k, v) in extra {
            recs.push((format!("SCHILY.xattr.{k}"), v.to_vec()));
        }
        self.b
            .append_pax_extensions(recs.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .context("writing a pax header")
    }

    pub fn dir(&mut self, name: &str, mode: u32, uid: u64, label: &str) -> Result<()> {
        self.label(label, &[])?;
        let mut h = self.header(EntryType::Directory, mode, uid, 0);
        self.b
            .append_data(&mut h, name, io::empty())
            .with_context(|| format!("adding {name}"))
    }

    pub fn file(
        &mut self,
        name: &str,
        mode: u32,
        uid: u64,
        label: &str,
        data: &[u8],
    ) -> Result<()> {
        self.file_from(name, mode, uid, label, &[], data.len() as u64, data)
    }

    /// A file with extra extended attributes.
    pub fn file_xattrs(
        &mut self,
        name: &str,
        label: &str,
        xattrs: &[(&str, &[u8])],
        data: &[u8],
    ) -> Result<()> {
        self.file_from(name, 0o644, 0, label, xattrs, data.len() as u64, data)
    }

    #[allow(clippy::too_many_arguments)] // a tar header has that many fields
    pub fn file_from(
        &mut self,
        name: &str,
        mode: u32,
        uid: u64,
        label: &str,
        xattrs: &[(&str, &[u8])],
        size: u64,
        data: impl Read,
    ) -> Result<()> {
        self.label(label, xattrs)?;
        let mut h = self.header(EntryType::Regular, mode, uid, size);
        self.b
            .append_data(&mut h, name, data)
            .with_context(|| format!("adding {name}"))
    }

    pub fn symlink(&mut self, name: &str, target: &str, label: &str) -> Result<()> {
        self.label(label, &[])?;
        let mut h = self.header(EntryType::Symlink, 0o777, 0, 0);
        self.b
            .append_link(&mut h, name, target)
            .with_context(|| format!("adding {name}"))
    }

    pub fn hard_link(&mut self, name: &str, target: &str) -> Result<()> {
        let mut h = self.header(EntryType::Link, 0o644, 0, 0);
        self.b
            .append_link(&mut h, name, target)
            .with_context(|| format!("adding {name}"))
    }

    /// Appends a member with its name and link written byte for byte into
    /// the header, bypassing the builder's path checks.
    pub fn raw(&mut self, m: &RawMember) -> Result<()> {
        let mut h = self.header(m.kind, 0o644, 0, m.data.len() as u64);
        {
            let old = h.as_old_mut();
            let n = m.name.len().min(old.name.len());
            old.name[..n].copy_from_slice(&m.name[..n]);
            let l = m.link.len().min(old.linkname.len());
            old.linkname[..l].copy_from_slice(&m.link[..l]);
        }
        if m.kind == EntryType::Char || m.kind == EntryType::Block {
            h.set_device_major(m.device.0)?;
            h.set_device_minor(m.device.1)?;
        }
        h.set_cksum();
        self.b
            .append(&h, m.data.as_slice())
            .context("adding a raw member")
    }

    /// Every file and directory below `dir`, named `./…` as
    /// `tar -C dir .` names them.
    pub fn tree(&mut self, dir: &Path) -> Result<()> {
        self.b.follow_symlinks(false);
        self.b
            .append_dir_all(".", dir)
            .with_context(|| format!("adding {}", dir.display()))
    }

    pub fn finish(self) -> Result<()> {
        self.b
            .into_inner()
            .context("finishing the tar stream")?
            .finish()
            .context("finishing the gzip stream")?
            .flush()
            .context("writing the tarball")
    }
}
