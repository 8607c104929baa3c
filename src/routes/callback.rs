//! `GET /callback/{provider}`: the provider sends the browser back here. Security steps run in
//! order, once: find the pending login by its state (its own sealed cookie, removed with the
//! response; no other state's cookie is touched), check expiry and `iss`, exchange the code,
//! verify, then record the sign-in (profile + outbox + the spent state, in one transaction: a
//! replay is refused there, on any replica) and sign the user in on a fresh session id.

use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{AppendHeaders, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tower_sessions::Session;

use crate::access_policy::{self, Applicant};
use crate::config::Settings;
use crate::error::AppError;
use crate::providers::{Provider, Providers};
use crate::session::{NewSignedIn, PendingLogin, SignedInUser};
use crate::signin::{self, ClientInfo, SignInFacts};
use crate::state::AppState;
use crate::store::{Callback, NewSession, SignInOutcome, SpentState, Store, StoreError};
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
    headers: HeaderMap,
    client: ClientInfo,
    session: Session,
) -> Result<Response, AppError> {
    let started = Instant::now();
    let known = state.providers.get(&name).is_some();
    // This state's cookie is spent, whatever happens; other states' cookies stay.
    let spent_cookie = params
        .state
        .as_deref()
        .filter(|s| known && !s.is_empty())
        .map(|s| state.pending_logins.remove_cookie(&name, s));
    let result = complete_sign_in(&state, &name, params, &headers, &session, client).await;
    let response = match result {
        Ok(response) => {
            if known {
                metrics::callback_latency(&name, started.elapsed().as_secs_f64());
            }
            response
        }
        Err(e) => {
            if known {
                metrics::sign_in(&name, "failure", e.reason());
            }
            // Nothing was written: the session is only touched once the sign-in is recorded.
            e.into_response()
        }
    };
    Ok((
        AppendHeaders(spent_cookie.map(|c| (SET_COOKIE, c))),
        response,
    )
        .into_response())
}

async fn complete_sign_in(
    state: &AppState,
    name: &str,
    params: CallbackParams,
    headers: &HeaderMap,
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
    let pending = state
        .pending_logins
        .find(headers, name, request_state)
        .ok_or(AppError::LoginStateInvalid)?;
    let age = chrono::Utc::now().timestamp() - pending.started_at;
    if age < 0 || age as u64 > settings.session.login_timeout_secs {
        return Err(AppError::LoginExpired);
    }
    if let Some(error) = params.error {
        // An app without the Refresh Token grant: the provider refuses the whole request.
        let offline_access_refused_by = (error == "invalid_scope"
            && provider.asks_offline_access(settings.session.revalidate_secs > 0))
        .then(|| name.to_string());
        return Err(AppError::ProviderDenied {
            offline_access_refused_by,
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
    let facts = signin::facts_for(
        &provider,
        &login,
        &settings.server.public_url,
        chrono::Utc::now(),
    )
    .await;
    check_access(&provider, &facts)?;
    let client = client.with_login(&pending);
    let spent = spent_state(&pending, settings.session.login_timeout_secs);
    // The signed-in session is written by the sign-in transaction (its record too, when
    // sessions live in the database); the last attempt's session is the one committed.
    let prepared = Mutex::new(None);
    let in_database = state.sessions.in_database();
    let signed_in_at = chrono::Utc::now();
    let new_session = |outcome: &SignInOutcome| {
        let mut user = signed_in_user(&facts, outcome, signed_in_at);
        user.seal_tokens(&state.pending_logins.keys, &login.session_tokens);
        let new = NewSignedIn::new(user);
        let written = NewSession {
            session_id: new.id.to_string(),
            record: in_database.then(|| new.row(settings.session.idle_timeout_secs)),
            provider: provider.name().to_string(),
            subject: facts.subject.clone(),
            sid: new.user.sid.clone(),
        };
        *prepared.lock().unwrap_or_else(|e| e.into_inner()) = Some(new);
        written
    };
    let outcome = record_sign_in(
        &state.store,
        settings,
        &facts,
        &client,
        Callback {
            spent: &spent,
            session: &new_session,
        },
    )
    .await?;
    crate::outbox::worker::wake();
    let prepared = prepared.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(new) = prepared {
        new.adopt(session).await?;
    }
    metrics::sign_in(name, "success", "ok");
    if outcome.first_sign_in {
        metrics::first_sign_in(name);
    }
    tracing::info!(user_id = %outcome.user_id, first_sign_in = outcome.first_sign_in, "sign-in finished");
    Ok(Redirect::to(&pending.return_to).into_response())
}

/// The provider's access policies, before anything is written: a refused person leaves no
/// profile, session or outbox row (their pending login's cookie is spent like any other).
fn check_access(provider: &Provider, facts: &SignInFacts) -> Result<(), AppError> {
    let who = Applicant {
        verified_email: facts
            .email
            .as_ref()
            .filter(|e| e.verified)
            .map(|e| e.address.as_str()),
        hosted_domain: facts.hosted_domain.as_deref(),
        groups: facts.groups.as_deref(),
    };
    let hosted_domains = provider.quirks().allowed_hosted_domains();
    Ok(access_policy::check(
        &provider.settings,
        hosted_domains,
        &who,
    )?)
}

/// The state as the sign-in transaction records it: hashed, kept until the pending login
/// would have expired (a replay after that fails the age check anyway).
fn spent_state(pending: &PendingLogin, login_timeout_secs: u64) -> SpentState {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(format!("{}\0{}", pending.provider, pending.state));
    let started = chrono::DateTime::from_timestamp(pending.started_at, 0).unwrap_or_default();
    SpentState {
        state_hash: hex::encode(hash),
        expires_at: started + chrono::TimeDelta::seconds(login_timeout_secs as i64 + 60),
    }
}

/// Write profile, identity and outbox messages in one transaction.
async fn record_sign_in(
    store: &Store,
    settings: &Settings,
    facts: &SignInFacts,
    client: &ClientInfo,
    callback: Callback<'_>,
) -> Result<SignInOutcome, AppError> {
    let record = facts
        .record(settings.accounts.link_by_email)
        .map_err(|e| AppError::Internal(e.into()))?;
    let messages =
        |outcome: &SignInOutcome| outbox::messages_for_sign_in(settings, facts, outcome, client);
    match store
        .record_sign_in_once(&record, &callback, &messages)
        .await
    {
        Err(StoreError::StateUsed) => Err(AppError::LoginStateInvalid),
        other => Ok(other?),
    }
}

/// Who the session says is signed in.
fn signed_in_user(
    facts: &SignInFacts,
    outcome: &SignInOutcome,
    at: chrono::DateTime<chrono::Utc>,
) -> SignedInUser {
    SignedInUser {
        user_id: outcome.user_id.clone(),
        provider: facts.provider.clone(),
        issuer: facts.issuer.clone(),
        subject: facts.subject.clone(),
        email: facts.email.as_ref().map(|e| e.address.clone()),
        name: facts.name.clone(),
        signed_in_at: at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        first_sign_in: outcome.first_sign_in,
        validated_at: at.timestamp(),
        sid: facts.sid.clone(),
        tokens: None,
    }
}
