//! Okta: the issuer is the org (`https://{domain}`) or a custom authorization server
//! (`https://{domain}/oauth2/{id}`). Its ID tokens are thin in the code flow, so userinfo is
//! always called (the generic flow does that for every provider with the endpoint).
//!
//! With `users_api = true` (org authorization server, scope `okta.users.read.self`) the bridge
//! also reads the user's own record from the Users API, `GET /api/v1/users/me`: the only place
//! Okta gives the account's `created` time and `status` (providers.md §3.3–3.4). A failure
//! there never fails the sign-in.

use std::borrow::Cow;
use std::time::Duration;

use async_trait::async_trait;
use openidconnect::Scope;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::fetch::{self, FetchError};
use super::quirks::{self, Account, ApiCall, Extras, ProviderData, Quirks, OFFLINE_ACCESS};
use super::KindOf;
use crate::config::{http_url, ConfigError, KindSettings, PointerSource};

/// `kind = "okta"`.
pub static KIND: KindOf<OktaSettings> = KindOf::new("okta", |s| Box::new(Okta::new(s)));

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

impl KindSettings for OktaSettings {
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

    fn reads(&self, source: PointerSource) -> bool {
        source == PointerSource::UsersApi && self.users_api
    }
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

/// How the Users API is named in errors.
const SERVICE: &str = "the Okta Users API";

/// The Okta scope that lets a user read their own Users API record.
pub const USERS_SCOPE: &str = "okta.users.read.self";

/// The configured issuer: the org (`https://{domain}`), a custom authorization server
/// (`https://{domain}/oauth2/{id}`), or the override.
pub fn issuer(settings: &OktaSettings) -> String {
    if let Some(issuer) = &settings.issuer {
        return issuer.as_str().trim_end_matches('/').to_string();
    }
    let base = settings
        .domain
        .as_ref()
        .map(|d| d.base().to_string())
        .unwrap_or_default();
    match settings.authorization_server.as_deref() {
        Some(id) if !id.is_empty() => format!("{base}/oauth2/{id}"),
        _ => base,
    }
}

/// `https://{domain}/api/v1/users/me`.
pub fn users_me_url(domain: &OktaDomain) -> Result<Url, url::ParseError> {
    Url::parse(&format!("{}/api/v1/users/me", domain.base()))
}

/// The signed-in user's Okta record (`id`, `status`, `created`, `statusChanged`, `profile`…),
/// read with their access token.
#[tracing::instrument(skip_all)]
pub async fn fetch_user(
    http: &reqwest::Client,
    url: Url,
    access_token: &str,
    timeout: Duration,
) -> Result<Map<String, Value>, FetchError> {
    fetch::get_object(
        http,
        url,
        access_token,
        timeout,
        SERVICE,
        "/api/v1/users/me",
    )
    .await
}

/// A configured Okta provider.
#[derive(Debug)]
pub struct Okta {
    settings: OktaSettings,
}

impl Okta {
    pub fn new(settings: &OktaSettings) -> Self {
        Okta {
            settings: settings.clone(),
        }
    }

    /// The user's record from the Users API, or `None` (logged and counted) when it fails.
    async fn user(&self, call: &ApiCall<'_>) -> Option<Map<String, Value>> {
        let domain = self.settings.domain.as_ref()?;
        let url = match users_me_url(domain) {
            Ok(url) => url,
            Err(e) => {
                tracing::warn!(error = %e, "okta users api: bad domain");
                crate::metrics::users_api_failure(call.provider);
                return None;
            }
        };
        let fetch = fetch_user(call.http, url, call.access_token, call.timeout);
        quirks::best_effort(
            call.provider,
            "users_api",
            crate::metrics::users_api_failure,
            fetch,
        )
        .await
    }
}

#[async_trait]
impl Quirks for Okta {
    fn issuer(&self) -> String {
        issuer(&self.settings)
    }

    fn label(&self) -> Option<&'static str> {
        Some("Okta")
    }

