//! `POST /api/identify` and its OpenAPI document at `GET /api/openapi.json`; the work is in
//! `crate::identify_api`. Other methods get the spec's error JSON (405) naming the allowed one.

use axum::routing::{get, post};
use axum::Router;

use crate::identify_api::{self, openapi};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/identify",
            post(identify_api::receive_identify).fallback(identify_api::post_only),
        )
        .route(
            "/api/openapi.json",
            get(openapi::openapi_json).fallback(identify_api::get_only),
        )
}
