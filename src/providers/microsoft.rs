//! Microsoft Entra ID: tenant-specific issuers and the `{tenantid}` template of the
//! multi-tenant authorities (`common`, `organizations`).
//!
//! `/common` and `/organizations` publish `https://login.microsoftonline.com/{tenantid}/v2.0`
//! as their issuer. We keep the issuer check by building the expected issuer from the token's
//! `tid` (read before verification only to choose the issuer), then verifying signature, `iss`,
//! `aud` and the rest against it, and applying the tenant policy to the verified `tid`.

use async_trait::async_trait;
use openidconnect::Scope;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;
use uuid::Uuid;

use super::graph::{self, GraphProfile};
use super::quirks::{
    self, Account, ApiCall, Extras, ProviderData, Quirks, RefreshParams, OFFLINE_ACCESS,
};
use super::{KindOf, ProviderError, TENANT_PLACEHOLDER};
use crate::config::{http_url, ConfigError, KindSettings, PointerSource};
use crate::traits::KindRules;

/// `kind = "microsoft"`.
pub static KIND: KindOf<MicrosoftSettings> =
    KindOf::new("microsoft", |s| Box::new(Microsoft::new(s)));

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

impl KindSettings for MicrosoftSettings {
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

    /// `graph:/me/…`, `graph:/organization/…` and `graph:/groups` with `graph = true`.
    fn reads(&self, source: PointerSource) -> bool {
        self.graph
            && matches!(
                source,
                PointerSource::GraphMe
                    | PointerSource::GraphOrganization
                    | PointerSource::GraphGroups
            )
    }
}

fn default_authority() -> Url {
    Url::parse("https://login.microsoftonline.com").expect("static URL")
}

fn default_graph_url() -> Url {
    Url::parse("https://graph.microsoft.com/v1.0/").expect("static URL")
}

/// The tenant of personal Microsoft accounts (MSA).
pub const CONSUMER_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// The configured issuer: `{authority}/{tenant}/v2.0`, or the override.
pub fn issuer(settings: &MicrosoftSettings) -> String {
    match &settings.issuer {
        Some(issuer) => issuer.as_str().trim_end_matches('/').to_string(),
        None => discovery_base(settings.authority.as_str(), &settings.tenant),
    }
}

/// The discovery base (issuer-like URL) for a tenant: `{authority}/{tenant}/v2.0`.
pub fn discovery_base(authority: &str, tenant: &str) -> String {
    format!("{}/{}/v2.0", authority.trim_end_matches('/'), tenant)
}

/// Why a tenant may not sign in.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TenantError {
    #[error("the token has no valid tenant id (tid)")]
    MissingTid,
    #[error("tenant {0} is not allowed to sign in")]
    NotAllowed(String),
    #[error("personal Microsoft accounts cannot sign in to this provider")]
    ConsumerNotAllowed,
}

/// The tenant policy: a parsed `tid` that the configuration admits.
pub fn check_tenant(
    tid: Option<&str>,
    configured_tenant: &str,
    allowed_tenants: &[Uuid],
) -> Result<String, TenantError> {
    let tid = tid
        .and_then(|t| Uuid::parse_str(t).ok())
        .map(|t| t.hyphenated().to_string())
        .ok_or(TenantError::MissingTid)?;
    if configured_tenant.eq_ignore_ascii_case("organizations") && tid == CONSUMER_TENANT {
        return Err(TenantError::ConsumerNotAllowed);
    }
    if !allowed_tenants.is_empty()
        && !allowed_tenants
            .iter()
            .any(|a| a.hyphenated().to_string() == tid)
    {
        return Err(TenantError::NotAllowed(tid));
    }
    Ok(tid)
}

/// The expected issuer for a token from tenant `tid`, given the discovery issuer (which may be
/// the `{tenantid}` template).
pub fn expected_issuer(discovery_issuer: &str, tid: &str) -> String {
    discovery_issuer.replace(TENANT_PLACEHOLDER, tid)
}

