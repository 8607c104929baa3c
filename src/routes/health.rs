//! `/healthz` (the process is alive) and `/readyz` (it can serve sign-ins).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::providers::Providers;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// 200 when every part is ready, else 503; the body says which part is not.
async fn readyz(State(providers): State<Providers>) -> impl IntoResponse {
    let mut parts = Map::new();
    let mut ready = true;
    for p in providers.iter() {
        let ok = p.is_ready();
        ready &= ok;
        let mut entry = json!({"ready": ok});
        if !ok {
            entry["error"] =
                Value::String(p.last_error().unwrap_or_else(|| "discovery pending".into()));
        }
        parts.insert(format!("provider:{}", p.name()), entry);
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if ready { "ready" } else { "not_ready" }, "checks": parts})),
    )
}
