//! Access-token signatures: the issuer's keys from discovery and its JWKS, kept in memory and
//! fetched again (at most every 30 s) when a token names a key we do not know.
//! Verification is `jsonwebtoken`'s; only asymmetric algorithms are accepted.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// Least time between two JWKS fetches triggered by unknown key ids.
const REFETCH_AFTER: Duration = Duration::from_secs(30);

/// Algorithms a token may be signed with: never `none` or HMAC (a shared secret).
const ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The claims we read from an access token.
#[derive(Debug, Deserialize)]
pub struct Claims {
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub exp: i64,
    pub scope: Option<Value>,
    pub scp: Option<Value>,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT")]
    Malformed,
    #[error("the token is signed with an algorithm that is not accepted")]
    Algorithm,
    #[error("the token is signed with a key the issuer does not publish")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is for another audience")]
    Audience,
    #[error("the token is from another issuer")]
    Issuer,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(String),
    /// Discovery or JWKS could not be fetched: the caller is not at fault.
    #[error("token issuer unreachable: {0}")]
    IssuerUnavailable(String),
}

struct KeySet {
    issuer: String,
    jwks_uri: String,
    keys: HashMap<Option<String>, (DecodingKey, Option<Algorithm>)>,
}

/// Verifies JWT access tokens of one issuer for one audience.
pub struct JwksVerifier {
    configured_issuer: String,
    audience: String,
    leeway: u64,
    http: reqwest::Client,
    keys: RwLock<Option<Arc<KeySet>>>,
    /// Serializes fetches; holds when the last one happened.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksVerifier {
    pub fn new(issuer: &str, audience: &str, leeway: u64, http: reqwest::Client) -> Self {
        JwksVerifier {
            configured_issuer: issuer.trim_end_matches('/').to_string(),
            audience: audience.to_string(),
            leeway,
            http,
            keys: RwLock::new(None),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    /// Check signature, issuer, audience, `exp` and `nbf`; return the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(TokenError::Algorithm);
        }
        let set = match self.current() {
            Some(set) => set,
            None => self.fetch(false).await?,
        };
        let set = match set.keys.contains_key(&header.kid) {
            true => set,
            false => self.fetch(true).await?,
        };
        let (key, key_alg) = set.keys.get(&header.kid).ok_or(TokenError::UnknownKey)?;
        if key_alg.is_some_and(|a| a != header.alg) {
            return Err(TokenError::Algorithm);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[&set.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        use jsonwebtoken::errors::ErrorKind as K;
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.into_kind() {
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidAudience => TokenError::Audience,
                K::InvalidIssuer => TokenError::Issuer,
                K::InvalidSignature => TokenError::Signature,
                K::InvalidAlgorithm => TokenError::Algorithm,
                K::MissingRequiredClaim(c) => TokenError::MissingClaim(c),
                _ => TokenError::Malformed,
            })
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.read().ok().and_then(|k| k.clone())
    }

    /// Fetch discovery (first time) and the JWKS. With `unknown_kid`, a fetch within
    /// `REFETCH_AFTER` of the last one is skipped: unknown key ids cannot make us hammer the issuer.
    async fn fetch(&self, unknown_kid: bool) -> Result<Arc<KeySet>, TokenError> {
        let mut last = self.last_fetch.lock().await;
        if let (Some(at), Some(set)) = (*last, self.current()) {
            // Someone else fetched while we waited, or we fetched recently enough.
            if !unknown_kid || at.elapsed() < REFETCH_AFTER {
                return Ok(set);
            }
        }
        let (issuer, jwks_uri) = match self.current() {
            Some(set) => (set.issuer.clone(), set.jwks_uri.clone()),
            None => self.discover().await?,
        };
        let jwks: Value = self.get_json(&jwks_uri).await?;
        let keys = parse_jwks(&jwks);
        tracing::info!(
            keys = keys.len(),
            "identify API: fetched the token issuer's JWKS"
        );
        let set = Arc::new(KeySet {
            issuer,
            jwks_uri,
            keys,
        });
        if let Ok(mut slot) = self.keys.write() {
            *slot = Some(set.clone());
        }
        *last = Some(Instant::now());
        Ok(set)
    }

    async fn discover(&self) -> Result<(String, String), TokenError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.configured_issuer
        );
        let doc = self.get_json(&url).await?;
        let issuer = doc["issuer"].as_str().unwrap_or_default().to_string();
        if issuer.trim_end_matches('/') != self.configured_issuer {
            return Err(TokenError::IssuerUnavailable(format!(
                "discovery names issuer {issuer:?}, configured {:?}",
                self.configured_issuer
            )));
        }
        let jwks_uri = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| TokenError::IssuerUnavailable("discovery has no jwks_uri".into()))?;
        Ok((issuer, jwks_uri.to_string()))
    }

    async fn get_json(&self, url: &str) -> Result<Value, TokenError> {
        let unavailable = |e: reqwest::Error| TokenError::IssuerUnavailable(format!("{url}: {e}"));
        self.http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)
    }
}

/// The usable signature keys of a JWKS, by key id; keys we cannot use are skipped.
fn parse_jwks(jwks: &Value) -> HashMap<Option<String>, (DecodingKey, Option<Algorithm>)> {
    let mut out = HashMap::new();
    for raw in jwks["keys"].as_array().into_iter().flatten() {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        if raw["use"].as_str().is_some_and(|u| u != "sig")
            || matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
        {
            continue;
        }
        let alg = raw["alg"]
            .as_str()
            .and_then(|a| a.parse::<Algorithm>().ok());
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            out.insert(jwk.common.key_id.clone(), (key, alg));
        }
    }
    out
}
