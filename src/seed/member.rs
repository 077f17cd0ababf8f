//! Which tarball members are safe, shared by extraction and by the
//! read-only check `seed inspect` makes.
//!
//! A seed comes from a registry or a USB disk, so its tarballs are treated
//! as hostile: a member must not reach outside the destination by its name
//! (absolute, `..`), through a symbolic link the archive made earlier, or
//! by a hard link to something outside; device nodes are refused because no
//! seed tarball holds one. Symbolic links themselves may point anywhere
//! absolute: they are resolved by the installed system against its own
//! root, and sprout never follows them while writing.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::files::Tarball;

/// A checked member: a relative path with only normal components.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub path: PathBuf,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    /// The link's target, verbatim.
    Symlink(PathBuf),
    /// The linked member's checked path.
    HardLink(PathBuf),
    Fifo,
}

/// Why a member is refused; names the member as stored in the archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Refusal {
    pub tarball: Tarball,
    pub member: String,
    pub reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: refusing member {:?}: {}",
            self.tarball, self.member, self.reason
        )
    }
}

/// The state a check needs: which earlier members were symbolic links (a
/// later member must not go through one) and which were files (a hard link
/// must name one). Paths are kept as 64-bit keyed hashes so a tarball with
/// millions of members costs megabytes, not a copy of every name.
pub struct Policy {
    tarball: Tarball,
    hasher: RandomState,
    symlinks: HashSet<u64>,
    /// The targets of relative symbolic links (few in a seed): a hard link
    /// to one is a symbolic link at another depth, checked again there.
    relative_targets: HashMap<u64, PathBuf>,
    linkable: HashSet<u64>,
}

impl Policy {
    pub fn new(tarball: Tarball) -> Self {
        Self {
            tarball,
            hasher: RandomState::new(),
            symlinks: HashSet::new(),
            relative_targets: HashMap::new(),
            linkable: HashSet::new(),
        }
    }

    fn key(&self, p: &Path) -> u64 {
        self.hasher.hash_one(p)
    }

