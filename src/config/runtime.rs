//! `[session]`, `[database]` and `[log]`: where state lives and how the bridge reports.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionStoreKind {
    /// The configured database (default).
    Database,
    /// Process memory: for tests and single-process experiments only.
    Memory,
    /// Redis at `session.redis_url`.
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    /// Where sessions live: `database`, `redis` or `memory`.
    pub store: SessionStoreKind,
    /// The session cookie's name.
    pub cookie_name: String,
    /// A signed-in session ends after this many seconds without a request.
    pub idle_timeout_secs: u64,
    /// A started sign-in must come back from the provider within this many seconds.
    pub login_timeout_secs: u64,
    /// `redis://host:6379/0`, for `store = "redis"`.
    pub redis_url: Option<Secret>,
    /// A file holding `redis_url` (a mounted secret: the URL may carry a password).
    pub redis_url_file: Option<PathBuf>,
    /// Keys sealing pending sign-ins and tokens at rest: one or more, whitespace separated
    /// (one per line in `secret_file`), at least 32 characters each; the first seals, all open.
    pub secret: Option<Secret>,
    /// A file holding `secret`.
    pub secret_file: Option<PathBuf>,
    /// A signed-in session ends this many seconds after its sign-in, however active.
    pub max_lifetime_secs: u64,
    /// Check a session back with its provider after this many seconds (0: never). While it is
    /// on, sign-ins ask the provider for a refresh token (unless its `refresh_tokens = false`).
    pub revalidate_secs: u64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            store: SessionStoreKind::Database,
            cookie_name: "identify_bridge_session".into(),
            idle_timeout_secs: 8 * 3600,
            login_timeout_secs: 600,
            redis_url: None,
            redis_url_file: None,
            secret: None,
            secret_file: None,
            max_lifetime_secs: 7 * 24 * 3600,
            revalidate_secs: 900,
        }
    }
}

/// The shortest sealing key `session.secret` may hold.
pub const MIN_SESSION_KEY_CHARS: usize = 32;

impl SessionSettings {
    /// The sealing keys in `secret`, checked: at least one, each at least
    /// [`MIN_SESSION_KEY_CHARS`] long.
    pub fn sealing_keys(&self) -> Result<Vec<&str>, String> {
        let Some(secret) = &self.secret else {
            return Ok(Vec::new());
        };
        let keys: Vec<&str> = secret.expose().split_whitespace().collect();
        if keys.is_empty() {
            return Err("is empty".into());
        }
        if let Some(i) = keys.iter().position(|k| k.len() < MIN_SESSION_KEY_CHARS) {
            return Err(format!(
                "key {} is shorter than {MIN_SESSION_KEY_CHARS} characters (generate one with \
                 `openssl rand -base64 32`)",
                i + 1
            ));
        }
        Ok(keys)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (embedded default) or `postgres://user@host/db`.
    #[schemars(extend("default" = "sqlite://data/identify-bridge.db"))]
    pub url: Secret,
    /// A file holding `url` (a mounted secret: the URL carries the password).
    pub url_file: Option<PathBuf>,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: Secret::new("sqlite://data/identify-bridge.db"),
            url_file: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `json` or `pretty`.
    pub format: LogFormat,
    /// A tracing filter, e.g. `info` or `identify_bridge=debug,info`; `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Json,
            level: "info".into(),
        }
    }
}
