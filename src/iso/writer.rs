//! Writing the configuration ISO (`imagebasedconfig.iso`).
//!
//! The image is a plain ISO9660 volume (2048-byte logical blocks, no El
//! Torito, no partition table) with Rock Ridge on the primary tree, so Linux
//! and xorriso see the exact, case-preserved names, and a Joliet tree for
//! readers that prefer it. The heavy lifting is done by `hadris-iso`; this
//! module owns the in-memory tree, path validation and the volume label.

use std::collections::BTreeMap;
use std::io::{Cursor, Seek, SeekFrom, Write};

use anyhow::{Context, bail, ensure};
use hadris_iso::joliet::JolietLevel;
use hadris_iso::read::PathSeparator;
use hadris_iso::rrip::RripOptions;
use hadris_iso::write::options::{BaseIsoLevel, CreationFeatures, IsoFormatOptions};
use hadris_iso::write::{InputEntry, InputMetadata, InputTree, IsoImageWriter};

/// Logical block size of the image.
const SECTOR_SIZE_BYTES: usize = 2048;
/// [`SECTOR_SIZE_BYTES`] for offset arithmetic.
const SECTOR_SIZE: u64 = SECTOR_SIZE_BYTES as u64;
/// Byte offset of the primary volume descriptor (logical sector 16).
const PVD_OFFSET: u64 = 16 * SECTOR_SIZE;
/// Offset of the volume identifier inside a volume descriptor (ECMA-119 8.4.6).
const VOLUME_ID_OFFSET: u64 = 40;
/// Length of the volume identifier field.
const VOLUME_ID_LEN: usize = 32;
/// Offset of the both-endian volume space size inside the PVD (ECMA-119 8.4.8).
const VOLUME_SPACE_OFFSET: u64 = 80;
/// Longest file name accepted; Rock Ridge readers (Linux, xorriso) cap at 255.
const MAX_NAME_LEN: usize = 255;
/// Deepest directory nesting ISO9660 allows below the root (ECMA-119 6.8.2.1:
/// eight levels counting the root).
const MAX_DIR_DEPTH: usize = 7;
/// Longest directory path (without a leading '/') ECMA-119 allows.
const MAX_DIR_PATH_LEN: usize = 255;

/// Mode bits given to every directory in the image.
const DIR_MODE: u32 = 0o755;
/// Mode bits given to every regular file in the image.
const FILE_MODE: u32 = 0o644;

/// A tree of directories and regular files to put in an image, paths relative to the root with '/' separators.
#[derive(Debug, Default, Clone)]
pub struct IsoTree {
    root: Dir,
}

#[derive(Debug, Default, Clone)]
struct Dir {
    entries: BTreeMap<String, Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Dir(Dir),
    File(Vec<u8>),
}

impl IsoTree {
    /// An empty tree (only the root directory).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an (possibly empty) directory; parents are implied.
    ///
    /// Adding a directory that already exists is not an error. A single
    /// trailing '/' is accepted.
    ///
    /// # Errors
    ///
    /// When the path is empty or absolute, has an empty, "." or ".."
    /// component, a component over 255 bytes, or runs through a file.
    pub fn add_dir(&mut self, path: &str) -> anyhow::Result<()> {
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        split_path(trimmed)
            .and_then(|components| self.root.dir_mut(&components).map(|_| ()))
            .with_context(|| format!("adding directory {path:?} to the ISO tree"))
    }

    /// Adds a regular file; parent directories are implied. Errors on duplicate path, empty component, "..", absolute path.
    ///
    /// # Errors
    ///
    /// As [`IsoTree::add_dir`], and when the path has already been added.
    pub fn add_file(&mut self, path: &str, contents: Vec<u8>) -> anyhow::Result<()> {
        self.insert_file(path, contents)
            .with_context(|| format!("adding file {path:?} to the ISO tree"))
    }

    fn insert_file(&mut self, path: &str, contents: Vec<u8>) -> anyhow::Result<()> {
        let components = split_path(path)?;
        let Some((name, parents)) = components.split_last() else {
            bail!("path is empty");
        };
        // Parents only get created when none of them is a file, and a new
        // parent cannot already hold `name`, so a failure leaves no trace.
        let dir = self.root.dir_mut(parents)?;
        match dir.entries.get(*name) {
            Some(Node::File(_)) => bail!("a file with this path has already been added"),
            Some(Node::Dir(_)) => bail!("a directory with this path has already been added"),
            None => {}
        }
        dir.entries.insert((*name).to_owned(), Node::File(contents));
        Ok(())
    }
}

