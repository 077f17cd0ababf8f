//! The kubeadmin password (spec §2.3).

use anyhow::{Context, Result};

/// The installer's alphabet: no `l`, `O`, `0` or `1`, which read alike.
const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHIJKLMNPQRSTUVWXYZ23456789";
const PASSWORD_LEN: usize = 23;
/// Positions overwritten by `-` to give `xxxxx-xxxxx-xxxxx-xxxxx`.
const DASH_POSITIONS: [usize; 3] = [5, 11, 17];
/// Go's `bcrypt.DefaultCost`.
const BCRYPT_COST: u32 = 10;

/// Draws a new kubeadmin password, `xxxxx-xxxxx-xxxxx-xxxxx`.
///
/// Go draws each character independently and inserts it at a random
/// position; a shuffle of independent uniform draws is still independent
/// and uniform, so drawing in place gives the same distribution.
pub fn generate_kubeadmin_password() -> Result<String> {
    let mut password = random_chars(ALPHABET, PASSWORD_LEN)?.into_bytes();
    for pos in DASH_POSITIONS {
        if let Some(c) = password.get_mut(pos) {
            *c = b'-';
        }
    }
    String::from_utf8(password).context("encoding the password")
}

/// `len` characters drawn uniformly from the ASCII `alphabet` with the
/// system's cryptographic RNG (OpenSSL's, so FIPS mode covers it).
pub fn random_chars(alphabet: &[u8], len: usize) -> Result<String> {
    anyhow::ensure!(
        !alphabet.is_empty() && alphabet.len() <= 256 && alphabet.is_ascii(),
        "the alphabet must hold 1 to 256 ASCII characters"
    );
    // Bytes at or above this bound are rejected so that `b % n` is uniform
    // over the alphabet (256 is not a multiple of most lengths).
    let n = alphabet.len();
    let bound = 256 - 256 % n;
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        openssl::rand::rand_bytes(&mut buf).context("drawing random bytes")?;
        for &b in &buf {
            if out.len() == len {
                break;
            }
            let b = usize::from(b);
            if b < bound {
                out.push(char::from(alphabet[b % n]));
            }
        }
    }
    Ok(out)
}

/// bcrypt hash of the password, cost 10, `$2a$` prefix as Go's
/// golang.org/x/crypto/bcrypt writes it (LCA stores it verbatim in the
/// kubeadmin secret).
pub fn hash_kubeadmin_password(password: &str) -> Result<String> {
    let parts = bcrypt::hash_with_result(password, BCRYPT_COST)
        .context("hashing the kubeadmin password")?;
    Ok(parts.format_for_version(bcrypt::Version::TwoA))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_format(pw: &str) {
        assert_eq!(pw.len(), 23, "{pw}");
        for (i, c) in pw.chars().enumerate() {
            if [5, 11, 17].contains(&i) {
                assert_eq!(c, '-', "{pw}");
            } else {
                assert!(
                    c.is_ascii() && ALPHABET.contains(&(c as u8)),
                    "{pw}: bad char {c:?}"
                );
            }
        }
        for banned in ['l', 'O', '0', '1'] {
            assert!(!pw.contains(banned), "{pw}");
        }
    }

    #[test]
    fn password_format() {
        let a = generate_kubeadmin_password().unwrap();
        let b = generate_kubeadmin_password().unwrap();
        check_format(&a);
        check_format(&b);
        assert_ne!(a, b);
    }

    #[test]
    fn passwords_use_the_whole_alphabet() {
        // 2000 passwords × 20 chars: each of the 58 characters is expected
        // ~690 times, so missing one would mean a broken draw.
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2000 {
            let pw = generate_kubeadmin_password().unwrap();
            check_format(&pw);
            seen.extend(pw.bytes().filter(|&b| b != b'-'));
        }
        assert_eq!(seen.len(), ALPHABET.len());
    }

    #[test]
    fn hash_is_go_bcrypt_compatible() {
        let pw = generate_kubeadmin_password().unwrap();
        let hash = hash_kubeadmin_password(&pw).unwrap();
        assert!(hash.starts_with("$2a$10$"), "{hash}");
        assert_eq!(hash.len(), 60);
        assert!(bcrypt::verify(&pw, &hash).unwrap());
        assert!(!bcrypt::verify("wrong-password", &hash).unwrap());
    }
}
