//! `[server]`, `[rate_limit]`, `[admin]` and `[accounts]`: how the bridge listens and who may
//! use it. Origins are parsed once, here.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use url::Url;

/// Token endpoint answers larger than this are refused unless `server.max_token_response_bytes`
/// says otherwise (also the cap for sinks' client-credentials tokens).
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// The URL browsers use to reach the bridge; redirect URIs are `{public_url}/callback/{provider}`.
    pub public_url: Url,
    /// Origins (scheme://host[:port]) that `return_to` may point at besides the bridge itself.
    pub allowed_return_origins: Vec<Origin>,
    /// Timeout for every call to a provider (discovery, token, userinfo, JWKS), in seconds.
    pub provider_timeout_secs: u64,
    /// Token endpoint answers larger than this many bytes are refused (the sign-in fails with
    /// the provider-error page).
    pub max_token_response_bytes: usize,
    /// Bound on finishing in-flight requests after SIGTERM/SIGINT, in seconds.
    pub shutdown_grace_secs: u64,
    /// A request's header must arrive complete within this many seconds of its first byte.
    pub header_read_timeout_secs: u64,
    /// A connection with no request in progress and no bytes sent either way for this many
    /// seconds is closed: before its first request, and kept alive between requests.
    pub idle_timeout_secs: u64,
    /// A request's body must arrive complete within this many seconds of its header.
    pub body_read_timeout_secs: u64,
    /// Open connections at most; beyond it new ones wait in the listen backlog.
    pub max_connections: usize,
    /// Behind a reverse proxy: the header it puts the client address in (e.g.
    /// `X-Forwarded-For`; the right-most entry is used). Unset: the socket peer is the client.
    pub trusted_proxy_header: Option<String>,
    /// How often each provider's discovery endpoint is checked for `/readyz`, in seconds.
    pub provider_check_secs: u64,
    /// Serve `/metrics` on this address only (e.g. `127.0.0.1:9090`) instead of the main one.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            public_url: Url::parse("http://127.0.0.1:8080").expect("valid default URL"),
            allowed_return_origins: Vec::new(),
            provider_timeout_secs: 10,
            max_token_response_bytes: DEFAULT_MAX_TOKEN_BYTES,
            shutdown_grace_secs: 20,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 30,
            body_read_timeout_secs: 30,
            max_connections: 1024,
            trusted_proxy_header: None,
            provider_check_secs: 30,
            metrics_listen: None,
        }
    }
}

impl ServerSettings {
    pub fn provider_timeout(&self) -> Duration {
        Duration::from_secs(self.provider_timeout_secs)
    }
    /// Whether the session cookie may drop `Secure`: only plain http on loopback names.
    pub fn insecure_cookies_allowed(&self) -> bool {
        self.public_url.scheme() == "http"
            && matches!(
                self.public_url.host_str(),
                Some("localhost") | Some("127.0.0.1") | Some("[::1]")
            )
    }
    /// The allowed return origins as strings (`https://app.example.com`).
    pub fn return_origins(&self) -> Vec<String> {
        self.allowed_return_origins
            .iter()
            .map(|o| o.as_str().to_string())
            .collect()
    }
}

/// A web origin, `scheme://host[:port]`, normalised (`https://App.Example.com:443` →
/// `https://app.example.com`). Parsed when the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl Origin {
    /// Parse `scheme://host[:port]`; anything with a path, query or credentials is refused.
    pub fn parse(origin: &str) -> Result<Origin, String> {
        let url = Url::parse(origin).map_err(|e| format!("{origin:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("{origin:?} must be an http(s) origin"));
        }
        if url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
        {
            return Err(format!(
                "{origin:?} must be an origin only (scheme://host[:port]), no path"
            ));
        }
        Ok(Origin(url.origin().ascii_serialization()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Origin {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Origin::parse(&value)
    }
}

impl From<Origin> for String {
    fn from(origin: Origin) -> String {
        origin.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Origin {
    fn schema_name() -> Cow<'static, str> {
        "Origin".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "uri",
            "description": "An origin: scheme://host[:port], no path."
        })
    }
}

/// Request rate limits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Requests per minute per client IP on `/login/*` and `/callback/*` (0 = no limit).
    pub login_per_minute: u32,
    /// Burst allowance on top of the steady rate.
    pub login_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            login_per_minute: 60,
            login_burst: 20,
        }
    }
}

/// The admin API and dashboard.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Hex SHA-256 of each accepted admin key (`printf %s KEY | sha256sum`). Empty: the admin
    /// API is closed (except in `dev`, where it is open on loopback).
    pub api_key_hashes: Vec<String>,
    /// Open the admin API and dashboard without a key. `identify-bridge dev` sets it; `serve`
    /// refuses to start with it.
    pub open: bool,
}

/// How sign-ins become profiles.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// Link a new identity to an existing profile with the same email, when both emails are
    /// vouched for by a provider authoritative for them. Off by default.
    pub link_by_email: bool,
}
