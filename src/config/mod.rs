//! The typed settings tree: the TOML file, then `IDENTIFY_BRIDGE__…` variables, checked against
//! the JSON Schema generated from these types, typed, then validated with messages naming the
//! key (`providers[0] (google).client_secret`).
//!
//! Every key has one environment name: the path in upper case joined by `__`, under the prefix
//! `IDENTIFY_BRIDGE__` (`server.listen` → `IDENTIFY_BRIDGE__SERVER__LISTEN`). Providers and
//! sinks are lists in TOML, so in the environment they are addressed by name:
//! `IDENTIFY_BRIDGE__PROVIDERS__{NAME}__{KEY}` (name upper-cased, `-` written as `_`); a name
//! that is not in the file adds one.
//!
//! - `load`: layering, the key check against the schema, typing errors with their key.
//! - `validate`: the rules the types cannot express.
//! - `server` (`[server]`, `[rate_limit]`, `[admin]`, `[accounts]`), `runtime` (`[session]`,
//!   `[database]`, `[log]`), `providers` (`[[providers]]`, tagged by `kind`), `kinds` (what
//!   configuration asks of a kind of provider; the kinds are handed in by the caller), `sinks`
//!   (`[[sinks]]`), `identify_api` (`[identify_api]`), `telemetry` (`[telemetry]`).
//! - `auth_request` (`[auth_request]`): the headers `GET /auth` answers with.
//! - `retention` (`[retention]`): how long rows that only grow are kept.
//! - `client_key`: the `private_key_jwt` key and certificate, read and parsed at load time.
//! - `pointers`: the `[providers.traits]` pointers and the sources they read.
//! - `secret`, `trait_names`, `suggest`: what the others share.
//!
//! Configuration imports nothing from the features it configures.

mod auth_request;
mod client_key;
mod identify_api;
mod kinds;
mod load;
mod pointers;
mod providers;
mod retention;
mod runtime;
mod secret;
mod server;
mod sinks;
mod suggest;
mod telemetry;
mod trait_names;
mod validate;

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use auth_request::AuthRequestSettings;
pub use client_key::{certificate_thumbprint, ClientKey, KeyPart};
pub use identify_api::{Credential, IdentifyApiSettings};
pub use kinds::{
    domain_names, http_url, KindConfig, KindError, KindSettings, KindSpec, Kinds, SettingsKind,
};
pub use pointers::{PointerSource, Pointers, SourcedPointer};
pub use providers::{ProviderSettings, TokenAuthMethod};
pub use retention::RetentionSettings;
pub use runtime::{DatabaseSettings, LogFormat, LogSettings, SessionSettings, SessionStoreKind};
pub use secret::Secret;
pub use server::{
    AccountSettings, AdminSettings, Origin, RateLimitSettings, ServerSettings,
    DEFAULT_MAX_TOKEN_BYTES,
};
pub use sinks::{signing_key, SinkFormat, SinkSettings, SinkTokenSettings, TimestampRule};
pub use telemetry::TelemetrySettings;
pub use trait_names::{custom_trait_problem, is_trait_name, RESERVED_TRAIT_NAMES, TRAIT_NAMES};

use load::Seg;

/// Environment prefix for every key.
pub const ENV_PREFIX: &str = "IDENTIFY_BRIDGE__";

/// The whole configuration, after validation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "identify-bridge configuration")]
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
    /// `[[providers]]`: where people sign in.
    #[serde(default)]
    pub providers: Vec<ProviderSettings>,
    /// `[[sinks]]`: where identify calls go.
    #[serde(default)]
    pub sinks: Vec<SinkSettings>,
    /// `[identify_api]`: serve `POST /api/identify`; absent means "not configured" (503).
    #[serde(default)]
    pub identify_api: Option<IdentifyApiSettings>,
    /// `[telemetry]`: traces over OTLP; off unless `otlp_endpoint` is set.
    #[serde(default)]
    pub telemetry: TelemetrySettings,
    /// `[auth_request]`: the headers `GET /auth` answers a reverse proxy with.
    #[serde(default)]
    pub auth_request: AuthRequestSettings,
    /// `[retention]`: how long call logs, delivered messages and dead letters are kept.
    #[serde(default)]
    pub retention: RetentionSettings,
}