/// Whether an RFC 9207 `iss` response parameter fits a templated issuer.
pub fn iss_matches_template(template: &str, iss: &str) -> bool {
    let Some((prefix, suffix)) = template.split_once(TENANT_PLACEHOLDER) else {
        return template == iss;
    };
    iss.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(suffix))
        .is_some_and(|tid| Uuid::parse_str(tid).is_ok())
}

/// A configured Microsoft provider.
#[derive(Debug)]
pub struct Microsoft {
    settings: MicrosoftSettings,
}

impl Microsoft {
    pub fn new(settings: &MicrosoftSettings) -> Self {
        Microsoft {
            settings: settings.clone(),
        }
    }

    fn tenant_of(&self, claims: &Map<String, Value>) -> Result<String, TenantError> {
        check_tenant(
            claims.get("tid").and_then(Value::as_str),
            &self.settings.tenant,
            &self.settings.allowed_tenants,
        )
    }

    /// Graph `/me`, `/organization` and the photo, when `graph = true`.
    async fn graph(&self, call: &ApiCall<'_>) -> Option<GraphProfile> {
        let fetch = graph::fetch_graph(
            call.http,
            &self.settings.graph_url,
            call.access_token,
            call.timeout,
        );
        quirks::best_effort(call.provider, "graph", crate::metrics::graph_failure, fetch).await
    }

    /// The user's group ids from Graph, for a group overage.
    async fn groups(&self, call: &ApiCall<'_>) -> Option<Vec<String>> {
        let fetch = graph::fetch_groups(
            call.http,
            &self.settings.graph_url,
            call.access_token,
            call.timeout,
        );
        quirks::best_effort(
            call.provider,
            "graph_groups",
            crate::metrics::graph_failure,
            fetch,
        )
        .await
    }
}

/// Entra's group overage: the ID token names a claim source for `groups` (`_claim_names`)
/// instead of the list (more than 200 groups), or says `hasgroups` (implicit flow, over 6).
pub fn group_overage(claims: &Map<String, Value>) -> bool {
    let named = claims
        .get("_claim_names")
        .and_then(|names| names.get("groups"))
        .is_some();
    named || claims.get("hasgroups").and_then(Value::as_bool) == Some(true)
}

#[async_trait]
impl Quirks for Microsoft {
    fn issuer(&self) -> String {
        issuer(&self.settings)
    }

