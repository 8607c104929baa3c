//! Outbox operations for the delivery worker and the operator commands.
//!
//! A message is `pending` until delivered or dead. A worker claims due pending messages by
//! setting a lease (`lease_owner`, `lease_until`); a lease that expires (a crashed replica)
//! makes the message claimable again. `mark_*` only act on messages the caller still leases.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    ms, parse_uuid, postgres, sign_in::insert_outbox_message, sqlite, NewOutboxMessage,
    OutboxMessage, OutboxStatus, Pool, SinkStats, Store, StoreError,
};

impl Store {
    /// Insert messages outside a sign-in (Identify API, replay), all or none.
    pub async fn enqueue(&self, msgs: &[NewOutboxMessage]) -> Result<(), StoreError> {
        on_pool!(self, pool, db => {
            let mut tx = db::begin_write(pool).await?;
            for m in msgs {
                insert_outbox_message!(db, &mut *tx, m)?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Lease up to `limit` due messages to `owner` until `now + lease`, oldest due first.
    /// Each claim counts as an attempt. Two owners never hold the same message at once.
    pub async fn claim_due(
        &self,
        owner: &str,
        limit: i64,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.claim_due_for_sink(owner, None, limit, lease, now)
            .await
    }

    /// [`Store::claim_due`] for one sink's messages only (`None`: any sink), so each sink's
    /// delivery loop goes at its own pace.
    pub async fn claim_due_for_sink(
        &self,
        owner: &str,
        sink: Option<&str>,
        limit: i64,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let now = ms(now);
        let lease = TimeDelta::from_std(lease)
            .map_err(|e| StoreError::Other(format!("lease too long: {e}")))?;
        let until = ms(now + lease);
        let rows: Vec<OutboxRow> = match &self.pool {
            // One statement is atomic on its own; `for update skip locked` keeps owners apart.
            Pool::Postgres(pool) => {
                sqlx::query_as(postgres::CLAIM_DUE)
                    .bind(owner)
                    .bind(until)
                    .bind(now)
                    .bind(limit)
                    .bind(sink)
                    .fetch_all(pool)
                    .await?
            }
            // `begin immediate` takes SQLite's write lock before the claim reads.
            Pool::Sqlite(pool) => {
                let mut tx = sqlite::begin_write(pool).await?;
                let rows = sqlx::query_as(sqlite::CLAIM_DUE)
                    .bind(owner)
                    .bind(until)
                    .bind(now)
                    .bind(limit)
                    .bind(sink)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                rows
            }
        };
        let mut msgs = rows
            .into_iter()
            .map(OutboxRow::into_message)
            .collect::<Result<Vec<_>, _>>()?;
        msgs.sort_by(|a, b| {
            (a.next_attempt_at, a.created_at).cmp(&(b.next_attempt_at, b.created_at))
        });
        Ok(msgs)
    }

    /// The sink accepted the message.
    pub async fn mark_delivered(&self, id: Uuid, owner: &str) -> Result<(), StoreError> {
        let n = on_pool!(self, pool, db => {
            sqlx::query(
                "update outbox_message set status = 'delivered', delivered_at = $3, \
                 lease_owner = null, lease_until = null \
                 where message_id = $1 and lease_owner = $2 and status = 'pending'",
            )
            .bind(db::uuid(id))
            .bind(owner)
            .bind(ms(Utc::now()))
            .execute(pool)
            .await?
            .rows_affected()
        });
        expect_leased(n, id, owner)
    }

    /// Several messages delivered, in one transaction (one commit for a whole batch);
    /// returns how many were still leased by `owner` (the others were taken over).
    pub async fn mark_delivered_many(&self, ids: &[Uuid], owner: &str) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let n = match &self.pool {
            // One statement for the whole batch.
            Pool::Postgres(pool) => sqlx::query(
                "update outbox_message set status = 'delivered', delivered_at = $3, \
                 lease_owner = null, lease_until = null \
                 where message_id = any($1) and lease_owner = $2 and status = 'pending'",
            )
            .bind(ids)
            .bind(owner)
            .bind(ms(Utc::now()))
            .execute(pool)
            .await?
            .rows_affected(),
            Pool::Sqlite(pool) => {
                let mut tx = sqlite::begin_write(pool).await?;
                let mut n = 0;
                for id in ids {
                    n += sqlx::query(
                        "update outbox_message set status = 'delivered', delivered_at = $3, \
                         lease_owner = null, lease_until = null \
                         where message_id = $1 and lease_owner = $2 and status = 'pending'",
                    )
                    .bind(sqlite::uuid(*id))
                    .bind(owner)
                    .bind(ms(Utc::now()))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                tx.commit().await?;
                n
            }
        };
        Ok(n)
    }

    /// Try again at `next_attempt_at`; `error` is kept for operators.
    pub async fn mark_retry(
        &self,
        id: Uuid,
        owner: &str,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let n = on_pool!(self, pool, db => {
            sqlx::query(
                "update outbox_message set next_attempt_at = $3, last_error = $4, \
                 lease_owner = null, lease_until = null \
                 where message_id = $1 and lease_owner = $2 and status = 'pending'",
            )
            .bind(db::uuid(id))
            .bind(owner)
            .bind(ms(next_attempt_at))
            .bind(error)
            .execute(pool)
            .await?
            .rows_affected()
        });
        expect_leased(n, id, owner)
    }

    /// Give up on the message (dead letter) with the reason; `dead_at` starts its retention.
    pub async fn mark_dead(&self, id: Uuid, owner: &str, error: &str) -> Result<(), StoreError> {
        let n = on_pool!(self, pool, db => {
            sqlx::query(
                "update outbox_message set status = 'dead', last_error = $3, dead_at = $4, \
                 lease_owner = null, lease_until = null \
                 where message_id = $1 and lease_owner = $2 and status = 'pending'",
            )
            .bind(db::uuid(id))
            .bind(owner)
            .bind(error)
            .bind(ms(Utc::now()))
            .execute(pool)
            .await?
            .rows_affected()
        });
        expect_leased(n, id, owner)
    }

    /// Give back every lease `owner` holds (graceful shutdown); returns how many.
    pub async fn release_claims(&self, owner: &str) -> Result<u64, StoreError> {
        let n = on_pool!(self, pool, db => {
            sqlx::query(
                "update outbox_message set lease_owner = null, lease_until = null \
                 where lease_owner = $1 and status = 'pending'",
            )
            .bind(owner)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// Counts per sink, sorted by sink name.
    pub async fn outbox_stats(&self, now: DateTime<Utc>) -> Result<Vec<SinkStats>, StoreError> {
        let rows: Vec<StatsRow> = on_pool!(self, pool, db => {
            sqlx::query_as(
                "select sink, \
                 sum(case when status = 'pending' then 1 else 0 end) as pending, \
                 sum(case when status = 'delivered' then 1 else 0 end) as delivered, \
                 sum(case when status = 'dead' then 1 else 0 end) as dead, \
                 min(case when status = 'pending' then created_at end) as oldest_pending \
                 from outbox_message group by sink order by sink",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| SinkStats {
                sink: r.sink,
                pending: r.pending,
                delivered: r.delivered,
                dead: r.dead,
                oldest_pending_created_at: r.oldest_pending,
                oldest_pending_age: r
                    .oldest_pending
                    .map(|t| (now - t).to_std().unwrap_or(Duration::ZERO)),
            })
            .collect())
    }

    /// Make one dead message (or all, with `None`) pending again, due now, attempts reset.
    pub async fn retry_dead(&self, id: Option<Uuid>) -> Result<u64, StoreError> {
        let n = on_pool!(self, pool, db => {
            sqlx::query(
                "update outbox_message set status = 'pending', attempts = 0, next_attempt_at = $1, \
                 dead_at = null, lease_owner = null, lease_until = null \
                 where status = 'dead' and ($2 is null or message_id = $2)",
            )
            .bind(ms(Utc::now()))
            .bind(id.map(db::uuid))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// Dead messages, oldest first, with their last error.
    pub async fn list_dead(&self, limit: i64) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows: Vec<OutboxRow> = on_pool!(self, pool, db => {
            sqlx::query_as(concat!(
                "select ", outbox_columns!(),
                " from outbox_message where status = 'dead' order by created_at, message_id limit $1"
            ))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(OutboxRow::into_message).collect()
    }

    /// One message, in any state.
    pub async fn get_message(&self, id: Uuid) -> Result<Option<OutboxMessage>, StoreError> {
        let row: Option<OutboxRow> = on_pool!(self, pool, db => {
            sqlx::query_as(concat!("select ", outbox_columns!(), " from outbox_message where message_id = $1"))
                .bind(db::uuid(id))
                .fetch_optional(pool)
                .await?
        });
        row.map(OutboxRow::into_message).transpose()
    }

    /// A user's messages in any state, oldest first.
    pub async fn messages_for_user(&self, user_id: &str) -> Result<Vec<OutboxMessage>, StoreError> {
        let rows: Vec<OutboxRow> = on_pool!(self, pool, db => {
            sqlx::query_as(concat!(
                "select ", outbox_columns!(),
                " from outbox_message where user_id = $1 order by created_at, message_id"
            ))
            .bind(user_id)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(OutboxRow::into_message).collect()
    }
}

/// A `mark_*` that changed nothing means the lease was lost (expired and taken by another
/// owner, released, or the message was erased with its user).
fn expect_leased(rows: u64, id: Uuid, owner: &str) -> Result<(), StoreError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "outbox message {id} is not leased by {owner}"
        )))
    }
}

#[derive(sqlx::FromRow)]
struct OutboxRow {
    message_id: String,
    sink: String,
    user_id: String,
    payload: Json<serde_json::Value>,
    attempts: i32,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
    status: String,
    last_error: Option<String>,
}

impl OutboxRow {
    fn into_message(self) -> Result<OutboxMessage, StoreError> {
        Ok(OutboxMessage {
            message_id: parse_uuid(&self.message_id)?,
            sink: self.sink,
            user_id: self.user_id,
            payload: self.payload.0,
            attempts: self.attempts,
            created_at: self.created_at,
            next_attempt_at: self.next_attempt_at,
            status: OutboxStatus::parse(&self.status),
            last_error: self.last_error,
        })
    }
}

#[derive(sqlx::FromRow)]
struct StatsRow {
    sink: String,
    pending: i64,
    delivered: i64,
    dead: i64,
    oldest_pending: Option<DateTime<Utc>>,
}
