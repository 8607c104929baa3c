//! `GET /admin`: the operator dashboard (admin key, or open in `dev`): sign-ins and failures by
//! reason over 24 hours, the outbox per sink with its deliveries, dead letters and delivery
//! latency, recent sign-ins and identify calls received; `GET /admin/users/{user_id}`: one
//! user's profile, identities, traits with provenance, identify calls and deliveries.
//!
//! - `chart.rs`: the hourly bar charts.
//! - `user.rs`: the user page.
//! - `view.rs`: times for people, counted nouns, durations.

mod chart;
mod user;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{DateTime, Duration, Utc};

use crate::admin_auth;
use crate::config::Settings;
use crate::dev::IdentifyCurl;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{OutboxEvent, Store};
use chart::Chart;
use view::{counted, duration_ms, Ago};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard))
        .route("/admin/users/{user_id}", get(user::user_page))
}

/// `None` with the admin key; without it, the 401 that makes a browser ask for the key (any
/// user name, the key as password).
fn key_prompt(settings: &Settings, headers: &HeaderMap) -> Option<Response> {
    if admin_auth::authorized(&settings.admin, headers) {
        return None;
    }
    let mut response =
        AppError::Unauthorized("The dashboard needs the admin key.".into()).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"identify-bridge admin\", charset=\"UTF-8\""),
    );
    Some(response)
}

/// A page that is never cached (it shows live data).
fn page(html: String) -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Html(html),
    )
        .into_response()
}

struct SinkRow {
    name: String,
    pending: i64,
    delivered: i64,
    dead: i64,
    oldest: String,
}

/// Delivery latency of one sink over 24 hours: enqueue (the sign-in) to the sink's 2xx.
struct LatencyRow {
    sink: String,
    delivered: String,
    p50: String,
    p95: String,
    max: String,
}

struct ReasonRow {
    reason: &'static str,
    count: u64,
}

struct SignInRow {
    when: Ago,
    provider: String,
    email: String,
    user_id: String,
    first_seen: Ago,
}

struct CallRow {
    when: Ago,
    user_id: String,
    traits: String,
}

