//! `GET /callback/{provider}`: the provider sends the browser back here. Security steps run in
//! order, once: take the pending login out of the session (single use), compare state, check
//! expiry and `iss`, exchange the code, verify, then sign the user in on a fresh session id.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tower_sessions::Session;

use crate::config::Settings;
use crate::error::AppError;
use crate::providers::oidc::VerifiedLogin;
use crate::providers::{Provider, Providers};
use crate::session::{self, PendingLogin, SignedInUser};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/callback/{provider}", get(finish_login))
}

/// The authorization response. Codes are secrets: this type's `Debug` hides them.
#[derive(Deserialize)]
pub struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    iss: Option<String>,
}

#[tracing::instrument(skip_all, fields(provider = %name))]
async fn finish_login(
    State(settings): State<Arc<Settings>>,
    State(providers): State<Providers>,
    Path(name): Path<String>,
    Query(params): Query<CallbackParams>,
    session: Session,
) -> Result<Response, AppError> {
    match complete_sign_in(&settings, &providers, &name, params, &session).await {
        Ok(response) => Ok(response),
        Err(e) => {
            // Nothing half-done survives a failed callback: no pending login, no new session.
            if session::signed_in_user(&session)
                .await
                .ok()
                .flatten()
                .is_none()
            {
                let _ = session.flush().await;
            }
            Err(e)
        }
    }
}

async fn complete_sign_in(
    settings: &Settings,
    providers: &Providers,
    name: &str,
    params: CallbackParams,
    session: &Session,
) -> Result<Response, AppError> {
    let provider = providers
        .get(name)
        .ok_or_else(|| AppError::UnknownProvider(name.to_string()))?;
    let state = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(AppError::LoginStateInvalid)?;
    let pending = session::take_pending_login(session, state)
        .await?
        .ok_or(AppError::LoginStateInvalid)?;
    if pending.provider != name {
        return Err(AppError::LoginStateInvalid);
    }
    let age = chrono::Utc::now().timestamp() - pending.started_at;
    if age < 0 || age as u64 > settings.session.login_timeout_secs {
        return Err(AppError::LoginExpired);
    }
    if let Some(error) = params.error {
        return Err(AppError::ProviderDenied {
            error: error.chars().take(64).collect(),
            description: params
                .error_description
                .map(|d| d.chars().take(512).collect()),
        });
    }
    let code = params.code.filter(|c| !c.is_empty()).ok_or_else(|| {
        AppError::BadRequest("The provider's answer has no authorization code.".into())
    })?;
    provider.check_response_issuer(params.iss.as_deref())?;
    let login = provider
        .finish_login(code, pending.pkce_verifier.clone(), pending.nonce.clone())
        .await?;
    sign_in(session, &provider, &pending, &login).await?;
    tracing::info!(first_sign_in = false, "sign-in finished");
    Ok(Redirect::to(&pending.return_to).into_response())
}

/// Put the verified user in the session under a fresh session id (no fixation).
async fn sign_in(
    session: &Session,
    provider: &Provider,
    _pending: &PendingLogin,
    login: &VerifiedLogin,
) -> Result<(), AppError> {
    let text = |key: &str| {
        login
            .claims
            .get(key)
            .and_then(|v| v.as_str())
            .map(|s| s.chars().take(320).collect::<String>())
    };
    let user = SignedInUser {
        user_id: format!("{}|{}", login.issuer, login.account_key),
        provider: provider.name().to_string(),
        issuer: login.issuer.clone(),
        subject: login.subject.clone(),
        email: text("email"),
        name: text("name"),
        signed_in_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    session.cycle_id().await?;
    session.remove_value(session::PENDING_LOGINS).await?;
    session.insert(session::SIGNED_IN_USER, user).await?;
    Ok(())
}