/// A configuration error: one line naming the key, what is wrong, and where the value came
/// from when a variable set it.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {}", self.text())]
pub struct ConfigError {
    key: Option<String>,
    what: String,
    origin: Option<String>,
}

impl ConfigError {
    /// An error about the key `key` (in display form: `providers[0] (google).client_secret`).
    pub fn at(key: impl Into<String>, what: impl Into<String>) -> Self {
        ConfigError {
            key: Some(key.into()),
            what: what.into(),
            origin: None,
        }
    }
    /// An error about no one key (an unreadable file).
    pub fn plain(what: impl Into<String>) -> Self {
        ConfigError {
            key: None,
            what: what.into(),
            origin: None,
        }
    }
    /// The key the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
    fn text(&self) -> String {
        let origin = self
            .origin
            .as_ref()
            .map(|o| format!(" ({o})"))
            .unwrap_or_default();
        match &self.key {
            Some(key) => format!("`{key}`: {}{origin}", self.what),
            None => format!("{}{origin}", self.what),
        }
    }
}

impl Settings {
    /// The custom traits (names outside the 25) that some provider's `[providers.traits]`
    /// maps, sorted, each once.
    pub fn custom_trait_names(&self) -> Vec<&str> {
        let names: std::collections::BTreeSet<&str> = self
            .providers
            .iter()
            .flat_map(|p| p.traits.keys())
            .map(String::as_str)
            .filter(|name| !is_trait_name(name))
            .collect();
        names.into_iter().collect()
    }

    /// Load from an optional TOML file, then the environment, then validate. `kinds` are the
    /// kinds of provider there are (`providers::KINDS`).
    pub fn load(file: Option<&Path>, kinds: &dyn Kinds) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, std::env::vars(), kinds)
    }

    /// Same as [`Settings::load`] with an explicit environment (tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        kinds: &dyn Kinds,
    ) -> Result<Settings, ConfigError> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::plain(format!(
                    "configuration file {} does not exist",
                    path.display()
                )));
            }
        }
        let schema = Self::schema(kinds);
        let layers = load::layers(file, &env, &schema)?;
        let walker = load::Walker::new(&schema);
        let annotate = |mut error: ConfigError, path: Option<&[Seg]>| {
            error.origin = origin_note(&layers, error.key.as_deref(), path);
            error
        };
        if let Err(problem) = walker.check(&layers.value) {
            let key = load::key_text(&layers.value, &problem.path);
            let from_env = layers.from_env.get(&problem.path);
            let mut what = problem.what;
            if let Some(near) = &problem.nearest {
                let near_key = load::key_text(&layers.value, near);
                what = match from_env {
                    Some(_) => format!(
                        "did you mean `{near_key}` ({})? {what}",
                        load::env_var_for(&layers.value, near)
                    ),
                    None => format!("did you mean `{near_key}`? {what}"),
                };
            }
            return Err(annotate(ConfigError::at(key, what), Some(&problem.path)));
        }
        let typed = load::deserialize(&layers.value).and_then(|mut settings| {
            type_kinds(&mut settings, &walker, &layers.value, kinds)?;
            Ok(settings)
        });
        let mut settings = match typed {
            Ok(settings) => settings,
            Err((path, message)) => {
                let key = load::key_text(&layers.value, &path);
                return Err(annotate(ConfigError::at(key, message), Some(&path)));
            }
        };
        settings
            .resolve_secret_files()
            .and_then(|()| settings.validate())
            .and_then(|()| settings.load_client_keys())
            .map_err(|e| annotate(e, None))?;
        Ok(settings)
    }

    /// The rules of `serve` beyond [`Settings::validate`]: `admin.open` turns admin
    /// authentication off, which is for `identify-bridge dev` only.
    pub fn check_for_serve(&self) -> Result<(), ConfigError> {
        if self.admin.open {
            return Err(ConfigError::at(
                "admin.open",
                "turns admin authentication off; it is for `identify-bridge dev` only. \
                 Remove it and set admin.api_key_hashes instead",
            ));
        }
        Ok(())
    }

    /// The JSON Schema of the configuration file, generated from these types and each kind's
    /// settings (`check-config --schema`): a `[[providers]]` entry is one of the kinds.
    pub fn schema(kinds: &dyn Kinds) -> Value {
        let mut generator = schemars::SchemaGenerator::default();
        let variants: Vec<Value> = kinds
            .specs()
            .into_iter()
            .map(|spec| kinds::variant_schema(spec, &mut generator))
            .collect();
        let mut schema = generator.into_root_schema_for::<Settings>().to_value();
        if let Some(entry) = schema
            .pointer_mut("/$defs/ProviderSettings")
            .and_then(Value::as_object_mut)
        {
            entry.insert("oneOf".into(), Value::Array(variants));
        }
        schema
    }

    /// The resolved configuration as JSON, secrets redacted (`check-config`).
    pub fn to_redacted_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("<unprintable: {e}>"))
    }

    /// Every key the configuration has (`server.listen`, `providers.tenant`, …).
    pub fn all_keys(kinds: &dyn Kinds) -> Vec<String> {
        let schema = Self::schema(kinds);
        load::Walker::new(&schema).all_keys()
    }
}

