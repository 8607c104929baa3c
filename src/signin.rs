//! What happens after a verified login: optional Microsoft Graph or Okta Users API enrichment,
//! claims → traits, and the profile write (with its outbox messages) in one database
//! transaction.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::config::{KindSettings, ProviderKind};
use crate::providers::graph::{self, GraphProfile};
use crate::providers::oidc::VerifiedLogin;
use crate::providers::okta;
use crate::providers::Provider;
use crate::store::Avatar;
use crate::traits::{self, MappedTraits, MappingInput, TraitSource};

/// The traits of a sign-in and what the provider says about the account.
pub struct Enriched {
    pub mapped: MappedTraits,
    pub graph: Option<GraphProfile>,
    /// The provider's own account-creation time, when it gives one.
    pub provider_created_at: Option<DateTime<Utc>>,
    /// The email, when the provider is authoritative for it (see [`authoritative_email`]).
    pub verified_email: Option<String>,
}

/// Call Graph or the Okta Users API when configured (a failure never fails the sign-in) and
/// map the claims.
#[tracing::instrument(skip_all, fields(provider = %provider.name()))]
pub async fn enrich(
    provider: &Provider,
    login: &VerifiedLogin,
    signed_in_at: DateTime<Utc>,
) -> Enriched {
    let settings = &provider.settings;
    let graph_url = match &settings.kind {
        KindSettings::Microsoft(ms) if ms.graph => Some(&ms.graph_url),
        _ => None,
    };
    let graph = if let Some(base) = graph_url {
        let started = std::time::Instant::now();
        let graph = graph::fetch_graph(
            provider.http(),
            base,
            login.access_token.secret(),
            provider.timeout(),
        )
        .await;
        crate::metrics::provider_call(provider.name(), "graph", started.elapsed().as_secs_f64());
        match graph {
            Ok(profile) => {
                tracing::debug!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "graph profile fetched"
                );
                Some(profile)
            }
            Err(e) => {
                // Traits are filled from the claims; the sign-in goes on.
                tracing::warn!(error = %e, "microsoft graph enrichment failed");
                crate::metrics::graph_failure(provider.name());
                None
            }
        }
    } else {
        None
    };
    let okta_user = match &settings.kind {
        KindSettings::Okta(okta) if okta.users_api => okta_user(provider, login).await,
        _ => None,
    };
    let mapping = settings.trait_mapping();
    let mapped = traits::map_traits(&MappingInput {
        kind: settings.kind(),
        claims: &login.claims,
        graph: graph.as_ref(),
        okta_user: okta_user.as_ref(),
        mapping: &mapping,
        signed_in_at,
    });
    let provider_created_at = traits::account_created_at(
        settings.kind(),
        &login.claims,
        graph.as_ref(),
        okta_user.as_ref(),
    );
    let trust_email_verified =
        matches!(&settings.kind, KindSettings::Oidc(o) if o.trust_email_verified);
    let verified_email = authoritative_email(
        settings.kind(),
        trust_email_verified,
        &login.claims,
        graph.as_ref(),
    );
    Enriched {
        mapped,
        graph,
        provider_created_at,
        verified_email,
    }
}

