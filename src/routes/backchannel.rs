//! `POST /backchannel-logout/{provider}`: OpenID Connect Back-Channel Logout 1.0. The provider
//! posts a `logout_token` (form body); once it is verified ([`crate::logout_token`]) and its
//! `jti` is recorded as used (in the database, so a replay to any replica is refused), every
//! session with that `sid` (or, without one, that `sub`) at that provider ends, in the database
//! and the session store alike, so on every replica. 200, or 400 with a JSON error; no cookies.
//! Register `{public_url}/backchannel-logout/{provider}` at the provider (`check-config` prints it).

use axum::extract::{Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::logout_token::{self, LogoutTokenError, MAX_AGE_SECS};
use crate::state::AppState;
use crate::store::SessionsOf;

pub fn router() -> Router<AppState> {
    Router::new().route("/backchannel-logout/{provider}", post(backchannel_logout))
}

/// The URL to register at a provider as its back-channel logout URI.
pub fn backchannel_logout_url(public_url: &url::Url, provider: &str) -> url::Url {
    let mut url = public_url.clone();
    url.set_path(&format!(
        "{}/backchannel-logout/{provider}",
        public_url.path().trim_end_matches('/')
    ));
    url
}

/// Why a back-channel logout was not carried out.
enum Refusal {
    /// The request or token is bad: 400 `invalid_request`.
    Invalid(String),
    /// We could not act now (database, session store, provider keys): 503, the provider may
    /// send it again.
    Unavailable(String),
}

#[tracing::instrument(skip_all, fields(provider = %name))]
async fn backchannel_logout(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let no_store = [(CACHE_CONTROL, "no-store")];
    match receive(&state, &name, &body).await {
        Ok(ended) => {
            crate::metrics::backchannel_logout(&name, "ended");
            tracing::info!(ended, "back-channel logout");
            (StatusCode::OK, no_store).into_response()
        }
        Err(Refusal::Invalid(reason)) => {
            crate::metrics::backchannel_logout(&name, "refused");
            tracing::warn!(%reason, "back-channel logout refused");
            let body = json!({"error": "invalid_request", "error_description": reason});
            (StatusCode::BAD_REQUEST, no_store, Json(body)).into_response()
        }
        Err(Refusal::Unavailable(reason)) => {
            crate::metrics::backchannel_logout(&name, "unavailable");
            tracing::error!(%reason, "back-channel logout failed");
            let body = json!({"error": "temporarily_unavailable"});
            (StatusCode::SERVICE_UNAVAILABLE, no_store, Json(body)).into_response()
        }
    }
}

/// Verify, spend the `jti`, end the sessions; how many sessions ended.
async fn receive(state: &AppState, name: &str, body: &[u8]) -> Result<usize, Refusal> {
    let provider = state
        .providers
        .get(name)
        .ok_or_else(|| Refusal::Invalid(format!("no provider named {name:?} here")))?;
    let mut tokens = url::form_urlencoded::parse(body)
        .filter(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    let (Some(token), None) = (tokens.next(), tokens.next()) else {
        return Err(Refusal::Invalid(
            "the body must carry exactly one logout_token".into(),
        ));
    };
    let now = chrono::Utc::now().timestamp();
    let verify = || -> Result<_, Refusal> {
        let discovered = provider
            .discovered()
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        let jwks = serde_json::to_value(discovered.metadata.jwks())
            .map_err(|e| Refusal::Unavailable(e.to_string()))?;
        Ok(logout_token::verify(
            &token,
            &jwks,
            |iss| provider.check_response_issuer(Some(iss)).is_ok(),
            &provider.settings.client_id,
            now,
        ))
    };
    let verified = match verify()? {
        // Key rotation: fetch the keys again (rate-limited) and try once more.
        Err(LogoutTokenError::UnknownKey) => {
            if provider.refresh_jwks().await.unwrap_or(false) {
                verify()?
            } else {
                Err(LogoutTokenError::UnknownKey)
            }
        }
        other => other,
    }
    .map_err(|e| Refusal::Invalid(e.to_string()))?;

    let key = Sha256::digest(format!("{name}\0{}", verified.jti));
    let expires_at = chrono::DateTime::from_timestamp(verified.iat + MAX_AGE_SECS + 120, 0)
        .unwrap_or_else(chrono::Utc::now);
    let fresh = state
        .store
        .spend_logout_token(&hex::encode(key), expires_at)
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))?;
    if !fresh {
        return Err(Refusal::Invalid("this logout_token was used before".into()));
    }
    let which = match (&verified.sid, &verified.sub) {
        (Some(sid), _) => SessionsOf::Sid {
            provider: name,
            sid,
        },
        (None, Some(subject)) => SessionsOf::Subject {
            provider: name,
            subject,
        },
        (None, None) => return Err(Refusal::Invalid(LogoutTokenError::NoSubject.to_string())),
    };
    state
        .sessions
        .end(&state.store, which)
        .await
        .map_err(|e| Refusal::Unavailable(e.to_string()))
}