    /// A refresh token needs `offline_access` (and the app's Refresh Token grant enabled in
    /// Okta); a refresh without `scope` keeps the original grant's scopes, so [`Quirks::refresh`]
    /// keeps its default.
    fn extras(&self, offline: bool, _scopes_supported: Option<&[Scope]>) -> Extras {
        let mut scopes = Vec::new();
        if self.settings.users_api {
            scopes.push(USERS_SCOPE);
        }
        if offline {
            scopes.push(OFFLINE_ACCESS);
        }
        Extras {
            scopes,
            params: Vec::new(),
        }
    }

    async fn provider_data(&self, call: ApiCall<'_>) -> ProviderData {
        ProviderData {
            graph: None,
            okta_user: match self.settings.users_api {
                true => self.user(&call).await,
                false => None,
            },
            groups_unresolved: false,
        }
    }

    /// Okta never vouches for an email: each org's admin controls profile emails, and Okta
    /// says `email_verified` is not proof of ownership. The creation time is the Users API's
    /// `created`, or a `created` claim an admin added.
    fn account(&self, claims: &Map<String, Value>, data: &ProviderData) -> Account {
        let created = data
            .okta_user
            .as_ref()
            .and_then(|u| u.get("created"))
            .or_else(|| claims.get("created"));
        Account {
            key: quirks::subject(claims),
            vouched_email: None,
            created_at: quirks::time_value(created),
            hosted_domain: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn okta(domain: &str, server: Option<&str>) -> OktaSettings {
        OktaSettings {
            domain: Some(OktaDomain::try_from(domain.to_string()).unwrap()),
            authorization_server: server.map(str::to_string),
            users_api: false,
            issuer: None,
        }
    }

    #[test]
    fn org_and_custom_authorization_servers() {
        assert_eq!(
            issuer(&okta("acme.okta.com", None)),
            "https://acme.okta.com"
        );
        assert_eq!(
            issuer(&okta("acme.okta.com", Some("default"))),
            "https://acme.okta.com/oauth2/default"
        );
        assert_eq!(
            issuer(&okta("http://127.0.0.1:9/", Some("x"))),
            "http://127.0.0.1:9/oauth2/x"
        );
        let quirks = Okta::new(&okta("acme.okta.com", None));
        assert_eq!(quirks.extras(true, None).scopes, vec!["offline_access"]);
        assert_eq!(quirks.extras(false, None), Extras::default());
        assert!(quirks.refresh(&["openid".into()]).scopes.is_empty());
        let domain = |d: &str| OktaDomain::try_from(d.to_string()).unwrap();
        assert_eq!(
            users_me_url(&domain("acme.okta.com")).unwrap().as_str(),
            "https://acme.okta.com/api/v1/users/me"
        );
        assert_eq!(
            users_me_url(&domain("http://127.0.0.1:9/"))
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9/api/v1/users/me"
        );
    }

    #[test]
    fn okta_never_vouches_and_reads_created_from_the_users_api_or_a_claim() {
        let okta = Okta::new(&okta("acme.okta.com", None));
        let claims =
            serde_json::json!({"sub": "00u1", "email": "p@globex.com", "email_verified": true});
        let claims = claims.as_object().unwrap();
        let user = serde_json::json!({"created": "2022-02-07T15:04:11.000Z"});
        let data = ProviderData {
            okta_user: user.as_object().cloned(),
            ..ProviderData::default()
        };
        let account = okta.account(claims, &data);
        assert_eq!(account.vouched_email, None);
        assert_eq!(account.key, "00u1");
        assert_eq!(
            account.created_at.unwrap().to_rfc3339(),
            "2022-02-07T15:04:11+00:00"
        );
        assert_eq!(
            okta.account(claims, &ProviderData::default()).created_at,
            None
        );
        let with_claim = serde_json::json!({"sub": "x", "created": 5});
        assert_eq!(
            okta.account(with_claim.as_object().unwrap(), &ProviderData::default())
                .created_at,
            None
        );
    }
}
