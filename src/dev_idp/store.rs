//! In-memory grants: authorization codes (single use, 60 s) and code-flow access tokens (1 h).
//!
//! This is a development tool, so nothing is persisted: a restart forgets every code and token
//! (people just sign in again). Entries expire, and each map has a cap so a flood of requests
//! cannot grow it without bound: when full, expired entries are purged and, if it is still
//! full, the new grant is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::account::Account;

/// How long an authorization code may be redeemed.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// Lifetime of access tokens (both grants) and of ID tokens.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);
pub const MAX_CODES: usize = 1_000;
pub const MAX_ACCESS_TOKENS: usize = 10_000;

/// What an authorization code was issued for.
#[derive(Debug, Clone)]
pub struct CodeGrant {
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: String,
    pub scope: String,
    pub account: Account,
}

/// What a code-flow access token lets userinfo return.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub account: Account,
}

/// The map is full of live entries.
#[derive(Debug, thiserror::Error)]
#[error("too many outstanding grants at the development provider")]
pub struct Full;

/// Secrets mapped to values with a deadline. Keys are SHA-256 digests of the secrets, so the
/// map itself holds no usable code or token.
pub struct ExpiringMap<V> {
    cap: usize,
    entries: Mutex<HashMap<[u8; 32], (Instant, V)>>,
}

impl<V: Clone> ExpiringMap<V> {
    pub fn new(cap: usize) -> Self {
        ExpiringMap {
            cap,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn insert(&self, secret: &str, value: V, ttl: Duration) -> Result<(), Full> {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("dev-idp grant lock poisoned");
        if entries.len() >= self.cap {
            entries.retain(|_, (deadline, _)| *deadline > now);
            if entries.len() >= self.cap {
                return Err(Full);
            }
        }
        entries.insert(digest(secret), (now + ttl, value));
        Ok(())
    }

    /// Remove and return the entry (single use), unless it has expired.
    pub fn take(&self, secret: &str) -> Option<V> {
        let (deadline, value) = self
            .entries
            .lock()
            .expect("dev-idp grant lock poisoned")
            .remove(&digest(secret))?;
        (deadline > Instant::now()).then_some(value)
    }

    /// The entry, unless it has expired.
    pub fn get(&self, secret: &str) -> Option<V> {
        let entries = self.entries.lock().expect("dev-idp grant lock poisoned");
        let (deadline, value) = entries.get(&digest(secret))?;
        (*deadline > Instant::now()).then(|| value.clone())
    }
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// 256 random bits, base64url: codes, access tokens and `jti`s.
pub fn random_secret() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_entry_is_gone() {
        let map = ExpiringMap::new(2);
        map.insert("a", 1, CODE_TTL).unwrap();
        assert_eq!(map.take("a"), Some(1));
        assert_eq!(map.take("a"), None);
    }

    #[test]
    fn expired_entries_are_not_returned_and_make_room() {
        let map = ExpiringMap::new(1);
        map.insert("a", 1, Duration::ZERO).unwrap();
        assert_eq!(map.get("a"), None);
        map.insert("b", 2, CODE_TTL).unwrap();
        assert!(map.insert("c", 3, CODE_TTL).is_err());
        assert_eq!(map.get("b"), Some(2));
    }
}
