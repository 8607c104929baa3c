//! Sealing small values with the session keys (`session.secret` / `secret_file`): AES-256-GCM
//! (RustCrypto's `aes-gcm`), a random 96-bit nonce per value, and what the value is for bound
//! as associated data, so a value sealed for one purpose (one pending login's cookie name, one
//! session's tokens) never opens as another. The first key seals; every key opens (rotation).

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Shortest key text accepted (characters): a key is a secret, not a password.
pub const MIN_KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// The session keys. Cheap to clone; `Debug` shows only how many there are.
#[derive(Clone)]
pub struct Keys {
    /// Never empty; `[0]` seals.
    ciphers: Arc<Vec<Aes256Gcm>>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys({} key(s))", self.ciphers.len())
    }
}

impl Keys {
    /// Keys from configuration text: one or more keys separated by whitespace (one per line
    /// in a `secret_file`), each at least [`MIN_KEY_LEN`] characters. The first seals.
    pub fn parse(text: &str) -> Result<Keys, String> {
        let keys: Vec<&str> = text.split_whitespace().collect();
        if keys.is_empty() {
            return Err("is empty".into());
        }
        if let Some(i) = keys.iter().position(|k| k.len() < MIN_KEY_LEN) {
            return Err(format!(
                "key {} is shorter than {MIN_KEY_LEN} characters (generate one with `openssl rand -base64 32`)",
                i + 1
            ));
        }
        Ok(Keys {
            ciphers: Arc::new(keys.into_iter().map(cipher).collect()),
        })
    }

    /// One random key, for a process without `session.secret` (tests, a single replica).
    pub fn random() -> Keys {
        Keys::parse(&random_key_text()).expect("a random key is long enough")
    }

    /// `plain`, sealed for `purpose`, as URL-safe base64 (cookie-safe).
    pub fn seal(&self, purpose: &[u8], plain: &[u8]) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let nonce = Nonce::from_slice(&nonce_bytes);
        let sealed = self.ciphers[0]
            .encrypt(
                nonce,
                Payload {
                    msg: plain,
                    aad: purpose,
                },
            )
            .expect("AES-GCM seals any value shorter than 64 GiB");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(out)
    }

    /// The value sealed for `purpose` by any of the keys; `None` when it is not one of ours,
    /// was altered, or was sealed for something else.
    pub fn open(&self, purpose: &[u8], sealed: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::from_slice(nonce);
        self.ciphers.iter().find_map(|c| {
            c.decrypt(
                nonce,
                Payload {
                    msg: sealed,
                    aad: purpose,
                },
            )
            .ok()
        })
    }
}

/// A new key as text (for `dev`'s data directory, or a process without one).
pub fn random_key_text() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The key text is hashed to 256 bits: any long text serves, and the cipher never sees it raw.
fn cipher(text: &str) -> Aes256Gcm {
    let digest = Sha256::new()
        .chain_update(b"identify-bridge session key\0")
        .chain_update(text.as_bytes())
        .finalize();
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn a_sealed_value_opens_for_its_purpose_only() {
        let keys = Keys::parse(A).unwrap();
        let sealed = keys.seal(b"one", b"secret value");
        assert!(!sealed.contains("secret"));
        assert_eq!(keys.open(b"one", &sealed).unwrap(), b"secret value");
        assert_eq!(keys.open(b"two", &sealed), None);
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let old = Keys::parse(A).unwrap();
        let rotated = Keys::parse(&format!("{B}\n{A}\n")).unwrap();
        let sealed_before = old.seal(b"p", b"v");
        assert_eq!(rotated.open(b"p", &sealed_before).unwrap(), b"v");
        let sealed_after = rotated.seal(b"p", b"v");
        assert_eq!(old.open(b"p", &sealed_after), None);
        assert_eq!(
            Keys::parse(B).unwrap().open(b"p", &sealed_after).unwrap(),
            b"v"
        );
    }

    #[test]
    fn altered_or_foreign_values_do_not_open() {
        let keys = Keys::parse(A).unwrap();
        let sealed = keys.seal(b"p", b"value");
        let mut bytes = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        assert_eq!(keys.open(b"p", &URL_SAFE_NO_PAD.encode(bytes)), None);
        for junk in ["", "!!", "AAAA", &"A".repeat(100)] {
            assert_eq!(keys.open(b"p", junk), None);
        }
        assert_eq!(Keys::random().open(b"p", &sealed), None);
    }

    #[test]
    fn short_or_missing_keys_are_refused_with_a_reason() {
        assert!(Keys::parse("  \n").unwrap_err().contains("empty"));
        let e = Keys::parse(&format!("{A} short")).unwrap_err();
        assert!(e.contains("key 2"), "{e}");
    }
}
