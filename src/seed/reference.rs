//! Where a seed comes from: a registry, an OCI layout, an OCI archive, or a
//! directory holding an already mounted image.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// A seed image reference as the user writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedRef {
    /// `docker://REF`, or a bare `registry/repo:tag` as in `seedImage`.
    Docker(String),
    /// `oci:DIR[:TAG]`: an OCI image layout directory.
    OciDir { dir: PathBuf, tag: Option<String> },
    /// `oci-archive:FILE[:TAG]`: a tar of an OCI image layout, e.g. on a
    /// USB disk for a factory without a registry.
    OciArchive { file: PathBuf, tag: Option<String> },
    /// A directory holding the seed's files, e.g. `podman image mount`'s
    /// output. It has no image labels to check.
    Dir(PathBuf),
}

const FORMS: &str = "write docker://REGISTRY/REPO:TAG, oci:DIR[:TAG], oci-archive:FILE[:TAG], \
     or the path of a directory holding a mounted seed image";

impl SeedRef {
    /// Parses the forms listed on [`SeedRef`]. A bare path must exist; a
    /// bare string that is not a path is taken as a registry reference,
    /// like upstream's `seedImage`.
    pub fn parse(s: &str) -> Result<Self> {
        if s.trim().is_empty() {
            bail!("the seed reference is empty; {FORMS}");
        }
        if let Some(r) = s.strip_prefix("docker://") {
            check_image_ref(r)?;
            return Ok(Self::Docker(r.to_string()));
        }
        if let Some(rest) = s.strip_prefix("oci:") {
            let (path, tag) = split_tag(rest)?;
            return Ok(Self::OciDir { dir: path, tag });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (path, tag) = split_tag(rest)?;
            return Ok(Self::OciArchive { file: path, tag });
        }
        for other in [
            "dir:",
            "docker-archive:",
            "containers-storage:",
            "docker-daemon:",
        ] {
            if s.starts_with(other) {
                bail!(
                    "{s}: the {} transport is not supported for seeds; copy the image with \
                     `skopeo copy {s} oci-archive:seed.tar` and use oci-archive:seed.tar",
                    other.trim_end_matches(':')
                );
            }
        }
        let path = Path::new(s);
        match path.symlink_metadata() {
            Ok(_) if path.is_dir() => Ok(Self::Dir(path.to_path_buf())),
            Ok(_) => bail!(
                "{s} is a file, not a directory; if it is an OCI archive write oci-archive:{s}"
            ),
            Err(_) if s.starts_with('/') || s.starts_with('.') => {
                bail!("{s}: no such directory; {FORMS}")
            }
            Err(_) => {
                check_image_ref(s)
                    .map_err(|e| anyhow::anyhow!("{s} is neither a directory nor {e}"))?;
                Ok(Self::Docker(s.to_string()))
            }
        }
    }
}

/// `PATH[:TAG]`: the tag is what follows the last `:` when it has no `/`.
fn split_tag(rest: &str) -> Result<(PathBuf, Option<String>)> {
    let (path, tag) = match rest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') && !p.is_empty() => (p, Some(t)),
        _ => (rest, None),
    };
    if path.is_empty() {
        bail!("the path is missing; {FORMS}");
    }
    if tag.is_some_and(str::is_empty) {
        bail!("{rest}: the tag after ':' is empty; drop the ':' or name the tag");
    }
    Ok((PathBuf::from(path), tag.map(str::to_string)))
}

/// A plausible `registry/repo[:tag][@digest]`: no spaces, no scheme.
fn check_image_ref(r: &str) -> Result<()> {
    let ok = !r.is_empty()
        && !r.contains("://")
        && r.bytes().all(|b| b.is_ascii_graphic())
        && r.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        bail!("a registry reference such as quay.io/org/seed:4.16.0 ({FORMS})")
    }
}

impl fmt::Display for SeedRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn tagged(f: &mut fmt::Formatter<'_>, p: &Path, tag: &Option<String>) -> fmt::Result {
            write!(f, "{}", p.display())?;
            match tag {
                Some(t) => write!(f, ":{t}"),
                None => Ok(()),
            }
        }
        match self {
            Self::Docker(r) => write!(f, "docker://{r}"),
            Self::OciDir { dir, tag } => {
                write!(f, "oci:")?;
                tagged(f, dir, tag)
            }
            Self::OciArchive { file, tag } => {
                write!(f, "oci-archive:")?;
                tagged(f, file, tag)
            }
            Self::Dir(d) => write!(f, "{}", d.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            SeedRef::parse("docker://quay.io/o/seed:4.16.0").unwrap(),
            SeedRef::Docker("quay.io/o/seed:4.16.0".into())
        );
        assert_eq!(
            SeedRef::parse("quay.io/o/seed@sha256:abc").unwrap(),
            SeedRef::Docker("quay.io/o/seed@sha256:abc".into())
        );
        assert_eq!(
            SeedRef::parse("oci:/srv/seed:v1").unwrap(),
            SeedRef::OciDir {
                dir: "/srv/seed".into(),
                tag: Some("v1".into())
            }
        );
        assert_eq!(
            SeedRef::parse("oci:/srv/seed").unwrap(),
            SeedRef::OciDir {
                dir: "/srv/seed".into(),
                tag: None
            }
        );
        assert_eq!(
            SeedRef::parse("oci-archive:/media/usb/seed.tar").unwrap(),
            SeedRef::OciArchive {
                file: "/media/usb/seed.tar".into(),
                tag: None
            }
        );
        let d = tempfile::tempdir().unwrap();
        let p = d.path().to_str().unwrap();
        assert_eq!(SeedRef::parse(p).unwrap(), SeedRef::Dir(d.path().into()));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "docker://127.0.0.1:5000/ocp/seed:v1",
            "oci:/srv/seed:v1",
            "oci-archive:/a/b.tar",
        ] {
            assert_eq!(SeedRef::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn refusals_say_what_to_write() {
        let e = SeedRef::parse("/nonexistent/seed").unwrap_err().to_string();
        assert!(
            e.contains("no such directory") && e.contains("oci-archive:"),
            "{e}"
        );
        let e = SeedRef::parse("dir:/x").unwrap_err().to_string();
        assert!(e.contains("skopeo copy"), "{e}");
        let e = SeedRef::parse("oci:/x:").unwrap_err().to_string();
        assert!(e.contains("tag"), "{e}");
        let f = tempfile::NamedTempFile::new().unwrap();
        let e = SeedRef::parse(f.path().to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("oci-archive:"), "{e}");
        assert!(SeedRef::parse("docker://has space").is_err());
    }
}