    /// Checks one member; `Ok(None)` for entries with nothing to write (the
    /// archive root `./`, pax global headers).
    pub fn check(
        &mut self,
        kind: EntryType,
        raw_path: &[u8],
        raw_link: Option<&[u8]>,
    ) -> Result<Option<Member>, Refusal> {
        let refuse = |reason: String| Refusal {
            tarball: self.tarball,
            member: String::from_utf8_lossy(raw_path).into_owned(),
            reason,
        };
        if kind == EntryType::XGlobalHeader {
            return Ok(None);
        }
        let Some(path) = self
            .relative(raw_path)
            .map_err(|r| refuse(format!("it has {r}")))?
        else {
            return Ok(None);
        };
        self.check_not_through_symlink(&path).map_err(&refuse)?;
        let kind = match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::File,
            EntryType::Directory => {
                if self.symlinks.contains(&self.key(&path)) {
                    return Err(refuse(
                        "it turns a symbolic link the archive made into a directory".into(),
                    ));
                }
                Kind::Dir
            }
            EntryType::Symlink => {
                let target = raw_link
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| refuse("it is a symbolic link with an empty target".into()))?;
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(target));
                check_symlink_target(&path, &target).map_err(&refuse)?;
                Kind::Symlink(target)
            }
            EntryType::Link => {
                let raw = raw_link.unwrap_or_default();
                let shown = String::from_utf8_lossy(raw);
                let target = self
                    .relative(raw)
                    .map_err(|r| refuse(format!("it is a hard link to {shown:?}, which has {r}")))?
                    .ok_or_else(|| refuse("it is a hard link to the archive root".into()))?;
                self.check_not_through_symlink(&target).map_err(&refuse)?;
                let target_key = self.key(&target);
                if !self.linkable.contains(&target_key) {
                    return Err(refuse(format!(
                        "it is a hard link to {:?}, which is not a file earlier in the archive",
                        target.display()
                    )));
                }
                // A hard link to a symbolic link is that symbolic link under
                // a second name: nothing may go through it either (GNU tar
                // refuses to), and a relative target must stay inside from
                // its new place too.
                if self.symlinks.contains(&target_key) {
                    if let Some(t) = self.relative_targets.get(&target_key).cloned() {
                        check_symlink_target(&path, &t).map_err(|r| {
                            refuse(format!(
                                "it is a hard link to the symbolic link {:?}; from here {r}",
                                target.display()
                            ))
                        })?;
                        let key = self.key(&path);
                        self.relative_targets.insert(key, t);
                    }
                    let key = self.key(&path);
                    self.symlinks.insert(key);
                    self.linkable.insert(key);
                    return Ok(Some(Member {
                        path,
                        kind: Kind::HardLink(target),
                    }));
                }
                Kind::HardLink(target)
            }
            EntryType::Char | EntryType::Block => {
                return Err(refuse(
                    "it is a device node, which a seed tarball never holds".into(),
                ));
            }
            EntryType::Fifo => Kind::Fifo,
            other => {
                return Err(refuse(format!(
                    "its tar entry type {:?} is not supported",
                    other.as_byte() as char
                )));
            }
        };
        let key = self.key(&path);
        self.relative_targets.remove(&key);
        match &kind {
            Kind::Symlink(target) => {
                self.symlinks.insert(key);
                self.linkable.insert(key);
                if target.is_relative() {
                    self.relative_targets.insert(key, target.clone());
                }
            }
            Kind::Dir => {
                self.linkable.remove(&key);
            }
            _ => {
                self.symlinks.remove(&key);
                self.linkable.insert(key);
            }
        }
        Ok(Some(Member { path, kind }))
    }

    /// A member name as a relative path, refusing absolute names and `..`
    /// (the error is a noun phrase); `None` for the archive root.
    fn relative(&self, raw: &[u8]) -> Result<Option<PathBuf>, String> {
        if raw.first() == Some(&b'/') {
            return Err("an absolute name".into());
        }
        let mut out = PathBuf::new();
        for c in Path::new(std::ffi::OsStr::from_bytes(raw)).components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::CurDir => {}
                Component::ParentDir => return Err("a name with '..'".into()),
                Component::RootDir | Component::Prefix(_) => {
                    return Err("an absolute name".into());
                }
            }
        }
        if out.as_os_str().is_empty() {
            return Ok(None);
        }
        if let Some(top) = self.tarball.top_dir()
            && !out.starts_with(top)
        {
            return Err(format!(
                "a name outside {top}/, where every member of {} belongs",
                self.tarball
            ));
        }
        Ok(Some(out))
    }

    fn check_not_through_symlink(&self, path: &Path) -> Result<(), String> {
        let mut prefix = PathBuf::new();
        let mut parts = path.components().peekable();
        while let Some(c) = parts.next() {
            if parts.peek().is_none() {
                break;
            }
            prefix.push(c);
            if self.symlinks.contains(&self.key(&prefix)) {
                return Err(format!(
                    "it goes through {:?}, a symbolic link the archive made earlier",
                    prefix.display()
                ));
            }
        }
        Ok(())
    }
}

