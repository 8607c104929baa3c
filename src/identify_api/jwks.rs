//! Access-token signatures: the issuer's keys from discovery and its JWKS, kept in memory and
//! fetched again when a token names a key we do not know — at most once every 30 s, whether
//! the last fetch worked or failed. Verification is `jsonwebtoken`'s; only asymmetric
//! algorithms are accepted, and we add the checks it lacks: `crit`, `typ` and a future `iat`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::Deserialize;
use serde_json::Value;

/// Least time between two JWKS fetches, failed ones included.
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

/// Media types a token may declare in `typ` (compared ignoring case): RFC 9068's `at+jwt`
/// and plain `JWT`, each also with the `application/` prefix (RFC 7515 §4.1.9).
const TYPES: [&str; 4] = ["at+jwt", "application/at+jwt", "jwt", "application/jwt"];

/// The claims we read from an access token.
#[derive(Debug, Deserialize)]
pub struct Claims {
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub exp: i64,
    pub iat: Option<i64>,
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
    #[error("the token is issued in the future (`iat`)")]
    IssuedInFuture,
    #[error(
        "the token's header lists critical extensions (`crit`), none of which is understood here"
    )]
    Critical,
    #[error("the token's type (`typ`) is not `at+jwt` or `JWT`")]
    Type,
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
    /// Serializes fetches; holds the last attempt.
    last_fetch: tokio::sync::Mutex<Option<Attempt>>,
}

/// A JWKS fetch: when, and why it failed (`None`: it worked).
struct Attempt {
    at: Instant,
    error: Option<String>,
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

    /// Check the header, signature, issuer, audience, `exp`, `nbf` and `iat`; return the claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(TokenError::Algorithm);
        }
        check_header(&header)?;
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
        let claims = jsonwebtoken::decode::<Claims>(token, key, &validation)
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
            })?;
        // `jsonwebtoken` does not look at `iat`: a token from the future means a wrong clock or
        // a forged lifetime.
        let now = jsonwebtoken::get_current_timestamp() as i64;
        if claims.iat.is_some_and(|iat| iat > now + self.leeway as i64) {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(claims)
    }

    fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.read().ok().and_then(|k| k.clone())
    }

    /// Fetch discovery (first time) and the JWKS, at most once per `REFETCH_AFTER` whether the
    /// fetch works or fails: neither unknown key ids nor a failing issuer make us hammer it.
    /// Within that time the last outcome stands (the keys, or the error).
    async fn fetch(&self, unknown_kid: bool) -> Result<Arc<KeySet>, TokenError> {
        let mut last = self.last_fetch.lock().await;
        if let Some(attempt) = &*last {
            let recent = attempt.at.elapsed() < REFETCH_AFTER;
            match (&attempt.error, self.current()) {
                // Someone else fetched while we waited, or we fetched recently enough.
                (None, Some(set)) if recent || !unknown_kid => return Ok(set),
                (Some(error), _) if recent => {
                    return Err(TokenError::IssuerUnavailable(format!(
                        "{error} (fetched again at most every {} s)",
                        REFETCH_AFTER.as_secs()
                    )))
                }
                _ => {}
            }
        }
        let outcome = self.fetch_now().await;
        *last = Some(Attempt {
            at: Instant::now(),
            error: outcome.as_ref().err().map(|e| e.to_string()),
        });
        outcome
    }

    async fn fetch_now(&self) -> Result<Arc<KeySet>, TokenError> {
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

/// Refuse what RFC 7515 says a verifier must not accept: any `crit` parameter (we understand
/// no header extension, §4.1.11), and a `typ` that says this is not an access token.
fn check_header(header: &Header) -> Result<(), TokenError> {
    if header.crit.is_some() {
        return Err(TokenError::Critical);
    }
    match &header.typ {
        Some(typ) if !TYPES.iter().any(|t| t.eq_ignore_ascii_case(typ)) => Err(TokenError::Type),
        _ => Ok(()),
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
