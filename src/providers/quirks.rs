//! [`Quirks`]: what one kind of provider does differently from the generic OpenID flow. Each
//! kind's file (`google.rs`, `microsoft.rs`, `okta.rs`, `generic.rs`) implements it; the flow
//! (`oidc.rs`, `verify.rs`, `discovery.rs`) asks it at each step and knows no kind by name.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use openidconnect::Scope;
use serde_json::{Map, Value};

use super::graph::GraphProfile;
use super::ProviderError;
use crate::traits::KindRules;

/// Scopes and authorization parameters a kind adds to an authorization request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Extras {
    pub scopes: Vec<&'static str>,
    pub params: Vec<(&'static str, &'static str)>,
}

/// What a refresh-token request of this kind sends beyond `grant_type`, `refresh_token` and
/// the client's authentication (RFC 6749 §6).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RefreshParams {
    /// `scope`: empty sends none, which keeps the scopes of the original grant (RFC 6749 §6).
    pub scopes: Vec<String>,
}

/// The scope that asks an OpenID provider for a refresh token (OpenID Connect Core §11).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// What the provider's own API said about the user (Microsoft Graph, the Okta Users API).
#[derive(Debug, Default, Clone)]
pub struct ProviderData {
    pub graph: Option<GraphProfile>,
    /// Okta's `/api/v1/users/me` user object.
    pub okta_user: Option<Map<String, Value>>,
    /// The ID token said the user has more groups than it carries (an Entra group overage) and
    /// they were not read: Graph is off, or the call failed.
    pub groups_unresolved: bool,
}

/// Who signed in, as this kind determines it from the verified claims and its API data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// The stable account key at this issuer (Microsoft `oid`, else `sub`).
    pub key: String,
    /// The email, lower-cased, when this provider is authoritative for it; only such emails may
    /// link accounts across providers (providers.md §6).
    pub vouched_email: Option<String>,
    /// The provider's own account-creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// Google's `hd`: the Workspace domain of the account, from the signed ID token.
    pub hosted_domain: Option<String>,
}

/// A call to the provider's API with the signed-in user's access token (never logged).
pub struct ApiCall<'a> {
    pub http: &'a reqwest::Client,
    pub access_token: &'a str,
    /// The verified claims (what to read may depend on them: an Entra group overage).
    pub claims: &'a Map<String, Value>,
    pub timeout: Duration,
    /// The configured provider name, for metrics and logs.
    pub provider: &'a str,
}

/// What one kind of provider knows that the generic flow does not.
#[async_trait]
pub trait Quirks: Send + Sync + std::fmt::Debug {
    /// The issuer as configured; discovery is read from `{issuer}/.well-known/openid-configuration`.
    fn issuer(&self) -> String;

    /// The sign-in button's label when `display_name` is unset (`None`: the provider's name).
    fn label(&self) -> Option<&'static str>;

    /// Whether the discovery document's `issuer` is acceptable. Default: exactly the configured
    /// issuer (OpenID Discovery §4.3), never a `{tenantid}` template.
    fn accepts_discovered_issuer(&self, discovered: &str) -> bool {
        !discovered.contains(super::TENANT_PLACEHOLDER)
            && discovered.trim_end_matches('/') == self.issuer().trim_end_matches('/')
    }

    /// Whether an RFC 9207 `iss` response parameter names this provider. Default: exactly
    /// the discovered issuer.
    fn accepts_response_issuer(&self, discovered: &str, iss: &str) -> bool {
        discovered == iss
    }

    /// The issuer an ID token must carry, from the discovered issuer and the token's claims
    /// (read unverified to choose the issuer, and again after verification to apply the kind's
    /// policy to trusted values). Default: the discovered issuer.
    fn token_issuer(
        &self,
        discovered: &str,
        _claims: &Map<String, Value>,
    ) -> Result<String, ProviderError> {
        Ok(discovered.to_string())
    }

    /// Scopes and parameters this kind adds to an authorization request; with `offline`
    /// (sessions are re-validated: `session.revalidate_secs` > 0, and the provider's
    /// `refresh_tokens` is on), also what it needs to issue
    /// a refresh token: Okta and Microsoft the `offline_access` scope, Google
    /// `access_type=offline`, any other provider `offline_access` when its discovery document
    /// lists it in `scopes_supported` (`scopes_supported`: that list, `None` when absent).
    fn extras(&self, offline: bool, scopes_supported: Option<&[Scope]>) -> Extras;

    /// What a refresh of this kind's tokens needs, given `asked`, the scopes the sign-in asked
    /// for. Default: nothing beyond the refresh token (the original grant's scopes).
    fn refresh(&self, _asked: &[String]) -> RefreshParams {
        RefreshParams::default()
    }

    /// Read the provider's own API after a sign-in (Graph, the Okta Users API). A failure is
    /// logged and counted and never fails the sign-in. Default: nothing to read.
    async fn provider_data(&self, _call: ApiCall<'_>) -> ProviderData {
        ProviderData::default()
    }

    /// The account key, the email this provider vouches for, and its creation time.
    fn account(&self, claims: &Map<String, Value>, data: &ProviderData) -> Account;

    /// Which of the traits' kind-specific default rules apply to this kind's claims.
    /// Default: none.
    fn trait_rules(&self) -> KindRules {
        KindRules::default()
    }

    /// The Workspace domains (`hd`) allowed to sign in; empty: any. Default: no such policy.
    fn allowed_hosted_domains(&self) -> &[String] {
        &[]
    }

    /// The claims say the user has groups that neither they nor `data` list (read offline, by
    /// `identify-bridge traits`). Default: never.
    fn unresolved_groups(&self, _claims: &Map<String, Value>, _data: &ProviderData) -> bool {
        false
    }
}

/// `sub` as the account key.
pub(super) fn subject(claims: &Map<String, Value>) -> String {
    claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// The `email` claim, trimmed and lower-cased, when it has a domain.
pub(super) fn email_claim(claims: &Map<String, Value>) -> Option<(String, String)> {
    let email = claims.get("email")?.as_str()?.trim().to_ascii_lowercase();
    let (_, domain) = email.rsplit_once('@')?;
    if domain.is_empty() {
        return None;
    }
    let domain = domain.to_string();
    Some((email, domain))
}

/// `email_verified` is JSON `true`.
pub(super) fn email_verified(claims: &Map<String, Value>) -> bool {
    claims.get("email_verified").and_then(Value::as_bool) == Some(true)
}

/// An RFC 3339 time in a JSON value.
pub(super) fn time_value(value: Option<&Value>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value?.as_str()?.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// One call to a provider's API after a sign-in: timed, and on failure logged and counted with
/// `failed`; the sign-in goes on without it.
pub(super) async fn best_effort<T, E: std::fmt::Display>(
    provider: &str,
    endpoint: &'static str,
    failed: fn(&str),
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Option<T> {
    let started = std::time::Instant::now();
    let result = call.await;
    crate::metrics::provider_call(provider, endpoint, started.elapsed().as_secs_f64());
    match result {
        Ok(value) => Some(value),
        Err(e) => {
            // Traits come from the claims; the sign-in goes on.
            tracing::warn!(error = %e, endpoint, "provider API enrichment failed");
            failed(provider);
            None
        }
    }
}
