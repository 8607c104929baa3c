//! Microsoft Graph enrichment (providers.md §2.3(d)): `GET /me?$select=…` and
//! `GET /organization`, with the user's Graph access token (`User.Read`); and for an Entra group
//! overage, the user's group ids from `GET /me/transitiveMemberOf` (also `User.Read`).
//!
//! A `/me` failure is an error for the caller to log and count; the sign-in goes on with the
//! claims alone. An `/organization` failure only leaves `organization` empty. The access token is
//! sent as a bearer header and never appears in logs, `Debug` output or errors.

use std::time::Duration;

use axum::body::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::fetch::{self, FetchError};

/// The scope Graph's `/me` needs.
pub const SCOPE: &str = "User.Read";

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
    /// The user's photo (`/me/photo/$value`), when they have one and it is a known image type.
    #[serde(skip)]
    pub photo: Option<Photo>,
    /// Group ids from `/me/transitiveMemberOf`, read only when the ID token had too many groups
    /// to carry them (`_claim_names.groups` or `hasgroups`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

/// A profile photo: the bytes and the image type read from them (never from the header).
#[derive(Clone, PartialEq)]
pub struct Photo {
    pub content_type: &'static str,
    pub bytes: Bytes,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Photo")
            .field("content_type", &self.content_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Photos larger than this are not kept (Graph's largest, 648×648, is far smaller).
pub const MAX_PHOTO_BYTES: usize = 512 * 1024;

/// The image type of `bytes` from their signature: JPEG, PNG, GIF or WebP, else `None` (SVG and
/// anything else are refused: an SVG is a document that can carry script).
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some("image/jpeg"),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some("image/png"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

/// Why a Graph call failed. The messages never contain the access token.
pub type GraphError = FetchError;

/// How Graph is named in errors.
const SERVICE: &str = "Microsoft Graph";

/// Fetches `/me` (required), `/organization` and `/me/photo/$value` (best effort).
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
    let photo = match join(base_url, "me/photo/$value", "/me/photo") {
        Ok(url) => photo(http, url, access_token, timeout).await,
        Err(_) => None,
    };
    Ok(GraphProfile {
        me,
        organization,
        photo,
        groups: None,
    })
}

/// The most pages of `/me/transitiveMemberOf` read (999 objects each).
const MAX_GROUP_PAGES: usize = 5;

/// The ids of the groups the user belongs to, directly or through other groups, as the `groups`
/// claim would have carried them. Pages are followed only on Graph's own origin: the bearer token
/// never goes anywhere a response names.
#[tracing::instrument(skip_all)]
pub async fn fetch_groups(
    http: &reqwest::Client,
    base_url: &Url,
    access_token: &str,
    timeout: Duration,
) -> Result<Vec<String>, GraphError> {
    const ENDPOINT: &str = "/me/transitiveMemberOf";
    let mut url = join(base_url, "me/transitiveMemberOf", ENDPOINT)?;
    url.set_query(Some("$select=id&$top=999"));
    let mut ids = Vec::new();
    for _ in 0..MAX_GROUP_PAGES {
        let mut page = get_object(http, url, access_token, timeout, ENDPOINT).await?;
        if let Some(Value::Array(items)) = page.get("value") {
            ids.extend(items.iter().filter_map(group_id));
        }
        let next = page
            .remove("@odata.nextLink")
            .and_then(|v| v.as_str().and_then(|s| Url::parse(s).ok()));
        match next {
            Some(next) if next.origin() == base_url.origin() => url = next,
            Some(_) => {
                tracing::warn!("Graph named a next page on another origin; not followed");
                break;
            }
            None => break,
        }
    }
    Ok(ids)
}

/// The id of a group in a directory-object list (roles and administrative units are skipped).
fn group_id(item: &Value) -> Option<String> {
    let kind = item.get("@odata.type").and_then(Value::as_str);
    if kind.is_some_and(|k| k != "#microsoft.graph.group") {
        return None;
    }
    item.get("id")?.as_str().map(str::to_owned)
}

/// The user's photo, or `None` (no photo: 404; a failure or an unknown type: logged).
async fn photo(http: &reqwest::Client, url: Url, token: &str, timeout: Duration) -> Option<Photo> {
    let bytes = fetch::get_bytes(
        http,
        url,
        token,
        timeout,
        (SERVICE, "/me/photo"),
        MAX_PHOTO_BYTES,
    )
    .await;
    match bytes {
        Ok(Some(bytes)) => match image_type(&bytes) {
            Some(content_type) => Some(Photo {
                content_type,
                bytes,
            }),
            None => {
                tracing::warn!(
                    bytes = bytes.len(),
                    "Graph photo is not a JPEG, PNG, GIF or WebP; skipped"
                );
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "Graph /me/photo failed; going on without it");
            None
        }
    }
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

    /// A 1×1 PNG's first bytes (the signature is what counts).
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    async fn graph_photo(Path(scenario): Path<String>, headers: HeaderMap) -> Response {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(&format!("Bearer {TOKEN}")) {
            return Status::UNAUTHORIZED.into_response();
        }
        match scenario.as_str() {
            "ok" => ([("content-type", "image/png")], PNG).into_response(),
            // Claims to be a JPEG, is a script-carrying SVG: refused by its bytes.
            "svg" => (
                [("content-type", "image/jpeg")],
                "<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            )
                .into_response(),
            "huge" => vec![0xFF_u8; MAX_PHOTO_BYTES + 1].into_response(),
            "broken" => Status::INTERNAL_SERVER_ERROR.into_response(),
            _ => Status::NOT_FOUND.into_response(),
        }
    }

    async fn serve() -> Url {
        let app = axum::Router::new()
            .route("/{scenario}/v1.0/{endpoint}", axum::routing::get(graph))
            .route(
                "/{scenario}/v1.0/me/photo/$value",
                axum::routing::get(graph_photo),
            );
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
    async fn the_photo_is_kept_only_when_its_bytes_are_a_known_image() {
        let root = serve().await;
        let p = fetch(&root, "ok", 5000).await.unwrap();
        let photo = p.photo.expect("a PNG photo");
        assert_eq!(photo.content_type, "image/png");
        assert_eq!(&photo.bytes[..], PNG);
        for scenario in ["no-org", "svg", "huge"] {
            let p = fetch(&root, scenario, 5000).await.unwrap();
            assert_eq!(p.photo, None, "{scenario}");
            assert_eq!(
                p.me["displayName"], "Jane Doe",
                "{scenario}: /me still read"
            );
        }
        assert_eq!(image_type(b"GIF89a..."), Some("image/gif"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image_type(b"<html>"), None);
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