struct DeadRow {
    id: String,
    sink: String,
    user_id: String,
    attempts: i32,
    reason: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct Dashboard {
    open: bool,
    /// In `dev`: a command that sends an identify call to the built-in API.
    identify_curl: Option<String>,
    /// Seconds between automatic reloads (`?refresh=30`); none by default.
    refresh: Option<u32>,
    generated: Ago,
    sign_in_chart: Chart,
    sign_ins_ok: u64,
    sign_ins_failed: u64,
    reasons: Vec<ReasonRow>,
    sinks: Vec<SinkRow>,
    delivery_chart: Chart,
    latency: Vec<LatencyRow>,
    sign_ins: Vec<SignInRow>,
    calls: Vec<CallRow>,
    dead: Vec<DeadRow>,
}

#[derive(serde::Deserialize)]
struct DashboardQuery {
    refresh: Option<u32>,
}

async fn dashboard(
    State(settings): State<Arc<Settings>>,
    State(store): State<Store>,
    dev_curl: Option<Extension<IdentifyCurl>>,
    Query(query): Query<DashboardQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if let Some(prompt) = key_prompt(&settings, &headers) {
        return Ok(prompt);
    }
    let now = Utc::now();
    let sinks = sink_rows(&settings, &store, now).await?;
    let events = store
        .outbox_events(now - Duration::hours(24), 50_000)
        .await?;
    let (sign_in_chart, sign_ins_ok, sign_ins_failed, reasons) = sign_in_activity(now);
    let sign_ins = store
        .recent_sign_ins(20)
        .await?
        .into_iter()
        .map(|s| SignInRow {
            when: Ago::new(s.last_seen_at, now),
            provider: s.provider,
            email: s.email.unwrap_or_default(),
            user_id: s.user_id,
            first_seen: Ago::new(s.first_seen_at, now),
        })
        .collect();
    let calls = recent_calls(&store, now).await?;
    let dead = store
        .list_dead(50)
        .await?
        .into_iter()
        .map(|m| DeadRow {
            id: m.message_id.to_string(),
            sink: m.sink,
            user_id: m.user_id,
            attempts: m.attempts,
            reason: m.last_error.unwrap_or_default(),
        })
        .collect();
    let page_data = Dashboard {
        open: settings.admin.open,
        identify_curl: dev_curl.map(|Extension(curl)| curl.0),
        // At least 5 s: a typo must not turn the page into a reload loop.
        refresh: query.refresh.map(|s| s.clamp(5, 3600)),
        generated: Ago::new(now, now),
        sign_in_chart,
        sign_ins_ok,
        sign_ins_failed,
        reasons,
        sinks,
        delivery_chart: delivery_chart(&events, now),
        latency: latency_rows(&events),
        sign_ins,
        calls,
        dead,
    };
    let html = page_data
        .render()
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(page(html))
}

/// Every configured sink (and any with messages but no longer configured) with its counts.
async fn sink_rows(
    settings: &Settings,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<SinkRow>, AppError> {
    let empty = |name: &str| SinkRow {
        name: name.to_string(),
        pending: 0,
        delivered: 0,
        dead: 0,
        oldest: "—".into(),
    };
    let mut sinks: Vec<SinkRow> = settings.sinks.iter().map(|s| empty(&s.name)).collect();
    for stats in store.outbox_stats(now).await? {
        let row = match sinks.iter().position(|r| r.name == stats.sink) {
            Some(i) => &mut sinks[i],
            None => {
                sinks.push(empty(&stats.sink));
                sinks.last_mut().expect("just pushed")
            }
        };
        row.pending = stats.pending;
        row.delivered = stats.delivered;
        row.dead = stats.dead;
        if let Some(age) = stats.oldest_pending_age {
            row.oldest = duration_ms(age.as_millis() as i64);
        }
    }
    Ok(sinks)
}

/// This process's sign-ins over 24 hours: the chart, totals, and failures by reason (most
/// frequent first).
fn sign_in_activity(now: DateTime<Utc>) -> (Chart, u64, u64, Vec<ReasonRow>) {
    let hours = crate::metrics::sign_in_activity(now);
    let mut reasons: BTreeMap<&'static str, u64> = BTreeMap::new();
    let bars: Vec<(u64, u64)> = hours
        .iter()
        .map(|h| {
            for (reason, n) in &h.failed {
                *reasons.entry(reason).or_default() += n;
            }
            (h.succeeded, h.failed.values().sum())
        })
        .collect();
    let ok: u64 = bars.iter().map(|(ok, _)| ok).sum();
    let failed: u64 = bars.iter().map(|(_, fail)| fail).sum();
    let mut reasons: Vec<ReasonRow> = reasons
        .into_iter()
        .map(|(reason, count)| ReasonRow { reason, count })
        .collect();
    reasons.sort_by(|a, b| b.count.cmp(&a.count).then(a.reason.cmp(b.reason)));
    let summary = format!(
        "{} and {} in the last 24 hours.",
        counted(ok as i64, "sign-in succeeded", "sign-ins succeeded"),
        counted(failed as i64, "failed", "failed")
    );
    (Chart::hourly(&bars, summary), ok, failed, reasons)
}

/// Deliveries (green) and dead letters (red) per hour.
fn delivery_chart(events: &[OutboxEvent], now: DateTime<Utc>) -> Chart {
    let mut hours = vec![(0u64, 0u64); 24];
    for event in events {
        let age = (now - event.at).num_hours();
        if (0..24).contains(&age) {
            let slot = &mut hours[23 - age as usize];
            if event.status == "delivered" {
                slot.0 += 1;
            } else {
                slot.1 += 1;
            }
        }
    }
    let delivered: u64 = hours.iter().map(|h| h.0).sum();
    let dead: u64 = hours.iter().map(|h| h.1).sum();
    let summary = format!(
        "{} delivered and {} dead-lettered in the last 24 hours.",
        counted(delivered as i64, "identify call", "identify calls"),
        dead
    );
    Chart::hourly(&hours, summary)
}

/// Median, 95th percentile and slowest delivery per sink, from enqueue to the sink's answer.
fn latency_rows(events: &[OutboxEvent]) -> Vec<LatencyRow> {
    let mut by_sink: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.status == "delivered") {
        by_sink
            .entry(&event.sink)
            .or_default()
            .push((event.at - event.created_at).num_milliseconds());
    }
    by_sink
        .into_iter()
        .map(|(sink, mut ms)| {
            ms.sort_unstable();
            let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
            LatencyRow {
                sink: sink.to_string(),
                delivered: ms.len().to_string(),
                p50: duration_ms(at(0.5)),
                p95: duration_ms(at(0.95)),
                max: duration_ms(*ms.last().expect("a sink here has a delivery")),
            }
        })
        .collect()
}

/// Identify calls received by the built-in Identify API.
async fn recent_calls(store: &Store, now: DateTime<Utc>) -> Result<Vec<CallRow>, AppError> {
    Ok(store
        .recent_identify_calls(20)
        .await?
        .into_iter()
        .map(|c| {
            let traits = c.traits.0.as_object().map(|t| t.len()).unwrap_or(0);
            let email = c
                .traits
                .0
                .get("email")
                .and_then(|e| e.as_str())
                .unwrap_or("");
            let traits = counted(traits as i64, "trait", "traits");
            CallRow {
                when: Ago::new(c.received_at, now),
                user_id: c.user_id,
                traits: if email.is_empty() {
                    traits
                } else {
                    format!("{traits} · {email}")
                },
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(sink: &str, ms: i64) -> OutboxEvent {
        let created_at = Utc::now() - Duration::minutes(1);
        OutboxEvent {
            sink: sink.into(),
            status: "delivered".into(),
            at: created_at + Duration::milliseconds(ms),
            created_at,
        }
    }

    #[test]
    fn latency_is_summarised_per_sink() {
        let mut events: Vec<OutboxEvent> = (1..=100).map(|i| delivered("main", i * 10)).collect();
        events.push(delivered("other", 2500));
        let rows = latency_rows(&events);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].sink.as_str(), rows[0].delivered.as_str()),
            ("main", "100")
        );
        assert_eq!(rows[0].p50, "510 ms");
        assert_eq!(rows[0].p95, "950 ms");
        assert_eq!(rows[0].max, "1.0 s");
        assert_eq!(rows[1].p50, "2.5 s");
    }
}
