//! `[[providers]]`: the keys every provider has, and each kind's own keys with their rules.
//! The kind is the tag, so a key of another kind is an error when the file is read, not a
//! surprise later. A new kind is its settings struct here, one variant in [`ProviderKind`]
//! and [`KindSettings`] (and their matches below); nothing else in `config/` names a kind.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;
use uuid::Uuid;

use super::client_key::ClientKey;
use super::{ConfigError, Secret};

/// Which family a configured provider belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Google,
    Microsoft,
    Okta,
    Oidc,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::Google,
        ProviderKind::Microsoft,
        ProviderKind::Okta,
        ProviderKind::Oidc,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Google => "google",
            ProviderKind::Microsoft => "microsoft",
            ProviderKind::Okta => "okta",
            ProviderKind::Oidc => "oidc",
        }
    }
}

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
    /// The kind and its own keys.
    #[serde(flatten)]
    pub kind: KindSettings,
}

/// The kind-specific keys of a provider, tagged by `kind`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum KindSettings {
    Google(GoogleSettings),
    Microsoft(MicrosoftSettings),
    Okta(OktaSettings),
    Oidc(OidcSettings),
}

impl KindSettings {
    pub fn kind(&self) -> ProviderKind {
        match self {
            KindSettings::Google(_) => ProviderKind::Google,
            KindSettings::Microsoft(_) => ProviderKind::Microsoft,
            KindSettings::Okta(_) => ProviderKind::Okta,
            KindSettings::Oidc(_) => ProviderKind::Oidc,
        }
    }

    /// The kind's own rules; `key` names the provider (`providers[0] (okta)`).
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        match self {
            KindSettings::Google(google) => google.validate(key),
            KindSettings::Microsoft(ms) => ms.validate(key),
            KindSettings::Okta(okta) => okta.validate(key),
            KindSettings::Oidc(oidc) => oidc.validate(key),
        }
    }
}

impl ProviderKind {
    /// Type a provider's kind keys alone as this kind's settings, for the key of a typing
    /// error (read through the flattened, tagged [`KindSettings`] the key is lost).
    pub(super) fn read_own_keys(
        self,
        keys: &serde_json::Value,
    ) -> Result<(), serde_path_to_error::Error<serde_json::Error>> {
        fn read<T: serde::de::DeserializeOwned>(
            keys: &serde_json::Value,
        ) -> Result<(), serde_path_to_error::Error<serde_json::Error>> {
            serde_path_to_error::deserialize::<_, T>(keys).map(|_| ())
        }
        match self {
            ProviderKind::Google => read::<GoogleSettings>(keys),
            ProviderKind::Microsoft => read::<MicrosoftSettings>(keys),
            ProviderKind::Okta => read::<OktaSettings>(keys),
            ProviderKind::Oidc => read::<OidcSettings>(keys),
        }
    }
}

/// `{key}.{field}` must be an http(s) URL.
fn http_url(key: &str, field: &str, url: &Url) -> Result<(), ConfigError> {
    if matches!(url.scheme(), "http" | "https") {
        Ok(())
    } else {
        Err(ConfigError::at(
            format!("{key}.{field}"),
            "must be an http(s) URL",
        ))
    }
}

/// `kind = "google"`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleSettings {
    /// Overrides Google's issuer (`https://accounts.google.com`), e.g. for a test provider.
    #[serde(default)]
    pub issuer: Option<Url>,
    /// Only Google Workspace accounts of these domains (`hd` in the ID token) may sign in;
    /// empty: any account, personal ones too.
    #[serde(default)]
    pub allowed_hosted_domains: Vec<String>,
}

impl GoogleSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        match &self.issuer {
            Some(issuer) => http_url(key, "issuer", issuer),
            None => Ok(()),
        }
    }
}

/// `kind = "microsoft"` (Entra ID).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MicrosoftSettings {
    /// `common`, `organizations`, `consumers`, a tenant id or a domain.
    pub tenant: String,
    /// Tenant ids (GUIDs) allowed to sign in; empty: any the `tenant` admits.
    #[serde(default)]
    pub allowed_tenants: Vec<Uuid>,
    /// The login host.
    #[serde(default = "default_authority")]
    pub authority: Url,
    /// Overrides the issuer built from `authority` and `tenant`.
    #[serde(default)]
    pub issuer: Option<Url>,
    /// Call Microsoft Graph for more traits (adds the `User.Read` scope).
    #[serde(default)]
    pub graph: bool,
    /// The Graph API base.
    #[serde(default = "default_graph_url")]
    pub graph_url: Url,
}

impl MicrosoftSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let tenant = self.tenant.as_str();
        if tenant.is_empty()
            || !tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(ConfigError::at(
                format!("{key}.tenant"),
                "common, organizations, consumers, a tenant id or a domain",
            ));
        }
        http_url(key, "authority", &self.authority)?;
        http_url(key, "graph_url", &self.graph_url)?;
        match &self.issuer {
            Some(issuer) => http_url(key, "issuer", issuer),
            None => Ok(()),
        }
    }
}

/// `kind = "okta"`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OktaSettings {
    /// The org domain, e.g. `acme.okta.com` (a full `https://…` URL is accepted too). Required
    /// unless `issuer` is set.
    #[serde(default)]
    pub domain: Option<OktaDomain>,
    /// A custom authorization server id, e.g. `default`; none means the org server.
    #[serde(default)]
    pub authorization_server: Option<String>,
    /// Call the Users API (`GET https://{domain}/api/v1/users/me`) for the account's `created`
    /// time, status and profile (adds the `okta.users.read.self` scope; org server only).
    #[serde(default)]
    pub users_api: bool,
    /// Overrides the issuer built from `domain` and `authorization_server`.
    #[serde(default)]
    pub issuer: Option<Url>,
}

