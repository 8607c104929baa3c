//! Microsoft Graph enrichment (providers.md §2.3(d)): `GET /me?$select=…` and
//! `GET /organization`, with the user's Graph access token (`User.Read`).
//!
//! A `/me` failure is an error for the caller to log and count; the sign-in goes on with the
//! claims alone. An `/organization` failure only leaves `organization` empty. The access token is
//! sent as a bearer header and never appears in logs, `Debug` output or errors.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::fetch::{self, FetchError};

/// The default Graph base URL; the fetcher joins `me` and `organization` onto it.
pub const DEFAULT_BASE_URL: &str = "https://graph.microsoft.com/v1.0/";

/// The `/me` fields read for enrichment (`$select`; most are not returned by default).
pub const ME_SELECT: &str = "id,displayName,givenName,surname,mail,userPrincipalName,jobTitle,companyName,department,officeLocation,mobilePhone,businessPhones,city,state,country,usageLocation,preferredLanguage,createdDateTime";

/// What Graph said about the signed-in user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphProfile {
    /// The `/me` object as returned.
    pub me: Map<String, Value>,
    /// `value[0]` of `/organization` (`id`, `displayName`, `verifiedDomains`), if it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<Map<String, Value>>,
}

/// Why a Graph call failed. The messages never contain the access token.
pub type GraphError = FetchError;

/// How Graph is named in errors.
const SERVICE: &str = "Microsoft Graph";

/// Fetches `/me` (required) and `/organization` (best effort).
#[tracing::instrument(skip_all, fields(base_url = %base_url))]
pub async fn fetch_graph(
    http: &reqwest::Client,
    base_url: &Url,
    access_token: &str,
    timeout: Duration,
) -> Result<GraphProfile, GraphError> {
    let mut me_url = join(base_url, "me", "/me")?;
    me_url.set_query(Some(&format!("$select={ME_SELECT}")));
    let me = get_object(http, me_url, access_token, timeout, "/me").await?;

    let organization = match join(base_url, "organization", "/organization") {
        Ok(url) => match get_object(http, url, access_token, timeout, "/organization").await {
            Ok(body) => first_value(body),
            Err(e) => {
                tracing::warn!(error = %e, "Graph /organization failed; going on without it");
                None
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "Graph /organization URL invalid");
            None
        }
    };
    Ok(GraphProfile { me, organization })
}

fn join(base: &Url, path: &str, endpoint: &'static str) -> Result<Url, GraphError> {
    // A base without a trailing slash would drop its last segment on join.
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path).map_err(|e| GraphError::Transport {
        service: SERVICE,
        endpoint,
        message: format!("bad URL: {e}"),
    })
}

/// `value[0]` of an OData collection.
fn first_value(mut body: Map<String, Value>) -> Option<Map<String, Value>> {
    match body.remove("value")? {
        Value::Array(items) => items.into_iter().next().and_then(|v| match v {
            Value::Object(o) => Some(o),
            _ => None,
        }),
        _ => None,
    }
}

async fn get_object(
    http: &reqwest::Client,
    url: Url,
    token: &str,
    timeout: Duration,
    endpoint: &'static str,
) -> Result<Map<String, Value>, GraphError> {
    fetch::get_object(http, url, token, timeout, SERVICE, endpoint).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::{Path, RawQuery};
    use axum::http::{HeaderMap, StatusCode as Status};
    use axum::response::{IntoResponse, Response};
    use axum::Json;
    use serde_json::json;

    const TOKEN: &str = "eyJ0eXAi.secret-graph-token";

    async fn graph(
        Path((scenario, endpoint)): Path<(String, String)>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
    ) -> Response {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {TOKEN}")) || scenario == "unauthorized" {
            return Status::UNAUTHORIZED.into_response();
        }
        match (scenario.as_str(), endpoint.as_str()) {
            ("broken", _) => Status::INTERNAL_SERVER_ERROR.into_response(),
            ("slow", _) => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Json(json!({})).into_response()
            }
            ("garbage", "me") => "<html>not json</html>".into_response(),
            ("no-org", "organization") => Status::FORBIDDEN.into_response(),
            (_, "me") => {
                assert_eq!(query.as_deref(), Some(&*format!("$select={ME_SELECT}")));
                Json(
                    json!({"id": "c0a8", "displayName": "Jane Doe", "jobTitle": "CTO",
                    "usageLocation": "US", "businessPhones": ["+1 425 882 8080"]}),
                )
                .into_response()
            }
            (_, "organization") => Json(json!({"value": [{"id": "4f8e", "displayName": "Contoso",
                "verifiedDomains": [{"name": "contoso.com"}]}]}))
            .into_response(),
            _ => Status::NOT_FOUND.into_response(),
        }
    }

    async fn serve() -> Url {
        let app =
            axum::Router::new().route("/{scenario}/v1.0/{endpoint}", axum::routing::get(graph));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Url::parse(&format!("http://{addr}/")).unwrap()
    }

    async fn fetch(
        root: &Url,
        scenario: &str,
        timeout_ms: u64,
    ) -> Result<GraphProfile, GraphError> {
        let base = root.join(&format!("{scenario}/v1.0/")).unwrap();
        let http = reqwest::Client::new();
        fetch_graph(&http, &base, TOKEN, Duration::from_millis(timeout_ms)).await
    }

    #[tokio::test]
    async fn graph_profile_and_organization_are_fetched() {
        let root = serve().await;
        let p = fetch(&root, "ok", 5000).await.unwrap();
        assert_eq!(p.me["jobTitle"], "CTO");
        assert_eq!(p.organization.unwrap()["displayName"], "Contoso");
    }

    #[tokio::test]
    async fn failing_organization_leaves_it_empty() {
        let root = serve().await;
        let p = fetch(&root, "no-org", 5000).await.unwrap();
        assert_eq!(p.me["displayName"], "Jane Doe");
        assert_eq!(p.organization, None);
    }

    #[tokio::test]
    async fn me_failures_are_errors_that_never_show_the_token() {
        let root = serve().await;
        type Check = fn(&GraphError) -> bool;
        let cases: [(&str, u64, Check); 4] = [
            (
                "broken",
                5000,
                |e| matches!(e, GraphError::Http { status, .. } if status.as_u16() == 500),
            ),
            (
                "unauthorized",
                5000,
                |e| matches!(e, GraphError::Http { status, .. } if status.as_u16() == 401),
            ),
            ("slow", 200, |e| {
                matches!(
                    e,
                    GraphError::Timeout {
                        endpoint: "/me",
                        ..
                    }
                )
            }),
            ("garbage", 5000, |e| matches!(e, GraphError::Body { .. })),
        ];
        for (scenario, timeout, expected) in cases {
            let err = fetch(&root, scenario, timeout).await.unwrap_err();
            assert!(expected(&err), "{scenario}: {err:?}");
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains("secret-graph-token"),
                "{scenario}: token leaked: {shown}"
            );
        }
    }

    #[tokio::test]
    async fn unreachable_graph_is_a_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let base = Url::parse(&format!("http://{addr}/v1.0")).unwrap();
        let err = fetch_graph(
            &reqwest::Client::new(),
            &base,
            TOKEN,
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                err,
                GraphError::Transport {
                    endpoint: "/me",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
