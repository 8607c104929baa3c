//! The `identify-bridge outbox …` commands: see where every message is, retry dead letters,
//! and replay an identify call for every existing profile.

use std::io::IsTerminal;
use std::time::Duration;

use chrono::Utc;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::message::{filter_traits, to_row};
use super::IdentifyMessage;
use crate::config::{Settings, SinkSettings};
use crate::store::{ProfileSummary, Store, StoreError};
use crate::traits::format_time;

/// `outbox status`: one line per sink.
pub async fn status_table(store: &Store) -> Result<String, StoreError> {
    let mut out = format!(
        "{:<24} {:>10} {:>10} {:>8} {:>14}\n",
        "SINK", "PENDING", "DELIVERED", "DEAD", "OLDEST PENDING"
    );
    for s in store.outbox_stats(Utc::now()).await? {
        let age = s
            .oldest_pending_age
            .map(human_age)
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<24} {:>10} {:>10} {:>8} {:>14}\n",
            s.sink, s.pending, s.delivered, s.dead, age
        ));
    }
    Ok(out)
}

/// `outbox dead`: the dead letters, oldest first, with their reasons.
pub async fn dead_table(store: &Store, limit: i64) -> Result<String, StoreError> {
    let mut out = format!(
        "{:<36}  {:<16} {:>8}  REASON\n",
        "MESSAGE ID", "SINK", "ATTEMPTS"
    );
    for m in store.list_dead(limit).await? {
        let reason: String = m
            .last_error
            .unwrap_or_default()
            .replace(['\n', '\r'], " ")
            .chars()
            .take(200)
            .collect();
        out.push_str(&format!(
            "{:<36}  {:<16} {:>8}  {}\n",
            m.message_id, m.sink, m.attempts, reason
        ));
    }
    Ok(out)
}

fn human_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The identify message that replays a stored profile for one sink.
pub fn replay_message(sink: &SinkSettings, profile: &ProfileSummary) -> IdentifyMessage {
    let mut traits: Map<String, Value> = profile
        .traits
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .collect();
    if let Some(email) = &profile.email {
        traits.insert("email".into(), json!(email));
    }
    if let Some(name) = traits.get("enrichment_full_name").cloned() {
        traits.insert("name".into(), name);
    }
    let mut context = Map::new();
    context.insert("replay".into(), json!(true));
    context.insert(
        "library".into(),
        json!({"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")}),
    );
    IdentifyMessage {
        message_id: Uuid::new_v4(),
        user_id: profile.user_id.clone(),
        traits: filter_traits(sink, &traits),
        created_at: format_time(profile.created_at),
        event_at: format_time(Utc::now()),
        anonymous_id: None,
        context,
    }
}

/// `outbox replay --all-users`: enqueue one identify message per profile for each selected
/// sink, at most `rate` profiles a second; returns how many messages were enqueued.
pub async fn replay_all(
    store: &Store,
    settings: &Settings,
    sink: Option<&str>,
    rate: f64,
) -> anyhow::Result<u64> {
    let sinks: Vec<&SinkSettings> = settings
        .sinks
        .iter()
        .filter(|s| sink.is_none_or(|n| n == s.name))
        .collect();
    if sinks.is_empty() {
        anyhow::bail!(match sink {
            Some(n) => format!("no sink named {n:?} is configured"),
            None => "no sinks are configured".into(),
        });
    }
    let total = store.profile_count().await?.max(0) as u64;
    let bar = if std::io::stdout().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} profiles ({per_sec}, {eta} left)",
            )
            .expect("a valid template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    // Pages sized to about a second of work, so the throttle stays smooth.
    let page = (rate.ceil() as i64).clamp(1, 500);
    let mut after: Option<String> = None;
    let mut enqueued = 0u64;
    let started = tokio::time::Instant::now();
    let mut done = 0u64;
    loop {
        let profiles = store.list_profiles(after.as_deref(), page).await?;
        let Some(last) = profiles.last() else { break };
        after = Some(last.user_id.clone());
        let now = Utc::now();
        let rows: Vec<_> = profiles
            .iter()
            .flat_map(|p| {
                sinks
                    .iter()
                    .map(move |s| to_row(s, replay_message(s, p), now))
            })
            .collect();
        store.enqueue(&rows).await?;
        enqueued += rows.len() as u64;
        done += profiles.len() as u64;
        bar.set_position(done);
        if rate > 0.0 {
            let due = started + Duration::from_secs_f64(done as f64 / rate);
            tokio::time::sleep_until(due).await;
        }
    }
    bar.finish_and_clear();
    Ok(enqueued)
}
