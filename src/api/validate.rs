//! Field validators shared by the input files.
//!
//! Each returns `Err(detail)` with a sentence that says what is wrong and how
//! to fix it; the caller adds file and field.

use std::net::IpAddr;

use ipnet::IpNet;

/// The credential fields both install-config.yaml and
/// image-based-installation-config.yaml carry.
pub fn credentials(
    p: &mut super::diag::Problems,
    pull_secret_value: &str,
    ssh_key: &str,
    additional_trust_bundle: &str,
) {
    if pull_secret_value.is_empty() {
        p.required("pullSecret", "you must specify a pullSecret");
    } else if let Err(e) = pull_secret(pull_secret_value) {
        // The value is a secret: never echo it.
        p.add("pullSecret", format!("Invalid value: {e}"));
    }
    if !ssh_key.trim().is_empty()
        && let Err(e) = ssh_authorized_keys(ssh_key)
    {
        p.invalid("sshKey", ssh_key.trim(), &e);
    }
    if !additional_trust_bundle.is_empty()
        && let Err(e) = trust_bundle(additional_trust_bundle)
    {
        p.add("additionalTrustBundle", format!("Invalid value: {e}"));
    }
}

/// RFC 1123 label: lower-case alphanumerics and `-`, starting and ending
/// alphanumeric, at most 63 characters.
pub fn dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(
            "must be a lower-case RFC 1123 label: letters a-z, digits and '-', \
             starting and ending with a letter or digit, at most 63 characters"
                .to_string(),
        )
    }
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty() && s.len() <= 253 && s.split('.').all(|l| dns_label(l).is_ok());
    if ok {
        Ok(())
    } else {
        Err(
            "must be a lower-case RFC 1123 subdomain such as example.com: \
             dot-separated labels of a-z, 0-9 and '-', at most 253 characters"
                .to_string(),
        )
    }
}

/// A domain name as accepted for NTP servers and noProxy entries: like a
/// subdomain but upper case is tolerated and a leading `.` is allowed.
fn is_domain(s: &str) -> bool {
    let s = s.strip_prefix('.').unwrap_or(s);
    dns_subdomain(&s.to_ascii_lowercase()).is_ok()
}

/// An IP address or a CIDR.
pub fn cidr(s: &str) -> Result<IpNet, String> {
    let net: IpNet = s
        .parse()
        .map_err(|_| "must be a CIDR such as 192.168.111.0/24 or fd00::/64".to_string())?;
    if net.trunc() != net {
        return Err(format!(
            "has host bits set; use the network address {}",
            net.trunc()
        ));
    }
    Ok(net)
}

/// The pull secret: JSON with a non-empty `auths` object whose every entry has
/// `auth` or `credsStore`.
pub fn pull_secret(s: &str) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_str(s)
        .map_err(|e| format!("is not valid JSON ({e}); paste the pull secret as downloaded"))?;
    let auths = v
        .get("auths")
        .and_then(|a| a.as_object())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            "auths required: the pull secret needs a non-empty \"auths\" object".to_string()
        })?;
    for (registry, entry) in auths {
        let has = |k: &str| {
            entry
                .get(k)
                .and_then(|x| x.as_str())
                .is_some_and(|x| !x.is_empty())
        };
        if !has("auth") && !has("credsStore") {
            return Err(format!("{registry:?} requires either auth or credsStore"));
        }
    }
    Ok(())
}

/// One or more OpenSSH authorized keys, one a line.
pub fn ssh_authorized_keys(s: &str) -> Result<(), String> {
    let mut found = 0;
    for entry in ssh_key::AuthorizedKeys::new(s) {
        entry.map_err(|e| {
            format!("ssh: no key found ({e}); give a public key such as the content of ~/.ssh/id_ed25519.pub")
        })?;
        found += 1;
    }
    if found == 0 {
        return Err(
            "ssh: no key found; give a public key such as the content of ~/.ssh/id_ed25519.pub"
                .to_string(),
        );
    }
    Ok(())
}

