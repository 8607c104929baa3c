//! SQLite specifics: opening the file, write transactions, and the few SQL strings that differ.

use std::{path::Path, str::FromStr};

use sqlx::{
    migrate::Migrator,
    sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions},
    Sqlite, Transaction,
};
use uuid::Uuid;

use super::{StoreError, StoreOptions};

pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// tower-sessions-sqlx-store's default SQLite table.
pub(super) const DELETE_USER_SESSIONS: &str =
    "delete from tower_sessions where id in (select session_id from user_session where user_id = $1)";
/// tower-sessions-sqlx-store's session table.
pub(super) const SESSION_TABLE: &str = "tower_sessions";
/// A new session row; no row when the id is taken (the caller picks another).
pub(super) const CREATE_SESSION: &str =
    "insert into tower_sessions (id, data, expiry_date) values ($1, $2, $3) on conflict (id) do nothing";
/// A session row written or replaced (the session layer's `save`).
pub(super) const SAVE_SESSION: &str =
    "insert into tower_sessions (id, data, expiry_date) values ($1, $2, $3) \
     on conflict (id) do update set data = excluded.data, expiry_date = excluded.expiry_date";
pub(super) const PRUNE_USER_SESSIONS: &str =
    "delete from user_session where session_id not in (select id from tower_sessions)";
/// Up to `$2` sessions expired before `$1`, as tower-sessions' own `delete_expired` compares
/// (its `expiry_date` is RFC 3339 text).
pub(super) const PURGE_EXPIRED_SESSIONS: &str = "delete from tower_sessions where id in \
     (select id from tower_sessions where datetime(expiry_date) < datetime($1) limit $2)";
/// One statement in an immediate transaction: SQLite has one writer, so no row locks needed.
pub(super) const CLAIM_DUE: &str = claim_due_sql!("");
/// Row locks for a read-modify-write: none needed, the write transaction is exclusive.
pub(super) const ROW_LOCK: &str = "";

/// The pragmas of every connection to the database file, the pool's and the identify
/// writer's (`identify/sqlite.rs`), so the two never differ.
///
/// WAL with `synchronous = FULL`: NORMAL can lose the last transactions on power loss, and
/// the outbox promises that a committed sign-in's identify call is never lost.
pub(super) const PRAGMAS: [(&str, &str); 6] = [
    ("journal_mode", "wal"),
    ("synchronous", "full"),
    ("foreign_keys", "on"),
    // Milliseconds a connection waits for the write lock before SQLITE_BUSY (a 503).
    ("busy_timeout", "5000"),
    // A multi-row write keeps a statement journal to undo itself on a constraint error;
    // spilled to a temporary file it costs a write(2) per page touched, and a group commit
    // touches hundreds. In memory it is as safe: it is never needed after a crash.
    ("temp_store", "memory"),
    // Group commits touch profile and index pages all over the file; the default 2 MB
    // cache re-reads them from the OS on every batch. Grows only as pages are used.
    ("cache_size", "-16384"),
];
// Checkpoints stay SQLite's automatic ones (after a commit that leaves the WAL over 1000
// pages): a PASSIVE checkpointer on another thread never catches the last frame under steady
// writes, so the WAL never restarts (it grew past 200 MB in 5 s of `scripts/bench-identify`).

/// Set [`PRAGMAS`] on a rusqlite connection.
pub(super) fn apply_pragmas(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    for (name, value) in PRAGMAS {
        // Some pragmas answer with a row (`journal_mode` its new mode): read and drop it.
        conn.prepare(&format!("pragma {name} = {value}"))?
            .query([])?
            .next()?;
    }
    Ok(())
}

/// Open (creating file and parent directories) a SQLite database for the store. An
/// in-memory database is refused: the identify writer needs a second connection to it.
pub(super) async fn connect(url: &str, settings: &StoreOptions) -> Result<SqlitePool, StoreError> {
    if in_memory(url) {
        return Err(StoreError::Other(format!(
            "an in-memory SQLite database ({url}) is not supported: the Identify API writes \
             through a connection of its own, which would see another, empty database; set \
             database.url to a file, e.g. sqlite://data/identify-bridge.db (tests: a file in a \
             temporary directory)"
        )));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid SQLite URL {url:?}: {e}")))?;
    let path = options.get_filename().to_path_buf();
    let open_error = |reason: String| StoreError::Open {
        path: path.clone(),
        reason,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            open_error(format!("cannot create directory {}: {e}", parent.display()))
        })?;
    }
    let options = PRAGMAS
        .into_iter()
        .fold(options.create_if_missing(true), |options, (name, value)| {
            options.pragma(name, value)
        });
    SqlitePoolOptions::new()
        .max_connections(settings.max_connections.unwrap_or(8))
        .acquire_timeout(settings.acquire_timeout)
        .connect_with(options)
        .await
        .map_err(|e| open_error(e.to_string()))
}

/// The file a SQLite URL names, made absolute; `None` for an in-memory database.
pub(super) fn file_path(url: &str) -> Result<Option<std::path::PathBuf>, StoreError> {
    if in_memory(url) {
        return Ok(None);
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Other(format!("invalid SQLite URL {url:?}: {e}")))?;
    let path = options.get_filename();
    Ok(Some(
        std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    ))
}

/// Whether `url` names an in-memory database (one per connection: refused by [`connect`]).
pub(super) fn in_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// Run the store's migrations; a file that is not a database is reported by path.
pub(super) async fn migrate(pool: &SqlitePool, path: &Path) -> Result<(), StoreError> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Other(reason) | StoreError::Unavailable(reason) => StoreError::Open {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
}

/// `BEGIN IMMEDIATE` takes the write lock up front, so a read-then-write transaction never
/// fails with SQLITE_BUSY on lock upgrade; waiting is bounded by `busy_timeout`.
pub(super) async fn begin_write(
    pool: &SqlitePool,
) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
    pool.begin_with("begin immediate").await
}

/// Uuids are stored as hyphenated text (readable with the sqlite3 shell).
pub(super) fn uuid(id: Uuid) -> uuid::fmt::Hyphenated {
    id.hyphenated()
}

/// Writers are serialized by `BEGIN IMMEDIATE`: there is no race to retry.
pub(super) fn is_retryable(_e: &sqlx::Error) -> bool {
    false
}
