//! `GET /admin`: the operator dashboard (admin key, or open in `dev`): outbox status per sink
//! with a server-rendered chart, recent sign-ins, identify calls received, dead letters.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{Duration, Utc};

use crate::admin_auth;
use crate::config::Settings;
use crate::dev::IdentifyCurl;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{OutboxEvent, Store};
use crate::traits::format_time;

pub fn router() -> Router<AppState> {
    Router::new().route("/admin", get(dashboard))
}

struct SinkRow {
    name: String,
    pending: i64,
    delivered: i64,
    dead: i64,
    oldest: String,
}

struct SignInRow {
    when: String,
    provider: String,
    email: String,
    user_id: String,
    first_seen: String,
}

struct CallRow {
    when: String,
    user_id: String,
    traits: String,
}

struct DeadRow {
    id: String,
    sink: String,
    attempts: i32,
    reason: String,
}

pub struct Bar {
    x: u32,
    w: u32,
    ok: usize,
    fail: usize,
    ok_y: u32,
    ok_h: u32,
    fail_y: u32,
    fail_h: u32,
    label: String,
}

pub struct Chart {
    width: u32,
    height: u32,
    base: u32,
    bars: Vec<Bar>,
    summary: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct Dashboard {
    open: bool,
    /// In `dev`: a command that sends an identify call to the built-in API.
    identify_curl: Option<String>,
    sinks: Vec<SinkRow>,
    chart: Chart,
    sign_ins: Vec<SignInRow>,
    calls: Vec<CallRow>,
    dead: Vec<DeadRow>,
}

async fn dashboard(
    State(settings): State<Arc<Settings>>,
    State(store): State<Store>,
    dev_curl: Option<Extension<IdentifyCurl>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if !admin_auth::authorized(&settings.admin, &headers) {
        // Browsers ask for the key (any user name, the key as password).
        let mut response =
            AppError::Unauthorized("The dashboard needs the admin key.".into()).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"identify-bridge admin\", charset=\"UTF-8\""),
        );
        return Ok(response);
    }
    let now = Utc::now();
    let stats = store.outbox_stats(now).await?;
    let mut sinks: Vec<SinkRow> = settings
        .sinks
        .iter()
        .map(|s| SinkRow {
            name: s.name.clone(),
            pending: 0,
            delivered: 0,
            dead: 0,
            oldest: "—".into(),
        })
        .collect();
    for st in stats {
        let row = match sinks.iter_mut().find(|r| r.name == st.sink) {
            Some(row) => row,
            None => {
                sinks.push(SinkRow {
                    name: st.sink.clone(),
                    pending: 0,
                    delivered: 0,
                    dead: 0,
                    oldest: "—".into(),
                });
                sinks.last_mut().expect("just pushed")
            }
        };
        row.pending = st.pending;
        row.delivered = st.delivered;
        row.dead = st.dead;
        if let Some(age) = st.oldest_pending_age {
            row.oldest = format!("{} s", age.as_secs());
        }
    }
    let events = store
        .outbox_events(now - Duration::hours(24), 50_000)
        .await?;
    let chart = chart(&events, now);
    let sign_ins = store
        .recent_sign_ins(20)
        .await?
        .into_iter()
        .map(|s| SignInRow {
            when: format_time(s.last_seen_at),
            provider: s.provider,
            email: s.email.unwrap_or_default(),
            user_id: s.user_id,
            first_seen: format_time(s.first_seen_at),
        })
        .collect();
    let calls = recent_calls(&store).await?;
    let dead = store
        .list_dead(50)
        .await?
        .into_iter()
        .map(|m| DeadRow {
            id: m.message_id.to_string(),
            sink: m.sink,
            attempts: m.attempts,
            reason: m.last_error.unwrap_or_default(),
        })
        .collect();
    let page = Dashboard {
        open: settings.admin.open,
        identify_curl: dev_curl.map(|Extension(curl)| curl.0),
        sinks,
        chart,
        sign_ins,
        calls,
        dead,
    };
    let html = page.render().map_err(|e| AppError::Internal(e.into()))?;
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Html(html),
    )
        .into_response())
}

/// Identify calls received by the built-in Identify API.
async fn recent_calls(store: &Store) -> Result<Vec<CallRow>, AppError> {
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
            CallRow {
                when: format_time(c.received_at),
                user_id: c.user_id,
                traits: if email.is_empty() {
                    format!("{traits} traits")
                } else {
                    format!("{traits} traits · {email}")
                },
            }
        })
        .collect())
}

/// 24 hourly stacked bars: delivered (green) and dead (red).
fn chart(events: &[OutboxEvent], now: chrono::DateTime<Utc>) -> Chart {
    const HOURS: usize = 24;
    let (width, height, base) = (720u32, 180u32, 160u32);
    let mut ok = [0usize; HOURS];
    let mut fail = [0usize; HOURS];
    for e in events {
        let age = (now - e.at).num_hours();
        if (0..HOURS as i64).contains(&age) {
            let slot = HOURS - 1 - age as usize;
            if e.status == "delivered" {
                ok[slot] += 1;
            } else {
                fail[slot] += 1;
            }
        }
    }
    let max = ok
        .iter()
        .zip(&fail)
        .map(|(a, b)| a + b)
        .max()
        .unwrap_or(0)
        .max(1);
    let slot_w = width / HOURS as u32;
    let scale = |n: usize| ((n as f64 / max as f64) * f64::from(base - 10)).round() as u32;
    let bars = (0..HOURS)
        .map(|i| {
            let ok_h = scale(ok[i]);
            let fail_h = scale(fail[i]);
            Bar {
                x: i as u32 * slot_w + 2,
                w: slot_w - 4,
                ok: ok[i],
                fail: fail[i],
                ok_y: base - ok_h,
                ok_h,
                fail_y: base - ok_h - fail_h,
                fail_h,
                label: format!("{} h ago", HOURS - 1 - i),
            }
        })
        .collect();
    let total_ok: usize = ok.iter().sum();
    let total_fail: usize = fail.iter().sum();
    Chart {
        width,
        height,
        base,
        bars,
        summary: format!("{total_ok} identify calls delivered and {total_fail} dead-lettered in the last 24 hours."),
    }
}