/// A PEM bundle in which every block is an X.509 certificate.
pub fn trust_bundle(s: &str) -> Result<(), String> {
    let begins = s.matches("-----BEGIN ").count();
    if begins == 0 {
        return Err(
            "invalid block: expected one or more PEM certificates (-----BEGIN CERTIFICATE-----)"
                .to_string(),
        );
    }
    let certs_marked = s.matches("-----BEGIN CERTIFICATE-----").count();
    if certs_marked != begins {
        return Err(
            "every PEM block must be a CERTIFICATE; remove private keys and other blocks"
                .to_string(),
        );
    }
    let certs = openssl::x509::X509::stack_from_pem(s.as_bytes())
        .map_err(|e| format!("invalid block: a certificate does not parse ({e})"))?;
    if certs.len() != begins {
        return Err("invalid block: a certificate does not parse".to_string());
    }
    Ok(())
}

/// An NTP server: an IP address or a domain name.
pub fn ntp_source(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() || (is_domain(s) && !s.starts_with('.')) {
        Ok(())
    } else {
        Err("NTP server is not a valid IP or domain name".to_string())
    }
}

/// Schemes `httpProxy` may use.
pub const HTTP_PROXY_SCHEMES: &[&str] = &["http"];
/// Schemes `httpsProxy` may use.
pub const HTTPS_PROXY_SCHEMES: &[&str] = &["http", "https"];

/// Why a proxy URL was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// Not an absolute URL.
    Invalid(String),
    /// A scheme outside the supported list.
    Scheme(String),
}

/// An absolute proxy URL with one of `schemes` and a host.
pub fn proxy_url(s: &str, schemes: &[&str]) -> Result<(), ProxyError> {
    let url = url::Url::parse(s).map_err(|e| {
        ProxyError::Invalid(format!(
            "parse {s:?}: invalid URI for request ({e}); write it as http://host:port"
        ))
    })?;
    if !schemes.contains(&url.scheme()) {
        return Err(ProxyError::Scheme(url.scheme().to_string()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ProxyError::Invalid(format!(
            "{s:?} has no host; write it as http://host:port"
        )));
    }
    Ok(())
}

/// `noProxy`: `*` or a comma list of IPs, CIDRs and domains (no wildcards).
pub fn no_proxy(s: &str) -> Result<(), String> {
    if s == "*" {
        return Ok(());
    }
    for (i, element) in s.split(',').enumerate() {
        let e = element.trim();
        let ok = !e.is_empty()
            && (e.parse::<IpAddr>().is_ok() || e.parse::<IpNet>().is_ok() || is_domain(e));
        if !ok {
            return Err(format!(
                "each element of noProxy must be a IP, CIDR or domain without wildcard characters, \
                 which is violated by element {i} {e:?}"
            ));
        }
    }
    Ok(())
}

/// A repository reference without tag or digest (`host[:port]/path`), as
/// `imageDigestSources` requires. A bare registry host is accepted too.
pub fn repository_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("failed to parse: invalid reference format".to_string());
    }
    if s.contains('@') || last_component_has_tag(s) {
        return Err("must be repository--not reference: remove the tag or digest".to_string());
    }
    if s.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(
            "failed to parse: invalid reference format: repository name must be lowercase"
                .to_string(),
        );
    }
    let mut parts = s.split('/');
    let first = parts.next().unwrap_or_default();
    let (host, port) = match first.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (first, None),
    };
    let host_ok = is_domain(host) || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok();
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok());
    let path_ok = parts.all(|c| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
    });
    if host_ok && port_ok && path_ok {
        Ok(())
    } else {
        Err("failed to parse: invalid reference format; write it as registry.example.com[:port]/namespace/repository".to_string())
    }
}