impl Dir {
    /// Walks (creating as needed) the directory at `components`.
    fn dir_mut(&mut self, components: &[&str]) -> anyhow::Result<&mut Dir> {
        let mut dir = self;
        for (depth, name) in components.iter().enumerate() {
            let node = dir
                .entries
                .entry((*name).to_owned())
                .or_insert_with(|| Node::Dir(Dir::default()));
            dir = match node {
                Node::Dir(child) => child,
                Node::File(_) => bail!(
                    "{:?} is a file, not a directory",
                    components[..=depth].join("/")
                ),
            };
        }
        Ok(dir)
    }

    /// Checks the ISO9660 directory depth and path length limits.
    ///
    /// hadris can work around them with Rock Ridge directory relocation, but
    /// 2.5.0 also leaks the `rr_moved` directory (with `RRD000001`-style
    /// names) into the Joliet tree and leaves `rr_moved` visible in the Rock
    /// Ridge one, so relocation is off and deep trees are refused instead.
    fn check_limits(&self, prefix: &str, depth: usize) -> anyhow::Result<()> {
        for (name, node) in &self.entries {
            let Node::Dir(dir) = node else { continue };
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            ensure!(
                depth < MAX_DIR_DEPTH,
                "directory {path:?} is nested deeper than the {MAX_DIR_DEPTH} levels ISO9660 allows"
            );
            ensure!(
                path.len() <= MAX_DIR_PATH_LEN,
                "directory path {path:?} is longer than the {MAX_DIR_PATH_LEN} bytes ISO9660 allows"
            );
            dir.check_limits(&path, depth + 1)?;
        }
        Ok(())
    }

    fn to_entries(&self) -> Vec<InputEntry> {
        self.entries
            .iter()
            .map(|(name, node)| match node {
                Node::Dir(dir) => InputEntry::directory(name.clone(), dir.to_entries())
                    .with_metadata(metadata(DIR_MODE)),
                Node::File(contents) => InputEntry::file(name.clone(), contents.clone())
                    .with_metadata(metadata(FILE_MODE)),
            })
            .collect()
    }
}

fn metadata(mode: u32) -> InputMetadata {
    InputMetadata {
        mode: Some(mode),
        uid: Some(0),
        gid: Some(0),
        ..InputMetadata::default()
    }
}

/// Splits a relative '/'-separated path into validated components.
fn split_path(path: &str) -> anyhow::Result<Vec<&str>> {
    ensure!(!path.is_empty(), "path is empty");
    ensure!(
        !path.starts_with('/'),
        "path must be relative, not absolute"
    );
    path.split('/')
        .map(|name| {
            ensure!(!name.is_empty(), "path has an empty component");
            ensure!(
                name != "." && name != "..",
                "path component {name:?} is not allowed"
            );
            ensure!(
                !name.contains('\0'),
                "path component {name:?} contains a NUL byte"
            );
            ensure!(
                name.len() <= MAX_NAME_LEN,
                "path component {name:?} is longer than {MAX_NAME_LEN} bytes"
            );
            Ok(name)
        })
        .collect()
}

/// Checks a volume label: 1 to 32 printable ASCII characters, kept as given.
fn validate_volume_id(volume_id: &str) -> anyhow::Result<()> {
    ensure!(!volume_id.is_empty(), "volume identifier is empty");
    ensure!(
        volume_id.len() <= VOLUME_ID_LEN,
        "volume identifier {volume_id:?} is longer than {VOLUME_ID_LEN} bytes"
    );
    ensure!(
        volume_id.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
        "volume identifier {volume_id:?} must be printable ASCII"
    );
    Ok(())
}

