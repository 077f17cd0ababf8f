//! Copying a `docker://` seed out of a registry with skopeo.
//!
//! skopeo uses the same library as podman, so registries.conf (mirrors,
//! blocked and insecure registries), `/etc/containers/certs.d`, the policy,
//! proxies and the auth file all work as they do for `podman pull`. The
//! image is written as skopeo's `dir:` layout with its layers decompressed,
//! so every seed file can then be read by seeking instead of by
//! decompressing a multi-GiB layer again for each file. The layers hold
//! `.tgz` files, so decompressing the layer costs almost no disk space.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tempfile::TempDir;

use crate::host::command::Cmd;

/// How to reach a registry; the defaults are podman's.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Registry credentials (a pull secret). Default: podman's own
    /// (`REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`).
    pub authfile: Option<PathBuf>,
    /// A directory of `*.crt` (CAs), `*.cert` and `*.key` (client
    /// certificates). Default: `/etc/containers/certs.d/HOST:PORT/`.
    pub cert_dir: Option<PathBuf>,
    /// `false` allows plain HTTP and unverified TLS.
    pub tls_verify: bool,
    /// A registries.conf to use instead of `/etc/containers/registries.conf`.
    pub registries_conf: Option<PathBuf>,
    /// Where the seed is copied to; it needs room for the whole image.
    pub workdir: PathBuf,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self {
            authfile: None,
            cert_dir: None,
            tls_verify: true,
            registries_conf: None,
            workdir: PathBuf::from("/var/tmp"),
        }
    }
}

/// A seed copied out of a registry; removed when dropped.
#[derive(Debug)]
pub struct Pulled {
    dir: TempDir,
}

impl Pulled {
    /// The skopeo `dir:` layout.
    pub fn layout(&self) -> PathBuf {
        self.dir.path().join("image")
    }
}

/// Copies `docker://reference` into a new directory under `opts.workdir`.
pub fn pull(reference: &str, opts: &PullOptions) -> Result<Pulled> {
    std::fs::create_dir_all(&opts.workdir)
        .with_context(|| format!("creating the work directory {}", opts.workdir.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("sprout-seed-")
        .tempdir_in(&opts.workdir)
        .with_context(|| format!("creating a directory in {}", opts.workdir.display()))?;
    let cmd = skopeo_copy(reference, opts, dir.path());
    cmd.run().with_context(|| {
        format!(
            "copying the seed docker://{reference} from its registry; check the reference, that \
             the registry is reachable, the credentials (--authfile) and certificates (--cert-dir)"
        )
    })?;
    Ok(Pulled { dir })
}

fn skopeo_copy(reference: &str, opts: &PullOptions, dir: &Path) -> Cmd {
    let mut cmd = Cmd::new("skopeo").arg("--tmpdir").arg(dir);
    if let Some(r) = &opts.registries_conf {
        // A global flag (hidden in skopeo's help); skopeo 1.9 ignores the
        // CONTAINERS_REGISTRIES_CONF variable.
        cmd = cmd.arg("--registries-conf").arg(r);
    }
    cmd = cmd.args(["copy", "--retry-times", "3", "--dest-decompress"]);
    if let Some(a) = &opts.authfile {
        cmd = cmd.arg("--src-authfile").arg(a);
    }
    if let Some(c) = &opts.cert_dir {
        cmd = cmd.arg("--src-cert-dir").arg(c);
    }
    if !opts.tls_verify {
        cmd = cmd.arg("--src-tls-verify=false");
    }
    let mut dest = std::ffi::OsString::from("dir:");
    dest.push(dir.join("image"));
    cmd.arg(format!("docker://{reference}")).arg(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skopeo_gets_every_option_as_its_own_argument() {
        let opts = PullOptions {
            authfile: Some("/var/tmp/pull secret.json".into()),
            cert_dir: Some("/etc/certs".into()),
            tls_verify: false,
            registries_conf: Some("/r.conf".into()),
            workdir: "/w".into(),
        };
        let line = skopeo_copy("q.io/o/seed:1", &opts, Path::new("/w/x")).display();
        assert_eq!(
            line,
            "skopeo --tmpdir /w/x --registries-conf /r.conf copy --retry-times 3 --dest-decompress \
             --src-authfile '/var/tmp/pull secret.json' --src-cert-dir /etc/certs \
             --src-tls-verify=false docker://q.io/o/seed:1 dir:/w/x/image"
        );
    }
}
