//! Retention: deleting rows past their time, a small batch per statement, oldest first by an
//! indexed time (`migrations/*/0007_retention.sql`), so no statement holds SQLite's write lock
//! for long. Pending outbox messages are never touched: only delivered and dead ones go.

use chrono::{DateTime, Utc};

use super::{ms, Backend, Store, StoreError};

/// A kind of row that only grows, and the time after which it may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purge {
    /// The Identify API's call log (and so its idempotency keys), by `received_at`.
    IdentifyCalls,
    /// Delivered outbox messages, by `delivered_at`.
    DeliveredOutbox,
    /// Dead letters, by `dead_at`.
    DeadLetters,
    /// Spent sign-in states, by `expires_at`.
    LoginStates,
    /// Spent back-channel logout tokens, by `expires_at`.
    LogoutTokens,
    /// Session links older than a session can live, by `created_at`.
    SessionLinks,
    /// Expired sessions in the database's session table, by `expiry_date`.
    ExpiredSessions,
}

impl Purge {
    /// Every kind, in the order a purge runs them (sessions before their links).
    pub const ALL: [Purge; 7] = [
        Purge::IdentifyCalls,
        Purge::DeliveredOutbox,
        Purge::DeadLetters,
        Purge::LoginStates,
        Purge::LogoutTokens,
        Purge::ExpiredSessions,
        Purge::SessionLinks,
    ];

    /// The name in logs and in the metric's `kind` label.
    pub fn name(self) -> &'static str {
        match self {
            Purge::IdentifyCalls => "identify_call",
            Purge::DeliveredOutbox => "outbox_delivered",
            Purge::DeadLetters => "outbox_dead",
            Purge::LoginStates => "login_state",
            Purge::LogoutTokens => "logout_token",
            Purge::SessionLinks => "user_session",
            Purge::ExpiredSessions => "session",
        }
    }

    /// Where the kinds in the store's own tables live; `None` for the session table, whose
    /// name and time encoding are the backend's.
    fn shape(self) -> Option<Shape> {
        let shape = |table, key, time, condition, index| Shape {
            table,
            key,
            time,
            condition,
            index,
        };
        Some(match self {
            Purge::IdentifyCalls => shape(
                "identify_call",
                "call_id",
                "received_at",
                "",
                "identify_call_received_at_idx",
            ),
            Purge::DeliveredOutbox => shape(
                "outbox_message",
                "message_id",
                "delivered_at",
                "status = 'delivered' and ",
                "outbox_message_delivered_at_idx",
            ),
            Purge::DeadLetters => shape(
                "outbox_message",
                "message_id",
                "dead_at",
                "status = 'dead' and ",
                "outbox_message_dead_at_idx",
            ),
            Purge::LoginStates => shape(
                "login_state",
                "state_hash",
                "expires_at",
                "",
                "login_state_expires_at_idx",
            ),
            Purge::LogoutTokens => shape(
                "logout_token",
                "token_hash",
                "expires_at",
                "",
                "logout_token_expires_at_idx",
            ),
            Purge::SessionLinks => shape(
                "user_session",
                "session_id",
                "created_at",
                "",
                "user_session_created_at_idx",
            ),
            Purge::ExpiredSessions => return None,
        })
    }
}

/// A purged kind's table, key, time column, extra condition (`… and `) and time index.
struct Shape {
    table: &'static str,
    key: &'static str,
    time: &'static str,
    condition: &'static str,
    index: &'static str,
}

/// `delete` the oldest `$2` rows before `$1`.
fn purge_sql(backend: Backend, shape: &Shape) -> String {
    let Shape {
        table,
        key,
        time,
        condition,
        index,
    } = shape;
    let oldest = format!("where {condition}{time} < $1 order by {time} limit $2");
    match backend {
        // `indexed by`: without statistics SQLite would rather read the outbox's claim index
        // and sort every delivered message. By rowid, so the outer delete cannot pick another
        // plan. One statement under SQLite's one write lock: nothing changes meanwhile.
        Backend::Sqlite => format!(
            "delete from {table} where rowid in \
             (select rowid from {table} indexed by {index} {oldest})"
        ),
        // `= any(array(…))`: the batch is read once, then deleted by key (with `in (…)` the
        // planner may scan the whole table per batch). The condition again outside: a row
        // changed meanwhile (a dead letter retried, so pending again) is kept.
        Backend::Postgres => format!(
            "delete from {table} where {key} = any(array(select {key} from {table} {oldest})) \
             and {condition}{time} < $1"
        ),
    }
}

impl Store {
    /// Delete at most `batch` rows of `kind` whose time is before `before`, oldest first, in
    /// one statement (its own transaction); returns how many went. Fewer than `batch` means
    /// none are left.
    pub async fn purge_batch(
        &self,
        kind: Purge,
        before: DateTime<Utc>,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let before = ms(before);
        let batch = i64::from(batch);
        let n = match kind.shape() {
            Some(shape) => {
                let sql = purge_sql(self.backend(), &shape);
                on_pool!(self, pool, _db => {
                    sqlx::query(&sql).bind(before).bind(batch).execute(pool).await?.rows_affected()
                })
            }
            // tower-sessions' table has no index on its expiry: a batch is the first rows found.
            None => on_pool!(self, pool, db => {
                sqlx::query(db::PURGE_EXPIRED_SESSIONS)
                    .bind(before)
                    .bind(batch)
                    .execute(pool)
                    .await?
                    .rows_affected()
            }),
        };
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::{purge_sql, Backend, Purge};

    #[test]
    fn postgres_checks_the_condition_again_and_sqlite_names_the_index() {
        let dead = Purge::DeadLetters.shape().unwrap();
        let sql = purge_sql(Backend::Postgres, &dead);
        assert_eq!(
            sql.matches("status = 'dead' and dead_at < $1").count(),
            2,
            "{sql}"
        );
        let sql = purge_sql(Backend::Sqlite, &dead);
        assert!(
            sql.contains("indexed by outbox_message_dead_at_idx where"),
            "{sql}"
        );
        assert!(sql.ends_with("order by dead_at limit $2)"), "{sql}");
    }
}
