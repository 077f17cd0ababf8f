//! Importing a tarball of an archive-mode ostree repository (a seed's
//! `ostree.tgz`) straight into a repository, object by object, without
//! extracting it first (issue 14).
//!
//! Upstream (and sprout before) extracted `ostree.tgz` into a workspace and
//! then ran `pull-local` from it: every object was written twice, read back
//! once, and the workspace's tens of thousands of files were created and
//! removed again. Here the tarball is read once: one thread inflates the
//! gzip stream and splits it into members, the calling thread (which owns
//! the libostree objects, which are not `Send`) converts each `.filez`
//! object to the content-stream form and hands it to libostree's
//! `write_content` with its expected checksum, so libostree recomputes and
//! verifies every object's checksum exactly as an untrusted pull does.
//! Metadata objects go through `write_metadata`, also verified. Everything
//! is written in one libostree transaction, which syncs the filesystem once
//! at its commit (no per-object fsync) before objects become visible.
//!
//! The commit is marked partial for the whole import and unmarked only
//! after its every object is known to be in the repository, so an
//! interrupted or incomplete import never looks complete.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use ::ostree::ObjectType;
use ::ostree::gio;
use ::ostree::glib;
use anyhow::{Context, Result, bail};
use flate2::read::{DeflateDecoder, MultiGzDecoder};

use super::ostree::PullProgress;

/// Members up to this size travel whole; larger ones (a few big files of
/// the OS tree) are streamed in chunks so memory stays bounded.
const WHOLE_MAX: u64 = 1 << 20;
const CHUNK: usize = 256 << 10;
/// Messages in flight between the two threads: with `WHOLE_MAX` this
/// bounds the queue to a few MiB.
const QUEUE: usize = 8;
/// The largest file header accepted (xattrs included); real ones are a
/// few hundred bytes.
const HEADER_MAX: usize = 1 << 20;

enum Body {
    Whole(Vec<u8>),
    Stream(Receiver<Vec<u8>>),
}

enum Msg {
    Object {
        kind: ObjectType,
        checksum: String,
        body: Body,
    },
    Ref {
        remote: Option<String>,
        name: String,
        target: String,
    },
}

/// What an import wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarImportReport {
    pub metadata: u32,
    pub content: u32,
    /// Bytes of file content (uncompressed) passed to libostree.
    pub content_bytes: u64,
}

/// Imports the gzip tarball `reader` of an archive-mode repository into
/// `repo`, then checks that `commit` and every object it references are
/// there. `progress` is called every few hundred objects and at the end.
pub fn import_tgz(
    repo: &::ostree::Repo,
    reader: Box<dyn Read + Send>,
    commit: &str,
    mut progress: impl FnMut(PullProgress),
) -> Result<TarImportReport> {
    let mut buffered = BufReader::with_capacity(256 << 10, reader);
    let head = buffered.fill_buf().context("reading ostree.tgz")?;
    if !head.starts_with(&[0x1f, 0x8b]) {
        bail!("ostree.tgz is not a gzip file");
    }
    let cancel = gio::Cancellable::NONE;
    repo.mark_commit_partial(commit, true)
        .with_context(|| format!("marking commit {commit} partial before importing it"))?;
    repo.prepare_transaction(cancel)
        .context("starting an ostree transaction")?;
    let (tx, rx) = sync_channel::<Result<Msg>>(QUEUE);
    let written = std::thread::scope(|scope| {
        let scanner = scope.spawn(move || scan(MultiGzDecoder::new(buffered), &tx));
        let r = consume(repo, rx, &mut progress);
        // The scanner stops on its own once the receiver is gone.
        let scanned = scanner
            .join()
            .map_err(|_| anyhow::anyhow!("the ostree.tgz reader thread panicked"));
        match (r, scanned) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(w), Ok(())) => Ok(w),
        }
    });
    let (report, written) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = repo.abort_transaction(cancel);
            return Err(e);
        }
    };
    repo.commit_transaction(cancel)
        .context("committing the ostree transaction (syncing the imported objects)")?;
    check_complete(repo, commit, &written)?;
    repo.mark_commit_partial(commit, false)
        .with_context(|| format!("marking commit {commit} complete"))?;
    progress(PullProgress {
        metadata_scanned: report.metadata,
        objects_fetched: report.metadata + report.content,
        objects_requested: report.metadata + report.content,
        bytes_transferred: report.content_bytes,
        status: Some(format!(
            "{} metadata, {} content objects imported; {} bytes content written",
            report.metadata, report.content, report.content_bytes
        )),
    });
    Ok(report)
}

/// The reader thread: members of the tar stream as messages. An error is
/// sent as the last message. Returns when the stream ends or the receiver
/// is gone.
fn scan(reader: impl Read, tx: &SyncSender<Result<Msg>>) {
    if let Err(e) = scan_inner(reader, tx) {
        let _ = tx.send(Err(e));
    }
}

