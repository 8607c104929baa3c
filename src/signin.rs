//! The facts of a sign-in, produced once from the verified claims and what the provider's own
//! API said: issuer, account key, email and whether the provider vouches for it, name, traits
//! with their provenance, the account's creation time, the avatar. The store, the outbox, the
//! session and the pages read [`SignInFacts`], never the claims. What differs per provider
//! (which API to read, which emails count, where the creation time is) is the provider's
//! [`crate::providers::Quirks`].

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use url::Url;

use crate::config::ProviderSettings;
use crate::login_context::{Campaign, Page};
use crate::providers::oidc::VerifiedLogin;
use crate::providers::{Provider, ProviderData, Quirks};
use crate::session::PendingLogin;
use crate::store::{Avatar, SignIn};
use crate::traits::{self, ApiData, MappedTraits, MappingInput, TraitSource};

/// Longest email and name kept (claims are untrusted text).
const MAX_TEXT_CHARS: usize = 320;

/// Everything known about one sign-in.
#[derive(Debug, Clone)]
pub struct SignInFacts {
    /// The configured provider name.
    pub provider: String,
    /// The token's `iss` (tenant-specific for Microsoft).
    pub issuer: String,
    /// The ID token's `sub`.
    pub subject: String,
    /// The stable account key at this issuer (Microsoft `oid`, else `sub`).
    pub account_key: String,
    pub email: Option<Email>,
    pub name: Option<String>,
    /// The provider's session id (`sid`), for back-channel logout.
    pub sid: Option<String>,
    /// The 25 traits and where each came from.
    pub traits: MappedTraits,
    /// The provider's own account-creation time (Graph `createdDateTime`, Okta `created`).
    pub created_at: Option<DateTime<Utc>>,
    /// A profile photo to keep and serve (Graph's needs the user's token, so it is re-hosted).
    pub avatar: Option<Avatar>,
    pub signed_in_at: DateTime<Utc>,
    /// Google's `hd` from the ID token (access policies).
    pub hosted_domain: Option<String>,
    /// The `groups` claim (or, for an Entra group overage, Graph's list); `None` when the
    /// provider said there are groups that could not be read (access policies).
    pub groups: Option<Vec<String>>,
}

/// An email address, lower-cased, and whether the provider is authoritative for it (only
/// such addresses link accounts across providers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub address: String,
    pub vouched: bool,
    /// The provider says the address is confirmed (`email_verified = true`, or it vouches for
    /// it): what `allowed_email_domains` requires.
    pub verified: bool,
}

/// Read the provider's API (when its kind has one configured), then work out the facts.
#[tracing::instrument(skip_all, fields(provider = %provider.name()))]
pub async fn facts_for(
    provider: &Provider,
    login: &VerifiedLogin,
    public_url: &Url,
    signed_in_at: DateTime<Utc>,
) -> SignInFacts {
    let data = provider
        .provider_data(login.access_token.secret(), &login.claims)
        .await;
    let verified = Verified {
        issuer: &login.issuer,
        subject: &login.subject,
        claims: &login.claims,
    };
    facts_from(
        &provider.settings,
        provider.quirks(),
        verified,
        &data,
        public_url,
        signed_in_at,
    )
}

/// What the provider verified: the issuer, the subject and the merged claims.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub claims: &'a Map<String, Value>,
}

