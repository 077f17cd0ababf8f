//! A throwaway container registry (Debian's `docker-registry`) on
//! 127.0.0.1, with TLS and htpasswd authentication like a real one. It is
//! started on a free port and killed and reaped when dropped.

use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use base64::Engine;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509Builder, X509NameBuilder};

use crate::host::command::Cmd;

pub const USER: &str = "factory";
pub const PASSWORD: &str = "s3ed-pass";

pub struct LocalRegistry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl LocalRegistry {
    /// Starts a registry requiring TLS and `USER`/`PASSWORD`.
    pub fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("sprout-registry-")
            .tempdir()
            .context("creating the registry's directory")?;
        write_server_files(dir.path())?;
        let mut last = None;
        // A free port can be taken between probing and binding; try again.
        for _ in 0..3 {
            let port = free_port()?;
            match spawn(dir.path(), port) {
                Ok(child) => {
                    let reg = Self { child, dir, port };
                    return reg.wait_ready().map(|()| reg);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("the registry did not start")))
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A directory with the registry's CA as `ca.crt`, for `--cert-dir`.
    pub fn cert_dir(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// An auth file (podman's format) with the registry's credentials.
    pub fn write_authfile(&self, path: &Path) -> Result<()> {
        write_authfile(&self.host(), path)
    }

    /// Pushes `oci:LAYOUT:TAG` as `REPO:TAG`; returns the reference without
    /// `docker://`.
    pub fn push(&self, layout: &Path, tag: &str, repo: &str) -> Result<String> {
        self.copy_in(layout, tag, repo, &[])
    }

    /// [`push`](Self::push) that keeps every digest (manifest and blobs)
    /// as the layout has them, so images pulled by digest find them, or
    /// fails.
    pub fn push_preserving_digests(&self, layout: &Path, tag: &str, repo: &str) -> Result<String> {
        self.copy_in(layout, tag, repo, &["--preserve-digests"])
    }

    fn copy_in(&self, layout: &Path, tag: &str, repo: &str, flags: &[&str]) -> Result<String> {
        let authfile = self.dir.path().join("push-auth.json");
        self.write_authfile(&authfile)?;
        let target = format!("{}/{repo}:{tag}", self.host());
        let mut src = std::ffi::OsString::from("oci:");
        src.push(layout);
        src.push(format!(":{tag}"));
        Cmd::new("skopeo")
            .args(["copy", "--quiet"])
            .args(flags)
            .arg("--dest-authfile")
            .arg(&authfile)
            .arg("--dest-cert-dir")
            .arg(self.cert_dir())
            .arg(src)
            .arg(format!("docker://{target}"))
            .run()
            .context("pushing to the local registry")?;
        Ok(target)
    }

    /// The registry's storage directory (`docker/registry/v2/…`): another
    /// registry whose `rootdirectory` is a copy of it serves the same
    /// images under any address.
    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// How often the blob `digest` (`sha256:…`) was downloaded: GET
    /// requests the registry answered with its content, from its access
    /// log (HEAD requests, which only ask whether it exists, do not count).
    pub fn blob_downloads(&self, digest: &str) -> usize {
        let log = fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        let path = format!("/blobs/{digest} ");
        log.lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&path))
            .filter(|l| l.contains("\" 200 ") || l.contains("\" 206 "))
            .count()
    }

    fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        bail!(
            "the registry did not listen on {} within 20 s: {log}",
            self.host()
        )
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(l.local_addr().context("finding a free port")?.port())
}

fn spawn(dir: &Path, port: u16) -> Result<Child> {
    let d = dir.display();
    let config = format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {d}/storage\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: sprout-test\n  \
         tls:\n    certificate: {d}/cert.pem\n    key: {d}/key.pem\n\
         auth:\n  htpasswd:\n    realm: sprout-test\n    path: {d}/htpasswd\n"
    );
    let cfg = dir.join("config.yml");
    fs::write(&cfg, config).context("writing the registry config")?;
    let log = fs::File::create(dir.join("registry.log")).context("creating the registry log")?;
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("opening the registry log")?)
        .stderr(log)
        .spawn()
        .context("starting docker-registry")?;
    std::thread::sleep(Duration::from_millis(100));
    if let Some(status) = child.try_wait().context("checking the registry")? {
        let log = fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
        bail!("docker-registry exited at once ({status}): {log}");
    }
    Ok(child)
}

/// An auth file (podman's format) with `USER`/`PASSWORD` for `host`.
pub fn write_authfile(host: &str, path: &Path) -> Result<()> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let json = serde_json::json!({ "auths": { host: { "auth": auth } } });
    fs::write(path, serde_json::to_vec_pretty(&json)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// What a registry on 127.0.0.1 needs, written into `dir`: `cert.pem` and
/// `key.pem` (self-signed, its own CA), `certs/ca.crt` (the same
/// certificate, for `--cert-dir` or `certs.d`) and `htpasswd` (bcrypt, as
/// docker-registry requires) for `USER`/`PASSWORD`. The VM tests start a
/// registry in the guest with these.
pub fn write_server_files(dir: &Path) -> Result<()> {
    write_tls(dir)?;
    let hash = bcrypt::hash(PASSWORD, 4).context("hashing the registry password")?;
    fs::write(dir.join("htpasswd"), format!("{USER}:{hash}\n")).context("writing htpasswd")
}

/// A self-signed certificate for 127.0.0.1 that is its own CA, and its
/// key: (certificate PEM, PKCS#8 key PEM).
pub fn self_signed_localhost() -> Result<(Vec<u8>, Vec<u8>)> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "127.0.0.1")?;
    let name = name.build();
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::MAYBE_ZERO, false)?;
    b.set_serial_number(serial.to_asn1_integer()?.as_ref())?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let from = i64::try_from(now).unwrap_or(0) - 3600;
    b.set_not_before(Asn1Time::from_unix(from)?.as_ref())?;
    b.set_not_after(Asn1Time::days_from_now(2)?.as_ref())?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((b.build().to_pem()?, key.private_key_to_pem_pkcs8()?))
}

fn write_tls(dir: &Path) -> Result<()> {
    let (cert, key) = self_signed_localhost()?;
    fs::write(dir.join("cert.pem"), &cert).context("writing cert.pem")?;
    let mut k = fs::File::create(dir.join("key.pem")).context("creating key.pem")?;
    k.write_all(&key).context("writing key.pem")?;
    fs::create_dir_all(dir.join("certs")).context("creating certs/")?;
    fs::write(dir.join("certs/ca.crt"), &cert).context("writing certs/ca.crt")?;
    Ok(())
}