fn scan_inner(reader: impl Read, tx: &SyncSender<Result<Msg>>) -> Result<()> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().context("reading ostree.tgz")?;
    for (members, entry) in entries.enumerate() {
        let mut entry = entry.with_context(|| {
            format!("reading ostree.tgz after {members} members: it is corrupt or truncated")
        })?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let path = String::from_utf8_lossy(&raw);
        let path = path.trim_start_matches("./");
        let size = entry.size();
        let msg = if let Some((kind, checksum)) = object_of(path) {
            let body = if size <= WHOLE_MAX {
                Body::Whole(read_whole(&mut entry, size, path)?)
            } else {
                let (ctx, crx) = sync_channel::<Vec<u8>>(4);
                if tx
                    .send(Ok(Msg::Object {
                        kind,
                        checksum,
                        body: Body::Stream(crx),
                    }))
                    .is_err()
                {
                    return Ok(());
                }
                pump(&mut entry, &ctx, path)?;
                continue;
            };
            Msg::Object {
                kind,
                checksum,
                body,
            }
        } else if let Some((remote, name)) = ref_of(path) {
            let bytes = read_whole(&mut entry, size.min(4096), path)?;
            let target = String::from_utf8_lossy(&bytes).trim().to_string();
            Msg::Ref {
                remote,
                name,
                target,
            }
        } else {
            // config, state/, tmp/, …: not part of the commit.
            continue;
        };
        if tx.send(Ok(msg)).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

fn read_whole(r: &mut impl Read, size: u64, path: &str) -> Result<Vec<u8>> {
    let mut v = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    r.take(size)
        .read_to_end(&mut v)
        .with_context(|| format!("reading {path} from ostree.tgz"))?;
    Ok(v)
}

/// Streams a large member in chunks. When the consumer drops its end (it
/// had the object already, or failed), the rest is skipped.
fn pump(r: &mut impl Read, tx: &SyncSender<Vec<u8>>, path: &str) -> Result<()> {
    loop {
        let mut buf = vec![0u8; CHUNK];
        let n = r
            .read(&mut buf)
            .with_context(|| format!("reading {path} from ostree.tgz"))?;
        if n == 0 {
            return Ok(());
        }
        buf.truncate(n);
        if tx.send(buf).is_err() {
            // Drain so the tar reader can move to the next member.
            std::io::copy(r, &mut std::io::sink())
                .with_context(|| format!("reading {path} from ostree.tgz"))?;
            return Ok(());
        }
    }
}

/// `objects/ab/cdef….<ext>` → its type and checksum.
fn object_of(path: &str) -> Option<(ObjectType, String)> {
    let rest = path.strip_prefix("objects/")?;
    let (dir, file) = rest.split_once('/')?;
    let (tail, ext) = file.split_once('.')?;
    let kind = match ext {
        "filez" => ObjectType::File,
        "dirtree" => ObjectType::DirTree,
        "dirmeta" => ObjectType::DirMeta,
        "commit" => ObjectType::Commit,
        "commitmeta" => ObjectType::CommitMeta,
        _ => return None,
    };
    let checksum = format!("{dir}{tail}");
    let hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    (dir.len() == 2 && checksum.len() == 64 && checksum.bytes().all(hex))
        .then_some((kind, checksum))
}

/// `refs/heads/<name>` or `refs/remotes/<remote>/<name>`.
fn ref_of(path: &str) -> Option<(Option<String>, String)> {
    if let Some(name) = path.strip_prefix("refs/heads/") {
        return (!name.is_empty()).then(|| (None, name.to_string()));
    }
    let rest = path.strip_prefix("refs/remotes/")?;
    let (remote, name) = rest.split_once('/')?;
    (!remote.is_empty() && !name.is_empty()).then(|| (Some(remote.to_string()), name.to_string()))
}

/// The calling thread: writes each object and sets the refs. Returns the
/// report and the checksums written (or found already present).
fn consume(
    repo: &::ostree::Repo,
    rx: Receiver<Result<Msg>>,
    progress: &mut impl FnMut(PullProgress),
) -> Result<(TarImportReport, HashSet<String>)> {
    let mut report = TarImportReport::default();
    let mut written = HashSet::new();
    let mut refs = Vec::new();
    for msg in rx {
        match msg? {
            Msg::Object {
                kind,
                checksum,
                body,
            } => {
                write_object(repo, kind, &checksum, body, &mut report)
                    .with_context(|| format!("importing the object {checksum}.{kind:?}"))?;
                written.insert(checksum);
                let n = report.metadata + report.content;
                if n % 512 == 0 {
                    progress(PullProgress {
                        metadata_scanned: report.metadata,
                        objects_fetched: n,
                        objects_requested: n,
                        bytes_transferred: report.content_bytes,
                        status: None,
                    });
                }
            }
            Msg::Ref {
                remote,
                name,
                target,
            } => refs.push((remote, name, target)),
        }
    }
    for (remote, name, target) in refs {
        if target.len() != 64 {
            bail!("ostree.tgz: the ref {name} does not hold a checksum ({target:?})");
        }
        repo.transaction_set_ref(remote.as_deref(), &name, Some(&target));
    }
    Ok((report, written))
}

fn write_object(
    repo: &::ostree::Repo,
    kind: ObjectType,
    checksum: &str,
    body: Body,
    report: &mut TarImportReport,
) -> Result<()> {
    let cancel = gio::Cancellable::NONE;
    if kind == ObjectType::File {
        let mut src: Box<dyn Read + Send> = match body {
            Body::Whole(v) => Box::new(Cursor::new(v)),
            Body::Stream(rx) => Box::new(ChunkReader::new(rx)),
        };
        let (header, size) = content_header(&mut src)?;
        let len = header.len() as u64 + size;
        let input = gio::ReadInputStream::new(Cursor::new(header).chain(DeflateDecoder::new(src)));
        repo.write_content(Some(checksum), &input, len, cancel)
            .context("writing it (is ostree.tgz corrupt?)")?;
        report.content += 1;
        report.content_bytes += size;
        return Ok(());
    }
    let bytes = match body {
        Body::Whole(v) => v,
        Body::Stream(rx) => {
            let mut v = Vec::new();
            ChunkReader::new(rx).read_to_end(&mut v)?;
            v
        }
    };
    let bytes = glib::Bytes::from_owned(bytes);
    if kind == ObjectType::CommitMeta {
        let v = glib::Variant::from_bytes_with_type(&bytes, glib::VariantTy::VARDICT);
        repo.write_commit_detached_metadata(checksum, Some(&v), cancel)
            .context("writing the commit's detached metadata")?;
    } else {
        let ty = ::ostree::metadata_variant_type(kind);
        let v = glib::Variant::from_bytes_with_type(&bytes, &ty);
        repo.write_metadata(kind, Some(checksum), &v, cancel)
            .context("writing it (is ostree.tgz corrupt?)")?;
    }
    report.metadata += 1;
    Ok(())
}

/// Reads the archive object's header (`u32` big-endian length, 4 bytes of
/// padding, a `(tuuuusa(ayay))` variant: size, uid, gid, mode, rdev,
/// symlink target, xattrs) and returns the content-stream header
/// libostree's `write_content` takes (same framing, the variant without
/// the size) and the content size. What follows in `src` is the content,
/// raw-deflated.
fn content_header(src: &mut impl Read) -> Result<(Vec<u8>, u64)> {
    let mut prefix = [0u8; 8];
    src.read_exact(&mut prefix)
        .context("reading the object's header")?;
    let hlen = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if hlen > HEADER_MAX {
        bail!("the object's header claims {hlen} bytes; ostree.tgz is corrupt");
    }
    let mut raw = vec![0u8; hlen];
    src.read_exact(&mut raw)
        .context("reading the object's header")?;
    let ty = glib::VariantTy::new("(tuuuusa(ayay))").context("the archive header type")?;
    let v = glib::Variant::from_data_with_type(raw, ty);
    if v.n_children() != 7 {
        bail!("the object's header is malformed");
    }
    let size = v
        .child_value(0)
        .get::<u64>()
        .map(u64::from_be)
        .context("the object's header has no size")?;
    let file_header = glib::Variant::tuple_from_iter((1..7).map(|i| v.child_value(i)));
    let data = file_header.data();
    let len = u32::try_from(data.len()).context("the object's header is too large")?;
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(data);
    Ok((out, size))
}

/// Every object `commit` references is in the repository: written by this
/// import or there before. A missing metadata object fails the traversal.
fn check_complete(repo: &::ostree::Repo, commit: &str, written: &HashSet<String>) -> Result<()> {
    let cancel = gio::Cancellable::NONE;
    if !repo
        .has_object(ObjectType::Commit, commit, cancel)
        .with_context(|| format!("looking for commit {commit}"))?
    {
        bail!(
            "the seed's ostree.tgz has no commit {commit} (the booted deployment of its \
             rpm-ostree.json): the seed is inconsistent; recreate it"
        );
    }
    let all = repo
        .traverse_commit(commit, 0, cancel)
        .with_context(|| format!("ostree.tgz does not hold the whole commit {commit}"))?;
    let mut missing = Vec::new();
    for o in &all {
        if written.contains(o.checksum()) {
            continue;
        }
        if !repo
            .has_object(o.object_type(), o.checksum(), cancel)
            .with_context(|| format!("looking for object {}", o.checksum()))?
        {
            missing.push(o.checksum().to_string());
        }
    }
    if let Some(first) = missing.first() {
        bail!(
            "ostree.tgz lacks {} objects of commit {commit} (e.g. {first}): the seed is incomplete; recreate it",
            missing.len()
        );
    }
    Ok(())
}

/// A `Read` over the chunks of one streamed member.
struct ChunkReader {
    rx: Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    fn new(rx: Receiver<Vec<u8>>) -> Self {
        Self {
            rx,
            cur: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.cur = c;
                    self.pos = 0;
                }
                // The sender is done with this member.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
#[path = "ostree_tar_tests.rs"]
mod tests;
