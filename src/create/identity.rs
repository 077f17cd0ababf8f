//! The cluster identity: IDs, signer keys and the kubeadmin password.
//!
//! Upstream keeps these in `.openshift_install_state.json` next to the
//! inputs, and regenerates some of them whenever install-config.yaml changes,
//! which silently invalidates a kubeconfig that was already handed out.
//! sprout keeps the whole identity in one 0600 state file and reuses it on
//! every run until the user asks for `--regenerate`; only the infra ID, which
//! is derived from the cluster name, follows a change of that name.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::crypto::{self, ApiCrypto, CertKey};
use super::password;
use crate::host::fs::SECRET_MODE;
use crate::host::input::{InputKind, read_input};
use crate::host::outdir::{OutputDir, Transaction};

/// The state file's name in `--dir`.
pub const STATE_FILE: &str = ".sprout-state.json";
const STATE_VERSION: u32 = 1;

/// Characters of the infra ID's random suffix (no vowels: no words).
const INFRA_ID_SUFFIX_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const INFRA_ID_NAME_MAX: usize = 21;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterIdentity {
    pub version: u32,
    pub cluster_id: String,
    pub infra_id: String,
    /// The cluster name `infra_id` was derived from.
    pub infra_id_cluster_name: String,
    pub kubeadmin_password: String,
    pub kubeadmin_password_hash: String,
    pub api_crypto: ApiCrypto,
    pub ingress_signer: CertKey,
}

/// How the identity was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Generated,
    Reused,
}

impl ClusterIdentity {
    pub fn generate(cluster_name: &str) -> Result<Self> {
        let kubeadmin_password = password::generate_kubeadmin_password()?;
        // The keys and the bcrypt hash are the slow parts: side by side.
        let (crypto, hash) = std::thread::scope(|scope| {
            let keys = scope.spawn(crypto::generate_cluster_crypto);
            let hash = password::hash_kubeadmin_password(&kubeadmin_password);
            let keys = keys
                .join()
                .map_err(|_| anyhow::anyhow!("the key generation thread panicked"));
            (keys, hash)
        });
        let (api_crypto, ingress_signer) = crypto??;
        Ok(Self {
            version: STATE_VERSION,
            cluster_id: uuid::Uuid::new_v4().to_string(),
            infra_id: infra_id(cluster_name)?,
            infra_id_cluster_name: cluster_name.to_string(),
            kubeadmin_password_hash: hash?,
            kubeadmin_password,
            api_crypto,
            ingress_signer,
        })
    }

    /// Reads the state file of `dir`, if there is one.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(STATE_FILE);
        // Every way the file can be bad gets the same two ways out.
        let hint = "It holds this cluster's identity: restore it from a backup, \
             or run again with --regenerate to start a new identity (kubeconfigs from earlier runs \
             will stop working)";
        let bytes = match read_input(&path, InputKind::StateFile) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => bail!("{e}. {hint}"),
        };
        let id: Self = serde_json::from_slice(&bytes).map_err(|e| {
            // serde may quote the file's content, which holds secrets.
            let e = crate::api::excerpt::sanitize_message(&e.to_string());
            anyhow::anyhow!(
                "{} is damaged ({e}). It holds this cluster's identity: restore it from a backup, \
                 or run again with --regenerate to start a new identity (kubeconfigs from earlier runs \
                 will stop working)",
                path.display()
            )
        })?;
        id.check().with_context(|| {
            format!(
                "checking {}; restore it from a backup or run again with --regenerate",
                path.display()
            )
        })?;
        Ok(Some(id))
    }

    /// Checks the invariants a hand-edited or damaged file could break.
    fn check(&self) -> Result<()> {
        if self.version != STATE_VERSION {
            bail!(
                "state version {} is not supported (this sprout writes {STATE_VERSION})",
                self.version
            );
        }
        uuid::Uuid::parse_str(&self.cluster_id).context("reading cluster_id")?;
        if !bcrypt::verify(&self.kubeadmin_password, &self.kubeadmin_password_hash).unwrap_or(false)
        {
            bail!("kubeadmin_password_hash does not match kubeadmin_password");
        }
        let a = &self.api_crypto;
        for (name, ck) in [
            ("lb_signer", &a.lb_signer),
            ("localhost_signer", &a.localhost_signer),
            ("service_network_signer", &a.service_network_signer),
            ("admin_kubeconfig_signer", &a.admin_kubeconfig_signer),
            ("admin_kubeconfig_client", &a.admin_kubeconfig_client),
            ("ingress_signer", &self.ingress_signer),
        ] {
            if !crypto::key_matches_cert(&ck.cert_pem, &ck.key_pem)
                .with_context(|| format!("reading {name}"))?
            {
                bail!("the key of {name} does not belong to its certificate");
            }
        }
        Ok(())
    }

    /// Stages the state file (0600: it holds private keys and the password)
    /// in `dir`. Callers stage it last: it records a complete run.
    pub fn stage(&self, dir: &OutputDir, tx: &mut Transaction) -> Result<()> {
        let text = serde_json::to_vec_pretty(self).context("encoding the cluster identity")?;
        tx.stage(dir, STATE_FILE, SECRET_MODE, &text)
    }

    /// The saved identity for `cluster_name`, or a new one.
    pub fn load_or_generate(
        dir: &Path,
        cluster_name: &str,
        regenerate: bool,
    ) -> Result<(Self, Origin)> {
        if !regenerate && let Some(mut id) = Self::load(dir)? {
            if id.infra_id_cluster_name != cluster_name {
                tracing::info!(
                    old = %id.infra_id_cluster_name,
                    new = %cluster_name,
                    "the cluster name changed; deriving a new infra ID, keeping the rest of the identity"
                );
                id.infra_id = infra_id(cluster_name)?;
                id.infra_id_cluster_name = cluster_name.to_string();
            }
            return Ok((id, Origin::Reused));
        }
        Ok((Self::generate(cluster_name)?, Origin::Generated))
    }
}

