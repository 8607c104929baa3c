//! The admin API: `GET /api/users/{user_id}` (profile, identities, traits),
//! `DELETE /api/users/{user_id}` (erasure: profile, identities, sessions in every store, queued
//! messages) and `DELETE /api/users/{user_id}/sessions` (sign the user out everywhere).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::json;

use crate::admin_auth;
use crate::config::Settings;
use crate::error::AppError;
use crate::session_store::AnySessionStore;
use crate::state::AppState;
use crate::store::{SessionsOf, Store};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/users/{user_id}", get(get_user).delete(delete_user))
        .route("/api/users/{user_id}/sessions", delete(delete_sessions))
}

fn require_admin(settings: &Settings, headers: &HeaderMap) -> Result<(), AppError> {
    if admin_auth::authorized(&settings.admin, headers) {
        Ok(())
    } else {
        Err(AppError::Unauthorized(
            "A valid admin API key is required (Authorization: Bearer <key>).".into(),
        ))
    }
}

async fn get_user(
    State(settings): State<Arc<Settings>>,
    State(store): State<Store>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Response, AppError> {
    require_admin(&settings, &headers)?;
    let user = store
        .get_user(&user_id)
        .await?
        .ok_or(AppError::UserNotFound)?;
    Ok(Json(json!({"status": "success", "data": user})).into_response())
}

async fn delete_user(
    State(settings): State<Arc<Settings>>,
    State(store): State<Store>,
    State(sessions): State<AnySessionStore>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Response, AppError> {
    require_admin(&settings, &headers)?;
    if !sessions.erase_user(&store, &user_id).await? {
        return Err(AppError::UserNotFound);
    }
    tracing::info!(user_id = %user_id, "user erased");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// End every session of a user; 200 with how many were ended, 404 for an unknown user.
async fn delete_sessions(
    State(settings): State<Arc<Settings>>,
    State(store): State<Store>,
    State(sessions): State<AnySessionStore>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Response, AppError> {
    require_admin(&settings, &headers)?;
    if !store.profile_exists(&user_id).await? {
        return Err(AppError::UserNotFound);
    }
    let ended = sessions.end(&store, SessionsOf::User(&user_id)).await?;
    tracing::info!(user_id = %user_id, ended, "sessions ended by the admin API");
    Ok(Json(json!({"status": "success", "data": {"sessions_ended": ended}})).into_response())
}
