//! Admin key check: `Authorization: Bearer <key>` or `x-api-key: <key>`, compared by SHA-256
//! against `admin.api_key_hashes` in constant time.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::AdminSettings;

/// The key a request presents, if any: Bearer, HTTP Basic (any user, the key as password,
/// for browsers) or `x-api-key`.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if let Some(v) = auth {
        if let Some(token) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(token.trim().to_string());
        }
        if let Some(encoded) = v
            .strip_prefix("Basic ")
            .or_else(|| v.strip_prefix("basic "))
        {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            return text
                .split_once(':')
                .map(|(_, password)| password.to_string());
        }
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| k.trim().to_string())
}

/// Whether `key` hashes to one of the configured hashes.
pub fn key_matches(settings: &AdminSettings, key: &str) -> bool {
    let digest = Sha256::digest(key.as_bytes());
    let mut ok = subtle::Choice::from(0);
    for hash in &settings.api_key_hashes {
        if let Ok(expected) = hex::decode(hash) {
            if expected.len() == digest.len() {
                ok |= expected.as_slice().ct_eq(digest.as_slice());
            }
        }
    }
    ok.into()
}

/// Whether the request may use the admin API.
pub fn authorized(settings: &AdminSettings, headers: &HeaderMap) -> bool {
    settings.open || presented_key(headers).is_some_and(|k| key_matches(settings, &k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_by_hash() {
        let settings = AdminSettings {
            api_key_hashes: vec![hex::encode(Sha256::digest(b"s3cret"))],
            open: false,
        };
        let mut headers = HeaderMap::new();
        assert!(!authorized(&settings, &headers));
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(authorized(&settings, &headers));
        headers.insert("authorization", "Bearer wrong".parse().unwrap());
        assert!(!authorized(&settings, &headers));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "s3cret".parse().unwrap());
        assert!(authorized(&settings, &headers));
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Basic YWRtaW46czNjcmV0".parse().unwrap()); // admin:s3cret
        assert!(authorized(&settings, &headers));
    }
}
