//! `StoreError`: what can go wrong in the profile store, sorted by what the caller does next.

use std::path::PathBuf;

/// An error from the profile store. `Display` never contains secrets: PostgreSQL URLs are
/// shown without their password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot serve the request right now (connection refused, pool timeout,
    /// disk full, database locked too long). Callers answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The SQLite file cannot be created or opened (unwritable directory, not a database).
    #[error("cannot open SQLite database at {}: {reason}", path.display())]
    Open { path: PathBuf, reason: String },
    /// A command that only reads or changes existing data found no SQLite file where the
    /// configuration points (it never creates one: an empty new database hides a wrong path).
    #[error(
        "no database at {}: only serve, dev and migrate create one; check database.url \
         (or --config), or run `identify-bridge migrate` first",
        path.display()
    )]
    Missing { path: PathBuf },
    /// A uniqueness or reference rule was broken (duplicate message id, unknown user, lost lease).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The sign-in's `state` was used already: a replayed callback.
    #[error("this sign-in state was already used")]
    StateUsed,
    /// Anything else: a bug, a bad URL, a failed migration.
    #[error("database error: {0}")]
    Other(String),
}

impl StoreError {
    /// Whether a caller should answer 503 Service Unavailable.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Open { .. })
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() || db.is_foreign_key_violation() {
                    return StoreError::Conflict(db.message().to_string());
                }
                let code = db.code().unwrap_or_default();
                if is_unavailable_code(&code) {
                    StoreError::Unavailable(db.message().to_string())
                } else {
                    StoreError::Other(db.message().to_string())
                }
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

/// The identify writer's SQLite errors, sorted as the pool's are.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(failure, message) => {
                let text = message.clone().unwrap_or_else(|| failure.to_string());
                if failure.code == rusqlite::ErrorCode::ConstraintViolation {
                    StoreError::Conflict(text)
                } else if is_unavailable_code(&failure.extended_code.to_string()) {
                    StoreError::Unavailable(text)
                } else {
                    StoreError::Other(text)
                }
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        match e {
            sqlx::migrate::MigrateError::Execute(inner) => inner.into(),
            other => StoreError::Other(format!("migration failed: {other}")),
        }
    }
}

/// SQLite result codes (numeric, possibly extended) and PostgreSQL SQLSTATEs that mean
/// "the server or disk cannot take this now" rather than "this request is wrong".
pub(super) fn is_unavailable_code(code: &str) -> bool {
    // PostgreSQL 55000 (all digits, so checked before SQLite's numbers): a database not
    // accepting connections (`allow_connections false`, while it is dropped or restored).
    if code == "55000" {
        return true;
    }
    if let Ok(n) = code.parse::<i32>() {
        // SQLITE_BUSY 5, LOCKED 6, NOMEM 7, READONLY 8, IOERR 10, CORRUPT 11, FULL 13, CANTOPEN 14
        return matches!(n & 0xff, 5 | 6 | 7 | 8 | 10 | 11 | 13 | 14);
    }
    // 08: connection exception, 53: insufficient resources (disk full, out of memory,
    // too many connections), 57P0x: server shutting down or starting.
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P")
}

/// `url` with any password replaced by `***`, for error messages.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            // libpq-style `?password=…` too.
            if u.query_pairs().any(|(k, _)| k == "password") {
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" {
                            "***".into()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                u.query_pairs_mut().clear().extend_pairs(pairs);
            }
            u.to_string()
        }
        Err(_) => "<unparsable database url>".to_string(),
    }
}