/// When Graph gave a photo and nothing else set the avatar: the photo to keep, with
/// `enrichment_avatar` pointing at where the bridge serves it (`{public_url}/avatars/{id}`).
/// Graph's own photo URL needs the user's token, so it is never handed on (providers.md §5).
pub fn rehost_photo(
    enriched: &mut Enriched,
    public_url: &url::Url,
    issuer: &str,
    subject: &str,
) -> Option<Avatar> {
    if enriched.mapped.traits.enrichment_avatar.is_some() {
        return None;
    }
    let photo = enriched.graph.as_ref()?.photo.as_ref()?;
    let avatar_id = Avatar::id_for(issuer, subject, &photo.bytes);
    let url = public_url.join(&format!("avatars/{avatar_id}")).ok()?;
    enriched.mapped.traits.enrichment_avatar = Some(url.to_string());
    enriched.mapped.provenance.insert(
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

/// The user's record from the Okta Users API, or `None` (logged and counted) when it fails.
async fn okta_user(provider: &Provider, login: &VerifiedLogin) -> Option<Map<String, Value>> {
    let KindSettings::Okta(settings) = &provider.settings.kind else {
        return None;
    };
    let domain = settings.domain.as_ref()?;
    let url = match okta::users_me_url(domain) {
        Ok(url) => url,
        Err(e) => {
            tracing::warn!(error = %e, "okta users api: bad domain");
            crate::metrics::users_api_failure(provider.name());
            return None;
        }
    };
    let started = std::time::Instant::now();
    let user = okta::fetch_user(
        provider.http(),
        url,
        login.access_token.secret(),
        provider.timeout(),
    )
    .await;
    crate::metrics::provider_call(
        provider.name(),
        "users_api",
        started.elapsed().as_secs_f64(),
    );
    match user {
        Ok(user) => Some(user),
        Err(e) => {
            // Traits are filled from the claims and the account's creation time falls back to
            // the first sign-in; the sign-in goes on.
            tracing::warn!(error = %e, "okta users api enrichment failed");
            crate::metrics::users_api_failure(provider.name());
            None
        }
    }
}

/// The email address when this provider is authoritative for it, else `None`
/// (../shared/providers.md §6). Only such emails may link accounts across providers:
/// - Google: `email_verified` and the address is Gmail, or `hd` is present and is its domain.
/// - Microsoft: never the plain `email` claim (nOAuth). Only `xms_edov = true`, a personal
///   account (Microsoft owns those addresses), or a domain in Graph's `verifiedDomains`.
/// - Okta: never by default (each org's admin controls profile emails; Okta itself says
///   `email_verified` is not proof of ownership).
/// - Other OpenID providers: `email_verified = true` only when `trust_email_verified` is set.
pub fn authoritative_email(
    kind: ProviderKind,
    trust_email_verified: bool,
    claims: &Map<String, Value>,
    graph: Option<&GraphProfile>,
) -> Option<String> {
    let email = claims.get("email")?.as_str()?.trim().to_ascii_lowercase();
    let (_, domain) = email.rsplit_once('@')?;
    if domain.is_empty() {
        return None;
    }
    let verified = claims.get("email_verified").and_then(Value::as_bool) == Some(true);
    let ok = match kind {
        ProviderKind::Google => {
            let hd = claims
                .get("hd")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase);
            verified
                && (matches!(domain, "gmail.com" | "googlemail.com")
                    || hd.as_deref() == Some(domain))
        }
        ProviderKind::Microsoft => {
            let edov = claims.get("xms_edov").and_then(|v| {
                v.as_bool()
                    .or_else(|| v.as_str().map(|s| s == "1" || s == "true"))
            });
            let personal = claims.get("tid").and_then(Value::as_str) == Some(traits::MSA_TENANT_ID);
            let tenant_domain = graph
                .and_then(|g| g.organization.as_ref())
                .and_then(|o| o.get("verifiedDomains"))
                .and_then(Value::as_array)
                .is_some_and(|domains| {
                    domains.iter().any(|d| {
                        d.get("name")
                            .and_then(Value::as_str)
                            .is_some_and(|n| n.eq_ignore_ascii_case(domain))
                    })
                });
            edov == Some(true) || personal || tenant_domain
        }
        ProviderKind::Okta => false,
        ProviderKind::Oidc => trust_email_verified && verified,
    };
    ok.then_some(email)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn only_authoritative_providers_vouch_for_an_email() {
        use ProviderKind::*;
        let gmail = claims(json!({"email": "Ana@gmail.com", "email_verified": true}));
        assert_eq!(
            authoritative_email(Google, false, &gmail, None).as_deref(),
            Some("ana@gmail.com")
        );
        let other = claims(json!({"email": "ana@company.com", "email_verified": true}));
        assert_eq!(
            authoritative_email(Google, false, &other, None),
            None,
            "consumer Google account on a third-party address"
        );
        let workspace =
            claims(json!({"email": "m@acme.io", "email_verified": true, "hd": "acme.io"}));
        assert!(authoritative_email(Google, false, &workspace, None).is_some());
        let unverified = claims(json!({"email": "ana@gmail.com", "email_verified": false}));
        assert_eq!(authoritative_email(Google, false, &unverified, None), None);

        let ms_plain = claims(
            json!({"email": "jane@contoso.com", "tid": "4f8e1c2a-7b3d-4e5f-9a10-2c3d4e5f6a7b"}),
        );
        assert_eq!(
            authoritative_email(Microsoft, false, &ms_plain, None),
            None,
            "nOAuth: plain email never counts"
        );
        let ms_edov = claims(json!({"email": "jane@contoso.com", "xms_edov": true}));
        assert!(authoritative_email(Microsoft, false, &ms_edov, None).is_some());
        let msa = claims(json!({"email": "sam@outlook.com", "tid": traits::MSA_TENANT_ID}));
        assert!(authoritative_email(Microsoft, false, &msa, None).is_some());
        let graph = GraphProfile {
            me: Map::new(),
            organization: Some(claims(
                json!({"verifiedDomains": [{"name": "contoso.com"}]}),
            )),
            photo: None,
        };
        assert!(authoritative_email(Microsoft, false, &ms_plain, Some(&graph)).is_some());

        let okta = claims(json!({"email": "p@globex.com", "email_verified": true}));
        assert_eq!(authoritative_email(Okta, true, &okta, None), None);
        assert_eq!(authoritative_email(Oidc, false, &okta, None), None);
        assert!(authoritative_email(Oidc, true, &okta, None).is_some());
    }
}

/// Who made the request, for the identify call's `context`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub anonymous_id: Option<String>,
}

impl ClientInfo {
    pub fn with_anonymous_id(mut self, anonymous_id: Option<String>) -> Self {
        self.anonymous_id = anonymous_id;
        self
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<crate::client_ip::ClientIp>()
            .map(|c| c.0.to_string())
            .or_else(|| {
                parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip().to_string())
            });
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        Ok(ClientInfo {
            ip,
            user_agent,
            anonymous_id: None,
        })
    }
}
