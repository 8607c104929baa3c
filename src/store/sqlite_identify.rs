//! The Identify API's writes on a SQLite file: one connection of their own (not from the pool),
//! driven synchronously on a blocking thread with cached single-row statements. A group
//! commit is then one `BEGIN IMMEDIATE … COMMIT` on one thread, with no statement to parse
//! and no hand-off between the async task and the pool's connection thread per statement.
//! Same rules and same rows as the pool's path in `identify.rs` (PostgreSQL, in-memory SQLite).

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{Map, Value};

use super::identify::{call_id, replay_of, IdentifyCall, IdentifyOutcome, Profile};
use super::{ms, StoreError};

const INSERT_CALL: &str = "insert into identify_call (call_id, caller, idempotency_key, user_id, \
     traits, context, account_created_at, response, request_digest, received_at) \
     values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
/// With an idempotency key: a repeat is not inserted (and then answers the first response).
const INSERT_KEYED_CALL: &str = "insert into identify_call (call_id, caller, idempotency_key, \
     user_id, traits, context, account_created_at, response, request_digest, received_at) \
     values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     on conflict (caller, idempotency_key) do nothing";
const FIRST_RESPONSE: &str = "select response, request_digest from identify_call \
     where caller = ?1 and idempotency_key = ?2";
const READ_PROFILE: &str = "select traits, provenance, created_at, created_at_source from profile \
     where user_id = ?1";
const INSERT_PROFILE: &str = "insert into profile (user_id, created_at, created_at_source, \
     updated_at, traits, provenance) values (?1, ?2, ?3, ?4, ?5, ?6)";
const UPDATE_PROFILE: &str = "update profile set created_at = ?2, created_at_source = ?3, \
     updated_at = ?4, traits = ?5, provenance = ?6 where user_id = ?1";

/// The identify writer's connection; cheap to clone.
#[derive(Clone)]
pub(super) struct IdentifyWriter {
    conn: Arc<Mutex<Connection>>,
}

impl IdentifyWriter {
    /// Open the database file (already created and migrated through the pool) with the
    /// pool's settings: WAL, `synchronous = FULL` (a commit is on disk when it returns).
    pub(super) fn open(path: &Path) -> Result<IdentifyWriter, StoreError> {
        let open_error = |e: rusqlite::Error| StoreError::Open {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        let conn = Connection::open(path).map_err(open_error)?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(open_error)?;
        conn.query_row("pragma journal_mode = wal", [], |_| Ok(()))
            .map_err(open_error)?;
        // Checkpoints stay SQLite's automatic ones (after a commit that leaves the WAL over
        // 1000 pages): a PASSIVE checkpointer on another thread never catches the last frame
        // under steady writes, so the WAL never restarts (it grew past 200 MB in 5 s of
        // `scripts/bench-identify`), for no measurable gain.
        conn.execute_batch(
            "pragma synchronous = full; pragma foreign_keys = on; pragma temp_store = memory; \
             pragma cache_size = -16384;",
        )
        .map_err(open_error)?;
        Ok(IdentifyWriter {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Record `calls` in one transaction, on a blocking thread.
    pub(super) async fn record(
        &self,
        calls: Arc<Vec<IdentifyCall>>,
    ) -> Result<Vec<IdentifyOutcome>, StoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            // A panic mid-batch rolled its transaction back (dropped): the connection is fine.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            record(&mut conn, &calls)
        })
        .await
        .map_err(|e| StoreError::Other(format!("the identify writer failed: {e}")))?
    }
}

fn record(
    conn: &mut Connection,
    calls: &[IdentifyCall],
) -> Result<Vec<IdentifyOutcome>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;

    // 1. The log; a repeated (caller, idempotency key) answers the first call's response.
    let mut outcomes: Vec<Option<IdentifyOutcome>> = Vec::with_capacity(calls.len());
    {
        let mut insert = tx.prepare_cached(INSERT_CALL)?;
        let mut insert_keyed = tx.prepare_cached(INSERT_KEYED_CALL)?;
        let mut first = tx.prepare_cached(FIRST_RESPONSE)?;
        for c in calls {
            let row = params![
                call_id(c.received_at).hyphenated().to_string(),
                c.caller,
                c.idempotency_key,
                c.user_id,
                c.traits_json,
                c.context_json,
                c.account_created_at.map(time_text),
                c.response,
                c.request_digest,
                time_text(c.received_at),
            ];
            let Some(key) = &c.idempotency_key else {
                insert.execute(row)?;
                outcomes.push(None);
                continue;
            };
            if insert_keyed.execute(row)? == 1 {
                outcomes.push(None);
            } else {
                let (response, digest): (String, Option<String>) =
                    first.query_row(params![c.caller, key], |r| Ok((r.get(0)?, r.get(1)?)))?;
                outcomes.push(Some(replay_of(c, response, digest)));
            }
        }
    }

    // 2. Apply the calls in order to the profiles they touch, in memory.
    let mut profiles: HashMap<&str, Profile> = HashMap::new();
    {
        let mut read = tx.prepare_cached(READ_PROFILE)?;
        for (c, outcome) in calls.iter().zip(outcomes.iter_mut()) {
            if outcome.is_some() {
                continue;
            }
            let (p, created) = match profiles.entry(c.user_id.as_str()) {
                Entry::Occupied(e) => (e.into_mut(), false),
                Entry::Vacant(e) => {
                    match read.query_row([&c.user_id], stored_profile).optional()? {
                        Some(stored) => (e.insert(stored?), false),
                        None => (e.insert(Profile::new_for(c)), true),
                    }
                }
            };
            p.merge(c);
            *outcome = Some(IdentifyOutcome::Applied { created });
        }
    }

    // 3. Write them: one transaction holds SQLite's only write lock, so no one else can have
    //    created a "new" profile meanwhile.
    {
        let mut insert = tx.prepare_cached(INSERT_PROFILE)?;
        let mut update = tx.prepare_cached(UPDATE_PROFILE)?;
        for (user_id, p) in &profiles {
            let row = params![
                user_id,
                time_text(p.created_at),
                p.created_at_source,
                time_text(p.updated_at),
                json_text(&p.traits)?,
                json_text(&p.provenance)?,
            ];
            if p.is_new {
                insert.execute(row)?;
            } else {
                update.execute(row)?;
            }
        }
    }
    tx.commit()?;
    Ok(outcomes.into_iter().flatten().collect())
}

/// A stored profile row, as the batch starts from it.
fn stored_profile(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Profile, StoreError>> {
    let traits: String = row.get(0)?;
    let provenance: String = row.get(1)?;
    let created_at: String = row.get(2)?;
    let created_at_source: String = row.get(3)?;
    Ok((|| {
        let created_at = parse_time(&created_at)?;
        Ok(Profile {
            traits: parse_object(&traits)?,
            provenance: parse_object(&provenance)?,
            created_at,
            created_at_source,
            updated_at: created_at,
            is_new: false,
        })
    })())
}

fn parse_object(text: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Other(format!("bad JSON object in profile: {e}")))
}

fn json_text(map: &Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(map).map_err(|e| StoreError::Other(e.to_string()))
}

/// A timestamp as the pool's driver (sqlx) writes it, so both paths' rows read and sort alike.
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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, message) => {
                let text = message.clone().unwrap_or_else(|| f.to_string());
                match f.code {
                    rusqlite::ErrorCode::ConstraintViolation => StoreError::Conflict(text),
                    _ if super::error::is_unavailable_code(&f.extended_code.to_string()) => {
                        StoreError::Unavailable(text)
                    }
                    _ => StoreError::Other(text),
                }
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

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