/// A relative link target must not climb above the archive root: from the
/// destination it would point outside it.
fn check_symlink_target(path: &Path, target: &Path) -> Result<(), String> {
    if target.is_absolute() {
        return Ok(());
    }
    let mut depth = path.components().count().saturating_sub(1);
    for c in target.components() {
        match c {
            Component::ParentDir if depth == 0 => {
                return Err(format!(
                    "it is a symbolic link to {:?}, which points outside the destination",
                    target.display()
                ));
            }
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        p: &mut Policy,
        t: EntryType,
        path: &str,
        link: Option<&str>,
    ) -> Result<Option<Member>, String> {
        p.check(t, path.as_bytes(), link.map(str::as_bytes))
            .map_err(|r| r.to_string())
    }

    #[test]
    fn names_are_normalised_and_confined() {
        let mut p = Policy::new(Tarball::Var);
        let m = check(&mut p, EntryType::Regular, "./var//lib/x", None)
            .unwrap()
            .unwrap();
        assert_eq!(m.path, Path::new("var/lib/x"));
        assert_eq!(
            check(&mut p, EntryType::Directory, "./", None).unwrap(),
            None
        );
        let e = check(&mut p, EntryType::Regular, "../x", None).unwrap_err();
        assert_eq!(
            e,
            "var.tgz: refusing member \"../x\": it has a name with '..'"
        );
        let e = check(&mut p, EntryType::Regular, "/etc/x", None).unwrap_err();
        assert!(e.contains("\"/etc/x\": it has an absolute name"), "{e}");
        let e = check(&mut p, EntryType::Regular, "etc/x", None).unwrap_err();
        assert!(e.contains("outside var/"), "{e}");
        let e = check(&mut p, EntryType::Regular, "var/a/../../x", None).unwrap_err();
        assert!(e.contains("'..'"), "{e}");
    }

    #[test]
    fn nothing_goes_through_an_archive_symlink() {
        let mut p = Policy::new(Tarball::Var);
        check(&mut p, EntryType::Symlink, "var/evil", Some("/")).unwrap();
        let e = check(&mut p, EntryType::Regular, "var/evil/tmp/x", None).unwrap_err();
        assert!(e.contains("goes through \"var/evil\""), "{e}");
        let e = check(&mut p, EntryType::Directory, "var/evil", None).unwrap_err();
        assert!(e.contains("into a directory"), "{e}");
        // Replacing the link with a file is fine, and then so is its path.
        check(&mut p, EntryType::Regular, "var/evil", None).unwrap();
        check(&mut p, EntryType::Symlink, "var/run", Some("../run")).unwrap();
        let e = check(&mut p, EntryType::Symlink, "var/up", Some("../../x")).unwrap_err();
        assert!(e.contains("points outside"), "{e}");
    }

    #[test]
    fn hard_links_name_earlier_files() {
        let mut p = Policy::new(Tarball::Ostree);
        check(&mut p, EntryType::Regular, "./objects/a", None).unwrap();
        let m = check(&mut p, EntryType::Link, "./objects/b", Some("./objects/a"))
            .unwrap()
            .unwrap();
        assert_eq!(m.kind, Kind::HardLink("objects/a".into()));
        for (target, want) in [
            ("/etc/shadow", "absolute name"),
            ("../x", "'..'"),
            ("objects/zz", "not a file earlier"),
        ] {
            let e = check(&mut p, EntryType::Link, "objects/c", Some(target)).unwrap_err();
            assert!(e.contains(want), "{target}: {e}");
        }
    }

    #[test]
    fn a_hard_link_to_a_symlink_is_a_symlink() {
        // GNU tar refuses the file through the second name; so does sprout.
        let mut p = Policy::new(Tarball::Var);
        check(&mut p, EntryType::Symlink, "var/l", Some("/")).unwrap();
        check(&mut p, EntryType::Link, "var/h", Some("var/l")).unwrap();
        let e = check(&mut p, EntryType::Regular, "var/h/etc/passwd", None).unwrap_err();
        assert!(e.contains("goes through \"var/h\""), "{e}");
        let e = check(&mut p, EntryType::Directory, "var/h", None).unwrap_err();
        assert!(e.contains("into a directory"), "{e}");
        // A relative link that stays inside at its depth but not at the
        // hard link's.
        check(&mut p, EntryType::Symlink, "var/a/b/up", Some("../../x")).unwrap();
        let e = check(&mut p, EntryType::Link, "var/up", Some("var/a/b/up")).unwrap_err();
        assert!(e.contains("points outside"), "{e}");
        check(&mut p, EntryType::Link, "var/c/d/up", Some("var/a/b/up")).unwrap();
        // A hard link to a hard-linked symlink is still one.
        check(&mut p, EntryType::Link, "var/h2", Some("var/h")).unwrap();
        assert!(check(&mut p, EntryType::Regular, "var/h2/x", None).is_err());
        // Replacing the second name with a file makes it a file again.
        check(&mut p, EntryType::Regular, "var/h", None).unwrap();
        check(&mut p, EntryType::Regular, "var/h2/y", None).unwrap_err();
    }

    #[test]
    fn devices_are_refused_fifos_kept() {
        let mut p = Policy::new(Tarball::Etc);
        let e = check(&mut p, EntryType::Char, "etc/null", None).unwrap_err();
        assert!(e.contains("device node"), "{e}");
        assert!(check(&mut p, EntryType::Block, "etc/sda", None).is_err());
        assert_eq!(
            check(&mut p, EntryType::Fifo, "etc/p", None)
                .unwrap()
                .unwrap()
                .kind,
            Kind::Fifo
        );
    }
}
