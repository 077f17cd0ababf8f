use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::*;
use crate::host::command::Cmd;
use crate::testing::seed_tarballs::Payload;
use crate::testing::sysroot::tools_or_skip;

fn write_source(dir: &Path, len: u64) -> PathBuf {
    let p = dir.join("src.img");
    let mut f = File::create(&p).unwrap();
    std::io::copy(&mut Payload::new(len, 7), &mut f).unwrap();
    f.sync_all().unwrap();
    p
}

/// Copies `src` to `dir/dst.img`, patches one block of the copy, and
/// checks the copy holds the source's bytes but for the patch, and the
/// source is untouched.
fn copy_and_check(dir: &Path, src_path: &Path) -> Copied {
    let before = fs::read(src_path).unwrap();
    let dst_path = dir.join("dst.img");
    let mut src = File::open(src_path).unwrap();
    let mut dst = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&dst_path)
        .unwrap();
    let copied = durable_copy(&mut src, &mut dst).unwrap();
    assert_eq!(copied.bytes, before.len() as u64);
    // The caller patches the copy in place, as the ISO builder does.
    dst.seek(SeekFrom::Start(4096)).unwrap();
    dst.write_all(&[0xAB; 512]).unwrap();
    dst.sync_all().unwrap();
    drop(dst);
    let mut want = before.clone();
    // A patch past the end extends the copy with a hole, as it would any file.
    want.resize(want.len().max(4608), 0);
    want[4096..4608].fill(0xAB);
    let mut got = Vec::new();
    File::open(&dst_path)
        .unwrap()
        .read_to_end(&mut got)
        .unwrap();
    assert!(
        got == want,
        "the copy differs from the source outside the patch"
    );
    assert!(fs::read(src_path).unwrap() == before, "the source changed");
    copied
}

#[test]
fn copies_by_kernel_where_there_is_no_reflink() {
    // /var/tmp is ext4 on this machine and on CI, never tmpfs.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let src = write_source(dir.path(), (3 << 20) + 123);
    let copied = copy_and_check(dir.path(), &src);
    // ext4 has no reflinks; a filesystem that has them is fine too.
    assert_ne!(copied.method, CopyMethod::ReadWrite, "{copied:?}");
}

#[test]
fn copies_an_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let src = write_source(dir.path(), 0);
    assert_eq!(copy_and_check(dir.path(), &src).bytes, 0);
}

/// Mounts a fresh XFS (mkfs.xfs defaults: reflink on) on a loop device
/// and unmounts it when dropped.
struct XfsMount {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl XfsMount {
    fn new() -> Self {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let img = dir.path().join("xfs.img");
        File::create(&img).unwrap().set_len(512 << 20).unwrap();
        Cmd::new("mkfs.xfs").arg("-q").arg(&img).run().unwrap();
        let mnt = dir.path().join("mnt");
        fs::create_dir(&mnt).unwrap();
        Cmd::new("mount")
            .args(["-o", "loop"])
            .arg(&img)
            .arg(&mnt)
            .run()
            .unwrap();
        Self { _dir: dir, mnt }
    }
}

impl Drop for XfsMount {
    fn drop(&mut self) {
        let _ = Cmd::new("umount").arg(&self.mnt).run();
    }
}

/// False (with a loud `SKIP:` line) unless root; fails under `CI=true`.
fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} needs root, and CI=true forbids skipping"
    );
    eprintln!("SKIP: {test}: needs root");
    false
}

fn free_bytes(p: &Path) -> u64 {
    let s = rustix::fs::statvfs(p).unwrap();
    s.f_bavail * s.f_frsize
}

#[test]
fn reflinks_on_xfs_and_uses_no_space_for_the_copy() {
    if !tools_or_skip("reflinks_on_xfs", &["mkfs.xfs", "mount", "umount"]).unwrap() {
        return;
    }
    if !root_or_skip("reflinks_on_xfs") {
        return;
    }
    let xfs = XfsMount::new();
    let len = 64 << 20;
    let src = write_source(&xfs.mnt, len);
    let free = free_bytes(&xfs.mnt);
    let copied = copy_and_check(&xfs.mnt, &src);
    assert_eq!(copied.method, CopyMethod::Reflink);
    // Shared extents: the copy took far less than its size (the patched
    // block and metadata only).
    let used = free.saturating_sub(free_bytes(&xfs.mnt));
    assert!(used < len / 16, "the copy used {used} bytes of {len}");
}

#[test]
fn copies_across_filesystems() {
    if !tools_or_skip("copies_across_filesystems", &["mkfs.xfs", "mount"]).unwrap()
        || !root_or_skip("copies_across_filesystems")
    {
        return;
    }
    // XFS source, ext4 destination: FICLONE gives EXDEV.
    let xfs = XfsMount::new();
    let src = write_source(&xfs.mnt, (1 << 20) + 5);
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let copied = copy_and_check(dir.path(), &src);
    assert_ne!(copied.method, CopyMethod::Reflink);
}
