//! The rules the types cannot express, each with a message naming the key.

use std::collections::HashSet;

use super::client_key::{ClientKey, KeyPart};
use super::kinds::{domain_names, KindSettings};
use super::pointers::{PointerSource, SourcedPointer};
use super::secret::{resolve_secret, resolve_secret_list};
use super::trait_names::{custom_trait_problem, is_trait_name, nearest_trait_name, TRAIT_NAMES};
use super::{
    ConfigError, ProviderSettings, SessionStoreKind, Settings, SinkFormat, TokenAuthMethod,
};

fn err(key: impl Into<String>, what: impl Into<String>) -> ConfigError {
    ConfigError::at(key, what)
}

/// `providers[0] (google)`: how messages name a provider.
pub(super) fn provider_key(index: usize, provider: &ProviderSettings) -> String {
    format!("providers[{index}] ({})", provider.name)
}

impl Settings {
    pub(super) fn resolve_secret_files(&mut self) -> Result<(), ConfigError> {
        for (i, p) in self.providers.iter_mut().enumerate() {
            let key = format!("providers[{i}] ({}).client_secret", p.name);
            resolve_secret(&mut p.client_secret, p.client_secret_file.as_deref(), &key)?;
        }
        let session = &mut self.session;
        resolve_secret(
            &mut session.secret,
            session.secret_file.as_deref(),
            "session.secret",
        )?;
        resolve_secret(
            &mut session.redis_url,
            session.redis_url_file.as_deref(),
            "session.redis_url",
        )?;
        // `database.url` always has a value (the SQLite default): only one set on purpose
        // conflicts with the file.
        let database = &mut self.database;
        let default_url = super::DatabaseSettings::default().url;
        let mut url = (database.url.expose() != default_url.expose()).then(|| database.url.clone());
        resolve_secret(&mut url, database.url_file.as_deref(), "database.url")?;
        if let Some(url) = url {
            database.url = url;
        }
        for (i, sink) in self.sinks.iter_mut().enumerate() {
            let key = format!("sinks[{i}] ({})", sink.name);
            resolve_secret(
                &mut sink.api_key,
                sink.api_key_file.as_deref(),
                &format!("{key}.api_key"),
            )?;
            resolve_secret(
                &mut sink.bearer_token,
                sink.bearer_token_file.as_deref(),
                &format!("{key}.bearer_token"),
            )?;
            resolve_secret_list(
                &mut sink.signing_secrets,
                sink.signing_secrets_file.as_deref(),
                &format!("{key}.signing_secrets"),
            )?;
            if let Some(token) = sink.token.as_mut() {
                resolve_secret(
                    &mut token.client_secret,
                    token.client_secret_file.as_deref(),
                    &format!("{key}.token.client_secret"),
                )?;
            }
        }
        Ok(())
    }

