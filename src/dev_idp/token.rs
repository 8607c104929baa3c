//! `POST /token`: client authentication (client_secret_basic or client_secret_post), then the
//! authorization-code grant (single-use code, redirect URI and PKCE S256 checked; ID token and
//! an opaque access token) or the client-credentials grant (an RS256 JWT access token for the
//! Identify API). Errors are RFC 6749 §5.2 JSON.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{Duration, Utc};
use openidconnect::core::{
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{AccessToken, Audience, ClientId, IdToken, IdTokenClaims, IssuerUrl, Nonce};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::client_auth::authenticate_client;
use super::oauth::{no_store, OAuthError};
use super::store::{random_secret, CodeGrant, TokenGrant, ACCESS_TOKEN_TTL};
use super::{Client, DevIdp, SERVICE_SCOPES};
use crate::providers::oidc::ExtraClaims;

type DevIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// `POST /token`.
#[tracing::instrument(name = "dev_idp_token", skip_all)]
pub async fn issue_token(State(idp): State<DevIdp>, headers: HeaderMap, body: Bytes) -> Response {
    match token_response(&idp, &headers, &body) {
        Ok(body) => no_store(Json(body).into_response()),
        Err(e) => e.into_response(),
    }
}

fn token_response(idp: &DevIdp, headers: &HeaderMap, body: &[u8]) -> Result<Value, OAuthError> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body) {
        if params.insert(name.to_string(), value.to_string()).is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                format!("parameter {name} repeated"),
            ));
        }
    }
    let client = authenticate_client(idp, headers, &params)?;
    let grant_type = params.get("grant_type").map(String::as_str).unwrap_or("");
    if grant_type.is_empty() {
        return Err(OAuthError::new("invalid_request", "grant_type is required"));
    }
    if !["authorization_code", "client_credentials"].contains(&grant_type) {
        return Err(OAuthError::new(
            "unsupported_grant_type",
            format!("grant_type {grant_type:?} is not supported"),
        ));
    }
    if !client.allows_grant(grant_type) {
        return Err(OAuthError::new(
            "unauthorized_client",
            format!("this client may not use {grant_type}"),
        ));
    }
    if grant_type == "authorization_code" {
        exchange_code(idp, &client, &params)
    } else {
        grant_client_credentials(idp, &client, &params)
    }
}

/// The authorization-code grant: the code is taken out first, so it works at most once even
/// when a later check fails.
fn exchange_code(
    idp: &DevIdp,
    client: &Client,
    params: &HashMap<String, String>,
) -> Result<Value, OAuthError> {
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    if param("code").is_empty() {
        return Err(OAuthError::new("invalid_request", "code is required"));
    }
    let grant = idp.codes().take(param("code")).ok_or_else(|| {
        OAuthError::new(
            "invalid_grant",
            "the code is unknown, expired or already used",
        )
    })?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "the code was issued to another client",
        ));
    }
    if grant.redirect_uri != param("redirect_uri") {
        return Err(OAuthError::new(
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        ));
    }
    let verifier = param("code_verifier");
    if verifier.is_empty() {
        return Err(OAuthError::new(
            "invalid_request",
            "code_verifier is required (PKCE)",
        ));
    }
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed || !bool::from(challenge.as_bytes().ct_eq(grant.code_challenge.as_bytes())) {
        return Err(OAuthError::new(
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        ));
    }
    let access_token = random_secret();
    let token_grant = TokenGrant {
        account: grant.account.clone(),
    };
    idp.access_tokens()
        .insert(&access_token, token_grant, ACCESS_TOKEN_TTL)
        .map_err(|e| OAuthError::new("temporarily_unavailable", e.to_string()))?;
    let id_token = id_token(idp, &grant, &access_token)
        .map_err(|e| OAuthError::new("server_error", format!("cannot sign the ID token: {e}")))?;
    tracing::info!(client_id = %client.client_id, "development provider issued tokens");
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL.as_secs(),
        "id_token": id_token,
        "scope": grant.scope,
    }))
}

/// An RS256 ID token for the person in `grant`, with `nonce`, `azp` and `at_hash`.
fn id_token(idp: &DevIdp, grant: &CodeGrant, access_token: &str) -> anyhow::Result<String> {
    let now = Utc::now();
    let lifetime = Duration::seconds(ACCESS_TOKEN_TTL.as_secs() as i64);
    let claims = IdTokenClaims::new(
        IssuerUrl::from_url(idp.issuer().clone()),
        vec![Audience::new(grant.client_id.clone())],
        now + lifetime,
        now,
        grant.account.standard_claims(),
        grant.account.extra_claims(),
    )
    .set_nonce(Some(Nonce::new(grant.nonce.clone())))
    .set_authorized_party(Some(ClientId::new(grant.client_id.clone())))
    .set_auth_time(Some(now));
    let token = DevIdToken::new(
        claims,
        idp.key().openid_key(),
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        Some(&AccessToken::new(access_token.to_string())),
        None,
    )?;
    Ok(token.to_string())
}

/// The client-credentials grant: an RFC 9068 JWT access token for the Identify API, with the
/// requested scopes this provider grants to machines (all of them when none are asked for).
fn grant_client_credentials(
    idp: &DevIdp,
    client: &Client,
    params: &HashMap<String, String>,
) -> Result<Value, OAuthError> {
    let requested: Vec<&str> = params
        .get("scope")
        .map(|s| s.split_whitespace().collect())
        .unwrap_or_default();
    let granted: Vec<&str> = if requested.is_empty() {
        SERVICE_SCOPES.to_vec()
    } else {
        requested
            .into_iter()
            .filter(|s| SERVICE_SCOPES.contains(s))
            .collect()
    };
    if granted.is_empty() {
        return Err(OAuthError::new(
            "invalid_scope",
            format!("grantable scopes: {}", SERVICE_SCOPES.join(" ")),
        ));
    }
    let scope = granted.join(" ");
    let now = Utc::now().timestamp();
    let claims = json!({
        "iss": idp.issuer().as_str(),
        "sub": client.client_id,
        "aud": idp.api_audience(),
        "client_id": client.client_id,
        "scope": scope,
        "iat": now,
        "exp": now + ACCESS_TOKEN_TTL.as_secs() as i64,
        "jti": random_secret(),
    });
    let access_token = idp.key().sign_jwt("at+jwt", &claims).map_err(|e| {
        OAuthError::new("server_error", format!("cannot sign the access token: {e}"))
    })?;
    tracing::info!(client_id = %client.client_id, %scope, "development provider issued a client-credentials token");
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_TTL.as_secs(),
        "scope": scope,
    }))
}