/// Writes an ISO9660 image with Rock Ridge (long, lower-case names kept exactly) and Joliet, logical block 2048,
/// the given volume identifier (e.g. "cluster-config"), no El Torito, into `out` (starting at offset 0; `out` is truncated/extended as needed).
///
/// The label is stored exactly as given (not upper-cased), so blkid reports
/// `LABEL="cluster-config"`. `out` only needs to be writable.
///
/// # Errors
///
/// When the label is empty, over 32 bytes or not printable ASCII; when a
/// directory is nested more than 7 levels below the root or its path exceeds
/// 255 bytes (ISO9660 limits); or when building or writing the image fails.
pub fn write_iso(volume_id: &str, tree: &IsoTree, out: &mut std::fs::File) -> anyhow::Result<()> {
    validate_volume_id(volume_id).context("checking the volume identifier")?;
    tree.root
        .check_limits("", 0)
        .context("checking the ISO tree against ISO9660 limits")?;

    let input = InputTree::new(PathSeparator::ForwardSlash, tree.root.to_entries());
    let options = IsoFormatOptions {
        volume_name: volume_id.to_owned(),
        system_id: Some("LINUX".to_owned()),
        volume_set_id: None,
        publisher_id: None,
        preparer_id: None,
        application_id: Some("SPROUT".to_owned()),
        sector_size: SECTOR_SIZE_BYTES,
        path_separator: PathSeparator::ForwardSlash,
        // Without strict_charset hadris stores identifiers byte-for-byte; with
        // it, it would upper-case the label (d-characters), which breaks
        // `LABEL=cluster-config` lookups by the lifecycle agent.
        strict_charset: false,
        features: CreationFeatures {
            // The ISO9660 names are only a fallback for readers without
            // Rock Ridge or Joliet; real names live in RR NM and Joliet.
            filenames: BaseIsoLevel::Level2 {
                supports_lowercase: false,
                supports_rrip: true,
            },
            long_filenames: false,
            joliet: Some(JolietLevel::Level3),
            rock_ridge: Some(RripOptions {
                relocate_deep_dirs: false,
                ..RripOptions::default()
            }),
            el_torito: None,
            hybrid_boot: None,
        },
    };

    // hadris reads its volume descriptors back to patch them, so it needs a
    // readable stream; building in memory lets `out` be a write-only handle
    // (e.g. from `File::create`). Configuration ISOs are small and the tree's
    // contents are in memory already.
    let image = IsoImageWriter::create(Cursor::new(Vec::new()), input, options)
        .context("building the ISO9660 image with hadris-iso")?
        .into_inner();
    let image = finish_image(volume_id, image)?;

    out.set_len(0).context("truncating the output file")?;
    out.seek(SeekFrom::Start(0))
        .context("seeking to the start of the output file")?;
    out.write_all(&image)
        .context("writing the image to the output file")?;
    out.flush().context("flushing the output file")?;
    Ok(())
}

