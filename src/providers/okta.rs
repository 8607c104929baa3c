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

/// How the Users API is named in errors.
const SERVICE: &str = "the Okta Users API";

/// The org's base URL for a `domain` (a host, or a full URL for custom/test setups).
fn org_url(domain: &str) -> String {
    if domain.contains("://") {
        domain.trim_end_matches('/').to_string()
    } else {
        format!("https://{}", domain.trim_end_matches('/'))
    }
}

/// The issuer for an Okta `domain` and optional authorization server id.
pub fn issuer(domain: &str, authorization_server: Option<&str>) -> String {
    let base = org_url(domain);
    match authorization_server {
        Some(id) if !id.is_empty() => format!("{base}/oauth2/{id}"),
        _ => base,
    }
}

/// `https://{domain}/api/v1/users/me`.
pub fn users_me_url(domain: &str) -> Result<Url, url::ParseError> {
    Url::parse(&format!("{}/api/v1/users/me", org_url(domain)))
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
    #[test]
    fn org_and_custom_authorization_servers() {
        assert_eq!(
            super::issuer("acme.okta.com", None),
            "https://acme.okta.com"
        );
        assert_eq!(
            super::issuer("acme.okta.com", Some("default")),
            "https://acme.okta.com/oauth2/default"
        );
        assert_eq!(
            super::issuer("http://127.0.0.1:9/", Some("x")),
            "http://127.0.0.1:9/oauth2/x"
        );
        assert_eq!(
            super::users_me_url("acme.okta.com").unwrap().as_str(),
            "https://acme.okta.com/api/v1/users/me"
        );
        assert_eq!(
            super::users_me_url("http://127.0.0.1:9/").unwrap().as_str(),
            "http://127.0.0.1:9/api/v1/users/me"
        );
    }
}