    fn label(&self) -> Option<&'static str> {
        Some("Microsoft")
    }

    /// Any issuer: domain-named tenants publish their GUID issuer, `common` and
    /// `organizations` the `{tenantid}` template; each token's issuer is checked exactly.
    fn accepts_discovered_issuer(&self, _discovered: &str) -> bool {
        true
    }

    fn accepts_response_issuer(&self, discovered: &str, iss: &str) -> bool {
        iss_matches_template(discovered, iss)
    }

    fn token_issuer(
        &self,
        discovered: &str,
        claims: &Map<String, Value>,
    ) -> Result<String, ProviderError> {
        if !discovered.contains(TENANT_PLACEHOLDER) {
            return Ok(discovered.to_string());
        }
        let tid = self.tenant_of(claims)?;
        Ok(expected_issuer(discovered, &tid))
    }

    fn extras(&self, offline: bool, _scopes_supported: Option<&[Scope]>) -> Extras {
        let mut scopes = Vec::new();
        if self.settings.graph {
            scopes.push(graph::SCOPE);
        }
        if offline {
            scopes.push(OFFLINE_ACCESS);
        }
        Extras {
            scopes,
            params: Vec::new(),
        }
    }

    /// The Microsoft identity platform issues an access token for the scopes a refresh names
    /// (one resource per token, providers.md §2.3 (c)), and MSAL always names them: the scopes
    /// of the sign-in, so the new access token still reads userinfo and Graph.
    fn refresh(&self, asked: &[String]) -> RefreshParams {
        RefreshParams {
            scopes: asked.to_vec(),
        }
    }

    /// Graph when `graph = true`; with a group overage, also the user's groups. Without Graph an
    /// overage is said plainly (a warning here, a notice in the provenance): the groups are
    /// unknown, not empty.
    async fn provider_data(&self, call: ApiCall<'_>) -> ProviderData {
        let overage = group_overage(call.claims);
        if !self.settings.graph {
            if overage {
                tracing::warn!(
                    "the ID token says this user has more groups than it can carry (Entra group \
                     overage); set graph = true on this provider to read them from Microsoft Graph"
                );
            }
            return ProviderData {
                groups_unresolved: overage,
                ..ProviderData::default()
            };
        }
        let mut graph = self.graph(&call).await;
        if let (true, Some(profile)) = (overage, graph.as_mut()) {
            profile.groups = self.groups(&call).await;
        }
        ProviderData {
            groups_unresolved: overage && graph.as_ref().is_none_or(|g| g.groups.is_none()),
            graph,
            okta_user: None,
        }
    }

    /// The account is the `oid` (stable across a tenant's apps; `sub` is per app). The email
    /// counts only with `xms_edov = true`, for a personal account (Microsoft owns those
    /// addresses), or in one of the tenant's verified domains (Graph): never the plain `email`
    /// claim ("nOAuth"). The creation time is Graph's `createdDateTime`.
    fn account(&self, claims: &Map<String, Value>, data: &ProviderData) -> Account {
        let key = claims
            .get("oid")
            .and_then(Value::as_str)
            .filter(|oid| Uuid::parse_str(oid).is_ok())
            .map(str::to_string)
            .unwrap_or_else(|| quirks::subject(claims));
        let graph = data.graph.as_ref();
        let vouched_email = quirks::email_claim(claims).and_then(|(email, domain)| {
            let edov = claims.get("xms_edov").and_then(|v| {
                v.as_bool()
                    .or_else(|| v.as_str().map(|s| s == "1" || s == "true"))
            });
            let personal = claims.get("tid").and_then(Value::as_str) == Some(CONSUMER_TENANT);
            let tenant_domain = graph
                .and_then(|g| g.organization.as_ref())
                .and_then(|o| o.get("verifiedDomains"))
                .and_then(Value::as_array)
                .is_some_and(|domains| {
                    domains.iter().any(|d| {
                        d.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case(&domain))
                    })
                });
            (edov == Some(true) || personal || tenant_domain).then_some(email)
        });
        Account {
            key,
            vouched_email,
            created_at: quirks::time_value(graph.and_then(|g| g.me.get("createdDateTime"))),
            hosted_domain: None,
        }
    }

    /// `tid`, `xms_edov` and Graph's `verifiedDomains` say whether the mail is Microsoft 365.
    fn trait_rules(&self) -> KindRules {
        KindRules {
            entra: true,
            ..KindRules::default()
        }
    }

    /// A group overage whose groups Graph did not list.
    fn unresolved_groups(&self, claims: &Map<String, Value>, data: &ProviderData) -> bool {
        group_overage(claims) && data.graph.as_ref().is_none_or(|g| g.groups.is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_overage_is_either_a_claim_source_or_hasgroups() {
        let overage = |claims: serde_json::Value| group_overage(claims.as_object().unwrap());
        assert!(overage(
            serde_json::json!({"_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}})
        ));
        assert!(overage(serde_json::json!({"hasgroups": true})));
        assert!(!overage(
            serde_json::json!({"groups": ["a"], "hasgroups": false})
        ));
        assert!(!overage(
            serde_json::json!({"_claim_names": {"roles": "src1"}})
        ));
    }

    const WORK: &str = "4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b";

    #[test]
    fn tenant_policy() {
        assert_eq!(
            check_tenant(Some(WORK), "common", &[]),
            Ok(WORK.to_string())
        );
        assert_eq!(
            check_tenant(None, "common", &[]),
            Err(TenantError::MissingTid)
        );
        assert_eq!(
            check_tenant(Some("evil"), "common", &[]),
            Err(TenantError::MissingTid)
        );
        assert_eq!(
            check_tenant(Some(CONSUMER_TENANT), "organizations", &[]),
            Err(TenantError::ConsumerNotAllowed)
        );
        assert!(check_tenant(Some(CONSUMER_TENANT), "common", &[]).is_ok());
        assert_eq!(
            check_tenant(
                Some(WORK),
                "common",
                &[Uuid::parse_str(CONSUMER_TENANT).unwrap()]
            ),
            Err(TenantError::NotAllowed(WORK.into()))
        );
    }

    #[test]
    fn issuer_template() {
        let t = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert_eq!(
            expected_issuer(t, WORK),
            format!("https://login.microsoftonline.com/{WORK}/v2.0")
        );
        assert!(iss_matches_template(
            t,
            &format!("https://login.microsoftonline.com/{WORK}/v2.0")
        ));
        assert!(!iss_matches_template(
            t,
            "https://login.microsoftonline.com/x/v2.0"
        ));
        assert!(!iss_matches_template(
            t,
            "https://evil.example/4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b/v2.0"
        ));
    }

    fn microsoft(tenant: &str) -> Microsoft {
        Microsoft::new(&MicrosoftSettings {
            tenant: tenant.into(),
            allowed_tenants: Vec::new(),
            authority: url::Url::parse("https://login.microsoftonline.com").unwrap(),
            issuer: None,
            graph: false,
            graph_url: url::Url::parse("https://graph.microsoft.com/v1.0/").unwrap(),
        })
    }

    fn obj(v: serde_json::Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn microsoft_vouches_only_with_edov_a_personal_account_or_a_verified_domain() {
        let ms = microsoft("common");
        let none = ProviderData::default();
        let plain = obj(serde_json::json!({"email": "jane@contoso.com", "tid": WORK}));
        assert_eq!(
            ms.account(&plain, &none).vouched_email,
            None,
            "nOAuth: plain email never counts"
        );
        let edov = obj(serde_json::json!({"email": "jane@contoso.com", "xms_edov": true}));
        assert!(ms.account(&edov, &none).vouched_email.is_some());
        let msa = obj(serde_json::json!({"email": "sam@outlook.com", "tid": CONSUMER_TENANT}));
        assert!(ms.account(&msa, &none).vouched_email.is_some());
        let graph = ProviderData {
            graph: Some(GraphProfile {
                me: obj(serde_json::json!({"createdDateTime": "2019-05-06T07:08:09Z"})),
                organization: Some(obj(
                    serde_json::json!({"verifiedDomains": [{"name": "contoso.com"}]}),
                )),
                photo: None,
                groups: None,
            }),
            okta_user: None,
            groups_unresolved: false,
        };
        let account = ms.account(&plain, &graph);
        assert!(account.vouched_email.is_some());
        assert_eq!(
            account.created_at.unwrap().to_rfc3339(),
            "2019-05-06T07:08:09+00:00"
        );
    }

    #[test]
    fn the_account_key_is_the_oid_and_the_issuer_follows_the_tenant() {
        let ms = microsoft("organizations");
        let claims = obj(
            serde_json::json!({"sub": "s", "oid": "c0a8e2f1-55d2-4c3b-9e7a-1f2e3d4c5b6a", "tid": WORK}),
        );
        assert_eq!(
            ms.account(&claims, &ProviderData::default()).key,
            "c0a8e2f1-55d2-4c3b-9e7a-1f2e3d4c5b6a"
        );
        let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert_eq!(
            ms.token_issuer(template, &claims).unwrap(),
            format!("https://login.microsoftonline.com/{WORK}/v2.0")
        );
        let personal = obj(serde_json::json!({"tid": CONSUMER_TENANT}));
        assert!(ms.token_issuer(template, &personal).is_err());
        assert_eq!(ms.extras(true, None).scopes, vec!["offline_access"]);
        assert_eq!(ms.extras(false, None), Extras::default());
        let asked = vec!["openid".to_string(), "offline_access".to_string()];
        assert_eq!(ms.refresh(&asked).scopes, asked);
    }
}
