//! `[[sinks]]`: where identify calls go, in which format, with which credentials.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use super::Secret;

/// The wire format a sink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// The specification's sample: one JSON object per request, `Authorization` + `KEY`.
    #[default]
    Seed,
    /// ThriveStack's current API: a JSON array of identify objects, `x-api-key`.
    Thrivestack,
    /// Segment's HTTP tracking API `identify`, write key as basic auth.
    Segment,
    /// A plain JSON event per request (type, id, time, user_id, traits, context, first sign-in
    /// or not), for any HTTP receiver; sign it with `signing_secrets`.
    Webhook,
}

/// What `timestamp` means in what a sink receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimestampRule {
    /// The account's creation time (the seed format's meaning).
    CreatedAt,
    /// The sign-in time; the creation time goes into the traits.
    EventTime,
}

/// `[sinks.token]`: a client-credentials grant for the sink's bearer token.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkTokenSettings {
    pub token_url: Url,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_sink_scope")]
    pub scope: String,
    /// Sent as the RFC 8707 `resource` / `audience` when set.
    #[serde(default)]
    pub audience: Option<String>,
}

fn default_sink_scope() -> String {
    "telemetry_apis".into()
}

/// One `[[sinks]]` entry: where identify calls go.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkSettings {
    pub name: String,
    #[serde(default)]
    pub format: SinkFormat,
    pub url: Url,
    #[serde(default)]
    pub api_key: Option<Secret>,
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// A static bearer token (alternative to `[sinks.token]`).
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    #[serde(default)]
    pub token: Option<SinkTokenSettings>,
    /// ThriveStack format: identify objects per request.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default = "default_sink_timeout")]
    pub timeout_secs: u64,
    /// Retry delays grow from this…
    #[serde(default = "default_backoff_base_ms")]
    pub backoff_base_ms: u64,
    /// …up to this cap (full jitter below it).
    #[serde(default = "default_backoff_cap_secs")]
    pub backoff_cap_secs: u64,
    /// A message still undelivered after this long goes to dead letter.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// Traits never sent to this sink.
    #[serde(default)]
    pub exclude_traits: Vec<String>,
    /// Traits sent only as a lowercase hex SHA-256 of their value.
    #[serde(default)]
    pub hash_traits: Vec<String>,
    /// Default: `created_at` for `seed`, `event_time` for `segment` and `thrivestack`.
    #[serde(default)]
    pub timestamp: Option<TimestampRule>,
    /// Send the client's IP address in `context.ip` (personal data: off unless asked for).
    #[serde(default)]
    pub send_client_ip: bool,
    /// Standard Webhooks secrets (`whsec_` + base64): every request is signed with each one
    /// (`webhook-signature` lists them all), so a receiver can rotate to a new one.
    #[serde(default)]
    pub signing_secrets: Vec<Secret>,
    /// A file holding the signing secrets, separated by whitespace (one a line).
    #[serde(default)]
    pub signing_secrets_file: Option<PathBuf>,
}

fn default_batch_size() -> usize {
    100
}
fn default_sink_timeout() -> u64 {
    10
}
fn default_backoff_base_ms() -> u64 {
    1000
}
fn default_backoff_cap_secs() -> u64 {
    300
}
fn default_max_age_secs() -> u64 {
    3 * 24 * 3600
}

impl SinkSettings {
    pub fn timestamp_rule(&self) -> TimestampRule {
        self.timestamp.unwrap_or(match self.format {
            SinkFormat::Seed => TimestampRule::CreatedAt,
            SinkFormat::Thrivestack | SinkFormat::Segment | SinkFormat::Webhook => {
                TimestampRule::EventTime
            }
        })
    }

    /// The HMAC keys of `signing_secrets`, in order (checked at start-up, so this holds for a
    /// loaded configuration).
    pub fn signing_keys(&self) -> Result<Vec<Vec<u8>>, String> {
        self.signing_secrets
            .iter()
            .map(|s| signing_key(s.expose()))
            .collect()
    }
}

/// Standard Webhooks' secret prefix.
pub const SIGNING_SECRET_PREFIX: &str = "whsec_";
/// Key sizes Standard Webhooks asks for (bytes).
const SIGNING_KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// The HMAC key of a Standard Webhooks secret: `whsec_` then standard base64 of 24–64 bytes.
/// The message never repeats the secret.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let encoded = secret
        .trim()
        .strip_prefix(SIGNING_SECRET_PREFIX)
        .ok_or_else(|| {
            format!(
                "a Standard Webhooks secret starts with `{SIGNING_SECRET_PREFIX}` (then base64)"
            )
        })?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| {
            format!("after `{SIGNING_SECRET_PREFIX}` a Standard Webhooks secret is base64, and this one is not")
        })?;
    if !SIGNING_KEY_BYTES.contains(&key.len()) {
        return Err(format!(
            "a Standard Webhooks secret holds {} to {} bytes (this one {}); generate one with `echo whsec_$(openssl rand -base64 32)`",
            SIGNING_KEY_BYTES.start(),
            SIGNING_KEY_BYTES.end(),
            key.len()
        ));
    }
    Ok(key)
}
