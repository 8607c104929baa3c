//! `/healthz` (the process is alive), `/readyz` (it can serve sign-ins) and `/metrics`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::providers::Providers;
use crate::state::AppState;
use crate::store::Store;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// `GET /metrics` alone: on the main router, or on `server.metrics_listen`.
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// Prometheus text format.
async fn metrics(State(store): State<Store>) -> impl IntoResponse {
    crate::metrics::record_outbox(&store).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::install().render(),
    )
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// 200 when every part is ready, else 503; the body says which part is not.
async fn readyz(
    State(providers): State<Providers>,
    State(store): State<Store>,
    State(settings): State<std::sync::Arc<crate::config::Settings>>,
) -> impl IntoResponse {
    let mut parts = Map::new();
    let mut ready = true;
    match tokio::time::timeout(std::time::Duration::from_secs(2), store.ping()).await {
        Ok(Ok(())) => {
            parts.insert("database".into(), json!({"ready": true}));
        }
        Ok(Err(e)) => {
            ready = false;
            parts.insert(
                "database".into(),
                json!({"ready": false, "error": e.to_string()}),
            );
        }
        Err(_) => {
            ready = false;
            parts.insert(
                "database".into(),
                json!({"ready": false, "error": "no answer within 2 s"}),
            );
        }
    }
    parts.insert(
        "sinks".into(),
        json!({"ready": true, "configured": settings.sinks.iter().map(|s| s.name.clone()).collect::<Vec<_>>()}),
    );
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
        // A warning, not an error: the orchestrator routes around a replica that is not ready,
        // and it is normal while a provider's discovery is pending at start-up.
        let failing: Vec<&str> = parts
            .iter()
            .filter(|(_, part)| part["ready"] == false)
            .map(|(name, _)| name.as_str())
            .collect();
        tracing::warn!(failing = ?failing, "not ready");
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if ready { "ready" } else { "not_ready" }, "checks": parts})),
    )
}