impl ClusterIdentity {
    /// When this identity was made: the NotBefore of its admin-kubeconfig
    /// signer. Read from the state (not stored beside it), so a state file
    /// written before this existed gives the same answer on every run.
    pub fn created_unix(&self) -> Result<i64> {
        let cert = openssl::x509::X509::from_pem(
            self.api_crypto.admin_kubeconfig_signer.cert_pem.as_bytes(),
        )
        .context("reading admin_kubeconfig_signer")?;
        let epoch = openssl::asn1::Asn1Time::from_unix(0).context("encoding the epoch")?;
        let d = epoch
            .diff(cert.not_before())
            .context("reading the NotBefore of admin_kubeconfig_signer")?;
        Ok(i64::from(d.days) * 86_400 + i64::from(d.secs))
    }

    /// The instant stamped on every date of the images built from this
    /// identity: `SOURCE_DATE_EPOCH` when set (reproducible-builds.org's
    /// convention), else [`Self::created_unix`]. Never the clock: two runs
    /// with the same state write the same bytes.
    pub fn image_time(&self) -> Result<i64> {
        match source_date_epoch()? {
            Some(t) => Ok(t),
            None => self.created_unix(),
        }
    }
}

/// `SOURCE_DATE_EPOCH` as seconds, if set.
pub fn source_date_epoch() -> Result<Option<i64>> {
    let Some(v) = std::env::var_os(SOURCE_DATE_EPOCH) else {
        return Ok(None);
    };
    let text = v.to_string_lossy();
    match text.trim().parse::<i64>() {
        Ok(t) if t >= 0 => Ok(Some(t)),
        _ => bail!(
            "{SOURCE_DATE_EPOCH}={} is not a number of seconds since 1970; set it to e.g. \
             $(git log -1 --format=%ct) or unset it to use the identity's creation time",
            crate::api::excerpt::escape_text(&text)
        ),
    }
}

/// The environment variable that pins the dates written into images.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";

/// The infra ID: the cluster name made safe, cut to 21 characters, plus `-`
/// and five random characters (27 at most).
pub fn infra_id(cluster_name: &str) -> Result<String> {
    let mut base = String::new();
    for c in cluster_name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '-' {
            c
        } else {
            '-'
        };
        if !(c == '-' && base.ends_with('-')) {
            base.push(c);
        }
    }
    if base.len() > INFRA_ID_NAME_MAX {
        tracing::warn!(
            "Length of cluster name {cluster_name:?} is {} which is greater than the max {INFRA_ID_NAME_MAX} allowed. \
             The name will be truncated",
            base.len()
        );
        base.truncate(INFRA_ID_NAME_MAX);
    }
    let base = base.trim_end_matches('-');
    Ok(format!(
        "{base}-{}",
        password::random_chars(INFRA_ID_SUFFIX_CHARS, 5)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infra_id_rules() {
        let id = infra_id("sno").unwrap();
        assert_eq!(id.len(), 9);
        assert!(id.starts_with("sno-"));
        assert!(id[4..].bytes().all(|b| INFRA_ID_SUFFIX_CHARS.contains(&b)));
        let long = infra_id("a-very-long_cluster..name-that-goes-on").unwrap();
        assert!(long.starts_with("a-very-long-cluster-n-"), "{long}");
        assert!(long.len() <= 27);
        let trailing = infra_id("abcdefghijklmnopqrst-xyz").unwrap();
        assert!(trailing.starts_with("abcdefghijklmnopqrst-"), "{trailing}");
        assert!(!trailing.contains("--"));
    }
}