impl OktaSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            http_url(key, "issuer", issuer)?;
        } else if self.domain.is_none() {
            return Err(ConfigError::at(
                format!("{key}.domain"),
                "missing: required for kind = \"okta\" (or set issuer)",
            ));
        }
        if self.users_api {
            if self.domain.is_none() {
                return Err(ConfigError::at(
                    format!("{key}.domain"),
                    "required with users_api = true",
                ));
            }
            if self
                .authorization_server
                .as_deref()
                .is_some_and(|a| !a.is_empty())
            {
                return Err(ConfigError::at(
                    format!("{key}.users_api"),
                    "needs the org authorization server (remove `authorization_server`): \
                     custom authorization servers cannot grant okta.users.read.self",
                ));
            }
        }
        Ok(())
    }
}

/// `kind = "oidc"`: any OpenID provider.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The issuer; discovery is read from `{issuer}/.well-known/openid-configuration`.
    pub issuer: Url,
    /// Count `email_verified = true` as proof of address ownership for account linking.
    #[serde(default)]
    pub trust_email_verified: bool,
}

impl OidcSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        http_url(key, "issuer", &self.issuer)
    }
}

fn default_authority() -> Url {
    Url::parse("https://login.microsoftonline.com").expect("static URL")
}

fn default_graph_url() -> Url {
    Url::parse("https://graph.microsoft.com/v1.0/").expect("static URL")
}

fn default_true() -> bool {
    true
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

/// An Okta org, parsed once: `acme.okta.com` → `https://acme.okta.com`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OktaDomain(Url);

impl OktaDomain {
    /// The org's base URL, without a trailing slash in its text form.
    pub fn url(&self) -> &Url {
        &self.0
    }
    /// `https://acme.okta.com` (no trailing slash).
    pub fn base(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }
}

impl TryFrom<String> for OktaDomain {
    type Error = String;
    fn try_from(domain: String) -> Result<Self, Self::Error> {
        let domain = domain.trim();
        if domain.is_empty() {
            return Err("must not be empty".into());
        }
        let text = if domain.contains("://") {
            domain.to_string()
        } else {
            format!("https://{domain}")
        };
        let url = Url::parse(&text).map_err(|e| format!("{domain:?} is not a domain: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("{domain:?} is not a domain or an http(s) URL"));
        }
        Ok(OktaDomain(url))
    }
}

impl From<OktaDomain> for String {
    fn from(domain: OktaDomain) -> String {
        domain.base().to_string()
    }
}

impl JsonSchema for OktaDomain {
    fn schema_name() -> Cow<'static, str> {
        "OktaDomain".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "description": "acme.okta.com, or a full URL" })
    }
}

/// One JSON Pointer or a list of them (TOML `"/a"` or `["/a", "/b"]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Pointers(pub Vec<String>);

impl<'de> Deserialize<'de> for Pointers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "a JSON Pointer or a list of them")]
        enum Form {
            One(String),
            Many(Vec<String>),
        }
        Ok(Pointers(match Form::deserialize(deserializer)? {
            Form::One(one) => vec![one],
            Form::Many(many) => many,
        }))
    }
}

impl JsonSchema for Pointers {
    fn schema_name() -> Cow<'static, str> {
        "Pointers".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" } }
            ],
            "description": "A JSON Pointer (RFC 6901) into the merged claims, or a list of them."
        })
    }
}

impl ProviderSettings {
    pub fn kind(&self) -> ProviderKind {
        self.kind.kind()
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

/// Where one `[providers.traits]` pointer reads: the merged claims, or the provider's own API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerSource {
    /// `/ptr` or `claims:/ptr`: the ID token merged with userinfo.
    Claims,
    /// `graph:/me/ptr`: Microsoft Graph's user object (`graph = true`).
    GraphMe,
    /// `graph:/organization/ptr`: the tenant (`graph = true`).
    GraphOrganization,
    /// `graph:/groups`: the group ids Graph lists for an Entra group overage (`graph = true`).
    GraphGroups,
    /// `users_api:/ptr`: Okta's `/api/v1/users/me` record (`users_api = true`).
    UsersApi,
}

/// One configured pointer, split into where it reads and the JSON Pointer there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcedPointer<'a> {
    pub source: PointerSource,
    /// A JSON Pointer (RFC 6901) into that source; empty for `graph:/groups`.
    pub pointer: &'a str,
}

impl<'a> SourcedPointer<'a> {
    /// Reads `/ptr`, `claims:/ptr`, `graph:/me/ptr`, `graph:/organization/ptr`,
    /// `graph:/groups` or `users_api:/ptr`. The pointer itself is checked by the caller.
    pub fn parse(text: &'a str) -> Result<SourcedPointer<'a>, String> {
        let at = |source, pointer| Ok(SourcedPointer { source, pointer });
        if let Some(rest) = text.strip_prefix("claims:") {
            return at(PointerSource::Claims, rest);
        }
        if let Some(rest) = text.strip_prefix("users_api:") {
            return at(PointerSource::UsersApi, rest);
        }
        if let Some(rest) = text.strip_prefix("graph:") {
            if rest == "/groups" {
                return at(PointerSource::GraphGroups, "");
            }
            if let Some(pointer) = rest.strip_prefix("/me").filter(|p| p.starts_with('/')) {
                return at(PointerSource::GraphMe, pointer);
            }
            if let Some(pointer) = rest
                .strip_prefix("/organization")
                .filter(|p| p.starts_with('/'))
            {
                return at(PointerSource::GraphOrganization, pointer);
            }
            return Err(format!(
                "`{text}`: a Graph source is `graph:/me/…`, `graph:/organization/…` or \
                 `graph:/groups`"
            ));
        }
        at(PointerSource::Claims, text)
    }
}
