//! Read-only queries for the operator dashboard.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Store, StoreError};

/// One identity's latest sign-in.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RecentSignIn {
    pub user_id: String,
    pub provider: String,
    pub email: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// A delivered or dead message's sink and time (when it was delivered, or died).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxEvent {
    pub sink: String,
    pub status: String,
    pub at: DateTime<Utc>,
    /// When the message was enqueued (the sign-in): `at - created_at` is a delivery's latency.
    pub created_at: DateTime<Utc>,
}

impl Store {
    /// The most recent sign-ins, newest first.
    pub async fn recent_sign_ins(&self, limit: i64) -> Result<Vec<RecentSignIn>, StoreError> {
        let rows = on_pool!(self, pool, db => {
            sqlx::query_as(
                "select user_id, provider, email, first_seen_at, last_seen_at from identity \
                 order by last_seen_at desc, identity_id limit $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Deliveries and dead letters since `since` (at most `limit`), for the activity chart.
    pub async fn outbox_events(
        &self,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let rows = on_pool!(self, pool, db => {
            sqlx::query_as(
                "select sink, status, coalesce(delivered_at, dead_at, created_at) as at, created_at \
                 from outbox_message \
                 where status in ('delivered', 'dead') \
                 and coalesce(delivered_at, dead_at, created_at) >= $1 \
                 order by at desc limit $2",
            )
            .bind(super::ms(since))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

/// One identify call received by the Identify API.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ReceivedCall {
    pub user_id: String,
    pub traits: sqlx::types::Json<serde_json::Value>,
    pub received_at: DateTime<Utc>,
}

impl Store {
    /// The most recent identify calls received, newest first.
    pub async fn recent_identify_calls(&self, limit: i64) -> Result<Vec<ReceivedCall>, StoreError> {
        let rows = on_pool!(self, pool, db => {
            sqlx::query_as(
                "select user_id, traits, received_at from identify_call \
                 order by received_at desc, call_id limit $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}

impl Store {
    /// The identify calls received for one user, newest first.
    pub async fn identify_calls_for_user(
        &self,
        user_id: &str,
        limit: i64,
    ) -> Result<Vec<ReceivedCall>, StoreError> {
        let rows = on_pool!(self, pool, db => {
            sqlx::query_as(
                "select user_id, traits, received_at from identify_call where user_id = $1 \
                 order by received_at desc, call_id limit $2",
            )
            .bind(user_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }
}
