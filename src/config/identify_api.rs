//! `[identify_api]`: who may call `POST /api/identify`, and the limits on what they send.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

/// What a caller must present. Both by default, as the specification lists both headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Credential {
    /// `Authorization: Bearer <JWT>` with the `telemetry_apis` scope.
    Token,
    /// `KEY: <api key>` (or `x-api-key`), checked against `api_key_hashes`.
    Key,
}

/// The `[identify_api]` section. Absent: the endpoint answers 503 "not configured".
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IdentifyApiSettings {
    /// Which credentials a call must carry: `["token", "key"]` (default), `["token"]` or `["key"]`.
    /// Kept as strings so an unknown entry is reported by name in validation.
    pub require: Vec<String>,
    /// Issuer of the access tokens; discovery at `{token_issuer}/.well-known/openid-configuration`.
    pub token_issuer: Option<Url>,
    /// The `aud` a token must carry.
    pub token_audience: Option<String>,
    /// The scope a token must carry.
    pub token_scope: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub token_leeway_secs: u64,
    /// Verified tokens kept (by SHA-256) until they expire.
    pub token_cache_size: u64,
    /// Lower-case hex SHA-256 of each accepted API key; plain keys are never configured.
    pub api_key_hashes: Vec<String>,
    /// Requests per minute per API key (or per token subject when keys are not required);
    /// 0 turns rate limiting off.
    pub rate_limit_per_minute: u32,
    /// Requests a caller may send at once before the per-minute rate applies; default: the rate.
    pub rate_limit_burst: Option<u32>,
    /// Whole request body, in bytes.
    pub max_request_bytes: usize,
    /// Requests read, checked and recorded at once on this replica; more wait their turn
    /// (their body not yet read). Bounds the memory bodies take: about this many times
    /// `max_request_bytes`, a few times over once parsed.
    pub max_requests_in_flight: usize,
    /// One identify object (compact JSON), in bytes.
    pub max_object_bytes: usize,
    /// Objects in one array request.
    pub max_batch_items: usize,
    /// Characters in `user_id` and `message_id`.
    pub max_user_id_chars: usize,
    /// Traits in one call.
    pub max_traits: usize,
    /// Characters in a trait name or a context key.
    pub max_key_chars: usize,
    /// Characters in a string value (trait, list element, context).
    pub max_string_chars: usize,
    /// Elements in a trait's list value.
    pub max_list_items: usize,
    /// Nesting depth of `context` (an object of scalars is depth 1).
    pub max_context_depth: usize,
    /// Identify calls written in one database transaction (group commit).
    pub write_batch_max: usize,
}

impl Default for IdentifyApiSettings {
    fn default() -> Self {
        IdentifyApiSettings {
            require: vec!["token".into(), "key".into()],
            token_issuer: None,
            token_audience: None,
            token_scope: "telemetry_apis".into(),
            token_leeway_secs: 30,
            token_cache_size: 10_000,
            api_key_hashes: Vec::new(),
            rate_limit_per_minute: 600,
            rate_limit_burst: None,
            max_request_bytes: 512 * 1024,
            max_requests_in_flight: 64,
            max_object_bytes: 32 * 1024,
            max_batch_items: 100,
            max_user_id_chars: 256,
            max_traits: 100,
            max_key_chars: 128,
            max_string_chars: 4096,
            max_list_items: 50,
            max_context_depth: 8,
            write_batch_max: 256,
        }
    }
}

impl IdentifyApiSettings {
    /// The parsed `require` list (valid after [`IdentifyApiSettings::validate`]).
    pub fn required(&self) -> Vec<Credential> {
        self.require
            .iter()
            .filter_map(|r| match r.as_str() {
                "token" => Some(Credential::Token),
                "key" => Some(Credential::Key),
                _ => None,
            })
            .collect()
    }

    pub fn requires(&self, c: Credential) -> bool {
        self.required().contains(&c)
    }

    /// Check the section; the error names the key (`identify_api.…`) and what is wrong.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let key = |k: &str| format!("identify_api.{k}");
        if self.require.is_empty() {
            return Err((
                key("require"),
                "list at least one of \"token\", \"key\"".into(),
            ));
        }
        for (i, r) in self.require.iter().enumerate() {
            if r != "token" && r != "key" {
                return Err((
                    format!("identify_api.require[{i}]"),
                    format!("{r:?} is not a credential: use \"token\" or \"key\""),
                ));
            }
        }
        if self.requires(Credential::Token) {
            match &self.token_issuer {
                None => {
                    return Err((
                        key("token_issuer"),
                        "required when require has \"token\"".into(),
                    ))
                }
                Some(u) if !matches!(u.scheme(), "http" | "https") => {
                    return Err((key("token_issuer"), "must be an http(s) URL".into()))
                }
                Some(_) => {}
            }
            if self
                .token_audience
                .as_deref()
                .is_none_or(|a| a.trim().is_empty())
            {
                return Err((
                    key("token_audience"),
                    "required when require has \"token\"".into(),
                ));
            }
            if self.token_scope.trim().is_empty() {
                return Err((key("token_scope"), "must not be empty".into()));
            }
        }
        if self.requires(Credential::Key) && self.api_key_hashes.is_empty() {
            return Err((
                key("api_key_hashes"),
                "required when require has \"key\"".into(),
            ));
        }
        for (i, h) in self.api_key_hashes.iter().enumerate() {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err((
                    format!("identify_api.api_key_hashes[{i}]"),
                    "must be 64 hex digits (the SHA-256 of the key, e.g. `printf %s KEY | sha256sum`)".into(),
                ));
            }
        }
        for (name, value) in [
            ("max_request_bytes", self.max_request_bytes),
            ("max_requests_in_flight", self.max_requests_in_flight),
            ("max_object_bytes", self.max_object_bytes),
            ("max_batch_items", self.max_batch_items),
            ("max_user_id_chars", self.max_user_id_chars),
            ("max_key_chars", self.max_key_chars),
            ("max_string_chars", self.max_string_chars),
            ("max_context_depth", self.max_context_depth),
            ("write_batch_max", self.write_batch_max),
            ("token_cache_size", self.token_cache_size as usize),
        ] {
            if value == 0 {
                return Err((key(name), "must be at least 1".into()));
            }
        }
        if self.rate_limit_burst == Some(0) {
            return Err((key("rate_limit_burst"), "must be at least 1".into()));
        }
        Ok(())
    }
}