fn last_component_has_tag(s: &str) -> bool {
    // A ':' after the last '/' is a tag, unless there is no '/' (then it is a port).
    match s.rsplit_once('/') {
        Some((_, last)) => last.contains(':'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_subdomains() {
        assert!(dns_label("sno-1").is_ok());
        assert!(dns_label("Sno").is_err());
        assert!(dns_label("-a").is_err());
        assert!(dns_label(&"a".repeat(64)).is_err());
        assert!(dns_subdomain("example.com").is_ok());
        assert!(dns_subdomain("example..com").is_err());
        assert!(dns_subdomain("ex_ample.com").is_err());
    }

    #[test]
    fn cidrs() {
        assert!(cidr("10.0.0.0/16").is_ok());
        assert!(cidr("fd00::/64").is_ok());
        assert!(cidr("10.0.0.1/16").unwrap_err().contains("10.0.0.0/16"));
        assert!(cidr("nope").is_err());
    }

    #[test]
    fn pull_secrets() {
        assert!(pull_secret(r#"{"auths":{"q.io":{"auth":"eDp5"}}}"#).is_ok());
        assert!(pull_secret(r#"{"auths":{"q.io":{"credsStore":"x"}}}"#).is_ok());
        assert_eq!(
            pull_secret(r#"{"auths":{}}"#).unwrap_err(),
            "auths required: the pull secret needs a non-empty \"auths\" object"
        );
        assert!(
            pull_secret(r#"{"auths":{"q.io":{}}}"#)
                .unwrap_err()
                .contains("\"q.io\" requires either auth or credsStore")
        );
        assert!(
            pull_secret("{")
                .unwrap_err()
                .starts_with("is not valid JSON")
        );
    }

    #[test]
    fn ssh_keys() {
        let k = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOFq4xCEe8IR9dkNmPC6w2F/Jv7yixsUv7bRXBDIVd+h user@host";
        assert!(ssh_authorized_keys(k).is_ok());
        assert!(ssh_authorized_keys(&format!("{k}\n{k}\n")).is_ok());
        assert!(
            ssh_authorized_keys("x")
                .unwrap_err()
                .starts_with("ssh: no key found")
        );
        assert!(ssh_authorized_keys("ssh-ed25519 AAAA").is_err());
    }

    #[test]
    fn ntp_sources() {
        assert!(ntp_source("0.rhel.pool.ntp.org").is_ok());
        assert!(ntp_source("10.0.0.1").is_ok());
        assert!(ntp_source("fd00::1").is_ok());
        assert_eq!(
            ntp_source("invalid-domain@").unwrap_err(),
            "NTP server is not a valid IP or domain name"
        );
    }

    #[test]
    fn proxies() {
        assert!(proxy_url("http://proxy.example.com:3128", HTTP_PROXY_SCHEMES).is_ok());
        assert_eq!(
            proxy_url("https://p:1", HTTP_PROXY_SCHEMES),
            Err(ProxyError::Scheme("https".into()))
        );
        assert!(matches!(
            proxy_url("localhost", HTTP_PROXY_SCHEMES),
            Err(ProxyError::Invalid(_))
        ));
        assert!(proxy_url("https://p:1", HTTPS_PROXY_SCHEMES).is_ok());
        assert!(no_proxy("*").is_ok());
        assert!(no_proxy("example.com,.svc,10.0.0.0/8,10.1.1.1").is_ok());
        assert!(
            no_proxy("a.com,*.b.com")
                .unwrap_err()
                .contains("element 1 \"*.b.com\"")
        );
    }

    #[test]
    fn repositories() {
        assert!(repository_name("quay.io/openshift-release-dev/ocp-release").is_ok());
        assert!(repository_name("registry.lab:5000/ocp").is_ok());
        assert!(repository_name("registry.lab:5000").is_ok());
        assert!(repository_name("").is_err());
        assert!(
            repository_name("Registry.lab.redhat.com:5000")
                .unwrap_err()
                .contains("must be lowercase")
        );
        assert!(
            repository_name("quay.io/a/b:4.16")
                .unwrap_err()
                .contains("must be repository--not reference")
        );
        assert!(repository_name("quay.io/a/b@sha256:00").is_err());
    }
}
