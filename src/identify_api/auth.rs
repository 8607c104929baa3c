//! Who is calling: the API key (`KEY` or `x-api-key`, compared as SHA-256 in constant time)
//! and the bearer token (a JWT from the configured issuer with the required scope), as
//! `[identify_api] require` says. Verified tokens are remembered by their SHA-256 until they
//! expire, so a busy client's token is checked once, not on every call.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::jwks::{Claims, JwksVerifier, TokenError};
use crate::config::{Credential, IdentifyApiSettings};

/// An authenticated caller; `id` keys rate limits and idempotency (`key:<hash prefix>` or
/// `sub:<token subject>`). Never the key itself.
#[derive(Debug, Clone)]
pub struct Caller {
    pub id: String,
}

/// What is remembered of a verified token.
#[derive(Debug, Clone)]
struct VerifiedToken {
    subject: String,
    exp: i64,
    has_scope: bool,
}

/// Keeps each token until its `exp` (plus leeway).
struct UntilExpiry {
    leeway: i64,
}

impl moka::Expiry<[u8; 32], Arc<VerifiedToken>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &Arc<VerifiedToken>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let left = value.exp + self.leeway - chrono::Utc::now().timestamp();
        Some(Duration::from_secs(left.max(0) as u64))
    }
}

pub struct Authenticator {
    require_token: bool,
    require_key: bool,
    key_hashes: Vec<[u8; 32]>,
    scope: String,
    leeway: i64,
    verifier: Option<JwksVerifier>,
    tokens: moka::sync::Cache<[u8; 32], Arc<VerifiedToken>>,
}

impl Authenticator {
    pub fn new(s: &IdentifyApiSettings, http: reqwest::Client) -> Self {
        let verifier = match (&s.token_issuer, &s.token_audience) {
            (Some(issuer), Some(audience)) => Some(JwksVerifier::new(
                issuer.as_str(),
                audience,
                s.token_leeway_secs,
                http,
            )),
            _ => None,
        };
        Authenticator {
            require_token: s.requires(Credential::Token),
            require_key: s.requires(Credential::Key),
            key_hashes: s
                .api_key_hashes
                .iter()
                .filter_map(|h| hex::decode(h).ok()?.try_into().ok())
                .collect(),
            scope: s.token_scope.clone(),
            leeway: s.token_leeway_secs as i64,
            verifier,
            tokens: moka::sync::Cache::builder()
                .max_capacity(s.token_cache_size)
                .expire_after(UntilExpiry {
                    leeway: s.token_leeway_secs as i64,
                })
                .build(),
        }
    }

    /// Check the credentials `require` asks for: the key first (cheap), then the token.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let key_caller = if self.require_key {
            Some(self.check_key(headers)?)
        } else {
            None
        };
        let token_caller = if self.require_token {
            Some(self.check_token(headers).await?)
        } else {
            None
        };
        key_caller
            .or(token_caller)
            .ok_or_else(|| ApiError::internal("identify API requires no credential"))
    }

    fn check_key(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(value) = headers.get("key").or_else(|| headers.get("x-api-key")) else {
            return Err(ApiError::unauthorized(
                "missing API key: send it in the KEY header (or x-api-key)",
            ));
        };
        let digest: [u8; 32] = Sha256::digest(value.as_bytes()).into();
        // Compare with every configured hash, without stopping early.
        let mut found: Option<&[u8; 32]> = None;
        for h in &self.key_hashes {
            if bool::from(h.ct_eq(&digest)) {
                found = Some(h);
            }
        }
        match found {
            Some(h) => Ok(Caller {
                id: format!("key:{}", &hex::encode(h)[..12]),
            }),
            None => Err(ApiError::unauthorized("invalid API key in the KEY header")),
        }
    }

    async fn check_token(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "missing Authorization header: send Authorization: Bearer <token>",
            ));
        };
        let text = value.to_str().unwrap_or("");
        let token = match text.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => "",
        };
        if token.is_empty() {
            return Err(ApiError::unauthorized(
                "Authorization header must be `Bearer <token>`",
            ));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let verified = match self.tokens.get(&digest) {
            Some(v) => v,
            None => {
                let verified = Arc::new(self.verify(token).await?);
                self.tokens.insert(digest, verified.clone());
                verified
            }
        };
        if verified.exp + self.leeway <= chrono::Utc::now().timestamp() {
            return Err(invalid_token(TokenError::Expired));
        }
        if !verified.has_scope {
            return Err(ApiError::forbidden(format!(
                "the bearer token in the Authorization header lacks the `{}` scope",
                self.scope
            )));
        }
        Ok(Caller {
            id: format!("sub:{}", verified.subject),
        })
    }

    async fn verify(&self, token: &str) -> Result<VerifiedToken, ApiError> {
        let verifier = self
            .verifier
            .as_ref()
            .ok_or_else(|| ApiError::internal("token required but no issuer configured"))?;
        let claims = verifier.verify(token).await.map_err(invalid_token)?;
        let has_scope = scopes(&claims).iter().any(|s| *s == self.scope);
        let subject = claims
            .sub
            .clone()
            .or_else(|| claims.client_id.clone())
            .ok_or_else(|| invalid_token(TokenError::MissingClaim("sub".into())))?;
        Ok(VerifiedToken {
            subject,
            exp: claims.exp,
            has_scope,
        })
    }
}

/// Scopes from `scope` (space-separated string) or `scp` (array, or string).
fn scopes(claims: &Claims) -> Vec<&str> {
    let mut out = Vec::new();
    for v in [&claims.scope, &claims.scp].into_iter().flatten() {
        match v {
            serde_json::Value::String(s) => out.extend(s.split_whitespace()),
            serde_json::Value::Array(items) => out.extend(items.iter().filter_map(|i| i.as_str())),
            _ => {}
        }
    }
    out
}

fn invalid_token(e: TokenError) -> ApiError {
    match e {
        TokenError::IssuerUnavailable(detail) => {
            ApiError::unavailable("the token issuer cannot be reached to verify the bearer token")
                .with_detail(detail)
        }
        other => ApiError::unauthorized(format!(
            "invalid bearer token in the Authorization header: {other}"
        )),
    }
}
