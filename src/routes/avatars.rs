//! `GET /avatars/{avatar_id}`: profile photos the bridge re-hosts (Microsoft Graph's photo
//! needs the user's token, so `enrichment_avatar` points here instead). Public, like the photo
//! URLs Google hands out: the id is unguessable (a hash of the identity and the bytes) and a
//! new photo gets a new id, so an answer can be cached for good.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::error::AppError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/avatars/{avatar_id}", get(avatar))
}

async fn avatar(
    State(state): State<AppState>,
    Path(avatar_id): Path<String>,
) -> Result<Response, AppError> {
    let well_formed = avatar_id.len() == 32 && avatar_id.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed {
        return Err(AppError::NotFound);
    }
    let Some((content_type, image)) = state.store.avatar(&avatar_id).await? else {
        return Err(AppError::NotFound);
    };
    // Only the types the bridge stores (read from the bytes when the photo was fetched).
    let content_type = match content_type.as_str() {
        "image/jpeg" | "image/png" | "image/gif" | "image/webp" => {
            HeaderValue::from_str(&content_type).map_err(|e| AppError::Internal(e.into()))?
        }
        _ => return Err(AppError::NotFound),
    };
    let mut response = image.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Analytics dashboards on other origins show these images.
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    Ok(response)
}
