//! Google: one fixed issuer (`https://accounts.google.com`), `hd` for Workspace accounts, and
//! `access_type=offline` for a refresh token (Google has no `offline_access` scope).
//!
//! Google issues the refresh token when the person sees its consent screen: at their first
//! sign-in to this client (or after they removed its access), not at later ones. The bridge
//! does not force that screen (`prompt=consent`) on every sign-in: it would stand in front of
//! every returning person, and each forced consent mints one more refresh token towards
//! Google's limit per account and client, beyond which Google silently revokes the oldest (so
//! older sessions would end with `invalid_grant`). A session without a refresh token is
//! re-validated through userinfo while its access token lasts (an hour), then stands on its
//! sign-in until `session.max_lifetime_secs`. A deployment that wants one every time links to
//! `/login/google?prompt=consent`.

use openidconnect::Scope;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::quirks::{self, Account, Extras, ProviderData, Quirks};
use super::KindOf;
use crate::config::{domain_names, http_url, ConfigError, KindSettings};
use crate::traits::KindRules;

/// `kind = "google"`.
pub static KIND: KindOf<GoogleSettings> = KindOf::new("google", |s| Box::new(Google::new(s)));

/// Google's issuer, as its discovery document and ID tokens state it.
pub const ISSUER: &str = "https://accounts.google.com";

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

impl KindSettings for GoogleSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            http_url(key, "issuer", issuer)?;
        }
        domain_names(key, "allowed_hosted_domains", &self.allowed_hosted_domains)
    }
}

#[derive(Debug)]
pub struct Google {
    issuer: String,
    allowed_hosted_domains: Vec<String>,
}

impl Google {
    pub fn new(settings: &GoogleSettings) -> Self {
        let issuer = match &settings.issuer {
            Some(issuer) => issuer.as_str().trim_end_matches('/').to_string(),
            None => ISSUER.to_string(),
        };
        Google {
            issuer,
            allowed_hosted_domains: settings.allowed_hosted_domains.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Quirks for Google {
    fn issuer(&self) -> String {
        self.issuer.clone()
    }

    fn label(&self) -> Option<&'static str> {
        Some("Google")
    }

    fn extras(&self, offline: bool, _scopes_supported: Option<&[Scope]>) -> Extras {
        let mut extras = Extras::default();
        if offline {
            extras.params = vec![("access_type", "offline")];
        }
        extras
    }

    /// Google vouches for an address only when `email_verified` and it is a Gmail address or
    /// in the Workspace domain `hd`: a consumer account can be registered with any address.
    fn account(&self, claims: &Map<String, Value>, _data: &ProviderData) -> Account {
        let hd = claims
            .get("hd")
            .and_then(Value::as_str)
            .map(|hd| hd.trim().to_ascii_lowercase())
            .filter(|hd| !hd.is_empty());
        let vouched_email = quirks::email_claim(claims).and_then(|(email, domain)| {
            let owned = matches!(domain.as_str(), "gmail.com" | "googlemail.com")
                || hd.as_deref() == Some(domain.as_str());
            (quirks::email_verified(claims) && owned).then_some(email)
        });
        Account {
            key: quirks::subject(claims),
            vouched_email,
            // Google gives no creation time (the Directory API's is admin-only).
            created_at: None,
            // The verified claims' `hd`: the ID token's, or Google's own userinfo (same `sub`).
            hosted_domain: hd,
        }
    }

    /// `hd` is the Workspace domain: the employment domain, and "Google Workspace" mail.
    fn trait_rules(&self) -> KindRules {
        KindRules {
            workspace_hd: true,
            ..KindRules::default()
        }
    }

    fn allowed_hosted_domains(&self) -> &[String] {
        &self.allowed_hosted_domains
    }
}

#[cfg(test)]
mod tests {
    use super::super::quirks::RefreshParams;
    use super::*;
    use serde_json::json;

    fn vouched(claims: Value) -> Option<String> {
        Google::new(&GoogleSettings::default())
            .account(claims.as_object().unwrap(), &ProviderData::default())
            .vouched_email
    }

    #[test]
    fn google_vouches_for_gmail_and_its_workspace_domain_only() {
        assert_eq!(
            vouched(json!({"email": "Ana@gmail.com", "email_verified": true})).as_deref(),
            Some("ana@gmail.com")
        );
        assert_eq!(
            vouched(json!({"email": "ana@company.com", "email_verified": true})),
            None,
            "consumer Google account on a third-party address"
        );
        assert!(
            vouched(json!({"email": "m@acme.io", "email_verified": true, "hd": "acme.io"}))
                .is_some()
        );
        assert_eq!(
            vouched(json!({"email": "ana@gmail.com", "email_verified": false})),
            None
        );
    }

    #[test]
    fn a_refresh_token_is_asked_with_access_type_offline_and_no_forced_consent() {
        let google = Google::new(&GoogleSettings::default());
        let listed = [Scope::new("offline_access".into())];
        assert_eq!(google.extras(false, Some(&listed)), Extras::default());
        let offline = google.extras(true, Some(&listed));
        assert_eq!(offline.params, vec![("access_type", "offline")]);
        assert!(
            offline.scopes.is_empty(),
            "Google has no offline_access scope"
        );
        assert_eq!(google.refresh(&["openid".into()]), RefreshParams::default());
        assert_eq!(google.issuer(), ISSUER);
    }
}