/// The facts from verified claims and provider data. Pure (also `identify-bridge traits`).
pub fn facts_from(
    settings: &ProviderSettings,
    quirks: &dyn Quirks,
    verified: Verified<'_>,
    data: &ProviderData,
    public_url: &Url,
    signed_in_at: DateTime<Utc>,
) -> SignInFacts {
    let claims = verified.claims;
    let account = quirks.account(claims, data);
    let mapping = settings.trait_mapping();
    let mut traits = traits::map_traits(&MappingInput {
        rules: quirks.trait_rules(),
        claims,
        api: ApiData {
            graph_me: data.graph.as_ref().map(|g| &g.me),
            graph_organization: data.graph.as_ref().and_then(|g| g.organization.as_ref()),
            users_api: data.okta_user.as_ref(),
            graph_groups: data.graph.as_ref().and_then(|g| g.groups.as_deref()),
        },
        mapping: &mapping,
        signed_in_at,
    });
    if data.groups_unresolved {
        note_unresolved_groups(&mut traits, &mapping);
    }
    let avatar = rehost_photo(&mut traits, data, public_url, verified.issuer, &account.key);
    // Claims are untrusted text: control characters (CR, LF, NUL, …) never reach the store,
    // the session, the pages or the sinks.
    let text = |key: &str| {
        claims
            .get(key)
            .and_then(Value::as_str)
            .map(|s| s.chars().filter(|c| !c.is_control()).collect::<String>())
            .map(|s| s.trim().chars().take(MAX_TEXT_CHARS).collect::<String>())
            .filter(|s| !s.is_empty())
    };
    // An address with a control character or a space in it is no address: none is kept.
    let usable = |address: &str| !address.chars().any(|c| c.is_control() || c.is_whitespace());
    let raw_email = claims.get("email").and_then(Value::as_str).map(str::trim);
    let email = match account.vouched_email {
        Some(address) if usable(&address) => Some(Email {
            address,
            vouched: true,
            verified: true,
        }),
        Some(_) => None,
        None => raw_email
            .filter(|e| usable(e))
            .and_then(|_| text("email"))
            .map(|e| Email {
                address: e.to_ascii_lowercase(),
                vouched: false,
                verified: claims.get("email_verified").and_then(Value::as_bool) == Some(true),
            }),
    };
    let groups = match data.groups_unresolved {
        true => None,
        false => Some(group_list(claims, data)),
    };
    let name = traits
        .traits
        .enrichment_full_name
        .clone()
        .or_else(|| text("name"));
    SignInFacts {
        provider: settings.name.clone(),
        issuer: verified.issuer.to_string(),
        subject: verified.subject.to_string(),
        account_key: account.key,
        email,
        name,
        sid: text("sid"),
        traits,
        created_at: account.created_at,
        avatar,
        signed_in_at,
        hosted_domain: account.hosted_domain,
        groups,
    }
}

/// The `groups` claim (a list of strings, or one string), or Graph's list when it was read for
/// a group overage.
fn group_list(claims: &Map<String, Value>, data: &ProviderData) -> Vec<String> {
    if let Some(groups) = data.graph.as_ref().and_then(|g| g.groups.as_ref()) {
        return groups.clone();
    }
    match claims.get("groups") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

impl SignInFacts {
    /// What the store writes for this sign-in.
    pub fn record(&self, link_by_email: bool) -> Result<SignIn, serde_json::Error> {
        Ok(SignIn {
            provider: self.provider.clone(),
            issuer: self.issuer.clone(),
            subject: self.account_key.clone(),
            email: self.email.as_ref().map(|e| e.address.clone()),
            email_verified: self.email.as_ref().is_some_and(|e| e.vouched),
            traits: serde_json::to_value(&self.traits.traits)?,
            provenance: serde_json::to_value(&self.traits.provenance)?,
            provider_created_at: self.created_at,
            at: self.signed_in_at,
            link_by_email,
            avatar: self.avatar.clone(),
        })
    }
}

/// The provenance of an Entra group overage that was not resolved: each trait mapped from the
/// `groups` claim that got no value says why, so the profile shows "unknown", not "no groups".
fn note_unresolved_groups(traits: &mut MappedTraits, mapping: &traits::TraitMapping) {
    for (name, pointers) in mapping {
        let from_groups = pointers
            .iter()
            .any(|p| p == "/groups" || p == "claims:/groups");
        if from_groups && traits.traits.get(name).is_none() {
            traits.provenance.insert(
                name.clone(),
                TraitSource {
                    source: GROUPS_UNRESOLVED.into(),
                    verified: false,
                },
            );
        }
    }
}

/// The provenance note of an unresolved Entra group overage.
pub const GROUPS_UNRESOLVED: &str =
    "notice:group overage — the ID token had too many groups to carry them; not read (needs graph = true)";

/// When Graph gave a photo and nothing else set the avatar: the photo to keep, with
/// `enrichment_avatar` pointing at where the bridge serves it (`{public_url}/avatars/{id}`).
/// Graph's own photo URL needs the user's token, so it is never handed on (providers.md §5).
fn rehost_photo(
    traits: &mut MappedTraits,
    data: &ProviderData,
    public_url: &Url,
    issuer: &str,
    account_key: &str,
) -> Option<Avatar> {
    if traits.traits.enrichment_avatar.is_some() {
        return None;
    }
    let photo = data.graph.as_ref()?.photo.as_ref()?;
    let avatar_id = Avatar::id_for(issuer, account_key, &photo.bytes);
    let url = public_url.join(&format!("avatars/{avatar_id}")).ok()?;
    traits.traits.enrichment_avatar = Some(url.to_string());
    traits.provenance.insert(
        "enrichment_avatar".into(),
        TraitSource {
            source: "graph:/me/photo".into(),
            verified: true,
        },
    );
    Some(Avatar {
        avatar_id,
        content_type: photo.content_type.into(),
        image: photo.bytes.to_vec(),
    })
}

/// Who made the request and where they came from, for the identify call's `context` (plain
/// data; its extractor lives with the routes).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The first language of `Accept-Language`.
    pub locale: Option<String>,
    pub anonymous_id: Option<String>,
    /// The landing page (`return_to`) and the login link's referrer.
    pub page: Option<Page>,
    /// The login link's UTM parameters.
    pub campaign: Option<Campaign>,
}

