//! The admin API: `GET /api/users/{user_id}` (profile, identities, traits) and
//! `DELETE /api/users/{user_id}` (erasure: profile, identities, sessions, queued messages).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::admin_auth;
use crate::config::Settings;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::Store;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/users/{user_id}", get(get_user).delete(delete_user))
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
    headers: HeaderMap,
    Path(user_id): Path<String>,
) -> Result<Response, AppError> {
    require_admin(&settings, &headers)?;
    if !store.delete_user(&user_id).await? {
        return Err(AppError::UserNotFound);
    }
    tracing::info!(user_id = %user_id, "user erased");
    Ok(StatusCode::NO_CONTENT.into_response())
}
