//! The typed settings tree: defaults, then the TOML file, then `IDENTIFY_BRIDGE__…` variables.
//!
//! Every key has one environment name: the path in upper case joined by `__`, under the prefix
//! `IDENTIFY_BRIDGE__` (`server.listen` → `IDENTIFY_BRIDGE__SERVER__LISTEN`). Providers are a
//! list in TOML, so in the environment they are addressed by name:
//! `IDENTIFY_BRIDGE__PROVIDERS__{NAME}__{KEY}` (name upper-cased, `-` written as `_`); a name
//! that is not in the file adds a provider.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize, Serializer};
use url::Url;

/// Environment prefix for every key.
pub const ENV_PREFIX: &str = "IDENTIFY_BRIDGE__";

/// Which family a configured provider belongs to; decides discovery quirks and default trait mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Google,
    Microsoft,
    Okta,
    Oidc,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Google => "google",
            ProviderKind::Microsoft => "microsoft",
            ProviderKind::Okta => "okta",
            ProviderKind::Oidc => "oidc",
        }
    }
}

/// A secret value: never printed by `Debug`, serialized as `"[redacted]"`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// The whole configuration, after validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub session: SessionSettings,
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub accounts: AccountSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub rate_limit: RateLimitSettings,
    #[serde(default)]
    pub providers: Vec<ProviderSettings>,
    #[serde(default)]
    pub sinks: Vec<SinkSettings>,
    /// `[identify_api]`: serve `POST /api/identify`; absent means "not configured" (503).
    #[serde(default)]
    pub identify_api: Option<crate::identify_api::IdentifyApiSettings>,
}

/// The wire format a sink speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SinkFormat {
    /// The specification's sample: one JSON object per request, `Authorization` + `KEY`.
    #[default]
    Seed,
    /// ThriveStack's current API: a JSON array of identify objects, `x-api-key`.
    Thrivestack,
    /// Segment's HTTP tracking API `identify`, write key as basic auth.
    Segment,
}

/// What `timestamp` means in what a sink receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampRule {
    /// The account's creation time (the seed format's meaning).
    CreatedAt,
    /// The sign-in time; the creation time goes into the traits.
    EventTime,
}

/// `[sinks.token]`: a client-credentials grant for the sink's bearer token.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
            SinkFormat::Thrivestack | SinkFormat::Segment => TimestampRule::EventTime,
        })
    }
}

/// Request rate limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Hex SHA-256 of each accepted admin key (`printf %s KEY | sha256sum`). Empty: the admin
    /// API is closed (except in `dev`, where it is open on loopback).
    pub api_key_hashes: Vec<String>,
    /// Open the admin API and dashboard without a key (set by `identify-bridge dev`).
    pub open: bool,
}

