//! One GET of a provider's JSON API with the user's access token (Microsoft Graph, the Okta
//! Users API): a bearer header, a timeout over the whole exchange, a size cap, and errors that
//! name the service and endpoint but never the token.

use std::time::Duration;

use axum::body::Bytes;
use reqwest::StatusCode;
use serde_json::{Map, Value};
use url::Url;

/// JSON responses larger than this are refused (a user object is a few KB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a provider API call failed. The messages never contain the access token.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{service} answered {status} for {endpoint}")]
    Http {
        service: &'static str,
        endpoint: &'static str,
        status: StatusCode,
    },
    #[error("{service} did not answer {endpoint} in time")]
    Timeout {
        service: &'static str,
        endpoint: &'static str,
    },
    #[error("could not reach {service} for {endpoint}: {message}")]
    Transport {
        service: &'static str,
        endpoint: &'static str,
        message: String,
    },
    #[error("{service} sent an unreadable {endpoint} response: {message}")]
    Body {
        service: &'static str,
        endpoint: &'static str,
        message: String,
    },
}

/// `GET url` with `Authorization: Bearer {token}`; the answer must be a JSON object.
pub async fn get_object(
    http: &reqwest::Client,
    url: Url,
    token: &str,
    timeout: Duration,
    service: &'static str,
    endpoint: &'static str,
) -> Result<Map<String, Value>, FetchError> {
    let call = Call::new(http, token, timeout, (service, endpoint));
    let bytes = call.get(url, "application/json", MAX_BODY_BYTES).await?;
    serde_json::from_slice::<Map<String, Value>>(&bytes).map_err(|e| FetchError::Body {
        service,
        endpoint,
        message: e.to_string(),
    })
}

/// `GET url` for raw bytes of at most `max_bytes`; `Ok(None)` when the answer is 404 (for
/// Graph's photo: the user has none).
pub async fn get_bytes(
    http: &reqwest::Client,
    url: Url,
    token: &str,
    timeout: Duration,
    (service, endpoint): (&'static str, &'static str),
    max_bytes: usize,
) -> Result<Option<Bytes>, FetchError> {
    let call = Call::new(http, token, timeout, (service, endpoint));
    match call.get(url, "image/*", max_bytes).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(FetchError::Http { status, .. }) if status == StatusCode::NOT_FOUND => Ok(None),
        Err(e) => Err(e),
    }
}

struct Call<'a> {
    http: &'a reqwest::Client,
    token: &'a str,
    timeout: Duration,
    service: &'static str,
    endpoint: &'static str,
}

impl<'a> Call<'a> {
    fn new(
        http: &'a reqwest::Client,
        token: &'a str,
        timeout: Duration,
        (service, endpoint): (&'static str, &'static str),
    ) -> Self {
        Call {
            http,
            token,
            timeout,
            service,
            endpoint,
        }
    }

    #[tracing::instrument(name = "provider_call", skip_all, fields(stage = self.service, endpoint = self.endpoint))]
    async fn get(&self, url: Url, accept: &str, max_bytes: usize) -> Result<Bytes, FetchError> {
        let (service, endpoint) = (self.service, self.endpoint);
        let classify = |e: reqwest::Error| {
            if e.is_timeout() {
                FetchError::Timeout { service, endpoint }
            } else {
                // Only the error kind (no URL with its query, no headers) reaches the message.
                FetchError::Transport {
                    service,
                    endpoint,
                    message: e.without_url().to_string(),
                }
            }
        };
        let too_large = || FetchError::Body {
            service,
            endpoint,
            message: "response too large".into(),
        };
        let call = async {
            let response = self
                .http
                .get(url)
                .bearer_auth(self.token)
                .header(reqwest::header::ACCEPT, accept)
                .headers(crate::telemetry::trace_headers())
                .send()
                .await
                .map_err(classify)?;
            let status = response.status();
            if !status.is_success() {
                return Err(FetchError::Http {
                    service,
                    endpoint,
                    status,
                });
            }
            match read_capped(response, max_bytes).await {
                Ok(body) => Ok(Bytes::from(body)),
                Err(BodyError::TooLarge) => Err(too_large()),
                Err(BodyError::Transport(e)) => Err(classify(e)),
            }
        };
        // The timeout covers the whole exchange, body included.
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| FetchError::Timeout { service, endpoint })?
    }
}

/// Why [`read_capped`] read no body.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// More than the cap.
    TooLarge,
    Transport(reqwest::Error),
}

/// Read `response`'s body, refusing more than `max_bytes`: at once when `Content-Length` says
/// so, else chunk by chunk (a chunked answer has no length), so no more than the cap is held.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, BodyError> {
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