impl ClientInfo {
    /// What the sign-in's pending login remembered from `/login/{provider}`; without UTM
    /// parameters on the login link, those of the landing page.
    pub fn with_login(mut self, pending: &PendingLogin) -> Self {
        let landing = Url::parse(&pending.return_to).ok();
        self.anonymous_id = pending.anonymous_id.clone();
        self.campaign = pending
            .context
            .campaign
            .clone()
            .or_else(|| landing.as_ref().and_then(Campaign::from_url));
        self.page = landing.map(|url| Page::new(&url, pending.context.referrer.clone()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;
    use serde_json::json;

    fn settings(kind: &str, extra: &str) -> ProviderSettings {
        let toml = format!(
            "[[providers]]\nname = \"p\"\nkind = \"{kind}\"\nclient_id = \"c\"\nclient_secret = \"s\"\n{extra}"
        );
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, toml.as_bytes()).unwrap();
        Settings::load_with_env(Some(file.path()), Vec::new(), &crate::providers::KINDS)
            .unwrap()
            .providers
            .remove(0)
    }

    fn facts(settings: &ProviderSettings, claims: Value) -> SignInFacts {
        let claims = claims.as_object().unwrap().clone();
        let quirks = crate::providers::quirks_for(settings);
        facts_from(
            settings,
            quirks.as_ref(),
            Verified {
                issuer: "https://issuer.example",
                subject: claims["sub"].as_str().unwrap(),
                claims: &claims,
            },
            &ProviderData::default(),
            &Url::parse("https://login.example.com").unwrap(),
            Utc::now(),
        )
    }

    #[test]
    fn control_characters_in_claims_never_reach_the_facts() {
        for kind in ["google", "oidc"] {
            let settings = match kind {
                "google" => settings("google", ""),
                _ => settings("oidc", "issuer = \"https://id.example.com\""),
            };
            let f = facts(
                &settings,
                json!({"sub": "1", "email": "ana@gmail.com\r\nX-Injected: 1",
                       "email_verified": true, "name": "Ana\u{0007} Lima\r\n"}),
            );
            assert_eq!(f.email, None, "{kind}");
            assert_eq!(f.name.as_deref(), Some("Ana Lima"), "{kind}");
        }
    }

    #[test]
    fn the_facts_say_whether_the_provider_vouches_for_the_email() {
        let google = settings("google", "");
        let f = facts(
            &google,
            json!({"sub": "1", "email": " Ana@Gmail.com", "email_verified": true, "name": "Ana"}),
        );
        assert_eq!(
            f.email,
            Some(Email {
                address: "ana@gmail.com".into(),
                vouched: true,
                verified: true,
            })
        );
        assert_eq!(f.name.as_deref(), Some("Ana"));
        let okta = settings("okta", "domain = \"acme.okta.com\"");
        let f = facts(
            &okta,
            json!({"sub": "2", "email": "p@globex.com", "email_verified": true, "sid": "s-1"}),
        );
        assert_eq!(
            f.email,
            Some(Email {
                address: "p@globex.com".into(),
                vouched: false,
                verified: true,
            })
        );
        assert_eq!(f.sid.as_deref(), Some("s-1"));
        let record = f.record(true).unwrap();
        assert!(!record.email_verified && record.link_by_email);
    }
}