    /// Read each `private_key_jwt` provider's key (and certificate): an unreadable or unusable
    /// file stops start-up with a message naming its key.
    pub(super) fn load_client_keys(&mut self) -> Result<(), ConfigError> {
        for (i, p) in self.providers.iter_mut().enumerate() {
            if p.token_auth_method != Some(TokenAuthMethod::PrivateKeyJwt) {
                continue;
            }
            let key = provider_key(i, p);
            let Some(file) = p.private_key_file.as_deref() else {
                continue; // refused by `validate`
            };
            let loaded = ClientKey::load_files(
                file,
                p.private_key_id.as_deref(),
                p.certificate_file.as_deref(),
            )
            .map_err(|(part, message)| {
                let field = match part {
                    KeyPart::Key => "private_key_file",
                    KeyPart::Certificate => "certificate_file",
                };
                err(format!("{key}.{field}"), message)
            })?;
            p.client_key = Some(loaded);
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
        for (key, value) in [
            (
                "session.login_timeout_secs",
                self.session.login_timeout_secs,
            ),
            (
                "server.provider_check_secs",
                self.server.provider_check_secs,
            ),
            (
                "server.provider_timeout_secs",
                self.server.provider_timeout_secs,
            ),
            (
                "server.max_token_response_bytes",
                self.server.max_token_response_bytes as u64,
            ),
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            ("server.idle_timeout_secs", self.server.idle_timeout_secs),
            (
                "server.body_read_timeout_secs",
                self.server.body_read_timeout_secs,
            ),
            ("server.max_connections", self.server.max_connections as u64),
        ] {
            if value == 0 {
                return Err(err(key, "must be at least 1"));
            }
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
            if !is_sha256_hex(h) {
                return Err(err(
                    format!("admin.api_key_hashes[{i}]"),
                    "must be 64 hex digits (a SHA-256)",
                ));
            }
        }
        if let Some(api) = &self.identify_api {
            api.validate().map_err(|(key, what)| err(key, what))?;
        }
        self.telemetry
            .validate()
            .map_err(|(key, what)| err(key, what))?;
        self.retention
            .validate()
            .map_err(|(key, what)| err(key, what))?;
        let custom = self.custom_trait_names();
        self.auth_request
            .validate(|name| is_trait_name(name) || custom.contains(&name))
            .map_err(|(key, what)| err(key, what))?;
        self.validate_providers()
    }

    fn validate_providers(&self) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            if p.name.is_empty()
                || p.name.len() > 64
                || !p
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(err(
                    format!("providers[{i}].name"),
                    format!("{:?} must be 1 to 64 letters, digits, `-` or `_`", p.name),
                ));
            }
            let key = provider_key(i, p);
            if !seen.insert(p.name.to_ascii_lowercase()) {
                return Err(err(format!("{key}.name"), "another provider has this name"));
            }
            if p.client_id.trim().is_empty() {
                return Err(err(format!("{key}.client_id"), "must not be empty"));
            }
            validate_client_auth(&key, p)?;
            if !p.scopes.iter().any(|s| s == "openid") {
                return Err(err(format!("{key}.scopes"), "must include \"openid\""));
            }
            p.kind.settings().validate(&key)?;
            validate_trait_mapping(&format!("{key}.traits"), p)?;
            validate_access_policy(&key, p)?;
        }
        Ok(())
    }

    fn validate_sinks(&self) -> Result<(), ConfigError> {
        let mut seen = HashSet::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            if sink.name.is_empty()
                || sink.name.len() > 64
                || !sink
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(err(
                    format!("sinks[{i}].name"),
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
            if sink.format == SinkFormat::Webhook && sink.api_key.is_some() {
                return Err(err(
                    format!("{key}.api_key"),
                    "the webhook format sends no API key: sign with signing_secrets, or use bearer_token or [sinks.token]",
                ));
            }
            if sink.format == SinkFormat::Webhook && sink.timestamp.is_some() {
                return Err(err(
                    format!("{key}.timestamp"),
                    "the webhook format sends both times (`time` and `created_at`)",
                ));
            }
            for (j, secret) in sink.signing_secrets.iter().enumerate() {
                super::sinks::signing_key(secret.expose())
                    .map_err(|why| err(format!("{key}.signing_secrets[{j}]"), why))?;
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
                for (j, name) in names.iter().enumerate() {
                    let custom = self.providers.iter().any(|p| p.traits.contains_key(name));
                    if !is_trait_name(name) && !custom && name != "email" && name != "name" {
                        let mut known = vec!["email", "name"];
                        known.extend(self.custom_trait_names());
                        return Err(err(
                            format!("{key}.{field}[{j}]"),
                            unknown_trait(name, &known),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// "unknown trait …; did you mean …? known traits: (all of them)".
fn unknown_trait(name: &str, extra: &[&str]) -> String {
    let hint = nearest_trait_name(name)
        .map(|n| format!("did you mean {n:?}? "))
        .unwrap_or_default();
    let known: Vec<&str> = extra.iter().copied().chain(TRAIT_NAMES).collect();
    format!(
        "unknown trait {name:?}; {hint}known traits: {}",
        known.join(", ")
    )
}

fn validate_client_auth(key: &str, p: &ProviderSettings) -> Result<(), ConfigError> {
    if p.token_auth_method == Some(TokenAuthMethod::PrivateKeyJwt) {
        if p.private_key_file.is_none() {
            return Err(err(
                format!("{key}.private_key_file"),
                "required with token_auth_method = \"private_key_jwt\"",
            ));
        }
        if p.client_secret.is_some() {
            return Err(err(
                format!("{key}.client_secret"),
                "not used with token_auth_method = \"private_key_jwt\": remove it",
            ));
        }
        return Ok(());
    }
    for (field, set) in [
        ("private_key_file", p.private_key_file.is_some()),
        ("private_key_id", p.private_key_id.is_some()),
        ("certificate_file", p.certificate_file.is_some()),
    ] {
        if set {
            return Err(err(
                format!("{key}.{field}"),
                "only used with token_auth_method = \"private_key_jwt\"",
            ));
        }
    }
    if p.client_secret.as_ref().is_none_or(|s| s.is_blank()) {
        return Err(err(
            format!("{key}.client_secret"),
            "missing: set client_secret, client_secret_file or the environment variable",
        ));
    }
    Ok(())
}

/// `[providers.traits]`: one of the 25 traits or a custom name the Identify API accepts, and
/// RFC 6901 pointers into a source this provider reads.
fn validate_trait_mapping(key: &str, p: &ProviderSettings) -> Result<(), ConfigError> {
    for (name, pointers) in &p.traits {
        if !is_trait_name(name) {
            if let Some(problem) = custom_trait_problem(name) {
                return Err(err(format!("{key}.{name}"), problem));
            }
        }
        if pointers.0.is_empty() {
            return Err(err(format!("{key}.{name}"), "no claim path given"));
        }
        for text in &pointers.0 {
            let sourced =
                SourcedPointer::parse(text).map_err(|e| err(format!("{key}.{name}"), e))?;
            if !is_json_pointer(sourced.pointer) {
                return Err(err(
                    format!("{key}.{name}"),
                    format!(
                        "`{text}` is not a JSON Pointer (RFC 6901): it must be empty or start \
                         with '/', and '~' must be followed by 0 or 1"
                    ),
                ));
            }
            if let Some(missing) = source_unavailable(sourced.source, p.kind.settings()) {
                return Err(err(format!("{key}.{name}"), format!("`{text}` {missing}")));
            }
        }
    }
    Ok(())
}

/// `allowed_email_domains`: plain domain names; `required_groups`: non-empty names.
fn validate_access_policy(key: &str, p: &ProviderSettings) -> Result<(), ConfigError> {
    domain_names(key, "allowed_email_domains", &p.allowed_email_domains)?;
    for (j, group) in p.required_groups.iter().enumerate() {
        if group.trim().is_empty() {
            return Err(err(
                format!("{key}.required_groups[{j}]"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

/// Why this provider never reads `source`, if it does not.
fn source_unavailable(source: PointerSource, kind: &dyn KindSettings) -> Option<&'static str> {
    match source {
        PointerSource::Claims => None,
        _ if kind.reads(source) => None,
        PointerSource::UsersApi => {
            Some("reads the Okta Users API: it needs kind = \"okta\" with users_api = true")
        }
        _ => Some("reads Microsoft Graph: it needs kind = \"microsoft\" with graph = true"),
    }
}

fn is_json_pointer(pointer: &str) -> bool {
    if !(pointer.is_empty() || pointer.starts_with('/')) {
        return false;
    }
    let mut chars = pointer.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}
