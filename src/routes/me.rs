//! `GET /me`: the signed-in user as JSON (profile, traits with provenance beside them,
//! identities, whether this session's sign-in created the profile, when the session ends);
//! 401 JSON when nobody is signed in.
//!
//! Web apps on `server.allowed_return_origins` may read it from the browser after the sign-in
//! (`fetch(…/me, {credentials: "include"})`): CORS with credentials, for exactly those origins,
//! GET only. The session cookie is `SameSite=Lax`, so this works for apps on the same site
//! (e.g. `app.example.com` and `login.example.com`).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, Method};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_sessions::Session;

use crate::config::Settings;

use crate::error::AppError;
use crate::routes::signed_in::{current_user, end_session};
use crate::session::SignedInUser;
use crate::state::AppState;

pub fn router(settings: &Settings) -> Router<AppState> {
    let route = Router::new().route("/me", get(me));
    let origins: Vec<HeaderValue> = settings
        .server
        .allowed_return_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.as_str()).ok())
        .collect();
    if origins.is_empty() {
        return route;
    }
    route.layer(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET])
            .allow_credentials(true)
            .max_age(Duration::from_secs(600)),
    )
}

async fn me(
    State(state): State<AppState>,
    session: Session,
) -> Result<impl IntoResponse, AppError> {
    let user = current_user(&state, &session)
        .await?
        .ok_or(AppError::NotSignedIn)?;
    let Some(profile) = state.store.get_user(&user.user_id).await? else {
        // The profile was erased while this session lived: end the session too.
        end_session(&session).await?;
        return Err(AppError::NotSignedIn);
    };
    Ok(Json(json!({
        "user_id": profile.user_id,
        "created_at": crate::traits::format_time(profile.created_at),
        "created_at_source": profile.created_at_source,
        "last_sign_in_at": profile.last_sign_in_at.map(crate::traits::format_time),
        "provider": user.provider,
        "issuer": user.issuer,
        "subject": user.subject,
        "email": user.email,
        "name": user.name,
        "signed_in_at": user.signed_in_at,
        "first_sign_in": user.first_sign_in,
        "session_expires_at": session_expires_at(&state, &session, &user),
        "traits": profile.traits,
        "provenance": profile.provenance,
        "identities": profile.identities,
    })))
}

/// When this session ends unless used again: the idle expiry, or the absolute lifetime
/// (`session.max_lifetime_secs` after the sign-in), whichever comes first. RFC 3339.
fn session_expires_at(state: &AppState, session: &Session, user: &SignedInUser) -> String {
    let idle = chrono::DateTime::from_timestamp(session.expiry_date().unix_timestamp(), 0);
    let lifetime = chrono::DateTime::parse_from_rfc3339(&user.signed_in_at)
        .ok()
        .zip(i64::try_from(state.settings.session.max_lifetime_secs).ok())
        .and_then(|(at, secs)| at.checked_add_signed(chrono::TimeDelta::try_seconds(secs)?))
        .map(|at| at.to_utc());
    let ends = match (idle, lifetime) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or_else(chrono::Utc::now),
    };
    crate::traits::format_time(ends)
}
