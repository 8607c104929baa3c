//! The identify seam on a SQLite file: a connection of the writer's own (not from the pool),
//! driven synchronously on a blocking thread with cached single-row statements. A group
//! commit is then one `BEGIN IMMEDIATE … COMMIT` on one thread, with no statement to parse
//! and no hand-off between the async task and the pool's connection thread per statement.
//! The seam's futures are ready at once; `block_on` drives the shared algorithm.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::algorithm::{record_batch, IdentifyDb, IdentifyTx};
use super::merge::Profile;
use super::{sql, FirstCall, IdentifyCall, IdentifyOutcome};
use crate::store::{ms, sqlite::apply_pragmas, StoreError};

/// The identify writer's connection; cheap to clone.
#[derive(Clone)]
pub(in crate::store) struct IdentifyWriter {
    conn: Arc<Mutex<Connection>>,
}

impl IdentifyWriter {
    /// Open the database file (already created and migrated through the pool) with the
    /// pool's pragmas (`sqlite::PRAGMAS`).
    pub(in crate::store) fn open(path: &Path) -> Result<IdentifyWriter, StoreError> {
        let open_error = |e: rusqlite::Error| StoreError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let conn = Connection::open(path).map_err(open_error)?;
        apply_pragmas(&conn).map_err(open_error)?;
        Ok(IdentifyWriter {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Record `calls` in one transaction, on a blocking thread.
    pub(in crate::store) async fn record(
        &self,
        calls: Arc<Vec<IdentifyCall>>,
    ) -> Result<Vec<IdentifyOutcome>, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic mid-batch rolled its transaction back (dropped): the connection is fine.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            futures::executor::block_on(record_batch(&mut *conn, &calls))
        })
        .await
        .map_err(|e| StoreError::Other(format!("the identify writer failed: {e}")))?
    }
}

impl IdentifyDb for Connection {
    type Error = StoreError;
    type Tx<'t> = Transaction<'t>;

    /// `BEGIN IMMEDIATE`: the write lock from the start, so no other transaction can create a
    /// "new" profile meanwhile; waiting for it is bounded by `busy_timeout`.
    async fn begin(&mut self) -> Result<Transaction<'_>, StoreError> {
        Ok(self.transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    /// Writers are serialized by the write lock: there is no race to retry.
    fn is_retryable(_error: &StoreError) -> bool {
        false
    }
}

impl IdentifyTx for Transaction<'_> {
    type Error = StoreError;

    async fn log_calls(
        &mut self,
        calls: &[IdentifyCall],
        ids: &[Uuid],
    ) -> Result<Vec<bool>, StoreError> {
        let mut insert = self.prepare_cached(sql::INSERT_CALL_ROW)?;
        let mut id_text = Uuid::encode_buffer();
        let mut logged = Vec::with_capacity(calls.len());
        for (c, id) in calls.iter().zip(ids) {
            let inserted = insert.execute(params![
                &*id.hyphenated().encode_lower(&mut id_text),
                c.caller,
                c.idempotency_key,
                c.user_id,
                c.traits_json,
                c.context_json,
                c.account_created_at.map(time_text),
                c.response,
                c.request_digest,
                time_text(c.received_at),
            ])?;
            logged.push(inserted == 1);
        }
        Ok(logged)
    }

    async fn first_call(&mut self, caller: &str, key: &str) -> Result<FirstCall, StoreError> {
        let mut first = self.prepare_cached(sql::FIRST_CALL)?;
        Ok(first.query_row(params![caller, key], |row| {
            Ok(FirstCall {
                response: row.get(0)?,
                request_digest: row.get(1)?,
            })
        })?)
    }

    async fn load_profiles(&mut self, users: &[&str]) -> Result<Vec<Option<Profile>>, StoreError> {
        let mut read = self.prepare_cached(sql::LOAD_PROFILE)?;
        users
            .iter()
            .map(|user| -> Result<Option<Profile>, StoreError> {
                read.query_row([user], stored_profile)
                    .optional()?
                    .transpose()
            })
            .collect()
    }

