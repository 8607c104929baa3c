//! The small endpoints: discovery, JWKS, userinfo and the end-session page.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;

use super::views::message_page;
use super::{DevIdp, SERVICE_SCOPES, USER_SCOPES};

/// `GET /.well-known/openid-configuration`.
pub async fn discovery(State(idp): State<DevIdp>) -> Json<Value> {
    let scopes: Vec<&str> = USER_SCOPES.iter().chain(SERVICE_SCOPES).copied().collect();
    Json(json!({
        "issuer": idp.issuer().as_str(),
        "authorization_endpoint": idp.endpoint("authorize"),
        "token_endpoint": idp.endpoint("token"),
        "userinfo_endpoint": idp.endpoint("userinfo"),
        "jwks_uri": idp.endpoint("jwks"),
        "end_session_endpoint": idp.endpoint("logout"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "subject_types_supported": ["public"],
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "nonce", "azp", "at_hash",
            "name", "given_name", "family_name", "email", "email_verified",
            "phone_number", "address", "zoneinfo", "locale", "organization", "title"
        ],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "claims_parameter_supported": false,
    }))
}

/// `GET /jwks`: the public signing key.
pub async fn jwks(State(idp): State<DevIdp>) -> Json<Value> {
    Json(idp.key().jwks().clone())
}

/// `GET|POST /userinfo`: the profile claims for a code-flow access token.
pub async fn userinfo(State(idp): State<DevIdp>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    // Client-credentials tokens are JWTs that are never stored here, so they cannot read profiles.
    match token.and_then(|t| idp.access_tokens().get(t)) {
        Some(grant) => {
            let mut response = Json(grant.account.userinfo()).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        None => {
            let challenge = if token.is_some() {
                r#"Bearer realm="dev-idp", error="invalid_token", error_description="The access token is unknown or expired""#
            } else {
                r#"Bearer realm="dev-idp", error="invalid_token", error_description="No bearer access token""#
            };
            let body = json!({ "error": "invalid_token" });
            let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            response
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct LogoutParams {
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// `GET /logout` (end_session_endpoint). The provider keeps no session, so this only says so
/// and links back, but only to an origin it trusts: its own, or a registered redirect URI's.
pub async fn logout(State(idp): State<DevIdp>, Query(params): Query<LogoutParams>) -> Response {
    let link = params
        .post_logout_redirect_uri
        .as_deref()
        .and_then(|uri| Url::parse(uri).ok())
        .filter(|url| {
            let origin = url.origin();
            origin == idp.issuer().origin() || idp.redirect_origins().contains(&origin)
        })
        .map(|mut url| {
            if let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) {
                url.query_pairs_mut().append_pair("state", state);
            }
            (url.to_string(), "Back to the application".to_string())
        });
    message_page(
        StatusCode::OK,
        "Signed out of the development provider",
        "The development provider keeps no sign-in session, so there is nothing left to end here. \
         The next sign-in will ask you to choose a person again.",
        link,
    )
}
