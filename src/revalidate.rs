//! Staying true to the provider: every `session.revalidate_secs`, on a request, a session is
//! checked back with the provider that signed its person in. With a refresh token (sign-ins ask
//! for one while re-validation is on: Okta and Microsoft with `offline_access`, Google with
//! `access_type=offline`, another provider with `offline_access` when it lists the scope; none
//! when the provider has `refresh_tokens = false`) the token is refreshed; otherwise userinfo
//! is asked while the access token is valid. A refused refresh (`invalid_grant`) or a userinfo refusal (account gone, grant revoked) ends the
//! session. A provider that cannot be reached, or answers something unusable (an answer over
//! its cap, not JSON), signs nobody out.
//!
//! The calls themselves are the provider's ([`Provider::refresh`], with what the kind's
//! refresh needs, and [`Provider::userinfo`], both capped); this module decides what their
//! answers mean for the session.

use reqwest::StatusCode;
use serde_json::{Map, Value};

use crate::providers::oidc::{RefreshError, UserinfoError};
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
    match provider.refresh(refresh_token).await {
        Ok(refreshed) => {
            // The fresh claims, for the traits; a refresh stands whatever userinfo says.
            let claims = match userinfo(provider, &refreshed.access_token).await {
                Verdict::Valid { claims, .. } => claims,
                _ => None,
            };
            Verdict::Valid {
                tokens: Some(SessionTokens {
                    id_token: tokens.id_token.clone(),
                    // A provider that rotates refresh tokens sends a new one; others keep the old.
                    refresh_token: refreshed
                        .refresh_token
                        .or_else(|| Some(refresh_token.to_string())),
                    access_token: Some(refreshed.access_token),
                    access_token_expires_at: refreshed.expires_in.map(|d| now + d.as_secs() as i64),
                }),
                claims,
            }
        }
        Err(RefreshError::InvalidGrant) => {
            Verdict::Ended("the provider refused the refresh token (invalid_grant)".into())
        }
        // Anything else (our client refused, a 5xx, a timeout, an unreadable or oversized
        // answer) is not the person's doing: they stay signed in.
        Err(RefreshError::Failed(e)) => Verdict::Unreachable(format!("refresh failed: {e}")),
    }
}

async fn userinfo(provider: &Provider, access_token: &str) -> Verdict {
    match provider.userinfo(access_token).await {
        Ok(claims) => Verdict::Valid {
            tokens: None,
            claims,
        },
        // The token was accepted; a signed answer is not read for claims.
        Err(UserinfoError::Signed) => Verdict::Valid {
            tokens: None,
            claims: None,
        },
        // The token was revoked or the account is gone.
        Err(UserinfoError::Refused(status))
            if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) =>
        {
            Verdict::Ended(format!("userinfo refused the access token (HTTP {status})"))
        }
        Err(UserinfoError::Refused(status)) => {
            Verdict::Unreachable(format!("userinfo answered HTTP {status}"))
        }
        Err(UserinfoError::Failed(e)) => Verdict::Unreachable(format!("userinfo failed: {e}")),
    }
}
