//! `GET /auth`: for reverse proxies' `auth_request`. 204 with the user's id and email in
//! headers when signed in (a live session of a profile that exists), 401 otherwise.

use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_sessions::Session;

use crate::error::AppError;
use crate::routes::signed_in::{current_user, end_session};
use crate::state::AppState;

pub const USER_ID_HEADER: &str = "x-identify-user-id";
pub const EMAIL_HEADER: &str = "x-identify-email";

pub fn router() -> Router<AppState> {
    Router::new().route("/auth", get(auth))
}

async fn auth(State(state): State<AppState>, session: Session) -> Result<Response, AppError> {
    let user = current_user(&state, &session)
        .await?
        .ok_or(AppError::NotSignedIn)?;
    if !state.store.profile_exists(&user.user_id).await? {
        // The profile was erased while this session lived: end the session too.
        end_session(&session).await?;
        return Err(AppError::NotSignedIn);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&user.user_id) {
        headers.insert(HeaderName::from_static(USER_ID_HEADER), v);
    }
    // Claims are untrusted text: only values that are valid header text are passed on.
    if let Some(Ok(v)) = user.email.as_deref().map(HeaderValue::from_str) {
        headers.insert(HeaderName::from_static(EMAIL_HEADER), v);
    }
    Ok(response)
}
