//! Sink credentials: a static bearer token, or an OAuth 2.0 client-credentials token (spec
//! §1.6.1: the `telemetry_apis` scope) fetched with the oauth2 crate, cached until shortly
//! before it expires and shared by every delivery of the sink; a 401 invalidates it once.
//! Tokens and client secrets never reach `Debug` output, logs or error messages.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, EndpointNotSet, EndpointSet, Scope, TokenResponse, TokenUrl};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tracing::Instrument;

use crate::config::{Secret, SinkSettings, SinkTokenSettings};

/// Refresh a cached token this long before it expires.
const EARLY: Duration = Duration::from_secs(60);
/// Lifetime assumed when the token response has no `expires_in`.
const DEFAULT_TTL: Duration = Duration::from_secs(300);

type TokenClient =
    BasicClient<EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// How a sink's bearer token is obtained. Cheap to clone; clones share the cache.
#[derive(Clone)]
pub enum Credentials {
    None,
    Static(Secret),
    ClientCredentials(Arc<TokenSource>),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::None => f.write_str("Credentials::None"),
            Credentials::Static(_) => f.write_str("Credentials::Static([redacted])"),
            Credentials::ClientCredentials(_) => f.write_str("Credentials::ClientCredentials"),
        }
    }
}

/// A bearer token as handed to one request; `generation` tells `invalidate` whether the
/// cache still holds this very token.
#[derive(Clone)]
pub struct BearerToken {
    secret: Secret,
    generation: u64,
}

impl BearerToken {
    pub fn expose(&self) -> &str {
        self.secret.expose()
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// The token could not be obtained; the message says why without any secret.
#[derive(Debug, thiserror::Error)]
#[error("token request to {token_url} failed: {reason}")]
pub struct TokenError {
    token_url: String,
    reason: String,
}

/// A client-credentials grant and its cached token.
pub struct TokenSource {
    client: TokenClient,
    token_url: String,
    scope: String,
    audience: Option<String>,
    http: reqwest::Client,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    token: Option<(Secret, Instant)>,
    generation: u64,
    fetches: u64,
}

impl Credentials {
    /// The credentials configured for `sink`; `http` must not follow redirects.
    pub fn for_sink(sink: &SinkSettings, http: reqwest::Client) -> Credentials {
        if let Some(token) = &sink.token {
            Credentials::ClientCredentials(Arc::new(TokenSource::new(token, http)))
        } else if let Some(token) = &sink.bearer_token {
            Credentials::Static(token.clone())
        } else {
            Credentials::None
        }
    }

    /// The bearer token for the next request, fetching one if the cache is empty or stale.
    pub async fn bearer(&self) -> Result<Option<BearerToken>, TokenError> {
        match self {
            Credentials::None => Ok(None),
            Credentials::Static(secret) => Ok(Some(BearerToken {
                secret: secret.clone(),
                generation: 0,
            })),
            Credentials::ClientCredentials(source) => source.token().await.map(Some),
        }
    }

    /// The sink refused `token` (401): forget it, so the next `bearer` fetches a new one.
    /// Returns whether a fresh token can be tried (only client-credentials tokens).
    pub async fn invalidate(&self, token: &BearerToken) -> bool {
        match self {
            Credentials::ClientCredentials(source) => {
                let mut cache = source.cache.lock().await;
                if cache.generation == token.generation {
                    cache.token = None;
                }
                true
            }
            _ => false,
        }
    }

    /// How many tokens were fetched from the token endpoint (metrics, tests).
    pub async fn fetches(&self) -> u64 {
        match self {
            Credentials::ClientCredentials(source) => source.cache.lock().await.fetches,
            _ => 0,
        }
    }
}

impl TokenSource {
    fn new(settings: &SinkTokenSettings, http: reqwest::Client) -> TokenSource {
        // Validation requires a client secret (from the file or the environment).
        let secret = settings
            .client_secret
            .as_ref()
            .map(|s| s.expose().to_string())
            .unwrap_or_default();
        let client = BasicClient::new(ClientId::new(settings.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret))
            .set_token_uri(TokenUrl::from_url(settings.token_url.clone()));
        TokenSource {
            client,
            token_url: settings.token_url.to_string(),
            scope: settings.scope.clone(),
            audience: settings.audience.clone(),
            http,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The cached token, or a new one. The lock is held while fetching, so concurrent
    /// deliveries wait for one token request instead of each making their own.
    async fn token(&self) -> Result<BearerToken, TokenError> {
        let mut cache = self.cache.lock().await;
        if let Some((secret, refresh_at)) = &cache.token {
            if Instant::now() < *refresh_at {
                return Ok(BearerToken {
                    secret: secret.clone(),
                    generation: cache.generation,
                });
            }
        }
        let (secret, ttl) = self.fetch().await?;
        let early = if ttl > EARLY * 2 { EARLY } else { ttl / 2 };
        cache.generation += 1;
        cache.fetches += 1;
        cache.token = Some((secret.clone(), Instant::now() + ttl - early));
        Ok(BearerToken {
            secret,
            generation: cache.generation,
        })
    }

    async fn fetch(&self) -> Result<(Secret, Duration), TokenError> {
        let mut request = self.client.exchange_client_credentials();
        for scope in self.scope.split_whitespace() {
            request = request.add_scope(Scope::new(scope.to_string()));
        }
        if let Some(audience) = &self.audience {
            request = request.add_extra_param("audience", audience.clone());
            // RFC 8707 wants an absolute URI as `resource`; Auth0-style audiences may not be.
            if url::Url::parse(audience).is_ok() {
                request = request.add_extra_param("resource", audience.clone());
            }
        }
        let response = request
            .request_async(&crate::providers::Traced::new(
                &self.http,
                crate::providers::DEFAULT_MAX_TOKEN_BYTES,
            ))
            .instrument(tracing::info_span!("sink_token"))
            .await
            .map_err(|e| self.error(describe(&e)))?;
        let ttl = response.expires_in().unwrap_or(DEFAULT_TTL);
        Ok((Secret::new(response.access_token().secret().clone()), ttl))
    }

    fn error(&self, reason: String) -> TokenError {
        TokenError {
            token_url: self.token_url.clone(),
            reason,
        }
    }
}

/// The token endpoint's error code and description, or the transport failure; never the
/// request (it holds the client secret) or a response body verbatim.
fn describe<RE: std::error::Error + 'static>(
    e: &oauth2::RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> String {
    use oauth2::RequestTokenError as E;
    match e {
        E::ServerResponse(r) => format!(
            "{}{}",
            r.error(),
            r.error_description()
                .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                .unwrap_or_default()
        ),
        E::Request(e) => format!("request failed: {e}"),
        E::Parse(e, _) => format!("unreadable token response: {e}"),
        E::Other(s) => s.chars().take(200).collect(),
    }
}
