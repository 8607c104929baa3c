//! `GET /callback/{provider}`: the provider sends the browser back here. Security steps run in
//! order, once: take the pending login out of the session (single use), compare state, check
//! expiry and `iss`, exchange the code, verify, then record the sign-in (profile + outbox in
//! one transaction) and sign the user in on a fresh session id.

use std::time::Instant;

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
use crate::session::{self, SignedInUser};
use crate::signin::{self, ClientInfo};
use crate::state::AppState;
use crate::store::{SignIn, SignInOutcome, Store};
use crate::{metrics, outbox};

pub fn router() -> Router<AppState> {
    Router::new().route("/callback/{provider}", get(finish_login))
}

/// The authorization response. Codes are secrets: this type has no `Debug`.
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
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<CallbackParams>,
    client: ClientInfo,
    session: Session,
) -> Result<Response, AppError> {
    let started = Instant::now();
    let result = complete_sign_in(&state, &name, params, &session, client).await;
    let known = state.providers.get(&name).is_some();
    match result {
        Ok(response) => {
            if known {
                metrics::callback_latency(&name, started.elapsed().as_secs_f64());
            }
            Ok(response)
        }
        Err(e) => {
            if known {
                metrics::sign_in(&name, "failure", e.reason());
            }
            // Nothing half-done survives a failed callback: no pending login, no new session.
            // (Once the pending login was taken, the stored record is already gone and the
            // session has no id: clearing it is enough.)
            if session::signed_in_user(&session)
                .await
                .ok()
                .flatten()
                .is_none()
            {
                if session.id().is_some() {
                    let _ = session.flush().await;
                } else {
                    session.clear().await;
                }
            }
            Err(e)
        }
    }
}

async fn complete_sign_in(
    state: &AppState,
    name: &str,
    params: CallbackParams,
    session: &Session,
    client: ClientInfo,
) -> Result<Response, AppError> {
    let settings: &Settings = &state.settings;
    let providers: &Providers = &state.providers;
    let provider = providers
        .get(name)
        .ok_or_else(|| AppError::UnknownProvider(name.to_string()))?;
    let request_state = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or(AppError::LoginStateInvalid)?;
    let pending = session::take_pending_login(session, request_state)
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
    let client = client.with_anonymous_id(pending.anonymous_id.clone());
    let outcome = record_sign_in(&state.store, settings, &provider, &login, &client).await?;
    crate::outbox::worker::wake();
    sign_in_session(session, &provider, &login, &outcome).await?;
    metrics::sign_in(name, "success", "ok");
    if outcome.first_sign_in {
        metrics::first_sign_in(name);
    }
    tracing::info!(user_id = %outcome.user_id, first_sign_in = outcome.first_sign_in, "sign-in finished");
    Ok(Redirect::to(&pending.return_to).into_response())
}

/// Enrich, then write profile, identity and outbox messages in one transaction.
async fn record_sign_in(
    store: &Store,
    settings: &Settings,
    provider: &Provider,
    login: &VerifiedLogin,
    client: &ClientInfo,
) -> Result<SignInOutcome, AppError> {
    let at = chrono::Utc::now();
    let mut enriched = signin::enrich(provider, login, at).await;
    let avatar = signin::rehost_photo(
        &mut enriched,
        &settings.server.public_url,
        &login.issuer,
        &login.account_key,
    );
    let email = enriched.verified_email.clone().or_else(|| {
        login.claims.get("email").and_then(|v| v.as_str()).map(|e| {
            e.trim()
                .chars()
                .take(320)
                .collect::<String>()
                .to_ascii_lowercase()
        })
    });
    let record = SignIn {
        provider: provider.name().to_string(),
        issuer: login.issuer.clone(),
        subject: login.account_key.clone(),
        email,
        email_verified: enriched.verified_email.is_some(),
        traits: serde_json::to_value(&enriched.mapped.traits)
            .map_err(|e| AppError::Internal(e.into()))?,
        provenance: serde_json::to_value(&enriched.mapped.provenance)
            .map_err(|e| AppError::Internal(e.into()))?,
        provider_created_at: enriched.provider_created_at,
        at,
        link_by_email: settings.accounts.link_by_email,
        avatar,
    };
    let messages = |outcome: &SignInOutcome| {
        outbox::messages_for_sign_in(
            settings,
            provider.name(),
            &record,
            &enriched.mapped.traits,
            &login.claims,
            outcome,
            client,
        )
    };
    Ok(store.record_sign_in(&record, &messages).await?)
}

/// Put the user in the session. Its id is fresh since `take_pending_login` (no fixation); the
/// session layer stores it with the response, and the session store links a new signed-in
/// session to the profile (so erasure can end it) in the same write.
async fn sign_in_session(
    session: &Session,
    provider: &Provider,
    login: &VerifiedLogin,
    outcome: &SignInOutcome,
) -> Result<(), AppError> {
    let text = |key: &str| {
        login
            .claims
            .get(key)
            .and_then(|v| v.as_str())
            .map(|s| s.chars().take(320).collect::<String>())
    };
    let user = SignedInUser {
        user_id: outcome.user_id.clone(),
        provider: provider.name().to_string(),
        issuer: login.issuer.clone(),
        subject: login.subject.clone(),
        email: text("email"),
        name: text("name"),
        signed_in_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        first_sign_in: outcome.first_sign_in,
    };
    session.remove_value(session::PENDING_LOGINS).await?;
    session.insert(session::SIGNED_IN_USER, user).await?;
    Ok(())
}
