//! `kind = "oidc"`: any OpenID provider, as the specification describes it. The issuer is
//! configured; an email counts for account linking only with `trust_email_verified`.

use openidconnect::Scope;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::quirks::{self, Account, Extras, ProviderData, Quirks, OFFLINE_ACCESS};
use super::KindOf;
use crate::config::{http_url, ConfigError, KindConfig, KindSettings};

/// The `kind` of any OpenID provider.
pub const NAME: &str = "oidc";

/// `kind = "oidc"`.
pub static KIND: KindOf<OidcSettings> = KindOf::new(NAME, |s| Box::new(Generic::new(s)));

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

impl KindSettings for OidcSettings {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        http_url(key, "issuer", &self.issuer)
    }
}

impl OidcSettings {
    /// These settings as a provider's kind (a provider built in code: `identify-bridge dev`).
    pub fn into_kind(self) -> KindConfig {
        KindConfig::new(NAME, self)
    }
}

#[derive(Debug)]
pub struct Generic {
    settings: OidcSettings,
}

impl Generic {
    pub fn new(settings: &OidcSettings) -> Self {
        Generic {
            settings: settings.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Quirks for Generic {
    fn issuer(&self) -> String {
        self.settings
            .issuer
            .as_str()
            .trim_end_matches('/')
            .to_string()
    }

    fn label(&self) -> Option<&'static str> {
        None
    }

    /// `offline_access` only when discovery lists it: OpenID Connect Core §11 leaves it
    /// optional, and a provider that does not know a scope may refuse the request.
    fn extras(&self, offline: bool, scopes_supported: Option<&[Scope]>) -> Extras {
        let listed = scopes_supported.is_some_and(|s| s.iter().any(|s| **s == OFFLINE_ACCESS));
        Extras {
            scopes: match offline && listed {
                true => vec![OFFLINE_ACCESS],
                false => Vec::new(),
            },
            params: Vec::new(),
        }
    }

    /// `email_verified = true` counts only when the operator trusts this provider with it.
    fn account(&self, claims: &Map<String, Value>, _data: &ProviderData) -> Account {
        let vouched_email = quirks::email_claim(claims)
            .filter(|_| self.settings.trust_email_verified && quirks::email_verified(claims))
            .map(|(email, _)| email);
        Account {
            key: quirks::subject(claims),
            vouched_email,
            created_at: None,
            hosted_domain: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_generic_provider_vouches_only_when_trusted() {
        let claims = json!({"sub": "s", "email": "p@globex.com", "email_verified": true});
        let claims = claims.as_object().unwrap();
        let settings = |trust| OidcSettings {
            issuer: url::Url::parse("https://sso.example.com/").unwrap(),
            trust_email_verified: trust,
        };
        let data = ProviderData::default();
        assert_eq!(
            Generic::new(&settings(false))
                .account(claims, &data)
                .vouched_email,
            None
        );
        assert_eq!(
            Generic::new(&settings(true))
                .account(claims, &data)
                .vouched_email
                .as_deref(),
            Some("p@globex.com")
        );
        assert_eq!(
            Generic::new(&settings(true)).issuer(),
            "https://sso.example.com"
        );
    }

    #[test]
    fn offline_access_is_asked_only_when_discovery_lists_it() {
        let generic = Generic::new(&OidcSettings {
            issuer: url::Url::parse("https://sso.example.com/").unwrap(),
            trust_email_verified: false,
        });
        let listed = [
            Scope::new("openid".into()),
            Scope::new("offline_access".into()),
        ];
        let unlisted = [Scope::new("openid".into())];
        assert_eq!(
            generic.extras(true, Some(&listed)).scopes,
            vec!["offline_access"]
        );
        assert_eq!(generic.extras(true, Some(&unlisted)), Extras::default());
        assert_eq!(generic.extras(true, None), Extras::default());
        assert_eq!(generic.extras(false, Some(&listed)), Extras::default());
    }
}
