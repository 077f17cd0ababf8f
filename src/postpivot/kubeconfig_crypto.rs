//! `WD/kubeconfig-crypto/`: the retained signer keys and the admin client CA
//! handed to recert as files (spec §3.5 step 2).
//!
//! The installer generated these keys and, from them, the kubeconfig the
//! user already holds; recert must re-sign the cluster with exactly these
//! (`use_key_rules`, `use_cert_rules`) for that kubeconfig to work. Every
//! file is written, even when its value is empty, as upstream does: the
//! names are a contract with the rules in `recert_config.json`.

use std::path::Path;

use anyhow::{Context, Result};

use crate::api::seed_reconfig::KubeConfigCryptoRetention;
use crate::host::fs::{SECRET_MODE, write_atomic};

/// The directory's name under the working directory.
pub const DIR_NAME: &str = "kubeconfig-crypto";
/// Mode of the directory.
pub const DIR_MODE: u32 = 0o700;

/// `KubeAPICrypto.ClientAuthCrypto.admin_ca_certificate`.
pub const ADMIN_CLIENT_CA: &str = "admin-kubeconfig-client-ca.crt";
/// `KubeAPICrypto.ServingCrypto.loadbalancer_external_signer_private_key`.
pub const LOADBALANCER_SIGNER_KEY: &str = "loadbalancer-serving-signer.key";
/// `KubeAPICrypto.ServingCrypto.localhost_signer_private_key`.
pub const LOCALHOST_SIGNER_KEY: &str = "localhost-serving-signer.key";
/// `KubeAPICrypto.ServingCrypto.service_network_signer_private_key`.
pub const SERVICE_NETWORK_SIGNER_KEY: &str = "service-network-serving-signer.key";
/// `IngresssCrypto.ingress_ca`. recert's rule uses the first file whose
/// name starts with [`INGRESS_KEY_PREFIX`].
pub const INGRESS_KEY: &str = "ingresskey-ingress-operator.key";
/// The prefix upstream looks for when naming the ingress key in a rule.
pub const INGRESS_KEY_PREFIX: &str = "ingresskey-";

/// The files in the order upstream writes them, with their contents.
pub fn files(retention: &KubeConfigCryptoRetention) -> [(&'static str, &str); 5] {
    let api = &retention.kube_api_crypto;
    [
        (
            ADMIN_CLIENT_CA,
            api.client_auth_crypto.admin_ca_certificate.as_str(),
        ),
        (
            LOADBALANCER_SIGNER_KEY,
            api.serving_crypto
                .loadbalancer_external_signer_private_key
                .as_str(),
        ),
        (
            LOCALHOST_SIGNER_KEY,
            api.serving_crypto.localhost_signer_private_key.as_str(),
        ),
        (
            SERVICE_NETWORK_SIGNER_KEY,
            api.serving_crypto
                .service_network_signer_private_key
                .as_str(),
        ),
        (INGRESS_KEY, retention.ingress_crypto.ingress_ca.as_str()),
    ]
}

/// Writes `dir` (0700) and its five files (0600). Idempotent: a rerun
/// rewrites the same bytes, and a directory left with a wider mode is
/// tightened.
pub fn write(dir: &Path, retention: &KubeConfigCryptoRetention) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
        .with_context(|| format!("setting the mode of {}", dir.display()))?;
    for (name, contents) in files(retention) {
        write_atomic(&dir.join(name), contents.as_bytes(), SECRET_MODE)?;
    }
    Ok(())
}

/// The names of the entries of `dir`, sorted as Go's `os.ReadDir` returns
/// them; `None` when `dir` does not exist.
pub fn list(dir: &Path) -> Result<Option<Vec<String>>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    let mut names = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(Some(names))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn writes_every_file_with_its_mode_even_when_empty() {
        let wd = tempfile::tempdir().unwrap();
        let dir = wd.path().join(DIR_NAME);
        let mut r = KubeConfigCryptoRetention::default();
        r.kube_api_crypto
            .serving_crypto
            .localhost_signer_private_key = "LOCALHOST KEY".into();
        r.ingress_crypto.ingress_ca = "INGRESS KEY".into();
        write(&dir, &r).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let names = list(&dir).unwrap().unwrap();
        assert_eq!(
            names,
            [
                "admin-kubeconfig-client-ca.crt",
                "ingresskey-ingress-operator.key",
                "loadbalancer-serving-signer.key",
                "localhost-serving-signer.key",
                "service-network-serving-signer.key",
            ]
        );
        for n in &names {
            assert_eq!(mode(&dir.join(n)), 0o600, "{n}");
        }
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).unwrap();
        assert_eq!(read("localhost-serving-signer.key"), "LOCALHOST KEY");
        assert_eq!(read("ingresskey-ingress-operator.key"), "INGRESS KEY");
        assert_eq!(read("admin-kubeconfig-client-ca.crt"), "");
    }

    #[test]
    fn rerun_tightens_a_wide_directory_and_rewrites() {
        let wd = tempfile::tempdir().unwrap();
        let dir = wd.path().join(DIR_NAME);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join(ADMIN_CLIENT_CA), "old").unwrap();
        let mut r = KubeConfigCryptoRetention::default();
        r.kube_api_crypto.client_auth_crypto.admin_ca_certificate = "new".into();
        write(&dir, &r).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(ADMIN_CLIENT_CA)), 0o600);
        assert_eq!(
            std::fs::read_to_string(dir.join(ADMIN_CLIENT_CA)).unwrap(),
            "new"
        );
    }

    #[test]
    fn list_of_a_missing_directory_is_none() {
        let wd = tempfile::tempdir().unwrap();
        assert_eq!(list(&wd.path().join("absent")).unwrap(), None);
    }
}
