//! `kind = "oidc"`: any OpenID provider, as the specification describes it. The issuer is
//! configured; an email counts for account linking only with `trust_email_verified`.

use serde_json::{Map, Value};

use super::quirks::{self, Account, Extras, ProviderData, Quirks};
use crate::config::OidcSettings;

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

    fn extras(&self, offline: bool) -> Extras {
        Extras {
            scopes: if offline {
                vec!["offline_access"]
            } else {
                Vec::new()
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
}