/// Pins the label bytes and the length of the image hadris has written.
fn finish_image(volume_id: &str, mut image: Vec<u8>) -> anyhow::Result<Vec<u8>> {
    let field = |offset: u64, len: usize| {
        let start = usize::try_from(PVD_OFFSET + offset).ok()?;
        Some(start..start.checked_add(len)?)
    };
    let label_range = field(VOLUME_ID_OFFSET, VOLUME_ID_LEN)
        .filter(|range| range.end <= image.len())
        .context("checking the built image: it has no primary volume descriptor")?;
    let space_range = field(VOLUME_SPACE_OFFSET, 4)
        .filter(|range| range.end <= image.len())
        .context("checking the built image: it has no primary volume descriptor")?;

    // hadris 2.5.0 already writes the identifier as-is when `strict_charset`
    // is false. The label is what the lifecycle agent and blkid look the ISO
    // up by (`LABEL=cluster-config`, lower case, which is not d-characters),
    // so write the PVD field ourselves rather than depend on that option's
    // behaviour staying the same. (The Joliet descriptor carries the same
    // label in UTF-16, which hadris never case-folds.)
    let mut label = [b' '; VOLUME_ID_LEN];
    label[..volume_id.len()].copy_from_slice(volume_id.as_bytes());
    image[label_range].copy_from_slice(&label);

    // The image must be exactly the recorded volume size.
    let mut space = [0u8; 4];
    space.copy_from_slice(&image[space_range]);
    let sectors = u64::from(u32::from_le_bytes(space));
    ensure!(
        sectors > 17,
        "written image records an implausible size of {sectors} sectors"
    );
    let len = usize::try_from(sectors * SECTOR_SIZE).context("checking the built image size")?;
    image.resize(len, 0);
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_paths() {
        let mut tree = IsoTree::new();
        for bad in ["", "/abs", "a//b", "a/../b", "..", "./a", "a/", "x\0y"] {
            assert!(tree.add_file(bad, Vec::new()).is_err(), "{bad:?} accepted");
        }
        for bad in ["", "/", "/abs", "a//b", "a/..", "."] {
            assert!(tree.add_dir(bad).is_err(), "dir {bad:?} accepted");
        }
        let long = "x".repeat(256);
        assert!(tree.add_file(&long, Vec::new()).is_err());
        tree.add_file(&"x".repeat(255), Vec::new()).unwrap();
    }

    #[test]
    fn rejects_duplicates_and_conflicts() {
        let mut tree = IsoTree::new();
        tree.add_file("a/b.txt", b"1".to_vec()).unwrap();
        let err = tree.add_file("a/b.txt", b"2".to_vec()).unwrap_err();
        assert!(
            format!("{err:#}").contains("has already been added"),
            "{err:#}"
        );
        // A file cannot become a directory, nor a directory a file.
        assert!(tree.add_dir("a/b.txt").is_err());
        assert!(tree.add_file("a/b.txt/c", Vec::new()).is_err());
        assert!(tree.add_file("a", Vec::new()).is_err());
        // Re-adding a directory is fine, with or without a trailing slash.
        tree.add_dir("a").unwrap();
        tree.add_dir("a/").unwrap();
        tree.add_dir("a/empty/deeper").unwrap();
    }

    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const LABEL: &str = "cluster-config";

    /// Finds `tool` on PATH or in the sbin directories (blkid lives there).
    fn find_tool(tool: &str) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    }

    fn tool_or_skip(tool: &str) -> Option<PathBuf> {
        let found = find_tool(tool);
        if found.is_none() {
            eprintln!("SKIP: {tool} not installed");
        }
        found
    }

    fn run(tool: &Path, args: &[&std::ffi::OsStr]) -> String {
        let output = Command::new(tool).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{} {:?} failed: {}\n{}",
            tool.display(),
            args,
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Deterministic, non-repeating-looking contents of `len` bytes.
    fn pattern(len: usize, seed: u32) -> Vec<u8> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 24) as u8
            })
            .collect()
    }

    struct Fixture {
        files: BTreeMap<String, Vec<u8>>,
        dirs: BTreeSet<String>,
        image: tempfile::NamedTempFile,
    }

    fn fixture() -> Fixture {
        let mut files = BTreeMap::new();
        files.insert(
            "cluster-configuration/manifest.json".to_owned(),
            br#"{"apiVersion":"v1"}"#.to_vec(),
        );
        files.insert(
            "cluster-configuration/image-digest-mirror-set.json".to_owned(),
            b"{}\n".to_vec(),
        );
        files.insert(
            "cluster-configuration/kubeconfig-crypto/admin-kubeconfig-client-ca.crt".to_owned(),
            pattern(3000, 1),
        );
        files.insert(
            "extra-manifests-with-files/01-some-long-Mixed_Case.name.yaml".to_owned(),
            b"kind: ConfigMap\n".to_vec(),
        );
        files.insert("empty-file.txt".to_owned(), Vec::new());
        files.insert("big/large-blob.bin".to_owned(), pattern(200 * 1024 + 17, 2));
        files.insert("exactly-one-sector.bin".to_owned(), pattern(2048, 3));
        files.insert("a/b/c/d/e/f/g/deep-file.txt".to_owned(), b"deep\n".to_vec());
        files.insert("UPPER.TXT".to_owned(), b"upper".to_vec());
        // Enough long names that the directory spans several sectors.
        for i in 0..150 {
            let name =
                format!("many/{i:03}-a-rather-long-manifest-name-to-fill-directory-sectors.yaml");
            files.insert(name, format!("n: {i}\n").into_bytes());
        }

        let empty_dirs = ["cluster-configuration/manifests", "extra-manifests"];
        let mut tree = IsoTree::new();
        for dir in empty_dirs {
            tree.add_dir(dir).unwrap();
        }
        for (path, contents) in &files {
            tree.add_file(path, contents.clone()).unwrap();
        }

        let mut dirs = BTreeSet::new();
        for path in files.keys().map(String::as_str).chain(empty_dirs) {
            let mut parent = Path::new(path);
            if empty_dirs.contains(&path) {
                dirs.insert(path.to_owned());
            }
            while let Some(p) = parent.parent().filter(|p| !p.as_os_str().is_empty()) {
                dirs.insert(p.to_str().unwrap().to_owned());
                parent = p;
            }
        }

        let mut image = tempfile::NamedTempFile::new().unwrap();
        // Stale bytes past the end must not survive: pre-fill with junk.
        image.as_file_mut().write_all(&vec![0xa5; 8 << 20]).unwrap();
        write_iso(LABEL, &tree, image.as_file_mut()).unwrap();
        Fixture { files, dirs, image }
    }

    /// Every file and directory under `root`, relative, with file contents.
    fn walk(root: &Path) -> (BTreeMap<String, Vec<u8>>, BTreeSet<String>) {
        let mut files = BTreeMap::new();
        let mut dirs = BTreeSet::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
                if kind.is_dir() {
                    dirs.insert(rel);
                    stack.push(path);
                } else {
                    assert!(kind.is_file(), "{rel} is neither file nor directory");
                    files.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
        (files, dirs)
    }

    #[test]
    fn image_size_and_label_bytes() {
        let fx = fixture();
        let bytes = std::fs::read(fx.image.path()).unwrap();
        assert_eq!(bytes.len() % 2048, 0);
        let pvd = &bytes[16 * 2048..17 * 2048];
        assert_eq!(&pvd[..6], b"\x01CD001");
        assert_eq!(&pvd[40..72], format!("{LABEL:<32}").as_bytes());
        let sectors = u32::from_le_bytes(pvd[80..84].try_into().unwrap());
        assert_eq!(bytes.len() as u64, u64::from(sectors) * 2048);
        // The system area stays empty: no MBR/GPT, nothing bootable.
        assert!(bytes[..16 * 2048].iter().all(|&b| b == 0));
    }

    #[test]
    fn blkid_reports_label_and_type() {
        let Some(blkid) = tool_or_skip("blkid") else {
            return;
        };
        let fx = fixture();
        let out = run(
            &blkid,
            &[
                "-p".as_ref(),
                "-o".as_ref(),
                "export".as_ref(),
                fx.image.path().as_os_str(),
            ],
        );
        let lines: BTreeSet<&str> = out.lines().collect();
        assert!(lines.contains("LABEL=cluster-config"), "{out}");
        assert!(lines.contains("TYPE=iso9660"), "{out}");
    }

    #[test]
    fn xorriso_extracts_identical_tree() {
        let Some(xorriso) = tool_or_skip("xorriso") else {
            return;
        };
        let fx = fixture();
        let outdir = tempfile::tempdir().unwrap();
        let target = outdir.path().join("x");
        run(
            &xorriso,
            &[
                "-osirrox".as_ref(),
                "on".as_ref(),
                "-indev".as_ref(),
                fx.image.path().as_os_str(),
                "-extract".as_ref(),
                "/".as_ref(),
                target.as_os_str(),
            ],
        );
        let (files, dirs) = walk(&target);
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            fx.files.keys().collect::<Vec<_>>()
        );
        for (path, contents) in &fx.files {
            assert!(files[path] == *contents, "{path} differs after extraction");
        }
        assert_eq!(dirs, fx.dirs);
        assert!(target.join("extra-manifests").is_dir());
        assert!(target.join("cluster-configuration/manifests").is_dir());
    }

    #[test]
    fn isovfy_finds_no_errors() {
        let Some(isovfy) = tool_or_skip("isovfy") else {
            return;
        };
        let fx = fixture();
        let out = run(&isovfy, &[fx.image.path().as_os_str()]);
        assert!(out.contains("No errors found"), "{out}");
    }

    #[test]
    fn writes_to_write_only_handle_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imagebasedconfig.iso");
        std::fs::write(&path, vec![0x5a; 4 << 20]).unwrap();
        let mut tree = IsoTree::new();
        tree.add_file("a.txt", b"a".to_vec()).unwrap();
        let mut out = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        write_iso(LABEL, &tree, &mut out).unwrap();
        drop(out);
        let bytes = std::fs::read(&path).unwrap();
        let sectors = u32::from_le_bytes(bytes[16 * 2048 + 80..16 * 2048 + 84].try_into().unwrap());
        assert_eq!(bytes.len() as u64, u64::from(sectors) * 2048);
        assert!(bytes.len() < 4 << 20);
        assert!(bytes[..16 * 2048].iter().all(|&b| b == 0));
    }

    /// Expected full listing ("/a", "/a/b", ...) of files and directories.
    fn expected_listing(fx: &Fixture) -> BTreeSet<String> {
        fx.files
            .keys()
            .chain(fx.dirs.iter())
            .map(|p| format!("/{p}"))
            .collect()
    }

    #[test]
    fn isoinfo_lists_rock_ridge_names() {
        let Some(isoinfo) = tool_or_skip("isoinfo") else {
            return;
        };
        let fx = fixture();
        let image = fx.image.path().as_os_str();
        let listing = run(
            &isoinfo,
            &["-R".as_ref(), "-f".as_ref(), "-i".as_ref(), image],
        );
        let listed: BTreeSet<String> = listing.lines().map(str::to_owned).collect();
        assert_eq!(listed, expected_listing(&fx), "{listing}");

        let long = run(
            &isoinfo,
            &["-R".as_ref(), "-l".as_ref(), "-i".as_ref(), image],
        );
        for name in [
            "image-digest-mirror-set.json",
            "manifest.json",
            "01-some-long-Mixed_Case.name.yaml",
            "admin-kubeconfig-client-ca.crt",
        ] {
            assert!(
                long.lines()
                    .any(|line| line.trim_end().ends_with(&format!(" {name}"))),
                "{name} missing from:\n{long}"
            );
        }
    }

    #[test]
    fn isoinfo_lists_joliet_names() {
        let Some(isoinfo) = tool_or_skip("isoinfo") else {
            return;
        };
        let fx = fixture();
        let image = fx.image.path().as_os_str();
        let listing = run(
            &isoinfo,
            &["-J".as_ref(), "-f".as_ref(), "-i".as_ref(), image],
        );
        let listed: BTreeSet<String> = listing.lines().map(str::to_owned).collect();
        assert_eq!(listed, expected_listing(&fx), "{listing}");

        // Joliet contents, read back through the Joliet tree.
        let path = "/extra-manifests-with-files/01-some-long-Mixed_Case.name.yaml";
        let contents = Command::new(&isoinfo)
            .args([
                "-J".as_ref(),
                "-i".as_ref(),
                image,
                "-x".as_ref(),
                path.as_ref(),
            ])
            .output()
            .unwrap();
        assert!(contents.status.success());
        assert_eq!(contents.stdout, fx.files[&path[1..]]);
    }

    #[test]
    fn rejects_too_deep_trees() {
        let sink = tempfile::tempfile().unwrap();
        let mut ok = IsoTree::new();
        ok.add_file("a/b/c/d/e/f/g/file-at-level-8", b"x".to_vec())
            .unwrap();
        write_iso(LABEL, &ok, &mut sink.try_clone().unwrap()).unwrap();

        let mut deep = IsoTree::new();
        deep.add_dir("a/b/c/d/e/f/g/h").unwrap();
        let err = write_iso(LABEL, &deep, &mut sink.try_clone().unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("nested deeper"), "{err:#}");

        let mut long = IsoTree::new();
        let component = "d".repeat(100);
        long.add_dir(&[component.as_str(); 3].join("/")).unwrap();
        let err = write_iso(LABEL, &long, &mut sink.try_clone().unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("longer than"), "{err:#}");
    }

    #[test]
    fn rejects_bad_volume_ids() {
        assert!(validate_volume_id("").is_err());
        assert!(validate_volume_id(&"a".repeat(33)).is_err());
        assert!(validate_volume_id("caf\u{e9}").is_err());
        validate_volume_id(&"a".repeat(32)).unwrap();
        validate_volume_id("cluster-config").unwrap();
    }
}
