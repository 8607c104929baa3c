//! `[[providers]]`: the keys every provider has. Each kind's own keys live in the kind's file
//! under `providers/` ([`KindSettings`](super::KindSettings)); here they are a
//! [`KindConfig`], typed by the kind when the configuration is loaded. Nothing in `config/`
//! names a kind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::client_key::ClientKey;
use super::kinds::KindConfig;
use super::pointers::Pointers;
use super::Secret;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// The client id and secret in the form body.
    ClientSecretPost,
    /// An RFC 7523 client assertion signed with `private_key_file` (no client secret).
    PrivateKeyJwt,
}

impl TokenAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenAuthMethod::ClientSecretPost => "client_secret_post",
            TokenAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// One `[[providers]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProviderSettings {
    /// URL segment: `/login/{name}`, `/callback/{name}`.
    pub name: String,
    /// Button label on the sign-in page; defaults from the kind.
    #[serde(default)]
    pub display_name: Option<String>,
    pub client_id: String,
    /// The client secret (or `client_secret_file`); not used with `private_key_jwt`.
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// A file holding the client secret (a trailing newline is ignored).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes to request; must include `openid`. The kind adds what its options need.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// `client_secret_basic`, `client_secret_post` or `private_key_jwt`. Unset: chosen from
    /// the provider's discovery document (`client_secret_basic` when listed, else
    /// `client_secret_post`).
    #[serde(default)]
    pub token_auth_method: Option<TokenAuthMethod>,
    /// `private_key_jwt`: a PEM file with the RSA (RS256) or P-256 (ES256) private key that
    /// signs the client assertion.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// `private_key_jwt`: the `kid` header of the client assertion (the key id registered
    /// with the provider).
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// `private_key_jwt`: a PEM certificate for the key; its SHA-256 thumbprint goes in the
    /// `x5t#S256` header (Microsoft's certificate credentials).
    #[serde(default)]
    pub certificate_file: Option<PathBuf>,
    /// The key read from `private_key_file` (and `certificate_file`) at load time.
    #[serde(skip)]
    pub client_key: Option<ClientKey>,
    /// Ask for a refresh token (offline access: the `offline_access` scope, Google's
    /// `access_type=offline`) while sessions are re-validated (`session.revalidate_secs` > 0).
    /// `false`: re-validation calls userinfo while the access token lasts; for an app without
    /// the Refresh Token grant (Okta), whose provider refuses the scope.
    #[serde(default = "default_true")]
    pub refresh_tokens: bool,
    /// Trait name (one of the 25, or a custom name) → JSON Pointers into the merged claims or
    /// the provider's API (`graph:/…`, `users_api:/…`); the first non-empty value wins.
    #[serde(default)]
    pub traits: BTreeMap<String, Pointers>,
    /// Only accounts whose provider-verified email is at one of these domains may sign in
    /// (exact domain, case-insensitive); empty: any.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// Only accounts in at least one of these groups (the `groups` claim; Entra group ids,
    /// read from Graph on a group overage) may sign in; empty: any.
    #[serde(default)]
    pub required_groups: Vec<String>,
    /// The kind (`kind = "okta"`) and its own keys, typed by the kind when the configuration
    /// is loaded (the schema lists them per kind: `Settings::schema`).
    #[serde(flatten, skip_deserializing)]
    #[schemars(skip)]
    pub kind: KindConfig,
}

fn default_true() -> bool {
    true
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

impl ProviderSettings {
    /// The `kind` value: `google`, `okta`, …
    pub fn kind_name(&self) -> &'static str {
        self.kind.name()
    }

    /// The client secret, from `client_secret` or `client_secret_file` (resolved at load time).
    pub fn secret(&self) -> Option<&Secret> {
        self.client_secret.as_ref()
    }

    /// The configured trait mapping: trait name → pointers, tried in order.
    pub fn trait_mapping(&self) -> BTreeMap<String, Vec<String>> {
        self.traits
            .iter()
            .map(|(name, pointers)| (name.clone(), pointers.0.clone()))
            .collect()
    }
}
