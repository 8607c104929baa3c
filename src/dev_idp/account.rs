//! Who signs in at the development provider: the account, the "type your own" form's
//! validation, and the claims (ID token and userinfo) built from an account.

use openidconnect::core::CoreGenderClaim;
use openidconnect::{
    AddressClaim, AddressCountry, AddressLocality, EndUserEmail, EndUserFamilyName,
    EndUserGivenName, EndUserName, EndUserPhoneNumber, EndUserTimezone, LanguageTag,
    StandardClaims, SubjectIdentifier,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::providers::oidc::ExtraClaims;

/// Longest accepted value of a typed text field, in characters.
pub const MAX_FIELD_CHARS: usize = 100;
/// RFC 5321's limit on a forward path.
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_PHONE_CHARS: usize = 32;

/// A person signed in at the development provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: String,
    pub company: Option<String>,
    pub title: Option<String>,
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2 for the personas; whatever was typed otherwise.
    pub country: Option<String>,
    pub phone: Option<String>,
    pub zoneinfo: Option<String>,
    pub locale: Option<String>,
}

/// The "type your own" fields, as posted.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TypedAccount {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub company: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub phone: String,
}

impl TypedAccount {
    /// Validate and build the account, or say what is wrong with which field.
    pub fn to_account(&self) -> Result<Account, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let mut text = |field: &'static str, label: &str, value: &str, max: usize| {
            let value = value.trim();
            if value.chars().any(char::is_control) {
                errors.push((
                    field,
                    format!("{label} contains characters that are not allowed."),
                ));
            } else if value.chars().count() > max {
                errors.push((field, format!("{label} must be at most {max} characters.")));
            }
            (!value.is_empty()).then(|| value.to_string())
        };
        let name = text("name", "Name", &self.name, MAX_FIELD_CHARS);
        let email = text("email", "Email", &self.email, MAX_EMAIL_CHARS);
        let company = text("company", "Company", &self.company, MAX_FIELD_CHARS);
        let title = text("title", "Job title", &self.title, MAX_FIELD_CHARS);
        let city = text("city", "City", &self.city, MAX_FIELD_CHARS);
        let country = text("country", "Country", &self.country, MAX_FIELD_CHARS);
        let phone = text("phone", "Phone", &self.phone, MAX_PHONE_CHARS);
        match &email {
            None => errors.push(("email", "Enter an email address.".into())),
            Some(e) if !plausible_email(e) => errors.push((
                "email",
                "Enter an email address like name@company.com.".into(),
            )),
            Some(_) => {}
        }
        if let Some(p) = &phone {
            let digits = p.chars().filter(char::is_ascii_digit).count();
            if digits < 5
                || !p
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-().".contains(c))
            {
                errors.push((
                    "phone",
                    "Enter a phone number like +44 20 7946 0321.".into(),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let (given_name, family_name) = match name.as_deref().map(|n| n.split_once(' ')) {
            Some(Some((given, family))) => (Some(given.into()), Some(family.trim().into())),
            _ => (None, None),
        };
        Ok(Account {
            name,
            given_name,
            family_name,
            email: email.unwrap_or_default(),
            company,
            title,
            city,
            country,
            phone,
            zoneinfo: None,
            locale: None,
        })
    }
}

/// One `@`, a non-empty local part, a dotted domain of letters, digits and hyphens.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.chars().any(|c| c.is_whitespace() || c == '@')
        && domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
}

impl Account {
    /// Stable per email address (case-insensitive), so signing in again as the same person
    /// finds the same profile, and no two addresses share one.
    pub fn subject(&self) -> String {
        let digest = Sha256::digest(format!("dev-idp:{}", self.email.to_lowercase()).as_bytes());
        hex::encode(&digest[..16])
    }

    /// The OpenID standard claims: sub, names, email (verified), phone, address, zoneinfo.
    pub fn standard_claims(&self) -> StandardClaims<CoreGenderClaim> {
        let address = (self.city.is_some() || self.country.is_some()).then(|| AddressClaim {
            locality: self.city.clone().map(AddressLocality::new),
            country: self.country.clone().map(AddressCountry::new),
            ..AddressClaim::default()
        });
        StandardClaims::new(SubjectIdentifier::new(self.subject()))
            .set_name(self.name.clone().map(|n| EndUserName::new(n).into()))
            .set_given_name(
                self.given_name
                    .clone()
                    .map(|n| EndUserGivenName::new(n).into()),
            )
            .set_family_name(
                self.family_name
                    .clone()
                    .map(|n| EndUserFamilyName::new(n).into()),
            )
            .set_email(Some(EndUserEmail::new(self.email.clone())))
            .set_email_verified(Some(true))
            .set_phone_number(self.phone.clone().map(EndUserPhoneNumber::new))
            .set_address(address)
            .set_zoneinfo(self.zoneinfo.clone().map(EndUserTimezone::new))
            .set_locale(self.locale.clone().map(LanguageTag::new))
    }

    /// Claims beyond the standard ones: `organization` and `title`.
    pub fn extra_claims(&self) -> ExtraClaims {
        let mut extra = Map::new();
        if let Some(company) = &self.company {
            extra.insert("organization".into(), company.clone().into());
        }
        if let Some(title) = &self.title {
            extra.insert("title".into(), title.clone().into());
        }
        ExtraClaims(extra)
    }

    /// The userinfo body: the same claims as the ID token's profile part.
    pub fn userinfo(&self) -> Map<String, Value> {
        let mut claims = match serde_json::to_value(self.standard_claims()) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        claims.extend(self.extra_claims().0);
        claims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(email: &str) -> TypedAccount {
        TypedAccount {
            email: email.into(),
            ..TypedAccount::default()
        }
    }

    #[test]
    fn plausible_emails_are_accepted_and_others_named() {
        for (email, ok) in [
            ("ada@analytical-engines.example", true),
            ("  ada@example.com ", true),
            ("ada.o'brien+x@mail.example.co.uk", true),
            ("", false),
            ("ada", false),
            ("ada@localhost", false),
            ("@example.com", false),
            ("ada lovelace@example.com", false),
            ("ada@example..com", false),
            ("ada@exa_mple.com", false),
            ("ada@@example.com", false),
        ] {
            let result = typed(email).to_account();
            assert_eq!(result.is_ok(), ok, "{email:?}");
            if let Err(errors) = result {
                assert_eq!(errors[0].0, "email", "{email:?}");
            }
        }
    }

    #[test]
    fn typed_fields_are_trimmed_and_the_name_split() {
        let account = TypedAccount {
            name: " Ada King Lovelace ".into(),
            company: "  ".into(),
            phone: "+44 (161) 496-0000".into(),
            ..typed("ada@example.com")
        }
        .to_account()
        .unwrap();
        assert_eq!(account.name.as_deref(), Some("Ada King Lovelace"));
        assert_eq!(account.given_name.as_deref(), Some("Ada"));
        assert_eq!(account.family_name.as_deref(), Some("King Lovelace"));
        assert_eq!(account.company, None);
        assert_eq!(account.phone.as_deref(), Some("+44 (161) 496-0000"));
    }

    #[test]
    fn long_values_control_characters_and_odd_phones_are_refused() {
        let errors = TypedAccount {
            name: "x".repeat(MAX_FIELD_CHARS + 1),
            title: "CEO\u{0}".into(),
            phone: "call me".into(),
            ..typed("ada@example.com")
        }
        .to_account()
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["name", "title", "phone"]);
    }

    #[test]
    fn the_subject_is_stable_per_email_whatever_the_case() {
        let a = typed("Ada@Example.com").to_account().unwrap();
        let b = typed("ada@example.com").to_account().unwrap();
        let c = typed("grace@example.com").to_account().unwrap();
        assert_eq!(a.subject(), b.subject());
        assert_ne!(a.subject(), c.subject());
        assert_eq!(a.subject().len(), 32);
    }

    #[test]
    fn userinfo_carries_the_profile_and_organisation() {
        let account = TypedAccount {
            company: "Analytical Engines".into(),
            title: "Head of Research".into(),
            city: "London".into(),
            ..typed("ada@example.com")
        }
        .to_account()
        .unwrap();
        let info = account.userinfo();
        assert_eq!(info["sub"], account.subject());
        assert_eq!(info["email_verified"], true);
        assert_eq!(info["organization"], "Analytical Engines");
        assert_eq!(info["title"], "Head of Research");
        assert_eq!(info["address"], serde_json::json!({ "locality": "London" }));
        assert!(!info.contains_key("phone_number"));
    }
}
