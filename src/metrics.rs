//! Prometheus metrics through the `metrics` facade; rendered at `GET /metrics`.
//! Label values are bounded: provider and sink names come from the configuration, outcomes
//! and reasons from fixed lists.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process-wide recorder once (later calls reuse it) and return its handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ])
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may exist in tests that embed the app; then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Rows the retention purge deleted (`kind`: `identify_call`, `outbox_delivered`, …).
pub fn retention_deleted(kind: &'static str, rows: u64) {
    metrics::counter!("identify_bridge_retention_deleted_total", "kind" => kind).increment(rows);
}

/// A finished or failed sign-in.
pub fn sign_in(provider: &str, outcome: &'static str, reason: &'static str) {
    metrics::counter!("identify_bridge_sign_ins_total", "provider" => provider.to_string(), "outcome" => outcome, "reason" => reason)
        .increment(1);
    let failed = (outcome != "success").then_some(reason);
    record_activity(chrono::Utc::now(), failed);
}

/// Sign-ins in one hour: successes, and failures by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HourOfSignIns {
    /// Hours since the Unix epoch.
    pub hour: i64,
    pub succeeded: u64,
    pub failed: BTreeMap<&'static str, u64>,
}

/// The last 24 hours of sign-ins in this process, by hour, for the dashboard: Prometheus keeps
/// totals since start, which a page cannot turn into a day. Process-wide like the recorder.
static ACTIVITY: Mutex<Activity> = Mutex::new(Activity {
    hours: VecDeque::new(),
});
const ACTIVITY_HOURS: i64 = 24;

/// Hourly sign-in counts, at most [`ACTIVITY_HOURS`] of them, oldest first.
#[derive(Debug, Default)]
struct Activity {
    hours: VecDeque<HourOfSignIns>,
}

impl Activity {
    fn record(&mut self, at: chrono::DateTime<chrono::Utc>, failed: Option<&'static str>) {
        let hour = at.timestamp().div_euclid(3600);
        if self.hours.back().is_none_or(|last| last.hour < hour) {
            self.hours.push_back(HourOfSignIns {
                hour,
                ..Default::default()
            });
        }
        while self
            .hours
            .front()
            .is_some_and(|first| first.hour <= hour - ACTIVITY_HOURS)
        {
            self.hours.pop_front();
        }
        // A clock step backwards lands in the newest hour rather than out of order.
        let bucket = self.hours.back_mut().expect("an hour was just ensured");
        match failed {
            None => bucket.succeeded += 1,
            Some(reason) => *bucket.failed.entry(reason).or_default() += 1,
        }
    }

    fn day_until(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<HourOfSignIns> {
        let current = now.timestamp().div_euclid(3600);
        (current - ACTIVITY_HOURS + 1..=current)
            .map(|hour| {
                self.hours
                    .iter()
                    .find(|h| h.hour == hour)
                    .cloned()
                    .unwrap_or(HourOfSignIns {
                        hour,
                        ..Default::default()
                    })
            })
            .collect()
    }
}

fn record_activity(at: chrono::DateTime<chrono::Utc>, failed: Option<&'static str>) {
    ACTIVITY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .record(at, failed);
}

/// The 24 hours ending with `now`'s, oldest first; hours without sign-ins are empty.
pub fn sign_in_activity(now: chrono::DateTime<chrono::Utc>) -> Vec<HourOfSignIns> {
    ACTIVITY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .day_until(now)
}

pub fn first_sign_in(provider: &str) {
    metrics::counter!("identify_bridge_first_sign_ins_total", "provider" => provider.to_string())
        .increment(1);
}

pub fn callback_latency(provider: &str, seconds: f64) {
    metrics::histogram!("identify_bridge_callback_seconds", "provider" => provider.to_string())
        .record(seconds);
}

/// A session checked back with its provider: `outcome` is `valid`, `ended` (refused grant,
/// gone account) or `unreachable` (the session went on).
pub fn revalidation(provider: &str, outcome: &'static str) {
    metrics::counter!("identify_bridge_session_revalidations_total", "provider" => provider.to_string(), "outcome" => outcome)
        .increment(1);
}

/// A back-channel logout request: `outcome` is `ended`, `refused` or `unavailable`.
pub fn backchannel_logout(provider: &str, outcome: &'static str) {
    metrics::counter!("identify_bridge_backchannel_logouts_total", "provider" => provider.to_string(), "outcome" => outcome)
        .increment(1);
}

/// A failed Okta Users API call (the sign-in went on without it).
pub fn users_api_failure(provider: &str) {
    metrics::counter!("identify_bridge_users_api_failures_total", "provider" => provider.to_string())
        .increment(1);
}

pub fn graph_failure(provider: &str) {
    metrics::counter!("identify_bridge_graph_failures_total", "provider" => provider.to_string())
        .increment(1);
}

/// Outbox depth and oldest pending age per sink, read from the store (at scrape time).
pub async fn record_outbox(store: &crate::store::Store) {
    match store.outbox_stats(chrono::Utc::now()).await {
        Ok(stats) => {
            for s in stats {
                outbox_depth(&s.sink, s.pending, s.oldest_pending_age.unwrap_or_default());
                metrics::gauge!("identify_bridge_outbox_dead", "sink" => s.sink.clone())
                    .set(s.dead as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading outbox stats for metrics failed"),
    }
}

/// A call to a provider endpoint and how long it took.
pub fn provider_call(provider: &str, stage: &'static str, seconds: f64) {
    metrics::histogram!("identify_bridge_provider_call_seconds", "provider" => provider.to_string(), "stage" => stage)
        .record(seconds);
}

/// A request refused by a rate limit.
pub fn rate_limited(scope: &'static str) {
    metrics::counter!("identify_bridge_rate_limited_total", "scope" => scope).increment(1);
}

/// `n` delivery attempts with this outcome (`delivered`, `retry`, `dead`) for a sink.
pub fn deliveries(sink: &str, outcome: &'static str, n: u64) {
    metrics::counter!("identify_bridge_deliveries_total", "sink" => sink.to_string(), "outcome" => outcome)
        .increment(n);
}

/// How many messages wait for a sink, and how long the oldest has waited.
pub fn outbox_depth(sink: &str, pending: i64, oldest: std::time::Duration) {
    metrics::gauge!("identify_bridge_outbox_pending", "sink" => sink.to_string())
        .set(pending as f64);
    metrics::gauge!("identify_bridge_outbox_oldest_pending_seconds", "sink" => sink.to_string())
        .set(oldest.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn sign_ins_are_counted_by_hour_and_reason_and_older_hours_drop_off() {
        let mut activity = Activity::default();
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 0, 10, 0).unwrap();
        activity.record(start, None);
        activity.record(start, Some("state_invalid"));
        activity.record(start + chrono::Duration::minutes(30), Some("state_invalid"));
        activity.record(start + chrono::Duration::hours(2), None);
        let day = activity.day_until(start + chrono::Duration::hours(2));
        assert_eq!(day.len(), 24);
        assert_eq!(day[21].succeeded, 1);
        assert_eq!(day[21].failed.get("state_invalid"), Some(&2));
        assert_eq!(
            day[22],
            HourOfSignIns {
                hour: day[22].hour,
                ..Default::default()
            }
        );
        assert_eq!(day[23].succeeded, 1);

        // A day later the first hour is gone, from the page and from memory.
        activity.record(start + chrono::Duration::hours(24), None);
        let day = activity.day_until(start + chrono::Duration::hours(24));
        assert!(day.iter().all(|h| h.failed.is_empty()), "{day:?}");
        assert_eq!(activity.hours.len(), 2);
    }
}
