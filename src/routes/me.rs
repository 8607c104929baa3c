//! `GET /me`: who is signed in, as JSON; 401 JSON when nobody is.

use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_sessions::Session;

use crate::error::AppError;
use crate::session;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/me", get(me))
}

async fn me(session: Session) -> Result<impl IntoResponse, AppError> {
    let user = session::signed_in_user(&session)
        .await?
        .ok_or(AppError::NotSignedIn)?;
    Ok(Json(json!({
        "user_id": user.user_id,
        "provider": user.provider,
        "issuer": user.issuer,
        "subject": user.subject,
        "email": user.email,
        "name": user.name,
        "signed_in_at": user.signed_in_at,
    })))
}