    async fn insert_profiles(&mut self, profiles: &[(&str, &Profile)]) -> Result<u64, StoreError> {
        let mut insert = self.prepare_cached(sql::INSERT_NEW_PROFILE_ROW)?;
        let mut inserted = 0;
        for (user_id, p) in profiles {
            inserted += insert.execute(profile_row(user_id, p)?)? as u64;
        }
        Ok(inserted)
    }

    async fn update_profiles(&mut self, profiles: &[(&str, &Profile)]) -> Result<(), StoreError> {
        let mut write = self.prepare_cached(sql::WRITE_MERGED_PROFILE_ROW)?;
        for (user_id, p) in profiles {
            write.execute(profile_row(user_id, p)?)?;
        }
        Ok(())
    }

    async fn commit(self) -> Result<(), StoreError> {
        Ok(Transaction::commit(self)?)
    }
}

/// The parameters of a profile row, in `sql::INSERT_PROFILE`'s order.
fn profile_row<'a>(
    user_id: &'a str,
    p: &'a Profile,
) -> Result<(&'a str, String, &'a str, String, String, String), StoreError> {
    Ok((
        user_id,
        time_text(p.created_at),
        &p.created_at_source,
        time_text(p.updated_at),
        json_text(&p.traits)?,
        json_text(&p.provenance)?,
    ))
}

/// A stored profile row (`sql::LOAD_PROFILE`), as the batch starts from it.
fn stored_profile(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Profile, StoreError>> {
    let traits: String = row.get(0)?;
    let provenance: String = row.get(1)?;
    let created_at: String = row.get(2)?;
    let created_at_source: String = row.get(3)?;
    Ok((|| {
        Ok(Profile::stored(
            parse_object(&traits)?,
            parse_object(&provenance)?,
            parse_time(&created_at)?,
            created_at_source,
        ))
    })())
}

fn parse_object(text: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Other(format!("bad JSON object in profile: {e}")))
}

fn json_text(map: &Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(map).map_err(|e| StoreError::Other(e.to_string()))
}

/// A timestamp as the pool's driver (sqlx) writes it, so both connections' rows read and sort
/// alike.
fn time_text(t: DateTime<Utc>) -> String {
    ms(t).to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// What `time_text` writes (RFC 3339), or SQLite's own `YYYY-MM-DD HH:MM:SS.SSS` in UTC.
fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%F %T%.f").map(|t| t.and_utc()))
        .map_err(|_| StoreError::Other(format!("bad timestamp {text:?} in profile")))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use sqlx::Row;

    use super::*;
    use crate::store::{sqlite::PRAGMAS, Pool, Store};

    #[tokio::test]
    async fn the_writer_and_the_pool_run_with_the_same_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("pragmas.db").display());
        let store = Store::connect(&url).await.unwrap();
        let (Pool::Sqlite(pool), Some(writer)) = (&store.pool, &store.identify_writer) else {
            panic!("a SQLite file store has a writer");
        };
        for (name, _) in PRAGMAS {
            let row = sqlx::query(&format!("pragma {name}"))
                .fetch_one(pool)
                .await
                .unwrap();
            let on_pool: String = row.try_get_unchecked(0).unwrap();
            let conn = writer.conn.lock().unwrap();
            let on_writer = conn
                .query_row(&format!("pragma {name}"), [], |row| {
                    row.get::<_, rusqlite::types::Value>(0)
                })
                .unwrap();
            let on_writer = match on_writer {
                rusqlite::types::Value::Integer(n) => n.to_string(),
                rusqlite::types::Value::Text(text) => text,
                other => panic!("{name}: {other:?}"),
            };
            assert_eq!(on_pool, on_writer, "pragma {name}");
        }
        store.close().await;
    }

    #[test]
    fn timestamps_read_back_as_written() {
        let t = Utc.with_ymd_and_hms(2021, 3, 4, 5, 6, 7).unwrap()
            + chrono::TimeDelta::microseconds(123_456);
        assert_eq!(time_text(t), "2021-03-04T05:06:07.123+00:00");
        assert_eq!(parse_time(&time_text(t)).unwrap(), ms(t));
        assert_eq!(
            parse_time("2021-03-04 05:06:07.123").unwrap(),
            ms(t),
            "SQLite's own format"
        );
    }
}
