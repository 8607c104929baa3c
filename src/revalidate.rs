//! Staying true to the provider: every `session.revalidate_secs`, on a request, a session is
//! checked back with the provider that signed its person in. With a refresh token (Okta and
//! Microsoft with `offline_access`, Google with `access_type=offline`, any provider that
//! issued one) the token is refreshed; otherwise userinfo is asked while the access token is
//! valid. A refused refresh (`invalid_grant`) or a userinfo refusal (account gone, grant
//! revoked) ends the session. A provider that cannot be reached signs nobody out.
//!
//! What a check needs is the generic OpenID Connect client of each provider (its token and
//! userinfo endpoints from discovery), so it lives here once rather than in each provider file.

use openidconnect::{OAuth2TokenResponse, RefreshToken, RequestTokenError};
use reqwest::StatusCode;
use serde_json::{Map, Value};

use crate::providers::Provider;
use crate::session::SessionTokens;

/// What the provider said about a session.
pub enum Verdict {
    /// Still good: `tokens` to keep when they changed (a refresh), and the account's fresh
    /// claims from userinfo when it answered with them (untrusted; its `sub` not yet compared).
    Valid {
        tokens: Option<SessionTokens>,
        claims: Option<Map<String, Value>>,
    },
    /// The provider refused: the session ends. The reason is safe to log.
    Ended(String),
    /// The provider could not be asked: the session goes on. The reason is safe to log.
    Unreachable(String),
}

/// Check a session's tokens with `provider` (at unix time `now`).
pub async fn check(provider: &Provider, tokens: &SessionTokens, now: i64) -> Verdict {
    if let Some(refresh_token) = &tokens.refresh_token {
        return refresh(provider, tokens, refresh_token, now).await;
    }
    let access_valid = tokens.access_token_expires_at.is_none_or(|at| at > now);
    match &tokens.access_token {
        Some(access_token) if access_valid => userinfo(provider, access_token).await,
        // Nothing left to ask with: the session stands on its sign-in until it expires.
        _ => Verdict::Valid {
            tokens: None,
            claims: None,
        },
    }
}

async fn refresh(
    provider: &Provider,
    tokens: &SessionTokens,
    refresh_token: &str,
    now: i64,
) -> Verdict {
    let discovered = match provider.discovered() {
        Ok(d) => d,
        Err(e) => return Verdict::Unreachable(e.to_string()),
    };
    let token = RefreshToken::new(refresh_token.to_string());
    let request = match discovered.client.exchange_refresh_token(&token) {
        Ok(request) => request,
        Err(e) => return Verdict::Unreachable(format!("no token endpoint: {e}")),
    };
    let started = std::time::Instant::now();
    let response = request.request_async(&provider.token_http()).await;
    crate::metrics::provider_call(provider.name(), "refresh", started.elapsed().as_secs_f64());
    match response {
        Ok(response) => {
            let access_token = response.access_token().secret().clone();
            // The fresh claims, for the traits; a refresh stands whatever userinfo says.
            let claims = match userinfo(provider, &access_token).await {
                Verdict::Valid { claims, .. } => claims,
                _ => None,
            };
            Verdict::Valid {
                tokens: Some(SessionTokens {
                    id_token: tokens.id_token.clone(),
                    // A provider that rotates refresh tokens sends a new one; others keep the old.
                    refresh_token: response
                        .refresh_token()
                        .map(|t| t.secret().clone())
                        .or_else(|| Some(refresh_token.to_string())),
                    access_token: Some(access_token),
                    access_token_expires_at: response
                        .expires_in()
                        .map(|d| now + d.as_secs() as i64),
                }),
                claims,
            }
        }
        Err(RequestTokenError::ServerResponse(r))
            if matches!(
                r.error(),
                openidconnect::core::CoreErrorResponseType::InvalidGrant
            ) =>
        {
            Verdict::Ended("the provider refused the refresh token (invalid_grant)".into())
        }
        // Anything else (our client refused, a 5xx, a timeout, an unreadable answer) is not
        // the person's doing: they stay signed in.
        Err(RequestTokenError::ServerResponse(r)) => {
            Verdict::Unreachable(format!("refresh refused: {}", r.error()))
        }
        Err(e) => Verdict::Unreachable(format!("refresh failed: {e}")),
    }
}

async fn userinfo(provider: &Provider, access_token: &str) -> Verdict {
    let discovered = match provider.discovered() {
        Ok(d) => d,
        Err(e) => return Verdict::Unreachable(e.to_string()),
    };
    let Some(endpoint) = discovered.metadata.userinfo_endpoint() else {
        return Verdict::Valid {
            tokens: None,
            claims: None,
        };
    };
    let started = std::time::Instant::now();
    let response = provider
        .http()
        .get(endpoint.url().clone())
        .bearer_auth(access_token)
        .header(reqwest::header::ACCEPT, "application/json")
        .headers(crate::telemetry::trace_headers())
        .send()
        .await;
    crate::metrics::provider_call(provider.name(), "userinfo", started.elapsed().as_secs_f64());
    match response {
        // A JSON object is read for its claims; anything else (a signed userinfo) is not.
        Ok(r) if r.status().is_success() => Verdict::Valid {
            tokens: None,
            claims: r.json::<Map<String, Value>>().await.ok(),
        },
        // The token was revoked or the account is gone.
        Ok(r) if matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
            Verdict::Ended(format!(
                "userinfo refused the access token (HTTP {})",
                r.status()
            ))
        }
        Ok(r) => Verdict::Unreachable(format!("userinfo answered HTTP {}", r.status())),
        Err(e) => Verdict::Unreachable(format!("userinfo unreachable: {e}")),
    }
}