/// Where a wrong value came from, when a variable set it, or which variable would set a
/// missing key of an entry the environment made.
fn origin_note(layers: &load::Layers, key: Option<&str>, path: Option<&[Seg]>) -> Option<String> {
    if let Some(var) = path.and_then(|p| layers.from_env.get(p)) {
        return Some(format!("from {var}"));
    }
    let key = key?;
    layers
        .from_env
        .iter()
        .find(|(p, _)| load::key_text(&layers.value, p) == key)
        .map(|(_, var)| format!("from {var}"))
}

/// The second step of typing: each provider's own keys, by its kind (the key check has
/// made sure every entry names a known kind).
fn type_kinds(
    settings: &mut Settings,
    walker: &load::Walker,
    root: &Value,
    kinds: &dyn Kinds,
) -> Result<(), (Vec<Seg>, String)> {
    let entries = root.get("providers").and_then(Value::as_array);
    for (i, (entry, provider)) in entries
        .into_iter()
        .flatten()
        .zip(&mut settings.providers)
        .enumerate()
    {
        let at = |inner: Vec<Seg>| {
            let mut path = vec![Seg::Key("providers".into()), Seg::Index(i)];
            path.extend(inner);
            path
        };
        let name = entry
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(spec) = kinds.find(name) else {
            return Err((
                at(vec![Seg::Key("kind".into())]),
                format!("{name:?} is not a kind"),
            ));
        };
        let keys = load::kind_keys_of(walker, entry, name);
        provider.kind = spec.parse(&keys).map_err(|e| {
            let (mut inner, mut message) = load::path_and_message(e);
            if let Some(field) = load::split_missing(&message) {
                inner.push(Seg::Key(field.to_string()));
                message = format!("missing: required for kind = \"{name}\"");
            }
            (at(inner), message)
        })?;
    }
    Ok(())
}

/// Loading a TOML text in tests, here and in `providers/` (with the kinds).
#[cfg(test)]
pub(crate) mod testing {
    use std::io::Write;

    use super::{ConfigError, Kinds, Settings};

    /// `toml` with the variables `env`, read with `kinds`.
    pub fn load(
        toml: &str,
        env: &[(&str, &str)],
        kinds: &dyn Kinds,
    ) -> Result<Settings, ConfigError> {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(toml.as_bytes()).unwrap();
        Settings::load_with_env(
            Some(file.path()),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            kinds,
        )
    }

    /// The error loading `toml` gives, checked to name no Rust type.
    pub fn load_err(toml: &str, env: &[(&str, &str)], kinds: &dyn Kinds) -> String {
        let e = load(toml, env, kinds).unwrap_err().to_string();
        for internal in ["alloc::", "figment", "serde_json::", "Value)", "::"] {
            assert!(!e.contains(internal), "a Rust type name in {e:?}");
        }
        e
    }
}

#[cfg(test)]
mod tests;
