//! OpenID Connect Back-Channel Logout 1.0, §2.6: verifying a `logout_token`. Signatures are
//! `jsonwebtoken`'s, with the provider's published keys (never `none` or HMAC); then the checks
//! the specification lists: `iss`, `aud`, `iat` (recent), `exp` when present, `jti`, the
//! `events` claim naming back-channel logout, `sid` or `sub`, and no `nonce`. Single use of
//! `jti` is the caller's (it needs the database).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The event a logout token must carry.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// A token issued longer ago than this is refused (the specification leaves the window to us).
pub const MAX_AGE_SECS: i64 = 300;
/// Clock skew allowed on `iat` and `exp`.
const LEEWAY_SECS: i64 = 60;

/// Asymmetric algorithms only.
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

/// What a verified logout token says: end the sessions with this `sid`, or else of this `sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    pub jti: String,
    pub iat: i64,
    pub sid: Option<String>,
    pub sub: Option<String>,
}

/// Why a logout token was refused (the message is safe to return to the provider).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum LogoutTokenError {
    #[error("the logout_token is not a signed JWT")]
    Malformed,
    #[error("the logout_token is signed with a key the provider does not publish")]
    UnknownKey,
    #[error("the logout_token's signature is invalid")]
    Signature,
    #[error("the logout_token is from another issuer")]
    Issuer,
    #[error("the logout_token is for another audience")]
    Audience,
    #[error("the logout_token has expired or was issued too long ago")]
    Expired,
    #[error("the logout_token is issued in the future")]
    NotYetValid,
    #[error("the logout_token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the logout_token's events claim does not name back-channel logout")]
    Events,
    #[error("the logout_token names neither sid nor sub")]
    NoSubject,
    #[error("the logout_token carries a nonce (it may be an ID token)")]
    Nonce,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    aud: Option<Value>,
    iat: Option<i64>,
    exp: Option<i64>,
    jti: Option<String>,
    events: Option<Map<String, Value>>,
    sid: Option<String>,
    sub: Option<String>,
    nonce: Option<Value>,
}

/// Verify `token` from the provider whose keys are `jwks` (its JWK set as JSON). `issuer_ok`
/// says whether an `iss` is this provider's (Microsoft's multi-tenant issuer is a template).
pub fn verify(
    token: &str,
    jwks: &Value,
    issuer_ok: impl Fn(&str) -> bool,
    client_id: &str,
    now: i64,
) -> Result<LogoutToken, LogoutTokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| LogoutTokenError::Malformed)?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(LogoutTokenError::Signature);
    }
    let keys: JwkSet =
        serde_json::from_value(jwks.clone()).map_err(|_| LogoutTokenError::UnknownKey)?;
    let jwk = match &header.kid {
        Some(kid) => keys.find(kid),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or(LogoutTokenError::UnknownKey)?;
    let key = DecodingKey::from_jwk(jwk).map_err(|_| LogoutTokenError::UnknownKey)?;
    // Signature only here; every claim is checked below, with messages of our own.
    let mut validation = Validation::new(header.alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => LogoutTokenError::Signature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => LogoutTokenError::Signature,
            _ => LogoutTokenError::Malformed,
        })?
        .claims;
    check_claims(claims, issuer_ok, client_id, now)
}