/// How sign-ins become profiles.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSettings {
    /// Link a new identity to an existing profile with the same email, when both emails are
    /// vouched for by a provider authoritative for them. Off by default.
    pub link_by_email: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// The URL browsers use to reach the bridge; redirect URIs are `{public_url}/callback/{provider}`.
    pub public_url: Url,
    /// Origins (scheme://host[:port]) that `return_to` may point at besides the bridge itself.
    pub allowed_return_origins: Vec<String>,
    /// Timeout for every call to a provider (discovery, token, userinfo, JWKS), in seconds.
    pub provider_timeout_secs: u64,
    /// Bound on finishing in-flight requests after SIGTERM/SIGINT, in seconds.
    pub shutdown_grace_secs: u64,
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
            shutdown_grace_secs: 20,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStoreKind {
    /// The configured database (default).
    Database,
    /// Process memory: for tests and single-process experiments only.
    Memory,
    /// Redis at `session.redis_url`.
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    pub store: SessionStoreKind,
    pub cookie_name: String,
    /// A signed-in session ends after this many seconds without a request.
    pub idle_timeout_secs: u64,
    /// A started sign-in must come back from the provider within this many seconds.
    pub login_timeout_secs: u64,
    /// `redis://host:6379/0`, for `store = "redis"`.
    pub redis_url: Option<Secret>,
    // Session keys and lifetimes (issue 12; see session.rs and sealed.rs).
    /// Keys sealing pending sign-ins and tokens at rest: one or more, whitespace separated
    /// (one per line in `secret_file`), at least 32 characters each; the first seals, all open.
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    /// A signed-in session ends this many seconds after its sign-in, however active.
    pub max_lifetime_secs: u64,
    /// Check a session back with its provider after this many seconds (0: never).
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
            secret: None,
            secret_file: None,
            max_lifetime_secs: 7 * 24 * 3600,
            revalidate_secs: 900,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (embedded default) or `postgres://user@host/db`.
    pub url: Secret,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: Secret::new("sqlite://data/identify-bridge.db"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
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

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// URL segment: `/login/{name}`, `/callback/{name}`.
    pub name: String,
    pub kind: ProviderKind,
    /// Button label on the sign-in page; defaults from the kind.
    #[serde(default)]
    pub display_name: Option<String>,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<Secret>,
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub token_auth_method: TokenAuthMethod,
    /// Issuer URL. Required for `oidc`; overrides the built-in issuer for the other kinds.
    #[serde(default)]
    pub issuer: Option<Url>,
    /// Microsoft: `common`, `organizations`, `consumers`, a tenant id or a domain.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Microsoft: tenant ids allowed to sign in (empty: any the `tenant` admits).
    #[serde(default)]
    pub allowed_tenants: Vec<String>,
    /// Microsoft: the login host, `https://login.microsoftonline.com` by default.
    #[serde(default)]
    pub authority: Option<Url>,
    /// Microsoft: call Microsoft Graph for more traits (adds the `User.Read` scope).
    #[serde(default)]
    pub graph: bool,
    /// Microsoft: the Graph API base, `https://graph.microsoft.com/v1.0/` by default.
    #[serde(default)]
    pub graph_url: Option<Url>,
    /// Okta: the org domain, e.g. `acme.okta.com` (a full `https://…` URL is accepted too).
    #[serde(default)]
    pub domain: Option<String>,
    /// Okta: a custom authorization server id, e.g. `default`; none means the org server.
    #[serde(default)]
    pub authorization_server: Option<String>,
    /// Okta: call the Users API (`GET https://{domain}/api/v1/users/me`) for the account's
    /// `created` time, status and profile (adds the `okta.users.read.self` scope; needs the org
    /// authorization server, the only one that mints Okta API scopes).
    #[serde(default)]
    pub users_api: bool,
    /// Generic providers: count `email_verified = true` as proof of address ownership for
    /// account linking. Off by default; Google and Microsoft have built-in rules, Okta never counts.
    #[serde(default)]
    pub trust_email_verified: bool,
    /// Trait name → JSON Pointers into the merged claims; the first non-empty value wins.
    #[serde(default)]
    pub traits: BTreeMap<String, OneOrMany>,
}

/// A TOML value that may be one string or a list of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// Fill `value` from `file` when only the file is given; both set is an error.
fn resolve_secret(
    value: &mut Option<Secret>,
    file: &Option<PathBuf>,
    key: &str,
) -> Result<(), ConfigError> {
    match (value.as_ref(), file) {
        (Some(_), Some(_)) => Err(err(
            format!("{key}_file"),
            format!("set either {key} or {key}_file, not both"),
        )),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                err(
                    format!("{key}_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            *value = Some(Secret::new(text.trim_end_matches(['\r', '\n'])));
            Ok(())
        }
        _ => Ok(()),
    }
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

impl ProviderSettings {
    /// The client secret, from `client_secret` or `client_secret_file` (resolved at load time).
    pub fn secret(&self) -> Option<&Secret> {
        self.client_secret.as_ref()
    }

    /// The configured trait mapping in the traits module's shape.
    pub fn trait_mapping(&self) -> crate::traits::TraitMapping {
        self.traits
            .iter()
            .map(|(k, v)| (k.clone(), v.to_vec()))
            .collect()
    }

    pub fn label(&self) -> String {
        if let Some(label) = &self.display_name {
            return label.clone();
        }
        match self.kind {
            ProviderKind::Google => "Google".into(),
            ProviderKind::Microsoft => "Microsoft".into(),
            ProviderKind::Okta => "Okta".into(),
            ProviderKind::Oidc => self.name.clone(),
        }
    }

    /// The scopes to request, with what the kind's options add.
    pub fn effective_scopes(&self) -> Vec<String> {
        let mut scopes = self.scopes.clone();
        if self.kind == ProviderKind::Microsoft
            && self.graph
            && !scopes.iter().any(|s| s == "User.Read")
        {
            scopes.push("User.Read".into());
        }
        if self.kind == ProviderKind::Okta
            && self.users_api
            && !scopes.iter().any(|s| s == OKTA_USERS_SCOPE)
        {
            scopes.push(OKTA_USERS_SCOPE.into());
        }
        scopes
    }
}

/// The Okta scope that lets a user read their own Users API record.
pub const OKTA_USERS_SCOPE: &str = "okta.users.read.self";

/// A configuration error: one line naming the key and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

fn err(key: impl fmt::Display, what: impl fmt::Display) -> ConfigError {
    ConfigError(format!("`{key}`: {what}"))
}

impl Settings {
    /// Load from an optional TOML file, then the environment, then validate.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    /// Same as [`Settings::load`] with an explicit environment (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        let mut figment = Figment::from(Serialized::defaults(Settings::defaults_value()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "configuration file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // Provider keys are addressed by name, not index, so they are merged separately below.
        for (k, v) in &env {
            let rest = &k[ENV_PREFIX.len()..];
            if rest.starts_with("PROVIDERS__") {
                continue;
            }
            let path = rest.to_ascii_lowercase().replace("__", ".");
            figment = figment.merge(Serialized::default(&path, env_value(v)));
        }
        let providers = merge_provider_env(&figment, &env)?;
        let figment = figment.merge(Serialized::default("providers", providers));
        let mut settings: Settings = figment.extract().map_err(figment_error)?;
        settings.resolve_secret_files()?;
        settings.resolve_sink_secret_files()?;
        settings.validate()?;
        Ok(settings)
    }

    fn defaults_value() -> serde_json::Value {
        serde_json::json!({
            "server": ServerSettings::default(),
            "session": SessionSettings::default(),
            "database": { "url": "sqlite://data/identify-bridge.db" },
            "log": LogSettings::default(),
            "accounts": AccountSettings::default(),
            "admin": AdminSettings::default(),
            "rate_limit": RateLimitSettings::default(),
        })
    }

    fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        for (i, p) in self.providers.iter_mut().enumerate() {
            let key = format!("providers[{i}] ({}).client_secret", p.name);
            resolve_secret(&mut p.client_secret, &p.client_secret_file, &key)?;
        }
        let session = &mut self.session;
        resolve_secret(&mut session.secret, &session.secret_file, "session.secret")?;
        Ok(())
    }

    fn resolve_sink_secret_files(&mut self) -> Result<(), ConfigError> {
        for (i, sink) in self.sinks.iter_mut().enumerate() {
            let key = format!("sinks[{i}] ({})", sink.name);
            resolve_secret(
                &mut sink.api_key,
                &sink.api_key_file,
                &format!("{key}.api_key"),
            )?;
            resolve_secret(
                &mut sink.bearer_token,
                &sink.bearer_token_file,
                &format!("{key}.bearer_token"),
            )?;
            if let Some(token) = sink.token.as_mut() {
                resolve_secret(
                    &mut token.client_secret,
                    &token.client_secret_file,
                    &format!("{key}.token.client_secret"),
                )?;
            }
        }
        Ok(())
    }

    /// Check every rule the types cannot express; the message names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let public = &self.server.public_url;
        if !matches!(public.scheme(), "http" | "https") || public.host_str().is_none() {
            return Err(err(
                "server.public_url",
                "must be an http(s) URL with a host",
            ));
        }
        if public.query().is_some() || public.fragment().is_some() {
            return Err(err(
                "server.public_url",
                "must not have a query or fragment",
            ));
        }
        for (i, origin) in self.server.allowed_return_origins.iter().enumerate() {
            parse_origin(origin)
                .map_err(|what| err(format!("server.allowed_return_origins[{i}]"), what))?;
        }
        if self.session.cookie_name.is_empty()
            || !self
                .session
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(err(
                "session.cookie_name",
                "use letters, digits, `-` and `_`",
            ));
        }
        if self.session.store == SessionStoreKind::Redis && self.session.redis_url.is_none() {
            return Err(err(
                "session.redis_url",
                "required when session.store = \"redis\"",
            ));
        }
        if let Some(secret) = &self.session.secret {
            crate::sealed::Keys::parse(secret.expose()).map_err(|e| err("session.secret", e))?;
        }
        if self.session.max_lifetime_secs == 0 {
            return Err(err("session.max_lifetime_secs", "must be at least 1"));
        }
        if self.session.login_timeout_secs == 0 {
            return Err(err("session.login_timeout_secs", "must be at least 1"));
        }
        if self.server.provider_check_secs == 0 {
            return Err(err("server.provider_check_secs", "must be at least 1"));
        }
        if self.server.provider_timeout_secs == 0 {
            return Err(err("server.provider_timeout_secs", "must be at least 1"));
        }
        let db = self.database.url.expose();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            return Err(err(
                "database.url",
                "must start with sqlite:, postgres:// or postgresql://",
            ));
        }
        self.validate_sinks()?;
        for (i, h) in self.admin.api_key_hashes.iter().enumerate() {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(
                    format!("admin.api_key_hashes[{i}]"),
                    "must be 64 hex digits (a SHA-256)",
                ));
            }
        }
        if let Some(api) = &self.identify_api {
            api.validate().map_err(|(key, what)| err(key, what))?;
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            let key = format!("providers[{i}]");
            if p.name.is_empty()
                || p.name.len() > 64
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(err(
                    format!("{key}.name"),
                    format!("{:?} must be 1 to 64 letters, digits, `-` or `_`", p.name),
                ));
            }
            let key = format!("providers[{i}] ({})", p.name);
            if !seen.insert(p.name.to_ascii_lowercase()) {
                return Err(err(format!("{key}.name"), "another provider has this name"));
            }
            if p.client_id.trim().is_empty() {
                return Err(err(format!("{key}.client_id"), "must not be empty"));
            }
            if p.client_secret
                .as_ref()
                .is_none_or(|s| s.expose().is_empty())
            {
                return Err(err(
                    format!("{key}.client_secret"),
                    "missing: set client_secret, client_secret_file or the environment variable",
                ));
            }
            if !p.scopes.iter().any(|s| s == "openid") {
                return Err(err(format!("{key}.scopes"), "must include \"openid\""));
            }
            if let Some(issuer) = &p.issuer {
                if !matches!(issuer.scheme(), "http" | "https") {
                    return Err(err(format!("{key}.issuer"), "must be an http(s) URL"));
                }
            }
            match p.kind {
                ProviderKind::Oidc if p.issuer.is_none() => {
                    return Err(err(format!("{key}.issuer"), "required for kind = \"oidc\""));
                }
                ProviderKind::Microsoft => {
                    let tenant = p.tenant.as_deref().unwrap_or("");
                    if tenant.is_empty()
                        || !tenant
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
                    {
                        return Err(err(
                            format!("{key}.tenant"),
                            "required for kind = \"microsoft\": common, organizations, consumers, a tenant id or a domain",
                        ));
                    }
                    for (j, t) in p.allowed_tenants.iter().enumerate() {
                        if uuid::Uuid::parse_str(t).is_err() {
                            return Err(err(
                                format!("{key}.allowed_tenants[{j}]"),
                                format!("{t:?} is not a tenant id (a GUID)"),
                            ));
                        }
                    }
                }
                ProviderKind::Okta
                    if p.issuer.is_none() && p.domain.as_deref().unwrap_or("").is_empty() =>
                {
                    return Err(err(format!("{key}.domain"), "required for kind = \"okta\""));
                }
                _ => {}
            }
            crate::traits::validate_mapping(&p.trait_mapping())
                .map_err(|what| err(format!("{key}.traits"), what))?;
            if p.graph && p.kind != ProviderKind::Microsoft {
                return Err(err(format!("{key}.graph"), "only for kind = \"microsoft\""));
            }
            if p.users_api {
                if p.kind != ProviderKind::Okta {
                    return Err(err(format!("{key}.users_api"), "only for kind = \"okta\""));
                }
                if p.domain.as_deref().unwrap_or("").is_empty() {
                    return Err(err(
                        format!("{key}.domain"),
                        "required with users_api = true",
                    ));
                }
                if p.authorization_server
                    .as_deref()
                    .is_some_and(|a| !a.is_empty())
                {
                    return Err(err(
                        format!("{key}.users_api"),
                        "needs the org authorization server (remove `authorization_server`): \
                         custom authorization servers cannot grant okta.users.read.self",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_sinks(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            let key = format!("sinks[{i}]");
            if sink.name.is_empty()
                || sink.name.len() > 64
                || !sink
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(err(
                    format!("{key}.name"),
                    "must be 1 to 64 letters, digits, `-` or `_`",
                ));
            }
            let key = format!("sinks[{i}] ({})", sink.name);
            if !seen.insert(sink.name.clone()) {
                return Err(err(format!("{key}.name"), "another sink has this name"));
            }
            if !matches!(sink.url.scheme(), "http" | "https") {
                return Err(err(format!("{key}.url"), "must be an http(s) URL"));
            }
            if sink.bearer_token.is_some() && sink.token.is_some() {
                return Err(err(
                    format!("{key}.token"),
                    "set either bearer_token or [sinks.token], not both",
                ));
            }
            if let Some(token) = &sink.token {
                if token.client_secret.is_none() {
                    return Err(err(format!("{key}.token.client_secret"), "missing"));
                }
            }
            if sink.format == SinkFormat::Segment && sink.api_key.is_none() {
                return Err(err(
                    format!("{key}.api_key"),
                    "the Segment write key is required",
                ));
            }
            if sink.batch_size == 0 || sink.batch_size > 1000 {
                return Err(err(
                    format!("{key}.batch_size"),
                    "must be between 1 and 1000",
                ));
            }
            if sink.timeout_secs == 0 {
                return Err(err(format!("{key}.timeout_secs"), "must be at least 1"));
            }
            for (field, names) in [
                ("exclude_traits", &sink.exclude_traits),
                ("hash_traits", &sink.hash_traits),
            ] {
                for name in names {
                    if !crate::traits::TraitSet::is_known(name) && name != "email" && name != "name"
                    {
                        return Err(err(
                            format!("{key}.{field}"),
                            format!("unknown trait {name:?}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The resolved configuration as JSON, secrets redacted (`check-config`).
    pub fn to_redacted_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("<unprintable: {e}>"))
    }
}

/// Parse `scheme://host[:port]` into its normalised origin string.
pub fn parse_origin(origin: &str) -> Result<String, String> {
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
    Ok(url.origin().ascii_serialization())
}

/// Fold `IDENTIFY_BRIDGE__PROVIDERS__{NAME}__{KEY}` variables into the providers list.
fn merge_provider_env(
    figment: &Figment,
    env: &[(String, String)],
) -> Result<Vec<serde_json::Value>, ConfigError> {
    let mut providers: Vec<serde_json::Value> = match figment.find_value("providers") {
        Ok(value) => value.deserialize().map_err(figment_error)?,
        Err(_) => Vec::new(),
    };
    let prefix = format!("{ENV_PREFIX}PROVIDERS__");
    // name (normalised) -> [(key path, value)]
    let mut by_name: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (k, v) in env {
        let Some(rest) = k.strip_prefix(&prefix) else {
            continue;
        };
        let Some((name, key)) = rest.split_once("__") else {
            return Err(err(k, "expected IDENTIFY_BRIDGE__PROVIDERS__{NAME}__{KEY}"));
        };
        by_name
            .entry(name.to_ascii_uppercase())
            .or_default()
            .push((key.to_ascii_lowercase(), v.clone()));
    }
    let norm = |s: &str| s.to_ascii_uppercase().replace('-', "_");
    for (name, keys) in by_name {
        let index = providers.iter().position(|p| {
            p.get("name").and_then(|n| n.as_str()).map(norm).as_deref() == Some(name.as_str())
        });
        let index = match index {
            Some(i) => i,
            None => {
                providers.push(
                    serde_json::json!({ "name": name.to_ascii_lowercase().replace('_', "-") }),
                );
                providers.len() - 1
            }
        };
        let mut entry = Figment::from(Serialized::defaults(providers[index].clone()));
        for (key, value) in keys {
            let path = key.replace("__", ".");
            entry = entry.merge(Serialized::default(&path, env_value(&value)));
        }
        providers[index] = entry.extract().map_err(figment_error)?;
    }
    Ok(providers)
}

/// An environment value as figment reads it: TOML-like scalars and arrays, else a string.
fn env_value(value: &str) -> figment::value::Value {
    value
        .parse()
        .unwrap_or_else(|_| figment::value::Value::from(value.to_string()))
}

fn figment_error(e: figment::Error) -> ConfigError {
    let mut key = e.path.join(".");
    if key.starts_with("default.") {
        key = key["default.".len()..].to_string();
    }
    let what = e.kind.to_string();
    let source = e
        .metadata
        .as_ref()
        .map(|m| format!(" (from {})", m.name))
        .unwrap_or_default();
    if key.is_empty() {
        ConfigError(format!("{what}{source}"))
    } else {
        ConfigError(format!("`{key}`: {what}{source}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(toml.as_bytes()).unwrap();
        Settings::load_with_env(
            Some(file.path()),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    const GOOGLE: &str = r#"
        [server]
        listen = "127.0.0.1:9000"
        public_url = "https://login.example.com"
        [[providers]]
        name = "google"
        kind = "google"
        client_id = "abc"
        client_secret = "s3cret"
    "#;

    #[test]
    fn a_minimal_file_loads_with_defaults() {
        let s = load(GOOGLE, &[]).unwrap();
        assert_eq!(s.server.listen.port(), 9000);
        assert_eq!(s.providers[0].scopes, vec!["openid", "profile", "email"]);
        assert_eq!(s.session.login_timeout_secs, 600);
    }

    #[test]
    fn environment_overrides_plain_keys_and_providers_by_name() {
        let s = load(
            GOOGLE,
            &[
                ("IDENTIFY_BRIDGE__SERVER__LISTEN", "0.0.0.0:7000"),
                (
                    "IDENTIFY_BRIDGE__PROVIDERS__GOOGLE__CLIENT_SECRET",
                    "from-env",
                ),
                ("IDENTIFY_BRIDGE__PROVIDERS__MY_OKTA__KIND", "okta"),
                (
                    "IDENTIFY_BRIDGE__PROVIDERS__MY_OKTA__DOMAIN",
                    "acme.okta.com",
                ),
                ("IDENTIFY_BRIDGE__PROVIDERS__MY_OKTA__CLIENT_ID", "0oa1"),
                ("IDENTIFY_BRIDGE__PROVIDERS__MY_OKTA__CLIENT_SECRET", "x"),
            ],
        )
        .unwrap();
        assert_eq!(s.server.listen.port(), 7000);
        assert_eq!(s.providers[0].secret().unwrap().expose(), "from-env");
        assert_eq!(s.providers[1].name, "my-okta");
        assert_eq!(s.providers[1].kind, ProviderKind::Okta);
    }

    #[test]
    fn errors_name_the_key() {
        let e = load(&GOOGLE.replace("127.0.0.1:9000", "nonsense"), &[]).unwrap_err();
        assert!(e.to_string().contains("server.listen"), "{e}");
        let e = load(&GOOGLE.replace("client_secret = \"s3cret\"", ""), &[]).unwrap_err();
        assert!(
            e.to_string()
                .contains("providers[0] (google).client_secret"),
            "{e}"
        );
        let e = load(
            &GOOGLE.replace("name = \"google\"", "name = \"go/ogle\""),
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("providers[0].name"), "{e}");
        let e = load(
            &format!("{GOOGLE}\n[providers.traits]\nenrichment_shoe_size = \"/shoe\"\n"),
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("providers[0] (google).traits")
                && e.to_string().contains("enrichment_shoe_size"),
            "{e}"
        );
        let e = load(&format!("{GOOGLE}\nsurprise = 1\n"), &[]).unwrap_err();
        assert!(e.to_string().contains("surprise"), "{e}");
        let e = load(
            r#"[[providers]]
            name = "ms"
            kind = "microsoft"
            client_id = "a"
            client_secret = "b""#,
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("providers[0] (ms).tenant"), "{e}");
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let mut secret = tempfile::NamedTempFile::new().unwrap();
        writeln!(secret, "file-secret").unwrap();
        let toml = GOOGLE.replace(
            "client_secret = \"s3cret\"",
            &format!("client_secret_file = {:?}", secret.path()),
        );
        let s = load(&toml, &[]).unwrap();
        assert_eq!(s.providers[0].secret().unwrap().expose(), "file-secret");
        let printed = s.to_redacted_json();
        assert!(!printed.contains("file-secret"), "{printed}");
        assert!(!format!("{s:?}").contains("file-secret"));
    }

    #[test]
    fn the_okta_users_api_needs_the_org_server_and_adds_its_scope() {
        let org = "[[providers]]\nname = \"okta\"\nkind = \"okta\"\ndomain = \"acme.okta.com\"\nclient_id = \"c\"\nclient_secret = \"s\"\nusers_api = true\n";
        let s = load(org, &[]).unwrap();
        assert!(s.providers[0]
            .effective_scopes()
            .contains(&OKTA_USERS_SCOPE.to_string()));
        let custom = format!("{org}authorization_server = \"default\"\n");
        let e = load(&custom, &[]).unwrap_err().to_string();
        assert!(
            e.contains("providers[0] (okta).users_api") && e.contains("org authorization server"),
            "{e}"
        );
        let google = GOOGLE.replace("[[providers]]\n", "[[providers]]\nusers_api = true\n");
        let e = load(&google, &[]).unwrap_err().to_string();
        assert!(e.contains("only for kind = \"okta\""), "{e}");
    }

    #[test]
    fn dozens_of_providers_load() {
        let mut toml = String::new();
        for i in 0..40 {
            toml.push_str(&format!(
                "[[providers]]\nname = \"tenant-{i}\"\nkind = \"okta\"\ndomain = \"t{i}.okta.com\"\nclient_id = \"c{i}\"\nclient_secret = \"s{i}\"\n"
            ));
        }
        let s = load(
            &toml,
            &[(
                "IDENTIFY_BRIDGE__PROVIDERS__TENANT_7__CLIENT_SECRET",
                "env-secret",
            )],
        )
        .unwrap();
        assert_eq!(s.providers.len(), 40);
        assert_eq!(s.providers[7].secret().unwrap().expose(), "env-secret");
        let e = load(
            &format!(
                "{toml}{}",
                toml.lines().take(6).collect::<Vec<_>>().join("\n")
            ),
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("another provider has this name"),
            "{e}"
        );
    }

    #[test]
    fn return_origins_must_be_bare_origins() {
        assert_eq!(
            parse_origin("https://app.example.com").unwrap(),
            "https://app.example.com"
        );
        assert!(parse_origin("https://app.example.com/path").is_err());
        assert!(parse_origin("javascript:alert(1)").is_err());
    }
}
