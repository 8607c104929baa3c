//! Okta: the issuer is the org (`https://{domain}`) or a custom authorization server
//! (`https://{domain}/oauth2/{id}`). Its ID tokens are thin in the code flow, so userinfo is
//! always called (the generic flow does that for every provider with the endpoint).
//!
//! With `users_api = true` (org authorization server, scope `okta.users.read.self`) the bridge
//! also reads the user's own record from the Users API, `GET /api/v1/users/me`: the only place
//! Okta gives the account's `created` time and `status` (providers.md §3.3–3.4). A failure
//! there never fails the sign-in.

use std::time::Duration;

use serde_json::{Map, Value};
use url::Url;

use super::fetch::{self, FetchError};
use crate::config::{OktaDomain, OktaSettings};

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
}