fn check_claims(
    claims: Claims,
    issuer_ok: impl Fn(&str) -> bool,
    client_id: &str,
    now: i64,
) -> Result<LogoutToken, LogoutTokenError> {
    let iss = claims.iss.ok_or(LogoutTokenError::MissingClaim("iss"))?;
    if !issuer_ok(&iss) {
        return Err(LogoutTokenError::Issuer);
    }
    let audience_ok = match claims.aud.ok_or(LogoutTokenError::MissingClaim("aud"))? {
        Value::String(aud) => aud == client_id,
        Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(LogoutTokenError::Audience);
    }
    let iat = claims.iat.ok_or(LogoutTokenError::MissingClaim("iat"))?;
    if iat > now + LEEWAY_SECS {
        return Err(LogoutTokenError::NotYetValid);
    }
    if iat < now - MAX_AGE_SECS || claims.exp.is_some_and(|exp| exp < now - LEEWAY_SECS) {
        return Err(LogoutTokenError::Expired);
    }
    let jti = claims
        .jti
        .filter(|j| !j.is_empty())
        .ok_or(LogoutTokenError::MissingClaim("jti"))?;
    let events = claims
        .events
        .ok_or(LogoutTokenError::MissingClaim("events"))?;
    if !events
        .get(BACKCHANNEL_LOGOUT_EVENT)
        .is_some_and(Value::is_object)
    {
        return Err(LogoutTokenError::Events);
    }
    if claims.nonce.is_some() {
        return Err(LogoutTokenError::Nonce);
    }
    let sid = claims.sid.filter(|s| !s.is_empty());
    let sub = claims.sub.filter(|s| !s.is_empty());
    if sid.is_none() && sub.is_none() {
        return Err(LogoutTokenError::NoSubject);
    }
    Ok(LogoutToken { jti, iat, sid, sub })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn claims(value: Value) -> Claims {
        serde_json::from_value(value).unwrap()
    }

    fn good() -> Value {
        json!({
            "iss": "https://idp.test",
            "aud": "bridge",
            "iat": NOW - 5,
            "jti": "j-1",
            "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
            "sid": "s-1",
        })
    }

    fn check(value: Value) -> Result<LogoutToken, LogoutTokenError> {
        check_claims(
            claims(value),
            |iss| iss == "https://idp.test",
            "bridge",
            NOW,
        )
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = good();
        v[key] = value;
        v
    }

    fn without(key: &str) -> Value {
        let mut v = good();
        v.as_object_mut().unwrap().remove(key);
        v
    }

    #[test]
    fn a_good_token_names_its_session() {
        let token = check(good()).unwrap();
        assert_eq!(token.sid.as_deref(), Some("s-1"));
        assert_eq!(token.jti, "j-1");
        let by_sub = check(with("sub", json!("u-1"))).unwrap();
        assert_eq!(by_sub.sub.as_deref(), Some("u-1"));
        assert!(check(with("aud", json!(["other", "bridge"]))).is_ok());
    }

    #[test]
    fn each_rule_of_the_specification_refuses() {
        use LogoutTokenError::*;
        let cases = [
            (with("iss", json!("https://evil.test")), Issuer),
            (without("iss"), MissingClaim("iss")),
            (with("aud", json!("other")), Audience),
            (without("aud"), MissingClaim("aud")),
            (without("iat"), MissingClaim("iat")),
            (with("iat", json!(NOW - MAX_AGE_SECS - 1)), Expired),
            (with("exp", json!(NOW - 3600)), Expired),
            (with("iat", json!(NOW + 3600)), NotYetValid),
            (without("jti"), MissingClaim("jti")),
            (without("events"), MissingClaim("events")),
            (with("events", json!({"other": {}})), Events),
            (
                with("events", json!({ BACKCHANNEL_LOGOUT_EVENT: "yes" })),
                Events,
            ),
            (with("nonce", json!("n")), Nonce),
            (without("sid"), NoSubject),
        ];
        for (value, expected) in cases {
            assert_eq!(check(value.clone()), Err(expected.clone()), "{value}");
        }
    }

    #[test]
    fn junk_and_unsigned_tokens_are_malformed_or_unsigned() {
        let keys = json!({"keys": []});
        let ok = |_: &str| true;
        assert_eq!(
            verify("junk", &keys, ok, "bridge", NOW),
            Err(LogoutTokenError::Malformed)
        );
        // alg none: header {"alg":"none"}
        let none = "eyJhbGciOiJub25lIn0.eyJzaWQiOiJzIn0.";
        assert!(verify(none, &keys, ok, "bridge", NOW).is_err());
    }
}
